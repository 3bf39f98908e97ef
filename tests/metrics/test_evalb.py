"""Labelled bracket scores on trees scored by hand.

Brackets are (label, start, end) over word positions, end exclusive, after
removing the gold's punctuation positions; POS tags are not brackets.
"""

from __future__ import annotations

import pytest

from t2t_multimodel.metrics import evalb, trees

# "The dog barks ." Leaves DT NN VBZ . ; the "." position is deleted, which
# leaves positions 0-2. Gold brackets: S(0,3) NP(0,2) VP(2,3).
DOG = "S NP DT NN /NP VP VBZ /VP . /S"
# "She saw the man with a hat" (7 words, no punctuation). Gold brackets:
# S(0,7) NP(0,1) VP(1,7) NP(2,7) NP(2,4) PP(4,7) NP(5,7): 7.
HAT = "S NP PRP /NP VP VBD NP NP DT NN /NP PP IN NP DT NN /NP /PP /NP /VP /S"


def _scores(hypotheses, references):
    got = evalb.bracket_scores(hypotheses, references)
    return got.matched, got.gold, got.test


class TestBrackets:
    def test_dog(self):
        got = evalb.brackets(trees.parse(DOG))
        assert sorted(got) == [("NP", 0, 2), ("S", 0, 3), ("VP", 2, 3)]

    def test_hat(self):
        got = evalb.brackets(trees.parse(HAT))
        assert sorted(got) == [
            ("NP", 0, 1),
            ("NP", 2, 4),
            ("NP", 2, 7),
            ("NP", 5, 7),
            ("PP", 4, 7),
            ("S", 0, 7),
            ("VP", 1, 7),
        ]

    def test_punctuation_only_bracket_dropped(self):
        # Leaves NN VBZ , . -> positions 0-1 kept; PRN covers only the
        # deleted "," and is dropped (evalb's zero-length rule).
        tree = trees.parse("S NP NN /NP VP VBZ /VP PRN , /PRN . /S")
        got = evalb.brackets(tree)
        assert sorted(got) == [("NP", 0, 1), ("S", 0, 2), ("VP", 1, 2)]

    def test_unary_chain_counted_twice(self):
        got = evalb.brackets(trees.parse("S NP NP NN /NP /NP VBZ /S"))
        assert got[("NP", 0, 1)] == 2

    def test_implicit_root_not_counted(self):
        got = evalb.brackets(trees.parse("NP NN /NP VP VBZ /VP"))
        assert sorted(got) == [("NP", 0, 1), ("VP", 1, 2)]

    def test_labels_normalised(self):
        # Function tags cut, PRT == ADVP (COLLINS.prm EQ_LABEL ADVP PRT).
        got = evalb.brackets(trees.parse("S-1 VB PRT RP /PRT /S-1"))
        assert sorted(got) == [("ADVP", 1, 2), ("S", 0, 2)]

    def test_wrong_length_rejected(self):
        with pytest.raises(ValueError):
            evalb.brackets(trees.parse(DOG), [False] * 3)


