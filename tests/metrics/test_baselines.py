"""Trivial baselines on tiny hand-computed inputs."""

from __future__ import annotations

import pytest
import sacrebleu

from t2t_multimodel.metrics import baselines, names

DOG = "S NP DT NN /NP VP VBZ /VP . /S"
HAT = "S NP PRP /NP VP VBD NP NP DT NN /NP PP IN NP DT NN /NP /PP /NP /VP /S"


class TestCopyInput:
    def test_against_sacrebleu(self):
        sources = ["Obama sprach in Berlin .", "Das ist gut .", "2014 , 5 %"]
        refs = ["Obama spoke in Berlin .", "That is good .", "2014 , 5 %"]
        want = sacrebleu.corpus_bleu(sources, [refs]).score
        assert baselines.copy_input_bleu(sources, refs) == pytest.approx(want)
        assert 0.0 < want < 100.0

    def test_identity_is_100(self):
        refs = ["a b c d e", "f g h i j"]
        assert baselines.copy_input_bleu(refs, refs) == pytest.approx(100.0)


class TestMajorityClass:
    def test_five_labels(self):
        # Train: 3 x 7, 1 x 2, 1 x 5 -> 7. Dev: 7 twice in 5 -> 0.4.
        train = [7, 2, 7, 5, 7]
        assert baselines.majority_class(train) == 7
        got = baselines.majority_class_accuracy(train, [7, 2, 7, 5, 5])
        assert got == pytest.approx(0.4)

    def test_tie_goes_to_the_first_seen(self):
        assert baselines.majority_class(["b", "a", "a", "b"]) == "b"

    def test_empty(self):
        assert baselines.majority_class_accuracy([1], []) == 0.0
        with pytest.raises(ValueError):
            baselines.majority_class([])


class TestBestConstantOutput:
    def test_bleu_picks_the_best_candidate(self):
        train = [
            "the cat sat",
            "the cat sat",
            "the cat sat on the mat",
            "a dog",
            "the cat sat on the mat",
            "the cat sat on the mat",
        ]
        refs = [
            "the cat sat on the mat",
            "the cat sat on a mat",
            "a dog sat on the mat",
        ]
        string, score = baselines.best_constant_output(train, refs)
        # Check against sacrebleu directly, each candidate output 3 times.
        scores = {
            c: sacrebleu.corpus_bleu([c] * 3, [refs]).score for c in set(train)
        }
        assert string == max(scores, key=scores.get)
        assert string == "the cat sat on the mat"
        assert score == pytest.approx(scores[string])

    def test_num_candidates_limits_the_search(self):
        # Only the most frequent train target ("the cat sat") is tried.
        train = ["the cat sat", "the cat sat", "the cat sat on the mat"]
        string, score = baselines.best_constant_output(
            train, ["the cat sat on the mat"], num_candidates=1
        )
        assert string == "the cat sat"
        want = sacrebleu.corpus_bleu([string], [["the cat sat on the mat"]])
        assert score == pytest.approx(want.score)

    def test_wer(self):
        # Candidates by frequency: "x y z" (2), "a b", "a c". Against the
        # references "a b", "a c", "a b" (6 words):
        #   "x y z": 3 edits each -> 9 / 6 = 150%
        #   "a b":   0 + 1 + 0   -> 1 / 6 = 16.67%
        #   "a c":   1 + 0 + 1   -> 2 / 6 = 33.33%
        train = ["x y z", "a b", "a c", "x y z"]
        string, score = baselines.best_constant_output(
            train, ["a b", "a c", "a b"], metric=names.WER
        )
        assert string == "a b"
        assert score == pytest.approx(100 / 6)

    def test_tie_goes_to_the_more_frequent(self):
        train = ["q", "p", "p"]  # Both score 0 BLEU.
        assert baselines.best_constant_output(train, ["z z z z"]) == ("p", 0)

    def test_errors_and_empty(self):
        with pytest.raises(ValueError):
            baselines.best_constant_output(["a"], ["a"], metric="accuracy")
        assert baselines.best_constant_output([], ["a"]) == ("", 0.0)


class TestRightBranching:
    def test_trees(self):
        tree = baselines.right_branching_tree
        assert tree(1) == "S XX /S"
        assert tree(2) == "S XX XX /S"
        assert tree(3) == "S XX NP XX XX /NP /S"
        assert tree(4) == "S XX NP XX NP XX XX /NP /NP /S"
        assert tree(3, root_label="FRAG", label="VP", tag="T") == (
            "FRAG T VP T T /VP /FRAG"
        )
        with pytest.raises(ValueError):
            tree(0)

    def test_labels_from_train(self):
        # Roots S, S; other phrases NP x5, VP x2, PP x1 -> (S, NP).
        assert baselines.right_branching_labels([DOG, HAT]) == ("S", "NP")
        got = baselines.right_branching_labels(["FRAG NP NN /NP /FRAG"])
        assert got == ("FRAG", "NP")

    def test_f1(self):
        # DOG, 4 leaves: S(0,4) NP(1,4) NP(2,4); without the "." position:
        # S(0,3) NP(1,3) NP(2,3) vs gold S(0,3) NP(0,2) VP(2,3): matched 1
        # (S), test 3, gold 3.
        # HAT, 7 leaves: S(0,7) NP(1,7) NP(2,7) NP(3,7) NP(4,7) NP(5,7) vs
        # the 7 gold brackets: S(0,7), NP(2,7), NP(5,7) match (NP(1,7) is a
        # VP, NP(4,7) a PP): matched 3, test 6, gold 7.
        # Corpus: matched 4, test 9, gold 10: F = 2 * 4 / 19 = 42.11.
        got = baselines.right_branching_f1([DOG, HAT], [DOG, HAT])
        assert got == pytest.approx(800 / 19)
        # DOG alone: F = 2 * 1 / 6 = 33.33.
        got = baselines.right_branching_f1([DOG, HAT], [DOG])
        assert got == pytest.approx(100 / 3)
