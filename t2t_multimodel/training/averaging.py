"""Averaging the last checkpoints of a run (T2T's `avg_checkpoints.py`).

T2T reported its BLEU scores on the mean of the last checkpoints' weights
(`t2t-avg-all`, `utils/avg_checkpoints.py`); `average_checkpoints` does the
same for a `t2t-mm-trainer` run and writes a directory that every program
takes as its `--model_dir`.

What is averaged: every floating-point tensor of the checkpoints, i.e. the
model weights and the optimizer's slots (Adam's moments; T2T averaged every
variable too). Every other tensor comes from the newest checkpoint: the
global step and optimizer iteration count (T2T reset the step to 0 instead),
the MoE noise generators' states, the input iterators' positions and the
object graph. The result is written tensor by tensor with the newest
checkpoint's keys and object graph, without rebuilding the model, so it has
exactly the structure of a trainer checkpoint: the decoder and exporter
(`decoding/restore.py: restore_model`) read its weights, and the trainer
resumes from it (averaged weights and slots, the newest step, LR schedule
and data position). Averaging slots rather than dropping them keeps that
resume strict: `Checkpointer.restore` would otherwise restart Adam from zero
moments at a late step.

Output directory: the averaged checkpoint `model.ckpt-<newest step>` with
its `checkpoint` file, `averaging.json` (which checkpoints were averaged),
and a copy of the run's top-level files (`model_config.json`,
`problems.json`, `operative_config.gin`, vocabularies if there, ...; not
`eval_results.json`, which scores the unaveraged model) plus any
`extra_files` (e.g. the vocabulary from `data_dir`). It is built in a
temporary sibling directory and renamed into place, so a reader never sees
half of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from t2t_multimodel import errors

_LOG = logging.getLogger(__name__)

MODEL_CONFIG = "model_config.json"
# Files of `model_dir` that are not copied: checkpoint files and the dev
# scores of the unaveraged model.
_CHECKPOINT_FILE = re.compile(
    r"^(checkpoint|.*\.index|.*\.data-\d{5}-of-\d{5})$"
)
_NOT_COPIED = ("eval_results.json",)


class AveragingError(errors.UserError, ValueError):
    """The checkpoints cannot be averaged as asked; the message says why."""


def _checkpoint_paths(model_dir: str) -> list[str]:
    """The run's checkpoints (their prefixes) from oldest to newest."""
    state = tf.train.get_checkpoint_state(model_dir)
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path and (
        state.model_checkpoint_path not in paths
    ):
        paths.append(state.model_checkpoint_path)
    found = []
    for path in paths:
        # Absolute paths of a run that was moved: look beside `checkpoint`.
        for candidate in (path, os.path.basename(path)):
            candidate = os.path.join(model_dir, candidate)
            if tf.io.gfile.exists(candidate + ".index"):
                found.append(candidate)
                break
    return found


def _select(model_dir: str, num_last: int) -> list[str]:
    if num_last < 1:
        raise AveragingError(f"num_last must be at least 1, not {num_last}")
    paths = _checkpoint_paths(model_dir)
    if len(paths) < num_last:
        names = ", ".join(os.path.basename(p) for p in paths) or "none"
        raise AveragingError(
            f"{model_dir} holds {len(paths)} checkpoints ({names}), fewer "
            f"than num_last={num_last}. Average at most {len(paths)}, or keep "
            "more checkpoints while training (CheckpointConfig.keep, 5 by "
            "default)."
        )
    return paths[-num_last:]


def _check_compatible(paths: Sequence[str]) -> None:
    """Every checkpoint has the newest one's model weights and float keys."""
    newest = tf.train.load_checkpoint(paths[-1])
    shapes = newest.get_variable_to_shape_map()
    dtypes = newest.get_variable_to_dtype_map()
    weights = errors.checkpoint_weight_shapes(shapes.items())
    for path in paths[:-1]:
        reader = tf.train.load_checkpoint(path)
        other_shapes = reader.get_variable_to_shape_map()
        other_dtypes = reader.get_variable_to_dtype_map()
        other_weights = errors.checkpoint_weight_shapes(other_shapes.items())
        differences = []
        if other_weights != weights:
            differences.append(
                errors.describe_weight_mismatch(weights, other_weights)
            )
        else:
            differences += [
                f"{key} {other_shapes.get(key, 'absent')} "
                f"{getattr(other_dtypes.get(key), 'name', '')}"
                for key, dtype in dtypes.items()
                if dtype.is_floating
                and (
                    other_dtypes.get(key) != dtype
                    or list(other_shapes.get(key, ())) != list(shapes[key])
                )
            ][:4]
        if differences:
            raise errors.IncompatibleCheckpointError(
                f"cannot average {os.path.basename(path)} with "
                f"{os.path.basename(paths[-1])}: they hold different models "
                f"(the newest's weights, checked in "
                f"{os.path.basename(path)}: {'; '.join(differences)}). "
                "Average only checkpoints of one configuration (a smaller "
                "num_last)."
            )


