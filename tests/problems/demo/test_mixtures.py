"""Tests of the demo mixtures."""

from __future__ import annotations

from problems import registry
from problems.demo import mixtures as demo_mixture

DEMO_PROBLEMS = [
    "demo_translate_ende_ding",
    "demo_translate_deen_ding",
    "demo_translate_enfr_gettext",
    "demo_parse_ptb_allennlp",
    "demo_image_fashion_mnist",
    "demo_speech_espeak",
    "demo_caption_openclipart",
]


def test_demo_all_names_every_demo_problem():
    mixture = registry.get_mixture("demo_all")
    assert mixture is demo_mixture.DEMO_ALL
    assert mixture.problem_names == DEMO_PROBLEMS
    assert dict(mixture.problem_rates) == {
        "demo_translate_ende_ding": 2.0,
        "demo_translate_deen_ding": 1.0,
        "demo_translate_enfr_gettext": 1.0,
        "demo_parse_ptb_allennlp": 0.25,
        "demo_image_fashion_mnist": 2.0,
        "demo_speech_espeak": 1.0,
        "demo_caption_openclipart": 0.5,
    }
    demo_names = [n for n in registry.list_problems() if n.startswith("demo_")]
    assert sorted(demo_names) == sorted(DEMO_PROBLEMS)


def test_resolve_and_text_mixture():
    problems = registry.resolve("demo_text,demo_all")
    assert [p.name for p in problems] == DEMO_PROBLEMS  # No duplicates.
    text = registry.get_mixture("demo_text")
    assert text.problem_names == DEMO_PROBLEMS[:4]
    for problem in registry.resolve("demo_text"):
        assert problem.input_modality == problem.target_modality == "symbol"
    modalities = {
        (p.input_modality, p.target_modality)
        for p in registry.resolve("demo_all")
    }
    assert modalities == {
        ("symbol", "symbol"),
        ("image", "class_label_10"),
        ("audio_spectral", "symbol"),
        ("image", "symbol"),
    }
