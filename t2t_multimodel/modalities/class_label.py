"""`ClassLabelModality`: the categorical output net (paper section 2.5).

The paper's Xception-style exit flow on the body output re-squared to 2-D:
`skip = ConvStep_{s=2}(3x3, x)`, `h1 = ConvStep(3x3, x)`,
`h2 = ConvStep(3x3, h1)`, `h3 = skip + MaxPool_2(h2)`,
`h4 = ConvStep_{f1}(3x3, h3)`, `h5 = ConvStep_{f2}(3x3, h4)`,
`h6 = GlobalAvgPool(ReLU(h5))`, logits = pointwise conv (dense + bias) to the
classes. The paper recalls Xception's fixed 1536/2048 for f1/f2; the T2T code
scales every width with d: skip and h2 1.25d, h1 d, h4 2d, h5 2.5d (the
default; all are constructor arguments). Every step is a ConvStep, with its
leading ReLU, as the paper writes it (T2T's h4 had none). Class-label targets
skip the decoder.
`exit_flow=False` is T2T v1.9: the mean of the body output over all positions
times a dense `[d, classes]` kernel plus bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from t2t_multimodel.layers import conv
from t2t_multimodel.modalities import base


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class ClassLabelModality(base.Modality):
    """Body output `[B, L, d]` to class logits `[B, num_classes]`.

    Args:
      hidden_dim: the body width d.
      num_classes: the number of classes.
      exit_flow: True for the paper's exit flow, False for T2T v1.9's mean +
        dense top.
      filters: exit-flow widths `(skip and h2, h1, h4, h5)`; None is the
        T2T scaling `(1.25 d, d, 2 d, 2.5 d)`; the paper's recalled Xception
        widths are `(1920, 1536, 1536, 2048)` at d = 1536.
      layer_norm_epsilon: LayerNorm epsilon.
      **kwargs: `keras.layers.Layer` arguments.

    `top(h [B, L, d], spatial_shape=(H', W') or None, padding_mask=None)`
    re-squares `h` to `[B, H', W', d]` (a 1-D body output is `[B, L, 1, d]`),
    zeroing padded positions first. The layer's own `call` is `top`. There is
    no targets embedding (`targets_bottom` returns None: the decoder is
    skipped) and every example has loss weight 1.
    """

    skips_decoder = True

    def __init__(
        self,
        hidden_dim: int,
        num_classes: int,
        *,
        exit_flow: bool = True,
        filters: Sequence[int] | None = None,
        layer_norm_epsilon: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(hidden_dim, **kwargs)
        self.num_classes = num_classes
        self.exit_flow = exit_flow
        self.filters = (
            None if filters is None else tuple(int(f) for f in filters)
        )
        self.layer_norm_epsilon = layer_norm_epsilon
        if exit_flow:
            wide, middle, flow_1, flow_2 = self.filters or (
                round(1.25 * hidden_dim),
                hidden_dim,
                2 * hidden_dim,
                round(2.5 * hidden_dim),
            )

            def step(filters, name, **step_kwargs):
                return conv.ConvStep(
                    filters,
                    (3, 3),
                    rank=2,
                    layer_norm_epsilon=layer_norm_epsilon,
                    name=name,
                    **step_kwargs,
                )

            self.skip = step(wide, "skip", strides=2)
            self.steps = [
                step(middle, "step_1"),
                step(wide, "step_2"),
                step(flow_1, "step_4"),
                step(flow_2, "step_5"),
            ]
        self.dense = keras.layers.Dense(num_classes, name="dense")

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (None, None, None, self.hidden_dim)
        if self.exit_flow:
            self.skip.build(shape)
            for step in self.steps:
                step.build(shape)
                shape = (None, None, None, step.filters)
        self.dense.build(shape[:1] + shape[-1:])
        self.built = True

    def targets_bottom(
        self, targets: Any, *, training: bool | None = None
    ) -> Any:
        return None

    def top(
        self,
        body_output,
        *,
        training=None,
        spatial_shape=None,
        padding_mask=None,
    ):
        self.ensure_built()
        x = body_output
        if padding_mask is not None:
            x = x * ops.cast(padding_mask, x.dtype)[..., None]
        if not self.exit_flow:
            # T2T v1.9: mean over all positions, then a dense layer.
            return self.dense(ops.mean(x, axis=1))
        shape = ops.shape(x)
        if spatial_shape is None:
            grid = (shape[0], shape[1], 1, self.hidden_dim)
        else:
            grid = (
                shape[0],
                spatial_shape[0],
                spatial_shape[1],
                self.hidden_dim,
            )
        x = ops.reshape(x, grid)  # [B, L, d] -> [B, H', W', d]
        skip = self.skip(x, training=training)
        h = self.steps[1](
            self.steps[0](x, training=training), training=training
        )
        h = skip + ops.max_pool(h, pool_size=3, strides=2, padding="same")
        h = self.steps[3](
            self.steps[2](h, training=training), training=training
        )
        pooled = ops.mean(ops.relu(h), axis=(1, 2))  # [B, f2]
        return self.dense(pooled)  # [B, num_classes]

    def target_weights(self, targets: Any, targets_mask: Any = None) -> Any:
        # T2T `weights_all`: every example counts, label 0 included.
        return ops.ones(ops.shape(targets), "float32")

    def call(
        self, inputs: Any, *, training: bool | None = None, padding_mask=None
    ) -> Any:
        return self.top(inputs, training=training, padding_mask=padding_mask)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "exit_flow": self.exit_flow,
                "filters": self.filters,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
