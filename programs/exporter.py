"""t2t-mm-exporter: a serving SavedModel on raw inputs (SPEC.md 1).

  t2t-mm-exporter --model_dir=M --export_dir=E [--problems=P1,P2]
      [--data_dir=D] [--overwrite]

Writes E with one serving signature per problem (default: every problem M
was trained on), named after it: text `inputs`, or `image_bytes` /
`audio_bytes`, as tf.string [batch]. Load it with plain TensorFlow after
`import tensorflow_text`. Decoding defaults (beam size, alpha, max length)
come from the shipped runs/export.gin; --gin_bindings overrides them.

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

from absl import flags, logging

from problems import registry
from programs import cli, gin_setup
from programs import decoder as decode_lib
from t2t_multimodel import errors
from t2t_multimodel.decoding import restore
from t2t_multimodel.export import saved_model


def _problem_names(model_dir: str, names: str | Sequence[str] | None):
    if names:
        return [p.name for p in registry.resolve(names)]
    path = os.path.join(model_dir, "problems.json")
    if not os.path.exists(path):
        raise restore.ModelDirError(
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
      restore.ModelDirError: no model, checkpoint or vocabulary.
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


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The exporter's flags (defined when the program runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "The training run's model_dir.")
    flags.DEFINE_string(
        "export_dir", None, "The SavedModel directory to write."
    )
    flags.DEFINE_list("problems", None, "Problems or mixtures to export.")
    flags.DEFINE_string("data_dir", None, "Where the vocabulary is (fallback).")
    flags.DEFINE_bool("overwrite", None, "Replace an existing export_dir.")
    flags.DEFINE_multi_string("gin_file", ["runs/export.gin"], "Gin files.")
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
    flags.DEFINE_list(
        "gin_search_paths", [], "Directories searched for gin files."
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    import gin

    import problems  # noqa: F401  (registers every problem and mixture)

    export_using_gin = gin.configurable(export)
    gin_setup.parse(
        FLAGS.gin_file,
        FLAGS.gin_bindings,
        extra_search_paths=FLAGS.gin_search_paths,
        program_bindings=gin_setup.flag_bindings(
            [
                ("MODEL_DIR", FLAGS.model_dir),
                ("EXPORT_DIR", FLAGS.export_dir),
                ("PROBLEMS", FLAGS.problems),
                ("DATA_DIR", FLAGS.data_dir),
                ("OVERWRITE", FLAGS.overwrite),
            ]
        ),
    )
    logging.info("exported %s", export_using_gin())


def run() -> None:
    """The console entry point."""
    cli.start(
        main, prog="t2t-mm-exporter", doc=__doc__, define_flags=define_flags
    )
