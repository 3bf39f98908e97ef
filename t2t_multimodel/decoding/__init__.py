"""t2t_multimodel.decoding."""
