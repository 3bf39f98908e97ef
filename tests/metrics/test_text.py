"""Text metrics on hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from t2t_multimodel.metrics import text


class TestBleu:
    def test_identical_is_100(self):
        sentences = ["the cat sat on the mat today", "a dog ran in a park"]
        assert text.bleu(sentences, sentences) == pytest.approx(100.0)

    def test_disjoint_is_0(self):
        assert text.bleu(["a b c d"], ["w x y z"]) == pytest.approx(0.0)

    def test_half_precision_brevity(self):
        # Hypothesis "a b c d" vs reference "a b c d e f g h": all n-gram
        # precisions are 1, BP = exp(1 - 8/4) = e^-1 -> BLEU 36.79.
        got = text.bleu(["a b c d"], ["a b c d e f g h"])
        assert got == pytest.approx(100 * np.exp(-1.0), abs=0.01)

    def test_empty_is_0(self):
        assert text.bleu([], []) == 0.0
        assert "nrefs:1" in text.corpus_bleu([], []).signature

    def test_corpus_bleu_has_signature(self):
        got = text.corpus_bleu(["a b c d"], ["a b c d e f g h"])
        assert got.score == pytest.approx(100 * np.exp(-1.0), abs=0.01)
        # sacrebleu's defaults, named in the signature.
        for part in ("nrefs:1", "case:mixed", "tok:13a", "smooth:exp"):
            assert part in got.signature
        assert f"version:{sacrebleu.__version__}" in got.signature

    def test_scorer_equals_bleu(self):
        refs = ["the cat sat on the mat", "a dog ran", "it is raining today"]
        hyps = ["the cat sat on a mat", "a dog ran fast", "it rains today"]
        score = text.bleu_scorer(refs)
        assert score(hyps) == pytest.approx(text.bleu(hyps, refs))
        assert score(refs) == pytest.approx(100.0)
        assert text.bleu_scorer([])([]) == 0.0


class TestWer:
    def test_one_substitution_in_four_words(self):
        assert text.word_error_rate(
            ["the cat sat down"], ["the dog sat down"]
        ) == pytest.approx(25.0)

    def test_corpus_level(self):
        # 1 deletion (4 words) + 2 insertions (2 words): 3 / 6 = 50%.
        got = text.word_error_rate(["a b c", "x y z w"], ["a b c d", "x y"])
        assert got == pytest.approx(50.0)

    def test_empty_references_skipped(self):
        got = text.word_error_rate(["a", "b c"], ["  ", "b d"])
        assert got == pytest.approx(50.0)


class TestExactMatch:
    def test_percentage(self):
        got = text.exact_match(
            ["S NP NN /NP /S", "S y /S", "S z /S", "S w /S"],
            ["S NP NN /NP /S", "S y /S ", "S q /S", "S r /S"],
        )
        assert got == pytest.approx(50.0)
