"""t2t-mm-avg-checkpoints: the mean of a run's last checkpoints (T2T's).

  t2t-mm-avg-checkpoints --model_dir=M --num_last=N --output_dir=O
      [--data_dir=D] [--overwrite]

T2T reported BLEU on the average of the last checkpoints' weights
(`t2t-avg-all`, `avg_checkpoints.py`); this averages the newest N
checkpoints of a t2t-mm-trainer run with
`t2t_multimodel.training.averaging.average_checkpoints` into O, a new
directory that every program takes as its --model_dir (decoder, exporter,
trainer resume). The run's files are copied with it; the vocabulary files of
the run's problems are copied from D (the datagen data_dir) when given, so
that O decodes without --data_dir (from M they come anyway when the trainer
put them there). A vocabulary found in neither is a warning: decoding O then
needs --data_dir.
"""

from __future__ import annotations

import json
import logging
import os

from absl import flags

from programs import cli
from t2t_multimodel import errors

FLAGS = flags.FLAGS
_log = logging.getLogger(__name__)


def define_flags() -> None:
    """The program's flags (defined when it runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "The t2t-mm-trainer run.")
    flags.DEFINE_integer(
        "num_last", None, "How many of the newest checkpoints to average."
    )
    flags.DEFINE_string(
        "output_dir", None, "The new directory (a --model_dir for the rest)."
    )
    flags.DEFINE_string(
        "data_dir", None, "Copy the run's vocabularies from here."
    )
    flags.DEFINE_bool("overwrite", False, "Replace an existing output_dir.")
    flags.mark_flags_as_required(["model_dir", "num_last", "output_dir"])


def vocabulary_files(
    model_dir: str, data_dir: str | None
) -> tuple[list[str], list[str]]:
    """`(files to copy from data_dir, names found nowhere)` for a run.

    The run's problems come from `model_dir/problems.json`; their vocabulary
    file names from the registered problems. A name in `data_dir` is copied
    from there; one only in `model_dir` is copied with the run's files.
    """
    from problems import registry

    path = os.path.join(model_dir, "problems.json")
    if not os.path.isfile(path):
        return [], []
    with open(path) as f:
        names = json.load(f).get("problems", [])
    vocabularies: set[str] = set()
    for name in names:
        try:
            vocabularies |= registry.get_problem(name).text_vocabularies
        except registry.UnknownNameError:  # A problem of another checkout.
            _log.warning("%s is not a registered problem: skipped", name)
    extra, missing = [], []
    for name in sorted(vocabularies):
        if data_dir and os.path.isfile(os.path.join(data_dir, name)):
            extra.append(os.path.join(data_dir, name))
        elif not os.path.isfile(os.path.join(model_dir, name)):
            missing.append(name)
    return extra, missing


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    import problems  # noqa: F401  (registers every problem and mixture)
    from t2t_multimodel.training import averaging

    extra, missing = vocabulary_files(FLAGS.model_dir, FLAGS.data_dir)
    if missing:
        _log.warning(
            "vocabulary %s is neither in %s nor in --data_dir: decoding %s "
            "will need --data_dir",
            ", ".join(missing),
            FLAGS.model_dir,
            FLAGS.output_dir,
        )
    path = averaging.average_checkpoints(
        FLAGS.model_dir,
        num_last=FLAGS.num_last,
        output_dir=FLAGS.output_dir,
        extra_files=extra,
        overwrite=FLAGS.overwrite,
    )
    print(f"averaged the last {FLAGS.num_last} checkpoints into {path}")


def run() -> None:
    """The console entry point."""
    cli.start(
        main,
        prog="t2t-mm-avg-checkpoints",
        doc=__doc__,
        define_flags=define_flags,
    )
