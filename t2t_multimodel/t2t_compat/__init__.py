"""Compatibility with the original Tensor2Tensor v1.9 MultiModel.

`checkpoint_import` turns a T2T v1.9 checkpoint (or its `.npz` dump) into
this project's `multimodel_t2t_v19` model; `parity` runs that model on a
reference dump of the original code and reports the largest differences
(shared/reference/t2t_v19_parity).
"""
