"""Linearized trees: parsing, well-formedness and repair."""

from __future__ import annotations

import pytest

from problems import parse_ptb
from t2t_multimodel.metrics import trees

# "The dog barks ." as problems/parse_ptb.py linearizes it.
DOG = "S NP DT NN /NP VP VBZ /VP . /S"


class TestParse:
    def test_dog(self):
        tree = trees.parse(DOG)
        assert tree.label == "S"
        assert [c.label for c in tree.children] == ["NP", "VP", "."]
        assert tree.leaves() == ["DT", "NN", "VBZ", "."]
        assert tree.children[0].children == (trees.Tree("DT"), trees.Tree("NN"))

    def test_linearize_round_trip(self):
        assert trees.linearize(trees.parse(DOG)) == DOG
        assert trees.parse(DOG.split()) == trees.parse(f"  {DOG} ")

    def test_several_top_level_constituents_get_a_root(self):
        tree = trees.parse("NP NN /NP VP VBZ /VP")
        assert tree.label == trees.ROOT
        assert [c.label for c in tree.children] == ["NP", "VP"]
        assert trees.linearize(tree) == "NP NN /NP VP VBZ /VP"

    def test_label_closed_anywhere_is_a_phrase(self):
        # FOO is no PTB label, but it is closed, so it opens a phrase.
        tree = trees.parse("S FOO NN /FOO /S")
        assert tree.children[0] == trees.Tree("FOO", (trees.Tree("NN"),))

    @pytest.mark.parametrize(
        "bad",
        [
            "",  # No tokens.
            "S NP DT NN /S /NP",  # Crossing closers.
            "S NP DT NN /NP VP VBZ",  # Truncated: VP and S left open.
            "S NP /NP VBZ /S",  # Empty NP.
            "S NN /NN /S",  # A POS tag closed: an empty phrase NN.
            "S NN /S /S",  # One closer too many.
        ],
    )
    def test_malformed_raise(self, bad):
        with pytest.raises(ValueError):
            trees.parse(bad)

    def test_matches_parse_ptb_linearization(self):
        # The contract with problems/parse_ptb.py: its targets parse, and
        # the leaves are the POS tags of the words, one per word.
        ptb = (
            "( (S (NP-SBJ (DT The) (NN dog)) (VP (VBZ barks) (PP-LOC (IN in)"
            " (NP (DT the) (NN park)))) (. .)) )"
        )
        words, linearized = parse_ptb.linearize_tree(ptb)
        tree = trees.parse(linearized)
        assert trees.is_well_formed(linearized)
        assert len(tree.leaves()) == len(words.split())
        assert tree.leaves() == ["DT", "NN", "VBZ", "IN", "DT", "NN", "."]
        assert trees.linearize(tree) == linearized


class TestIsWellFormed:
    def test_cases(self):
        assert trees.is_well_formed(DOG)
        assert trees.is_well_formed("S XX /S")
        assert not trees.is_well_formed("NP NN /NP VP VBZ /VP")  # Two roots.
        assert not trees.is_well_formed("NN")  # A lone tag.
        assert not trees.is_well_formed("S NP DT NN /NP VP VBZ")
        assert not trees.is_well_formed("S NP DT /S /NP")


class TestRepair:
    def test_well_formed_unchanged(self):
        assert trees.repair(DOG) == DOG
        assert trees.repair(DOG, 4) == DOG
        assert trees.repair(f" {DOG}  ") == DOG

    def test_truncated_closes_at_the_end(self):
        # VP and S are open at the end: their closers are appended.
        got = trees.repair("S NP DT NN /NP VP VBZ")
        assert got == "S NP DT NN /NP VP VBZ /VP /S"

    def test_truncated_padded_to_the_word_count(self):
        # 3 leaves for 4 words: one XX leaf, last child of the root.
        got = trees.repair("S NP DT NN /NP VP VBZ", 4)
        assert got == "S NP DT NN /NP VP VBZ /VP XX /S"

    def test_closer_closes_phrases_opened_inside(self):
        # NP is never closed; /S closes it just before S.
        got = trees.repair("S NP DT NN VP VBZ /VP /S")
        assert got == "S NP DT NN VP VBZ /VP /NP /S"

    def test_unmatched_closers_dropped(self):
        # /VP: no VP is open; the second /S: nothing is open.
        got = trees.repair("S NP DT NN /VP /NP VBZ /S /S")
        assert got == "S NP DT NN /NP VBZ /S"

    def test_surplus_leaves_dropped_from_the_right(self):
        # 5 leaves (DT NN VBZ NN .) for 4 words: the "." goes, and the PP
        # left without leaves goes too.
        got = trees.repair("S NP DT NN /NP VBZ NN PP . /PP /S", 4)
        assert got == "S NP DT NN /NP VBZ NN /S"

    def test_several_roots_wrapped(self):
        got = trees.repair("NP NN /NP VP VBZ /VP")
        assert got == "S NP NN /NP VP VBZ /VP /S"
        got = trees.repair("NP NN /NP", root_label="FRAG")
        assert got == "NP NN /NP"  # One phrase already.
        assert trees.repair("NN", root_label="FRAG") == "FRAG NN /FRAG"

    def test_empty_phrases_dropped(self):
        assert trees.repair("S NP /NP VBZ /S") == "S VBZ /S"

    def test_nothing_becomes_a_filler_tree(self):
        assert trees.repair("") == "S XX /S"
        assert trees.repair("/NP /S", 2) == "S XX XX /S"

    def test_result_always_well_formed(self):
        for tokens in ["S S S", "/S S", "NP VP PP", "XX /XX NN", "S NN /NN"]:
            for num_words in (None, 1, 3):
                got = trees.repair(tokens, num_words)
                assert trees.is_well_formed(got), (tokens, got)
                if num_words:
                    assert len(trees.parse(got).leaves()) == num_words

    def test_rejects_zero_words(self):
        with pytest.raises(ValueError):
            trees.repair(DOG, 0)


class TestParseOrRepair:
    def test_cases(self):
        assert trees.parse_or_repair(DOG) == (trees.parse(DOG), False)
        # Two roots parse: kept under ROOT, not repaired.
        tree, repaired = trees.parse_or_repair("NP NN /NP VP VBZ /VP")
        assert (tree.label, repaired) == (trees.ROOT, False)
        # Wrong leaf count: repaired.
        tree, repaired = trees.parse_or_repair(DOG, 5)
        assert repaired and len(tree.leaves()) == 5
