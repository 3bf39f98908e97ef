"""`export`: the entry point of `t2t-mm-exporter`.

Resolves the problem names (default: the problems the model was trained on,
from `model_dir/problems.json`), rebuilds the model from `model_dir` and
writes the raw-input serving SavedModel of `t2t_multimodel.export.saved_model`
with one signature per problem. Class names come from a problem's
`class_names` attribute when it has one (else the ids are the names).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from problems import decode as decode_lib
from problems import registry
from t2t_multimodel import errors
from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.export import saved_model


def _problem_names(model_dir: str, names: str | Sequence[str] | None):
    if names:
        return [p.name for p in registry.resolve(names)]
    path = os.path.join(model_dir, "problems.json")
    if not os.path.exists(path):
        raise decoder_lib.ModelDirError(
            f"{path} not found: pass the problems to export with --problems."
        )
    with open(path) as f:
        return list(json.load(f)["problems"])


def export(
    *,
    model_dir: str,
    export_dir: str,
    problem_names: str | Sequence[str] | None = None,
    data_dir: str | None = None,
    beam_size: int = 4,
    alpha: float = 0.6,
    max_length: int = 256,
    max_input_length: int = 256,
    top_k: int = 5,
    overwrite: bool = False,
) -> str:
    """Exports `model_dir`'s model for `problem_names`; returns `export_dir`.

    Raises:
      registry.UnknownNameError: an unknown problem name.
      decoder_lib.ModelDirError: no model, checkpoint or vocabulary.
      FileExistsError: `export_dir` exists and `overwrite` is False.
    """
    if os.path.exists(export_dir) and not overwrite:
        raise FileExistsError(
            f"{export_dir} exists; pass --overwrite to replace it or choose "
            "another --export_dir"
        )
    errors.ensure_writable_dir(os.path.dirname(os.path.abspath(export_dir)))
    names = _problem_names(model_dir, problem_names)
    model, problems, vocab = decode_lib.load(model_dir, names, data_dir)
    return saved_model.export(
        model=model,
        problems=problems,
        vocabulary=vocab,
        export_dir=export_dir,
        beam_size=beam_size,
        alpha=alpha,
        max_length=max_length,
        max_input_length=max_input_length,
        top_k=top_k,
        overwrite=overwrite,
    )
