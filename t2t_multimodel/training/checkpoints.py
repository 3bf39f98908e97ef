"""Checkpoints of a training run.

`Checkpointer` wraps `tf.train.Checkpoint` and `tf.train.CheckpointManager`:
it holds the model, the optimizer (slots and step counter), the global step
and, where `tf.data` can save them, the per-problem input iterators. The
mixture's problem order needs no state: it is a function of the seed and the
step (`training/loop.py`), so resuming at step `s` resumes the problem order.

Limits of the data position: an iterator over a dataset that `tf.data` cannot
serialise (Python generators, `py_function`), or a distributed iterator that
is not trackable (MultiWorkerMirroredStrategy's), is not saved; the run then
logs it and resumes that problem's stream from its start (with the same
seed), so examples are repeated but training stays correct. Saving an
iterator also saves its shuffle buffer, so its size adds to the checkpoint.

The data position belongs to the input data it was saved with: each
checkpoint also holds a fingerprint of the shards' metadata and the batching
settings (`inputs.data_fingerprint`). A run resumed after `t2t-mm-datagen`
rewrote or re-sharded the shards (the saved `tf.data` state no longer fits:
TensorFlow fails with `FailedPreconditionError`) restores weights, optimizer
and step, logs a warning and restarts the data streams from their start.
Where the fingerprint cannot tell (a checkpoint saved before it existed), a
position that does not fit fails with `errors.IncompatibleCheckpointError`
naming `CheckpointConfig.restore_data_position = False`, which resumes
without it.

Under MultiWorkerMirroredStrategy every worker must call `save` (the save of
distributed variables may communicate); only the chief writes to
`model_dir`, the others to a scratch directory that is deleted afterwards.

A disk that fills up during a save fails with a one-paragraph
`errors.NotWritableError` (the newest complete checkpoint is left as it was,
the half-written one removed); `remove_stale_temp` removes what a save
killed half-way left (`model.ckpt-N_temp/`) when the next run starts, and
`free_space_needed` is what the trainer's pre-check asks for.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from t2t_multimodel import errors

_log = logging.getLogger(__name__)

# What an interrupted save leaves: SaveV2 writes `<prefix>_temp/part-*`
# before merging it into `<prefix>.index/.data-*`, and the state file
# `checkpoint` is written as `checkpoint.tmp<uuid hex>` and renamed.
_STALE = re.compile(r"^(model\.ckpt-\d+_temp.*|checkpoint\.tmp[0-9a-f]{32})$")
_FINGERPRINT = "data_fingerprint"
_FINGERPRINT_KEY = f"{_FINGERPRINT}/.ATTRIBUTES/VARIABLE_VALUE"


def weights_by_path(model: Any) -> tf.Module:
    """A trackable view of every weight of `model`, keyed by its Keras path.

    Keras 3 keeps sublayers held in lists or dicts out of TF's checkpoint
    object graph, so `tf.train.Checkpoint(model=model)` would silently skip
    most MultiModel weights. The run's checkpoints therefore hold this view:
    each weight under its path without the model's own name (which differs
    between a built and a deserialized model). Decoding, export and the T2T
    importer use the same view, so they restore the trainer's checkpoints
    with `tf.train.Checkpoint(model=view)`.

    Raises:
      ValueError: if two weights share a path.
    """
    prefix = model.name + "/"
    # The body components are named by Keras when gin builds them, so a
    # second model in one process gets `encoder_1/...`: key them by their
    # role (the model attribute) instead, like the explicitly named
    # modalities.
    roles = {}
    for role in ("encoder", "mixer", "decoder"):
        layer = getattr(model, role, None)
        if layer is not None:
            roles[layer.name] = role
    weights = {}
    for w in model.weights:
        key = w.path[len(prefix) :] if w.path.startswith(prefix) else w.path
        head, sep, rest = key.partition("/")
        key = roles.get(head, head) + sep + rest
        if key in weights:
            raise ValueError(f"two weights with the path {key!r}")
        weights[key] = w
    view = tf.Module(name="weights_by_path")
    view.weights = weights  # tf.Module tracks the dict's variables.
    return view


def rng_states(model: Any) -> tf.Module | None:
    """A trackable view of the model's random-generator states, by path.

    Keras 3 `SeedGenerator` states (the MoE gating noise) are in
    `model.variables` but not in `model.weights`; saving them makes a
    resumed run draw the same noise as an uninterrupted one. None when the
    model has none.
    """
    weight_ids = {id(w) for w in model.weights}
    states = {}
    for v in model.variables:
        if id(v) not in weight_ids:
            key = v.path
            while key in states:
                key += "_"
            states[key] = v
    if not states:
        return None
    view = tf.Module(name="rng_states")
    view.states = states
    return view


def remove_stale_temp(directory: str) -> list[str]:
    """Removes what a save interrupted half-way left in `directory`.

    A full disk or a killed process during `save` leaves `model.ckpt-N_temp/`
    (and possibly `checkpoint.tmp<hex>`); restoring never reads them, and
    they hold up to a checkpoint's size. Returns the names removed.
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        if not _STALE.match(name):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                continue
        removed.append(name)
    if removed:
        _log.warning(
            "removed %s left in %s by an interrupted save",
            ", ".join(removed),
            directory,
        )
    return removed


