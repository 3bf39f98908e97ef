"""Top-k accuracy on hand-computed values."""

from __future__ import annotations

import numpy as np

from t2t_multimodel.metrics import classification


class TestTopK:
    def test_top1_and_top5(self):
        logits = np.array(
            [
                [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # label 6: top-1
                [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 4: top-5 only
                [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 6: neither
            ]
        )
        labels = np.array([6, 4, 6])
        assert classification.top_k_correct(logits, labels, 1) == 1
        assert classification.top_k_correct(logits, labels, 5) == 2

    def test_k_above_classes_counts_all(self):
        logits = np.zeros((2, 3))
        assert classification.top_k_correct(logits, np.array([0, 2]), 5) == 2
