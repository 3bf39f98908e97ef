"""Noisy top-k gating of the sparsely-gated MoE (Shazeer et al. 2017).

The maths of T2T v1.9 `expert_utils.noisy_top_k_gating` that
`moe.SparseMoE` routes with: the gate noise, the top-(k+1) of the noisy
logits with the smooth load estimator `P(expert in top-k)` (a normal CDF)
and its hand-written backward, and the CV^2 of the load-balancing loss.
Everything here is `[tokens, E]` or `[E]`: this is the part of the layer
whose cost per token grows with the number of experts.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import keras
import tensorflow as tf
from keras import ops


class Routing(NamedTuple):
    """The gating decision for N rows.

    Attributes:
      expert_index: int32 `[N, k]`, the chosen experts, best first.
      expert_gate: `[N, k]`, softmax over the k chosen logits (0 on masked
        rows).
      importance: `[E]`, the sum of the gates over the rows.
      load: `[E]`, the smooth estimate of the number of rows per expert.
    """

    expert_index: Any
    expert_gate: Any
    importance: Any
    load: Any


def cv_squared(values: Any) -> Any:
    """The squared coefficient of variation, T2T's `cv_squared`.

    Args:
      values: `[E]`.

    Returns:
      `var(values) / (mean(values)^2 + 1e-10)`, population variance; the
      `+ 1e-10` on the size is T2T's and is exact in float32.
    """
    size = ops.cast(ops.size(values), values.dtype) + 1e-10
    mean = ops.sum(values) / size
    variance = ops.sum(ops.square(values - mean)) / size
    return variance / (ops.square(mean) + 1e-10)


def standard_normal(shape: Any, seed: Any) -> Any:
    """float32 N(0, 1) samples by the Box-Muller transform of uniforms.

    The gate noise of `[tokens, E]` is the largest single gating cost at
    large E. On this CPU TensorFlow's normal sampler (Philox bits, then
    Box-Muller, one op) takes ~50 ms for 32768 x 256 samples; the same
    transform written as ops over `keras.random.uniform` pairs takes ~34
    ms (benchmarks/moe_scaling.py). The samples are exact standard normals
    (each pair of uniforms `u, v` gives `r cos(2 pi v)` and `r sin(2 pi v)`
    with `r = sqrt(-2 log(1 - u))`; `1 - u` is in (0, 1]), with tails cut
    at ~5.8 by float32 uniforms as in TensorFlow's own sampler.

    Args:
      shape: the output shape (may be dynamic).
      seed: a `keras.random.SeedGenerator` (or an int seed).

    Returns:
      float32 `shape`.
    """
    size = ops.prod(ops.convert_to_tensor(shape, "int32"))
    half = (size + 1) // 2
    uniform = keras.random.uniform(
        ops.stack([2, half]), dtype="float32", seed=seed
    )
    radius = ops.sqrt(-2.0 * ops.log1p(-uniform[0]))
    angle = (2.0 * math.pi) * uniform[1]
    pairs = ops.concatenate(
        [radius * ops.cos(angle), radius * ops.sin(angle)], axis=0
    )
    return ops.reshape(pairs[:size], shape)


def prob_in_top_k(
    clean: Any, noisy: Any, stddev: Any, top_values: Any, k: int
) -> Any:
    """P(expert in the top-k) per row and expert, T2T `_prob_in_top_k`.

    Args:
      clean: `[N, E]` logits without noise.
      noisy: `[N, E]` logits with noise (== clean at inference).
      stddev: `[N, E]` noise scale, or a scalar 0 at inference.
      top_values: `[N, k + 1]` the top noisy logits, best first.
      k: the number of experts per row.

    Returns:
      `[N, E]`: for an expert in the top-k, the probability that its logit
      stays above the (k+1)-th value under fresh noise, otherwise that it
      rises above the k-th value.
    """
    z, _ = _threshold_distance(clean, noisy, stddev, top_values, k)
    return 0.5 * (1.0 + ops.erf(z))


def _threshold_distance(
    clean: Any, noisy: Any, stddev: Any, top_values: Any, k: int
) -> tuple:
    """The argument of the normal CDF of `prob_in_top_k`.

    Returns:
      `(z [N, E], denominator)`: `z = (clean - threshold) / denominator`
      with `denominator = sqrt(2) * stddev + 1e-20`.
    """
    threshold_in = top_values[:, k : k + 1]  # [N, 1]
    threshold_out = top_values[:, k - 1 : k]  # [N, 1]
    is_in = noisy > threshold_in
    # T2T evaluates both CDFs and selects; selecting the threshold first
    # gives the same numbers with one erf (the [N, E] elementwise work is
    # a large part of the gating cost at large E).
    threshold = ops.where(is_in, threshold_in, threshold_out)  # [N, E]
    # T2T's `_normal_distribution_cdf`; with stddev 0 this is a step with 0.5
    # on exact ties.
    denominator = math.sqrt(2.0) * stddev + 1e-20
    return (clean - threshold) / denominator, denominator


def noisy_top_k(
    clean: Any, raw_noise: Any, noise: Any, mask: Any, k: int, epsilon: float
) -> tuple:
    """Training-mode noisy top-(k+1) and smooth load, with its own gradient.

    The values are those of T2T `noisy_top_k_gating` (and of autodiff
    through `prob_in_top_k`): `stddev = softplus(raw_noise) + epsilon`,
    `noisy = clean + noise * stddev`, the top k + 1 noisy logits and
    `load = sum_rows mask * P(expert in top-k)`. The backward is written
    out: autodiff of the ~15 `[N, E]` element-wise ops goes through
    broadcast and select gradients, negations and three divisions; the
    formula below needs about half the `[N, E]` passes and scatters the
    top-k value gradients (k + 1 per row) once for both inputs. Measured
    at 8192 rows x 256 experts (`route` forward + backward): about 17%
    less time in the backward, 6% in forward + backward.

    Args:
      clean: `[N, E]` `x @ w_gate`.
      raw_noise: `[N, E]` `x @ w_noise`.
      noise: `[N, E]` standard normal samples (no gradient).
      mask: float `[N, 1]` (1 at real rows) or None.
      k: experts per row, `k < E`.
      epsilon: added to the softplus noise scale.

    Returns:
      `(top_values [N, k + 1], top_index [N, k + 1] int32, load [E])`.
    """
    num_experts = ops.shape(clean)[1]

    # On the TensorFlow backend `grad` gets one upstream gradient per output.
    @ops.custom_gradient
    def forward(clean, raw_noise):
        stddev = ops.softplus(raw_noise) + epsilon  # [N, E]
        noisy = clean + noise * stddev  # [N, E]
        # tf.math.top_k: ties go to the lower index, like T2T's repeated
        # argmax; values are sorted, best first.
        top_values, top_index = ops.top_k(noisy, k + 1)  # [N, k + 1]
        top_index = ops.cast(top_index, "int32")
        z, denominator = _threshold_distance(
            clean, noisy, stddev, top_values, k
        )
        prob = 0.5 * (1.0 + ops.erf(z))  # [N, E]
        if mask is not None:
            prob = prob * mask
        load = ops.sum(prob, axis=0)  # [E]

        def grad(d_values, d_index, d_load):
            del d_index  # int32: not differentiable
            if d_load is None:
                d_load = ops.zeros_like(load)
            # d prob / d z = exp(-z^2) / sqrt(pi); z = (clean - threshold)
            # / denominator, denominator = sqrt(2) * stddev + 1e-20.
            scale = d_load / math.sqrt(math.pi)  # [E]
            q = ops.exp(-ops.square(z)) * scale / denominator  # [N, E]
            if mask is not None:
                q = q * mask
            # d load / d threshold = -q, summed per row over the experts
            # that use threshold_in (the top k, unless tied with the
            # (k+1)-th) and threshold_out (all others).
            q_top = ops.take_along_axis(q, top_index[:, :k], axis=1)
            is_in = top_values[:, :k] > top_values[:, k : k + 1]  # [N, k]
            in_sum = ops.sum(q_top * ops.cast(is_in, q.dtype), axis=1)
            out_sum = ops.sum(q, axis=1) - in_sum  # [N]
            d_top = ops.concatenate(
                [
                    ops.zeros_like(top_values[:, : k - 1]),
                    -out_sum[:, None],
                    -in_sum[:, None],
                ],
                axis=1,
            )  # [N, k + 1]
            if d_values is not None:
                d_top = d_top + d_values
            # The top values are noisy logits: their gradient goes to clean
            # and, times the noise, to stddev.
            rows = ops.shape(clean)[0]
            flat = ops.reshape(
                top_index
                + num_experts * ops.arange(rows, dtype="int32")[:, None],
                (-1, 1),
            )  # [N * (k + 1), 1] into the flattened [N * E]
            # SparseToDense, not scatter_nd: the indices are distinct (top-k
            # of one row), and at 32768 x 256 it takes ~3 ms against ~27 ms
            # for scatter_nd or unsorted_segment_sum.
            d_noisy = ops.reshape(
                tf.raw_ops.SparseToDense(
                    sparse_indices=flat,
                    output_shape=ops.reshape(rows * num_experts, (1,)),
                    sparse_values=ops.reshape(d_top, (-1,)),
                    default_value=ops.zeros((), d_top.dtype),
                    validate_indices=False,
                ),
                ops.shape(clean),
            )  # [N, E], k + 1 nonzeros per row
            d_clean = q + d_noisy
            d_stddev = q * (z * -math.sqrt(2.0)) + d_noisy * noise
            return d_clean, d_stddev * ops.sigmoid(raw_noise)

        return (top_values, top_index, load), grad

    return forward(clean, raw_noise)
