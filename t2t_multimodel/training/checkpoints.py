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

Under MultiWorkerMirroredStrategy every worker must call `save` (the save of
distributed variables may communicate); only the chief writes to
`model_dir`, the others to a scratch directory that is deleted afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

_log = logging.getLogger(__name__)


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
        self._build()

    def _build(self) -> None:
        objects = dict(self._objects)
        if self._save_data:
            objects["data"] = tf.train.Checkpoint(**self._iterators)
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
        """
        path = self.latest
        if path is None:
            return 0
        # Every model weight must be in the checkpoint (a model built with
        # other layer names or sizes would otherwise silently keep its
        # fresh weights); optimizer slots and iterators may be absent.
        tf.train.Checkpoint(model=self._objects["model"]).restore(
            path
        ).expect_partial().assert_existing_objects_matched()
        self.checkpoint.restore(path).expect_partial()
        step = int(self._objects["step"].numpy())
        _log.info("restored %s at step %d", path, step)
        return step

    def save(self, step: int) -> str | None:
        """Saves at `step` (every worker calls it); returns the chief's path."""
        try:
            path = self.manager.save(checkpoint_number=step)
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
            path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
            return None
        return path