def _averaged_tensors(paths: Sequence[str]) -> tuple[list[str], list]:
    """The newest checkpoint's keys and values, float ones averaged."""
    readers = [tf.train.load_checkpoint(p) for p in paths]
    dtypes = readers[-1].get_variable_to_dtype_map()
    keys = sorted(dtypes)
    kept = [k for k in keys if not dtypes[k].is_floating]
    # RestoreV2 reads any dtype (strings, the iterators' variant states).
    newest = tf.raw_ops.RestoreV2(
        prefix=paths[-1],
        tensor_names=kept,
        shape_and_slices=[""] * len(kept),
        dtypes=[dtypes[k] for k in kept],
    )
    values = dict(zip(kept, newest))
    for key in keys:
        if key in values:
            continue
        # One tensor at a time: memory is the output plus one float64 sum.
        total = sum(np.asarray(r.get_tensor(key), np.float64) for r in readers)
        mean = total / len(readers)
        values[key] = tf.constant(mean.astype(dtypes[key].as_numpy_dtype))
    return keys, [values[k] for k in keys]


def _copy_run_files(
    model_dir: str, target: str, extra_files: Sequence[str]
) -> list[str]:
    copied = []
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if (
            os.path.isfile(path)
            and not name.startswith(".")
            and not _CHECKPOINT_FILE.match(name)
            and name not in _NOT_COPIED
        ):
            shutil.copy2(path, os.path.join(target, name))
            copied.append(name)
    for path in extra_files:
        if not os.path.isfile(path):
            raise AveragingError(f"{path} (in extra_files) is not a file")
        shutil.copy2(path, os.path.join(target, os.path.basename(path)))
        copied.append(os.path.basename(path))
    return copied


def _write(paths: Sequence[str], target: str) -> str:
    """The averaged checkpoint and its `checkpoint` file in `target`."""
    keys, tensors = _averaged_tensors(paths)
    name = os.path.basename(paths[-1])
    prefix = os.path.join(target, name)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=keys,
        shape_and_slices=[""] * len(keys),
        tensors=tensors,
    )
    with open(os.path.join(target, "checkpoint"), "w") as f:
        f.write(
            f'model_checkpoint_path: "{name}"\n'
            f'all_model_checkpoint_paths: "{name}"\n'
        )
    return prefix


def _output_state(output_dir: str, overwrite: bool) -> str:
    """`absent`, `empty` or `replace`; raises if it may not be written."""
    if not os.path.lexists(output_dir):
        return "absent"
    if os.path.isdir(output_dir) and not os.listdir(output_dir):
        return "empty"
    if not overwrite or not os.path.isdir(output_dir):
        raise AveragingError(
            f"{output_dir} exists and is not an empty directory: choose "
            "another output directory, delete it, or overwrite it."
        )
    return "replace"


def _publish(staging: str, output_dir: str, overwrite: bool) -> None:
    """Renames `staging` to `output_dir` (replacing it if `overwrite`)."""
    old = None
    state = _output_state(output_dir, overwrite)
    if state == "empty":
        os.rmdir(output_dir)
    elif state == "replace":
        old = tempfile.mkdtemp(
            prefix=f".{os.path.basename(output_dir)}.old-",
            dir=os.path.dirname(output_dir),
        )
        os.rename(output_dir, os.path.join(old, "dir"))
    os.rename(staging, output_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def average_checkpoints(
    model_dir: str,
    *,
    num_last: int,
    output_dir: str,
    extra_files: Sequence[str] = (),
    overwrite: bool = False,
) -> str:
    """Averages the last `num_last` checkpoints of `model_dir`.

    Args:
      model_dir: a `t2t-mm-trainer` run (checkpoints, `model_config.json`).
      num_last: how many of the newest checkpoints to average (1 copies the
        newest).
      output_dir: the new directory, usable as any program's `--model_dir`;
        local. Must not exist or be empty unless `overwrite`.
      extra_files: more files to copy into it (e.g. the vocabulary from
        `data_dir`, so that decoding needs no `--data_dir`).
      overwrite: replace an existing `output_dir`.

    Returns:
      The averaged checkpoint's path, `output_dir/model.ckpt-<step>`.

    Raises:
      AveragingError: `num_last` < 1 or more than the checkpoints kept (the
        message says how many there are), no `model_config.json`,
        `output_dir` is `model_dir` or exists.
      errors.IncompatibleCheckpointError: the checkpoints hold different
        models.
    """
    model_dir = os.path.abspath(model_dir)
    output_dir = os.path.abspath(output_dir)
    if os.path.realpath(model_dir) == os.path.realpath(output_dir):
        raise AveragingError(
            f"output_dir is model_dir ({model_dir}): write the averaged "
            "checkpoint to a new directory (the run's own must stay intact)."
        )
    if not os.path.isfile(os.path.join(model_dir, MODEL_CONFIG)):
        raise AveragingError(
            f"{model_dir} has no {MODEL_CONFIG}: it is not a training "
            "directory of t2t-mm-trainer."
        )
    paths = _select(model_dir, num_last)
    _check_compatible(paths)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    _output_state(output_dir, overwrite)  # Fails before the slow part.
    staging = tempfile.mkdtemp(
        prefix=f".{os.path.basename(output_dir)}.tmp-", dir=parent
    )
    try:
        prefix = _write(paths, staging)
        copied = _copy_run_files(model_dir, staging, extra_files)
        with open(os.path.join(staging, "averaging.json"), "w") as f:
            json.dump(
                {
                    "model_dir": model_dir,
                    "checkpoints": [os.path.basename(p) for p in paths],
                    "copied": copied,
                },
                f,
                indent=2,
            )
        _publish(staging, output_dir, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    _LOG.info(
        "averaged %d checkpoints of %s into %s",
        len(paths),
        model_dir,
        output_dir,
    )
    return os.path.join(output_dir, os.path.basename(prefix))


__all__ = ["AveragingError", "average_checkpoints"]
