"""Tests of the shared label-smoothed cross-entropy (modalities/base.py)."""

from __future__ import annotations

import math

import numpy as np

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
