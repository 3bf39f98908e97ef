"""t2t_multimodel.modalities."""
