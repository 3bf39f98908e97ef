"""The input pipelines of a training run, per problem.

Thin wrappers around `data/pipeline.make_dataset` that apply the run's
`DataConfig`: endless shuffled train batches (sharded per input pipeline under
tf.distribute) and one ordered pass over the dev split for evaluation, plus
the train-set sizes that proportional mixing weighs problems by, and the
fingerprint of the train input that a saved data position belongs to.
"""

from __future__ import annotations

import hashlib
import json
import os
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


def data_fingerprint(
    problems: Sequence[Any], data_dir: str, data: configs.DataConfig
) -> str:
    """Identifies the train input of `problems` (sha256, hex).

    Covers each problem's train-shard metadata (problem, shard count,
    examples per shard, vocabulary hashes; the shard names and sizes where
    there is no metadata) and the batching settings: what a saved `tf.data`
    position depends on. Rewriting or re-sharding the data changes it.
    """
    parts: dict[str, Any] = {
        "batching": [data.batch_unit, data.max_length, data.shuffle_buffer],
        "batch_sizes": {
            p.name: data.problem_batch_size(p.name) for p in problems
        },
    }
    for p in problems:
        meta = tfrecord.read_meta(data_dir, p.name, "train")
        if meta is None:
            pattern = tfrecord.shard_pattern(data_dir, p.name, "train")
            meta = {
                os.path.basename(path): tf.io.gfile.stat(path).length
                for path in sorted(tf.io.gfile.glob(pattern))
            }
        parts[p.name] = meta
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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
