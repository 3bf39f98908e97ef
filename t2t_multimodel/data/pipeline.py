"""The tf.data input pipeline: shards -> model feature batches.

STYLE.md section 7, hop 3: TFRecordDataset over a split's shards (sharded per
worker under tf.distribute) -> parse (`tfrecord.parse_example`) ->
`problem.preprocessors` -> model features (docs/DESIGN.md: `inputs`,
`inputs_mask`, `targets`, `targets_mask`, `target_space_id`) -> truncation ->
length bucketing and padding -> prefetch. One batch always holds one problem;
`data/mixture.py` schedules problems for joint training.

Batch size units (T2T users were often confused by this):
- `batch_unit="examples"`: every batch has `batch_size` examples (the last
  one of an epoch may be smaller when not `training`).
- `batch_unit="tokens"`: `batch_size` bounds the padded positions of the
  LONGEST variable-length feature of a batch: a batch of B examples padded to
  length L has `B * L <= batch_size`, so short sentences come in big batches
  and long ones in small batches (T2T's default meaning of `batch_size`). Only
  an example longer than `batch_size` exceeds it, in a batch of its own (or
  one longer than an explicit `max_length` limit, which truncation prevents).
For fixed-size features only (image -> label) both units count examples.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import tensorflow as tf

from t2t_multimodel.data import preprocessors as preprocessors_lib
from t2t_multimodel.data import tfrecord

MODEL_KEYS = ("inputs", "targets")
DEFAULT_BUCKET_LENGTH = 256
BatchUnit = Literal["examples", "tokens"]


class MissingShardsError(FileNotFoundError):
    """No (or not all) TFRecord shards of a split are in `data_dir`."""


class ShardMismatchError(ValueError):
    """The shards were written for another problem, spec or vocabulary."""


def bucket_boundaries(
    max_length: int, min_length: int = 8, step: float = 1.1
) -> list[int]:
    """T2T's geometric length-bucket boundaries, `min_length`..`max_length`."""
    boundaries = []
    x = max(1, min(min_length, max_length - 1))
    while x < max_length:
        boundaries.append(x)
        x = max(x + 1, int(x * step))
    return boundaries


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_shards(
    problem: Any, split: str, data_dir: str
) -> tuple[list[str], list[int] | None]:
    """The split's shard paths and, when recorded, their example counts.

    Raises:
      MissingShardsError: no shard, or a shard the metadata lists is missing.
      ShardMismatchError: the shards belong to another problem, feature spec
        or vocabulary.
    """
    pattern = tfrecord.shard_pattern(data_dir, problem.name, split)
    command = (
        f"t2t-mm-datagen --problem={problem.name} --data_dir={data_dir} "
        "--tmp_dir=<raw data dir>"
    )
    meta = tfrecord.read_meta(data_dir, problem.name, split)
    if meta is None:
        paths = sorted(tf.io.gfile.glob(pattern))
        if not paths:
            raise MissingShardsError(
                f"no {split} shards of problem {problem.name!r} match "
                f"{pattern}. Generate them with: {command}"
            )
        return paths, None
    for name, sha in meta.get("vocabularies", {}).items():
        path = os.path.join(data_dir, name)
        if tf.io.gfile.exists(path) and _sha256_file(path) != sha:
            raise ShardMismatchError(
                f"{pattern} were written with another {name} than the one in "
                f"{data_dir}; delete the shards and rerun {command}"
            )
    mismatch = tfrecord.check_meta(meta, problem.name, problem.features)
    if mismatch:
        raise ShardMismatchError(
            f"{pattern} do not fit problem {problem.name!r}: "
            f"{'; '.join(mismatch)}. Delete them and rerun {command}"
        )
    paths = tfrecord.shard_paths(
        data_dir, problem.name, split, meta["num_shards"]
    )
    missing = [p for p in paths if not tf.io.gfile.exists(p)]
    if missing:
        raise MissingShardsError(
            f"{len(missing)} of {len(paths)} {split} shards of "
            f"{problem.name!r} are missing (first: {missing[0]}). Regenerate "
            f"them with: {command}"
        )
    counts = [meta["shards"][os.path.basename(p)]["examples"] for p in paths]
    return paths, counts


