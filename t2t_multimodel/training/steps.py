"""The compiled training and evaluation steps.

One training `tf.function` per sequence of (input modality, target modality)
pairs: problems with different modalities have different shapes and
sub-graphs, and each function traces once per input spec (the iterators are
arguments, so every batch shape of the same pipelines reuses one trace). One
pair is the one-problem-per-step update; several pairs sum the objectives of
one batch of each problem into one update (the paper's joint step, on one
device).

Distribution: the training step runs under `strategy.run`. Gradients are
taken for EVERY trainable variable, with zeros for the ones the problem does
not touch, densified, and all-reduced in the same order on every replica and
worker. That keeps the collectives of different problems identical, which
the paper's one-problem-per-worker mode needs (worker 0 on a translation
problem, worker 1 on an image problem, parameters in sync). The reduced
gradients are clipped by their global norm (2.0 in the recipe) and applied
by the optimizer; scalar statistics are reduced the same way so every worker
sees the same loss (and stops together on a NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from t2t_multimodel.training import losses as losses_lib

Stats = dict[str, tf.Tensor]


def _densify(grad: Any) -> tf.Tensor:
    if isinstance(grad, tf.IndexedSlices):
        return tf.convert_to_tensor(grad)
    return grad


def clip_by_norm_if_needed(
    grads: list, grad_norm: tf.Tensor, clip_norm: float
) -> list:
    """`tf.clip_by_global_norm(grads, clip_norm)[0]`, without the multiply
    when nothing is clipped.

    Clipping scales every gradient by `clip_norm / max(norm, clip_norm)`;
    when the norm is at most `clip_norm` that factor is 1 and the multiply
    is one more read and write of every gradient (28M floats in the T2T v1.9
    tiny model), so the gradients pass through unchanged instead. A NaN or
    Inf norm takes the clipping branch, which (as `tf.clip_by_global_norm`)
    turns the gradients into NaN for the trainer's non-finite check.
    """

    def clip():
        return tf.clip_by_global_norm(grads, clip_norm, use_norm=grad_norm)[0]

    return tf.cond(grad_norm <= clip_norm, lambda: list(grads), clip)


def _update_fn(
    model: Any,
    optimizer: Any,
    strategy: tf.distribute.Strategy,
    *,
    pairs: Sequence[tuple[str, str]],
    label_smoothing: float,
    clip_norm: float | None,
    weight_decay: float,
) -> Callable[[Sequence[Any], tf.Tensor], Stats]:
    """The replica function of one update on one batch per pair.

    One forward pass per problem under one gradient tape, the gradient of
    the SUM of their objectives (`loss_multiplier_p * task_loss_p + that
    pass's MoE loss`, plus the weight decay once), then one all-reduce, one
    clip and one optimizer apply. Its stats are `[len(pairs)]` vectors
    (`loss`, `task_loss`, `moe_loss`, `examples`) and scalars (`grad_norm`,
    `learning_rate`), reduced over replicas.
    """
    pairs = [tuple(p) for p in pairs]
    if not pairs:
        raise ValueError("a training step needs at least one problem")
    variables = list(model.trainable_variables)
    # The tf.Variables behind the Keras ones: `tape.gradient` builds zeros
    # for unconnected sources from their (TF) dtypes.
    sources = [getattr(v, "value", v) for v in variables]
    replicas = strategy.num_replicas_in_sync
    keras_reduces = getattr(optimizer, "all_reduces_gradients", False)

    def step_fn(batches, loss_multipliers):
        per_problem = {"loss": [], "task_loss": [], "moe_loss": []}
        examples = []
        with tf.GradientTape() as tape:
            for i, (features, (inputs, targets)) in enumerate(
                zip(batches, pairs)
            ):
                outputs = model(
                    features,
                    input_modality=inputs,
                    target_modality=targets,
                    training=True,
                )
                # Right after its own call: `model.losses` are this pass's.
                model_losses = model.compute_loss(
                    features,
                    outputs,
                    target_modality=targets,
                    label_smoothing=label_smoothing,
                )
                per_problem["loss"].append(
                    losses_lib.total_loss(
                        model_losses, loss_multiplier=loss_multipliers[i]
                    )
                )
                per_problem["task_loss"].append(
                    losses_lib.task_loss(model_losses)
                )
                per_problem["moe_loss"].append(
                    tf.cast(model_losses["extra_loss"], tf.float32)
                )
                examples.append(
                    tf.cast(tf.shape(features["targets"])[0], tf.float32)
                )
            # add_n of one tensor is that tensor: the one-problem update's
            # objective is what it always was.
            loss = tf.add_n(per_problem["loss"])
            if weight_decay:
                loss += losses_lib.weight_decay(variables, weight_decay)
            # Each replica's loss is a mean over its batch; average them.
            scaled = loss / replicas
        grads = tape.gradient(
            scaled, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        ctx = tf.distribute.get_replica_context()
        if replicas > 1 and not keras_reduces:
            # Sparse (embedding) gradients as dense tensors: a problem that
            # does not use the embedding has a dense zero there, and every
            # worker must run the same collective for each variable.
            grads = ctx.all_reduce(
                tf.distribute.ReduceOp.SUM, [_densify(g) for g in grads]
            )
        grad_norm = tf.linalg.global_norm(grads)
        if clip_norm:
            grads = clip_by_norm_if_needed(grads, grad_norm, clip_norm)
        learning_rate = optimizer.current_learning_rate()
        optimizer.apply(grads, variables)
        stats = {k: tf.stack(v) for k, v in per_problem.items()}
        stats.update(grad_norm=grad_norm, learning_rate=learning_rate)
        examples = tf.stack(examples)
        if replicas > 1:
            stats = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, stats)
            examples = ctx.all_reduce(tf.distribute.ReduceOp.SUM, examples)
        stats["examples"] = examples
        return stats

    return step_fn


def make_joint_train_step(
    model: Any,
    optimizer: Any,
    strategy: tf.distribute.Strategy,
    *,
    pairs: Sequence[tuple[str, str]],
    label_smoothing: float,
    clip_norm: float | None,
    weight_decay: float = 0.0,
) -> Callable[[Sequence[Any], tf.Tensor], Stats]:
    """Returns `train_step(iterators, loss_multipliers) -> stats`.

    One update from the next batch of each of `len(pairs)` problems, the
    gradient of the sum of their objectives (`_update_fn`; why the sum is
    `runner.py`'s docstring). With one pair it is `make_train_step`'s
    update.

    Args:
      model: a built `MultiModel`.
      optimizer: `optimizers.FusedAdam` (or `KerasOptimizer`), built.
      strategy: the distribution strategy the model was built under.
      pairs: per problem of the update, its (input modality, target
        modality) keys, in the order of the iterators.
      label_smoothing: smoothing of the training loss.
      clip_norm: global-norm clipping of the reduced gradients (None: off).
      weight_decay: T2T's weight-decay rate (0: off).

    Returns:
      The compiled step, called with a tuple of one iterator per pair and
      the float32 `[len(pairs)]` loss multipliers. Its stats (the same on
      every worker): per problem, `[len(pairs)]` vectors of `loss` (its
      term of the objective), `task_loss`, `moe_loss` and `examples` (its
      global batch size); for the update, `grad_norm` (before clipping) and
      `learning_rate` (the rate used).
    """
    step_fn = _update_fn(
        model,
        optimizer,
        strategy,
        pairs=pairs,
        label_smoothing=label_smoothing,
        clip_norm=clip_norm,
        weight_decay=weight_decay,
    )

    @tf.function
    def train_step(iterators, loss_multipliers):
        batches = tuple(next(it) for it in iterators)
        stats = strategy.run(step_fn, args=(batches, loss_multipliers))
        # Already reduced: every replica holds the same values.
        return {
            k: strategy.experimental_local_results(v)[0]
            for k, v in stats.items()
        }

    return train_step


def make_train_step(
    model: Any,
    optimizer: Any,
    strategy: tf.distribute.Strategy,
    *,
    input_modality: str,
    target_modality: str,
    label_smoothing: float,
    clip_norm: float | None,
    weight_decay: float = 0.0,
) -> Callable[[Any, tf.Tensor], Stats]:
    """Returns `train_step(iterator, loss_multiplier) -> stats`.

    The one-problem update (what the benchmarks time).

    Args:
      model: a built `MultiModel`.
      optimizer: `optimizers.FusedAdam` (or `KerasOptimizer`), built.
      strategy: the distribution strategy the model was built under.
      input_modality: key of the problem's input modality.
      target_modality: key of the problem's target modality.
      label_smoothing: smoothing of the training loss.
      clip_norm: global-norm clipping of the reduced gradients (None: off).
      weight_decay: T2T's weight-decay rate (0: off).

    Returns:
      The compiled step; its stats (the same on every worker): `loss` (the
      optimised objective), `task_loss`, `moe_loss`, `grad_norm`,
      `learning_rate` (the rate used), `examples` (global batch size).
    """
    step_fn = _update_fn(
        model,
        optimizer,
        strategy,
        pairs=[(input_modality, target_modality)],
        label_smoothing=label_smoothing,
        clip_norm=clip_norm,
        weight_decay=weight_decay,
    )

    @tf.function
    def train_step(iterator, loss_multiplier):
        multipliers = tf.reshape(tf.cast(loss_multiplier, tf.float32), [1])
        stats = strategy.run(step_fn, args=((next(iterator),), multipliers))
        # Already reduced: every replica holds the same values.
        stats = {
            k: strategy.experimental_local_results(v)[0]
            for k, v in stats.items()
        }
        return {k: v[0] if v.shape.rank else v for k, v in stats.items()}

    return train_step


def make_eval_step(
    model: Any,
    *,
    input_modality: str,
    target_modality: str,
    label_smoothing: float,
) -> Callable[[Mapping[str, tf.Tensor]], Stats]:
    """Returns `eval_step(features) -> {logits, loss sums}` (inference mode).

    `loss_sum` is label-smoothed (the training loss), `nll_sum` is the plain
    cross-entropy (for the log-perplexity), `weight_sum` counts real target
    positions; the MoE loss is left out of both.
    """

    # Dev batches vary in length: one generalized trace, not one each.
    @tf.function(reduce_retracing=True)
    def eval_step(features):
        outputs = model(
            features,
            input_modality=input_modality,
            target_modality=target_modality,
            training=False,
        )
        smoothed = model.compute_loss(
            features,
            outputs,
            target_modality=target_modality,
            label_smoothing=label_smoothing,
        )
        plain = model.compute_loss(
            features,
            outputs,
            target_modality=target_modality,
            label_smoothing=0.0,
        )
        return {
            "logits": outputs["logits"],
            "loss_sum": smoothed["loss_sum"],
            "nll_sum": plain["loss_sum"],
            "weight_sum": smoothed["weight_sum"],
        }

    return eval_step
