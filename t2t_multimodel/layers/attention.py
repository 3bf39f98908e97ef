"""Multi-head dot-product attention and the paper's AttentionBlock.

Implements section 2.2 of "One Model To Learn Them All". `MultiHeadAttention`
follows T2T (`common_attention.multihead_attention`): four bias-free [d, d]
kernels named `q`, `k`, `v`, `output_transform`, heads split by reshape
(channel c belongs to head `c // (d / heads)`), queries scaled by
`(d / heads)^-0.5`, -1e9 on masked logits, dropout on the attention weights.
It decodes incrementally with a fixed-size key/value cache and with memory
keys/values computed once. `AttentionBlock(source, target)` adds the timing
signal to the target, mixes it with two causal ConvBlocks, self-attends
causally to get the queries and attends to the source, whose keys and values
are two separate pointwise convolutions of the source (the `k` and `v`
kernels of the source attention).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from t2t_multimodel.layers import conv, masks, positional


def _write_cache(cache: Any, new: Any, index: Any) -> Any:
    """Writes `new` `[B, T, d]` into `cache` `[B, M, d]` at rows index..+T.

    A one-hot scatter plus `where` instead of `slice_update`, whose TF kernel
    is an XLA-only op; both are exact (the one-hot matmul adds zeros).
    """
    max_length = ops.shape(cache)[1]
    rows = ops.arange(ops.shape(new)[1], dtype="int32") + ops.cast(
        index, "int32"
    )
    one_hot = ops.one_hot(rows, max_length, dtype=new.dtype)  # [T, M]
    scattered = ops.einsum("tm,btd->bmd", one_hot, new)  # [B, M, d]
    written = ops.sum(one_hot, axis=0) > 0  # [M]
    return ops.where(written[None, :, None], scattered, cache)


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head dot-product attention, T2T style.

    Args:
      hidden_dim: depth d of the queries, keys, values and output.
      num_heads: number of heads; must divide `hidden_dim`.
      dropout: dropout rate on the attention weights (training only).
      use_bias: biases on the four projections (T2T has none).
      kernel_initializer: initializer of the four [in, d] kernels.

    Call args:
      query: `[B, Tq, d_q]`.
      memory: `[B, Tk, d_m]`, or None for self-attention.
      training: enables the attention dropout.
      memory_mask: bool `[B, Tk]` (or `[B, max_length]` with `cache`), True
        at real key positions; masked logits get -1e9.
      causal: query i sees keys j <= i only (self-attention).
      cache: `{"key", "value"}` `[B, max_length, d]` from `initial_cache`;
        self-attention only. The query holds positions `cache_index ..
        cache_index + Tq - 1`; their keys/values are written into the cache and
        each attends to the cached positions up to itself.
      cache_index: scalar int, the position of `query[:, 0]` with `cache`.
      memory_cache: `{"key", "value"}` `[B, Tk, d]` from `precompute_memory`,
        used instead of `memory` so a decoding step projects the memory once.

    Returns:
      `[B, Tq, d]`, or `(output, new_cache)` when `cache` is given.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 8,
        *,
        dropout: float = 0.0,
        use_bias: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"{num_heads} heads do not divide {hidden_dim}")
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.dropout = dropout
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.head_dim = hidden_dim // num_heads

        def dense(name):
            return keras.layers.Dense(
                hidden_dim,
                use_bias=use_bias,
                kernel_initializer=kernel_initializer,
                dtype=self.dtype_policy,
                name=name,
            )

        self.q = dense("q")
        self.k = dense("k")
        self.v = dense("v")
        self.output_transform = dense("output_transform")
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="attention_dropout"
        )

    def build(self, query_shape: tuple, memory_shape: tuple = None) -> None:
        memory_shape = query_shape if memory_shape is None else memory_shape
        self.q.build(query_shape)
        self.k.build(memory_shape)
        self.v.build(memory_shape)
        self.output_transform.build((*query_shape[:-1], self.hidden_dim))

    def initial_cache(
        self, batch_size: Any, max_length: int, dtype: str | None = None
    ) -> dict:
        """Returns zero key/value caches `[batch_size, max_length, d]`."""
        shape = (batch_size, max_length, self.hidden_dim)
        dtype = dtype or self.compute_dtype
        return {
            "key": ops.zeros(shape, dtype=dtype),
            "value": ops.zeros(shape, dtype=dtype),
        }

    def precompute_memory(self, memory: Any) -> dict:
        """Returns the memory's keys and values `{"key", "value"}` [B, Tk, d].

        Builds the layer when needed (query depth taken as `hidden_dim`).
        """
        if not self.built:
            self.build((None, None, self.hidden_dim), tuple(memory.shape))
        return {"key": self.k(memory), "value": self.v(memory)}

    def _split_heads(self, x: Any) -> Any:
        batch = ops.shape(x)[0]
        # [B, T, d] -> [B, T, heads, d / heads]
        return ops.reshape(x, (batch, -1, self.num_heads, self.head_dim))

    def _attend(
        self, q: Any, key: Any, value: Any, mask: Any, training: Any
    ) -> Any:
        q = self._split_heads(q) * ops.cast(self.head_dim**-0.5, q.dtype)
        key = self._split_heads(key)
        value = self._split_heads(value)
        # [B, Tq, h, dh] x [B, Tk, h, dh] -> [B, h, Tq, Tk]
        logits = ops.einsum("bqhd,bkhd->bhqk", q, key)
        # Softmax in float32 so -1e9 and large logits stay exact in fp16.
        logits = ops.cast(logits, "float32")
        if mask is not None:
            logits = logits + masks.mask_to_bias(mask, "float32")
        weights = ops.cast(ops.softmax(logits, axis=-1), value.dtype)
        weights = self.dropout_layer(weights, training=training)
        # [B, h, Tq, Tk] x [B, Tk, h, dh] -> [B, Tq, h, dh]
        out = ops.einsum("bhqk,bkhd->bqhd", weights, value)
        batch = ops.shape(out)[0]
        out = ops.reshape(out, (batch, -1, self.hidden_dim))  # [B, Tq, d]
        return self.output_transform(out)

    def call(
        self,
        query: Any,
        memory: Any = None,
        *,
        training: bool | None = None,
        memory_mask: Any = None,
        causal: bool = False,
        cache: dict | None = None,
        cache_index: Any = None,
        memory_cache: dict | None = None,
    ) -> Any:
        q = self.q(query)  # [B, Tq, d]
        query_length = ops.shape(query)[1]
        if cache is not None:
            if memory is not None or memory_cache is not None:
                raise ValueError("cache is for self-attention only")
            index = 0 if cache_index is None else cache_index
            key = _write_cache(cache["key"], self.k(query), index)
            value = _write_cache(cache["value"], self.v(query), index)
            mask = masks.attention_mask(
                memory_mask=memory_mask,
                causal=True,
                query_length=query_length,
                memory_length=ops.shape(key)[1],
                query_offset=index,
            )
            out = self._attend(q, key, value, mask, training)
            return out, {"key": key, "value": value}
        if memory_cache is not None:
            key, value = memory_cache["key"], memory_cache["value"]
        else:
            source = query if memory is None else memory
            key, value = self.k(source), self.v(source)
        mask = masks.attention_mask(
            memory_mask=memory_mask,
            causal=causal,
            query_length=query_length,
            memory_length=ops.shape(key)[1],
        )
        return self._attend(q, key, value, mask, training)

    def compute_output_shape(
        self, query_shape: tuple, memory_shape: tuple = None
    ) -> tuple:
        return (*query_shape[:-1], self.hidden_dim)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            dropout=self.dropout,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
        )
        return config


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class AttentionBlock(keras.layers.Layer):
    """The paper's attention block (section 2.2), causal in the target.

    `x = ConvBlock_2(ConvBlock_1(target + timing))` (both causal),
    `y = SelfAttention(x, causal)` gives the queries,
    `z = Attention(y, source)` with keys and values from two separate
    pointwise convolutions of the source (the `k` and `v` [d, d] kernels of
    `source_attention`), and the output is `LN(x + y + z)`.

    The paper does not say how the pieces are summed. We follow T2T's
    decoder (`LN(x + y + z)`, with the query of the source attention being
    `y`), which also keeps C1's `LN(shifted + attended)` residual idea: the
    ConvBlocks already carry the target through their own residuals.

    Args:
      hidden_dim: depth d of target, source and output.
      num_heads: attention heads (8 in the paper).
      dropout: dropout at the end of each ConvBlock (0.4 in the paper).
      attention_dropout: dropout on the attention weights.
      kernel_sizes: ConvBlock kernel sizes.
      dilation_rates: ConvBlock dilation rates.
      layer_norm_epsilon: epsilon of every LayerNorm.
      kernel_initializer: initializer of the conv and attention kernels.
      num_timescales: timing signal; None = full depth (the paper's).
      use_timing_signal: add the timing signal (a stack of blocks may add it
        only in its first block).

    Call args:
      target: `[B, T, d]` (shifted targets in the mixer / decoder).
      source: `[B, S, d]`.
      training: enables dropout.
      source_mask: bool `[B, S]`, True at real source positions.
      target_mask: bool `[B, T]`; zeroes padded targets inside the
        ConvBlocks. Self-attention is causal and leaves target padding
        unmasked (as T2T): with right padding no real position sees it.

    Returns:
      `[B, T, d]`.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 8,
        *,
        dropout: float = 0.4,
        attention_dropout: float = 0.0,
        kernel_sizes: Sequence[int] = (3, 3, 15, 15),
        dilation_rates: Sequence[int] = (1, 1, 1, 8),
        layer_norm_epsilon: float = 1e-6,
        kernel_initializer: Any = "glorot_uniform",
        num_timescales: int | None = None,
        use_timing_signal: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.dropout = dropout
        self.use_timing_signal = use_timing_signal
        self.attention_dropout = attention_dropout
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.dilation_rates = tuple(int(d) for d in dilation_rates)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.num_timescales = num_timescales
        policy = self.dtype_policy
        self.timing = positional.AddTimingSignal(
            num_timescales, dtype=policy, name="timing"
        )
        self.conv_blocks = [
            conv.ConvBlock(
                hidden_dim,
                kernel_sizes=self.kernel_sizes,
                dilation_rates=self.dilation_rates,
                dropout=dropout,
                causal=True,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=kernel_initializer,
                dtype=policy,
                name=f"conv_block_{i}",
            )
            for i in range(2)
        ]
        self.self_attention = MultiHeadAttention(
            hidden_dim,
            num_heads,
            dropout=attention_dropout,
            kernel_initializer=kernel_initializer,
            dtype=policy,
            name="self_attention",
        )
        self.source_attention = MultiHeadAttention(
            hidden_dim,
            num_heads,
            dropout=attention_dropout,
            kernel_initializer=kernel_initializer,
            dtype=policy,
            name="source_attention",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="layer_norm"
        )

    def build(self, target_shape: tuple, source_shape: tuple = None) -> None:
        source_shape = target_shape if source_shape is None else source_shape
        for block in self.conv_blocks:
            block.build(target_shape)
        self.self_attention.build(target_shape)
        self.source_attention.build(target_shape, source_shape)
        self.layer_norm.build(target_shape)

    def call(
        self,
        target: Any,
        source: Any,
        *,
        training: bool | None = None,
        source_mask: Any = None,
        target_mask: Any = None,
    ) -> Any:
        x = self.timing(target) if self.use_timing_signal else target
        for block in self.conv_blocks:
            x = block(x, training=training, padding_mask=target_mask)
        y = self.self_attention(x, training=training, causal=True)
        z = self.source_attention(
            y, source, training=training, memory_mask=source_mask
        )
        return self.layer_norm(x + y + z)

    def initial_state(
        self, source: Any, max_length: int, *, source_mask: Any = None
    ) -> dict:
        """Returns the decoding state for up to `max_length` target steps.

        Args:
          source: `[B, S, d]`; its keys and values are computed once here.
          max_length: size of the self-attention cache.
          source_mask: bool `[B, S]` or None.

        Returns:
          `{"index": int32 scalar, "conv": [block states], "self_attention":
          cache, "source": memory keys/values, "source_mask": bool [B, S]}`.
        """
        if not self.built:
            self.build((None, None, self.hidden_dim), tuple(source.shape))
        batch = ops.shape(source)[0]
        dtype = self.compute_dtype
        if source_mask is None:
            source_mask = ops.ones(ops.shape(source)[:2], dtype="bool")
        return {
            "index": ops.zeros((), dtype="int32"),
            "conv": [b.initial_state(batch, dtype) for b in self.conv_blocks],
            "self_attention": self.self_attention.initial_cache(
                batch, max_length, dtype
            ),
            "source": self.source_attention.precompute_memory(source),
            "source_mask": source_mask,
        }

    def step(
        self, target_t: Any, state: dict, *, training: bool = False
    ) -> tuple[Any, dict]:
        """Decodes one position: `target_t` `[B, 1, d]` -> (`[B, 1, d]`, state).

        Equal to the full call's output at position `state["index"]` when the
        earlier target positions went through `step` before.
        """
        index = state["index"]
        x = target_t
        if self.use_timing_signal:
            x = self.timing(target_t, start_index=index)
        conv_states = []
        for block, block_state in zip(self.conv_blocks, state["conv"]):
            x, block_state = block.step(x, block_state, training=training)
            conv_states.append(block_state)
        y, cache = self.self_attention(
            x,
            training=training,
            cache=state["self_attention"],
            cache_index=index,
        )
        z = self.source_attention(
            y,
            training=training,
            memory_mask=state["source_mask"],
            memory_cache=state["source"],
        )
        new_state = dict(state)
        new_state.update(index=index + 1, conv=conv_states)
        new_state["self_attention"] = cache
        return self.layer_norm(x + y + z), new_state

    def compute_output_shape(
        self, target_shape: tuple, source_shape: tuple = None
    ) -> tuple:
        return target_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            kernel_sizes=self.kernel_sizes,
            dilation_rates=self.dilation_rates,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
            num_timescales=self.num_timescales,
            use_timing_signal=self.use_timing_signal,
        )
        return config
