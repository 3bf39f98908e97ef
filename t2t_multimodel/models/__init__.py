"""t2t_multimodel.models."""
