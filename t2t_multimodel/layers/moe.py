"""The sparsely-gated mixture-of-experts layer (paper section 2.3).

`SparseMoE` is the MoE block of "One Model To Learn Them All" section 2.3,
which uses the layer of Shazeer et al. 2017 ("Outrageously Large Neural
Networks"): noisy top-k gating, feed-forward experts and the load-balancing
loss `coef * (CV^2(importance) + CV^2(load))` with the smooth load estimator.
The gating maths follow T2T v1.9 `expert_utils.noisy_top_k_gating` and
`distributed_moe` exactly (see the parity README, section 4 "MoE"), so T2T
weights load as they are (expert e's `parallel_e/w_0` is `w_0[e]`) and give
the same outputs. The dispatch is sparse: each
token is copied only to its k experts, so the expert compute grows with k and
the number of tokens, not with the number of experts. The gating is not: the
gate matmuls, the noise, the top-k and the smooth load are `[tokens, E]`, so
its cost per token grows with E (benchmarks/moe_scaling.py measures it).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from t2t_multimodel.layers import gating


def _distinct(initializer: Any, index: int) -> Any:
    """A copy of `initializer` for weight number `index` of the layer.

    A Keras initializer seeded with an int, or unseeded, returns the same
    values on every call, so `w_noise` would equal `w_gate` and `w_1` would
    repeat the values of `w_0`. Weight 0 keeps the initializer; the others
    get `seed + index`, a fresh default seed, or share a stateful
    `SeedGenerator` (which advances by itself).
    """
    config = initializer.get_config()
    seed = config.get("seed")
    if index == 0 or (seed is not None and not isinstance(seed, int)):
        return initializer
    if seed is not None:
        config["seed"] = seed + index
    return initializer.__class__.from_config(config)


def _per_expert(initializer: Any) -> Any:
    """Makes a variance-scaling initializer compute fans per expert.

    Keras computes the fans of a `[E, d, h]` kernel as `E * d` and `E * h`,
    so a stacked glorot kernel would be `sqrt(E)` times too small. The clone
    counts only the last two axes; other initializers are used as given.
    """
    if not isinstance(initializer, keras.initializers.VarianceScaling):
        return initializer
    return keras.initializers.VarianceScaling(
        scale=initializer.scale,
        mode=initializer.mode,
        distribution=initializer.distribution,
        seed=initializer.seed,
        input_axes=[-2],
        output_axes=[-1],
    )


@keras.saving.register_keras_serializable(package="t2t_multimodel")
class SparseMoE(keras.layers.Layer):
    """Sparsely-gated mixture of feed-forward experts (Shazeer et al. 2017).

    Gating (T2T `noisy_top_k_gating`): `clean = x @ w_gate`; in training the
    logits are `clean + N(0, 1) * (softplus(x @ w_noise) + noise_epsilon)`,
    at inference they are `clean`. The top-k logits (ties to the lowest
    expert index) are soft-maxed into the gates; every other gate is 0.
    Expert e computes `relu(x @ w_0[e]) @ w_1[e] * expert_output_scale`, and
    the output is `sum_e gate[e] * expert_e(x)`.

    Load balancing: `loss_coef * (cv2(importance) + cv2(load))` is added with
    `add_loss`, where `importance` sums the gates over the rows and `load` is
    the smooth estimate `sum_rows P(expert in top-k)` of T2T `_prob_in_top_k`
    (a normal CDF of the distance of the clean logit to the threshold of the
    noisy top-k). At inference the noise scale is 0 and, as in T2T, the CDF
    is evaluated at `(clean - threshold) / 1e-20`: a step function with 0.5
    on exact ties (zero gate weights give every expert a load of N / 2 while
    all tokens go to experts 0..k-1). With `use_noise=False` (or
    `top_k == num_experts`) the load is the number of rows routed to each
    expert, like T2T's `_gates_to_load`.

    Dispatch: the N * k (row, expert) assignments are sorted by expert (first
    choices of all rows before second choices, then by row), copied into an
    `[E, C, d]` buffer, run through one batched matmul per expert weight and
    scattered back with their gates, so the cost is `E * C * d * h` with
    `E * C ~ capacity_factor * k * N`. `capacity_factor=None` never drops a
    token (C is the largest expert load of the batch, computed per call;
    its cost grows towards `E * N` when the routing is very unbalanced,
    e.g. zero gate weights at inference); a float sets
    `C = ceil(capacity_factor * k * tokens / E)` and assignments past an
    expert's capacity contribute 0 (the other choices of that token and the
    gates are kept as they are, as in GShard).

    Statistics of the last call, non-trainable float32 variables the trainer
    may log (not part of the model function; `set_weights` copies them):
      `dropped_count`: assignments dropped for capacity (sum over replicas);
      `assignment_count`: routed assignments, `k * tokens` (sum over
        replicas);
      `importance_cv2`, `load_cv2`: the two CV^2 terms of the loss, without
        `loss_coef` (mean over replicas).

    Args:
      hidden_dim: d, the input and output depth.
      intermediate_dim: h, the hidden depth of each expert.
      num_experts: E.
      top_k: k, experts per token (4 in the paper, 2 in T2T).
      loss_coef: multiplier of the load-balancing loss (1e-2).
      noise_epsilon: added to the softplus noise scale (1e-2).
      capacity_factor: None (no token dropped) or the expert capacity as a
        multiple of the mean load `k * tokens / E`.
      expert_output_scale: multiplies every expert output; None means 1.0.
        T2T v1.9 uses `(h / d) ** -0.5`.
      use_noise: noisy gating in training (creates `w_noise`).
      gate_initializer: for `w_gate` and `w_noise` (zeros in T2T and
        Shazeer et al.).
      kernel_initializer: for the expert kernels `w_0` `[E, d, h]` and `w_1`
        `[E, h, d]`; variance-scaling fans are counted per expert.
      seed: seed of the gate noise.
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      inputs: `[B, L, d]` or `[N, d]`.
      training: whether to add gate noise.
      padding_mask: bool `[B, L]` (or `[N]`), True at real positions. Padded
        rows are not routed, output 0 and count in neither importance nor
        load. With None every row counts (T2T v1.9 routes padding too).

    Returns:
      The same shape as `inputs`.
    """

    def __init__(
        self,
        hidden_dim: int,
        intermediate_dim: int,
        num_experts: int,
        *,
        top_k: int = 4,
        loss_coef: float = 1e-2,
        noise_epsilon: float = 1e-2,
        capacity_factor: float | None = None,
        expert_output_scale: float | None = None,
        use_noise: bool = True,
        gate_initializer: Any = "zeros",
        kernel_initializer: Any = "glorot_uniform",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k={top_k} not in [1, {num_experts}]")
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_experts = num_experts
        self.top_k = top_k
        self.loss_coef = loss_coef
        self.noise_epsilon = noise_epsilon
        self.capacity_factor = capacity_factor
        self.expert_output_scale = expert_output_scale
        self.use_noise = use_noise
        self.gate_initializer = keras.initializers.get(gate_initializer)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"input depth {input_shape[-1]} != hidden_dim {self.hidden_dim}"
            )
        d, h, e = self.hidden_dim, self.intermediate_dim, self.num_experts
        # The gating runs in float32 under mixed precision (autocast off):
        # T2T's 1e-20 underflows in float16 and routing is precision-critical.
        self.w_gate = self.add_weight(
            name="w_gate",
            shape=(d, e),
            initializer=self.gate_initializer,
            autocast=False,
        )
        self.w_noise = None
        if self.use_noise:
            self.w_noise = self.add_weight(
                name="w_noise",
                shape=(d, e),
                initializer=_distinct(self.gate_initializer, 1),
                autocast=False,
            )
        self.w_0 = self.add_weight(
            name="w_0",
            shape=(e, d, h),
            initializer=_per_expert(self.kernel_initializer),
        )
        self.w_1 = self.add_weight(
            name="w_1",
            shape=(e, h, d),
            initializer=_per_expert(_distinct(self.kernel_initializer, 1)),
        )
        stats = {}
        for name, aggregation in (
            ("dropped_count", "sum"),
            ("assignment_count", "sum"),
            ("importance_cv2", "mean"),
            ("load_cv2", "mean"),
        ):
            stats[name] = self.add_weight(
                name=name,
                shape=(),
                initializer="zeros",
                dtype="float32",
                trainable=False,
                aggregation=aggregation,
            )
        self.dropped_count = stats["dropped_count"]
        self.assignment_count = stats["assignment_count"]
        self.importance_cv2 = stats["importance_cv2"]
        self.load_cv2 = stats["load_cv2"]

    def route(
        self, x: Any, *, training: bool | None = None, row_mask: Any = None
    ) -> gating.Routing:
        """Noisy top-k gating of `x` `[N, d]`; `row_mask` float `[N]` or None.

        Returns:
          The `gating.Routing` of the rows (T2T `noisy_top_k_gating`).
        """
        k, num_experts = self.top_k, self.num_experts
        x = ops.cast(x, "float32")
        clean = ops.matmul(x, self.w_gate)  # [N, E]
        mask = None
        if row_mask is not None:
            mask = ops.expand_dims(ops.cast(row_mask, clean.dtype), 1)  # [N, 1]
        load = None
        if self.use_noise and training:
            raw_noise = ops.matmul(x, self.w_noise)  # [N, E]
            noise = gating.standard_normal(
                ops.shape(clean), self.seed_generator
            )
            if k < num_experts:
                top_values, top_index, load = gating.noisy_top_k(
                    clean, raw_noise, noise, mask, k, self.noise_epsilon
                )
            else:  # Every expert is chosen: no smooth load.
                stddev = ops.softplus(raw_noise) + self.noise_epsilon
                top_values, top_index = ops.top_k(
                    clean + noise * stddev, num_experts
                )
        else:
            # tf.math.top_k: ties go to the lower index, like T2T's repeated
            # argmax; values are sorted, best first.
            top_values, top_index = ops.top_k(clean, min(k + 1, num_experts))
            if self.use_noise and k < num_experts:
                # At inference T2T multiplies the noise scale by 0.
                stddev = ops.zeros((), clean.dtype)
                prob = gating.prob_in_top_k(clean, clean, stddev, top_values, k)
                if mask is not None:
                    prob = prob * mask
                load = ops.sum(prob, axis=0)  # [E]
        if k == 1:  # The softmax of one value (keras warns about it).
            gates = ops.ones_like(top_values[:, :1])  # [N, 1]
        else:
            gates = ops.softmax(top_values[:, :k], axis=-1)  # [N, k]
        index = ops.cast(top_index[:, :k], "int32")  # [N, k]
        if mask is not None:
            gates = gates * mask
        flat_index = ops.reshape(index, (-1,))  # [N * k]
        importance = ops.segment_sum(
            ops.reshape(gates, (-1,)), flat_index, num_segments=num_experts
        )
        if load is None:
            load = ops.segment_sum(
                ops.reshape(ops.cast(gates > 0, gates.dtype), (-1,)),
                flat_index,
                num_segments=num_experts,
            )
        return gating.Routing(index, gates, importance, load)

    def call(
        self, inputs: Any, *, training: bool | None = None, padding_mask=None
    ) -> Any:
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (-1, self.hidden_dim))  # [N, d]
        row_mask = None
        if padding_mask is not None:
            row_mask = ops.reshape(ops.cast(padding_mask, "float32"), (-1,))
        routing = self.route(x, training=training, row_mask=row_mask)
        importance_cv2 = gating.cv_squared(routing.importance)
        load_cv2 = gating.cv_squared(routing.load)
        self.add_loss(self.loss_coef * (importance_cv2 + load_cv2))
        y, dropped, assigned = self._dispatch(x, routing, row_mask)
        self.dropped_count.assign(ops.cast(dropped, "float32"))
        self.assignment_count.assign(ops.cast(assigned, "float32"))
        self.importance_cv2.assign(ops.cast(importance_cv2, "float32"))
        self.load_cv2.assign(ops.cast(load_cv2, "float32"))
        return ops.reshape(y, shape)

    def infer(self, inputs: Any) -> Any:
        """The inference output for a few rows, e.g. one decoding step.

        The same experts, gates and output as `call(inputs, training=False)`
        (up to float rounding) without the dispatch's sort and scatter, so
        the shapes are static (XLA compiles it) and the graph has a dozen
        ops. Nothing is dropped (as with `capacity_factor=None`), no loss is
        added and the statistics variables are left as they are. Each row's
        top-k expert kernels are gathered (`[N, k, d, h]`) for two batched
        matmuls; when the static N has `N * k >= E` (the gather would copy
        all the kernels or more) and `E <= 8 * k`, every expert runs on
        every row instead and the outputs are combined with the gates, zero
        outside the top k (at most 8x the FLOPs of the gather, on contiguous
        kernels: 1.4x faster for beam-4 decoding at batch 16 of the tiny
        model). For small N (decoding), not for training batches.

        Args:
          inputs: `[B, L, d]` or `[N, d]`, every row real.

        Returns:
          The same shape as `inputs`.
        """
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (-1, self.hidden_dim))  # [N, d]
        x32 = ops.cast(x, "float32")
        logits = ops.matmul(x32, self.w_gate)  # [N, E]
        # The same tf.math.top_k as `route` (ties to the lower index).
        top_values, index = ops.top_k(logits, self.top_k)  # [N, k]
        if self.top_k == 1:
            gates = ops.ones_like(top_values)  # [N, 1]
        else:
            gates = ops.softmax(top_values, axis=-1)  # [N, k]
        if self.expert_output_scale is not None:
            gates = gates * self.expert_output_scale
        w_0 = ops.cast(self.w_0, x.dtype)  # [E, d, h]
        w_1 = ops.cast(self.w_1, x.dtype)  # [E, h, d]
        rows, k, num_experts = x.shape[0], self.top_k, self.num_experts
        if rows is not None and rows * k >= num_experts <= 8 * k:
            # [N, k, E] -> [N, E]: the gates, 0 outside the top k.
            dense = ops.sum(
                ops.one_hot(index, num_experts, dtype=gates.dtype)
                * gates[:, :, None],
                axis=1,
            )
            # [N, d] x [E, d, h] -> [E, N, h]
            hidden = ops.relu(ops.einsum("nd,edh->enh", x, w_0))
            out = ops.matmul(hidden, w_1)  # [E, N, d]
            # [N, E] x [E, N, d] -> [N, d]
            y = ops.einsum("ne,end->nd", ops.cast(dense, out.dtype), out)
            return ops.reshape(y, shape)
        # tf.gather: ops.take adds the negative-index handling (4 more ops).
        w_0 = tf.gather(w_0, index)  # [N, k, d, h]
        w_1 = tf.gather(w_1, index)  # [N, k, h, d]
        rows = x[:, None, None, :]  # [N, 1, 1, d], broadcast over k
        hidden = ops.relu(ops.matmul(rows, w_0))  # [N, k, 1, h]
        out = ops.matmul(hidden, w_1)[:, :, 0, :]  # [N, k, d]
        weight = ops.cast(gates, out.dtype)[:, :, None]  # [N, k, 1]
        y = ops.sum(out * weight, axis=1)  # [N, d]
        return ops.reshape(y, shape)

    def _dispatch(
        self, x: Any, routing: gating.Routing, row_mask: Any
    ) -> tuple:
        """Runs the experts on the routed rows only.

        Returns:
          `(y [N, d], dropped assignments, routed assignments)`.
        """
        k, num_experts, d = self.top_k, self.num_experts, self.hidden_dim
        n = ops.shape(x)[0]
        # Priority order: all first choices, then all second choices, ...
        expert = ops.reshape(ops.transpose(routing.expert_index), (-1,))
        gate = ops.reshape(ops.transpose(routing.expert_gate), (-1,))  # [k*N]
        row = ops.tile(ops.arange(n, dtype="int32"), (k,))  # [k * N]
        num_rows = n
        if row_mask is not None:
            # Padded rows go to a sentinel expert E, which is never run.
            real = ops.tile(row_mask > 0, (k,))
            expert = ops.where(real, expert, num_experts)
            num_rows = ops.cast(ops.sum(row_mask), "int32")
        counts = ops.segment_sum(
            ops.ones_like(expert), expert, num_segments=num_experts + 1
        )  # [E + 1]
        # tf.argsort with stable=True (keras.ops.argsort has no stable flag):
        # the rank within an expert must follow the priority order.
        order = tf.argsort(expert, stable=True)  # [k * N]
        expert = ops.take(expert, order)
        row = ops.take(row, order)
        gate = ops.take(gate, order)
        starts = ops.cumsum(counts) - counts  # [E + 1]
        position = ops.arange(ops.shape(expert)[0], dtype="int32") - ops.take(
            starts, expert
        )
        if self.capacity_factor is None:
            capacity = ops.max(counts[:num_experts])
        else:
            capacity = ops.cast(
                ops.ceil(
                    self.capacity_factor
                    * k
                    * ops.cast(num_rows, "float32")
                    / num_experts
                ),
                "int32",
            )
        routed = expert < num_experts
        kept = ops.logical_and(routed, position < capacity)
        num_slots = num_experts * capacity
        # Kept assignments have unique slots; the others share a trash slot.
        slot = ops.where(kept, expert * capacity + position, num_slots)
        slot_row = ops.scatter(
            ops.expand_dims(slot, 1), row + 1, ops.expand_dims(num_slots + 1, 0)
        )[:num_slots]  # [E * C], 0 = empty slot
        x_pad = ops.concatenate([ops.zeros((1, d), x.dtype), x], axis=0)
        buffer = ops.reshape(
            ops.take(x_pad, slot_row, axis=0), (num_experts, -1, d)
        )  # [E, C, d]
        # Batched matmuls, not einsum: tf.einsum's gradient is ~2x slower
        # here (it transposes the [E, d, h] weight gradients).
        hidden = ops.relu(ops.matmul(buffer, self.w_0))  # [E, C, h]
        out = ops.matmul(hidden, self.w_1)  # [E, C, d]
        out = ops.concatenate(
            [ops.reshape(out, (-1, d)), ops.zeros((1, d), out.dtype)], axis=0
        )  # [E * C + 1, d]
        # The expert output scale is folded into the [k * N] weights.
        scale = (
            1.0
            if self.expert_output_scale is None
            else self.expert_output_scale
        )
        weight = ops.cast(gate * ops.cast(kept, gate.dtype) * scale, out.dtype)
        contrib = ops.take(out, slot, axis=0) * ops.expand_dims(weight, 1)
        y = ops.segment_sum(contrib, row, num_segments=n)  # [N, d]
        routed_count = ops.sum(ops.cast(routed, "int32"))
        dropped = routed_count - ops.sum(ops.cast(kept, "int32"))
        return y, dropped, routed_count

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "num_experts": self.num_experts,
                "top_k": self.top_k,
                "loss_coef": self.loss_coef,
                "noise_epsilon": self.noise_epsilon,
                "capacity_factor": self.capacity_factor,
                "expert_output_scale": self.expert_output_scale,
                "use_noise": self.use_noise,
                "gate_initializer": keras.initializers.serialize(
                    self.gate_initializer
                ),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "seed": self.seed,
            }
        )
        return config
