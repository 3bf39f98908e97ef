"""The vocabulary a training run was trained with, kept in its model_dir.

A checkpoint's ids mean something only with the vocabulary the shards were
encoded with. A `data_dir` regenerated with another vocabulary of the same
size (other pieces) would let a resumed run train on ids that now stand for
other subwords, silently. So the trainer copies each vocabulary file its
problems use from `data_dir` into `model_dir` once the checkpoint is
restored (`copy_vocabularies`; the decoder and exporter look for it there
first, so `t2t-mm-exporter --model_dir=M` needs no `--data_dir`), and
refuses to resume with a `data_dir` whose vocabulary differs from that copy
(`check_vocabularies`, before anything is written).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from t2t_multimodel import atomic_write, errors
from t2t_multimodel.data import tfrecord

_log = logging.getLogger(__name__)


def vocabulary_names(problems: Sequence[Any]) -> list[str]:
    """The vocabulary files the problems' text features name."""
    return sorted(
        {
            f.vocabulary
            for p in problems
            for f in p.features.values()
            if f.vocabulary
        }
    )


def _read(path: str) -> bytes | None:
    # tf.io.gfile: data_dir may be a GCS path, as in the input pipeline.
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _data_vocabulary(
    data_dir: str, name: str, problems: Sequence[Any]
) -> tuple[str, str] | None:
    """`(sha256, where)` of vocabulary `name` in `data_dir`, if known.

    The file itself, or else the hash the train shards' metadata records
    (the shards' ids are what training reads).
    """
    data = _read(os.path.join(data_dir, name))
    if data is not None:
        return _sha256(data), os.path.join(data_dir, name)
    for p in problems:
        meta = tfrecord.read_meta(data_dir, p.name, "train") or {}
        sha = meta.get("vocabularies", {}).get(name)
        if sha:
            return sha, tfrecord.meta_path(data_dir, p.name, "train")
    return None


def check_vocabularies(
    model_dir: str, data_dir: str, problems: Sequence[Any]
) -> None:
    """Fails if `data_dir` has another vocabulary than the run's checkpoint.

    Only a `model_dir` with a checkpoint and a vocabulary copy is checked (a
    run from before the copies existed gets one at this start).

    Raises:
      errors.IncompatibleCheckpointError: names the file that differs and
        what to do.
    """
    if tf.train.latest_checkpoint(model_dir) is None:
        return
    for name in vocabulary_names(problems):
        kept = os.path.join(model_dir, name)
        if not os.path.isfile(kept):
            continue
        with open(kept, "rb") as f:
            run_sha = _sha256(f.read())
        found = _data_vocabulary(data_dir, name, problems)
        if found is None or found[0] == run_sha:
            continue
        data_sha, where = found
        raise errors.IncompatibleCheckpointError(
            f"{where} holds another vocabulary {name} than the one this run "
            f"was trained with ({kept}; sha256 {data_sha[:12]}... instead of "
            f"{run_sha[:12]}...): its ids stand for other subwords, so "
            "resuming would train on mismatched ids. Pass the --data_dir "
            f"the run was started with; or copy {kept} into an empty "
            "directory, run t2t-mm-datagen there (it reuses the vocabulary "
            "it finds) and pass that --data_dir; or start a new --model_dir."
        )


def copy_vocabularies(
    model_dir: str, data_dir: str, problems: Sequence[Any]
) -> list[str]:
    """Copies the problems' vocabulary files into `model_dir`; their names.

    Call after `check_vocabularies` and the restore: an existing copy is
    replaced only when it differs, which the check allows only for a
    `model_dir` without a checkpoint.
    """
    copied = []
    for name in vocabulary_names(problems):
        data = _read(os.path.join(data_dir, name))
        if data is None:
            continue
        kept = os.path.join(model_dir, name)
        if os.path.isfile(kept):
            with open(kept, "rb") as f:
                if f.read() == data:
                    continue
        atomic_write.write_bytes(kept, data)
        copied.append(name)
    if copied:
        _log.info("copied vocabulary %s into %s", ", ".join(copied), model_dir)
    return copied
