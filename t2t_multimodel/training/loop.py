"""`train`: the custom `tf.distribute` training loop of the MultiModel.

A Keras 3 `fit` cannot run under MultiWorkerMirroredStrategy, so this is a
plain `strategy.run` loop (STYLE.md section 7, hop 5). A step is one update.
By default it trains on one batch of one problem: the problem comes from a
seeded mixture schedule (proportional, uniform or temperature sampling,
`data/mixture.py`) shared by every worker, or, in the paper's `per_worker`
mode, worker `w` always trains problem `w mod N` while all workers share
(all-reduce) the parameters. `DataConfig.step_mixing` changes that:
`all_per_step` sums the objectives of one batch of every problem into each
update on one device (the paper's joint step without a worker per task),
`k_per_step` those of k problems drawn by the rates (`runner.py`, which
also says why the sum). The step itself is in `steps.py`; checkpoints in
`checkpoints.py`; dev-set evaluation in `evaluation.py`; TensorBoard in
`summaries.py`. Programs follow the progress through the `on_step(step,
metrics)` hook rather than the log lines.

Files written to `model_dir`: checkpoints (`model.ckpt-<step>`, the newest
`keep` kept, every `checkpoint_every` steps and at the end),
`model_config.json` (the Keras config, so decoding and export rebuild the
model without gin), `problems.json`, a copy of each vocabulary file the
problems use (`run_vocabulary.py`), `eval_results.json`, and TensorBoard
events in `train/` and `eval/`. A run restarted on the same `model_dir`
resumes at the last checkpoint's step with its optimizer state. A NaN or Inf
loss stops the run with `NonFiniteLossError`, saving nothing more.

Reliability: `model_dir` is checked for writing (and for room for the
`keep + 1` checkpoints it may hold at once) before anything slow is built;
a `model_dir` whose checkpoint was saved by a different model configuration
or with another vocabulary fails with `errors.IncompatibleCheckpointError`
saying what differs; nothing is written to `model_dir` before the restore
succeeds (only what an interrupted save left is removed); a full disk during
a save fails with `errors.NotWritableError`, the previous checkpoint intact
(checkpoints.py); SIGTERM (in the main thread) finishes the current step,
saves a checkpoint and returns with `"terminated": True`;
`deterministic=True` turns on TensorFlow's op determinism (identical losses
for a fixed seed on CPU, docs/RELIABILITY.md).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from t2t_multimodel import atomic_write, errors
from t2t_multimodel.data import mixture
from t2t_multimodel.training import (
    checkpoints,
    configs,
    distribution,
    inputs,
    optimizers,
    run_vocabulary,
    runner,
)
from t2t_multimodel.training import evaluation as evaluation_lib
from t2t_multimodel.training import summaries as summaries_lib

_log = logging.getLogger(__name__)

# Re-exported so that callers (and gin files) find the run's values here.
DataConfig = configs.DataConfig
OptimizerConfig = configs.OptimizerConfig
CheckpointConfig = configs.CheckpointConfig
EvalConfig = evaluation_lib.EvalConfig
NonFiniteLossError = runner.NonFiniteLossError
make_strategy = distribution.make_strategy


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
    atomic_write.write_json(
        os.path.join(model_dir, "model_config.json"), config
    )
    atomic_write.write_json(
        os.path.join(model_dir, "problems.json"),
        {
            "problems": [p.name for p in problems],
            "mixing": data.mixing,
            "rates": rates,
            "step_mixing": data.step_mixing,
            "problems_per_step": (
                data.problems_per_step
                if data.step_mixing == "k_per_step"
                else None
            ),
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
    strategy: distribution.StrategyName | tf.distribute.Strategy = "default",
    seed: int = 0,
    log_every: int = 100,
    on_start: Callable[[], None] | None = None,
    on_step: runner.StepCallback | None = None,
    deterministic: bool = False,
    dtype_policy: str = "float32",
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
      on_start: called once the model, optimizer and data are built, before
        the first step (the trainer script writes gin's operative config).
      on_step: called as `on_step(step, metrics)` after every update, on
        every worker, before that step's checkpoint and evaluation (e.g. to
        draw a progress bar). `metrics` maps names to floats: `loss` (the
        update's objective), `grad_norm`, `learning_rate`, `examples`, and
        for each problem the update trained on `<name>/loss`,
        `<name>/task_loss`, `<name>/moe_loss` and `<name>/examples`.
      deterministic: enable TensorFlow's op determinism (slower; see
        docs/RELIABILITY.md for what it does not cover).
      dtype_policy: the Keras dtype policy the model is built with;
        `"mixed_bfloat16"` computes in bfloat16 with float32 weights and
        optimizer state (no loss scaling needed) and is about 1.3x faster on
        CPUs with AVX-512 BF16 (benchmarks/train_step.py --precision).

    Returns:
      `{"step", "train_loss" (last loss per problem), "history" (`(step,
      problem, loss)` of every step of this process, one per problem of a
      multi-problem step), "eval" (the
      eval_results dict), "model_dir", "terminated" (stopped by SIGTERM
      after saving)}`.

    Raises:
      NonFiniteLossError: the loss became NaN or Inf.
      ValueError: no problem, or a step mixing that cannot run (e.g.
        `per_worker` with several problems per step).
      errors.NotWritableError: `model_dir` cannot be written, has too
        little free space, or its disk fills up during a save.
      errors.IncompatibleCheckpointError: `model_dir` holds a checkpoint of
        another model configuration or vocabulary, or a data position that
        does not fit the data (checkpoints.py).
    """
    problems = list(problems)
    data = data or DataConfig()
    optimizer = optimizer or OptimizerConfig()
    checkpoint = checkpoint or CheckpointConfig()
    evaluation = evaluation or EvalConfig()
    if not problems:
        raise ValueError("no problem to train on")
    # Layer paths are the checkpoint keys (checkpoints.weights_by_path);
    # a fresh Keras session gives the paths of a fresh process, so a run
    # resumed in the same process (tests, notebooks) finds its weights.
    keras.backend.clear_session()
    strategy = make_strategy(strategy)
    worker, num_workers, is_chief = distribution.worker_info(strategy)
    if is_chief:
        errors.ensure_writable_dir(model_dir)
        checkpoints.remove_stale_temp(model_dir)
    else:
        os.makedirs(model_dir, exist_ok=True)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    rates = mixture.mixing_rates(
        data.rates or inputs.train_sizes(problems, data_dir),
        "uniform" if data.mixing == "per_worker" else data.mixing,
        data.temperature,
    )
    runner.check_step_mixing(data, rates)
    with strategy.scope():
        # The policy is read when layers are built; restore the caller's.
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(dtype_policy)
        try:
            model = model_fn(modality_specs=modality_specs(problems))
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        opt = _make_optimizer(
            optimizer, learning_rate_schedule, strategy.num_replicas_in_sync
        )
        opt.build(model.trainable_variables)
        global_step = tf.Variable(0, dtype=tf.int64, trainable=False)
    if is_chief:
        # Nothing is written to model_dir before the restore succeeds: a
        # failed start must not leave files that refuse the right config.
        _check_compatible(model_dir, model)
        run_vocabulary.check_vocabularies(model_dir, data_dir, problems)
        # A checkpoint: the weights and Adam's two slots.
        size = 3 * sum(int(w.numpy().nbytes) for w in model.weights)
        need, need_for = checkpoints.free_space_needed(
            model_dir, size, checkpoint.keep
        )
        errors.ensure_writable_dir(model_dir, need, need_for)

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
            inputs.train_dataset, p, data_dir, data, seed, context
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
        data_fingerprint=inputs.data_fingerprint(mine, data_dir, data),
        restore_data=checkpoint.restore_data_position,
    )
    step = ckpt.restore()
    if is_chief:
        _write_run_files(model_dir, model, problems, rates, data)
        run_vocabulary.copy_vocabularies(model_dir, data_dir, problems)
    evaluator = evaluation_lib.Evaluator(
        model,
        problems,
        functools.partial(
            inputs.dev_dataset,
            data_dir=data_dir,
            data=data,
            batch_size=evaluation.batch_size,
        ),
        data_dir=data_dir,
        label_smoothing=label_smoothing,
        config=evaluation,
    )
    writer = summaries_lib.Summaries(model_dir, enabled=is_chief)
    loop = runner.StepLoop(
        model=model,
        optimizer=opt,
        strategy=strategy,
        problems=problems,
        mine=mine,
        iterators=iterators,
        rates=rates,
        seed=seed,
        label_smoothing=label_smoothing,
        optimizer_config=optimizer,
        writer=writer,
        log_every=log_every,
        train_steps=train_steps,
        step_mixing=data.step_mixing,
        problems_per_step=data.problems_per_step,
        on_step=on_step,
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
        atomic_write.write_json(
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

    if on_start is not None:
        on_start()
    terminated = threading.Event()
    previous = _on_sigterm(terminated.set)
    try:
        for done in loop.run(start_step=step):
            step = done
            if terminated.is_set():
                break
            if checkpoint.every and step % checkpoint.every == 0:
                save(step)
            if evaluation.every and step % evaluation.every == 0:
                run_eval(step)
    finally:
        writer.flush()
        _restore_sigterm(previous)
    # Normal end or SIGTERM (a NaN raised above, saving nothing): save.
    if saved_step != step:
        save(step)
    if terminated.is_set():
        _log.warning("SIGTERM: saved step %d and stopped", step)
    elif eval_results.get("step") != step:
        run_eval(step)
    writer.close()
    return {
        "step": step,
        "train_loss": loop.last_loss,
        "history": loop.history,
        "eval": eval_results,
        "model_dir": model_dir,
        "terminated": terminated.is_set(),
    }


def _on_sigterm(callback: Callable[[], None]) -> Any:
    """Calls `callback` on SIGTERM; returns the previous handler.

    Does nothing (returns None) outside the main thread, where Python
    delivers no signals.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: callback())


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _check_compatible(model_dir: str, model: Any) -> None:
    """Fails if `model_dir` holds a checkpoint of another model config."""
    path = os.path.join(model_dir, "model_config.json")
    if tf.train.latest_checkpoint(model_dir) is None or not os.path.exists(
        path
    ):
        return
    with open(path) as f:
        saved = json.load(f)
    requested = json.loads(
        json.dumps(keras.saving.serialize_keras_object(model))
    )
    # A run may resume under another dtype policy (float32 <-> mixed):
    # the checkpoint's variables are float32 either way.
    differences = errors.config_differences(saved, requested, ignore=("dtype",))
    if differences:
        raise errors.IncompatibleCheckpointError(
            f"{model_dir} holds a checkpoint of another model configuration "
            f"({path} -> the requested model): {'; '.join(differences)}. "
            "Use a new --model_dir, or the configuration of that run (its "
            "operative_config.gin)."
        )


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
