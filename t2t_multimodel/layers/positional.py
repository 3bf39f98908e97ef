"""Sinusoidal timing signals (section 2.2 of the paper).

`timing_signal` computes `[sin(p * r_i) | cos(p * r_i)]` with geometrically
spaced inverse timescales `r_i = min_ts^-1 * exp(-i * ln(max_ts / min_ts) /
(n - 1))`, concatenated along the channels. With `num_timescales=None` it is
T2T's full-depth `get_timing_signal_1d` (`channels // 2` timescales); with
`num_timescales=16` it is T2T's `add_timing_signal` variant (32 channels,
zero-padded to `channels`) that the T2T encoders use. `AddTimingSignal` adds
the signal to a sequence, optionally starting at a decoding offset.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


def timing_signal(
    length: Any,
    channels: int,
    *,
    min_timescale: float = 1.0,
    max_timescale: float = 1e4,
    num_timescales: int | None = None,
    start_index: Any = 0,
) -> Any:
    """Returns the timing signal `[length, channels]` in float32.

    Args:
      length: number of positions (int or scalar int tensor).
      channels: depth of the signal.
      min_timescale: the shortest timescale.
      max_timescale: the longest timescale.
      num_timescales: None for the full-depth signal (`channels // 2`
        timescales, an odd channel count gets one zero column); an int `n`
        for T2T's fixed-count variant (`2 n` channels, zero-padded).
      start_index: position of the first row (int or scalar int tensor), for
        incremental decoding.

    Returns:
      float32 `[length, channels]`: row p is `[sin(p r_0), ..., sin(p r_{n-1}),
      cos(p r_0), ..., cos(p r_{n-1}), 0, ...]` with `p = start_index + row`.

    Raises:
      ValueError: if the timescales need more than `channels` channels.
    """
    if num_timescales is None:
        num_timescales = channels // 2
    if 2 * num_timescales > channels:
        raise ValueError(
            f"{num_timescales} timescales need {2 * num_timescales} channels, "
            f"got {channels}"
        )
    # T2T divides by max(n - 1, 1) in the 1-d signal and by n - 1 in the
    # 16-timescale one; they agree whenever n > 1.
    increment = math.log(max_timescale / min_timescale) / max(
        num_timescales - 1, 1
    )
    positions = ops.cast(ops.arange(length), "float32") + ops.cast(
        start_index, "float32"
    )
    inv_timescales = min_timescale * ops.exp(
        ops.arange(num_timescales, dtype="float32") * -increment
    )
    # [length, 1] * [1, n] -> [length, n]
    scaled_time = ops.expand_dims(positions, 1) * ops.expand_dims(
        inv_timescales, 0
    )
    signal = ops.concatenate(
        [ops.sin(scaled_time), ops.cos(scaled_time)], axis=1
    )  # [length, 2 n]
    padding = channels - 2 * num_timescales
    if padding:
        signal = ops.pad(signal, ((0, 0), (0, padding)))  # [length, channels]
    return signal


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class AddTimingSignal(keras.layers.Layer):
    """Adds the sinusoidal timing signal to a sequence (no weights).

    Args:
      num_timescales: None for the full-depth signal (T2T
        `add_timing_signal_1d`, used by the paper's attention block and the
        T2T decoder); 16 for T2T's `add_timing_signal` (the T2T encoder).
      min_timescale: the shortest timescale.
      max_timescale: the longest timescale.

    Call args:
      x: `[B, L, C]`.
      start_index: position of `x[:, 0]` (int or scalar int tensor), e.g. the
        decoding step when `x` is one position.

    Returns:
      `x + timing_signal(L, C)[None]`, in `x`'s dtype, padded positions
      included (as in T2T).
    """

    def __init__(
        self,
        num_timescales: int | None = None,
        *,
        min_timescale: float = 1.0,
        max_timescale: float = 1e4,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_timescales = num_timescales
        self.min_timescale = min_timescale
        self.max_timescale = max_timescale

    def call(self, x: Any, *, start_index: Any = 0) -> Any:
        signal = timing_signal(
            ops.shape(x)[1],
            x.shape[-1],
            min_timescale=self.min_timescale,
            max_timescale=self.max_timescale,
            num_timescales=self.num_timescales,
            start_index=start_index,
        )  # [L, C]
        return x + ops.cast(ops.expand_dims(signal, 0), x.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_timescales=self.num_timescales,
            min_timescale=self.min_timescale,
            max_timescale=self.max_timescale,
        )
        return config
