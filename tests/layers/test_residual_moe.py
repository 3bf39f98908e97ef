"""Tests of t2t_multimodel/layers/residual_moe.py and its checkpoint keys."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from t2t_multimodel.layers import residual_moe
from t2t_multimodel.modalities import symbol
from t2t_multimodel.models import decoder, encoder, multimodel
from t2t_multimodel.training import checkpoints
from tests import testing

SMALL = {"hidden_dim": 8, "intermediate_dim": 4, "num_experts": 4, "top_k": 2}
RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 8)).astype("float32")
MASK = np.arange(5)[None] < np.array([[5], [3]])

# The MoE keys of the model below as written by the encoder and decoder
# before `ResidualMoE` existed (they held `moe` and `moe_norm` directly).
OLD_MOE_KEYS = [
    f"{role}/{key}"
    for role in ("decoder", "encoder")
    for key in (
        "moe/assignment_count",
        "moe/dropped_count",
        "moe/importance_cv2",
        "moe/load_cv2",
        "moe/w_0",
        "moe/w_1",
        "moe/w_gate",
        "moe/w_noise",
        "moe_norm/beta",
        "moe_norm/gamma",
    )
]


class TestResidualMoE:
    def test_layer(self):
        testing.run_layer_test(
            residual_moe.ResidualMoE,
            SMALL,
            X,
            expected_output_shape=(2, 5, 8),
            # w_gate, w_noise, w_0, w_1 and the LayerNorm's gamma, beta.
            expected_num_trainable_weights=6,
            call_kwargs={"padding_mask": MASK},
            atol=1e-5,
        )

    def test_is_layer_norm_of_the_residual(self):
        keras.utils.set_random_seed(0)
        layer = residual_moe.ResidualMoE(**SMALL)
        out = np.asarray(layer(X, padding_mask=MASK))
        moe_out = layer.moe(X, padding_mask=MASK)
        expected = np.asarray(layer.norm(X + moe_out))
        np.testing.assert_allclose(out, expected, atol=1e-6)
        # Padded rows are not routed: they are LN(x).
        padded = np.asarray(layer.norm(X[1:, 3:]))
        np.testing.assert_allclose(out[1:, 3:], padded, atol=1e-6)
        assert len(layer.losses) == 1  # the load-balancing loss

    def test_infer_matches_call(self):
        keras.utils.set_random_seed(0)
        layer = residual_moe.ResidualMoE(**SMALL)
        layer.build((None, None, 8))
        # Non-zero gates, so the routing depends on the rows.
        layer.moe.w_gate.assign(RNG.normal(size=(8, 4)).astype("float32"))
        out = np.asarray(layer(X, training=False))
        np.testing.assert_allclose(
            np.asarray(layer.infer(X)), out, rtol=1e-5, atol=1e-5
        )

    def test_top_level_paths(self):
        layer = residual_moe.ResidualMoE(**SMALL, name="residual_moe")
        layer.build((None, None, 8))
        paths = {w.path for w in layer.trainable_weights}
        assert "residual_moe/moe/w_gate" in paths
        assert "residual_moe/moe_norm/gamma" in paths


def _model(seed: int) -> multimodel.MultiModel:
    keras.utils.set_random_seed(seed)
    body = {
        "kernel_sizes": (3, 3, 5, 5),
        "dilation_rates": (1, 1, 1, 2),
        "num_experts": 2,
        "top_k": 1,
        "intermediate_dim": 4,
    }
    model = multimodel.MultiModel(
        {"symbol": symbol.SymbolModality(8, 16, name="symbol")},
        encoder.Encoder(8, num_blocks=1, moe_position=1, **body),
        decoder.Decoder(8, num_blocks=1, moe_position=0, num_heads=2, **body),
    )
    features = {
        "inputs": np.arange(10, dtype="int32").reshape(2, 5) % 16,
        "inputs_mask": np.ones((2, 5), bool),
        "targets": np.ones((2, 4), "int32"),
        "targets_mask": np.ones((2, 4), bool),
        "target_space_id": np.zeros((2,), "int32"),
    }
    model(features, input_modality="symbol", target_modality="symbol")
    return model


class TestCheckpointKeys:
    def test_moe_keys_unchanged(self):
        keys = checkpoints.weights_by_path(_model(0)).weights
        assert sorted(k for k in keys if "moe" in k) == OLD_MOE_KEYS

    def test_checkpoint_keyed_by_old_names_loads(self, tmp_path):
        """A checkpoint whose MoE entries carry the old keys restores."""
        source = checkpoints.weights_by_path(_model(1)).weights
        old = {}
        for key, weight in source.items():
            value = RNG.normal(size=weight.shape).astype(weight.dtype)
            old[key] = tf.Variable(value)
        assert set(OLD_MOE_KEYS) <= set(old)
        checkpoint = tf.train.Checkpoint(model=_as_module(old))
        path = checkpoint.write(str(tmp_path / "ckpt"))

        target = checkpoints.weights_by_path(_model(2)).weights
        status = tf.train.Checkpoint(model=_as_module(target)).read(path)
        status.assert_consumed()
        for key in OLD_MOE_KEYS:
            np.testing.assert_array_equal(
                np.asarray(target[key]), old[key].numpy()
            )


def _as_module(weights: dict) -> tf.Module:
    view = tf.Module()
    view.weights = weights
    return view
