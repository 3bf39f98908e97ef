"""TensorBoard summaries and the periodic log line of a training run.

Train scalars go to `model_dir/train` and evaluation scalars to
`model_dir/eval` (as T2T's estimator did): per-problem losses and metrics,
the learning rate, the gradient norm, steps/s and examples/s, and the MoE
load statistics that `SparseMoE` keeps as non-trainable variables
(`importance_cv2`, `load_cv2`, `assignment_count`, `dropped_count`, the last
two also as a dropped fraction).

A disk that fills up under the event files fails with the one-paragraph
`errors.NotWritableError` of `checkpoints.disk_full_error` (the newest
checkpoint is intact); the writers then stay quiet, so that the `finally`
blocks that flush them do not replace that error with another.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import tensorflow as tf

from t2t_multimodel.training import checkpoints

_log = logging.getLogger(__name__)

MOE_STATISTICS = ("importance_cv2", "load_cv2", "assignment_count")


def _local_value(variable: Any) -> float:
    """A variable's value on this worker, without cross-worker traffic."""
    value = getattr(variable, "value", variable)
    strategy = tf.distribute.get_strategy()
    if isinstance(value, tf.distribute.DistributedValues):
        value = strategy.experimental_local_results(value)[0]
    return float(tf.convert_to_tensor(value).numpy())


def moe_statistics(model: Any) -> dict[str, float]:
    """The SparseMoE statistics of the last forward pass, by layer path.

    Returns:
      `{"moe/<layer path>/<statistic>": value}`, plus
      `.../dropped_fraction` (dropped / assigned) where both exist.
    """
    stats: dict[str, float] = {}
    for var in model.non_trainable_variables:
        path = getattr(var, "path", var.name)
        layer, _, name = path.rpartition("/")
        if name in MOE_STATISTICS or name == "dropped_count":
            stats[f"moe/{layer}/{name}"] = _local_value(var)
    for key in list(stats):
        if key.endswith("/dropped_count"):
            prefix = key[: -len("dropped_count")]
            assigned = stats.get(prefix + "assignment_count", 0.0)
            stats[prefix + "dropped_fraction"] = (
                stats[key] / assigned if assigned else 0.0
            )
    return stats


class Summaries:
    """Writes scalars for TensorBoard (chief only; others write nothing).

    Args:
      model_dir: the run directory.
      enabled: False on non-chief workers.
    """

    def __init__(self, model_dir: str, *, enabled: bool = True):
        self.enabled = enabled
        self._writers: dict[str, Any] = {}
        self._model_dir = model_dir
        self._disk_full = False

    @contextlib.contextmanager
    def _disk_full_check(self, what: str) -> Iterator[None]:
        try:
            yield
        except tf.errors.ResourceExhaustedError as e:
            if not checkpoints.is_disk_full(e):
                raise
            self._disk_full = True
            raise checkpoints.disk_full_error(
                self._model_dir, f"writing the TensorBoard events ({what})", e
            ) from None

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(
                os.path.join(self._model_dir, name)
            )
        return self._writers[name]

    def scalars(
        self, split: str, step: int, values: Mapping[str, float]
    ) -> None:
        """Writes `values` (name -> number) under `model_dir/<split>`."""
        if not self.enabled or self._disk_full:
            return
        with self._disk_full_check(split):
            with self._writer(split).as_default(step=step):
                for name, value in values.items():
                    tf.summary.scalar(name, float(value))

    def flush(self) -> None:
        if self._disk_full:
            return
        with self._disk_full_check("flush"):
            for writer in self._writers.values():
                writer.flush()

    def close(self) -> None:
        if not self._disk_full:
            with self._disk_full_check("close"):
                for writer in self._writers.values():
                    writer.close()
        self._writers = {}


def log_line(
    *,
    step: int,
    total_steps: int,
    problem: str,
    loss: float,
    learning_rate: float,
    steps_per_second: float,
    examples_per_second: float,
    problem_losses: Mapping[str, float] | None = None,
) -> str:
    """The concise periodic progress line.

    `problem` is one word (a problem name, or e.g. `3_problems` for a
    multi-problem step, whose per-problem losses `problem_losses` follow
    the line's usual fields).
    """
    line = (
        f"step {step}/{total_steps}  {problem}  loss {loss:.4f}  "
        f"lr {learning_rate:.3g}  {steps_per_second:.2f} steps/s  "
        f"{examples_per_second:.1f} examples/s"
    )
    if problem_losses:
        losses = ", ".join(f"{k} {v:.4f}" for k, v in problem_losses.items())
        line += f"  ({losses})"
    return line
