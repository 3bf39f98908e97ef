"""Tests of `ConvRes` and `flatten_grid` (modalities/conv_res.py)."""

from __future__ import annotations

import numpy as np
from keras import ops

from t2t_multimodel.modalities import conv_res
from tests import testing

X = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype("float32")


class TestConvRes:
    def test_layer(self):
        testing.run_layer_test(
            conv_res.ConvRes,
            {"filters": 5},
            X,
            expected_output_shape=(2, 4, 3, 5),
            expected_num_trainable_weights=11,
        )

    def test_time_only_strides(self):
        layer = conv_res.ConvRes(5, strides=(2, 1))
        assert tuple(layer(X).shape) == (2, 4, 6, 5)

    def test_is_pooled_steps_plus_shortcut(self):
        for relu in (True, False):
            layer = conv_res.ConvRes(5, shortcut_relu=relu)
            out = np.asarray(layer(X))
            steps = layer.conv_steps[1](layer.conv_steps[0](X))
            pooled = ops.max_pool(steps, 3, strides=2, padding="same")
            shortcut_in = np.maximum(X, 0) if relu else X
            # A 1x1 stride-2 conv reads every other row and column.
            kernel = layer.shortcut.get_weights()[0][0, 0]  # [3, 5]
            short = shortcut_in[:, ::2, ::2] @ kernel
            mean = short.mean(-1, keepdims=True)
            var = short.var(-1, keepdims=True)
            gamma, beta = layer.shortcut_norm.get_weights()
            short = (short - mean) / np.sqrt(var + 1e-6) * gamma + beta
            np.testing.assert_allclose(
                out, np.asarray(pooled) + short, atol=1e-5
            )

    def test_flatten_grid_row_major(self):
        grid = np.arange(2 * 3 * 4 * 2, dtype="float32").reshape(2, 3, 4, 2)
        sequence, spatial_shape = conv_res.flatten_grid(grid)
        np.testing.assert_array_equal(np.asarray(spatial_shape), [3, 4])
        # Position 4 h + w holds grid[:, h, w].
        np.testing.assert_array_equal(
            np.asarray(sequence)[:, 4 * 2 + 3], grid[:, 2, 3]
        )
