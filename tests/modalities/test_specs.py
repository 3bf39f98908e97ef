"""Tests of t2t_multimodel/modalities/specs.py."""

from __future__ import annotations

from t2t_multimodel.data import features
from t2t_multimodel.modalities import specs, symbol
from t2t_multimodel.models import multimodel


class TestModalitySpec:
    def test_builds_a_class_named_by_path_or_given(self):
        by_path = specs.ModalitySpec(
            "symbol",
            "t2t_multimodel.modalities.symbol.SymbolModality",
            {"vocab_size": 32},
        )
        given = specs.ModalitySpec(
            "symbol", symbol.SymbolModality, {"vocab_size": 32}
        )
        for spec in (by_path, given):
            assert spec.class_name == "SymbolModality"
            layer = spec.build(16, vocab_size=48)  # overrides win
            assert isinstance(layer, symbol.SymbolModality)
            assert layer.name == "symbol" and layer.vocab_size == 48

    def test_paper_specs(self):
        assert specs.SYMBOL.kwargs == {"vocab_size": specs.VOCAB_SIZE}
        label = specs.class_label(10)
        assert label.name == "class_label_10"
        assert label.class_name == "ClassLabelModality"
        assert label == specs.class_label(10)  # equal specs share a net


def test_every_space_id_has_a_command_token_row():
    assert max(features.SpaceID) < multimodel.NUM_SPACE_IDS
