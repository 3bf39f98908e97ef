"""Tests of `IOMixer` (models/io_mixer.py)."""

from __future__ import annotations

import keras
import numpy as np

from t2t_multimodel.models import io_mixer
from tests import testing

SMALL = {
    "hidden_dim": 16,
    "num_heads": 4,
    "kernel_sizes": (3, 3, 5, 5),
    "dilation_rates": (1, 1, 1, 2),
}
RNG = np.random.default_rng(0)
ENCODED = RNG.normal(size=(2, 6, 16)).astype("float32")
SOURCE_MASK = np.arange(6)[None] < np.array([[6], [3]])
TARGETS = RNG.normal(size=(2, 5, 16)).astype("float32")


def _mixer(**overrides):
    keras.utils.set_random_seed(0)
    layer = io_mixer.IOMixer(**{**SMALL, **overrides})
    layer.build()
    return layer


class TestIOMixer:
    def test_layer(self):
        testing.run_layer_test(
            io_mixer.IOMixer,
            SMALL,
            ENCODED,
            expected_output_shape=(2, 5, 16),
            # Attention block: 2 ConvBlocks (32) + 2 x 4 kernels + LN (2);
            # then 2 ConvBlocks (32).
            expected_num_trainable_weights=32 + 8 + 2 + 32,
            call_kwargs={
                "shifted_targets": TARGETS,
                "source_mask": SOURCE_MASK,
            },
            atol=1e-5,
        )

    def test_is_attention_block_then_causal_conv_blocks(self):
        layer = _mixer()
        assert [b.causal for b in layer.conv_blocks] == [True, True]
        out = layer(ENCODED, TARGETS, source_mask=SOURCE_MASK)
        x = layer.attention_block(TARGETS, ENCODED, source_mask=SOURCE_MASK)
        for block in layer.conv_blocks:
            x = block(x)
        np.testing.assert_allclose(np.asarray(out), np.asarray(x), atol=1e-6)

    def test_causal(self):
        layer = _mixer()
        out = np.asarray(layer(ENCODED, TARGETS, source_mask=SOURCE_MASK))
        changed = TARGETS.copy()
        changed[:, 3] += 5.0
        out2 = np.asarray(layer(ENCODED, changed, source_mask=SOURCE_MASK))
        np.testing.assert_allclose(out2[:, :3], out[:, :3], atol=1e-6)
        assert np.abs(out2[:, 3] - out[:, 3]).max() > 1e-3

    def test_step_equals_call(self):
        layer = _mixer()
        full = np.asarray(layer(ENCODED, TARGETS, source_mask=SOURCE_MASK))
        testing.assert_steps_match_call(
            layer, TARGETS, ENCODED, SOURCE_MASK, full
        )
