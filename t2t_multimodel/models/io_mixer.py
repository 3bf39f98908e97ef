"""`IOMixer`: the paper's input/output mixer (section 2.4).

One attention block mixes the shifted targets (queries, causal) with the
encoded inputs (keys and values), then two causal (left-padded) ConvBlocks
mix the result along the target axis, so position t never sees targets at
positions > t. It decodes incrementally: `initial_state` precomputes the
encoded inputs' keys and values, `step` costs one target position.

`use_attention=False` is the paper's "without attention" ablation (Table 4):
the attention block is replaced by `LN(shifted_targets + mean(encoded))`,
the masked mean of the encoded inputs over their positions (the paper does
not say how the mixer still sees the inputs without attention; a uniform
average, i.e. attention with constant weights and no projections, keeps the
input path while removing the learned, position-dependent attention).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from t2t_multimodel.layers import attention, conv


def masked_mean(encoded: Any, mask: Any = None) -> Any:
    """The mean of `encoded` `[B, S, d]` over real positions -> `[B, 1, d]`.

    Args:
      encoded: `[B, S, d]`.
      mask: bool `[B, S]`, True at real positions (None: all real).
    """
    if mask is None:
        return keras.ops.mean(encoded, axis=1, keepdims=True)
    weights = keras.ops.cast(mask, encoded.dtype)[:, :, None]  # [B, S, 1]
    total = keras.ops.sum(encoded * weights, axis=1, keepdims=True)
    count = keras.ops.maximum(keras.ops.sum(weights, axis=1, keepdims=True), 1)
    return total / count  # [B, 1, d]


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class IOMixer(keras.layers.Layer):
    """AttentionBlock(target, source) followed by causal ConvBlocks.

    Args:
      hidden_dim: the body width d.
      num_heads: attention heads (8 in the paper).
      num_conv_blocks: causal ConvBlocks after the attention block (2).
      dropout: dropout at the end of each ConvBlock (0.4 in the paper).
      attention_dropout: dropout on the attention weights.
      kernel_sizes: the ConvBlocks' four kernel sizes.
      dilation_rates: the ConvBlocks' four dilation rates.
      layer_norm_epsilon: epsilon of every LayerNorm.
      use_attention: False replaces the attention block by the residual
        mean of the encoded inputs (the "without attention" ablation).
      **kwargs: `keras.layers.Layer` arguments.

    Call args:
      encoded: `[B, S, d]`, the encoder output.
      shifted_targets: `[B, T, d]`, the command token then targets 0..T-2.
      training: enables dropout.
      source_mask: bool `[B, S]`, True at real encoded positions.
      target_mask: bool `[B, T]`, True at real target positions.

    Returns:
      `[B, T, d]`; position t depends on `shifted_targets[:, :t + 1]` only.
    """

    def __init__(
        self,
        hidden_dim: int,
        *,
        num_heads: int = 8,
        num_conv_blocks: int = 2,
        dropout: float = 0.4,
        attention_dropout: float = 0.0,
        kernel_sizes: Sequence[int] = (3, 3, 15, 15),
        dilation_rates: Sequence[int] = (1, 1, 1, 8),
        layer_norm_epsilon: float = 1e-6,
        use_attention: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.use_attention = use_attention
        self.num_heads = num_heads
        self.num_conv_blocks = num_conv_blocks
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.kernel_sizes = tuple(kernel_sizes)
        self.dilation_rates = tuple(dilation_rates)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.attention_block = None
        if use_attention:
            self.attention_block = attention.AttentionBlock(
                hidden_dim,
                num_heads,
                dropout=dropout,
                attention_dropout=attention_dropout,
                kernel_sizes=self.kernel_sizes,
                dilation_rates=self.dilation_rates,
                layer_norm_epsilon=layer_norm_epsilon,
                name="attention_block",
            )
        else:
            self.source_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name="source_norm"
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
            for i in range(num_conv_blocks)
        ]

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (None, None, self.hidden_dim)
        if self.attention_block is not None:
            self.attention_block.build(shape, shape)
        else:
            self.source_norm.build(shape)
        for block in self.conv_blocks:
            block.build(shape)
        self.built = True

    def call(
        self,
        encoded,
        shifted_targets,
        *,
        training=None,
        source_mask=None,
        target_mask=None,
    ):
        if self.attention_block is None:
            # [B, T, d] + [B, 1, d] broadcast over the target positions.
            summary = masked_mean(encoded, source_mask)
            x = self.source_norm(shifted_targets + summary)
        else:
            x = self.attention_block(
                shifted_targets,
                encoded,
                training=training,
                source_mask=source_mask,
                target_mask=target_mask,
            )
        for block in self.conv_blocks:
            x = block(x, training=training, padding_mask=target_mask)
        return x

    def initial_state(
        self, encoded: Any, source_mask: Any, max_length: int
    ) -> dict:
        """The decoding state for up to `max_length` target positions."""
        batch = keras.ops.shape(encoded)[0]
        conv_states = [b.initial_state(batch) for b in self.conv_blocks]
        if self.attention_block is None:
            return {
                "summary": masked_mean(encoded, source_mask),
                "conv": conv_states,
            }
        return {
            "attention": self.attention_block.initial_state(
                encoded, max_length, source_mask=source_mask
            ),
            "conv": conv_states,
        }

    def step(self, x_t: Any, state: dict, index: Any) -> tuple[Any, dict]:
        """One position: `x_t` `[B, 1, d]` at `index` -> (`[B, 1, d]`, state).

        The attention block counts positions in its own state; `index` is
        accepted for the uniform mixer/decoder step API.
        """
        new_state = dict(state)
        if self.attention_block is None:
            x = self.source_norm(x_t + state["summary"])
        else:
            x, new_state["attention"] = self.attention_block.step(
                x_t, state["attention"]
            )
        conv_states = []
        for block, block_state in zip(self.conv_blocks, state["conv"]):
            x, block_state = block.step(x, block_state)
            conv_states.append(block_state)
        new_state["conv"] = conv_states
        return x, new_state

    def compute_output_shape(
        self, encoded_shape: tuple, shifted_targets_shape: tuple | None = None
    ) -> tuple:
        return tuple(shifted_targets_shape or encoded_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "num_conv_blocks": self.num_conv_blocks,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "kernel_sizes": self.kernel_sizes,
                "dilation_rates": self.dilation_rates,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "use_attention": self.use_attention,
            }
        )
        return config
