"""average_checkpoints: the mean of the last N checkpoints, loadable by all.

One tiny run saves three checkpoints (steps 10, 20, 30) with random
weights and Adam slots and an input iterator advanced once per save; the
last two are averaged and read back by the decoder's `restore_model` and by
the trainer's `Checkpointer`.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel import atomic_write, errors
from t2t_multimodel.decoding import decoder
from t2t_multimodel.training import averaging, checkpoints, loop, optimizers
from tests.training import fake_problems

STEPS = (10, 20, 30)


def _run(problems):
    keras.backend.clear_session()  # The same weight paths in every build.
    model = fake_problems.tiny_model(
        modality_specs=loop.modality_specs(problems)
    )
    opt = optimizers.FusedAdam(0.1)
    opt.build(model.trainable_variables)
    return model, opt


def _checkpointer(model_dir, model, opt, iterator=None):
    return checkpoints.Checkpointer(
        model_dir,
        model=model,
        optimizer=opt,
        step=tf.Variable(0, dtype=tf.int64),
        iterators={"p": iterator} if iterator is not None else None,
    )


def _snapshot(model, opt):
    weights = checkpoints.weights_by_path(model).weights
    return (
        {key: w.numpy() for key, w in weights.items()},
        [v.numpy() for v in opt.m + opt.v],
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A model_dir with 3 checkpoints; the weights and slots of each."""
    model_dir = str(tmp_path_factory.mktemp("run"))
    model, opt = _run([fake_problems.text_problem()])
    atomic_write.write_json(
        os.path.join(model_dir, "model_config.json"),
        keras.saving.serialize_keras_object(model),
    )
    for name in ("problems.json", "eval_results.json", "vocab.fake.model"):
        with open(os.path.join(model_dir, name), "w") as f:
            f.write(name)
    iterator = iter(tf.data.Dataset.range(100))
    saver = _checkpointer(model_dir, model, opt, iterator)
    rng = np.random.default_rng(0)
    snapshots = []
    for step in STEPS:
        for v in model.trainable_variables + opt.m + opt.v:
            v.assign(rng.normal(size=v.shape).astype(np.float32))
        opt.iterations.assign(step)
        next(iterator)
        saver.checkpoint.step.assign(step)
        saver.save(step)
        snapshots.append(_snapshot(model, opt))
    return model_dir, snapshots


def test_mean_of_the_last_two(run, tmp_path):
    model_dir, snapshots = run
    output_dir = str(tmp_path / "avg")
    path = averaging.average_checkpoints(
        model_dir, num_last=2, output_dir=output_dir
    )
    assert path == os.path.join(output_dir, "model.ckpt-30")
    assert tf.train.latest_checkpoint(output_dir) == path
    assert sorted(os.listdir(output_dir)) == [
        "averaging.json",
        "checkpoint",
        "model.ckpt-30.data-00000-of-00001",
        "model.ckpt-30.index",
        "model_config.json",
        "problems.json",
        "vocab.fake.model",
    ]
    with open(os.path.join(output_dir, "averaging.json")) as f:
        assert json.load(f)["checkpoints"] == ["model.ckpt-20", "model.ckpt-30"]

    # The decoder's restore path: the model weights are the mean.
    restored = decoder.restore_model(output_dir)
    weights = checkpoints.weights_by_path(restored).weights
    (w20, _), (w30, _) = snapshots[1], snapshots[2]
    assert len(weights) == len(w30) > 20
    for key, w in weights.items():
        np.testing.assert_allclose(
            w.numpy(), (w20[key] + w30[key]) / 2, rtol=1e-6, err_msg=key
        )


def test_trainer_resumes_from_the_average(run, tmp_path):
    model_dir, snapshots = run
    output_dir = str(tmp_path / "avg")
    averaging.average_checkpoints(model_dir, num_last=2, output_dir=output_dir)
    model, opt = _run([fake_problems.text_problem()])
    iterator = iter(tf.data.Dataset.range(100))
    resumed = _checkpointer(output_dir, model, opt, iterator)
    assert resumed.restore() == 30  # The newest step, not 0 as in T2T.
    assert int(opt.iterations.numpy()) == 30
    assert int(next(iterator)) == 3  # The newest data position.
    (_, s20), (_, s30) = snapshots[1], snapshots[2]
    for got, a, b in zip(opt.m + opt.v, s20, s30):
        np.testing.assert_allclose(got.numpy(), (a + b) / 2, rtol=1e-6)


def test_too_few_checkpoints_says_how_many(run, tmp_path):
    model_dir, _ = run
    with pytest.raises(averaging.AveragingError, match="holds 3 checkp") as e:
        averaging.average_checkpoints(
            model_dir, num_last=4, output_dir=str(tmp_path / "avg")
        )
    assert errors.is_user_error(e.value)
    assert not os.path.exists(tmp_path / "avg")


def test_output_dir_rules(run, tmp_path):
    model_dir, _ = run
    with pytest.raises(averaging.AveragingError, match="is model_dir"):
        averaging.average_checkpoints(
            model_dir, num_last=1, output_dir=model_dir
        )
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    with pytest.raises(averaging.AveragingError, match="not an empty"):
        averaging.average_checkpoints(
            model_dir, num_last=1, output_dir=str(taken)
        )
    averaging.average_checkpoints(
        model_dir, num_last=1, output_dir=str(taken), overwrite=True
    )
    assert not (taken / "x").exists()
    assert tf.train.latest_checkpoint(str(taken)).endswith("model.ckpt-30")
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_checkpoints_of_different_models_are_refused(tmp_path):
    model_dir = str(tmp_path / "run")
    text = [fake_problems.text_problem()]
    for step, problems in (
        (1, text),
        (2, text + [fake_problems.image_problem()]),
    ):
        model, opt = _run(problems)
        atomic_write.write_json(
            os.path.join(model_dir, "model_config.json"),
            keras.saving.serialize_keras_object(model),
        )
        _checkpointer(model_dir, model, opt).save(step)
    with pytest.raises(
        errors.IncompatibleCheckpointError,
        match="not in the checkpoint: class_label_4",
    ):
        averaging.average_checkpoints(
            model_dir, num_last=2, output_dir=str(tmp_path / "avg")
        )
    assert os.listdir(tmp_path) == ["run"]
