"""Tests of `SymbolModality` (modalities/symbol.py)."""

from __future__ import annotations

import math

import keras
import numpy as np

from t2t_multimodel.modalities import symbol
from tests import testing

IDS = np.array([[5, 3, 1, 0, 0], [7, 2, 9, 4, 1]], np.int32)


def _modality(**kwargs):
    keras.utils.set_random_seed(0)
    modality = symbol.SymbolModality(8, 16, **kwargs)
    modality.ensure_built()
    return modality


class TestSymbolModality:
    def test_layer(self):
        testing.run_layer_test(
            symbol.SymbolModality,
            {"hidden_dim": 8, "vocab_size": 16},
            IDS,
            expected_output_shape=(2, 5, 8),
            expected_num_trainable_weights=3,
        )

    def test_three_separate_matrices_like_t2t(self):
        modality = _modality()
        names = [w.name for w in modality.trainable_weights]
        assert names == ["input_emb", "target_emb", "softmax"]
        assert all(tuple(w.shape) == (16, 8) for w in modality.weights)
        # T2T's N(0, d^-0.5) initializer.
        values = np.concatenate([np.ravel(w) for w in modality.get_weights()])
        np.testing.assert_allclose(values.std(), 8**-0.5, rtol=0.15)

    def test_bottom_scales_and_zeroes_padding(self):
        modality = _modality()
        out = modality.bottom(IDS)
        table = np.asarray(modality.input_emb)
        expected = table[IDS] * math.sqrt(8) * (IDS != 0)[..., None]
        np.testing.assert_allclose(np.asarray(out["hidden"]), expected, 1e-6)
        np.testing.assert_array_equal(np.asarray(out["mask"]), IDS != 0)
        assert out["spatial_shape"] is None
        given = np.ones_like(IDS, bool)
        out = modality.bottom(IDS, padding_mask=given)
        np.testing.assert_array_equal(np.asarray(out["mask"]), given)

    def test_targets_bottom_and_top(self):
        modality = _modality(multiply_by_sqrt_depth=False)
        emb = np.asarray(modality.targets_bottom(IDS))
        target_table = np.asarray(modality.target_emb)
        np.testing.assert_allclose(
            emb, target_table[IDS] * (IDS != 0)[..., None], 1e-6
        )
        h = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
        logits = np.asarray(modality.top(h))
        softmax = np.asarray(modality.softmax)
        np.testing.assert_allclose(logits, h @ softmax.T, rtol=1e-5, atol=1e-5)

    def test_sharing_options(self):
        shared = _modality(shared_embeddings=True, shared_softmax=True)
        assert len(shared.trainable_weights) == 1
        assert shared.target_emb is shared.input_emb is shared.softmax
        tied = _modality(shared_softmax=True)
        assert len(tied.trainable_weights) == 2
        assert tied.softmax is tied.target_emb

    def test_target_weights_skip_padding(self):
        modality = _modality()
        weights = modality.target_weights(IDS)
        np.testing.assert_array_equal(np.asarray(weights), IDS != 0)
        mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
        weights = modality.target_weights(IDS, mask)
        np.testing.assert_array_equal(np.asarray(weights), (IDS != 0) & mask)
