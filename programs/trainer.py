"""`t2t-mm-trainer`: trains a MultiModel on problems or mixtures (SPEC.md 1).

  t2t-mm-trainer --gin_file=experiments/demo_all_tiny.gin \
      --data_dir=D --model_dir=M [--gin_bindings='TRAIN_STEPS = 100']
  t2t-mm-trainer --problem=P --hparams_set=multimodel_base \
      --hparams='batch_size=2048,learning_rate=0.1' --data_dir=D \
      --output_dir=M --train_steps=N --eval_steps=E   (T2T's flags)

Gin files are found as `gin_setup` describes (the shipped ones by short
name). --data_dir and --model_dir set the DATA_DIR and MODEL_DIR macros of
`runs/train.gin`; --strategy sets STRATEGY (default, mirrored, or
multi_worker with the cluster in TF_CONFIG). The operative gin config is
written to M/operative_config.gin once everything is built, before the
first step. T2T's flags (--problem, --hparams_set, --hparams, --output_dir,
--train_steps, --eval_steps, --model) are translated to gin by
`programs/t2t_flags.py` (README "T2T flags"): the hparams set's model file
is parsed after the --gin_file files, the --hparams bindings before the
--gin_bindings (which win).
"""

from __future__ import annotations

import sys

from absl import flags, logging

from programs import cli, gin_setup, t2t_flags
from t2t_multimodel import errors

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The trainer's flags (defined when the program runs, not on import)."""
    flags.DEFINE_multi_string(
        "gin_file", None, "Gin files (models, runs, experiments)."
    )
    flags.DEFINE_multi_string(
        "gin_bindings", [], "Extra bindings, e.g. 'TRAIN_STEPS = 10'."
    )
    flags.DEFINE_list(
        "gin_search_paths", [], "Directories searched for gin files."
    )
    flags.DEFINE_string(
        "data_dir", None, "Shards and vocabulary of t2t-mm-datagen."
    )
    flags.DEFINE_string(
        "model_dir", None, "Checkpoints, summaries and results."
    )
    flags.DEFINE_enum(
        "strategy",
        None,
        ["default", "mirrored", "multi_worker"],
        "Distribution strategy (overrides the STRATEGY gin macro).",
    )
    # T2T's flags (programs/t2t_flags.py translates them to gin).
    flags.DEFINE_list("problem", None, "T2T: problem or mixture (PROBLEMS).")
    flags.DEFINE_string(
        "hparams_set", None, "T2T: a model (multimodel_base, _tiny, ...)."
    )
    flags.DEFINE_string(
        "hparams", None, "T2T: 'name=value,...' (README 'T2T flags')."
    )
    flags.DEFINE_string("output_dir", None, "T2T: the model_dir.")
    flags.DEFINE_integer("train_steps", None, "T2T: sets TRAIN_STEPS.")
    flags.DEFINE_integer("eval_steps", None, "T2T: dev batches per problem.")
    flags.DEFINE_string("model", None, "T2T: multi_model (the only one).")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    import gin

    import problems  # noqa: F401  (registers every problem and mixture)
    from t2t_multimodel.training import loop

    train_using_gin = gin.configurable(loop.train)
    t2t = t2t_flags.trainer_gin(
        gin_files=FLAGS.gin_file or [],
        problem=FLAGS.problem,
        hparams_set=FLAGS.hparams_set,
        hparams=FLAGS.hparams,
        train_steps=FLAGS.train_steps,
        eval_steps=FLAGS.eval_steps,
        model=FLAGS.model,
    )
    gin_setup.parse(
        [*(FLAGS.gin_file or []), *t2t.files],
        [*t2t.bindings, *FLAGS.gin_bindings],
        extra_search_paths=FLAGS.gin_search_paths,
        program_bindings=gin_setup.flag_bindings(
            [
                ("DATA_DIR", FLAGS.data_dir),
                (
                    "MODEL_DIR",
                    t2t_flags.model_dir(FLAGS.model_dir, FLAGS.output_dir),
                ),
                ("STRATEGY", FLAGS.strategy),
                *t2t.program_bindings,
            ]
        ),
    )
    model_dir = gin.query_parameter("MODEL_DIR/macro.value")
    result = train_using_gin(
        on_start=lambda: gin_setup.write_operative_config(model_dir)
    )
    if result.get("terminated"):
        logging.info("SIGTERM: saved step %d in %s", result["step"], model_dir)
        sys.exit(errors.EXIT_TERMINATED)
    logging.info(
        "finished at step %d; eval results: %s/eval_results.json",
        result["step"],
        model_dir,
    )


def run() -> None:
    """The console entry point."""
    cli.start(
        main, prog="t2t-mm-trainer", doc=__doc__, define_flags=define_flags
    )
