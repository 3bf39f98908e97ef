"""Tests of the in-graph tree repair of served parses (tree_repair.py)."""

from __future__ import annotations

import dataclasses
import random

import pytest
import tensorflow as tf

from t2t_multimodel.decoding import decoder, tree_repair
from t2t_multimodel.metrics import trees
from tests.decoding import tiny

DOG = "S NP DT NN /NP VP VBZ /VP . /S"


@pytest.fixture(scope="module")
def repair():
    return tf.function(
        tree_repair.repair_trees,
        input_signature=[tf.TensorSpec([None], tf.string)],
    )


def _run(repair, texts):
    fixed, repaired = repair(tf.constant(texts, tf.string))
    return [t.decode() for t in fixed.numpy()], repaired.numpy().tolist()


class TestHandScored:
    @pytest.mark.parametrize(
        "text, want",
        [
            (DOG, DOG),
            (f"  {DOG} ", DOG),  # Whitespace only: not a repair.
            # Open phrases are closed at the end, innermost first.
            ("S NP DT NN /NP VP VBZ", "S NP DT NN /NP VP VBZ /VP /S"),
            # `/NP` while VP is open inside it: VP is closed first; the
            # second `/S` closes nothing and is dropped.
            (
                "S NP DT VP VBZ /NP /S /S",
                "S NP DT VP VBZ /VP /NP /S",
            ),
            # A closer of nothing open is dropped.
            ("S NN /PP /S", "S NN /S"),
            # Two top-level constituents are wrapped in S.
            ("NP NN /NP VP VBZ /VP", "S NP NN /NP VP VBZ /VP /S"),
            # A lone tag is wrapped; so is a leaf beside a phrase.
            ("NN", "S NN /S"),
            ("NP NN /NP .", "S NP NN /NP . /S"),
            # Phrases without leaves are dropped, then nothing is left.
            ("S NP /NP /S", "S XX /S"),
            ("", "S XX /S"),
            ("/S /NP", "S XX /S"),
            # An empty phrase inside a non-empty one disappears.
            ("S NP /NP VP VBZ /VP /S", "S VP VBZ /VP /S"),
            # A label closed somewhere is a phrase everywhere (FOO).
            ("S FOO NN /FOO /S", "S FOO NN /FOO /S"),
        ],
    )
    def test_cases(self, repair, text, want):
        (got,), (changed,) = _run(repair, [text])
        assert got == want
        assert trees.is_well_formed(got)
        assert changed == (want != " ".join(text.split()))

    def test_batch_keeps_order(self, repair):
        got, changed = _run(repair, [DOG, "NN", DOG])
        assert got == [DOG, "S NN /S", DOG]
        assert changed == [False, True, False]


def test_equals_python_repair_on_random_sequences(repair):
    vocabulary = (
        "S NP VP PP SBAR ADJP DT NN VBZ IN JJ . , "
        "/S /NP /VP /PP /SBAR /ADJP /WHNP /"
    ).split()
    rng = random.Random(7)
    texts = [
        " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 30)))
        for _ in range(200)
    ]
    got, changed = _run(repair, texts)
    for text, fixed, flag in zip(texts, got, changed):
        want = trees.repair(text)
        assert fixed == want, text
        assert trees.is_well_formed(fixed)
        assert flag == (want != " ".join(text.split()))


def test_parsing_decoder_serves_trees(tmp_path):
    """The served parse is `trees.repair` of the model's own decoding."""
    vocab = tiny.build_vocabulary(str(tmp_path))
    model = tiny.build_model()
    parse = dataclasses.replace(
        tiny.TEXT_PROBLEM,
        name="tiny_parse",
        metrics=("exact_tree", "bracket_f1"),
    )
    config = decoder.DecodeConfig(beam_size=1, max_length=6)
    d = decoder.ProblemDecoder(model, parse, vocab, config)
    plain = decoder.ProblemDecoder(model, tiny.TEXT_PROBLEM, vocab, config)
    assert d.writes_trees and not plain.writes_trees
    raw = tiny.raw_inputs(tiny.TEXT_PROBLEM)
    out = d.decode(raw)
    model_text = plain.decode(raw)["outputs"]
    assert "repaired" not in plain.decode(raw)
    assert list(out["outputs"]) == [trees.repair(t) for t in model_text]
    assert list(out["repaired"]) == [
        trees.repair(t) != " ".join(t.split()) for t in model_text
    ]
    assert all(trees.is_well_formed(t) for t in out["outputs"])
