"""Sharded TFRecord files of `tf.train.Example`s: writer, parse spec, metadata.

STYLE.md section 7, hop 2: both the writer (`encode_example`, `write_split`)
and the reader's parse spec (`parse_spec`, `parse_example`) derive from a
problem's `Feature`s, so they cannot drift apart. Text features are written
as int64 ids of the shared vocabulary followed by EOS.

Files of one split are `<problem>-<split>-000NN-of-000MM` (T2T's names) plus
`<problem>-<split>.meta.json`, which records the feature spec, the vocabulary
files with their sha256 and the per-shard example and token counts. Example
`i` goes to shard `i % num_shards`. Every file is written under a hidden
temporary name and renamed when complete, the metadata before the shards, so a
killed run never leaves a partial file under a final name and a rerun redoes
exactly the shards that are missing.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from t2t_multimodel import atomic_write
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import vocabulary as vocabulary_lib

Features = Mapping[str, features_lib.Feature]
Vocabularies = Mapping[str, vocabulary_lib.Vocabulary]
META_VERSION = 1


def shard_paths(
    data_dir: str, problem_name: str, split: str, num_shards: int
) -> list[str]:
    """`data_dir/<problem>-<split>-000NN-of-000MM` for every shard."""
    return [
        os.path.join(
            data_dir, f"{problem_name}-{split}-{i:05d}-of-{num_shards:05d}"
        )
        for i in range(num_shards)
    ]


def shard_pattern(data_dir: str, problem_name: str, split: str) -> str:
    """The glob matching every shard of a split."""
    return os.path.join(data_dir, f"{problem_name}-{split}-?????-of-?????")


def meta_path(data_dir: str, problem_name: str, split: str) -> str:
    return os.path.join(data_dir, f"{problem_name}-{split}.meta.json")


def _storage(feature: features_lib.Feature) -> tuple[tf.DType, tuple]:
    """(dtype, shape) as stored: text is int64 ids of any length."""
    if feature.is_text:
        return tf.int64, (None,)
    if feature.dtype not in (tf.int64, tf.float32, tf.string):
        raise ValueError(
            f"stored dtype must be int64, float32 or string: {feature.dtype}"
        )
    if any(d is None for d in feature.shape[1:]):
        raise ValueError(
            f"only the first axis may be variable: shape {feature.shape}"
        )
    return feature.dtype, tuple(feature.shape)


def parse_spec(features: Features) -> dict[str, Any]:
    """The `tf.io.parse_single_example` spec of `features`.

    Variable-length features (text, waveforms, `[None, F]` spectrograms) are
    `VarLenFeature`s stored flat; fixed shapes are `FixedLenFeature`s.
    """
    spec = {}
    for key, feature in features.items():
        dtype, shape = _storage(feature)
        if any(d is None for d in shape):
            spec[key] = tf.io.VarLenFeature(dtype)
        else:
            spec[key] = tf.io.FixedLenFeature(list(shape), dtype)
    return spec


def parse_example(
    serialized: tf.Tensor, features: Features
) -> dict[str, tf.Tensor]:
    """Parses one serialized example into dense tensors of the stored shapes.

    Variable-length features come back dense with their first axis restored
    (a flat `[N * F]` spectrogram becomes `[N, F]`).
    """
    parsed = tf.io.parse_single_example(serialized, parse_spec(features))
    out = {}
    for key, feature in features.items():
        _, shape = _storage(feature)
        value = parsed[key]
        if isinstance(value, tf.SparseTensor):
            value = tf.sparse.to_dense(value)  # [N * prod(shape[1:])]
            if len(shape) > 1:
                value = tf.reshape(value, [-1, *shape[1:]])  # [N, *shape[1:]]
        out[key] = value
    return out


def _to_list(value: Any, key: str, feature: features_lib.Feature) -> list:
    array = np.asarray(value)
    _, shape = _storage(feature)
    if len(shape) != array.ndim and not (len(shape) == 1 and array.ndim == 0):
        raise ValueError(
            f"feature {key!r}: expected rank {len(shape)} {shape}, got shape "
            f"{array.shape}"
        )
    for want, got in zip(shape, array.shape):
        if want is not None and want != got:
            raise ValueError(
                f"feature {key!r}: expected shape {shape}, got {array.shape}"
            )
    return array.reshape(-1).tolist()


def encode_example(
    raw_example: Mapping[str, Any],
    features: Features,
    vocabularies: Vocabularies,
) -> tf.train.Example:
    """Encodes one raw generator example as a `tf.train.Example`.

    Args:
      raw_example: `str` for text features (encoded with the vocabulary named
        by `Feature.vocabulary`, plus EOS), `bytes` for string features
        (encoded images), numbers or arrays for int64/float32 features. Keys
        that are not features are ignored.
      features: the problem's features.
      vocabularies: vocabulary file name -> `Vocabulary`.

    Returns:
      The example.

    Raises:
      KeyError: a feature is missing from `raw_example`.
      TypeError, ValueError: a value does not match its feature.
    """
    out = {}
    for key, feature in features.items():
        if key not in raw_example:
            raise KeyError(
                f"example has no feature {key!r}; it has {sorted(raw_example)}"
            )
        value = raw_example[key]
        if feature.is_text:
            if not isinstance(value, str):
                raise TypeError(
                    f"text feature {key!r} must be a str, got {type(value)}"
                )
            ids = vocabularies[feature.vocabulary].encode(value)
            ids.append(vocabulary_lib.EOS_ID)
            out[key] = tf.train.Feature(
                int64_list=tf.train.Int64List(value=ids)
            )
        elif feature.dtype == tf.string:
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not isinstance(value, bytes):
                raise TypeError(
                    f"string feature {key!r} must be bytes, got {type(value)}"
                )
            out[key] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[value])
            )
        elif feature.dtype == tf.int64:
            values = _to_list(value, key, feature)
            out[key] = tf.train.Feature(
                int64_list=tf.train.Int64List(value=[int(v) for v in values])
            )
        else:
            values = _to_list(np.asarray(value, np.float32), key, feature)
            out[key] = tf.train.Feature(
                float_list=tf.train.FloatList(value=values)
            )
    return tf.train.Example(features=tf.train.Features(feature=out))


def feature_spec_json(features: Features) -> dict[str, Any]:
    """A JSON description of `features` (stored in the metadata file)."""
    return {
        key: {
            "dtype": f.dtype.name,
            "shape": list(f.shape),
            "vocabulary": f.vocabulary,
            "modality": f.modality.name if f.modality else None,
        }
        for key, f in sorted(features.items())
    }


def _identity(
    problem_name: str,
    split: str,
    num_shards: int,
    features: Features,
    vocabularies: Vocabularies,
) -> dict[str, Any]:
    names = sorted({f.vocabulary for f in features.values() if f.vocabulary})
    return {
        "version": META_VERSION,
        "problem": problem_name,
        "split": split,
        "num_shards": num_shards,
        "features": feature_spec_json(features),
        "vocabularies": {n: vocabularies[n].sha256 for n in names},
    }


def read_meta(data_dir: str, problem_name: str, split: str) -> dict | None:
    """The split's metadata, or `None` when there is no metadata file."""
    path = meta_path(data_dir, problem_name, split)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def check_meta(
    meta: Mapping[str, Any],
    problem_name: str,
    features: Features,
    vocabularies: Vocabularies | None = None,
) -> list[str]:
    """Mismatches between written shards and a problem; empty when they fit.

    Args:
      meta: from `read_meta`.
      problem_name: the problem expected to have written them.
      features: its features.
      vocabularies: when given, the sha256 of each must match.
    """
    problems = []
    if meta.get("problem") != problem_name:
        problems.append(
            f"written for problem {meta.get('problem')!r}, not {problem_name!r}"
        )
    if meta.get("features") != feature_spec_json(features):
        problems.append(
            f"feature spec {meta.get('features')} differs from "
            f"{feature_spec_json(features)}"
        )
    for name, vocab in (vocabularies or {}).items():
        written = meta.get("vocabularies", {}).get(name)
        if written is not None and written != vocab.sha256:
            problems.append(
                f"written with a different vocabulary {name} (sha256 "
                f"{written[:12]}..., the one in data_dir is "
                f"{vocab.sha256[:12]}...)"
            )
    return problems


