"""`Decoder`: the paper's autoregressive decoder (section 2.4).

Four blocks of convolution and attention with a sparsely-gated mixture of
experts in the middle. Each block is a causal (left-padded) ConvBlock, then
multi-head attention from the result to the encoded inputs (keys and values
are pointwise convolutions of the encoded inputs) as a residual sublayer,
`x <- LN(x + Attention(x, encoded))`; the MoE after block 2 is residual too,
`x <- LN(x + MoE(x))` (`layers/residual_moe.py`). Everything is causal in
the target, so the decoder also runs one position at a time
(`initial_state` / `step`).

`use_attention=False` is the paper's "without attention" ablation (Table 4):
each source attention is replaced by the masked mean of the encoded inputs,
`x <- LN(x + mean(encoded))` (see `io_mixer.masked_mean`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from t2t_multimodel.layers import attention, conv, residual_moe
from t2t_multimodel.models import io_mixer


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class Decoder(keras.layers.Layer):
    """Causal ConvBlock + source attention blocks, a residual MoE between.

    Args:
      hidden_dim: the body width d.
      num_blocks: number of conv + attention blocks (4 in the paper).
      moe_position: the MoE comes after this many blocks (2); None for none.
      num_experts: experts of the MoE (paper: 240 joint, 60 single task).
      top_k: experts per position (4 in the paper).
      intermediate_dim: hidden width of each expert; None means d (C1).
      num_heads: attention heads (8).
      dropout: dropout at the end of each ConvBlock (0.4 in the paper).
      attention_dropout: dropout on the attention weights.
      kernel_sizes: the ConvBlocks' four kernel sizes.
      dilation_rates: the ConvBlocks' four dilation rates.
      moe_loss_coef: coefficient of the MoE load-balancing loss.
      capacity_factor: MoE expert capacity (None: no token is dropped).
      layer_norm_epsilon: epsilon of every LayerNorm.
      use_attention: False replaces each source attention by the mean of
        the encoded inputs (the "without attention" ablation).
      **kwargs: `keras.layers.Layer` arguments.

    Call args:
      x: `[B, T, d]`, the mixer output.
      encoded: `[B, S, d]`, the encoder output.
      training: enables dropout and the MoE gate noise.
      source_mask: bool `[B, S]`, True at real encoded positions.
      target_mask: bool `[B, T]`, True at real target positions.

    Returns:
      `[B, T, d]`; position t depends on `x[:, :t + 1]` only.
    """

    def __init__(
        self,
        hidden_dim: int,
        *,
        num_blocks: int = 4,
        moe_position: int | None = 2,
        num_experts: int = 240,
        top_k: int = 4,
        intermediate_dim: int | None = None,
        num_heads: int = 8,
        dropout: float = 0.4,
        attention_dropout: float = 0.0,
        kernel_sizes: Sequence[int] = (3, 3, 15, 15),
        dilation_rates: Sequence[int] = (1, 1, 1, 8),
        moe_loss_coef: float = 1e-2,
        capacity_factor: float | None = None,
        layer_norm_epsilon: float = 1e-6,
        use_attention: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.use_attention = use_attention
        if moe_position is not None and not 0 <= moe_position <= num_blocks:
            raise ValueError(f"moe_position {moe_position} not in blocks")
        self.hidden_dim = hidden_dim
        self.num_blocks = num_blocks
        self.moe_position = moe_position
        self.num_experts = num_experts
        self.top_k = top_k
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.kernel_sizes = tuple(kernel_sizes)
        self.dilation_rates = tuple(dilation_rates)
        self.moe_loss_coef = moe_loss_coef
        self.capacity_factor = capacity_factor
        self.layer_norm_epsilon = layer_norm_epsilon

        def norm(name):
            return keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name=name
            )

        self.conv_blocks = [
            conv.ConvBlock(
                hidden_dim,
                kernel_sizes=self.kernel_sizes,
                dilation_rates=self.dilation_rates,
                dropout=dropout,
                causal=True,
                layer_norm_epsilon=layer_norm_epsilon,
                name=f"conv_block_{i}",
            )
            for i in range(num_blocks)
        ]
        self.attentions = [
            attention.MultiHeadAttention(
                hidden_dim,
                num_heads,
                dropout=attention_dropout,
                name=f"source_attention_{i}",
            )
            for i in range(num_blocks if use_attention else 0)
        ]
        self.attention_norms = [
            norm(f"attention_norm_{i}") for i in range(num_blocks)
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
        for block, attn_norm in zip(self.conv_blocks, self.attention_norms):
            block.build(shape)
            attn_norm.build(shape)
        for attn in self.attentions:
            attn.build(shape, shape)
        if self.moe_sublayer is not None:
            self.moe_sublayer.build(shape)
        self.built = True

    def _moe(self, x: Any, training: Any, padding_mask: Any) -> Any:
        return self.moe_sublayer(
            x, training=training, padding_mask=padding_mask
        )

    def call(
        self, x, encoded, *, training=None, source_mask=None, target_mask=None
    ):
        summary = None
        if not self.use_attention:
            summary = io_mixer.masked_mean(encoded, source_mask)  # [B, 1, d]
        for i in range(self.num_blocks):
            if i == self.moe_position:
                x = self._moe(x, training, target_mask)
            x = self.conv_blocks[i](
                x, training=training, padding_mask=target_mask
            )
            if summary is not None:
                z = summary  # [B, 1, d], broadcast over the T positions
            else:
                z = self.attentions[i](
                    x, encoded, training=training, memory_mask=source_mask
                )
            x = self.attention_norms[i](x + z)
        if self.moe_position == self.num_blocks:
            x = self._moe(x, training, target_mask)
        return x

    def initial_state(
        self, encoded: Any, source_mask: Any, max_length: int
    ) -> dict:
        """The decoding state: conv buffers and the encoded keys/values.

        `max_length` is unused (no self-attention cache); it is accepted for
        the uniform mixer/decoder API.
        """
        batch = ops.shape(encoded)[0]
        if source_mask is None:
            source_mask = ops.ones(ops.shape(encoded)[:2], dtype="bool")
        state = {
            "conv": [b.initial_state(batch) for b in self.conv_blocks],
            "memory": [a.precompute_memory(encoded) for a in self.attentions],
            "source_mask": source_mask,
        }
        if not self.use_attention:
            state["summary"] = io_mixer.masked_mean(encoded, source_mask)
        return state

    def step(self, x_t: Any, state: dict, index: Any) -> tuple[Any, dict]:
        """One position: `x_t` `[B, 1, d]` at `index` -> (`[B, 1, d]`, state).

        Equal to the full call's output at `index` when positions before it
        went through `step` first (inference mode).
        """
        conv_states = []
        for i in range(self.num_blocks):
            if i == self.moe_position:
                x_t = self.moe_sublayer.infer(x_t)
            x_t, block_state = self.conv_blocks[i].step(x_t, state["conv"][i])
            conv_states.append(block_state)
            if not self.use_attention:
                z = state["summary"]
            else:
                z = self.attentions[i](
                    x_t,
                    memory_mask=state["source_mask"],
                    memory_cache=state["memory"][i],
                )
            x_t = self.attention_norms[i](x_t + z)
        if self.moe_position == self.num_blocks:
            x_t = self.moe_sublayer.infer(x_t)
        new_state = dict(state)
        new_state["conv"] = conv_states
        return x_t, new_state

    def compute_output_shape(
        self, x_shape: tuple, encoded_shape: tuple | None = None
    ) -> tuple:
        return tuple(x_shape)

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
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "kernel_sizes": self.kernel_sizes,
                "dilation_rates": self.dilation_rates,
                "moe_loss_coef": self.moe_loss_coef,
                "capacity_factor": self.capacity_factor,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "use_attention": self.use_attention,
            }
        )
        return config
