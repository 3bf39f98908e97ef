"""Tests of `ImageModality` (modalities/image.py)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from t2t_multimodel.modalities import image
from tests import testing

TINY = {"hidden_dim": 8, "entry_filters": (4, 4), "res_filters": (8, 8)}
RNG = np.random.default_rng(0)


def _images(*shape):
    return RNG.uniform(size=shape).astype("float32")


class TestImageModality:
    def test_layer_entry_flow(self):
        testing.run_layer_test(
            image.ImageModality,
            TINY,
            _images(2, 32, 20, 3),
            # Stride 16: 32 x 20 -> 2 x 2 positions.
            expected_output_shape=(2, 4, 8),
            # 2 ConvSteps (4 each) + 3 ConvRes (2 ConvSteps, shortcut, LN).
            expected_num_trainable_weights=2 * 4 + 3 * (8 + 3),
            atol=1e-5,
        )

    def test_layer_t2t_v19(self):
        testing.run_layer_test(
            image.ImageModality,
            {"hidden_dim": 8, "entry_flow": False},
            _images(2, 5, 6, 3),
            expected_output_shape=(2, 30, 8),
            expected_num_trainable_weights=3,
        )

    def test_entry_flow_widths_and_stride(self):
        modality = image.ImageModality(**TINY)
        out = modality.bottom(_images(1, 299, 299, 3))
        # The paper's 299 x 299 -> 19 x 19 = 361 positions.
        assert tuple(out["hidden"].shape) == (1, 361, 8)
        np.testing.assert_array_equal(
            np.asarray(out["spatial_shape"]), [19, 19]
        )
        assert out["mask"] is None
        paper = image.ImageModality(16)
        assert [s.filters for s in paper.entry_steps] == [32, 64]
        assert [b.filters for b in paper.res_blocks] == [128, 256, 16]
        assert not paper.entry_steps[0].use_relu
        assert [b.shortcut_relu for b in paper.res_blocks] == [1, 0, 0]

    def test_gray_equals_its_rgb_copy(self):
        modality = image.ImageModality(**TINY)
        gray = _images(2, 16, 16, 1)
        a = modality.bottom(gray)["hidden"]
        b = modality.bottom(np.repeat(gray, 3, axis=-1))["hidden"]
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)

    def test_per_image_standardization_matches_tf(self):
        x = _images(2, 7, 5, 3)
        x[1] = 0.5  # constant image: std floor 1 / sqrt(105)
        np.testing.assert_allclose(
            np.asarray(image.per_image_standardization(x)),
            tf.image.per_image_standardization(x).numpy(),
            atol=1e-5,
        )

    def test_t2t_v19_projection_by_hand(self):
        keras.utils.set_random_seed(0)
        modality = image.ImageModality(
            8, entry_flow=False, per_image_standardization=False
        )
        x = _images(2, 5, 6, 3)
        out = modality.bottom(x)
        kernel, gamma, beta = modality.get_weights()
        assert kernel.shape == (3, 3, 3, 8)
        # SAME zero padding, 3x3, stride 1, no bias.
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        conv = np.zeros((2, 5, 6, 8))
        for i in range(3):
            for j in range(3):
                conv += padded[:, i : i + 5, j : j + 6] @ kernel[i, j]
        mean = conv.mean(-1, keepdims=True)
        var = conv.var(-1, keepdims=True)
        expected = (conv - mean) / np.sqrt(var + 1e-6) * gamma + beta
        np.testing.assert_allclose(
            np.asarray(out["hidden"]), expected.reshape(2, 30, 8), atol=1e-4
        )
        np.testing.assert_array_equal(np.asarray(out["spatial_shape"]), [5, 6])
