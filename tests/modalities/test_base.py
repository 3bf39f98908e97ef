"""Tests of the shared label-smoothed cross-entropy (modalities/base.py)."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from t2t_multimodel.modalities import base


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    return z - np.log(np.sum(np.exp(z)))


class TestSmoothedCrossEntropy:
    def test_hand_computed_value(self):
        logits = [1.0, 2.0, 3.0]
        lp = _log_softmax(logits)
        # V = 3, ls = 0.1: c = 0.9 on the label (class 0), 0.05 elsewhere.
        xent = -(0.9 * lp[0] + 0.05 * lp[1] + 0.05 * lp[2])
        normalizer = -(0.9 * math.log(0.9) + 2 * 0.05 * math.log(0.05 + 1e-20))
        got = base.smoothed_cross_entropy(
            np.array([logits], np.float32), np.array([0]), label_smoothing=0.1
        )
        np.testing.assert_allclose(np.asarray(got), [xent - normalizer], 1e-6)
        # By hand: lp = [-2.4076, -1.4076, -0.4076], xent = 2.2576,
        # normalizer = -(0.9 ln 0.9 + 0.1 ln 0.05) = 0.3944.
        np.testing.assert_allclose(xent - normalizer, 2.2576 - 0.3944, 2e-4)

    def test_no_smoothing_is_cross_entropy(self):
        logits = np.array([[0.5, -1.0, 2.0, 0.0]], np.float32)
        got = base.smoothed_cross_entropy(logits, np.array([2]))
        np.testing.assert_allclose(
            np.asarray(got), [-_log_softmax(logits[0])[2]], rtol=1e-6
        )

    def test_prediction_equal_to_soft_target_costs_zero(self):
        # Soft target: 0.9 on class 1, 0.1 / 4 on the 4 others.
        soft = np.full(5, 0.025)
        soft[1] = 0.9
        got = base.smoothed_cross_entropy(
            np.log(soft)[None].astype(np.float32),
            np.array([1]),
            label_smoothing=0.1,
        )
        np.testing.assert_allclose(np.asarray(got), [0.0], atol=1e-6)

    def test_gradient_is_softmax_minus_soft_target(self):
        # d/dz of -sum_j q_j log softmax(z)_j is softmax(z) - q, times the
        # upstream weight of each position (here 2 and 0.5), for [B, L, V].
        rng = np.random.default_rng(3)
        logits = tf.constant(rng.normal(size=(2, 3, 6)) * 3, tf.float32)
        targets = np.array([[0, 5, 2], [1, 1, 4]])
        upstream = tf.constant([[2.0, 2.0, 2.0], [0.5, 0.5, 0.5]])
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = base.smoothed_cross_entropy(
                logits, targets, label_smoothing=0.1
            )
            total = tf.reduce_sum(loss * upstream)
        got = tape.gradient(total, logits).numpy()
        z = logits.numpy().astype(np.float64)
        probs = np.exp(z - z.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        soft = np.full(z.shape, 0.1 / 5)
        for b in range(2):
            for t in range(3):
                soft[b, t, targets[b, t]] = 0.9
        want = (probs - soft) * upstream.numpy()[..., None]
        np.testing.assert_allclose(got, want, atol=1e-6)
        # Large logits stay finite (the log-sum-exp is shifted by the max).
        big = base.smoothed_cross_entropy(
            np.array([[1000.0, 0.0, -1000.0]], np.float32), np.array([2])
        )
        np.testing.assert_allclose(np.asarray(big), [2000.0], rtol=1e-6)

    def test_modality_loss_sums_weighted_positions(self):
        modality = base.Modality(hidden_dim=4)
        logits = np.log(
            np.array([[[0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [1 / 3] * 3]])
        ).astype(np.float32)
        targets = np.array([[0, 2, 1]])
        weights = np.array([[1.0, 1.0, 0.0]])
        loss_sum, weight_sum = modality.loss(logits, targets, weights)
        np.testing.assert_allclose(
            float(loss_sum), -math.log(0.5) - math.log(0.6), rtol=1e-6
        )
        assert float(weight_sum) == 2.0
