"""End-to-end tests of `train` on tiny generated problems."""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.training import loop
from tests.training import fake_problems


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data"))
    fake_problems.write(
        [
            fake_problems.text_problem(),
            fake_problems.image_problem(),
            fake_problems.speech_problem(),
        ],
        path,
    )
    return path


def _train(problems, data_dir, model_dir, steps, **kwargs):
    args = dict(
        problems=problems,
        data_dir=data_dir,
        model_dir=model_dir,
        model_fn=fake_problems.tiny_model,
        train_steps=steps,
        learning_rate_schedule=0.01,
        data=loop.DataConfig(
            batch_size=8,
            batch_unit="examples",
            max_length=16,
            mixing="uniform",
        ),
        checkpoint=loop.CheckpointConfig(every=10, keep=3),
        evaluation=loop.EvalConfig(every=0, steps=1, batch_size=4),
        seed=1,
        log_every=10,
    )
    args.update(kwargs)
    return loop.train(**args)


# Checkpoints every 2 steps and no dev batches: the resume tests stay fast.
_QUICK = dict(
    checkpoint=loop.CheckpointConfig(every=2, keep=3),
    evaluation=loop.EvalConfig(every=0, steps=0),
)


class TestTrain:
    def test_loss_goes_down_and_files_written(self, data_dir, tmp_path):
        model_dir = str(tmp_path / "run")
        result = _train(
            [fake_problems.text_problem()],
            data_dir,
            model_dir,
            30,
            evaluation=loop.EvalConfig(every=0, steps=0),
        )
        losses = [loss for _, _, loss in result["history"]]
        assert [s for s, _, _ in result["history"]] == list(range(1, 31))
        assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
        assert result["step"] == 30
        assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-30")
        # The Keras config rebuilds the model without gin.
        with open(os.path.join(model_dir, "model_config.json")) as f:
            rebuilt = keras.saving.deserialize_keras_object(json.load(f))
        assert len(rebuilt.weights) > 0
        with open(os.path.join(model_dir, "problems.json")) as f:
            assert json.load(f)["problems"] == ["fake_copy_text"]
        assert os.listdir(os.path.join(model_dir, "train"))

    @pytest.mark.slow
    def test_eval_results_for_text_image_speech(self, data_dir, tmp_path):
        model_dir = str(tmp_path / "run")
        problems = [
            fake_problems.text_problem(),
            fake_problems.image_problem(),
            fake_problems.speech_problem(),
        ]
        _train(problems, data_dir, model_dir, 3)
        with open(os.path.join(model_dir, "eval_results.json")) as f:
            results = json.load(f)
        assert results["step"] == 3
        assert results["decoding"] == "greedy"
        common = {"loss", "log_ppl", "accuracy", "examples", "step"}
        by_problem = results["problems"]
        assert set(by_problem["fake_copy_text"]) == common | {
            "bleu",
            "decoding",
        }
        assert set(by_problem["fake_image"]) == common | {
            "accuracy_top1",
            "accuracy_top5",
        }
        assert set(by_problem["fake_speech"]) == common | {"wer", "decoding"}
        image = by_problem["fake_image"]
        # 4 classes: top-5 covers them all; top-1 is the accuracy.
        assert image["accuracy_top5"] == 1.0
        assert image["accuracy_top1"] == image["accuracy"]
        assert image["examples"] == 4
        for values in by_problem.values():
            assert values["loss"] > 0 and values["log_ppl"] < 0
            assert 0.0 <= values["accuracy"] <= 1.0
        assert 0.0 <= by_problem["fake_copy_text"]["bleu"] <= 100.0
        assert by_problem["fake_speech"]["wer"] >= 0.0

    def test_nan_stops_and_keeps_last_good_checkpoint(self, data_dir, tmp_path):
        model_dir = str(tmp_path / "run")
        text = fake_problems.text_problem()
        _train([text], data_dir, model_dir, 4, **_QUICK)
        good = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
        bad = dataclasses.replace(text, loss_multiplier=float("nan"))
        with pytest.raises(loop.NonFiniteLossError, match="step 5"):
            _train([bad], data_dir, model_dir, 8, **_QUICK)
        latest = tf.train.latest_checkpoint(model_dir)
        assert latest.endswith("ckpt-4")
        after = tf.train.load_checkpoint(latest)
        for name, dtype in good.get_variable_to_dtype_map().items():
            if dtype == tf.variant:  # The input iterators' state.
                continue
            np.testing.assert_array_equal(
                good.get_tensor(name), after.get_tensor(name)
            )

    def test_resume_continues_step_and_optimizer(self, data_dir, tmp_path):
        model_dir = str(tmp_path / "run")
        text = fake_problems.text_problem()
        _train([text], data_dir, model_dir, 4, **_QUICK)
        calls = []
        result = _train(
            [text],
            data_dir,
            model_dir,
            6,
            on_step=lambda step, metrics: calls.append((step, dict(metrics))),
            **_QUICK,
        )
        assert [s for s, _, _ in result["history"]] == [5, 6]
        # The progress hook: every step of this run, with its metrics.
        assert [step for step, _ in calls] == [5, 6]
        for (_, _, loss), (_, metrics) in zip(result["history"], calls):
            assert metrics["loss"] == metrics["fake_copy_text/loss"] == loss
            assert metrics["fake_copy_text/examples"] == 8.0
            assert {"grad_norm", "learning_rate", "examples"} <= set(metrics)
        reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
        names = reader.get_variable_to_shape_map()
        step_key = [n for n in names if n.startswith("step/")][0]
        iterations = [n for n in names if "optimizer/iterations" in n][0]
        assert reader.get_tensor(step_key) == 6
        assert reader.get_tensor(iterations) == 6

    @pytest.mark.slow
    def test_mixed_bfloat16_policy(self, data_dir, tmp_path):
        before = keras.mixed_precision.global_policy().name
        result = _train(
            [fake_problems.text_problem()],
            data_dir,
            str(tmp_path / "run"),
            3,
            dtype_policy="mixed_bfloat16",
            # Teacher-forced eval: cached decoding is not bf16-clean yet.
            evaluation=loop.EvalConfig(every=0, steps=1, decode=False),
        )
        assert all(np.isfinite(loss) for _, _, loss in result["history"])
        with open(tmp_path / "run" / "model_config.json") as f:
            assert "mixed_bfloat16" in f.read()
        assert keras.mixed_precision.global_policy().name == before


