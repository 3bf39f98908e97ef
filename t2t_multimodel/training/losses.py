"""The training objective: weighted task loss, MoE loss, weight decay.

Joint training minimises, for the problem of the current batch,
`loss_multiplier * task_loss + moe_loss (+ weight_decay)`: the task loss is
the target modality's label-smoothed cross-entropy per real target position
(`MultiModel.compute_loss`), the per-problem multipliers are T2T's (ImageNet
0.7, WSJ speech 2.0, multimodel_facts.md section 5.2) and the MoE
load-balancing losses are the layers' `add_loss` terms (paper section 2.3).
T2T's optional weight decay is `rate * sum_v ||v||^2 / (2 |v|)` over the
matrices (variables with more than one axis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf


def total_loss(
    model_losses: Mapping[str, Any], *, loss_multiplier: Any = 1.0
) -> tf.Tensor:
    """`loss_multiplier * task_loss + extra_loss` from `compute_loss`'s dict.

    Args:
      model_losses: `MultiModel.compute_loss`'s dict: `loss_sum` and
        `weight_sum` of the task loss over real target positions and
        `extra_loss`, the layers' losses (MoE load balancing).
      loss_multiplier: the problem's weight (a float or scalar tensor); it
        scales the task loss only, not the MoE loss.
    """
    task = task_loss(model_losses)
    loss = tf.cast(loss_multiplier, tf.float32) * task
    extra = model_losses.get("extra_loss")
    if extra is not None:
        loss = loss + tf.cast(extra, tf.float32)
    return loss


def task_loss(model_losses: Mapping[str, Any]) -> tf.Tensor:
    """The task loss per real target position: `loss_sum / max(1, weights)`."""
    weight_sum = tf.cast(model_losses["weight_sum"], tf.float32)
    return tf.cast(model_losses["loss_sum"], tf.float32) / tf.maximum(
        weight_sum, 1.0
    )


def weight_decay(variables: Sequence, rate: float) -> tf.Tensor:
    """T2T's weight decay: `rate * sum ||v||^2 / (2 |v|)` over matrices.

    Args:
      variables: the trainable variables.
      rate: the decay rate (T2T `weight_decay`; 0 turns it off).

    Returns:
      A float32 scalar (0.0 when `rate` is 0 or there are no matrices).
    """
    terms = []
    for v in variables:
        size = int(v.shape.num_elements() or 0)
        if rate and len(v.shape) > 1 and size > 1:
            terms.append(tf.nn.l2_loss(tf.cast(v, tf.float32)) / size)
    if not terms:
        return tf.constant(0.0, tf.float32)
    return rate * tf.add_n(terms)
