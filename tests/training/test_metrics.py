"""Metric functions on hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from t2t_multimodel.training import metrics


class TestBleu:
    def test_identical_is_100(self):
        text = ["the cat sat on the mat today", "a dog ran in the big park"]
        assert metrics.bleu(text, text) == pytest.approx(100.0)

    def test_disjoint_is_0(self):
        assert metrics.bleu(["a b c d"], ["w x y z"]) == pytest.approx(0.0)

    def test_half_precision_brevity(self):
        # Hypothesis "a b c d" vs reference "a b c d e f g h": all n-gram
        # precisions are 1, BP = exp(1 - 8/4) = e^-1 -> BLEU 36.79.
        got = metrics.bleu(["a b c d"], ["a b c d e f g h"])
        assert got == pytest.approx(100 * np.exp(-1.0), abs=0.01)


class TestWer:
    def test_one_substitution_in_four_words(self):
        assert metrics.word_error_rate(
            ["the cat sat down"], ["the dog sat down"]
        ) == pytest.approx(25.0)

    def test_corpus_level(self):
        # 1 deletion (4 words) + 2 insertions (2 words): 3 / 6 = 50%.
        got = metrics.word_error_rate(["a b c", "x y z w"], ["a b c d", "x y"])
        assert got == pytest.approx(50.0)


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
        assert metrics.top_k_correct(logits, labels, 1) == 1
        assert metrics.top_k_correct(logits, labels, 5) == 2


class TestTokenAccuracy:
    def test_masked_positions_ignored(self):
        logits = np.zeros((1, 3, 4))
        logits[0, 0, 2] = 1  # predicts 2 (target 2: right)
        logits[0, 1, 1] = 1  # predicts 1 (target 3: wrong)
        logits[0, 2, 0] = 1  # padding position
        correct, total = metrics.token_correct(
            logits, np.array([[2, 3, 0]]), np.array([[True, True, False]])
        )
        assert (correct, total) == (1, 2)


class TestExactMatch:
    def test_percentage(self):
        got = metrics.exact_match(
            ["(S (NP x) )", "(S y)", "(S z)", "(S w)"],
            ["(S (NP x) )", "(S y) ", "(S q)", "(S r)"],
        )
        assert got == pytest.approx(50.0)


class TestAccumulator:
    def test_ratio_of_sums(self):
        acc = metrics.Accumulator()
        acc.add("a", 1, 2)
        acc.add("a", 3, 6)
        assert acc.result("a") == pytest.approx(0.5)
        assert acc.result("missing") == 0.0
