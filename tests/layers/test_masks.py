"""Tests of t2t_multimodel/layers/masks.py."""

from __future__ import annotations

import numpy as np

from t2t_multimodel.layers import masks


def test_causal_mask_rect():
    np.testing.assert_array_equal(
        masks.causal_mask_rect(3, 3),
        [[True, False, False], [True, True, False], [True, True, True]],
    )
    # Query rows 2 and 3 of a length-4 sequence.
    np.testing.assert_array_equal(
        masks.causal_mask_rect(2, 4, query_offset=2),
        [[True, True, True, False], [True, True, True, True]],
    )


def test_attention_mask_combines():
    memory = np.array([[True, True, False], [True, False, False]])
    mask = np.asarray(
        masks.attention_mask(memory_mask=memory, causal=True, query_length=2)
    )
    assert mask.shape == (2, 1, 2, 3)
    np.testing.assert_array_equal(
        mask[:, 0],
        [
            [[True, False, False], [True, True, False]],
            [[True, False, False], [True, False, False]],
        ],
    )
    mask = np.asarray(masks.attention_mask(memory))
    assert mask.shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(mask[1, 0, 0], [True, False, False])
    assert masks.attention_mask() is None
    only_causal = masks.attention_mask(
        causal=True, query_length=2, memory_length=2
    )
    assert only_causal.shape == (1, 1, 2, 2)


def test_mask_to_bias():
    bias = np.asarray(masks.mask_to_bias(np.array([True, False])))
    np.testing.assert_array_equal(bias, [0.0, -1e9])
    assert bias.dtype == np.float32
