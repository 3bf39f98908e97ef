"""Tests of `ClassLabelModality` (modalities/class_label.py)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from t2t_multimodel.modalities import class_label
from tests import testing

RNG = np.random.default_rng(0)
BODY = RNG.normal(size=(2, 12, 8)).astype("float32")


class TestClassLabelModality:
    def test_layer_exit_flow(self):
        testing.run_layer_test(
            class_label.ClassLabelModality,
            {"hidden_dim": 8, "num_classes": 5},
            BODY,
            expected_output_shape=(2, 5),
            # 5 ConvSteps x (depthwise, pointwise, gamma, beta) + dense 2.
            expected_num_trainable_weights=22,
        )

    def test_layer_t2t_v19(self):
        testing.run_layer_test(
            class_label.ClassLabelModality,
            {"hidden_dim": 8, "num_classes": 5, "exit_flow": False},
            BODY,
            expected_output_shape=(2, 5),
            expected_num_trainable_weights=2,
        )

    def test_t2t_v19_top_is_mean_then_dense(self):
        modality = class_label.ClassLabelModality(8, 5, exit_flow=False)
        logits = np.asarray(modality.top(BODY))
        kernel, bias = modality.get_weights()
        np.testing.assert_allclose(
            logits, BODY.mean(axis=1) @ kernel + bias, rtol=1e-5, atol=1e-6
        )
        assert [tuple(w.shape) for w in modality.weights] == [(8, 5), (5,)]

    def test_default_widths_scale_with_d(self):
        modality = class_label.ClassLabelModality(8, 5)
        assert modality.skip.filters == 10  # 1.25 d
        assert [s.filters for s in modality.steps] == [8, 10, 16, 20]
        custom = class_label.ClassLabelModality(8, 5, filters=(4, 6, 12, 14))
        assert custom.skip.filters == 4
        assert [s.filters for s in custom.steps] == [6, 4, 12, 14]
        custom.ensure_built()
        assert tuple(custom.dense.kernel.shape) == (14, 5)

    def test_exit_flow_on_the_re_squared_grid(self):
        keras.utils.set_random_seed(1)
        modality = class_label.ClassLabelModality(8, 5)
        logits = np.asarray(modality.top(BODY, spatial_shape=(3, 4)))
        # By hand, from the sublayers on the [2, 3, 4, 8] grid.
        x = BODY.reshape(2, 3, 4, 8)
        skip = modality.skip(x)
        h = modality.steps[1](modality.steps[0](x))
        h = skip + ops.max_pool(h, 3, strides=2, padding="same")
        h = modality.steps[3](modality.steps[2](h))
        pooled = np.maximum(np.asarray(h), 0).mean(axis=(1, 2))
        kernel, bias = modality.dense.get_weights()
        np.testing.assert_allclose(logits, pooled @ kernel + bias, atol=1e-5)
        # A 1-D body output is read as a [12, 1] grid: a different result.
        flat = np.asarray(modality.top(BODY))
        assert np.abs(flat - logits).max() > 1e-3

    def test_padding_is_zeroed(self):
        modality = class_label.ClassLabelModality(8, 5, exit_flow=False)
        mask = np.arange(12)[None] < np.array([[12], [7]])
        changed = BODY.copy()
        changed[1, 7:] = 100.0
        a = modality.top(BODY, padding_mask=mask)
        b = modality.top(changed, padding_mask=mask)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)

    def test_no_decoder_and_every_example_weighs_one(self):
        modality = class_label.ClassLabelModality(8, 5)
        assert modality.skips_decoder
        assert modality.targets_bottom(np.array([0, 3])) is None
        weights = modality.target_weights(np.array([0, 3, 0]))
        np.testing.assert_array_equal(np.asarray(weights), [1.0, 1.0, 1.0])
