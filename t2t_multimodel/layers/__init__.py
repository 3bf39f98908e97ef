"""t2t_multimodel.layers."""