def _step_mixing(step_mixing, k=2, mixing="uniform"):
    return loop.DataConfig(
        batch_size=8,
        batch_unit="examples",
        max_length=16,
        mixing=mixing,
        step_mixing=step_mixing,
        problems_per_step=k,
    )


@pytest.fixture(scope="module")
def text_data_dir(tmp_path_factory):
    """Three text problems: every k_per_step set has one compiled step."""
    path = str(tmp_path_factory.mktemp("text_data"))
    fake_problems.write(_texts(), path)
    return path


def _texts():
    return [fake_problems.text_problem(f"fake_text_{c}") for c in "abc"]


class TestStepMixing:
    def test_all_per_step_trains_every_problem_in_each_update(
        self, data_dir, tmp_path
    ):
        model_dir = str(tmp_path / "run")
        text, image = (
            fake_problems.text_problem(),
            fake_problems.image_problem(),
        )
        calls = []
        result = _train(
            [text, image],
            data_dir,
            model_dir,
            3,
            data=_step_mixing("all_per_step"),
            on_step=lambda step, metrics: calls.append((step, dict(metrics))),
            log_every=1,
            **_QUICK,
        )
        assert result["step"] == 3
        names = [(s, name) for s, name, _ in result["history"]]
        assert names == [
            (s, n) for s in (1, 2, 3) for n in ("fake_copy_text", "fake_image")
        ]
        assert [step for step, _ in calls] == [1, 2, 3]
        for step, metrics in calls:
            losses = [v for s, _, v in result["history"] if s == step]
            assert metrics["fake_copy_text/loss"] == losses[0]
            assert metrics["fake_image/loss"] == losses[1]
            assert metrics["loss"] == pytest.approx(sum(losses))
            assert metrics["examples"] == 16.0
        with open(os.path.join(model_dir, "problems.json")) as f:
            assert json.load(f)["step_mixing"] == "all_per_step"

        # A non-finite loss of one problem stops the run and names it.
        bad = dataclasses.replace(image, loss_multiplier=float("nan"))
        with pytest.raises(loop.NonFiniteLossError, match="step 4.*fake_image"):
            _train(
                [text, bad],
                data_dir,
                model_dir,
                6,
                data=_step_mixing("all_per_step"),
                **_QUICK,
            )
        assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-3")

    def test_k_per_step_resume_continues_the_schedule(
        self, text_data_dir, tmp_path
    ):
        def run(model_dir, steps, calls=None):
            return _train(
                _texts(),
                text_data_dir,
                str(tmp_path / model_dir),
                steps,
                data=_step_mixing("k_per_step", k=2),
                deterministic=True,
                on_step=(
                    None if calls is None else lambda s, m: calls.append(s)
                ),
                checkpoint=loop.CheckpointConfig(every=3, keep=3),
                evaluation=loop.EvalConfig(every=0, steps=0),
            )

        straight = run("straight", 6)
        history = straight["history"]
        assert len(history) == 12  # two problems per step
        assert len({name for _, name, _ in history}) == 3
        run("resumed", 3)
        calls = []
        resumed = run("resumed", 6, calls)
        assert calls == [4, 5, 6]
        # The same problem sets, data and weights as without the restart.
        assert resumed["history"] == history[6:]

    @pytest.mark.parametrize(
        "data, match",
        [
            (_step_mixing("all_per_step", mixing="per_worker"), "per_worker"),
            (_step_mixing("k_per_step", k=3), "problems_per_step"),
            (_step_mixing("two_per_step"), "step_mixing"),
        ],
    )
    def test_bad_step_mixing(self, data_dir, tmp_path, data, match):
        problems = [fake_problems.text_problem(), fake_problems.image_problem()]
        with pytest.raises(ValueError, match=match):
            _train(problems, data_dir, str(tmp_path / "run"), 1, data=data)
