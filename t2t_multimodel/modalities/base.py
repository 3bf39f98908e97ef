"""The `Modality` base class and the shared label-smoothed cross-entropy.

A modality net maps one data type into the body's sequence of `hidden_dim`
vectors (`bottom`, `targets_bottom`) and back out (`top`); the paper shares
modality nets by modality, never by task (section 2). `Modality.loss` is the
label-smoothed cross-entropy every modality reports, computed like T2T: the
smoothed cross-entropy minus its minimum, so that a perfect prediction costs 0.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf
from keras import ops

ModalityOutput = dict  # {"hidden": [B, L, d], "mask": bool [B, L] | None,
#                         "spatial_shape": int tensor (H', W') | None}


def smoothed_cross_entropy(
    logits: Any, targets: Any, *, label_smoothing: float = 0.0
) -> Any:
    """Per-position label-smoothed cross-entropy minus its minimum (T2T).

    The soft target puts `c = 1 - label_smoothing` on the label and
    `low = label_smoothing / (V - 1)` on every other class. T2T subtracts the
    entropy of that soft target, `-(c ln c + (V - 1) low ln(low + 1e-20))`, so
    a prediction equal to the soft target costs 0.

    Args:
      logits: float `[..., V]`.
      targets: int `[...]` class ids.
      label_smoothing: the smoothing mass in [0, 1).

    Returns:
      float `[...]` losses.
    """
    logits = tf.cast(logits, tf.float32)
    vocab_size = logits.shape[-1]
    confidence = 1.0 - label_smoothing
    low = label_smoothing / max(vocab_size - 1, 1)
    xent = _soft_target_cross_entropy(
        logits, tf.cast(targets, tf.int32), confidence, low
    )
    normalizer = -(
        confidence * math.log(confidence)
        + (vocab_size - 1) * low * math.log(low + 1e-20)
    )
    return xent - normalizer


def _soft_target_cross_entropy(
    logits: tf.Tensor, targets: tf.Tensor, confidence: float, low: float
) -> tf.Tensor:
    """`-sum_j q_j log softmax(logits)_j` with `q = low`, `confidence` on the
    label: `lse - (confidence - low) * logit_t - low * sum_j logit_j`.

    The gradient, `(softmax - q) * dy`, is written out with the softmax kept
    from the forward pass. TF's fused SoftmaxCrossEntropyWithLogits kernel
    runs on one thread (measured 12-21 ms for [512, 8192] forward + backward
    on the 2-core CPU) and log_softmax + a gather scatters its gradient into
    a zero [tokens, V] tensor; this costs ~5 ms (oneDNN softmax).
    The exponentials are computed twice on purpose (for the log-sum-exp and
    inside the softmax): sharing one `exp(logits - max)` between them
    measured slower (8-10 ms), as TF's elementwise kernels are slower here
    than oneDNN's softmax.
    """

    @tf.custom_gradient
    def cross_entropy(logits):
        label_logit = tf.gather(logits, targets, batch_dims=len(targets.shape))
        peak = tf.reduce_max(logits, axis=-1, keepdims=True)
        lse = tf.math.log(
            tf.reduce_sum(tf.exp(logits - peak), axis=-1)
        ) + tf.squeeze(peak, -1)
        xent = lse - (confidence - low) * label_logit
        if low > 0.0:
            xent -= low * tf.reduce_sum(logits, axis=-1)
        probs = tf.nn.softmax(logits)

        def grad(dy):
            soft = tf.one_hot(
                targets,
                logits.shape[-1],
                on_value=confidence,
                off_value=low,
                dtype=tf.float32,
            )
            return (probs - soft) * dy[..., None]

        return xent, grad

    return cross_entropy(logits)


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class Modality(keras.layers.Layer):
    """Base class of the modality nets (paper section 2, DESIGN.md).

    Subclasses implement `bottom`, `targets_bottom` and `top`; they build
    every weight in `build` from their constructor arguments alone, so a
    modality can be built before any data is seen (checkpoint restore). The
    layer's own `call` is `bottom(...)["hidden"]`.

    Args:
      hidden_dim: the body width d.
      **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).
    """

    # True for modalities whose `top` reads the encoder output directly
    # (class labels): the model then skips the mixer and the decoder.
    skips_decoder: bool = False

    def __init__(self, hidden_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim

    def ensure_built(self) -> None:
        """Builds the weights if the layer was not called yet."""
        if not self.built:
            self.build(None)

    def bottom(
        self, inputs: Any, *, training: bool | None = None, padding_mask=None
    ) -> ModalityOutput:
        """Maps model inputs to `{"hidden", "mask", "spatial_shape"}`."""
        raise NotImplementedError(f"{type(self).__name__} has no bottom.")

    def targets_bottom(self, targets: Any, *, training: bool | None = None):
        """Embeds targets `[B, T]` as `[B, T, d]` (not shifted)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no targets_bottom."
        )

    def top(
        self,
        body_output: Any,
        *,
        training: bool | None = None,
        spatial_shape=None,
        padding_mask=None,
    ) -> Any:
        """Maps the body output `[B, T, d]` to logits."""
        raise NotImplementedError(f"{type(self).__name__} has no top.")

    def target_weights(self, targets: Any, targets_mask=None) -> Any:
        """Loss weights of `targets`: the mask if given, else all ones."""
        if targets_mask is not None:
            return ops.cast(targets_mask, "float32")
        return ops.ones(ops.shape(targets), "float32")

    def loss(
        self,
        logits: Any,
        targets: Any,
        weights: Any,
        *,
        label_smoothing: float = 0.0,
    ) -> tuple[Any, Any]:
        """Label-smoothed cross-entropy summed over weighted positions.

        Args:
          logits: `[..., V]` float logits.
          targets: `[...]` int class ids.
          weights: `[...]` float weights (0 at padding).
          label_smoothing: the smoothing mass (T2T: 0.1 in training).

        Returns:
          `(loss_sum, weight_sum)`; report `loss_sum / max(1, weight_sum)`.
        """
        xent = smoothed_cross_entropy(
            logits, targets, label_smoothing=label_smoothing
        )
        weights = ops.cast(weights, "float32")
        return ops.sum(xent * weights), ops.sum(weights)

    def call(
        self, inputs: Any, *, training: bool | None = None, padding_mask=None
    ) -> Any:
        return self.bottom(
            inputs, training=training, padding_mask=padding_mask
        )["hidden"]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim})
        return config
