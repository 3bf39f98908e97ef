"""Fashion-MNIST trained in a pair, with controls (the RESULTS.md diagnosis).

Runs `t2t-mm-trainer` on the paper rows' recipe (`paper/joint_all.gin`,
uniform mixing) with PROBLEMS = '<partners>,demo_image_fashion_mnist' and
`steps_per_problem * (partners + 1)` steps, so the image problem gets about
`steps_per_problem` of them, and one of these controls on the partners'
steps:
  none      the partners train normally;
  task_zero their task loss is multiplied by 0 (their batches still run,
            and their MoE load-balancing loss still trains the gates and
            the layers below them);
  all_zero  their whole loss is multiplied by 0: their steps change
            nothing but the optimizer's step count, learning rate and
            moment decay (Adam applies the decaying first moment of the
            earlier image steps).
With `--partners none` the image problem trains alone.

Besides the trainer's files (eval_results.json, ...), MODEL_DIR/history.json
holds every step's `[step, problem, loss]`.

Usage:
  python experiments/pair_controls.py --data_dir=D --model_dir=M \
      --partners=demo_speech_espeak [--control=all_zero] [--seed=1] \
      [--steps_per_problem=150] [--gin_bindings='LEARNING_RATE = 0.5']
The rows' LEARNING_RATE is 0.189 (gin/experiments/paper/common.gin); the
diagnosis in experiments/results_notes.md ran at 0.5 unless it says 0.189,
so reproducing those runs needs `--gin_bindings='LEARNING_RATE = 0.5'`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import runpy
import sys
from collections.abc import Iterator, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "demo_image_fashion_mnist"
CONTROLS = ("none", "task_zero", "all_zero")


def zero_multipliers(problems: Sequence[Any], partners: set[str]) -> list:
    """`problems` with loss_multiplier 0 for those named in `partners`."""
    return [
        dataclasses.replace(p, loss_multiplier=0.0) if p.name in partners else p
        for p in problems
    ]


@contextlib.contextmanager
def controls(
    partners: set[str], control: str, history_path: str
) -> Iterator[None]:
    """Applies `control` to the partners' steps and records the history.

    Patches the trainer's `StepLoop` (and, for `all_zero`, `total_loss`)
    for the duration of the block and restores them afterwards.
    """
    import tensorflow as tf

    from t2t_multimodel import atomic_write
    from t2t_multimodel.training import losses, runner

    init, run = runner.StepLoop.__init__, runner.StepLoop.run
    total = losses.total_loss

    def patched_init(self, **kwargs):
        if control != "none":
            kwargs["problems"] = zero_multipliers(kwargs["problems"], partners)
            by_name = {p.name: p for p in kwargs["problems"]}
            kwargs["mine"] = [by_name[p.name] for p in kwargs["mine"]]
        init(self, **kwargs)

    def patched_run(self, *, start_step):
        yield from run(self, start_step=start_step)
        atomic_write.write_json(history_path, self.history)

    def zeroed_total(model_losses, *, loss_multiplier=1.0):
        # A zero multiplier zeroes the MoE loss too (total_loss adds it).
        multiplier = tf.cast(loss_multiplier, tf.float32)
        loss = total(model_losses, loss_multiplier=multiplier)
        return loss * tf.cast(multiplier > 0, tf.float32)

    runner.StepLoop.__init__ = patched_init
    runner.StepLoop.run = patched_run
    if control == "all_zero":
        losses.total_loss = zeroed_total
    try:
        yield
    finally:
        runner.StepLoop.__init__, runner.StepLoop.run = init, run
        losses.total_loss = total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument(
        "--partners",
        required=True,
        help="comma list of demo problems, or 'none'",
    )
    parser.add_argument("--control", choices=CONTROLS, default="none")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps_per_problem", type=int, default=150)
    parser.add_argument(
        "--gin_bindings",
        action="append",
        default=[],
        help="more trainer bindings, e.g. 'LEARNING_RATE = 0.5'",
    )
    args = parser.parse_args(argv)
    partners = [] if args.partners == "none" else args.partners.split(",")
    if not partners and args.control != "none":
        parser.error("--control needs --partners")
    problems = ",".join(partners + [IMAGE])
    steps = args.steps_per_problem * (len(partners) + 1)
    os.makedirs(args.model_dir, exist_ok=True)
    sys.argv = [
        "t2t-mm-trainer",
        "--gin_file=paper/joint_all.gin",
        f"--data_dir={args.data_dir}",
        f"--model_dir={args.model_dir}",
        f"--gin_bindings=PROBLEMS = '{problems}'",
        f"--gin_bindings=TRAIN_STEPS = {steps}",
        f"--gin_bindings=SEED = {args.seed}",
        "--gin_bindings=evaluation.EvalConfig.decode = False",
    ] + [f"--gin_bindings={b}" for b in args.gin_bindings]
    history = os.path.join(args.model_dir, "history.json")
    with controls(set(partners), args.control, history):
        try:
            runpy.run_path(
                os.path.join(ROOT, "bin", "t2t-mm-trainer"),
                run_name="__main__",
            )
        except SystemExit as e:  # absl's app.run exits
            if e.code:
                raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