def _checked_records(path: tf.Tensor, expected: tf.Tensor) -> tf.data.Dataset:
    """Records of one shard; fails naming the file if it is corrupt.

    TF's own corrupt/truncated-record error does not name the file, so the
    reader stops quietly at the first bad record and a final sentinel checks
    that all `expected` records were read.
    """
    records = tf.data.TFRecordDataset(path).ignore_errors()
    marked = records.map(lambda r: (r, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(b""), True))
    )
    counted = marked.scan(
        tf.constant(0, tf.int64),
        lambda n, x: (n + 1 - tf.cast(x[1], tf.int64), (x[0], x[1], n)),
    )

    def check(record, is_end, count):
        ok = tf.logical_or(tf.logical_not(is_end), tf.equal(count, expected))
        message = [
            "Corrupt or truncated TFRecord shard",
            path,
            "read records:",
            count,
            "expected:",
            expected,
            "Delete it and rerun t2t-mm-datagen to regenerate it.",
        ]
        with tf.control_dependencies([tf.debugging.Assert(ok, message)]):
            return tf.identity(record), is_end

    return (
        counted.map(check)
        .filter(lambda record, is_end: tf.logical_not(is_end))
        .map(lambda record, is_end: record)
    )


def _records(
    paths: list[str],
    counts: list[int] | None,
    *,
    shuffle: bool,
    seed: int | None,
    input_context: tf.distribute.InputContext | None,
) -> tf.data.Dataset:
    """Interleaved serialized records, sharded per input pipeline."""
    files = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths), tf.constant(counts or [-1] * len(paths), tf.int64))
    )
    shard_records = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        n, i = (
            input_context.num_input_pipelines,
            input_context.input_pipeline_id,
        )
        if len(paths) >= n:
            files = files.shard(n, i)
        else:  # Fewer files than workers: every worker skips records.
            shard_records = True
    # Record sharding partitions the stream only if every worker sees the
    # same order: then files are not shuffled and interleaving is in order
    # (the example shuffle buffer after it still shuffles).
    if shuffle and not shard_records:
        files = files.shuffle(len(paths), seed=seed)
    if counts is None:  # No metadata to check the files against.
        read = lambda path, expected: tf.data.TFRecordDataset(path)
    else:
        read = _checked_records
    records = files.interleave(
        read,
        cycle_length=min(len(paths), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=seed is not None or not shuffle or shard_records,
    )
    if shard_records:
        records = records.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    return records


def read_examples(
    problem: Any,
    split: str,
    data_dir: str,
    *,
    keys: Sequence[str] | None = None,
    ordered: bool = True,
) -> tf.data.Dataset:
    """The stored examples of a split, parsed, one dict per example.

    No preprocessing, batching or repetition: what `t2t-mm-datagen` wrote
    (text as int64 ids ending in EOS, encoded image bytes, waveforms, int
    labels), for decoding and scoring a whole split.

    Args:
      problem: the problem (name, features).
      split: `"train"`, `"dev"` or `"test"`.
      data_dir: where `t2t-mm-datagen` wrote the shards.
      keys: the features to parse (default: all); the others are skipped
        without being decoded (e.g. only the train labels, not the images).
      ordered: the order in which the examples were generated. Example `i`
        is in shard `i % num_shards`, so reading the shards round-robin,
        one record each, restores it (all shards are open at once). False
        reads up to 8 shards in parallel, in a fixed but mixed order.

    Raises:
      MissingShardsError, ShardMismatchError: as `make_dataset`.
    """
    paths, counts = find_shards(problem, split, data_dir)
    files = tf.data.Dataset.from_tensor_slices(
        (tf.constant(paths), tf.constant(counts or [-1] * len(paths), tf.int64))
    )
    if counts is None:  # No metadata to check the files against.
        read = lambda path, expected: tf.data.TFRecordDataset(path)
    else:
        read = _checked_records
    if ordered:
        records = files.interleave(
            read, cycle_length=len(paths), block_length=1
        )
    else:
        records = files.interleave(
            read,
            cycle_length=min(len(paths), 8),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    features = {
        k: f for k, f in problem.features.items() if keys is None or k in keys
    }
    return records.map(
        lambda r: tfrecord.parse_example(r, features),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _model_features(
    example: Mapping[str, tf.Tensor], target_space_id: int
) -> dict[str, tf.Tensor]:
    """Task features -> model features: int32 ids/labels, masks, space id."""
    out = {}
    for key in MODEL_KEYS:
        value = example[key]
        if value.dtype in (tf.int64, tf.int32):
            value = tf.cast(value, tf.int32)
        out[key] = value
        if value.shape.rank and value.shape[0] is None:  # variable length
            out[f"{key}_mask"] = tf.ones(tf.shape(value)[:1], tf.bool)
    out["target_space_id"] = tf.constant(target_space_id, tf.int32)
    return out


def _length_limits(
    features: Mapping[str, Any], max_length: int | Mapping[str, int] | None
) -> dict[str, int]:
    if max_length is None:
        return {}
    if isinstance(max_length, Mapping):
        return dict(max_length)
    return {k: max_length for k in MODEL_KEYS if features[k].is_text}


def _truncate(
    example: dict[str, tf.Tensor], limits: Mapping[str, int]
) -> dict[str, tf.Tensor]:
    out = dict(example)
    for key, limit in limits.items():
        out[key] = example[key][:limit]
        if f"{key}_mask" in example:
            out[f"{key}_mask"] = example[f"{key}_mask"][:limit]
    return out


def _variable_keys(element_spec: Mapping[str, tf.TensorSpec]) -> list[str]:
    return [
        k
        for k in MODEL_KEYS
        if element_spec[k].shape.rank and element_spec[k].shape[0] is None
    ]


def _batch(
    dataset: tf.data.Dataset,
    batch_size: int,
    batch_unit: BatchUnit,
    limits: Mapping[str, int],
    drop_remainder: bool,
) -> tf.data.Dataset:
    """Length-bucketed padded batches (or plain batches for fixed shapes)."""
    variable = _variable_keys(dataset.element_spec)
    if not variable:
        return dataset.batch(batch_size, drop_remainder=drop_remainder)
    if all(k in limits for k in variable):
        max_bucket_length = max(limits[k] for k in variable)
    elif batch_unit == "tokens":
        max_bucket_length = batch_size  # Longer: a batch of its own.
    else:
        max_bucket_length = DEFAULT_BUCKET_LENGTH

    def length(example):
        lengths = [tf.shape(example[k], tf.int32)[0] for k in variable]
        return tf.reduce_max(tf.stack(lengths))

    boundaries = bucket_boundaries(max_bucket_length + 1)
    if batch_unit == "tokens":
        # Bucket b holds lengths in [boundaries[b-1], boundaries[b]); the last
        # one lengths >= boundaries[-1], up to max_bucket_length.
        uppers = [b - 1 for b in boundaries] + [max_bucket_length]
        sizes = [max(1, batch_size // upper) for upper in uppers]
    else:
        sizes = [batch_size] * (len(boundaries) + 1)
    return dataset.bucket_by_sequence_length(
        length,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=sizes,
        drop_remainder=drop_remainder,
    )


def make_dataset(
    problem: Any,
    split: str,
    data_dir: str,
    *,
    batch_size: int,
    batch_unit: BatchUnit = "examples",
    max_length: int | Mapping[str, int] | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    training: bool = True,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Batches of model features of one problem's split.

    Args:
      problem: a `problems.problem.Problem` (name, features, preprocessors,
        target_space_id).
      split: `"train"` or `"dev"`.
      data_dir: where `t2t-mm-datagen` wrote the shards.
      batch_size: examples, or padded positions of the longest variable-length
        feature (see the module docstring), per batch of THIS pipeline (under
        tf.distribute pass `input_context.get_per_replica_batch_size(...)`).
      batch_unit: `"examples"` or `"tokens"`.
      max_length: an int truncates the TEXT inputs/targets to that many ids; a
        mapping `{"inputs": 48000, "targets": 256}` sets per-feature limits
        for any variable-length feature (samples, frames, ids). A truncated
        text sequence keeps its first `max_length` ids and so has no EOS: the
        model is never taught to stop early on a cut target. It also bounds
        the length buckets (default bound: `batch_size` for tokens, 256 for
        examples; longer examples share the last bucket).
      shuffle: shuffle files and examples.
      repeat: repeat forever (training).
      seed: makes file order, shuffling and interleaving deterministic.
      input_context: shards files (or records, when there are fewer files
        than input pipelines) across the input pipelines of tf.distribute.
      training: applies training-only preprocessing (augmentation) and drops
        incomplete batches (static batch shapes).
      shuffle_buffer: examples in the shuffle buffer.

    Returns:
      A dataset of dicts: `inputs`, `inputs_mask` (variable-length inputs),
      `targets`, `targets_mask` (variable-length targets), `target_space_id`
      int32 `[B]`. Padding is 0 (False in masks).

    Raises:
      MissingShardsError: the split was not generated (the message gives the
        datagen command).
      ShardMismatchError: the shards do not fit the problem or vocabulary.
    """
    if batch_unit not in ("examples", "tokens"):
        raise ValueError(f"batch_unit must be examples or tokens: {batch_unit}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    paths, counts = find_shards(problem, split, data_dir)
    dataset = _records(
        paths, counts, shuffle=shuffle, seed=seed, input_context=input_context
    )
    if repeat:
        dataset = dataset.repeat()
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    features = problem.features
    dataset = dataset.map(
        lambda r: tfrecord.parse_example(r, features),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=seed is not None or not shuffle,
    )
    dataset = preprocessors_lib.apply_preprocessors(
        dataset, problem.preprocessors, training=training
    )
    space_id = int(problem.target_space_id)
    dataset = dataset.map(
        lambda ex: _model_features(ex, space_id),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    limits = _length_limits(features, max_length)
    if limits:
        dataset = dataset.map(lambda ex: _truncate(ex, limits))
    dataset = _batch(dataset, batch_size, batch_unit, limits, training)
    return dataset.prefetch(tf.data.AUTOTUNE)
