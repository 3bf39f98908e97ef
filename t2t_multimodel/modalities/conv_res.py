"""`ConvRes`: the residual convolution unit of the image and audio nets.

Paper section 2.5 (after Xception's entry flow):
`ConvRes(x, F) = MaxPool_2(ConvStep_F(3x3, ConvStep_F(3x3, x))) +
ConvStep_{s=2}(1x1, x)`. As in the T2T code closest to the paper
(`xnet_resblock`), the shortcut is a plain bias-free 1x1 convolution with
stride 2 followed by LayerNorm (a separable 1x1 conv has the same expressive
power), with an optional leading ReLU; the max-pool is 3x3 with SAME padding.
Strides are configurable so the spectral audio net can stride along time only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from t2t_multimodel.layers import conv


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class ConvRes(keras.layers.Layer):
    """Two 2-D ConvSteps, a strided max-pool and a strided 1x1 shortcut.

    Args:
      filters: output channels F.
      kernel_size: kernel of the two ConvSteps and window of the max-pool.
      strides: strides of the max-pool and of the shortcut.
      shortcut_relu: apply a ReLU before the shortcut conv (T2T: only in the
        first block of the image net).
      layer_norm_epsilon: LayerNorm epsilon.
      **kwargs: `keras.layers.Layer` arguments.

    Call args:
      x: `[B, H, W, C]`.
      training: passed down.

    Returns:
      `[B, ceil(H / s_h), ceil(W / s_w), F]`.
    """

    def __init__(
        self,
        filters: int,
        *,
        kernel_size: int | Sequence[int] = (3, 3),
        strides: int | Sequence[int] = (2, 2),
        shortcut_relu: bool = True,
        layer_norm_epsilon: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size)
        self.strides = _pair(strides)
        self.shortcut_relu = shortcut_relu
        self.layer_norm_epsilon = layer_norm_epsilon
        self.conv_steps = [
            conv.ConvStep(
                self.filters,
                self.kernel_size,
                rank=2,
                layer_norm_epsilon=layer_norm_epsilon,
                name=f"conv_step_{i}",
            )
            for i in range(2)
        ]
        self.shortcut = keras.layers.Conv2D(
            self.filters,
            1,
            strides=self.strides,
            use_bias=False,
            name="shortcut",
        )
        self.shortcut_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="shortcut_norm"
        )

    def build(self, input_shape: tuple) -> None:
        self.conv_steps[0].build(input_shape)
        inner = (*input_shape[:-1], self.filters)
        self.conv_steps[1].build(inner)
        self.shortcut.build(input_shape)
        self.shortcut_norm.build(self.compute_output_shape(input_shape))

    def call(self, x: Any, *, training: bool | None = None) -> Any:
        y = self.conv_steps[0](x, training=training)
        y = self.conv_steps[1](y, training=training)
        y = ops.max_pool(
            y, pool_size=self.kernel_size, strides=self.strides, padding="same"
        )
        shortcut = ops.relu(x) if self.shortcut_relu else x
        # The strided 1x1 conv reads every s-th position: a strided slice and
        # a matmul with the same kernel give `self.shortcut(shortcut)`
        # exactly, and avoid a oneDNN crash (heap corruption) in TF 2.21's
        # CPU Conv2DBackpropFilter for 1-2 input channels on long inputs (the
        # first blocks of the spectral audio net).
        s_h, s_w = self.strides
        strided = shortcut[:, ::s_h, ::s_w, :]  # [B, ceil(H/s), ceil(W/s), C]
        kernel = self.shortcut.kernel
        kernel = ops.reshape(kernel, kernel.shape[2:])  # [C, filters]
        projected = ops.matmul(strided, ops.cast(kernel, strided.dtype))
        return y + self.shortcut_norm(projected)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def shrink(size, stride):
            return None if size is None else -(-size // stride)

        return (
            input_shape[0],
            shrink(input_shape[1], self.strides[0]),
            shrink(input_shape[2], self.strides[1]),
            self.filters,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "shortcut_relu": self.shortcut_relu,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def flatten_grid(x: Any) -> tuple[Any, Any]:
    """Flattens `[B, H, W, d]` row-major to `[B, H * W, d]`.

    Returns:
      `(sequence, spatial_shape)` with `spatial_shape` the int32 `[2]` tensor
      `(H, W)` a class-label top uses to re-square the body output.
    """
    shape = ops.shape(x)
    # [B, H, W, d] -> [B, H * W, d], position = W * h + w.
    sequence = ops.reshape(x, (shape[0], -1, x.shape[-1]))
    spatial_shape = ops.cast(ops.stack([shape[1], shape[2]]), "int32")
    return sequence, spatial_shape