@dataclasses.dataclass(frozen=True)
class SplitStats:
    """What `write_split` did.

    Attributes:
      split: split name.
      paths: every shard of the split.
      num_examples: examples in the split (written or already present).
      num_tokens: text tokens (EOS included) per text feature.
      shards_written: indices of the shards (re)written by this call.
      shards_skipped: indices of complete shards left as they were.
    """

    split: str
    paths: tuple[str, ...]
    num_examples: int
    num_tokens: Mapping[str, int]
    shards_written: tuple[int, ...]
    shards_skipped: tuple[int, ...]


def _shards_to_write(
    paths: list[str], old_meta: Mapping[str, Any] | None, identity: dict
) -> set[int]:
    """Indices of shards that are missing or that cannot be trusted."""
    if old_meta is None or {k: old_meta.get(k) for k in identity} != identity:
        return set(range(len(paths)))
    recorded = old_meta.get("shards", {})
    return {
        i
        for i, path in enumerate(paths)
        if not os.path.exists(path) or os.path.basename(path) not in recorded
    }


def _encode_shards(
    examples: Iterable[Mapping[str, Any]],
    features: Features,
    vocabularies: Vocabularies,
    temp_paths: Mapping[int, str],
    num_shards: int,
    progress: Callable[[int], None] | None,
) -> tuple[dict[int, dict], list[int]]:
    """Writes the examples of shards `temp_paths`; returns stats and counts."""
    text_keys = [k for k, f in features.items() if f.is_text]
    stats = {
        i: {"examples": 0, "tokens": dict.fromkeys(text_keys, 0)}
        for i in temp_paths
    }
    seen = [0] * num_shards  # examples per shard, written or not
    writers = {i: tf.io.TFRecordWriter(p) for i, p in temp_paths.items()}
    try:
        for index, raw in enumerate(examples):
            shard = index % num_shards
            seen[shard] += 1
            if shard not in writers:
                continue
            example = encode_example(raw, features, vocabularies)
            writers[shard].write(example.SerializeToString())
            stats[shard]["examples"] += 1
            for key in text_keys:
                stats[shard]["tokens"][key] += len(
                    example.features.feature[key].int64_list.value
                )
            if progress is not None:
                progress(1)
    finally:
        for writer in writers.values():
            writer.close()
    return stats, seen


