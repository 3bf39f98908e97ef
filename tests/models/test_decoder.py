"""Tests of `Decoder` (models/decoder.py)."""

from __future__ import annotations

import keras
import numpy as np

from t2t_multimodel.models import decoder
from tests import testing

SMALL = {
    "hidden_dim": 16,
    "num_blocks": 2,
    "moe_position": 1,
    "num_experts": 4,
    "top_k": 2,
    "num_heads": 4,
    "kernel_sizes": (3, 3, 5, 5),
    "dilation_rates": (1, 1, 1, 2),
}
RNG = np.random.default_rng(0)
ENCODED = RNG.normal(size=(2, 6, 16)).astype("float32")
SOURCE_MASK = np.arange(6)[None] < np.array([[6], [3]])
X = RNG.normal(size=(2, 5, 16)).astype("float32")


def _decoder(**overrides):
    keras.utils.set_random_seed(0)
    layer = decoder.Decoder(**{**SMALL, **overrides})
    layer.build()
    return layer


class TestDecoder:
    def test_layer(self):
        testing.run_layer_test(
            decoder.Decoder,
            SMALL,
            X,
            expected_output_shape=(2, 5, 16),
            # Per block: ConvBlock (16) + attention (4) + LN (2); MoE 4 + LN 2.
            expected_num_trainable_weights=2 * 22 + 6,
            call_kwargs={"encoded": ENCODED, "source_mask": SOURCE_MASK},
            atol=1e-5,
        )

    def test_paper_defaults(self):
        layer = decoder.Decoder(32)
        assert len(layer.conv_blocks) == 4 and layer.moe_position == 2
        assert all(b.causal for b in layer.conv_blocks)
        assert layer.moe.num_experts == 240 and layer.moe.top_k == 4
        assert layer.attentions[0].num_heads == 8

    def test_blocks_by_hand(self):
        layer = _decoder(num_blocks=1)
        out = layer(X, ENCODED, source_mask=SOURCE_MASK)
        h = layer.conv_blocks[0](X)
        z = layer.attentions[0](h, ENCODED, memory_mask=SOURCE_MASK)
        h = layer.attention_norms[0](h + z)
        expected = layer.moe_sublayer.norm(h + layer.moe(h))
        np.testing.assert_allclose(np.asarray(out), np.asarray(expected), 1e-6)

    def test_causal_and_source_mask(self):
        layer = _decoder()
        out = np.asarray(layer(X, ENCODED, source_mask=SOURCE_MASK))
        changed = X.copy()
        changed[:, 2] -= 4.0
        out2 = np.asarray(layer(changed, ENCODED, source_mask=SOURCE_MASK))
        np.testing.assert_allclose(out2[:, :2], out[:, :2], atol=1e-6)
        assert np.abs(out2[:, 2] - out[:, 2]).max() > 1e-3
        # Masked source positions are never read.
        encoded = ENCODED.copy()
        encoded[1, 3:] = 9.0
        out3 = np.asarray(layer(X, encoded, source_mask=SOURCE_MASK))
        np.testing.assert_allclose(out3[1], out[1], atol=1e-6)

    def test_step_equals_call(self):
        layer = _decoder()
        full = np.asarray(layer(X, ENCODED, source_mask=SOURCE_MASK))
        testing.assert_steps_match_call(layer, X, ENCODED, SOURCE_MASK, full)
