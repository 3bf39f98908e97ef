"""The input pipelines of a training run, per problem.

Thin wrappers around `data/pipeline.make_dataset` that apply the run's
`DataConfig`: endless shuffled train batches (sharded per input pipeline under
tf.distribute) and one ordered pass over the dev split for evaluation, plus
the train-set sizes that proportional mixing weighs problems by.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from t2t_multimodel.data import pipeline, tfrecord
from t2t_multimodel.training import configs


def train_sizes(problems: Sequence[Any], data_dir: str) -> list[float]:
    """Train-split example counts from the shards' metadata (1 if absent)."""
    sizes = []
    for p in problems:
        meta = tfrecord.read_meta(data_dir, p.name, "train") or {}
        shards = meta.get("shards", {})
        sizes.append(float(sum(s["examples"] for s in shards.values()) or 1))
    return sizes


def train_dataset(
    problem: Any,
    data_dir: str,
    data: configs.DataConfig,
    seed: int,
    context: tf.distribute.InputContext | None,
    input_context: tf.distribute.InputContext,
) -> tf.data.Dataset:
    """The endless, shuffled train batches of `problem` for one pipeline.

    `context` (per-worker mode: the workers that share the problem) takes
    precedence over the strategy's `input_context`.
    """
    ctx = context or input_context
    batch_size = data.problem_batch_size(problem.name)
    return pipeline.make_dataset(
        problem,
        "train",
        data_dir,
        batch_size=batch_size,
        batch_unit=data.batch_unit,
        max_length=data.max_length,
        shuffle=True,
        repeat=True,
        seed=seed,
        input_context=ctx,
        training=True,
        shuffle_buffer=data.shuffle_buffer,
    )


def dev_dataset(
    problem: Any,
    *,
    data_dir: str,
    data: configs.DataConfig,
    batch_size: int | None,
) -> tf.data.Dataset:
    """One pass over the dev split of `problem`, in order."""
    return pipeline.make_dataset(
        problem,
        "dev",
        data_dir,
        batch_size=batch_size or data.problem_batch_size(problem.name),
        batch_unit=data.batch_unit,
        max_length=data.max_length,
        shuffle=False,
        repeat=False,
        training=False,
    )
