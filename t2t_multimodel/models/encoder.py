"""`Encoder`: the paper's input encoder (section 2.4).

Six ConvBlocks with one sparsely-gated mixture-of-experts layer in the middle.
The paper does not say how the MoE is wired in; as in the T2T code closest to
the paper (C1 `slicenet`), it is a residual sublayer, `x <- LN(x + MoE(x))`
(`layers/residual_moe.py`, shared with the decoder).
The paper puts it "in the middle" (after block 3 of 6, the default); C1 put
it after block 2 (`moe_position=2`). A 16-timescale sinusoidal timing signal
is added to the input first, as C1's encoder does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from t2t_multimodel.layers import conv, positional, residual_moe


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class Encoder(keras.layers.Layer):
    """ConvBlocks with a residual SparseMoE in the middle.

    Args:
      hidden_dim: the body width d.
      num_blocks: number of ConvBlocks (6 in the paper).
      moe_position: the MoE comes after this many blocks; None for no MoE.
      num_experts: experts of the MoE (paper: 240 for 8 joint tasks, 60 for
        one task).
      top_k: experts per position (4 in the paper).
      intermediate_dim: hidden width of each expert; None means d (C1).
      dropout: dropout at the end of each ConvBlock (0.4 in the paper).
      kernel_sizes: the ConvBlocks' four kernel sizes.
      dilation_rates: the ConvBlocks' four dilation rates.
      num_timescales: timescales of the input timing signal (16 as in C1,
        capped at d / 2; None = full depth).
      use_timing_signal: add the timing signal to the input.
      moe_loss_coef: coefficient of the MoE load-balancing loss.
      capacity_factor: MoE expert capacity (None: no token is dropped).
      layer_norm_epsilon: epsilon of every LayerNorm.
      **kwargs: `keras.layers.Layer` arguments.

    Call args:
      x: `[B, L, d]`, the input modality's output.
      training: enables dropout and the MoE gate noise.
      padding_mask: bool `[B, L]`, True at real positions. Padded positions
        never change the outputs at real positions (the ConvSteps zero them
        before every convolution and the MoE does not route them).

    Returns:
      `[B, L, d]`. The MoE adds its load-balancing loss with `add_loss`.
    """

    def __init__(
        self,
        hidden_dim: int,
        *,
        num_blocks: int = 6,
        moe_position: int | None = 3,
        num_experts: int = 240,
        top_k: int = 4,
        intermediate_dim: int | None = None,
        dropout: float = 0.4,
        kernel_sizes: Sequence[int] = (3, 3, 15, 15),
        dilation_rates: Sequence[int] = (1, 1, 1, 8),
        num_timescales: int | None = 16,
        use_timing_signal: bool = True,
        moe_loss_coef: float = 1e-2,
        capacity_factor: float | None = None,
        layer_norm_epsilon: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if moe_position is not None and not 0 <= moe_position <= num_blocks:
            raise ValueError(f"moe_position {moe_position} not in blocks")
        self.hidden_dim = hidden_dim
        self.num_blocks = num_blocks
        self.moe_position = moe_position
        self.num_experts = num_experts
        self.top_k = top_k
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.kernel_sizes = tuple(kernel_sizes)
        self.dilation_rates = tuple(dilation_rates)
        self.num_timescales = num_timescales
        self.use_timing_signal = use_timing_signal
        self.moe_loss_coef = moe_loss_coef
        self.capacity_factor = capacity_factor
        self.layer_norm_epsilon = layer_norm_epsilon
        if num_timescales is not None:
            # 2 * timescales channels must fit in d (tiny test widths).
            num_timescales = min(num_timescales, hidden_dim // 2)
        self.timing = positional.AddTimingSignal(num_timescales, name="timing")
        self.conv_blocks = [
            conv.ConvBlock(
                hidden_dim,
                kernel_sizes=self.kernel_sizes,
                dilation_rates=self.dilation_rates,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                name=f"conv_block_{i}",
            )
            for i in range(num_blocks)
        ]
        self.moe_sublayer = None
        if moe_position is not None:
            self.moe_sublayer = residual_moe.ResidualMoE(
                hidden_dim,
                intermediate_dim or hidden_dim,
                num_experts,
                top_k=top_k,
                loss_coef=moe_loss_coef,
                capacity_factor=capacity_factor,
                layer_norm_epsilon=layer_norm_epsilon,
                name="moe_sublayer",
            )

    @property
    def moe(self) -> keras.layers.Layer | None:
        """The `SparseMoE` of the MoE sublayer (None without one)."""
        return self.moe_sublayer.moe if self.moe_sublayer else None

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (None, None, self.hidden_dim)
        for block in self.conv_blocks:
            block.build(shape)
        if self.moe_sublayer is not None:
            self.moe_sublayer.build(shape)
        self.built = True

    def _moe(self, x: Any, training: Any, padding_mask: Any) -> Any:
        return self.moe_sublayer(
            x, training=training, padding_mask=padding_mask
        )

    def call(
        self, x: Any, *, training: bool | None = None, padding_mask=None
    ) -> Any:
        if self.use_timing_signal:
            x = self.timing(x)
        for i, block in enumerate(self.conv_blocks):
            if i == self.moe_position:
                x = self._moe(x, training, padding_mask)
            x = block(x, training=training, padding_mask=padding_mask)
        if self.moe_position == self.num_blocks:
            x = self._moe(x, training, padding_mask)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_blocks": self.num_blocks,
                "moe_position": self.moe_position,
                "num_experts": self.num_experts,
                "top_k": self.top_k,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "kernel_sizes": self.kernel_sizes,
                "dilation_rates": self.dilation_rates,
                "num_timescales": self.num_timescales,
                "use_timing_signal": self.use_timing_signal,
                "moe_loss_coef": self.moe_loss_coef,
                "capacity_factor": self.capacity_factor,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
