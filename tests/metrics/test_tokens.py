"""Per-token accuracy and the Accumulator on hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from t2t_multimodel.metrics import tokens


class TestTokenAccuracy:
    def test_masked_positions_ignored(self):
        logits = np.zeros((1, 3, 4))
        logits[0, 0, 2] = 1  # predicts 2 (target 2: right)
        logits[0, 1, 1] = 1  # predicts 1 (target 3: wrong)
        logits[0, 2, 0] = 1  # padding position
        correct, total = tokens.token_correct(
            logits, np.array([[2, 3, 0]]), np.array([[True, True, False]])
        )
        assert (correct, total) == (1, 2)


class TestAccumulator:
    def test_ratio_of_sums(self):
        acc = tokens.Accumulator()
        acc.add("a", 1, 2)
        acc.add("a", 3, 6)
        assert acc.result("a") == pytest.approx(0.5)
        assert acc.result("missing") == 0.0
        assert "a" in acc and "missing" not in acc
