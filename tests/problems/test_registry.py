"""Tests for problems.registry (and problem.reverse as registered values)."""

from __future__ import annotations

import pytest

from problems import problem as problem_lib
from problems import registry
from t2t_multimodel.data import features as features_lib
from tests.data import fake_problems


class TestRegistry:
    def test_register_and_get(self):
        p = fake_problems.register(fake_problems.make_text_problem())
        assert registry.get(p.name) is p
        assert registry.get_problem(p.name) is p
        assert p.name in registry.list_problems()

    def test_duplicate_registration_raises(self):
        p = fake_problems.register(fake_problems.make_text_problem())
        with pytest.raises(ValueError, match="already registered"):
            registry.register(p)
        mixture = registry.Mixture(p.name, ((p.name, 1.0),))
        with pytest.raises(ValueError, match="already registered"):
            registry.register_mixture(mixture)

    def test_unknown_name_lists_nearest(self):
        p = fake_problems.register(fake_problems.make_text_problem())
        typo = p.name.replace("fake_text", "fake_txet")
        with pytest.raises(registry.UnknownNameError) as info:
            registry.get(typo)
        message = str(info.value)
        assert f"unknown problem or mixture {typo!r}" in message
        assert p.name in message.split("Did you mean:")[1]
        assert "--list_problems" in message
        with pytest.raises(KeyError):  # UnknownNameError is a KeyError.
            registry.get_problem(typo)

    def test_mixture_needs_registered_problems(self):
        with pytest.raises(registry.UnknownNameError):
            registry.register_mixture(
                registry.Mixture(
                    fake_problems.unique_name("fake_mix"),
                    (("fake_not_registered_zz", 1.0),),
                )
            )

    def test_resolve_expands_mixtures_in_order_without_duplicates(self):
        a = fake_problems.register(fake_problems.make_text_problem())
        b = fake_problems.register(fake_problems.make_image_problem())
        mixture = registry.register_mixture(
            registry.Mixture(
                fake_problems.unique_name("fake_mix"),
                ((b.name, 2.0), (a.name, 1.0)),
            )
        )
        assert mixture.problem_names == [b.name, a.name]
        resolved = registry.resolve(f"{a.name}, {mixture.name}")
        assert resolved == [a, b]
        assert registry.resolve([mixture.name]) == [b, a]
        assert mixture.name in registry.list_mixtures()

    def test_reverse_is_a_new_value(self, tmp_path):
        p = fake_problems.make_text_problem()
        rev = problem_lib.reverse(p, fake_problems.unique_name("fake_rev"))
        assert rev.input_space_id == features_lib.SpaceID.DE_TOK
        assert rev.target_space_id == features_lib.SpaceID.EN_TOK
        forward = next(p.generate("train", str(tmp_path)))
        backward = next(rev.generate("train", str(tmp_path)))
        assert backward == {
            "inputs": forward["targets"],
            "targets": forward["inputs"],
        }
        with pytest.raises(ValueError, match="no split 'test'"):
            rev.generate("test", str(tmp_path))
