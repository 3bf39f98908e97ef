"""Benchmark: several problems per update (`DataConfig.step_mixing`).

Two measurements on the tiny generated problems of the training tests
(tests/training/fake_problems.py: text -> text, 16x16 image -> 4 classes,
0.1 s speech -> text; written to a temporary data_dir) and their tiny
MultiModel (d = 16, which the fake modalities' sizes assume):

- `--compare=implementations`: one update over all three problems, on one
  fixed batch each, done two ways: `joint` (the trainer's: one compiled
  function, one forward pass per problem under one gradient tape, one clip
  and apply; `steps.make_joint_train_step`) and `accumulate` (one compiled
  gradient function per modality pair, as the one-problem steps, then a
  second compiled function that sums the gradient lists, clips and
  applies). Reports the median ms per update and the first call (trace).
- `--compare=modes`: `loop.train` itself (input pipelines, schedule,
  logging) for `--steps` updates in `one_per_step` and `all_per_step` (and
  `k_per_step` with `--k`), uniform rates; reports steps/s and, per
  problem, examples/s over the updates after the first `--warmup` (which
  include the traces).

Usage: python benchmarks/step_mixing.py --compare=modes --steps=300
    [--batch=8 --warmup=20 --k=2]

Measured (2-core CPU shared with other jobs, load average 4-7, batches of
8 examples, two runs each): `implementations --steps=30/100`: joint 26.6 /
29.1 ms per update, accumulate 49.6 / 117.6 ms (first calls 26 s and 19-20
s). `modes --steps=300 --warmup=30`: one_per_step 68.0 / 47.7 steps/s,
181 / 127 examples/s per problem; all_per_step 29.3 / 28.1 steps/s, 234 /
225 examples/s per problem (1.3 / 1.8x the examples/s); k_per_step (k=2,
first run only) 37.4 steps/s, 199 examples/s per problem. This model is so
small that fixed per-update costs dominate; all_per_step pays them once
for three batches.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from t2t_multimodel.training import (  # noqa: E402
    configs,
    inputs,
    loop,
    optimizers,
    steps,
)
from t2t_multimodel.training import losses as losses_lib  # noqa: E402
from tests.training import fake_problems  # noqa: E402


def _problems():
    return [
        fake_problems.text_problem(),
        fake_problems.image_problem(),
        fake_problems.speech_problem(),
    ]


def _accumulate_update(model, opt, pairs, clip_norm):
    """The alternative: per-pair gradient functions, then one apply."""
    variables = list(model.trainable_variables)
    sources = [getattr(v, "value", v) for v in variables]

    def grads_fn(iterator, multiplier, pair):
        features = next(iterator)
        with tf.GradientTape() as tape:
            outputs = model(
                features,
                input_modality=pair[0],
                target_modality=pair[1],
                training=True,
            )
            model_losses = model.compute_loss(
                features, outputs, target_modality=pair[1], label_smoothing=0.1
            )
            loss = losses_lib.total_loss(
                model_losses, loss_multiplier=multiplier
            )
        grads = tape.gradient(
            loss, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return [tf.convert_to_tensor(g) for g in grads], loss

    compiled = {
        pair: tf.function(functools.partial(grads_fn, pair=pair))
        for pair in set(pairs)
    }

    @tf.function
    def apply(grad_lists):
        grads = [tf.add_n(list(g)) for g in zip(*grad_lists)]
        norm = tf.linalg.global_norm(grads)
        grads = steps.clip_by_norm_if_needed(grads, norm, clip_norm)
        opt.apply(grads, variables)
        return norm

    def update(iterators, multipliers):
        results = [
            compiled[pair](it, m)
            for pair, it, m in zip(pairs, iterators, multipliers)
        ]
        return apply([g for g, _ in results])

    return update


def compare_implementations(data_dir: str, args) -> dict:
    problems = _problems()
    data = configs.DataConfig(
        batch_size=args.batch, batch_unit="examples", max_length=16
    )
    pairs = [(p.input_modality, p.target_modality) for p in problems]
    results = {}
    for kind in ("joint", "accumulate"):
        keras.backend.clear_session()
        tf.random.set_seed(1)
        model = fake_problems.tiny_model(
            modality_specs=loop.modality_specs(problems),
        )
        opt = optimizers.FusedAdam(1e-3)
        opt.build(model.trainable_variables)
        iterators = tuple(
            iter(
                tf.data.Dataset.from_tensors(
                    next(
                        iter(
                            inputs.train_dataset(
                                p, data_dir, data, 1, None, None
                            )
                        )
                    )
                ).repeat()
            )
            for p in problems
        )
        multipliers = tf.constant([p.loss_multiplier for p in problems])
        if kind == "joint":
            update = steps.make_joint_train_step(
                model,
                opt,
                tf.distribute.get_strategy(),
                pairs=pairs,
                label_smoothing=0.1,
                clip_norm=2.0,
            )
        else:
            update = _accumulate_update(model, opt, pairs, 2.0)
        start = time.perf_counter()
        tf.nest.map_structure(
            lambda t: t.numpy(), update(iterators, multipliers)
        )
        first = time.perf_counter() - start
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            tf.nest.map_structure(
                lambda t: t.numpy(), update(iterators, multipliers)
            )
            times.append(time.perf_counter() - start)
        results[kind] = {
            "median ms per update": 1e3 * statistics.median(times),
            "first call s (trace)": first,
        }
    return results


def compare_modes(data_dir: str, args) -> dict:
    results = {}
    modes = ["one_per_step", "all_per_step"] + (
        ["k_per_step"] if args.k else []
    )
    for mode in modes:
        times, examples = [], {}

        def on_step(step, metrics, times=times, examples=examples):
            times.append(time.perf_counter())
            if step <= args.warmup:
                return
            for key, value in metrics.items():
                if key.endswith("/examples"):
                    name = key[: -len("/examples")]
                    examples[name] = examples.get(name, 0.0) + value

        with tempfile.TemporaryDirectory() as model_dir:
            loop.train(
                problems=_problems(),
                data_dir=data_dir,
                model_dir=model_dir,
                model_fn=fake_problems.tiny_model,
                train_steps=args.steps,
                learning_rate_schedule=1e-3,
                data=configs.DataConfig(
                    batch_size=args.batch,
                    batch_unit="examples",
                    max_length=16,
                    mixing="uniform",
                    step_mixing=mode,
                    problems_per_step=args.k or 2,
                ),
                checkpoint=configs.CheckpointConfig(every=0),
                evaluation=loop.EvalConfig(every=0, steps=0),
                seed=1,
                log_every=args.steps,
                on_step=on_step,
            )
        seconds = times[-1] - times[args.warmup - 1]
        counted = args.steps - args.warmup
        results[mode] = {
            "steps/s": counted / seconds,
            "examples/s": {k: v / seconds for k, v in examples.items()},
            "examples/s, all problems": sum(examples.values()) / seconds,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--compare", choices=("implementations", "modes"), default="modes"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--k", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        fake_problems.write(_problems(), data_dir)
        if args.compare == "implementations":
            results = compare_implementations(data_dir, args)
        else:
            results = compare_modes(data_dir, args)
    print(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
