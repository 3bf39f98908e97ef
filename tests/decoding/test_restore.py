"""Tests of decoding/restore.py: the model and vocabulary of a model_dir."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.decoding import decoder, restore
from tests.decoding import tiny


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return tiny.build_vocabulary(str(tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="module")
def model():
    return tiny.build_model()


class TestModelDir:
    def test_restore_round_trip(self, model, vocab, tmp_path):
        model_dir = str(tmp_path / "run")
        os.makedirs(model_dir)
        with open(os.path.join(model_dir, "model_config.json"), "w") as f:
            json.dump(keras.saving.serialize_keras_object(model), f)
        with pytest.raises(restore.ModelDirError, match="no checkpoint"):
            restore.restore_model(model_dir)
        tf.train.Checkpoint(model=model).save(f"{model_dir}/model.ckpt")
        restored = restore.restore_model(model_dir)
        assert len(restored.weights) == len(model.weights)
        for a, b in zip(model.weights, restored.weights):  # config order
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        with open(os.path.join(model_dir, tiny.VOCAB_FILE), "wb") as f:
            f.write(vocab.serialized_model)
        found = restore.find_vocabulary(tiny.TEXT_PROBLEM, ["", model_dir])
        assert found.sha256 == vocab.sha256
        assert restore.find_vocabulary(tiny.IMAGE_PROBLEM, [model_dir]) is None

    def test_checkpoint_of_another_model(self, model, tmp_path):
        model_dir = str(tmp_path)
        with open(os.path.join(model_dir, "model_config.json"), "w") as f:
            json.dump(keras.saving.serialize_keras_object(model), f)
        other = tf.train.Checkpoint(model=tf.train.Checkpoint(v=tf.Variable(1)))
        other.save(f"{model_dir}/model.ckpt")
        with pytest.raises(restore.ModelDirError, match="does not match"):
            restore.restore_model(model_dir)

    def test_missing_config_and_vocabulary(self, tmp_path):
        with pytest.raises(restore.ModelDirError, match="model_config.json"):
            restore.restore_model(str(tmp_path))
        with pytest.raises(restore.ModelDirError, match="--data_dir"):
            restore.find_vocabulary(tiny.TEXT_PROBLEM, [str(tmp_path)])


def test_decoder_keeps_the_restore_names():
    """programs/decoder.py imports them from decoding/decoder.py."""
    assert decoder.ModelDirError is restore.ModelDirError
    assert decoder.restore_model is restore.restore_model
    assert decoder.find_vocabulary is restore.find_vocabulary
