"""Tests of the demo's out-of-domain sentences and expected outputs."""

from __future__ import annotations

import os

import pytest

import problems  # noqa: F401  (registers every problem)
from problems import registry
from problems.demo import out_of_domain
from problems.demo import translate as demo_translate
from t2t_multimodel.metrics import language


class TestExpectations:
    @pytest.mark.parametrize(
        "name, expected, inputs",
        [
            ("demo_translate_ende_ding", "de", out_of_domain.ENGLISH),
            ("demo_translate_deen_ding", "en", out_of_domain.GERMAN),
            ("demo_translate_enfr_gettext", "fr", out_of_domain.ENGLISH),
            ("demo_parse_ptb_allennlp", language.TREE, out_of_domain.ENGLISH),
            ("demo_speech_espeak", "en", ()),
            ("demo_caption_openclipart", "en", ()),
            ("demo_image_fashion_mnist", None, ()),
        ],
    )
    def test_by_space_ids(self, name, expected, inputs):
        problem = registry.get(name)
        assert out_of_domain.expected_output(problem) == expected
        assert out_of_domain.inputs_for(problem) == inputs

    def test_sentences_are_in_their_language(self):
        assert len(out_of_domain.ENGLISH) == len(out_of_domain.GERMAN) >= 20
        assert language.target_share(list(out_of_domain.ENGLISH), "en") == 1.0
        assert language.target_share(list(out_of_domain.GERMAN), "de") == 1.0


@pytest.mark.skipif(
    not os.path.exists(demo_translate.DING_PATH), reason="trans-de-en absent"
)
def test_not_in_the_ding_dictionary():
    pairs = demo_translate.read_ding_pairs()
    english = {en for en, _ in pairs}
    german = {de for _, de in pairs}
    assert not english & set(out_of_domain.ENGLISH)
    assert not german & set(out_of_domain.GERMAN)


@pytest.mark.skipif(
    not os.path.exists(demo_translate.LOCALE_DIR), reason="no catalogs"
)
def test_not_in_the_gettext_catalogs():
    try:
        pairs = demo_translate.read_gettext_pairs()
    except Exception as error:  # MissingDataError: some catalog absent.
        pytest.skip(str(error))
    assert not {en for en, _ in pairs} & set(out_of_domain.ENGLISH)
