"""The "without attention" ablation: `use_attention=False` of the body.

`IOMixer` and `Decoder` replace their attention by the masked mean of the
encoded inputs (models/io_mixer.py `masked_mean`).
"""

from __future__ import annotations

import keras
import numpy as np

from t2t_multimodel.models import decoder, io_mixer
from tests import testing

COMMON = {
    "hidden_dim": 16,
    "num_heads": 4,
    "kernel_sizes": (3, 3, 5, 5),
    "dilation_rates": (1, 1, 1, 2),
    "use_attention": False,
}
DECODER = {**COMMON, "num_blocks": 2, "moe_position": None}
RNG = np.random.default_rng(0)
ENCODED = RNG.normal(size=(2, 6, 16)).astype("float32")
SOURCE_MASK = np.arange(6)[None] < np.array([[6], [3]])
X = RNG.normal(size=(2, 5, 16)).astype("float32")


def _built(cls, kwargs):
    keras.utils.set_random_seed(0)
    layer = cls(**kwargs)
    layer.build()
    return layer


def test_masked_mean_by_hand():
    encoded = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], "float32")
    mask = np.array([[True, True, False]])
    out = np.asarray(io_mixer.masked_mean(encoded, mask))
    np.testing.assert_allclose(out, [[[2.0, 3.0]]])
    out = np.asarray(io_mixer.masked_mean(encoded))
    np.testing.assert_allclose(out, [[[104 / 3, 106 / 3]]], rtol=1e-6)


class TestMixerWithoutAttention:
    def test_layer(self):
        testing.run_layer_test(
            io_mixer.IOMixer,
            COMMON,
            ENCODED,
            expected_output_shape=(2, 5, 16),
            # LN (2) + 2 ConvBlocks (32); no attention weights.
            expected_num_trainable_weights=2 + 32,
            call_kwargs={"shifted_targets": X, "source_mask": SOURCE_MASK},
            atol=1e-5,
        )

    def test_by_hand_and_step(self):
        layer = _built(io_mixer.IOMixer, COMMON)
        assert layer.attention_block is None
        out = np.asarray(layer(ENCODED, X, source_mask=SOURCE_MASK))
        mean = np.stack([ENCODED[0].mean(0), ENCODED[1, :3].mean(0)])
        h = layer.source_norm(X + mean[:, None])
        for block in layer.conv_blocks:
            h = block(h)
        np.testing.assert_allclose(out, np.asarray(h), atol=1e-5)
        testing.assert_steps_match_call(layer, X, ENCODED, SOURCE_MASK, out)


class TestDecoderWithoutAttention:
    def test_layer(self):
        testing.run_layer_test(
            decoder.Decoder,
            DECODER,
            X,
            expected_output_shape=(2, 5, 16),
            # Per block: ConvBlock (16) + LN (2); no attention, no MoE.
            expected_num_trainable_weights=2 * 18,
            call_kwargs={"encoded": ENCODED, "source_mask": SOURCE_MASK},
            atol=1e-5,
        )

    def test_by_hand_masked_source_and_step(self):
        layer = _built(decoder.Decoder, DECODER)
        assert layer.attentions == [] and layer.moe is None
        out = np.asarray(layer(X, ENCODED, source_mask=SOURCE_MASK))
        mean = np.stack([ENCODED[0].mean(0), ENCODED[1, :3].mean(0)])
        h = X
        for block, norm in zip(layer.conv_blocks, layer.attention_norms):
            h = norm(block(h) + mean[:, None])
        np.testing.assert_allclose(out, np.asarray(h), atol=1e-5)
        # Masked source positions are never read.
        encoded = ENCODED.copy()
        encoded[1, 3:] = 9.0
        out2 = np.asarray(layer(X, encoded, source_mask=SOURCE_MASK))
        np.testing.assert_allclose(out2, out, atol=1e-6)
        testing.assert_steps_match_call(layer, X, ENCODED, SOURCE_MASK, out)

    def test_default_keeps_attention(self):
        layer = decoder.Decoder(16, num_heads=4, num_experts=4)
        assert len(layer.attentions) == 4 and layer.use_attention
        assert layer.get_config()["use_attention"] is True
