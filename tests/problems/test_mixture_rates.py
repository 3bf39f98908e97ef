"""problems.registry.mixture_rates: a mixture's rates in resolve order."""

from __future__ import annotations

import problems  # noqa: F401  (registers every problem and mixture)
from problems import registry


def test_single_mixture_gives_its_rates_in_resolve_order():
    mixture = registry.get_mixture("demo_all")
    names = [p.name for p in registry.resolve("demo_all")]
    expected = dict(mixture.problem_rates)
    assert registry.mixture_rates("demo_all") == [expected[n] for n in names]
    assert registry.mixture_rates(["demo_all"]) == [expected[n] for n in names]


def test_problems_or_several_names_give_none():
    assert registry.mixture_rates("demo_translate_ende_ding") is None
    assert registry.mixture_rates("demo_all,demo_text") is None


def test_a_problem_named_twice_keeps_its_first_rate():
    mixture = registry.Mixture(
        "test_twice",
        (
            ("demo_translate_ende_ding", 2.0),
            ("demo_image_fashion_mnist", 1.0),
            ("demo_translate_ende_ding", 5.0),
        ),
    )
    registry._MIXTURES[mixture.name] = mixture
    try:
        assert [p.name for p in registry.resolve("test_twice")] == [
            "demo_translate_ende_ding",
            "demo_image_fashion_mnist",
        ]
        assert registry.mixture_rates("test_twice") == [2.0, 1.0]
    finally:
        del registry._MIXTURES[mixture.name]
