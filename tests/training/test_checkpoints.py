"""Checkpointer: every weight and optimizer slot round-trips; atomic JSON."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel import errors
from t2t_multimodel.training import checkpoints, loop, optimizers
from tests.training import fake_problems


def _model_and_optimizer(seed):
    keras.utils.set_random_seed(seed)
    specs = loop.modality_specs(
        [fake_problems.text_problem(), fake_problems.image_problem()]
    )
    model = fake_problems.tiny_model(modality_specs=specs, decoder_moe=True)
    opt = optimizers.FusedAdam(0.1)
    opt.build(model.trainable_variables)
    return model, opt


class TestCheckpointer:
    def test_every_weight_and_slot_round_trips(self, tmp_path):
        model, opt = _model_and_optimizer(1)
        grads = [tf.ones_like(v) for v in model.trainable_variables]
        opt.apply(grads, model.trainable_variables)
        step = tf.Variable(7, dtype=tf.int64)
        saver = checkpoints.Checkpointer(
            str(tmp_path), model=model, optimizer=opt, step=step, keep=2
        )
        assert saver.save(7).endswith("model.ckpt-7")

        keras.backend.clear_session()  # The same layer names (paths) again.
        other, other_opt = _model_and_optimizer(2)
        other_step = tf.Variable(0, dtype=tf.int64)
        restorer = checkpoints.Checkpointer(
            str(tmp_path), model=other, optimizer=other_opt, step=other_step
        )
        assert restorer.restore() == 7
        assert len(other.weights) == len(model.weights) > 50
        for a, b in zip(model.weights, other.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
        for a, b in zip(opt.m + opt.v, other_opt.m + other_opt.v):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert int(other_opt.iterations.numpy()) == 1

    def test_restore_refuses_a_model_with_other_weights(self, tmp_path):
        # Saved: a text-only model; restored into one that also has the
        # image modalities, whose weights the checkpoint does not hold.
        specs = loop.modality_specs([fake_problems.text_problem()])
        model = fake_problems.tiny_model(modality_specs=specs)
        opt = optimizers.FusedAdam(0.1)
        opt.build(model.trainable_variables)
        checkpoints.Checkpointer(
            str(tmp_path),
            model=model,
            optimizer=opt,
            step=tf.Variable(3, dtype=tf.int64),
        ).save(3)
        other, other_opt = _model_and_optimizer(2)
        restorer = checkpoints.Checkpointer(
            str(tmp_path),
            model=other,
            optimizer=other_opt,
            step=tf.Variable(0, dtype=tf.int64),
        )
        with pytest.raises(errors.IncompatibleCheckpointError) as info:
            restorer.restore()
        message = str(info.value)
        assert "model.ckpt-3 does not fit the requested model" in message
        assert "not in the checkpoint: class_label_4/dense/bias" in message

    def test_restore_without_checkpoint_is_step_0(self, tmp_path):
        model, opt = _model_and_optimizer(1)
        saver = checkpoints.Checkpointer(
            str(tmp_path),
            model=model,
            optimizer=opt,
            step=tf.Variable(0, dtype=tf.int64),
        )
        assert saver.restore() == 0


def test_second_model_in_one_process_restores_without_clear_session(
    tmp_path,
):
    # Body components built by gin/Keras get `encoder_1`-style names in a
    # second model of the same process; checkpoint keys must not depend on it.
    model, opt = _model_and_optimizer(1)
    saver = checkpoints.Checkpointer(
        str(tmp_path),
        model=model,
        optimizer=opt,
        step=tf.Variable(3, dtype=tf.int64),
    )
    saver.save(3)
    other, other_opt = _model_and_optimizer(2)
    assert other.encoder.name != model.encoder.name
    restorer = checkpoints.Checkpointer(
        str(tmp_path),
        model=other,
        optimizer=other_opt,
        step=tf.Variable(0, dtype=tf.int64),
    )
    assert restorer.restore() == 3
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
