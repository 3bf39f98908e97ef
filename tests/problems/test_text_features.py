"""Every registered text feature is the one of problems/text_features.py."""

from __future__ import annotations

import problems
from problems import text_features


def test_every_text_feature_is_the_shared_one():
    text = []
    for name in problems.list_problems():
        for key, feature in problems.get_problem(name).features.items():
            if feature.is_text:
                assert feature == text_features.TEXT, (name, key)
                text.append(name)
    assert "translate_ende_wmt8k" in text and "parse_ptb_wsj8k" in text
    assert text_features.TEXT.vocabulary == "vocab.shared.8192.model"
