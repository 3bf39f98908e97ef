"""Tests of the target language / format check (py3langid, trees)."""

from __future__ import annotations

import pytest

from t2t_multimodel.metrics import language


class TestIdentifyLanguage:
    @pytest.mark.parametrize(
        "text, code",
        [
            ("The house is small and the garden is big.", "en"),
            ("Das Haus ist klein und der Garten ist groß.", "de"),
            ("La maison est petite et le jardin est grand.", "fr"),
            ("Impossible de lire le fichier.", "fr"),
            ("Die Datei konnte nicht gelesen werden.", "de"),
        ],
    )
    def test_short_sentences(self, text, code):
        assert language.identify_language(text) == code

    def test_no_letters(self):
        assert language.identify_language("12 / 34 ...") == ""
        assert language.identify_language("") == ""

    def test_candidates_restrict_the_answer(self):
        text = "Das Haus ist klein."
        assert language.identify_language(text, ("en", "fr")) in ("en", "fr")


class TestOutputFormat:
    def test_tree_or_language(self):
        assert language.output_format("S NP DT NN /NP VP VBZ /VP /S") == "tree"
        # Not closed: not a tree, so the identifier answers.
        assert language.output_format("S NP DT NN /NP") != "tree"
        assert language.output_format("Das Haus ist klein.") == "de"


class TestTargetShare:
    def test_hand_computed_shares(self):
        outputs = [
            "Das Haus ist klein.",
            "Der Garten ist sehr groß.",
            "The house is small.",
            "Le jardin est grand.",
        ]
        assert language.target_share(outputs, "de") == 0.5
        assert language.target_share(outputs, "en") == 0.25
        assert language.target_share([], "de") == 0.0

    def test_tree_share(self):
        outputs = ["S NP NN /NP /S", "S NP NN /S", "NP NN /NP VBZ"]
        # Only the first is one well-formed phrase at the root.
        assert language.target_share(outputs, language.TREE) == pytest.approx(
            1 / 3
        )
