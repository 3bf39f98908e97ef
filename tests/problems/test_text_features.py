"""Every shipped text feature is the one of problems/text_features.py."""

from __future__ import annotations

import importlib
import pkgutil

import problems  # noqa: F401  (registers every problem and mixture)
from problems import problem as problem_lib
from problems import text_features


def _shipped_problems() -> list[problem_lib.Problem]:
    """The Problem values of the problems.paper and problems.demo modules.

    (The registry may also hold the fake problems other tests register.)
    """
    found = {}
    for package in ("paper", "demo"):
        path = importlib.import_module(f"problems.{package}").__path__
        for info in pkgutil.iter_modules(path):
            module = importlib.import_module(f"problems.{package}.{info.name}")
            for value in vars(module).values():
                if isinstance(value, problem_lib.Problem):
                    found[value.name] = value
    return list(found.values())


def test_every_text_feature_is_the_shared_one():
    text = []
    for problem in _shipped_problems():
        for key, feature in problem.features.items():
            if feature.is_text:
                assert feature == text_features.TEXT, (problem.name, key)
                text.append(problem.name)
    assert "translate_ende_wmt8k" in text and "parse_ptb_wsj8k" in text
    assert "demo_caption_openclipart" in text
    assert text_features.TEXT.vocabulary == "vocab.shared.8192.model"
