"""Tests of the demo parsing problem (allennlp 0.9.0 fixture trees)."""

from __future__ import annotations

import os
import zipfile

import pytest

from problems import problem as problem_lib
from problems import registry
from problems.demo import parse as demo_parse

# CoNLL-2012 columns: doc, part, index, word, POS, parse bit, lemma, ...
CONLL = """\
#begin document (test/doc); part 000
test/doc  0  0  The     DT   (TOP(S(NP*   -  -  -  _  *
test/doc  0  1  dog     NN   *)           -  -  -  _  *
test/doc  0  2  (       (    (PRN*        -  -  -  _  *
test/doc  0  3  Rex     NNP  (NP*)        -  -  -  _  *
test/doc  0  4  )       )    *)           -  -  -  _  *
test/doc  0  5  barks   VBZ  (VP*)        -  -  -  _  *
test/doc  0  6  .       .    *))          -  -  -  _  *

test/doc  0  0  Hello   UH   -            -  -  -  _  *
test/doc  0  1  .       .    -            -  -  -  _  *

test/doc  0  0  Go      VB   (TOP(S(VP*)  -  -  -  _  *
test/doc  0  1  !       .    *))          -  -  -  _  *
#end document
"""
FIRST_TREE = (
    "(TOP(S(NP (DT The) (NN dog))(PRN (-LRB- -LRB-)(NP (NNP Rex))"
    " (-RRB- -RRB-))(VP (VBZ barks)) (. .)))"
)


class TestConll:
    def test_sentence_to_tree(self):
        rows = [line.split() for line in CONLL.splitlines()[1:8]]
        assert demo_parse.conll_sentence_to_tree(rows) == FIRST_TREE

    def test_file_skips_sentences_without_parse(self):
        assert list(demo_parse.read_conll_trees(CONLL)) == [
            FIRST_TREE,
            "(TOP(S(VP (VB Go)) (. !)))",
        ]


def _tree(i: int) -> str:
    return f"(TOP (S (NP (NNP Word{i})) (VP (VBD ran)) (. .)))"


def _write_wheel(path: str, num_ptb: int = 2) -> None:
    """A wheel with the fixture layout: PTB trees then CoNLL files."""
    with zipfile.ZipFile(path, "w") as wheel:
        ptb = "\n".join(_tree(i) for i in range(num_ptb))
        wheel.writestr(demo_parse.FIXTURE_FILES[0], ptb)
        wheel.writestr(demo_parse.FIXTURE_FILES[1], CONLL)
        wheel.writestr(demo_parse.FIXTURE_FILES[2], "")
        wheel.writestr(demo_parse.FIXTURE_FILES[3], CONLL)  # A duplicate.
        conll = "\n".join(
            f"d 0 0 Cat{i} NN (TOP(NP*)) - - - _ *\n" for i in range(3)
        )
        wheel.writestr(demo_parse.FIXTURE_FILES[4], conll)


class TestProblem:
    def test_fake_wheel_split_by_position(self, tmp_path):
        path = str(tmp_path / demo_parse.WHEEL_NAME)
        _write_wheel(path)
        trees = demo_parse.read_fixture_trees(path)
        # 2 PTB + 2 CoNLL (the duplicate file adds nothing) + 3 = 7 trees.
        assert len(trees) == 7 and trees[2] == FIRST_TREE
        problem = demo_parse.allennlp_parse_problem(path, name="t_parse")
        train = list(problem.generate("train", ""))
        dev = list(problem.generate("dev", ""))
        assert [e["inputs"] for e in train] == [
            "Word0 ran .",
            "Word1 ran .",
            "The dog -LRB- Rex -RRB- barks .",
            "Go !",
            "Cat1",
            "Cat2",
        ]
        assert train[0]["targets"] == "S NP NNP /NP VP VBD /VP . /S"
        assert train[2]["targets"] == (
            "S NP DT NN /NP PRN -LRB- NP NNP /NP -RRB- /PRN VP VBZ /VP . /S"
        )
        assert dev == [{"inputs": "Cat0", "targets": "NP NN /NP"}]

    def test_missing_wheel_says_how_to_fetch(self, tmp_path):
        problem = demo_parse.allennlp_parse_problem(str(tmp_path / "x.whl"))
        with pytest.raises(
            problem_lib.MissingDataError, match="fetch-offline-data.sh"
        ):
            next(iter(problem.generate("train", "")))


@pytest.mark.skipif(
    not os.path.exists(demo_parse.WHEEL_PATH),
    reason="run scripts/fetch-offline-data.sh (allennlp 0.9.0 wheel)",
)
class TestRealWheel:
    def test_counts_first_examples_and_disjoint_splits(self):
        problem = registry.get_problem("demo_parse_ptb_allennlp")
        train = list(problem.generate("train", ""))
        dev = list(problem.generate("dev", ""))
        assert (len(train), len(dev)) == (40, 10)
        assert sum(len(e["inputs"].split()) for e in train + dev) == 624
        assert train[1] == {
            "inputs": "That could cost him the chance to influence the "
            "outcome and perhaps join the winning bidder .",
            "targets": "S NP DT /NP VP MD VP VB NP PRP /NP NP DT NN S VP TO "
            "VP VP VB NP DT NN /NP /VP CC VP ADVP RB /ADVP VB NP DT VBG NN "
            "/NP /VP /VP /VP /S /NP /VP /VP . /S",
        }
        assert dev[0] == {
            "inputs": "Denise Dillon Headline News .",
            "targets": "FRAG NP NNP NNP /NP NP NNP NNP /NP . /FRAG",
        }
        assert not {e["inputs"] for e in train} & {e["inputs"] for e in dev}