def free_space_needed(
    directory: str, checkpoint_bytes: int, keep: int | None
) -> tuple[int, str]:
    """The free bytes a run needs for its checkpoints, and what for.

    `keep` checkpoints are kept, and a new one is written before the oldest
    is deleted, so the run holds up to `keep + 1` at once; the complete
    checkpoints already in `directory` count towards them.

    Args:
      directory: the run's `model_dir`.
      checkpoint_bytes: the size of one checkpoint (weights and optimizer
        slots; the saved data position comes on top).
      keep: `CheckpointConfig.keep` (None: every checkpoint is kept, of
        which at least two are counted).

    Returns:
      `(bytes, "<n> checkpoints of this model (...)")` for the message.
    """
    state = tf.train.get_checkpoint_state(directory)
    existing = len(state.all_model_checkpoint_paths) if state else 0
    if keep:
        held = keep + 1
        why = f"keep={keep} plus the one being written"
    else:
        held = existing + 2
        why = "every checkpoint is kept (keep=None); two more counted"
    count = max(1, held - existing)
    if existing:
        why += f", {existing} already there"
    return count * checkpoint_bytes, f"{count} checkpoints of this model: {why}"


class Checkpointer:
    """Saves and restores model, optimizer, step and data iterators.

    Args:
      directory: the run's `model_dir` (checkpoints go to its root, as T2T's
        `model.ckpt-<step>` files).
      model: the Keras model (saved as `weights_by_path(model)`).
      optimizer: the optimizer (a trackable `tf.Module`).
      step: the global step variable (int64).
      iterators: problem name -> input iterator to save where possible.
      keep: how many checkpoints to keep.
      is_chief: this worker writes the real checkpoints.
      worker_index: used to name a non-chief worker's scratch directory.
      data_fingerprint: identifies the input data of `iterators`
        (`inputs.data_fingerprint`); saved with their position, and a saved
        position of other data is not restored (module docstring).
      restore_data: restore the saved data position (False: the data
        streams restart from their beginning on resume).
    """

    def __init__(
        self,
        directory: str,
        *,
        model: Any,
        optimizer: Any,
        step: tf.Variable,
        iterators: Mapping[str, Any] | None = None,
        keep: int = 5,
        is_chief: bool = True,
        worker_index: int = 0,
        data_fingerprint: str = "",
        restore_data: bool = True,
    ):
        self.directory = directory
        self.is_chief = is_chief
        self._objects = {
            "model": weights_by_path(model),
            "optimizer": optimizer,
            "step": step,
        }
        rng = rng_states(model)
        if rng is not None:  # Absent from older checkpoints: restored fresh.
            self._objects["rng"] = rng
        self._iterators = {}
        for name, iterator in (iterators or {}).items():
            if isinstance(iterator, tf.__internal__.tracking.Trackable):
                self._iterators[name] = iterator
            else:  # E.g. MultiWorkerMirroredStrategy's DistributedIterator.
                _log.warning(
                    "the input iterator of %s (%s) cannot be checkpointed; "
                    "a resumed run restarts its data stream",
                    name,
                    type(iterator).__name__,
                )
        self._keep = keep
        self._worker_index = worker_index
        self._save_data = bool(self._iterators)
        self._restore_data = restore_data
        # String variables have CPU kernels only.
        with tf.device("/cpu:0"):
            self._fingerprint = tf.Variable(
                data_fingerprint, dtype=tf.string, trainable=False
            )
        self._build()

    def _build(self) -> None:
        objects = dict(self._objects)
        if self._save_data:
            objects["data"] = tf.train.Checkpoint(**self._iterators)
            objects[_FINGERPRINT] = self._fingerprint
        self.checkpoint = tf.train.Checkpoint(**objects)
        directory = self.directory
        if not self.is_chief:
            directory = os.path.join(
                tempfile.gettempdir(),
                f"t2t_mm_worker{self._worker_index}_{os.getpid()}",
            )
        self._write_dir = directory
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            directory,
            max_to_keep=self._keep,
            checkpoint_name="model.ckpt",
            step_counter=self._objects["step"],
        )

    @property
    def latest(self) -> str | None:
        """The newest checkpoint path in `directory` (None without one)."""
        return tf.train.latest_checkpoint(self.directory)

    def restore(self) -> int:
        """Restores the newest checkpoint of `directory`; returns its step.

        Returns 0 (and changes nothing) when there is none. Objects absent
        from the checkpoint (e.g. iterators that could not be saved) keep
        their fresh state.

        Raises:
          errors.IncompatibleCheckpointError: the checkpoint's weights do not
            fit the model (the message lists the differences), or its data
            position does not fit the input data and the fingerprint could
            not tell (module docstring).
        """
        path = self.latest
        if path is None:
            return 0
        self._restore_model(path)
        tf.train.Checkpoint(**self._objects).restore(path).expect_partial()
        if self._save_data:
            self._restore_data_position(path)
        step = int(self._objects["step"].numpy())
        _log.info("restored %s at step %d", path, step)
        return step

    def _restore_model(self, path: str) -> None:
        # Every model weight must be in the checkpoint (a model built with
        # other layer names or sizes would otherwise silently keep its
        # fresh weights); optimizer slots and iterators may be absent.
        view = self._objects["model"]
        try:
            tf.train.Checkpoint(model=view).restore(
                path
            ).expect_partial().assert_existing_objects_matched()
        except (AssertionError, ValueError) as e:
            expected = {k: tuple(w.shape) for k, w in view.weights.items()}
            found = errors.checkpoint_weight_shapes(
                tf.train.list_variables(path)
            )
            detail = (
                errors.describe_weight_mismatch(expected, found)
                if found
                else str(e).splitlines()[0][:300]
            )
            raise errors.IncompatibleCheckpointError(
                f"{path} does not fit the requested model ({detail}). "
                f"Nothing was written to {self.directory}. Train with the "
                "model configuration of that run (its operative_config.gin), "
                "or use a new --model_dir."
            ) from None

    def _restore_data_position(self, path: str) -> None:
        if not self._restore_data:
            _log.warning(
                "not restoring the data position of %s "
                "(CheckpointConfig.restore_data_position = False): the data "
                "streams restart from their beginning",
                path,
            )
            return
        reader = tf.train.load_checkpoint(path)
        saved = self._fingerprint.numpy()
        if reader.has_tensor(_FINGERPRINT_KEY):
            saved = reader.get_tensor(_FINGERPRINT_KEY)
        if saved != self._fingerprint.numpy():
            _log.warning(
                "the input data changed since %s was saved (its shards were "
                "rewritten or re-sharded by t2t-mm-datagen, or the batching "
                "settings changed): its data position does not apply, so the "
                "data streams restart from their beginning (weights, "
                "optimizer state and step are restored)",
                path,
            )
            return
        data = tf.train.Checkpoint(**self._iterators)
        try:
            tf.train.Checkpoint(data=data).restore(path).expect_partial()
        except tf.errors.OpError as e:
            raise errors.IncompatibleCheckpointError(
                f"the input data position saved in {path} does not fit the "
                f"input data any more ({errors.condense_message(e.message)}): "
                "the shards were probably rewritten or re-sharded since, or "
                "the batching settings changed. Resume with the data the run "
                "was started with, or without the saved position (the data "
                "streams restart from their beginning; weights, optimizer "
                "state and step are restored): --gin_bindings="
                "'configs.CheckpointConfig.restore_data_position = False'."
            ) from None

    def save(self, step: int) -> str | None:
        """Saves at `step` (every worker calls it); returns the chief's path.

        Raises:
          errors.NotWritableError: the disk is full (the newest complete
            checkpoint is left as it was; the partial one is removed).
        """
        try:
            path = self._save(step)
        except tf.errors.ResourceExhaustedError as e:
            if not is_disk_full(e):
                raise
            self._remove_partial(step)
            raise disk_full_error(
                self._write_dir, f"saving the checkpoint of step {step}", e
            ) from None
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
            return None
        return path

    def _save(self, step: int) -> str:
        try:
            return self.manager.save(checkpoint_number=step)
        except tf.errors.ResourceExhaustedError:
            raise
        except (tf.errors.OpError, ValueError, TypeError) as e:
            if not self._save_data:
                raise
            # An iterator over a non-serialisable dataset: keep training and
            # checkpoint without the data position (module docstring).
            _log.warning(
                "cannot save the input iterators (%s); checkpoints will not "
                "hold the data position",
                str(e).splitlines()[0],
            )
            self._save_data = False
            self._build()
            return self.manager.save(checkpoint_number=step)

    def _remove_partial(self, step: int) -> None:
        """Removes what the failed save of `step` left."""
        directory = self._write_dir
        remove_stale_temp(directory)
        if tf.train.latest_checkpoint(directory) == os.path.join(
            directory, f"model.ckpt-{step}"
        ):
            return  # Complete: only the state file or a deletion failed.
        for name in os.listdir(directory):
            if name.startswith(f"model.ckpt-{step}."):
                os.remove(os.path.join(directory, name))