def write_split(
    examples: Iterable[Mapping[str, Any]],
    features: Features,
    vocabularies: Vocabularies,
    data_dir: str,
    problem_name: str,
    split: str,
    num_shards: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> SplitStats:
    """Writes a split's examples round-robin into `num_shards` TFRecord shards.

    Shards already complete for the same problem, features, vocabularies and
    shard count (as recorded in the metadata) are kept; the others are
    rewritten. All examples are iterated either way (shard membership is by
    position) but only those of rewritten shards are encoded.

    Args:
      examples: raw generator examples.
      features: the problem's features.
      vocabularies: vocabulary file name -> `Vocabulary` for text features.
      data_dir: output directory (created if needed).
      problem_name: the problem's name (file prefix).
      split: split name.
      num_shards: number of shards.
      progress: called with 1 for each example written.

    Returns:
      `SplitStats`.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    os.makedirs(data_dir, exist_ok=True)
    for suffix in (".incomplete", ".tmp"):  # Shards, metadata.
        for stale in glob.glob(
            os.path.join(data_dir, f".{problem_name}-{split}*{suffix}")
        ):
            os.remove(stale)  # Left by a killed run.
    paths = shard_paths(data_dir, problem_name, split, num_shards)
    names = [os.path.basename(p) for p in paths]
    identity = _identity(
        problem_name, split, num_shards, features, vocabularies
    )
    old_meta = read_meta(data_dir, problem_name, split)
    todo = _shards_to_write(paths, old_meta, identity)
    kept = sorted(set(range(num_shards)) - todo)
    if not kept:
        # Nothing reusable (another shard count, spec or vocabulary): remove
        # every old shard of the split so readers never mix the two.
        for old in glob.glob(shard_pattern(data_dir, problem_name, split)):
            os.remove(old)
    shard_stats = {names[i]: old_meta["shards"][names[i]] for i in kept}
    temps = {i: atomic_write.temp_path(paths[i], ".incomplete") for i in todo}
    new_stats, seen = _encode_shards(
        examples,
        features,
        vocabularies,
        temps,
        num_shards,
        progress,
    )
    shard_stats.update({names[i]: new_stats[i] for i in sorted(todo)})
    shard_stats = {name: shard_stats[name] for name in names}
    for i, name in enumerate(names):
        if shard_stats[name]["examples"] != seen[i]:
            logging.warning(
                "%s has %d examples but the generator now yields %d for it; "
                "the raw data changed: delete %s and rerun to rewrite all.",
                name,
                shard_stats[name]["examples"],
                seen[i],
                meta_path(data_dir, problem_name, split),
            )
    # Metadata first, then the renames: a run killed in between leaves
    # metadata that marks the not-yet-renamed shards as missing.
    atomic_write.write_json(
        meta_path(data_dir, problem_name, split),
        {**identity, "shards": shard_stats},
        indent=1,
    )
    for i in sorted(todo):
        atomic_write.publish(temps[i], paths[i])
    num_tokens = {}
    for stats in shard_stats.values():
        for key, count in stats["tokens"].items():
            num_tokens[key] = num_tokens.get(key, 0) + count
    return SplitStats(
        split=split,
        paths=tuple(paths),
        num_examples=sum(s["examples"] for s in shard_stats.values()),
        num_tokens=num_tokens,
        shards_written=tuple(sorted(todo)),
        shards_skipped=tuple(kept),
    )
