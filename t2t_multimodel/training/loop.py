"""`train`: the custom `tf.distribute` training loop of the MultiModel.

A Keras 3 `fit` cannot run under MultiWorkerMirroredStrategy, so this is a
plain `strategy.run` loop (STYLE.md section 7, hop 5). Each step trains on one
batch of one problem: the problem comes from a seeded mixture schedule
(proportional, uniform or temperature sampling, `data/mixture.py`) shared by
every worker, or, in the paper's `per_worker` mode, worker `w` always trains
problem `w mod N` while all workers share (all-reduce) the parameters.
The step itself is in `steps.py`; checkpoints in `checkpoints.py`; dev-set
evaluation in `evaluation.py`; TensorBoard in `summaries.py`.

Files written to `model_dir`: checkpoints (`model.ckpt-<step>`, the newest
`keep` kept, every `checkpoint_every` steps and at the end),
`model_config.json` (the Keras config, so decoding and export rebuild the
model without gin), `problems.json`, `eval_results.json`, and TensorBoard
events in `train/` and `eval/`. A run restarted on the same `model_dir`
resumes at the last checkpoint's step with its optimizer state. A NaN or Inf
loss stops the run with `NonFiniteLossError`, saving nothing more.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import keras
import tensorflow as tf

from t2t_multimodel.data import mixture, pipeline, tfrecord
from t2t_multimodel.training import checkpoints, optimizers
from t2t_multimodel.training import evaluation as evaluation_lib
from t2t_multimodel.training import steps as steps_lib
from t2t_multimodel.training import summaries as summaries_lib

_log = logging.getLogger(__name__)

Mixing = Literal["proportional", "uniform", "temperature", "per_worker"]
StrategyName = Literal["default", "mirrored", "multi_worker"]
EvalConfig = evaluation_lib.EvalConfig


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the run stopped."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Batching and problem mixing.

    Attributes:
      batch_size: per-replica batch, in `batch_unit`s.
      batch_unit: `"tokens"` (T2T: padded positions of the longest feature)
        or `"examples"`.
      max_length: truncation of text features (or a per-feature mapping).
      mixing: `proportional` (to `rates`, else to train-set sizes), `uniform`,
        `temperature` (sizes^(1/T)), or `per_worker` (worker w trains problem
        w mod N, the paper's setup).
      temperature: T of the temperature scheme.
      rates: relative rates for `proportional` (e.g. a Mixture's).
      shuffle_buffer: examples in each problem's shuffle buffer.
    """

    batch_size: int = 4096
    batch_unit: Literal["tokens", "examples"] = "tokens"
    max_length: int | Mapping[str, int] | None = 256
    mixing: Mixing = "proportional"
    temperature: float = 2.0
    rates: Sequence[float] | None = None
    shuffle_buffer: int = 1000


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The released Adam recipe (multimodel_facts.md section 5.2).

    Attributes:
      beta_1, beta_2, epsilon: Adam's constants (0.85, 0.997, 1e-6).
      clip_norm: global gradient-norm clipping (2.0; None: off).
      weight_decay: T2T's weight decay rate (0: off).
      lazy_sparse: LazyAdam's row-sparse embedding updates (single replica).
      kind: `"fused_adam"` (one fused kernel per variable) or `"keras_adam"`
        (Keras' Adam, epsilon inside the bias correction; for comparison).
    """

    beta_1: float = 0.85
    beta_2: float = 0.997
    epsilon: float = 1e-6
    clip_norm: float | None = 2.0
    weight_decay: float = 0.0
    lazy_sparse: bool = True
    kind: Literal["fused_adam", "keras_adam"] = "fused_adam"


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Attributes: every (steps between saves), keep (newest kept),
    save_data_position (also save the input iterators where possible)."""

    every: int = 1000
    keep: int = 5
    save_data_position: bool = True


def make_strategy(strategy: StrategyName | tf.distribute.Strategy):
    """The strategy by name; `multi_worker` reads the cluster from TF_CONFIG."""
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(
        f"strategy must be default, mirrored or multi_worker: {strategy!r}"
    )


def _worker(strategy) -> tuple[int, int, bool]:
    """`(worker_index, num_workers, is_chief)` of this process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0, 1, True
    spec = resolver.cluster_spec().as_dict()
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if task_type == "chief":
        return 0, workers, True
    index = task_id + (1 if "chief" in spec else 0)
    return index, workers, index == 0


def _train_sizes(problems: Sequence[Any], data_dir: str) -> list[float]:
    sizes = []
    for p in problems:
        meta = tfrecord.read_meta(data_dir, p.name, "train") or {}
        shards = meta.get("shards", {})
        sizes.append(float(sum(s["examples"] for s in shards.values()) or 1))
    return sizes


def modality_specs(problems: Sequence[Any]) -> dict[str, Any]:
    """Every modality spec the problems name, by name (shared by name)."""
    specs: dict[str, Any] = {}
    for p in problems:
        for key in ("inputs", "targets"):
            spec = p.features[key].modality
            if spec is not None:
                if spec.name in specs and specs[spec.name] != spec:
                    raise ValueError(
                        f"modality {spec.name!r} is specified differently by "
                        f"{p.name!r} and an earlier problem"
                    )
                specs[spec.name] = spec
    return specs


def _make_optimizer(
    config: OptimizerConfig, learning_rate: Any, replicas: int
) -> Any:
    if config.kind == "keras_adam":
        return optimizers.KerasOptimizer(
            keras.optimizers.Adam(
                learning_rate,
                beta_1=config.beta_1,
                beta_2=config.beta_2,
                epsilon=config.epsilon,
            )
        )
    return optimizers.FusedAdam(
        learning_rate,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
        # Reduced gradients are dense (steps.py), so lazy rows only apply to
        # a single replica.
        lazy_sparse=config.lazy_sparse and replicas == 1,
    )


def _write_run_files(model_dir, model, problems, rates, data) -> None:
    config = keras.saving.serialize_keras_object(model)
    checkpoints.write_json_atomic(
        os.path.join(model_dir, "model_config.json"), config
    )
    checkpoints.write_json_atomic(
        os.path.join(model_dir, "problems.json"),
        {
            "problems": [p.name for p in problems],
            "mixing": data.mixing,
            "rates": rates,
        },
    )


def train(
    *,
    problems: Sequence[Any],
    data_dir: str,
    model_dir: str,
    model_fn: Callable[..., Any],
    train_steps: int,
    learning_rate_schedule: Callable[[Any], Any] | float,
    label_smoothing: float = 0.1,
    data: DataConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    checkpoint: CheckpointConfig | None = None,
    evaluation: EvalConfig | None = None,
    strategy: StrategyName | tf.distribute.Strategy = "default",
    seed: int = 0,
    log_every: int = 100,
) -> dict[str, Any]:
    """Trains one model on `problems`; see the module docstring.

    Args:
      problems: `problems.problem.Problem` values (resolve names outside the
        library, e.g. `problems.registry.resolve`).
      data_dir: the shards and vocabulary of `t2t-mm-datagen`.
      model_dir: checkpoints, summaries and run files (created).
      model_fn: `model_fn(modality_specs=...)` -> a `MultiModel` (gin binds
        `models.build.build_model`).
      train_steps: the step to stop at (a resumed run continues up to it).
      learning_rate_schedule: `step -> rate` (`schedules.py`) or a float.
      label_smoothing: of the training loss (0.1 as released).
      data: `DataConfig` (None: its defaults).
      optimizer: `OptimizerConfig` (None: the released recipe).
      checkpoint: `CheckpointConfig` (None: its defaults).
      evaluation: `EvalConfig` (None: its defaults).
      strategy: `default`, `mirrored`, `multi_worker` or a strategy object.
      seed: seeds the weights, the data order and the mixture schedule.
      log_every: steps between log lines and train summaries.

    Returns:
      `{"step", "train_loss" (last loss per problem), "eval" (the
      eval_results dict), "model_dir"}`.

    Raises:
      NonFiniteLossError: the loss became NaN or Inf.
    """
    problems = list(problems)
    data = data or DataConfig()
    optimizer = optimizer or OptimizerConfig()
    checkpoint = checkpoint or CheckpointConfig()
    evaluation = evaluation or EvalConfig()
    if not problems:
        raise ValueError("no problem to train on")
    strategy = make_strategy(strategy)
    worker, num_workers, is_chief = _worker(strategy)
    os.makedirs(model_dir, exist_ok=True)
    keras.utils.set_random_seed(seed)
    rates = mixture.mixing_rates(
        data.rates or _train_sizes(problems, data_dir),
        "uniform" if data.mixing == "per_worker" else data.mixing,
        data.temperature,
    )
    with strategy.scope():
        model = model_fn(modality_specs=modality_specs(problems))
        opt = _make_optimizer(
            optimizer, learning_rate_schedule, strategy.num_replicas_in_sync
        )
        opt.build(model.trainable_variables)
        global_step = tf.Variable(0, dtype=tf.int64, trainable=False)
    if is_chief:
        _write_run_files(model_dir, model, problems, rates, data)

    if data.mixing == "per_worker":
        mine = [problems[mixture.worker_problem(worker, len(problems))]]
        # Workers that train the same problem split its files between them.
        groups = max(1, num_workers // len(problems))
        context = tf.distribute.InputContext(
            num_input_pipelines=groups,
            input_pipeline_id=worker // len(problems),
            num_replicas_in_sync=strategy.num_replicas_in_sync,
        )
    else:
        mine, context = problems, None
    iterators = {}
    for p in mine:
        dataset_fn = functools.partial(
            _train_dataset, p, data_dir, data, seed, context
        )
        iterators[p.name] = iter(
            strategy.distribute_datasets_from_function(dataset_fn)
        )
    ckpt = checkpoints.Checkpointer(
        model_dir,
        model=model,
        optimizer=opt,
        step=global_step,
        iterators=iterators if checkpoint.save_data_position else None,
        keep=checkpoint.keep,
        is_chief=is_chief,
        worker_index=worker,
    )
    step = ckpt.restore()
    evaluator = evaluation_lib.Evaluator(
        model,
        problems,
        functools.partial(
            _dev_dataset,
            data_dir=data_dir,
            data=data,
            batch_size=evaluation.batch_size,
        ),
        data_dir=data_dir,
        label_smoothing=label_smoothing,
        config=evaluation,
    )
    writer = summaries_lib.Summaries(model_dir, enabled=is_chief)
    loop = _Loop(
        model=model,
        optimizer=opt,
        strategy=strategy,
        problems=problems,
        mine=mine,
        iterators=iterators,
        rates=rates,
        seed=seed,
        label_smoothing=label_smoothing,
        opt_config=optimizer,
        writer=writer,
        log_every=log_every,
        train_steps=train_steps,
    )
    eval_results: dict[str, Any] = {}
    saved_step = step if ckpt.latest else -1

    def save(at: int) -> None:
        nonlocal saved_step
        global_step.assign(at)
        path = ckpt.save(at)
        saved_step = at
        if path:
            _log.info("saved %s", path)

    def run_eval(at: int) -> None:
        nonlocal eval_results
        if not is_chief:
            return
        eval_results = evaluator.evaluate(at)
        checkpoints.write_json_atomic(
            os.path.join(model_dir, "eval_results.json"), eval_results
        )
        for name, values in eval_results["problems"].items():
            scalars = {
                f"{name}/{k}": v
                for k, v in values.items()
                if isinstance(v, (int, float)) and k != "step"
            }
            writer.scalars("eval", at, scalars)
        writer.flush()

    try:
        for done in loop.run(start_step=step):
            step = done
            if checkpoint.every and step % checkpoint.every == 0:
                save(step)
            if evaluation.every and step % evaluation.every == 0:
                run_eval(step)
    finally:
        writer.flush()
    # Normal end (a NaN raised above, saving nothing): save and evaluate.
    if saved_step != step:
        save(step)
    if eval_results.get("step") != step:
        run_eval(step)
    writer.close()
    return {
        "step": step,
        "train_loss": loop.last_loss,
        "eval": eval_results,
        "model_dir": model_dir,
    }


def _train_dataset(problem, data_dir, data, seed, context, input_context):
    ctx = context or input_context
    batch_size = data.batch_size
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


def _dev_dataset(problem, *, data_dir, data, batch_size):
    return pipeline.make_dataset(
        problem,
        "dev",
        data_dir,
        batch_size=batch_size or data.batch_size,
        batch_unit=data.batch_unit,
        max_length=data.max_length,
        shuffle=False,
        repeat=False,
        training=False,
    )


class _Loop:
    """The step loop: schedule, compiled steps, logging, NaN check."""

    def __init__(
        self,
        *,
        model,
        optimizer,
        strategy,
        problems,
        mine,
        iterators,
        rates,
        seed,
        label_smoothing,
        opt_config,
        writer,
        log_every,
        train_steps,
    ):
        self.model, self.optimizer, self.strategy = model, optimizer, strategy
        self.problems, self.mine, self.iterators = problems, mine, iterators
        self.rates, self.seed = rates, seed
        self.label_smoothing, self.opt_config = label_smoothing, opt_config
        self.writer, self.log_every = writer, log_every
        self.train_steps = train_steps
        self._steps: dict[tuple[str, str], Callable] = {}
        self.last_loss: dict[str, float] = {}

    def _step_fn(self, problem) -> Callable:
        key = (problem.input_modality, problem.target_modality)
        if key not in self._steps:
            self._steps[key] = steps_lib.make_train_step(
                self.model,
                self.optimizer,
                self.strategy,
                input_modality=key[0],
                target_modality=key[1],
                label_smoothing=self.label_smoothing,
                clip_norm=self.opt_config.clip_norm,
                weight_decay=self.opt_config.weight_decay,
            )
        return self._steps[key]

    def _schedule(self, start_step: int):
        if len(self.mine) == 1:
            while True:
                yield self.mine[0]
        for index in mixture.problem_schedule(
            self.rates, self.seed, start_step
        ).as_numpy_iterator():
            yield self.problems[int(index)]

    def run(self, *, start_step: int):
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


__all__ = [
    "CheckpointConfig",
    "DataConfig",
    "EvalConfig",
    "NonFiniteLossError",
    "OptimizerConfig",
    "make_strategy",
    "modality_specs",
    "train",
]