def is_disk_full(error: BaseException) -> bool:
    """Whether a TF error is a full disk, not e.g. out of memory.

    TF reports the POSIX write errors ENOSPC and EDQUOT as
    `ResourceExhaustedError`, with the OS's text.
    """
    text = str(error)
    return isinstance(error, tf.errors.ResourceExhaustedError) and (
        "No space left on device" in text or "quota exceeded" in text.lower()
    )


def disk_full_error(
    directory: str, what: str, error: BaseException
) -> errors.NotWritableError:
    """The one-paragraph error of a disk that filled up during `what`.

    Names the newest complete checkpoint in `directory` (left as it was)
    and its size, and says to free space and rerun to resume from it.
    """
    latest = tf.train.latest_checkpoint(directory)
    if latest:
        size = sum(
            os.path.getsize(os.path.join(directory, n))
            for n in os.listdir(directory)
            if n.startswith(os.path.basename(latest) + ".")
        )
        kept = (
            f"the newest complete checkpoint, {latest}, is intact. Free some "
            f"space (a checkpoint takes about {size:,} bytes) and rerun the "
            "same command to resume from it"
        )
    else:
        kept = (
            "no checkpoint was saved yet. Free some space and rerun the same "
            "command"
        )
    message = getattr(error, "message", None) or str(error)
    # TF's first line names the file and the OS error; the rest repeats it.
    first = errors.condense_message(message.splitlines()[0])
    return errors.NotWritableError(
        f"the disk of {directory} is full: {what} failed ({first}); {kept}."
    )
