"""t2t-mm-import: a T2T v1.9 MultiModel checkpoint -> this project's format.

  t2t-mm-import --t2t_checkpoint=PREFIX_OR_NPZ --model_dir=M
      [--gin_file=models/multimodel_t2t_v19.gin ...] [--verify_npz=DUMP]
      [--overwrite]

Sizes come from the variable shapes; what shapes cannot tell (heads, top-k,
dilations, dropout) comes from the T2TV19Encoder/Decoder gin bindings. Writes
M/model.ckpt-0 and M/model_config.json; M must be new or empty unless
--overwrite, which first removes the checkpoints and run files of the run in
M. --verify_npz runs the model on a reference dump and exits 1 if a logit or
loss differs by more than 1e-4.
"""

from __future__ import annotations

import sys

import gin
from absl import flags

from programs import cli, gin_setup
from t2t_multimodel import errors
from t2t_multimodel.models import t2t_v19
from t2t_multimodel.t2t_compat import checkpoint_import as t2t_import
from t2t_multimodel.t2t_compat import parity as t2t_parity

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The importer's flags (defined when the program runs, not on import)."""
    flags.DEFINE_string(
        "t2t_checkpoint", None, "TF1 checkpoint prefix or .npz."
    )
    flags.DEFINE_string("model_dir", None, "Where to write the imported model.")
    flags.DEFINE_multi_string("gin_file", [], "Gin files (model settings).")
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
    flags.DEFINE_list(
        "gin_search_paths", [], "Directories searched for gin files."
    )
    flags.DEFINE_string("verify_npz", None, "Reference dump to compare with.")
    flags.DEFINE_float("tolerance", 1e-4, "Largest logit/loss difference.")
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Import into a non-empty --model_dir, replacing its checkpoints and "
        "run files.",
    )
    flags.mark_flags_as_required(["t2t_checkpoint"])


def _bindings(cls: type) -> dict:
    try:  # Only classes the gin files configure are in the registry.
        return gin.get_bindings(cls)
    except ValueError:
        return {}


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.model_dir:  # Before the slow work.
        t2t_import.check_model_dir(FLAGS.model_dir, overwrite=FLAGS.overwrite)
        errors.ensure_writable_dir(FLAGS.model_dir)
    reference = {}
    if FLAGS.verify_npz:
        reference = t2t_import.load_npz(FLAGS.verify_npz)
    gin_setup.parse(
        FLAGS.gin_file,
        FLAGS.gin_bindings,
        extra_search_paths=FLAGS.gin_search_paths,
    )
    variables = t2t_import.read_t2t_variables(FLAGS.t2t_checkpoint)
    try:
        model = t2t_import.import_t2t_checkpoint(
            variables,
            encoder_kwargs=_bindings(t2t_v19.T2TV19Encoder),
            decoder_kwargs=_bindings(t2t_v19.T2TV19Decoder),
        )
    except t2t_import.T2TImportError as e:
        print(f"t2t-mm-import: {e}", file=sys.stderr)
        return 1
    count = sum(v.size for v in variables.values())
    print(f"imported {len(variables)} variables, {count:,} parameters")
    if FLAGS.model_dir:
        path = t2t_import.save_model(
            model, FLAGS.model_dir, overwrite=FLAGS.overwrite
        )
        print(f"wrote {path} and model_config.json")
    if not FLAGS.verify_npz:
        return 0
    diffs, unmatched = t2t_parity.compare_with_dump(model, reference)
    for name, diff in sorted(diffs.items()):
        print(f"  {name:44s} max abs diff {diff:.3g}")
    if unmatched:
        print("  not compared: " + ", ".join(unmatched))
    worst = t2t_parity.max_output_difference(diffs)
    verdict = "PASS" if worst <= FLAGS.tolerance else "FAIL"
    print(f"{verdict}: largest logit/loss difference {worst:.3g}")
    return 0 if verdict == "PASS" else 1


def run() -> None:
    """The console entry point."""
    cli.start(
        lambda argv: sys.exit(main(argv)),
        prog="t2t-mm-import",
        doc=__doc__,
        define_flags=define_flags,
    )
