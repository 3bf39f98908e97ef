"""t2t_multimodel.training."""
