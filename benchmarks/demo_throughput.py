"""Benchmark: the demo's training throughput, per problem, at its settings.

What turns the demo's CPU minutes into learning (SPEC.md section 4): for
each problem of the demo mixture, examples and NON-PADDING tokens trained on
per second of wall clock, the share of padded positions in its batches, and
the share of the demo's time that goes to dev evaluation.

It reads the demo's own settings (`experiments/demo.gin` plus any
`--gin_bindings`, exactly as `t2t-mm-demo` parses them), trains the demo
model with the trainer (`loop.train`) for `--steps` updates on the demo data
in `--data_dir` (make it with `t2t-mm-datagen --problem=demo_all
--data_dir=D --tmp_dir=T`, or point it at a demo run's `OUT/data`), and
times every update with the trainer's `on_step` hook. The first `--warmup`
updates (which trace the compiled steps) are not counted. Tokens per
example come from a separate pass over the same train pipelines (same seed,
same batches): `targets_mask` / `inputs_mask` sums for variable-length
features; fixed-size features (an image, a class label) count as one.
Evaluation: the trainer's final dev evaluation with the demo's `EvalConfig`
is timed (the time between the last update and the end of `train`, which
also holds one checkpoint save) and scaled to the demo's number of
evaluations (`demo.run_demo.num_evals`) against its `TRAIN_STEPS`.

Usage:
  python benchmarks/demo_throughput.py --data_dir=D [--steps=60]
      [--warmup=10] [--gin_bindings='DTYPE_POLICY = "mixed_bfloat16"' ...]
      [--json=OUT.json]

Measured: see README (the demo section) and the report of issue #19; the
machine is a shared 2-core CPU, so give `uptime` beside every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


@dataclasses.dataclass(frozen=True)
class BatchStats:
    """Counts of one batch: examples, real and padded positions."""

    examples: int
    target_tokens: int
    target_positions: int
    input_tokens: int
    input_positions: int


def batch_stats(batch: Mapping[str, Any]) -> BatchStats:
    """The counts of one batch of model features (numpy or tensors).

    A feature with a `<key>_mask` counts its True entries as tokens and its
    mask's size as positions; one without (an image, a class label) counts
    one token and one position per example.
    """
    import numpy as np

    examples = int(np.shape(batch["targets"])[0])

    def counts(key: str) -> tuple[int, int]:
        mask = batch.get(f"{key}_mask")
        if mask is None:
            return examples, examples
        mask = np.asarray(mask)
        return int(mask.sum()), int(mask.size)

    target_tokens, target_positions = counts("targets")
    input_tokens, input_positions = counts("inputs")
    return BatchStats(
        examples, target_tokens, target_positions, input_tokens, input_positions
    )


def per_example(stats: Sequence[BatchStats]) -> dict[str, float]:
    """Mean tokens per example and padding shares over `stats`.

    Returns:
      `target_tokens_per_example`, `input_tokens_per_example`,
      `target_padding` and `input_padding` (padded positions / positions).
    """
    examples = sum(s.examples for s in stats)
    if not examples:
        return {
            "target_tokens_per_example": 0.0,
            "input_tokens_per_example": 0.0,
            "target_padding": 0.0,
            "input_padding": 0.0,
        }

    def padding(tokens: int, positions: int) -> float:
        return 1.0 - tokens / positions if positions else 0.0

    return {
        "target_tokens_per_example": sum(s.target_tokens for s in stats)
        / examples,
        "input_tokens_per_example": sum(s.input_tokens for s in stats)
        / examples,
        "target_padding": padding(
            sum(s.target_tokens for s in stats),
            sum(s.target_positions for s in stats),
        ),
        "input_padding": padding(
            sum(s.input_tokens for s in stats),
            sum(s.input_positions for s in stats),
        ),
    }


def throughput(
    examples: Mapping[str, float],
    shapes: Mapping[str, Mapping[str, float]],
    seconds: float,
) -> dict[str, dict[str, float]]:
    """Per problem: examples/s and non-padding tokens/s over `seconds`.

    Args:
      examples: problem -> examples trained on in the timed updates.
      shapes: problem -> `per_example(...)` of its batches.
      seconds: wall clock of the timed updates.
    """
    out = {}
    for name, count in examples.items():
        rate = count / seconds if seconds > 0 else 0.0
        shape = shapes.get(name, {})
        out[name] = {
            "examples_per_s": rate,
            "target_tokens_per_s": rate
            * shape.get("target_tokens_per_example", 0.0),
            "input_tokens_per_s": rate
            * shape.get("input_tokens_per_example", 0.0),
            "target_padding": shape.get("target_padding", 0.0),
            "input_padding": shape.get("input_padding", 0.0),
        }
    return out


def eval_share(
    *, step_seconds: float, train_steps: int, eval_seconds: float, evals: int
) -> float:
    """The share of (training + evaluation) time spent evaluating."""
    train = step_seconds * train_steps
    evaluation = eval_seconds * evals
    total = train + evaluation
    return evaluation / total if total > 0 else 0.0


def _timed_window(
    times: Sequence[float], warmup: int
) -> tuple[float, list[float]]:
    """Seconds of the updates after `warmup`, and each one's duration."""
    if len(times) <= warmup + 1:
        raise ValueError(
            f"need more than {warmup + 1} updates to time, got {len(times)}"
        )
    durations = [b - a for a, b in zip(times[warmup:], times[warmup + 1 :])]
    return times[-1] - times[warmup], durations


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Trains the demo model `args.steps` updates; returns the figures."""
    import gin

    from problems import registry
    from programs import demo, gin_setup
    from t2t_multimodel.training import configs, inputs, loop

    train_using_gin = gin.configurable(loop.train)
    gin.configurable(demo.run_demo)
    model_dir = tempfile.mkdtemp(prefix="demo_throughput_")
    gin_setup.parse(
        ["experiments/demo.gin", *args.gin_file],
        args.gin_bindings,
        program_bindings=gin_setup.flag_bindings(
            [
                ("DATA_DIR", args.data_dir),
                ("MODEL_DIR", model_dir),
                ("PROBLEMS", args.problems),
            ]
        ),
    )
    settings = gin.get_bindings(demo.run_demo, resolve_references=True)
    data = settings["data"]
    evaluation = settings["evaluation_config"]
    num_evals = int(settings.get("num_evals", 1))
    demo_steps = int(gin.query_parameter("TRAIN_STEPS/macro.value"))
    # gin binds the mixture's rates (`registry.mixture_rates`) into `data`.
    problems = registry.resolve(args.problems)

    shapes = {}
    for p in problems:
        dataset = inputs.train_dataset(p, args.data_dir, data, 1, None, None)
        stats = [batch_stats(b) for b in dataset.take(args.stat_batches)]
        shapes[p.name] = per_example(stats)

    times: list[float] = []
    examples: dict[str, float] = {}

    def on_step(step: int, metrics: Mapping[str, float]) -> None:
        times.append(time.perf_counter())
        if step <= args.warmup:
            return
        for key, value in metrics.items():
            if key.endswith("/examples"):
                name = key[: -len("/examples")]
                examples[name] = examples.get(name, 0.0) + value

    if args.no_eval:
        evaluation = dataclasses.replace(evaluation, steps=0)
    train_using_gin(
        problems=problems,
        model_dir=model_dir,
        train_steps=args.steps,
        data=data,
        checkpoint=configs.CheckpointConfig(every=0, keep=1),
        evaluation=dataclasses.replace(evaluation, every=0),
        log_every=args.steps,
        on_step=on_step,
    )
    end = time.perf_counter()
    seconds, durations = _timed_window(times, args.warmup)
    step_seconds = seconds / len(durations)
    eval_seconds = end - times[-1]
    per_problem = throughput(examples, shapes, seconds)
    return {
        "settings": {
            "gin_bindings": list(args.gin_bindings),
            "step_mixing": data.step_mixing,
            "batch_size": data.batch_size,
            "batch_unit": data.batch_unit,
            "batch_sizes": dict(data.batch_sizes or {}),
            "timed_updates": len(durations),
            "load_average": os.getloadavg(),
        },
        "steps_per_s": 1.0 / step_seconds,
        "median_step_s": statistics.median(durations),
        "per_problem": per_problem,
        "examples_per_s": sum(
            v["examples_per_s"] for v in per_problem.values()
        ),
        "target_tokens_per_s": sum(
            v["target_tokens_per_s"] for v in per_problem.values()
        ),
        "eval_s": eval_seconds,
        "eval_share_at_demo_settings": eval_share(
            step_seconds=step_seconds,
            train_steps=demo_steps,
            eval_seconds=eval_seconds,
            evals=num_evals,
        ),
        "demo_train_steps": demo_steps,
        "demo_num_evals": num_evals,
    }


def per_problem_costs(args: argparse.Namespace) -> dict[str, float]:
    """Seconds per one-problem update of each problem (after `measure`).

    Builds the demo model as `loop.train` does (gin's `model_fn`, dtype
    policy, fused Adam) and times `--cost_steps` updates of each problem
    alone on its demo batch, after two untimed ones (the trace).
    """
    import gin
    import keras
    import tensorflow as tf

    from problems import registry
    from programs import demo
    from t2t_multimodel.training import inputs, loop, optimizers, steps

    bindings = gin.get_bindings(loop.train, resolve_references=True)
    settings = gin.get_bindings(demo.run_demo, resolve_references=True)
    data = settings["data"]
    problems = registry.resolve(args.problems)
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(bindings["dtype_policy"])
    try:
        model = bindings["model_fn"](
            modality_specs=loop.modality_specs(problems)
        )
    finally:
        keras.mixed_precision.set_global_policy(previous)
    opt = optimizers.FusedAdam(1e-4)
    opt.build(model.trainable_variables)
    costs = {}
    for p in problems:
        iterator = iter(
            inputs.train_dataset(p, args.data_dir, data, 1, None, None)
        )
        update = steps.make_joint_train_step(
            model,
            opt,
            tf.distribute.get_strategy(),
            pairs=[(p.input_modality, p.target_modality)],
            label_smoothing=0.1,
            clip_norm=2.0,
        )
        multiplier = tf.constant([p.loss_multiplier], tf.float32)
        durations = []
        for i in range(2 + args.cost_steps):
            start = time.perf_counter()
            update((iterator,), multiplier)["loss"].numpy()
            if i >= 2:
                durations.append(time.perf_counter() - start)
        costs[p.name] = statistics.median(durations)
    return costs


def table(result: Mapping[str, Any]) -> str:
    """The per-problem figures as a text table."""
    lines = [
        f"{'problem':<30} {'ex/s':>8} {'tgt tok/s':>10} {'in tok/s':>10} "
        f"{'tgt pad':>8} {'in pad':>7}"
    ]
    for name, v in result["per_problem"].items():
        lines.append(
            f"{name:<30} {v['examples_per_s']:>8.1f} "
            f"{v['target_tokens_per_s']:>10.1f} "
            f"{v['input_tokens_per_s']:>10.1f} "
            f"{100 * v['target_padding']:>7.1f}% "
            f"{100 * v['input_padding']:>6.1f}%"
        )
    lines.append(
        f"all: {result['examples_per_s']:.1f} examples/s, "
        f"{result['target_tokens_per_s']:.1f} target tokens/s, "
        f"{result['steps_per_s']:.2f} steps/s "
        f"(median {1e3 * result['median_step_s']:.0f} ms); one evaluation "
        f"{result['eval_s']:.1f} s = "
        f"{100 * result['eval_share_at_demo_settings']:.1f}% of the demo's "
        f"training + evaluation time ({result['demo_num_evals']} evaluations, "
        f"{result['demo_train_steps']} steps)"
    )
    return "\n".join(lines)


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--problems", default="demo_all")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--stat_batches", type=int, default=20)
    parser.add_argument("--gin_file", action="append", default=[])
    parser.add_argument("--gin_bindings", action="append", default=[])
    parser.add_argument(
        "--cost_steps",
        type=int,
        default=0,
        help="Also time this many one-problem updates of each problem.",
    )
    parser.add_argument(
        "--no_eval",
        action="store_true",
        help="Skip the timed evaluation (its share is then ~0).",
    )
    parser.add_argument("--json", default=None, help="Also write JSON here.")
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.steps <= args.warmup + 1:
        raise SystemExit("--steps must exceed --warmup + 1")
    result = measure(args)
    if args.cost_steps:
        result["seconds_per_update_alone"] = per_problem_costs(args)
    print(table(result))
    for name, cost in result.get("seconds_per_update_alone", {}).items():
        print(f"{name:<30} alone: {1e3 * cost:.0f} ms per update")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if not math.isfinite(result["steps_per_s"]):
        raise SystemExit("no timed update")
    return result


if __name__ == "__main__":
    main()
