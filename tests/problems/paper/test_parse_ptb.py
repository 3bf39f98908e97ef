"""Tests of the PTB parsing problem on small `.mrg` and `.trees` files."""

from __future__ import annotations

import pytest

from problems import problem as problem_lib
from problems import registry
from problems.paper import parse_ptb
from t2t_multimodel.data import features as features_lib

# Treebank-3 style: unlabeled root, trees over several lines, traces.
WSJ_0200 = """\
( (S
    (NP-SBJ (DT The) (NN dog) )
    (VP (VBD barked)
      (PP-TMP (IN at)
        (NP (NN night) )))
    (. .) ))
( (SBARQ
    (WHNP-1 (WP What) )
    (SQ (VBD did)
      (NP-SBJ (PRP she) )
      (VP (VB see)
        (NP (-NONE- *T*-1) )))
    (. ?) ))
"""
WSJ_0301 = """\
( (S
    (NP-SBJ-2 (NNS Prices) )
    (VP (VBD were)
      (VP (VBN expected)
        (S
          (NP-SBJ (-NONE- *-2) )
          (VP (TO to)
            (VP (VB rise) )))))
    (. .) ))
"""
WSJ_2200 = """\
( (S
    (NP-SBJ (PRP$ Its) (NN profit)
      (PRN (-LRB- -LCB-) (NP (CD 5) (NN %) ) (-RRB- -RCB-) ))
    (VP (VBD fell) )
    (. .) ))
"""
WSJ_2300 = "( (S (NP-SBJ (PRP It) ) (VP (VBZ is) (ADJP (JJ test) )) ) )\n"

# Worked out by hand from the rules in multimodel_facts.md section 8.
TRAIN_EXPECTED = [
    {
        "inputs": "The dog barked at night .",
        "targets": "S NP DT NN /NP VP VBD PP IN NP NN /NP /PP /VP . /S",
    },
    {
        # The trace (NP (-NONE- *T*-1)) is dropped together with its NP.
        "inputs": "What did she see ?",
        "targets": "SBARQ WHNP WP /WHNP SQ VBD NP PRP /NP VP VB /VP /SQ . "
        "/SBARQ",
    },
    {
        # The empty subject of the inner S disappears; the S stays.
        "inputs": "Prices were expected to rise .",
        "targets": "S NP NNS /NP VP VBD VP VBN S VP TO VP VB /VP /VP /S /VP "
        "/VP . /S",
    },
]
DEV_EXPECTED = [
    {
        "inputs": "Its profit -LCB- 5 % -RCB- fell .",
        "targets": "S NP PRP$ NN PRN -LRB- NP CD NN /NP -RRB- /PRN /NP VP "
        "VBD /VP . /S",
    }
]


def _write_treebank(root) -> None:
    wsj = root / "treebank_3" / "parsed" / "mrg" / "wsj"
    for section, name, text in [
        ("02", "wsj_0200.mrg", WSJ_0200),
        ("03", "wsj_0301.mrg", WSJ_0301),
        ("22", "wsj_2200.mrg", WSJ_2200),
        ("23", "wsj_2300.mrg", WSJ_2300),  # Test section: test split only.
        ("00", "wsj_0001.mrg", WSJ_2300),  # Outside 02-21: never read.
    ]:
        (wsj / section).mkdir(parents=True, exist_ok=True)
        (wsj / section / name).write_text(text)


