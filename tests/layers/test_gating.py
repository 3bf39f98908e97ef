"""Tests of t2t_multimodel/layers/gating.py: noise, smooth load, backward."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.layers import gating


def test_smooth_load_is_normal_cdf_of_threshold_distance():
    clean = np.array([[1.0, 0.2, -0.5, 0.4]], np.float32)
    noisy = np.array([[1.3, -0.1, 0.1, 0.6]], np.float32)
    stddev = np.array([[0.5, 1.0, 0.8, 0.3]], np.float32)
    top = np.array([[1.3, 0.6, 0.1]], np.float32)  # k = 2, k + 1 = 3
    prob = np.asarray(gating.prob_in_top_k(clean, noisy, stddev, top, 2))
    # Experts 0 and 3 are in the top-2: threshold 0.1 (3rd value);
    # experts 1 and 2 are out: threshold 0.6 (2nd value).
    thresholds = [0.1, 0.6, 0.6, 0.1]
    expected = [
        0.5 * (1 + math.erf((c - t) / (math.sqrt(2) * s)))
        for c, t, s in zip(clean[0], thresholds, stddev[0])
    ]
    np.testing.assert_allclose(prob[0], expected, rtol=1e-5)


@pytest.mark.parametrize("top_k,masked", [(1, False), (2, True), (3, False)])
def test_noisy_top_k_gradient_equals_autodiff(top_k, masked):
    # The hand-written backward of the training gating against autodiff
    # of T2T's formula (softplus noise scale, top-k, _prob_in_top_k).
    rng = np.random.default_rng(12)
    n, e, eps = 40, 7, 1e-2
    clean = tf.constant(rng.normal(size=(n, e)).astype("float32"))
    raw = tf.constant(rng.normal(size=(n, e)).astype("float32"))
    noise = tf.constant(rng.normal(size=(n, e)).astype("float32"))
    # A row whose noisy logits tie at the k-th and (k+1)-th value.
    clean = tf.tensor_scatter_nd_update(clean, [[0, 0], [0, 1]], [5.0, 5.0])
    noise = tf.tensor_scatter_nd_update(noise, [[0, 0], [0, 1]], [0, 0])
    mask = None
    if masked:
        mask = tf.constant((rng.random((n, 1)) > 0.3).astype("float32"))
    # Upstream weights: the top values feed the softmax and the
    # load the CV^2 loss.
    w_top = tf.constant(rng.normal(size=(n, top_k + 1)).astype("float32"))
    w_load = tf.constant(rng.normal(size=(e,)).astype("float32"))

    def reference(clean, raw):
        stddev = tf.nn.softplus(raw) + eps
        noisy = clean + noise * stddev
        top, _ = tf.math.top_k(noisy, top_k + 1)
        prob = gating.prob_in_top_k(clean, noisy, stddev, top, top_k)
        if mask is not None:
            prob = prob * mask
        return top, tf.reduce_sum(prob, 0)

    def fast(clean, raw):
        top, _, load = gating.noisy_top_k(clean, raw, noise, mask, top_k, eps)
        return top, load

    results = []
    for fn in (reference, fast):
        with tf.GradientTape() as tape:
            tape.watch([clean, raw])
            top, load = fn(clean, raw)
            loss = tf.reduce_sum(top * w_top) + tf.reduce_sum(load * w_load)
        results.append([top, load, *tape.gradient(loss, [clean, raw])])
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The hand-set tie: the k-th and (k+1)-th values are both 5.0.
    if top_k == 1:
        np.testing.assert_array_equal(results[1][0][0, :2], [5.0, 5.0])


@pytest.mark.parametrize("shape", [(301, 7), (64, 256)])
def test_gate_noise_is_standard_normal(shape):
    # Box-Muller samples: the empirical CDF against Phi (Kolmogorov-
    # Smirnov distance below its 1% critical value 1.63 / sqrt(n)),
    # the moments, and the cos and sin halves are uncorrelated. Odd
    # sizes drop the last sample of a pair.
    seed = keras.random.SeedGenerator(3)
    z = np.asarray(gating.standard_normal(shape, seed))
    assert z.shape == shape and z.dtype == np.float32
    flat = np.sort(z.ravel())
    n = flat.size
    phi = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in flat])
    ks = max(
        np.max(np.arange(1, n + 1) / n - phi),
        np.max(phi - np.arange(n) / n),
    )
    assert ks < 1.63 / math.sqrt(n) + 1e-3, ks
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.std() - 1) < 4 / math.sqrt(2 * n)
    half = n // 2
    corr = np.corrcoef(z.ravel()[:half], z.ravel()[half : 2 * half])[0, 1]
    assert abs(corr) < 4 / math.sqrt(half)
    # A new draw per call; the same seed gives the same draws.
    again = np.asarray(gating.standard_normal(shape, seed))
    assert not np.array_equal(z, again)
    z2 = gating.standard_normal(shape, keras.random.SeedGenerator(3))
    np.testing.assert_array_equal(z, z2)
