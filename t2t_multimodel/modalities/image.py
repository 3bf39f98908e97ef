"""`ImageModality`: the image input net (paper section 2.5, Xception entry).

`h1 = ConvStep_{s=2, f=32}(3x3, x)`, `h2 = ConvStep_{f=64}(3x3, h1)`,
`r1 = ConvRes(h2, 128)`, `r2 = ConvRes(r1, 256)`, output `ConvRes(r2, d)`,
after T2T's per-image standardization; the first step has no leading ReLU (as
in T2T's `conv0`). The stride is 16: a 299x299 image becomes 19x19 = 361
positions, flattened row-major to a sequence. `entry_flow=False` is the T2T
v1.9 variant: the raw float image goes through one bias-free 3x3 Conv2D
(`project_to_hidden`, kernel `[3, 3, C, d]`) and a LayerNorm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from t2t_multimodel.layers import conv
from t2t_multimodel.modalities import base, conv_res


def per_image_standardization(images: Any) -> Any:
    """`(x - mean) / max(std, 1 / sqrt(H W C))` per image, as T2T and TF do."""
    images = ops.cast(images, "float32")
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    std = ops.std(images, axis=(1, 2, 3), keepdims=True)
    shape = ops.shape(images)
    num = ops.cast(shape[1] * shape[2] * shape[3], "float32")
    return (images - mean) / ops.maximum(std, ops.rsqrt(num))


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class ImageModality(base.Modality):
    """Images `[B, H, W, C]` in [0, 1] to a sequence `[B, H' W', d]`.

    Args:
      hidden_dim: the body width d.
      entry_flow: True for the paper's Xception entry flow, False for T2T
        v1.9's single 3x3 `project_to_hidden` convolution.
      num_channels: channels the weights are built for (3); gray images
        (1 channel) are broadcast to them, so one instance serves both.
      entry_filters: widths of the two entry ConvSteps (paper: 32, 64).
      res_filters: widths of the ConvRes blocks before the last one, which
        maps to d (paper: 128, 256).
      per_image_standardization: standardize each image first (T2T's first
        MultiModel; v1.9 fed the raw [0, 1] floats).
      layer_norm_epsilon: LayerNorm epsilon.
      **kwargs: `keras.layers.Layer` arguments.

    `bottom(images)` returns hidden `[B, H' W', d]`, mask None (every
    position is real) and `spatial_shape` `(H', W')`. Any input size works;
    the entry flow gives `H' = ceil(H / 16)`, v1.9 keeps `H' = H`.
    """

    def __init__(
        self,
        hidden_dim: int,
        *,
        entry_flow: bool = True,
        num_channels: int = 3,
        entry_filters: Sequence[int] = (32, 64),
        res_filters: Sequence[int] = (128, 256),
        per_image_standardization: bool = True,
        layer_norm_epsilon: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(hidden_dim, **kwargs)
        self.entry_flow = entry_flow
        self.num_channels = num_channels
        self.entry_filters = tuple(int(f) for f in entry_filters)
        self.res_filters = tuple(int(f) for f in res_filters)
        self.per_image_standardization = per_image_standardization
        self.layer_norm_epsilon = layer_norm_epsilon
        if entry_flow:
            first, second = self.entry_filters
            self.entry_steps = [
                conv.ConvStep(
                    first,
                    (3, 3),
                    strides=2,
                    rank=2,
                    use_relu=False,
                    layer_norm_epsilon=layer_norm_epsilon,
                    name="entry_step_0",
                ),
                conv.ConvStep(
                    second,
                    (3, 3),
                    rank=2,
                    layer_norm_epsilon=layer_norm_epsilon,
                    name="entry_step_1",
                ),
            ]
            widths = (*self.res_filters, hidden_dim)
            self.res_blocks = [
                conv_res.ConvRes(
                    width,
                    shortcut_relu=i == 0,  # T2T: ReLU on the first only
                    layer_norm_epsilon=layer_norm_epsilon,
                    name=f"conv_res_{i}",
                )
                for i, width in enumerate(widths)
            ]
        else:
            self.project_to_hidden = keras.layers.Conv2D(
                hidden_dim,
                3,
                padding="same",
                use_bias=False,
                name="project_to_hidden",
            )
            self.project_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name="project_norm"
            )

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (None, None, None, self.num_channels)
        if self.entry_flow:
            for step in self.entry_steps:
                step.build(shape)
                shape = (None, None, None, step.filters)
            for block in self.res_blocks:
                block.build(shape)
                shape = (None, None, None, block.filters)
        else:
            self.project_to_hidden.build(shape)
            self.project_norm.build((None, None, None, self.hidden_dim))
        self.built = True

    def _to_channels(self, images: Any) -> Any:
        images = ops.cast(images, "float32")
        channels = images.shape[-1]
        if channels == self.num_channels:
            return images
        if channels == 1:
            # Gray -> RGB: [B, H, W, 1] -> [B, H, W, C].
            return ops.repeat(images, self.num_channels, axis=-1)
        raise ValueError(
            f"images have {channels} channels; expected 1 or "
            f"{self.num_channels}"
        )

    def bottom(
        self, inputs: Any, *, training: bool | None = None, padding_mask=None
    ) -> base.ModalityOutput:
        self.ensure_built()
        x = self._to_channels(inputs)
        if self.per_image_standardization:
            x = per_image_standardization(x)
        if self.entry_flow:
            for step in self.entry_steps:
                x = step(x, training=training)
            for block in self.res_blocks:
                x = block(x, training=training)
        else:
            x = self.project_norm(self.project_to_hidden(x))
        hidden, spatial_shape = conv_res.flatten_grid(x)
        return {"hidden": hidden, "mask": None, "spatial_shape": spatial_shape}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], None, self.hidden_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "entry_flow": self.entry_flow,
                "num_channels": self.num_channels,
                "entry_filters": self.entry_filters,
                "res_filters": self.res_filters,
                "per_image_standardization": self.per_image_standardization,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
