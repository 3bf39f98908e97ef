"""t2t_multimodel.data."""
