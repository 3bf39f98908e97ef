"""`restore_model(model_dir, checkpoint_path)`: a chosen checkpoint.

A run directory with two checkpoints of different weights: the newest is
restored by default, the older one when named (as a prefix, or an averaged
checkpoint's directory); a missing one or one of another model fails with a
message that says which checkpoints there are or what differs.
"""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.decoding import decoder
from t2t_multimodel.training import checkpoints
from tests.decoding import tiny


def _save_config(model, model_dir):
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "model_config.json"), "w") as f:
        json.dump(keras.saving.serialize_keras_object(model), f)


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """model_dir with model.ckpt-1 and model.ckpt-2 (other weights)."""
    model_dir = str(tmp_path_factory.mktemp("run"))
    model = tiny.build_model(seed=0)
    _save_config(model, model_dir)
    checkpoint = tf.train.Checkpoint(model=model)
    checkpoint.save(f"{model_dir}/model.ckpt")
    first = _weights(model)
    for w in model.weights:
        w.assign(w + 1.0)
    checkpoint.save(f"{model_dir}/model.ckpt")
    return model_dir, first, _weights(model)


def _assert_weights(model, expected):
    for w, e in zip(model.weights, expected):
        np.testing.assert_array_equal(w.numpy(), e)


def test_newest_by_default_and_the_named_one(run):
    model_dir, first, second = run
    assert decoder.resolve_checkpoint(model_dir).endswith("model.ckpt-2")
    _assert_weights(decoder.restore_model(model_dir), second)
    chosen = decoder.restore_model(model_dir, f"{model_dir}/model.ckpt-1")
    _assert_weights(chosen, first)
    assert not np.array_equal(first[0], second[0])


def test_averaged_checkpoint_directory(run, tmp_path):
    """An averaged run's directory (t2t-mm-avg-checkpoints' layout)."""
    model_dir, first, _ = run
    avg = tmp_path / "avg"
    avg.mkdir()
    for name in os.listdir(model_dir):
        if name.startswith("model.ckpt-1") or name == "model_config.json":
            shutil.copy(os.path.join(model_dir, name), avg / name)
    (avg / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1"\n')
    assert decoder.resolve_checkpoint(model_dir, str(avg)) == str(
        avg / "model.ckpt-1"
    )
    _assert_weights(decoder.restore_model(model_dir, str(avg)), first)


def test_missing_checkpoint_lists_the_others(run, tmp_path):
    model_dir, _, _ = run
    with pytest.raises(decoder.ModelDirError) as raised:
        decoder.resolve_checkpoint(model_dir, f"{model_dir}/model.ckpt-7")
    message = str(raised.value)
    assert "no such checkpoint" in message
    assert "model.ckpt-7.index not found" in message
    assert "model.ckpt-1, model.ckpt-2" in message
    with pytest.raises(decoder.ModelDirError, match="without a checkpoint"):
        decoder.resolve_checkpoint(model_dir, str(tmp_path))


def test_checkpoint_of_another_model(run, tmp_path):
    model_dir, _, _ = run
    other_dir = str(tmp_path / "other")
    other = tiny.build_model(seed=1, hidden=8)
    _save_config(other, other_dir)
    # As the trainer saves it (weights by Keras path).
    by_path = checkpoints.weights_by_path(other)
    tf.train.Checkpoint(model=by_path).save(f"{other_dir}/model.ckpt")
    with pytest.raises(decoder.ModelDirError) as raised:
        decoder.restore_model(model_dir, f"{other_dir}/model.ckpt-1")
    message = str(raised.value)
    assert "belongs to another model" in message
    assert "hidden_dim: 16 -> 8" in message
    assert f"--model_dir={other_dir}" in message
    # Without its model_config.json, the weights' shapes tell.
    os.remove(os.path.join(other_dir, "model_config.json"))
    with pytest.raises(decoder.ModelDirError) as raised:
        decoder.restore_model(model_dir, f"{other_dir}/model.ckpt-1")
    message = str(raised.value)
    assert "does --checkpoint_path belong to another model?" in message
    assert "shapes differ" in message
