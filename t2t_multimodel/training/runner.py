"""The step loop of `train`: problem schedule, compiled steps, logging.

Each step picks a problem (the seeded mixture schedule of `data/mixture.py`,
shared by every worker, or this worker's own problem in `per_worker` mode),
runs that modality pair's compiled step (`steps.py`) on the next batch of the
problem's iterator, checks the loss and every `log_every` steps writes the
train summaries and a concise log line (step, problem, loss, steps/s,
examples/s).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import tensorflow as tf

from t2t_multimodel.data import mixture
from t2t_multimodel.training import configs
from t2t_multimodel.training import steps as steps_lib
from t2t_multimodel.training import summaries as summaries_lib

_log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the run stopped."""


class StepLoop:
    """Runs training steps and yields each finished step number.

    Args:
      model: the `MultiModel`.
      optimizer: the built optimizer.
      strategy: the distribution strategy.
      problems: every problem of the run (indices of the schedule).
      mine: the problems this worker trains (one in `per_worker` mode).
      iterators: problem name -> distributed input iterator.
      rates: the mixture's sampling rates (over `problems`).
      seed: seed of the problem schedule.
      label_smoothing: of the training loss.
      optimizer_config: clipping and weight decay.
      writer: the TensorBoard summaries.
      log_every: steps between log lines and summaries.
      train_steps: the last step.
    """

    def __init__(
        self,
        *,
        model: Any,
        optimizer: Any,
        strategy: tf.distribute.Strategy,
        problems: Sequence[Any],
        mine: Sequence[Any],
        iterators: Mapping[str, Any],
        rates: Sequence[float],
        seed: int,
        label_smoothing: float,
        optimizer_config: configs.OptimizerConfig,
        writer: summaries_lib.Summaries,
        log_every: int,
        train_steps: int,
    ):
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.problems, self.mine = list(problems), list(mine)
        self.iterators, self.rates, self.seed = iterators, rates, seed
        self.label_smoothing = label_smoothing
        self.optimizer_config = optimizer_config
        self.writer, self.log_every = writer, max(1, log_every)
        self.train_steps = train_steps
        self._steps: dict[tuple[str, str], Callable] = {}
        self.last_loss: dict[str, float] = {}
        self.history: list[tuple[int, str, float]] = []

    def _step_fn(self, problem: Any) -> Callable:
        key = (problem.input_modality, problem.target_modality)
        if key not in self._steps:
            self._steps[key] = steps_lib.make_train_step(
                self.model,
                self.optimizer,
                self.strategy,
                input_modality=key[0],
                target_modality=key[1],
                label_smoothing=self.label_smoothing,
                clip_norm=self.optimizer_config.clip_norm,
                weight_decay=self.optimizer_config.weight_decay,
            )
        return self._steps[key]

    def _schedule(self, start_step: int) -> Iterator[Any]:
        if len(self.mine) == 1:
            while True:
                yield self.mine[0]
        for index in mixture.problem_schedule(
            self.rates, self.seed, start_step
        ).as_numpy_iterator():
            yield self.problems[int(index)]

    def run(self, *, start_step: int) -> Iterator[int]:
        """Trains from `start_step` to `train_steps`; yields each new step."""
        schedule = self._schedule(start_step)
        window_start, window_steps, window_examples = time.monotonic(), 0, 0.0
        for step in range(start_step + 1, self.train_steps + 1):
            problem = next(schedule)
            multiplier = tf.constant(problem.loss_multiplier, tf.float32)
            stats = self._step_fn(problem)(
                self.iterators[problem.name], multiplier
            )
            stats = {k: float(v.numpy()) for k, v in stats.items()}
            if not math.isfinite(stats["loss"]):
                raise NonFiniteLossError(
                    f"step {step}: the loss of {problem.name!r} is "
                    f"{stats['loss']} (task {stats['task_loss']}, MoE "
                    f"{stats['moe_loss']}, grad norm {stats['grad_norm']}). "
                    "Stopped without saving: the last checkpoint in model_dir "
                    "is the last good state. Lower the learning rate or check "
                    "the data."
                )
            self.last_loss[problem.name] = stats["loss"]
            self.history.append((step, problem.name, stats["loss"]))
            window_steps += 1
            window_examples += stats["examples"]
            if step % self.log_every == 0 or step == self.train_steps:
                elapsed = max(time.monotonic() - window_start, 1e-9)
                rate = window_steps / elapsed
                values = {f"{problem.name}/{k}": v for k, v in stats.items()}
                values.update(
                    learning_rate=stats["learning_rate"],
                    steps_per_second=rate,
                    examples_per_second=window_examples / elapsed,
                )
                values.update(summaries_lib.moe_statistics(self.model))
                self.writer.scalars("train", step, values)
                _log.info(
                    summaries_lib.log_line(
                        step=step,
                        total_steps=self.train_steps,
                        problem=problem.name,
                        loss=stats["loss"],
                        learning_rate=stats["learning_rate"],
                        steps_per_second=rate,
                        examples_per_second=window_examples / elapsed,
                    )
                )
                window_start, window_steps, window_examples = (
                    time.monotonic(),
                    0,
                    0.0,
                )
            yield step
