"""t2t_multimodel.export."""
