"""Audio input nets: waveform and spectrogram (paper section 2.5).

Both are a stack of ConvRes blocks, `l_i = ConvRes(l_{i-1}, 2^i)`; the
spectral one strides only along time (strides (2, 1)), keeping full spectral
resolution. The paper's widths 2^i leave the last block short of d, so the
default stack is `2, 4, ..., 2^(num_blocks - 1), d`: `num_blocks` (8) blocks,
the last one mapping to d as the image net's last ConvRes does. T2T's first
MultiModel used 8 blocks of width 2^(i+1) (2 ... 256) plus a 9th to d:
`filters=(2, 4, 8, 16, 32, 64, 128, 256, d)`. The strided result is
flattened row-major (time-major) to a sequence; the padding mask is
downsampled with each block (a frame is real if any frame it covers is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from t2t_multimodel.modalities import base, conv_res


def downsample_mask(mask: Any, stride: int) -> Any:
    """Bool `[B, L]` -> `[B, ceil(L / stride)]`: real if any covered is."""
    if stride == 1:
        return mask
    x = ops.expand_dims(ops.cast(mask, "float32"), -1)  # [B, L, 1]
    x = ops.max_pool(x, pool_size=stride, strides=stride, padding="same")
    return ops.cast(x[..., 0], "bool")  # [B, L']


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class AudioSpectralModality(base.Modality):
    """Spectrograms `[B, T, F]` (log-mel) to a sequence `[B, T' F, d]`.

    Args:
      hidden_dim: the body width d.
      num_blocks: the number of ConvRes blocks when `filters` is None.
      filters: explicit block widths (the last is usually d); None gives
        `2, 4, ..., 2^(num_blocks - 1), hidden_dim`.
      kernel_size: the ConvSteps' kernel and the max-pool window (time, freq).
      strides: each block's (time, freq) stride; (2, 1) strides time only.
      layer_norm_epsilon: LayerNorm epsilon.
      **kwargs: `keras.layers.Layer` arguments.

    `bottom(x [B, T, F], padding_mask=bool [B, T])` returns hidden
    `[B, T' F', d]` (time-major), the mask repeated over the F' frequency
    positions of each frame (or None without an input mask) and
    `spatial_shape` `(T', F')`, with `T' = ceil(T / 2^num_blocks)`.
    """

    def __init__(
        self,
        hidden_dim: int,
        *,
        num_blocks: int = 8,
        filters: Sequence[int] | None = None,
        kernel_size: Sequence[int] = (3, 3),
        strides: Sequence[int] = (2, 1),
        layer_norm_epsilon: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(hidden_dim, **kwargs)
        self.num_blocks = num_blocks
        self.filters = (
            None if filters is None else tuple(int(f) for f in filters)
        )
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.layer_norm_epsilon = layer_norm_epsilon
        widths = self.filters or (
            *(2**i for i in range(1, num_blocks)),
            hidden_dim,
        )
        self.blocks = [
            conv_res.ConvRes(
                width,
                kernel_size=self.kernel_size,
                strides=self.strides,
                shortcut_relu=True,  # T2T's audio blocks: ReLU everywhere
                layer_norm_epsilon=layer_norm_epsilon,
                name=f"conv_res_{i}",
            )
            for i, width in enumerate(widths)
        ]

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (None, None, None, 1)
        for block in self.blocks:
            block.build(shape)
            shape = (None, None, None, block.filters)
        self.built = True

    def _grid(self, inputs: Any) -> Any:
        """The model input as a one-channel grid `[B, T, F, 1]`."""
        return ops.expand_dims(ops.cast(inputs, "float32"), -1)

    def bottom(
        self, inputs: Any, *, training: bool | None = None, padding_mask=None
    ) -> base.ModalityOutput:
        self.ensure_built()
        x = self._grid(inputs)  # [B, T, F, 1]
        mask = padding_mask
        for block in self.blocks:
            if mask is not None:
                # Zero padded frames so they never leak into real ones.
                x = x * ops.cast(mask, x.dtype)[:, :, None, None]
            x = block(x, training=training)
            mask = (
                None
                if mask is None
                else downsample_mask(mask, block.strides[0])
            )
        hidden, spatial_shape = conv_res.flatten_grid(x)
        if mask is not None:
            # [B, T'] -> [B, T' * F'], time-major like the hidden sequence.
            mask = ops.reshape(
                ops.repeat(mask[:, :, None], ops.shape(x)[2], axis=2),
                (ops.shape(x)[0], -1),
            )
        return {"hidden": hidden, "mask": mask, "spatial_shape": spatial_shape}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], None, self.hidden_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_blocks": self.num_blocks,
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class AudioModality(AudioSpectralModality):
    """Waveforms `[B, S]` in [-1, 1] to a sequence `[B, S', d]`.

    The same ConvRes stack as `AudioSpectralModality` over the waveform seen
    as a `[B, S, 1, 1]` grid; the default kernel is (3, 1), since the width
    axis has a single position. Arguments and outputs as there, with
    `spatial_shape` `(S', 1)`.
    """

    def __init__(
        self,
        hidden_dim: int,
        *,
        num_blocks: int = 8,
        filters: Sequence[int] | None = None,
        kernel_size: Sequence[int] = (3, 1),
        strides: Sequence[int] = (2, 1),
        layer_norm_epsilon: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hidden_dim,
            num_blocks=num_blocks,
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            layer_norm_epsilon=layer_norm_epsilon,
            **kwargs,
        )

    def _grid(self, inputs: Any) -> Any:
        # [B, S] -> [B, S, 1, 1]
        return ops.cast(inputs, "float32")[:, :, None, None]