class TestBracketScores:
    def test_exact(self):
        got = evalb.bracket_scores([DOG, HAT], [DOG, HAT])
        assert (got.matched, got.gold, got.test) == (10, 10, 10)
        assert got.f1 == pytest.approx(100.0)
        assert got.complete_match == pytest.approx(100.0)

    def test_wrong_label(self):
        # Test S(0,3) NP(0,2) ADJP(2,3): ADJP != VP. 2 matched of 3 and 3:
        # P = R = F = 2/3.
        hyp = "S NP DT NN /NP ADJP VBZ /ADJP . /S"
        got = evalb.bracket_scores([hyp], [DOG])
        assert (got.matched, got.gold, got.test) == (2, 3, 3)
        assert got.precision == pytest.approx(200 / 3)
        assert got.recall == pytest.approx(200 / 3)
        assert got.f1 == pytest.approx(200 / 3)
        assert got.complete_match == 0.0

    def test_missing_constituent(self):
        # No VP: test S(0,3) NP(0,2), both right. P = 2/2 = 100,
        # R = 2/3 = 66.67, F = 2 * 2 / (3 + 2) = 80.
        hyp = "S NP DT NN /NP VBZ . /S"
        got = evalb.bracket_scores([hyp], [DOG])
        assert (got.matched, got.gold, got.test) == (2, 3, 2)
        assert got.precision == pytest.approx(100.0)
        assert got.recall == pytest.approx(200 / 3)
        assert got.f1 == pytest.approx(80.0)

    def test_crossing_bracket(self):
        # "the man with" as NP(2,5) crosses the gold PP(4,7) (2 < 4 < 5 < 7).
        # Test: S(0,7) NP(0,1) VP(1,7) NP(2,5) NP(5,7); all but NP(2,5) are
        # gold: matched 4, test 5, gold 7. P = 80, R = 4/7 = 57.14,
        # F = 2 * 4 / (5 + 7) = 66.67.
        hyp = "S NP PRP /NP VP VBD NP DT NN IN /NP NP DT NN /NP /VP /S"
        got = evalb.bracket_scores([hyp], [HAT])
        assert (got.matched, got.gold, got.test) == (4, 7, 5)
        assert got.precision == pytest.approx(80.0)
        assert got.recall == pytest.approx(400 / 7)
        assert got.f1 == pytest.approx(200 / 3)

    def test_ill_formed_hypothesis_repaired(self):
        # Truncated after VBZ: repair closes VP and S and pads one XX leaf
        # (4 words): S NP DT NN /NP VP VBZ /VP XX /S. With the gold's "."
        # position deleted its brackets are S(0,3) NP(0,2) VP(2,3): 3 of 3.
        got = evalb.bracket_scores(["S NP DT NN /NP VP VBZ"], [DOG])
        assert (got.matched, got.gold, got.test) == (3, 3, 3)
        assert got.repaired == 1
        assert got.f1 == pytest.approx(100.0)

    def test_ill_formed_hypothesis_with_surplus(self):
        # /VP matches nothing and is dropped; leaves past 4 (the second NN
        # and ".") are dropped; the extra /S is dropped: the tree is
        # S NP DT NN /NP VBZ NN /S -> S(0,3) NP(0,2): matched 2, test 2,
        # gold 3 (as the missing-constituent case): F = 80.
        hyp = "S NP DT NN /VP /NP VBZ NN NN . /S /S"
        got = evalb.bracket_scores([hyp], [DOG])
        assert (got.matched, got.gold, got.test) == (2, 3, 2)
        assert got.f1 == pytest.approx(80.0)

    def test_gold_tags_decide_punctuation(self):
        # XX-tagged output (Vinyals et al.) is scored at the gold's
        # punctuation positions: the last XX sits on the deleted ".".
        hyp = "S NP XX XX /NP VP XX /VP XX /S"
        got = evalb.bracket_scores([hyp], [DOG])
        assert (got.matched, got.gold, got.test) == (3, 3, 3)
        assert got.repaired == 0

    def test_corpus_level_sums(self):
        # Missing-constituent DOG (2, 3, 2) + crossing HAT (4, 7, 5):
        # matched 6, gold 10, test 7. P = 6/7 = 85.71, R = 60,
        # F = 2 * 6 / (10 + 7) = 70.59 -- not the mean of the sentence F1s
        # (80 and 66.67 -> 73.33).
        hyps = [
            "S NP DT NN /NP VBZ . /S",
            "S NP PRP /NP VP VBD NP DT NN IN /NP NP DT NN /NP /VP /S",
        ]
        got = evalb.bracket_scores(hyps, [DOG, HAT])
        assert (got.matched, got.gold, got.test) == (6, 10, 7)
        assert got.precision == pytest.approx(600 / 7)
        assert got.recall == pytest.approx(60.0)
        assert got.f1 == pytest.approx(1200 / 17)
        assert evalb.bracket_f1(hyps, [DOG, HAT]) == pytest.approx(1200 / 17)

    def test_complete_match(self):
        got = evalb.bracket_scores([DOG, "S NP DT NN /NP VBZ . /S"], [DOG, DOG])
        assert (got.sentences, got.complete) == (2, 1)
        assert got.complete_match == pytest.approx(50.0)

    def test_complete_match_ignores_pos_tags(self):
        # evalb's complete match compares brackets only (the paper's exact
        # tree, `text.exact_match`, also compares the POS tags).
        got = evalb.bracket_scores(["S NP XX XX /NP VP XX /VP XX /S"], [DOG])
        assert got.complete_match == pytest.approx(100.0)

    def test_unary_chain_multiset(self):
        # Gold S(0,2) NP(0,1) NP(0,1) VP(1,2); test has one NP(0,1):
        # matched 3 of gold 4, test 3.
        gold = "S NP NP NN /NP /NP VP VBZ /VP /S"
        hyp = "S NP NN /NP VP VBZ /VP /S"
        assert _scores([hyp], [gold]) == (3, 4, 3)

    def test_punctuation_only_sentence_skipped(self):
        got = evalb.bracket_scores(["S XX /S", DOG], ["S . /S", DOG])
        assert (got.sentences, got.skipped, got.gold) == (1, 1, 3)

    def test_truncated_gold_repaired(self):
        got = evalb.bracket_scores([DOG], ["S NP DT NN /NP VP VBZ /VP ."])
        assert got.gold_repaired == 1
        assert got.f1 == pytest.approx(100.0)

    def test_empty_and_mismatched(self):
        assert evalb.bracket_scores([], []).f1 == 0.0
        with pytest.raises(ValueError):
            evalb.bracket_scores([DOG], [])
