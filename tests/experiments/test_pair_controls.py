"""experiments/pair_controls.py: the controls zero what they say, and only
while they are active."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from experiments import pair_controls
from t2t_multimodel.training import losses, runner


@dataclasses.dataclass(frozen=True)
class _Problem:
    name: str
    loss_multiplier: float = 1.0


def test_zero_multipliers_only_for_partners():
    problems = [_Problem("a", 0.7), _Problem("image"), _Problem("b")]
    out = pair_controls.zero_multipliers(problems, {"a", "b"})
    assert [(p.name, p.loss_multiplier) for p in out] == [
        ("a", 0.0),
        ("image", 1.0),
        ("b", 0.0),
    ]


def test_all_zero_zeroes_the_moe_loss_too_and_restores(tmp_path):
    model_losses = {
        "loss_sum": tf.constant(6.0),
        "weight_sum": tf.constant(2.0),
        "extra_loss": tf.constant(0.25),
    }
    original = losses.total_loss
    # Unpatched: 0 * task + MoE loss.
    assert float(original(model_losses, loss_multiplier=0.0)) == 0.25
    init, run = runner.StepLoop.__init__, runner.StepLoop.run
    history = str(tmp_path / "history.json")
    with pair_controls.controls({"a"}, "all_zero", history):
        patched = losses.total_loss
        assert float(patched(model_losses, loss_multiplier=0.0)) == 0.0
        # 2 * (6 / 2) + 0.25
        assert float(patched(model_losses, loss_multiplier=2.0)) == 6.25
        assert runner.StepLoop.__init__ is not init
    assert losses.total_loss is original
    assert runner.StepLoop.__init__ is init
    assert runner.StepLoop.run is run


def test_task_zero_keeps_the_loss_function(tmp_path):
    original = losses.total_loss
    with pair_controls.controls({"a"}, "task_zero", str(tmp_path / "h")):
        assert losses.total_loss is original
