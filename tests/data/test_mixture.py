"""Tests for t2t_multimodel.data.mixture."""

from __future__ import annotations

import numpy as np
import pytest

from t2t_multimodel.data import mixture


class TestMixingRates:
    def test_schemes_by_hand(self):
        sizes = [100, 300, 0, 600]
        assert mixture.mixing_rates(sizes) == pytest.approx(
            [0.1, 0.3, 0.0, 0.6]
        )
        assert mixture.mixing_rates(sizes, "uniform") == [0.25] * 4
        # T = 2: sqrt(100), sqrt(300), 0, sqrt(600) = 10, 17.32, 0, 24.49.
        total = 10 + 300**0.5 + 600**0.5
        assert mixture.mixing_rates(sizes, "temperature", 2.0) == (
            pytest.approx([10 / total, 300**0.5 / total, 0, 600**0.5 / total])
        )
        assert mixture.mixing_rates(sizes, "temperature", 1.0) == (
            pytest.approx(mixture.mixing_rates(sizes))
        )

    @pytest.mark.parametrize(
        "args",
        [([],), ([0, 0],), ([1, -1],), ([1], "x"), ([1], "temperature", 0)],
    )
    def test_bad_arguments(self, args):
        with pytest.raises(ValueError):
            mixture.mixing_rates(*args)


class TestSchedule:
    def test_frequencies_match_rates(self):
        rates = [0.5, 0.3, 0.2]
        ids = np.array(
            list(
                mixture.problem_schedule(rates, seed=3)
                .take(4000)
                .as_numpy_iterator()
            )
        )
        assert ids.dtype == np.int32
        freqs = np.bincount(ids, minlength=3) / len(ids)
        # 4000 draws: standard error <= 0.008; allow 3 sigma.
        np.testing.assert_allclose(freqs, rates, atol=0.025)

    def test_deterministic_and_resumable(self):
        rates = [0.25, 0.25, 0.5]
        full = list(
            mixture.problem_schedule(rates, 11).take(60).as_numpy_iterator()
        )
        again = list(
            mixture.problem_schedule(rates, 11).take(60).as_numpy_iterator()
        )
        resumed = list(
            mixture.problem_schedule(rates, 11, start_step=40)
            .take(20)
            .as_numpy_iterator()
        )
        other = list(
            mixture.problem_schedule(rates, 12).take(60).as_numpy_iterator()
        )
        assert full == again
        assert resumed == full[40:]
        assert other != full

    def test_single_problem(self):
        ids = list(
            mixture.problem_schedule([1.0], 0).take(5).as_numpy_iterator()
        )
        assert ids == [0] * 5

    def test_worker_problem(self):
        assert [mixture.worker_problem(w, 3) for w in range(7)] == [
            0,
            1,
            2,
            0,
            1,
            2,
            0,
        ]
        with pytest.raises(ValueError):
            mixture.worker_problem(0, 0)


class TestProblemSets:
    def test_sets_are_distinct_sorted_and_follow_the_rates(self):
        rates = [0.5, 0.3, 0.2, 0.0]
        sets = np.array(
            list(
                mixture.problem_sets(rates, 2, seed=3)
                .take(4000)
                .as_numpy_iterator()
            )
        )
        assert sets.shape == (4000, 2) and sets.dtype == np.int32
        assert (sets[:, 0] < sets[:, 1]).all()  # distinct, ascending
        # Drawn without replacement by the rates: P(i in the set) is
        # r_i + sum_{j != i} r_j * r_i / (1 - r_j).
        expected = [
            sum(
                [r]
                + [
                    q * r / (1 - q)
                    for j, q in enumerate(rates)
                    if j != i and q < 1
                ]
            )
            for i, r in enumerate(rates)
        ]
        assert expected[:3] == pytest.approx([0.8393, 0.675, 0.4857], 1e-3)
        included = np.bincount(sets.ravel(), minlength=4) / len(sets)
        # 4000 draws: standard error <= 0.008; allow 3 sigma.
        np.testing.assert_allclose(included, expected, atol=0.025)

    def test_deterministic_and_resumable(self):
        rates = [0.25, 0.25, 0.5]
        full = list(mixture.problem_sets(rates, 2, 11).take(30))
        resumed = list(mixture.problem_sets(rates, 2, 11, 20).take(10))
        other = list(mixture.problem_sets(rates, 2, 12).take(30))
        np.testing.assert_array_equal(resumed, full[20:])
        assert not np.array_equal(other, full)
        everything = list(mixture.problem_sets(rates, 3, 0).take(3))
        np.testing.assert_array_equal(everything, [[0, 1, 2]] * 3)

    @pytest.mark.parametrize("k", [0, 3])
    def test_k_out_of_range(self, k):
        with pytest.raises(ValueError, match="k must be in"):
            mixture.problem_sets([0.5, 0.5, 0.0], k, 0)