class TestLinearization:
    def test_t2t_example(self):
        words, tags = parse_ptb.linearize_tree(
            "(TOP (S (NP (DT The) (NN dog)) (VP (VBZ barks)) (. .)))"
        )
        assert words == "The dog barks ."
        assert tags == "S NP DT NN /NP VP VBZ /VP . /S"

    def test_no_spaces_between_brackets(self):
        words, tags = parse_ptb.linearize_tree(
            "(ROOT(S(NP(DT The)(NN dog))(VP(VBZ barks))))"
        )
        assert (words, tags) == (
            "The dog barks",
            "S NP DT NN /NP VP VBZ /VP /S",
        )

    def test_without_wrapper_keeps_root_label(self):
        assert parse_ptb.linearize_tree("(NP (DT a) (NN cat))") == (
            "a cat",
            "NP DT NN /NP",
        )

    def test_only_empty_elements(self):
        assert parse_ptb.linearize_tree("( (S (NP-SBJ (-NONE- *)) ) )") == (
            "",
            "",
        )

    def test_function_tags(self):
        strip = parse_ptb.strip_function_tags
        assert strip("NP-SBJ-1") == "NP"
        assert strip("PP-LOC=2") == "PP"
        assert strip("-LRB-") == "-LRB-"
        assert strip("PRP$") == "PRP$"
        _, tags = parse_ptb.linearize_tree(
            "( (S (NP-SBJ (NNP Ann)) (VP (VBZ runs))) )", strip_functions=False
        )
        assert tags == "S NP-SBJ NNP /NP-SBJ VP VBZ /VP /S"

    def test_read_bracketed_trees(self):
        trees = list(parse_ptb.read_bracketed_trees(WSJ_0200))
        assert len(trees) == 2
        assert trees[0].startswith("( (S (NP-SBJ (DT The) (NN dog) )")
        assert trees[1].endswith("(. ?) ))")
        with pytest.raises(ValueError, match="unbalanced"):
            list(parse_ptb.read_bracketed_trees("( (S (NN x) )"))

    def test_parse_tree_structure(self):
        tree = parse_ptb.parse_tree("( (NP (DT a) (NN cat)) )")
        assert tree.label == ""
        (np_node,) = tree.children
        assert np_node.label == "NP" and not np_node.is_preterminal
        assert np_node.children[0] == parse_ptb.Tree("DT", ("a",))
        assert np_node.children[0].is_preterminal


class TestParsePtbProblem:
    def test_registered(self):
        problem = registry.get_problem("parse_ptb_wsj8k")
        assert problem is parse_ptb.PARSE_PTB_WSJ8K
        assert problem.input_space_id == features_lib.SpaceID.EN_TOK == 3
        assert problem.target_space_id == features_lib.SpaceID.PARSE_TOK == 15
        assert problem.metrics == ("exact_tree", "bracket_f1")
        assert problem.input_modality == problem.target_modality == "symbol"

    def test_mrg_sections(self, tmp_path):
        _write_treebank(tmp_path)
        problem = parse_ptb.PARSE_PTB_WSJ8K
        assert list(problem.generate("train", str(tmp_path))) == TRAIN_EXPECTED
        assert list(problem.generate("dev", str(tmp_path))) == DEV_EXPECTED

    def test_test_split_is_section_23(self, tmp_path):
        problem = parse_ptb.PARSE_PTB_WSJ8K
        with pytest.raises(problem_lib.MissingDataError):
            next(problem.generate("test", str(tmp_path)))
        _write_treebank(tmp_path)
        assert list(problem.generate("test", str(tmp_path))) == [
            {
                "inputs": "It is test",
                "targets": "S NP PRP /NP VP VBZ ADJP JJ /ADJP /VP /S",
            }
        ]
        assert not problem.raw_files  # Licensed: never downloaded.
        assert "LDC99T42" in problem.manual_download
        assert "23 test" in problem.manual_download

    def test_t2t_test_trees(self, tmp_path):
        (tmp_path / "wsj_test.trees").write_text("(TOP (NP (DT a) (NN x)))\n")
        problem = parse_ptb.PARSE_PTB_WSJ8K
        assert list(problem.generate("test", str(tmp_path))) == [
            {"inputs": "a x", "targets": "NP DT NN /NP"}
        ]

    def test_t2t_trees_files(self, tmp_path):
        (tmp_path / "wsj_train.trees").write_text(
            "(TOP (S (NP (NNP Ann)) (VP (VBZ runs)) (. .)))\n"
            "(TOP (NP (DT a) (NN cat)))\n"
        )
        (tmp_path / "wsj_dev.trees").write_text(
            "(TOP (S (NP (PRP It)) (VP (VBZ works))))\n"
        )
        problem = parse_ptb.PARSE_PTB_WSJ8K
        assert list(problem.generate("train", str(tmp_path))) == [
            {"inputs": "Ann runs .", "targets": "S NP NNP /NP VP VBZ /VP . /S"},
            {"inputs": "a cat", "targets": "NP DT NN /NP"},
        ]
        assert list(problem.generate("dev", str(tmp_path))) == [
            {"inputs": "It works", "targets": "S NP PRP /NP VP VBZ /VP /S"}
        ]

    def test_missing_files_message(self, tmp_path):
        with pytest.raises(problem_lib.MissingDataError) as info:
            next(parse_ptb.PARSE_PTB_WSJ8K.generate("train", str(tmp_path)))
        message = str(info.value)
        assert "parsed/mrg/wsj/02/wsj_0200.mrg" in message
        assert "_train.trees" in message
        assert "https://catalog.ldc.upenn.edu/LDC99T42" in message
