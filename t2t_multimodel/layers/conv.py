"""Separable convolutions, the ConvStep and the ConvBlock of the body.

Implements section 2.1 of "One Model To Learn Them All": the depthwise-separable
convolution `SepConv_{d,s,f}`, the step `ConvStep = LN(SepConv(ReLU(x)))` and
the four-step `ConvBlock` with residuals from the block input to the outputs of
steps 2 and 4 and dropout at the end. Kernels use the T2T layout (depthwise
`[k_h, k_w, in, 1]`, pointwise `[1, 1, in, out]`), so T2T checkpoints load as
they are. Causal (left-padded) layers also decode incrementally with
`initial_state` and `step`, which keep a fixed-size buffer of past inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


def _as_pair(value: int | Sequence[int], rank: int, name: str) -> tuple:
    """Returns `(along_length_or_height, along_width)` for a conv argument."""
    if isinstance(value, int):
        return (value, 1) if rank == 1 else (value, value)
    value = tuple(int(v) for v in value)
    if rank == 1 and len(value) == 1:
        return (value[0], 1)
    if rank == 2 and len(value) == 2:
        return value
    raise ValueError(f"{name}={value!r} does not fit rank {rank}")


def _normalize(value: int | Sequence[int]) -> int | tuple:
    return value if isinstance(value, int) else tuple(int(v) for v in value)


def _layer_norm(layer: keras.layers.LayerNormalization, x: Any) -> Any:
    """`layer(x)` over the last axis in fewer graph ops (decoding steps).

    The same maths as Keras' LayerNormalization (biased variance, epsilon
    inside the square root), without the layer call's casts; the result
    differs from `layer(x)` only by float rounding.
    """
    mean = ops.mean(x, axis=-1, keepdims=True)  # [..., 1]
    centered = x - mean
    variance = ops.mean(ops.square(centered), axis=-1, keepdims=True)
    scale = ops.rsqrt(variance + layer.epsilon)
    if layer.scale:
        scale = scale * ops.cast(layer.gamma, x.dtype)
    y = centered * scale
    if layer.center:
        y = y + ops.cast(layer.beta, x.dtype)
    return y


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class SeparableConv(keras.layers.Layer):
    """Depthwise-separable convolution (the paper's `SepConv_{d,s,f}`).

    A per-channel (depthwise, multiplier 1) convolution followed by a pointwise
    projection to `filters` channels, bias-free by default as in T2T.

    Args:
      filters: output channels `f`.
      kernel_size: int, or a pair `(k_h, k_w)` for rank 2.
      dilation_rate: dilation `d` (int or pair).
      strides: stride `s` (int or pair). Cannot be combined with dilation > 1.
      rank: 1 for sequences `[B, L, C]` (the kernel runs along L and is stored
        as `[k, 1, C, 1]`), 2 for images `[B, H, W, C]`.
      causal: rank 1 only: pad `(k - 1) * d` zeros on the left instead of SAME
        padding, so output t only sees inputs at positions <= t * s.
      use_bias: add a bias after the pointwise projection.
      kernel_initializer: initializer of both kernels.
      bias_initializer: initializer of the bias.

    Call args:
      inputs: `[B, L, C]` (rank 1) or `[B, H, W, C]` (rank 2).

    Returns:
      `[B, ceil(L / s), filters]` or `[B, ceil(H / s_h), ceil(W / s_w), f]`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        *,
        dilation_rate: int | Sequence[int] = 1,
        strides: int | Sequence[int] = 1,
        rank: int = 1,
        causal: bool = False,
        use_bias: bool = False,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if rank not in (1, 2):
            raise ValueError(f"rank must be 1 or 2, got {rank}")
        if causal and rank != 1:
            raise ValueError("causal padding is only defined for rank 1")
        self.filters = int(filters)
        self.kernel_size = _normalize(kernel_size)
        self.dilation_rate = _normalize(dilation_rate)
        self.strides = _normalize(strides)
        self.rank = rank
        self.causal = causal
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self._kernel = _as_pair(kernel_size, rank, "kernel_size")
        self._dilation = _as_pair(dilation_rate, rank, "dilation_rate")
        self._strides = _as_pair(strides, rank, "strides")
        if max(self._strides) > 1 and max(self._dilation) > 1:
            # tf.nn.depthwise_conv2d rejects this combination.
            raise ValueError("strides > 1 and dilation_rate > 1 together")

    @property
    def receptive_field(self) -> int:
        """Input positions one output position sees along the length axis."""
        return (self._kernel[0] - 1) * self._dilation[0] + 1

    def build(self, input_shape: tuple) -> None:
        channels = int(input_shape[-1])
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel",
            shape=(*self._kernel, channels, 1),
            initializer=self.kernel_initializer,
        )
        self.pointwise_kernel = self.add_weight(
            name="pointwise_kernel",
            shape=(1, 1, channels, self.filters),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
                initializer=self.bias_initializer,
            )

    def _pointwise(self, x: Any) -> Any:
        channels = self.pointwise_kernel.shape[2]
        # [1, 1, in, out] -> [in, out]: a 1x1 conv is a matmul on channels.
        kernel = ops.reshape(self.pointwise_kernel, (channels, self.filters))
        y = ops.matmul(x, ops.cast(kernel, x.dtype))
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return y

    def call(self, inputs: Any) -> Any:
        x = inputs
        if self.rank == 1:
            x = ops.expand_dims(x, 2)  # [B, L, 1, C]
        padding = "same"
        if self.causal:
            left = self.receptive_field - 1
            x = ops.pad(x, ((0, 0), (left, 0), (0, 0), (0, 0)))
            padding = "valid"
        y = ops.depthwise_conv(
            x,
            ops.cast(self.depthwise_kernel, x.dtype),
            strides=self._strides,
            padding=padding,
            dilation_rate=self._dilation,
        )  # [B, L', W', C]
        y = self._pointwise(y)  # [B, L', W', filters]
        if self.rank == 1:
            # Indexing, not squeeze: a dilated conv on an unknown length
            # loses the static width 1 (space_to_batch), and squeeze needs it.
            y = y[:, :, 0, :]  # [B, L', filters]
        return y

    def apply_window(self, window: Any) -> Any:
        """Computes one causal output position from its receptive field.

        Args:
          window: `[B, receptive_field, C]`, the last inputs, oldest first.

        Returns:
          `[B, 1, filters]`, equal to the causal call's output at the position
          of the window's last input (stride 1).
        """
        # Few graph ops: at batch 1 a decoding step is dominated by per-op
        # overhead, so no tensordot (ops.matmul on 3-D inputs) here.
        dilation = self._dilation[0]
        taps = window if dilation == 1 else window[:, ::dilation]  # [B, k, C]
        # [k, 1, C, 1] -> [k, C]
        kernel = ops.cast(self.depthwise_kernel[:, 0, :, 0], window.dtype)
        y = ops.einsum("bkc,kc->bc", taps, kernel)  # [B, C]
        channels = self.pointwise_kernel.shape[2]
        # [1, 1, in, out] -> [in, out]
        pointwise = ops.reshape(self.pointwise_kernel, (channels, self.filters))
        y = ops.matmul(y, ops.cast(pointwise, y.dtype))  # [B, filters]
        if self.use_bias:
            y = y + ops.cast(self.bias, y.dtype)
        return ops.expand_dims(y, 1)  # [B, 1, filters]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def shrink(size, stride):
            return None if size is None else -(-size // stride)

        spatial = [
            shrink(input_shape[1 + i], self._strides[i])
            for i in range(self.rank)
        ]
        return (input_shape[0], *spatial, self.filters)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            dilation_rate=self.dilation_rate,
            strides=self.strides,
            rank=self.rank,
            causal=self.causal,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
            bias_initializer=keras.initializers.serialize(
                self.bias_initializer
            ),
        )
        return config


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class ConvStep(keras.layers.Layer):
    """The paper's `ConvStep_{d,s,f}(W, x) = LN(SepConv_{d,s,f}(W, ReLU(x)))`.

    Args:
      filters: output channels `f`.
      kernel_size: int, or a pair for rank 2.
      dilation_rate: dilation `d`.
      strides: stride `s`.
      rank: 1 for `[B, L, C]`, 2 for `[B, H, W, C]`.
      causal: left padding (rank 1), for the mixer and the decoder.
      use_relu: apply the leading ReLU (T2T's image entry conv has none).
      layer_norm_epsilon: LayerNorm epsilon, 1e-6 as in T2T.
      kernel_initializer: initializer of the separable conv kernels.

    Call args:
      x: `[B, L, C]` or `[B, H, W, C]`.
      training: unused (no dropout), passed for a uniform signature.
      padding_mask: bool `x.shape[:-1]`, True at real positions. Padded
        positions are zeroed after the ReLU and before the conv (T2T's
        `relu(y) * mask`), so they never change outputs at real positions.

    Returns:
      `[B, L', filters]` (`[B, H', W', filters]`); the outputs at padded
      positions are not zero.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        *,
        dilation_rate: int | Sequence[int] = 1,
        strides: int | Sequence[int] = 1,
        rank: int = 1,
        causal: bool = False,
        use_relu: bool = True,
        layer_norm_epsilon: float = 1e-6,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _normalize(kernel_size)
        self.dilation_rate = _normalize(dilation_rate)
        self.strides = _normalize(strides)
        self.rank = rank
        self.causal = causal
        self.use_relu = use_relu
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.conv = SeparableConv(
            filters,
            kernel_size,
            dilation_rate=dilation_rate,
            strides=strides,
            rank=rank,
            causal=causal,
            kernel_initializer=kernel_initializer,
            dtype=self.dtype_policy,
            name="separable_conv",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="layer_norm",
        )

    def build(self, input_shape: tuple) -> None:
        self.conv.build(input_shape)
        self.layer_norm.build(self.conv.compute_output_shape(input_shape))

    def _activate(self, x: Any) -> Any:
        return ops.relu(x) if self.use_relu else x

    def call(
        self, x: Any, *, training: bool | None = None, padding_mask: Any = None
    ) -> Any:
        y = self._activate(x)
        if padding_mask is not None:
            mask = ops.cast(ops.expand_dims(padding_mask, -1), y.dtype)
            y = y * mask  # [B, L, 1] broadcast over channels
        return self.layer_norm(self.conv(y))

    def initial_state(self, batch_size: int, dtype: str = "float32") -> Any:
        """Returns the decoding state: zeros `[B, receptive_field - 1, C]`.

        The state holds the last activated (post-ReLU) inputs; zeros match the
        causal left padding. Needs a built, causal, rank-1, stride-1 layer.
        """
        if not (self.causal and self.rank == 1 and self.conv._strides[0] == 1):
            raise ValueError("step() needs causal=True, rank=1, strides=1")
        if not self.built:
            raise ValueError("build or call the layer before initial_state")
        channels = self.conv.depthwise_kernel.shape[2]
        return ops.zeros(
            (batch_size, self.conv.receptive_field - 1, channels), dtype=dtype
        )

    def step(
        self, x_t: Any, state: Any, *, training: bool = False
    ) -> tuple[Any, Any]:
        """Decodes one position: `x_t` `[B, 1, C]` -> (`[B, 1, f]`, state).

        Equal to the causal call's output at the next position of the sequence
        whose earlier positions went through `step` before.
        """
        y = ops.cast(self._activate(x_t), state.dtype)
        if y.shape[1] != 1:
            # [B, 1, C]; the static length keeps the state shape fixed in
            # loops.
            y = ops.reshape(y, (ops.shape(y)[0], 1, y.shape[-1]))
        window = ops.concatenate([state, y], axis=1)  # [B, field, C]
        out = _layer_norm(self.layer_norm, self.conv.apply_window(window))
        return out, window[:, 1:]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.conv.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            dilation_rate=self.dilation_rate,
            strides=self.strides,
            rank=self.rank,
            causal=self.causal,
            use_relu=self.use_relu,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
        )
        return config


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class ConvBlock(keras.layers.Layer):
    """The paper's convolutional block (section 2.1), for sequences.

    `h1 = ConvStep_0(x)`, `h2 = x + ConvStep_1(h1)`, `h3 = ConvStep_2(h2)`,
    `h4 = x + ConvStep_3(h3)`, output `Dropout(h4)` (training only). With the
    defaults the kernels are 3, 3, 15, 15 and only the last step is dilated
    (by 8). Every step maps to `hidden_dim` channels.

    Args:
      hidden_dim: channels of the input and of every step.
      kernel_sizes: the four kernel sizes.
      dilation_rates: the four dilation rates.
      dropout: dropout rate at the end of the block (0.4 in the paper).
      causal: left-padded steps (mixer and decoder).
      layer_norm_epsilon: LayerNorm epsilon of the steps.
      kernel_initializer: initializer of the separable conv kernels.

    Call args:
      x: `[B, L, hidden_dim]`.
      training: enables the dropout.
      padding_mask: bool `[B, L]`, True at real positions; each step zeroes
        the padded positions of its input, so outputs at real positions do not
        depend on values at padded positions.

    Returns:
      `[B, L, hidden_dim]`.
    """

    def __init__(
        self,
        hidden_dim: int,
        *,
        kernel_sizes: Sequence[int] = (3, 3, 15, 15),
        dilation_rates: Sequence[int] = (1, 1, 1, 8),
        dropout: float = 0.4,
        causal: bool = False,
        layer_norm_epsilon: float = 1e-6,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.dilation_rates = tuple(int(d) for d in dilation_rates)
        if len(self.kernel_sizes) != 4 or len(self.dilation_rates) != 4:
            raise ValueError("ConvBlock needs 4 kernel sizes and 4 dilations")
        self.dropout = dropout
        self.causal = causal
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.conv_steps = [
            ConvStep(
                hidden_dim,
                kernel,
                dilation_rate=dilation,
                causal=causal,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=kernel_initializer,
                dtype=self.dtype_policy,
                name=f"conv_step_{i}",
            )
            for i, (kernel, dilation) in enumerate(
                zip(self.kernel_sizes, self.dilation_rates)
            )
        ]
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"ConvBlock input depth {input_shape[-1]} != {self.hidden_dim}"
            )
        for conv_step in self.conv_steps:
            conv_step.build(input_shape)

    def call(
        self, x: Any, *, training: bool | None = None, padding_mask: Any = None
    ) -> Any:
        def run(i, h):
            return self.conv_steps[i](
                h, training=training, padding_mask=padding_mask
            )

        h2 = x + run(1, run(0, x))
        h4 = x + run(3, run(2, h2))
        return self.dropout_layer(h4, training=training)

    def initial_state(self, batch_size: int, dtype: str = "float32") -> list:
        """Returns the decoding state: a list of the four steps' buffers."""
        if not self.causal:
            raise ValueError("step() needs a causal ConvBlock")
        return [s.initial_state(batch_size, dtype) for s in self.conv_steps]

    def step(
        self, x_t: Any, state: Sequence[Any], *, training: bool = False
    ) -> tuple[Any, list]:
        """Decodes one position: `x_t` `[B, 1, d]` -> (`[B, 1, d]`, state)."""
        h1, s0 = self.conv_steps[0].step(x_t, state[0])
        y, s1 = self.conv_steps[1].step(h1, state[1])
        # The steps compute in their state's dtype (float32); under a mixed
        # policy `x_t` is the compute dtype (bfloat16): add in x_t's.
        h2 = x_t + ops.cast(y, x_t.dtype)
        h3, s2 = self.conv_steps[2].step(h2, state[2])
        y, s3 = self.conv_steps[3].step(h3, state[3])
        h4 = self.dropout_layer(x_t + ops.cast(y, x_t.dtype), training=training)
        return h4, [s0, s1, s2, s3]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            kernel_sizes=self.kernel_sizes,
            dilation_rates=self.dilation_rates,
            dropout=self.dropout,
            causal=self.causal,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
        )
        return config
