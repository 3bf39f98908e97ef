"""The body of the last T2T release's MultiModel (T2T v1.9.0, 2017-07..2018-09).

This is not the paper's body (section 2.4) but the one the paper's code turned
into (multimodel_facts.md section 4.6), kept as a configuration for
side-by-side checks with the original code and for importing its checkpoints:
- `T2TV19Encoder`: the 16-timescale timing signal on the input, then
  `num_layers` layers `x <- LN(x + drop(MoE(x)) + drop(conv(x)))`, where the
  conv stack is T2T's `conv_res_step` (four separable ConvSteps, kernels 3, 3,
  15, 15, dilations 1, 1, 1, 4, widths `filter_size, filter_size, d, d`, with
  dropout between the pairs) and the MoE runs on every position.
- `T2TV19Decoder`: Transformer-style. The full-depth timing signal on the
  shifted targets, then per layer `y = causal self-attention(x)`, `z =
  attention(query=y, memory=encoded)`, `x <- LN(x + drop(y) + drop(z))` and a
  feed-forward sublayer `x <- LN(x + drop(ffn(x)))` whose ffn is an MoE at the
  layers of `moe_layers` and a ReLU FFN elsewhere.
Both components have the body-component call API of docs/DESIGN.md, and
`forward` also returns the intermediate tensors (the T2T parity taps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from t2t_multimodel.layers import attention, conv, moe, positional


def _layer_norm(epsilon: float, policy: Any, name: str) -> Any:
    return keras.layers.LayerNormalization(
        epsilon=epsilon, dtype=policy, name=name
    )


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class T2TV19Encoder(keras.layers.Layer):
    """T2T v1.9's MultiModel encoder: conv stack and MoE side by side.

    Layer i: `conv = ConvStep_3(ConvStep_2(drop(ConvStep_1(ConvStep_0(x)))))`
    (T2T `conv_res_step`: each ConvStep is `LN(SepConv(ReLU(y) * mask))`, no
    bias), `moe = SparseMoE(x)` with expert width `filter_size` and output
    scale `(filter_size / d) ** -0.5` (T2T `ffn_expert_fn`), and
    `x <- LN(x + drop(moe) + drop(conv))`. T2T calls the MoE with loss
    coefficient 1 and then multiplies by `moe_loss_coef`; the layer adds
    `moe_loss_coef * (cv2(importance) + cv2(load))`, the same number.

    Args:
      hidden_dim: the body width d.
      filter_size: width of the first two convs and of the expert hidden
        layer (2048 in `multimodel_base`, 512 in `multimodel_tiny`).
      num_layers: number of layers (T2T `num_hidden_layers`).
      num_experts: experts per MoE (T2T `moe_num_experts`, 30).
      top_k: experts per position (T2T `moe_k`, 2).
      moe_loss_coef: coefficient of the load-balancing loss (1e-2).
      kernel_size: kernel of the first two convs (T2T `kernel_height`, 3).
      large_kernel_size: kernel of the last two convs (15).
      dilation_rates: the four convs' dilations (1, 1, 1, 4).
      dropout: dropout rate (T2T `dropout`, 0.1 in training).
      num_timescales: timescales of the input timing signal (16; None for
        the full-depth signal).
      moe_padding_mask: pass the padding mask to the MoE. T2T v1.9 does not
        (padding rows are routed and count in the load-balancing loss).
      noise_epsilon: the MoE's gate-noise epsilon (1e-2).
      capacity_factor: MoE expert capacity (None: no token is dropped).
      layer_norm_epsilon: epsilon of every LayerNorm (1e-6).
      kernel_initializer: initializer of the conv kernels (T2T: orthogonal).
      expert_initializer: initializer of the expert kernels.
      **kwargs: `keras.layers.Layer` arguments.

    Call args:
      x: `[B, L, d]`, the input modality's output.
      training: enables dropout and the MoE gate noise.
      padding_mask: bool `[B, L]`, True at real positions, or None. The
        ConvSteps zero padded positions after every ReLU.

    Returns:
      `[B, L, d]`.
    """

    def __init__(
        self,
        hidden_dim: int,
        filter_size: int,
        num_layers: int,
        *,
        num_experts: int = 30,
        top_k: int = 2,
        moe_loss_coef: float = 1e-2,
        kernel_size: int = 3,
        large_kernel_size: int = 15,
        dilation_rates: Sequence[int] = (1, 1, 1, 4),
        dropout: float = 0.1,
        num_timescales: int | None = 16,
        moe_padding_mask: bool = False,
        noise_epsilon: float = 1e-2,
        capacity_factor: float | None = None,
        layer_norm_epsilon: float = 1e-6,
        kernel_initializer: Any = "orthogonal",
        expert_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.filter_size = int(filter_size)
        self.num_layers = int(num_layers)
        self.num_experts = int(num_experts)
        self.top_k = int(top_k)
        self.moe_loss_coef = moe_loss_coef
        self.kernel_size = int(kernel_size)
        self.large_kernel_size = int(large_kernel_size)
        self.dilation_rates = tuple(int(r) for r in dilation_rates)
        if len(self.dilation_rates) != 4:
            raise ValueError("dilation_rates needs 4 values")
        self.dropout = dropout
        self.num_timescales = num_timescales
        self.moe_padding_mask = moe_padding_mask
        self.noise_epsilon = noise_epsilon
        self.capacity_factor = capacity_factor
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.expert_initializer = keras.initializers.get(expert_initializer)
        policy = self.dtype_policy
        self.timing = positional.AddTimingSignal(
            num_timescales, dtype=policy, name="timing"
        )
        widths = (filter_size, filter_size, hidden_dim, hidden_dim)
        kernels = (kernel_size, kernel_size) + (large_kernel_size,) * 2
        self.conv_steps = [
            [
                conv.ConvStep(
                    widths[j],
                    kernels[j],
                    dilation_rate=self.dilation_rates[j],
                    layer_norm_epsilon=layer_norm_epsilon,
                    kernel_initializer=kernel_initializer,
                    dtype=policy,
                    name=f"layer_{i}_conv_{j}",
                )
                for j in range(4)
            ]
            for i in range(num_layers)
        ]
        self.moes = [
            moe.SparseMoE(
                hidden_dim,
                filter_size,
                num_experts,
                top_k=top_k,
                loss_coef=moe_loss_coef,
                noise_epsilon=noise_epsilon,
                capacity_factor=capacity_factor,
                expert_output_scale=(filter_size / hidden_dim) ** -0.5,
                kernel_initializer=expert_initializer,
                dtype=policy,
                name=f"layer_{i}_moe",
            )
            for i in range(num_layers)
        ]
        self.layer_norms = [
            _layer_norm(layer_norm_epsilon, policy, f"layer_{i}_norm")
            for i in range(num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=policy, name="dropout"
        )

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (None, None, self.hidden_dim)
        d, f = self.hidden_dim, self.filter_size
        for i in range(self.num_layers):
            for step, depth in zip(self.conv_steps[i], (d, f, f, d)):
                step.build((None, None, depth))
            self.moes[i].build(shape)
            self.layer_norms[i].build(shape)
        self.built = True

    def forward(
        self, x: Any, *, training: bool | None = None, padding_mask: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """Runs the encoder and returns `(output, intermediates)`.

        The intermediates are `input_timing` (the input plus the timing
        signal) and, per layer i, `layer_{i}/conv`, `layer_{i}/moe` and
        `layer_{i}/output`, all `[B, L, d]`. Layer i's input is the previous
        layer's output (`input_timing` for layer 0).
        """
        drop = self.dropout_layer
        x = self.timing(x)
        taps = {"input_timing": x}
        moe_mask = padding_mask if self.moe_padding_mask else None
        for i in range(self.num_layers):
            steps = self.conv_steps[i]
            y = x
            for j, step in enumerate(steps):
                if j == 2:  # T2T drops out between the two conv pairs.
                    y = drop(y, training=training)
                y = step(y, training=training, padding_mask=padding_mask)
            m = self.moes[i](x, training=training, padding_mask=moe_mask)
            x = self.layer_norms[i](
                x + drop(m, training=training) + drop(y, training=training)
            )
            taps.update(
                {
                    f"layer_{i}/conv": y,
                    f"layer_{i}/moe": m,
                    f"layer_{i}/output": x,
                }
            )
        return x, taps

    def call(
        self, x: Any, *, training: bool | None = None, padding_mask: Any = None
    ) -> Any:
        return self.forward(x, training=training, padding_mask=padding_mask)[0]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            filter_size=self.filter_size,
            num_layers=self.num_layers,
            num_experts=self.num_experts,
            top_k=self.top_k,
            moe_loss_coef=self.moe_loss_coef,
            kernel_size=self.kernel_size,
            large_kernel_size=self.large_kernel_size,
            dilation_rates=self.dilation_rates,
            dropout=self.dropout,
            num_timescales=self.num_timescales,
            moe_padding_mask=self.moe_padding_mask,
            noise_epsilon=self.noise_epsilon,
            capacity_factor=self.capacity_factor,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
            expert_initializer=keras.initializers.serialize(
                self.expert_initializer
            ),
        )
        return config


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class T2TV19Decoder(keras.layers.Layer):
    """T2T v1.9's MultiModel decoder: a Transformer decoder with MoE FFNs.

    Input: the shifted targets (command token in slot 0, from the model) plus
    the full-depth timing signal, then dropout. Layer j:
    `y = SelfAttention(x, causal)`, `z = Attention(query=y, memory=encoded,
    source padding masked)`, `x <- LN(x + drop(y) + drop(z))`; then
    `x <- LN(x + drop(ffn(x)))`, where ffn is a `SparseMoE` (expert width
    `moe_hidden_size`, output scale `(moe_hidden_size / d) ** -0.5`) at the
    layers in `moe_layers` and `relu(x W1 + b1) W2 + b2` (width
    `filter_size`, dropout on the hidden layer; T2T `conv_hidden_relu`)
    elsewhere. Target padding is not masked (as in T2T): with right padding
    the causal mask keeps it away from real positions.

    Args:
      hidden_dim: the body width d.
      filter_size: width of the dense FFN.
      num_layers: number of layers (T2T `num_hidden_layers`).
      num_heads: attention heads (8).
      moe_layers: indices of the layers whose FFN is an MoE (T2T
        `moe_layers`: "2" in `multimodel_base`, "0" in `multimodel_tiny`).
      num_experts: experts per MoE (30).
      top_k: experts per position (2).
      moe_hidden_size: expert hidden width (T2T `moe_hidden_sizes`, 2048).
      moe_loss_coef: coefficient of the load-balancing loss (1e-2).
      dropout: residual, input and FFN dropout (T2T `dropout`).
      attention_dropout: dropout on the attention weights.
      noise_epsilon: the MoE's gate-noise epsilon (1e-2).
      capacity_factor: MoE expert capacity (None: no token is dropped).
      layer_norm_epsilon: epsilon of every LayerNorm (1e-6).
      kernel_initializer: initializer of the attention and FFN kernels.
      expert_initializer: initializer of the expert kernels.
      **kwargs: `keras.layers.Layer` arguments.

    Call args:
      x: `[B, T, d]`, the shifted target embeddings.
      encoded: `[B, S, d]`, the encoder output.
      training: enables dropout and the MoE gate noise.
      source_mask: bool `[B, S]`, True at real encoded positions.
      target_mask: bool `[B, T]`; unused (see above).

    Returns:
      `[B, T, d]`; position t depends on `x[:, :t + 1]` only.
    """

    def __init__(
        self,
        hidden_dim: int,
        filter_size: int,
        num_layers: int,
        *,
        num_heads: int = 8,
        moe_layers: Sequence[int] = (2,),
        num_experts: int = 30,
        top_k: int = 2,
        moe_hidden_size: int = 2048,
        moe_loss_coef: float = 1e-2,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        noise_epsilon: float = 1e-2,
        capacity_factor: float | None = None,
        layer_norm_epsilon: float = 1e-6,
        kernel_initializer: Any = "orthogonal",
        expert_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.filter_size = int(filter_size)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.moe_layers = tuple(sorted(int(j) for j in moe_layers))
        bad = [j for j in self.moe_layers if not 0 <= j < num_layers]
        if bad:
            raise ValueError(f"moe_layers {bad} not in [0, {num_layers})")
        self.num_experts = int(num_experts)
        self.top_k = int(top_k)
        self.moe_hidden_size = int(moe_hidden_size)
        self.moe_loss_coef = moe_loss_coef
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.noise_epsilon = noise_epsilon
        self.capacity_factor = capacity_factor
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.expert_initializer = keras.initializers.get(expert_initializer)
        policy = self.dtype_policy
        self.timing = positional.AddTimingSignal(
            None, dtype=policy, name="timing"
        )

        def mha(name):
            return attention.MultiHeadAttention(
                hidden_dim,
                num_heads,
                dropout=attention_dropout,
                kernel_initializer=kernel_initializer,
                dtype=policy,
                name=name,
            )

        def dense(units, name, activation=None):
            return keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=kernel_initializer,
                dtype=policy,
                name=name,
            )

        n = num_layers
        self.self_attentions = [
            mha(f"layer_{j}_self_attention") for j in range(n)
        ]
        self.encdec_attentions = [
            mha(f"layer_{j}_encdec_attention") for j in range(n)
        ]
        self.attention_norms = [
            _layer_norm(layer_norm_epsilon, policy, f"layer_{j}_attention_norm")
            for j in range(n)
        ]
        self.ffn_norms = [
            _layer_norm(layer_norm_epsilon, policy, f"layer_{j}_ffn_norm")
            for j in range(n)
        ]
        # Per layer: a SparseMoE, or the [conv1, conv2] Dense pair.
        self.ffns = []
        for j in range(n):
            if j in self.moe_layers:
                self.ffns.append(
                    moe.SparseMoE(
                        hidden_dim,
                        moe_hidden_size,
                        num_experts,
                        top_k=top_k,
                        loss_coef=moe_loss_coef,
                        noise_epsilon=noise_epsilon,
                        capacity_factor=capacity_factor,
                        expert_output_scale=(moe_hidden_size / hidden_dim)
                        ** -0.5,
                        kernel_initializer=expert_initializer,
                        dtype=policy,
                        name=f"layer_{j}_moe",
                    )
                )
            else:
                self.ffns.append(
                    [
                        dense(filter_size, f"layer_{j}_conv1", "relu"),
                        dense(hidden_dim, f"layer_{j}_conv2"),
                    ]
                )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=policy, name="dropout"
        )

    def build(self, x_shape: tuple | None = None, encoded_shape=None) -> None:
        shape = (None, None, self.hidden_dim)
        for j in range(self.num_layers):
            self.self_attentions[j].build(shape)
            self.encdec_attentions[j].build(shape, shape)
            self.attention_norms[j].build(shape)
            self.ffn_norms[j].build(shape)
            if j in self.moe_layers:
                self.ffns[j].build(shape)
            else:
                self.ffns[j][0].build(shape)
                self.ffns[j][1].build((None, None, self.filter_size))
        self.built = True

    def _ffn(self, j: int, x: Any, training: Any) -> Any:
        if j in self.moe_layers:
            return self.ffns[j](x, training=training)
        conv1, conv2 = self.ffns[j]
        hidden = self.dropout_layer(conv1(x), training=training)
        return conv2(hidden)

    def _layer(
        self, j: int, x: Any, y: Any, z: Any, training: Any
    ) -> tuple[Any, Any, Any]:
        """The residuals of layer j given its attention outputs y and z."""
        drop = self.dropout_layer
        x = self.attention_norms[j](
            x + drop(y, training=training) + drop(z, training=training)
        )
        f = self._ffn(j, x, training)
        return x, f, self.ffn_norms[j](x + drop(f, training=training))

    def forward(
        self,
        x: Any,
        encoded: Any,
        *,
        training: bool | None = None,
        source_mask: Any = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Runs the decoder and returns `(output, intermediates)`.

        The intermediates (`[B, T, d]`) are `input_timing` and, per layer j,
        `layer_{j}/self_attention` (y), `layer_{j}/encdec_attention` (z),
        `layer_{j}/attention_output` (`LN(x + y + z)`), `layer_{j}/ffn` and
        `layer_{j}/output`.
        """
        x = self.dropout_layer(self.timing(x), training=training)
        taps = {"input_timing": x}
        for j in range(self.num_layers):
            y = self.self_attentions[j](x, training=training, causal=True)
            z = self.encdec_attentions[j](
                y, encoded, training=training, memory_mask=source_mask
            )
            attended, f, x = self._layer(j, x, y, z, training)
            taps.update(
                {
                    f"layer_{j}/self_attention": y,
                    f"layer_{j}/encdec_attention": z,
                    f"layer_{j}/attention_output": attended,
                    f"layer_{j}/ffn": f,
                    f"layer_{j}/output": x,
                }
            )
        return x, taps

    def call(
        self,
        x: Any,
        encoded: Any,
        *,
        training: bool | None = None,
        source_mask: Any = None,
        target_mask: Any = None,
    ) -> Any:
        del target_mask  # T2T leaves target padding unmasked (causal only).
        return self.forward(
            x, encoded, training=training, source_mask=source_mask
        )[0]

    def initial_state(
        self, encoded: Any, source_mask: Any, max_length: int
    ) -> dict:
        """The decoding state: self-attention caches and memory keys/values.

        Args:
          encoded: `[B, S, d]`.
          source_mask: bool `[B, S]` or None.
          max_length: the longest target; sizes the self-attention caches.

        Returns:
          `{"self_attention": [caches], "memory": [keys/values],
          "source_mask": bool [B, S]}`.
        """
        if not self.built:
            self.build()
        batch = ops.shape(encoded)[0]
        if source_mask is None:
            source_mask = ops.ones(ops.shape(encoded)[:2], dtype="bool")
        return {
            "self_attention": [
                a.initial_cache(batch, max_length, self.compute_dtype)
                for a in self.self_attentions
            ],
            "memory": [
                a.precompute_memory(encoded) for a in self.encdec_attentions
            ],
            "source_mask": source_mask,
        }

    def step(self, x_t: Any, state: dict, index: Any) -> tuple[Any, dict]:
        """One position: `x_t` `[B, 1, d]` at `index` -> (`[B, 1, d]`, state).

        Equal to the full call's output at `index` (inference mode) when the
        positions before it went through `step` first.
        """
        x = self.timing(x_t, start_index=index)
        caches = []
        for j in range(self.num_layers):
            y, cache = self.self_attentions[j](
                x, cache=state["self_attention"][j], cache_index=index
            )
            caches.append(cache)
            z = self.encdec_attentions[j](
                y,
                memory_mask=state["source_mask"],
                memory_cache=state["memory"][j],
            )
            x = self._layer(j, x, y, z, False)[2]
        new_state = dict(state)
        new_state["self_attention"] = caches
        return x, new_state

    def compute_output_shape(self, x_shape: tuple, encoded_shape=None) -> tuple:
        return tuple(x_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            filter_size=self.filter_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            moe_layers=self.moe_layers,
            num_experts=self.num_experts,
            top_k=self.top_k,
            moe_hidden_size=self.moe_hidden_size,
            moe_loss_coef=self.moe_loss_coef,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            noise_epsilon=self.noise_epsilon,
            capacity_factor=self.capacity_factor,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
            expert_initializer=keras.initializers.serialize(
                self.expert_initializer
            ),
        )
        return config
