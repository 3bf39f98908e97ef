"""The step loop of `train`: problem schedule, compiled steps, logging.

A step is one optimizer update. Which problems it trains on is the run's
`DataConfig.step_mixing`:
- `one_per_step` (the default; T2T's single-machine multi-problem mode): one
  problem per update, from the seeded mixture schedule of `data/mixture.py`
  shared by every worker, or this worker's own problem in `per_worker` mode;
- `all_per_step` (the paper's joint step, section 4, on one device): one
  batch of every problem with a non-zero rate, whose objectives are summed
  into one gradient, clipped once and applied once;
- `k_per_step`: `problems_per_step` distinct problems per update, drawn by
  the rates from seeded per-step sets (`mixture.problem_sets`), summed.

Why the SUM of the problems' objectives, and why the rates do not weight it:
- Adam divides each parameter's step by the root of that parameter's own
  running squared gradient, so a constant factor on the objective (the
  mean's 1/N) changes the update only through epsilon and the clip. With
  the sum, a parameter that only problem p reaches (its modality nets) gets
  exactly p's gradient on every update, as in a run on p alone, and the
  shared body gets every problem's gradient on every update. That is what
  `one_per_step` lacks: there a modality parameter sees a gradient on one
  update in N, Adam's second moment is about N times smaller and its steps
  about sqrt(N) times larger (experiments/results_notes.md: why the paper
  rows needed LEARNING_RATE 0.5 / sqrt(7)).
- The clip at global norm 2.0 was set for one problem's gradient. A spike
  in one problem's gradient raises the sum's norm by as much as it would
  alone, so the clip guards each problem as it did; under the mean the
  spike would be divided by N and would have to be N times larger to be
  clipped. The price: the sum's norm grows with N (about sqrt(N) when the
  problems' gradients are unrelated), so healthy updates are clipped more
  often; a clipped update keeps its direction, and to Adam a per-update
  scale only reweights that update against the others.
- The paper's per-worker mode (and `per_worker` here) averages the workers'
  gradients, i.e. the same sum up to the constant 1/N that Adam ignores.
- Every chosen problem's batch counts once; its `loss_multiplier` (T2T's
  per-problem weights: ImageNet 0.7, speech 2.0) is the only per-problem
  weight. Rates choose WHICH problems an update trains on (`k_per_step`,
  and a rate of 0 leaves a problem out of `all_per_step`); weighting the
  sum by them as well would count them twice, and for Adam it would only
  re-balance the shared body (a modality's own parameters are
  scale-free).

One compiled step (`steps.py`) per sequence of modality pairs: one forward
pass per problem under one gradient tape, then one all-reduce, clip and
apply. On the tests' tiny three-problem model that took 27-29 ms per update
against 50-118 ms for accumulating the gradient lists of per-pair compiled
functions and applying them in a second one (benchmarks/step_mixing.py,
two runs on a loaded 2-core CPU). Its costs: the activations of all the
step's problems are held at once, and `k_per_step` traces one step per
distinct set of modality pairs it draws.

After each step the loop checks the loss (NaN or Inf stops the run), calls
the optional `on_step(step, metrics)` hook, and every `log_every` steps
writes the train summaries and a concise log line (step, problem, loss,
steps/s, examples/s, and each problem's loss in a multi-problem step).
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

# `on_step(step, metrics)`: `metrics` holds, for the finished update, `loss`
# (its objective), `grad_norm`, `learning_rate` and `examples`, and for each
# problem it trained on `<name>/loss`, `<name>/task_loss`, `<name>/moe_loss`
# and `<name>/examples`.
StepCallback = Callable[[int, Mapping[str, float]], None]

STEP_MIXINGS = ("one_per_step", "all_per_step", "k_per_step")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the run stopped."""


