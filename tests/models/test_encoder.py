"""Tests of `Encoder` (models/encoder.py)."""

from __future__ import annotations

import keras
import numpy as np

from t2t_multimodel.models import encoder
from tests import testing

SMALL = {
    "hidden_dim": 16,
    "num_blocks": 2,
    "moe_position": 1,
    "num_experts": 4,
    "top_k": 2,
    "kernel_sizes": (3, 3, 5, 5),
    "dilation_rates": (1, 1, 1, 2),
}
RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 7, 16)).astype("float32")
MASK = np.arange(7)[None] < np.array([[7], [4]])


def _encoder(**overrides):
    keras.utils.set_random_seed(0)
    layer = encoder.Encoder(**{**SMALL, **overrides})
    layer.build()
    return layer


class TestEncoder:
    def test_layer(self):
        testing.run_layer_test(
            encoder.Encoder,
            SMALL,
            X,
            expected_output_shape=(2, 7, 16),
            # 2 blocks x 4 steps x 4 + MoE (w_gate, w_noise, w_0, w_1) + LN.
            expected_num_trainable_weights=2 * 16 + 4 + 2,
            call_kwargs={"padding_mask": MASK},
            atol=1e-5,
        )

    def test_paper_defaults(self):
        layer = encoder.Encoder(32)
        assert len(layer.conv_blocks) == 6 and layer.moe_position == 3
        assert layer.moe.num_experts == 240 and layer.moe.top_k == 4
        assert layer.moe.intermediate_dim == 32
        assert layer.conv_blocks[0].kernel_sizes == (3, 3, 15, 15)
        assert layer.conv_blocks[0].dilation_rates == (1, 1, 1, 8)
        assert layer.conv_blocks[0].dropout == 0.4

    def test_padding_invariance(self):
        layer = _encoder()
        out = np.asarray(layer(X, padding_mask=MASK))
        changed = X.copy()
        changed[1, 4:] = 7.0
        # Padding values and extra padding do not change real positions.
        longer = np.concatenate([changed, np.full((2, 5, 16), -3.0)], axis=1)
        longer_mask = np.arange(12)[None] < np.array([[7], [4]])
        out2 = np.asarray(layer(longer, padding_mask=longer_mask))
        np.testing.assert_allclose(out2[0, :7], out[0], atol=1e-5)
        np.testing.assert_allclose(out2[1, :4], out[1, :4], atol=1e-5)

    def test_blocks_then_residual_moe(self):
        layer = _encoder(num_blocks=1, use_timing_signal=False)
        out = np.asarray(layer(X, padding_mask=MASK))
        h = layer.conv_blocks[0](X, padding_mask=MASK)
        expected = layer.moe_sublayer.norm(h + layer.moe(h, padding_mask=MASK))
        np.testing.assert_allclose(out, np.asarray(expected), atol=1e-6)
        assert len(layer.losses) == 1  # the MoE load-balancing loss

    def test_timing_signal_and_no_moe(self):
        layer = _encoder(num_blocks=1, moe_position=None)
        assert layer.moe is None
        out = np.asarray(layer(X))
        expected = layer.conv_blocks[0](layer.timing(X))
        np.testing.assert_allclose(out, np.asarray(expected), atol=1e-6)
        # 16 timescales capped at d / 2 = 8: the full 16 channels are used.
        assert layer.timing.num_timescales == 8
