"""Tests of the fused/lazy Adam against a NumPy TF1-Adam reference."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from t2t_multimodel.training import optimizers, schedules


def _numpy_adam(var, grads, lr, b1=0.85, b2=0.997, eps=1e-6):
    m = np.zeros_like(var)
    v = np.zeros_like(var)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        var = var - lr_t * m / (np.sqrt(v) + eps)
    return var


class TestFusedAdam:
    def test_dense_matches_numpy(self):
        rng = np.random.default_rng(0)
        init = rng.normal(size=(3, 4)).astype(np.float32)
        grads = [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(3)]
        var = keras.Variable(init)
        opt = optimizers.FusedAdam(0.1)
        opt.build([var])
        for g in grads:
            opt.apply([tf.constant(g)], [var])
        np.testing.assert_allclose(
            var.numpy(), _numpy_adam(init, grads, 0.1), rtol=1e-5, atol=1e-6
        )
        assert int(opt.iterations.numpy()) == 3

    def test_lazy_sparse_touches_only_looked_up_rows(self):
        init = np.arange(8, dtype=np.float32).reshape(4, 2)
        var = tf.Variable(init)
        opt = optimizers.FusedAdam(0.5)
        opt.build([var])
        # Rows 1 and 3; row 1 twice, so its gradient is the sum [2, 2].
        grad = tf.IndexedSlices(
            tf.ones([3, 2]), tf.constant([1, 3, 1]), tf.constant([4, 2])
        )
        opt.apply([grad], [var])
        dense = np.zeros((4, 2), np.float32)
        dense[1] = 2.0
        dense[3] = 1.0
        expected = _numpy_adam(init, [dense], 0.5)
        got = var.numpy()
        np.testing.assert_allclose(got[[1, 3]], expected[[1, 3]], rtol=1e-5)
        # Rows 0 and 2 untouched (dense Adam would leave them too at step 1;
        # check the moments instead, which lazy Adam never decays).
        np.testing.assert_array_equal(got[[0, 2]], init[[0, 2]])
        np.testing.assert_allclose(opt.m[0].numpy()[1], [0.3, 0.3], rtol=1e-6)
        np.testing.assert_array_equal(opt.m[0].numpy()[0], [0.0, 0.0])

    def test_schedule_drives_the_rate(self):
        sched = schedules.NoamSchedule(1.0, hidden_dim=16, warmup_steps=4)
        opt = optimizers.FusedAdam(sched)
        var = tf.Variable([1.0])
        opt.build([var])
        np.testing.assert_allclose(
            opt.current_learning_rate().numpy(), 0.25 * 4**-1.5, rtol=1e-6
        )
        opt.apply([tf.constant([1.0])], [var])
        np.testing.assert_allclose(
            opt.current_learning_rate().numpy(), 0.25 * 2 * 4**-1.5, rtol=1e-6
        )

    def test_mirrored_replicas_stay_equal(self):
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        with strategy.scope():
            var = tf.Variable([1.0, 2.0])
            opt = optimizers.FusedAdam(0.1)
            opt.build([var])

        @tf.function
        def step():
            def fn():
                opt.apply([tf.constant([1.0, -1.0])], [var])

            strategy.run(fn)

        step()
        np.testing.assert_allclose(
            var.numpy(),
            _numpy_adam(np.array([1.0, 2.0]), [np.array([1.0, -1.0])], 0.1),
            rtol=1e-5,
        )


class TestKerasOptimizer:
    def test_applies_keras_adam(self):
        var = keras.Variable([1.0, 2.0])
        opt = optimizers.KerasOptimizer(keras.optimizers.Adam(0.1))
        opt.build([var])
        opt.apply([tf.constant([1.0, 1.0])], [var])
        # Keras Adam's first step moves each weight by lr * sign(g).
        np.testing.assert_allclose(var.numpy(), [0.9, 1.9], rtol=1e-4)