def check_step_mixing(data: configs.DataConfig, rates: Sequence[float]) -> None:
    """Raises ValueError if `data`'s step mixing cannot run with `rates`."""
    if data.step_mixing not in STEP_MIXINGS:
        raise ValueError(
            f"step_mixing must be one of {', '.join(STEP_MIXINGS)}: "
            f"{data.step_mixing!r}"
        )
    if data.mixing == "per_worker" and data.step_mixing != "one_per_step":
        raise ValueError(
            "per_worker mixing trains one problem per worker and step; it "
            f"needs step_mixing='one_per_step', not {data.step_mixing!r}"
        )
    positive = sum(1 for r in rates if r > 0)
    k = data.problems_per_step
    if data.step_mixing == "k_per_step" and not 1 <= k <= positive:
        raise ValueError(
            f"problems_per_step must be in [1, {positive}] (the problems "
            f"with a non-zero rate) for k_per_step, got {k}"
        )


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
      step_mixing: `one_per_step`, `all_per_step` or `k_per_step`.
      problems_per_step: k of `k_per_step`.
      on_step: called with `(step, metrics)` after every step.
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
        step_mixing: configs.StepMixing = "one_per_step",
        problems_per_step: int = 1,
        on_step: StepCallback | None = None,
    ):
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.problems, self.mine = list(problems), list(mine)
        self.iterators, self.rates, self.seed = iterators, rates, seed
        self.label_smoothing = label_smoothing
        self.optimizer_config = optimizer_config
        self.writer, self.log_every = writer, max(1, log_every)
        self.train_steps = train_steps
        self.step_mixing = step_mixing
        self.problems_per_step = problems_per_step
        self.on_step = on_step
        self._steps: dict[tuple, Callable] = {}
        self.last_loss: dict[str, float] = {}
        self.history: list[tuple[int, str, float]] = []

    def _step_fn(self, chosen: Sequence[Any]) -> Callable:
        key = tuple((p.input_modality, p.target_modality) for p in chosen)
        if key not in self._steps:
            self._steps[key] = steps_lib.make_joint_train_step(
                self.model,
                self.optimizer,
                self.strategy,
                pairs=key,
                label_smoothing=self.label_smoothing,
                clip_norm=self.optimizer_config.clip_norm,
                weight_decay=self.optimizer_config.weight_decay,
            )
        return self._steps[key]

    def _schedule(self, start_step: int) -> Iterator[tuple[Any, ...]]:
        """The problems of each step from `start_step + 1` on."""
        if len(self.mine) == 1:
            while True:
                yield (self.mine[0],)
        if self.step_mixing == "all_per_step":
            chosen = tuple(
                p for p, r in zip(self.problems, self.rates) if r > 0
            )
            while True:
                yield chosen
        if self.step_mixing == "k_per_step":
            sets = mixture.problem_sets(
                self.rates, self.problems_per_step, self.seed, start_step
            )
            for indices in sets.as_numpy_iterator():
                yield tuple(self.problems[int(i)] for i in indices)
        for index in mixture.problem_schedule(
            self.rates, self.seed, start_step
        ).as_numpy_iterator():
            yield (self.problems[int(index)],)

    def _train_one(self, step: int, chosen: Sequence[Any]) -> dict[str, Any]:
        """Runs the update of `step` on `chosen`; returns float stats."""
        multipliers = tf.constant(
            [p.loss_multiplier for p in chosen], tf.float32
        )
        stats = self._step_fn(chosen)(
            tuple(self.iterators[p.name] for p in chosen), multipliers
        )
        stats = {k: v.numpy().tolist() for k, v in stats.items()}
        loss = math.fsum(stats["loss"])
        if not math.isfinite(loss):
            bad = [
                f"{p.name!r} {stats['loss'][i]} (task "
                f"{stats['task_loss'][i]}, MoE {stats['moe_loss'][i]})"
                for i, p in enumerate(chosen)
                if not math.isfinite(stats["loss"][i])
            ]
            raise NonFiniteLossError(
                f"step {step}: the loss of {', '.join(bad) or 'the step'} is "
                f"not finite (grad norm {stats['grad_norm']}). Stopped "
                "without saving: the last checkpoint in model_dir is the "
                "last good state. Lower the learning rate or check the data."
            )
        return stats

    def run(self, *, start_step: int) -> Iterator[int]:
        """Trains from `start_step` to `train_steps`; yields each new step."""
        schedule = self._schedule(start_step)
        window = _Window()
        for step in range(start_step + 1, self.train_steps + 1):
            chosen = next(schedule)
            stats = self._train_one(step, chosen)
            metrics = {
                "loss": math.fsum(stats["loss"]),
                "grad_norm": stats["grad_norm"],
                "learning_rate": stats["learning_rate"],
                "examples": math.fsum(stats["examples"]),
            }
            for i, p in enumerate(chosen):
                for key in ("loss", "task_loss", "moe_loss", "examples"):
                    metrics[f"{p.name}/{key}"] = stats[key][i]
                self.last_loss[p.name] = stats["loss"][i]
                self.history.append((step, p.name, stats["loss"][i]))
            window.add(chosen, stats["examples"])
            if self.on_step is not None:
                self.on_step(step, metrics)
            if step % self.log_every == 0 or step == self.train_steps:
                self._log(step, chosen, stats, metrics, window)
                window = _Window()
            yield step

    def _log(self, step, chosen, stats, metrics, window) -> None:
        """Writes the train summaries and the log line of `step`."""
        elapsed = max(time.monotonic() - window.start, 1e-9)
        values = {
            k: v
            for k, v in metrics.items()
            if "/" in k or k in ("grad_norm", "learning_rate")
        }
        if len(chosen) == 1:
            # The one-problem step's summaries, as they always were.
            name = chosen[0].name
            values[f"{name}/grad_norm"] = stats["grad_norm"]
            values[f"{name}/learning_rate"] = stats["learning_rate"]
        else:
            values["loss"] = metrics["loss"]
        for name, examples in window.examples.items():
            values[f"{name}/examples_per_second"] = examples / elapsed
        values.update(
            steps_per_second=window.steps / elapsed,
            examples_per_second=sum(window.examples.values()) / elapsed,
        )
        values.update(summaries_lib.moe_statistics(self.model))
        self.writer.scalars("train", step, values)
        _log.info(
            summaries_lib.log_line(
                step=step,
                total_steps=self.train_steps,
                problem=(
                    chosen[0].name
                    if len(chosen) == 1
                    else f"{len(chosen)}_problems"
                ),
                loss=metrics["loss"],
                learning_rate=stats["learning_rate"],
                steps_per_second=values["steps_per_second"],
                examples_per_second=values["examples_per_second"],
                problem_losses=(
                    {p.name: stats["loss"][i] for i, p in enumerate(chosen)}
                    if len(chosen) > 1
                    else None
                ),
            )
        )


class _Window:
    """Steps and per-problem examples since the last log line."""

    def __init__(self):
        self.start = time.monotonic()
        self.steps = 0
        self.examples: dict[str, float] = {}

    def add(self, chosen: Sequence[Any], examples: Sequence[float]) -> None:
        self.steps += 1
        for p, n in zip(chosen, examples):
            self.examples[p.name] = self.examples.get(p.name, 0.0) + n
