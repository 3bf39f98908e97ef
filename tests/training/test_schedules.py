"""Learning-rate schedules at hand-computed steps."""

from __future__ import annotations

import math

import keras
import pytest

from t2t_multimodel.training import schedules


def _value(schedule, step):
    return float(schedule(step).numpy())


class TestNoam:
    def test_warmup_peak_and_decay(self):
        s = schedules.NoamSchedule(1.0, hidden_dim=512, warmup_steps=4000)
        # Step 0: (0+1) * 4000^-1.5 / sqrt(512).
        assert _value(s, 0) == pytest.approx(4000**-1.5 / math.sqrt(512))
        # Peak at s+1 = 4000: (512 * 4000)^-0.5 = 6.988e-4 (T2T's 7.0e-4).
        assert _value(s, 3999) == pytest.approx(6.98771e-4, rel=1e-5)
        # After warmup: (s+1)^-0.5 / sqrt(512) at s+1 = 16000: half the peak.
        assert _value(s, 15999) == pytest.approx(6.98771e-4 / 2, rel=1e-5)

    def test_serializable(self):
        s = schedules.NoamSchedule(2.0, hidden_dim=8, warmup_steps=10)
        again = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(s)
        )
        assert _value(again, 3) == pytest.approx(_value(s, 3))


class TestExp500k:
    def test_released_recipe(self):
        s = schedules.Exp500kSchedule(
            0.05, warmup_steps=3000, train_steps=1_000_000
        )
        # Warmup: 0.05 / 500 * 0.01 at step 0, * 0.1 half-way, * 1 at W.
        assert _value(s, 0) == pytest.approx(1e-6, rel=1e-5)
        assert _value(s, 1500) == pytest.approx(1e-5, rel=1e-4)
        # Steps 3000 .. 500000: no decay yet (decay window = last 500k).
        assert _value(s, 3000) == pytest.approx(1e-4, rel=1e-5)
        assert _value(s, 500_000) == pytest.approx(1e-4, rel=1e-5)
        # 100k steps into the window: 0.9999955^100000 = e^-0.45001.
        assert _value(s, 600_000) == pytest.approx(
            1e-4 * 0.9999955**100_000, rel=1e-3
        )

    def test_decay_active_after_short_warmup_and_replicas(self):
        s = schedules.Exp500kSchedule(
            0.05, warmup_steps=10, train_steps=100, worker_replicas=4
        )
        # W = 40; at step 40 the decay is 0.9999955^(40 + 499900).
        want = 1e-4 / 2 * 0.9999955 ** (40 - (100 - 500_000))
        assert _value(s, 40) == pytest.approx(want, rel=1e-3)
        assert _value(s, 0) == pytest.approx(1e-6 / 2, rel=1e-5)
