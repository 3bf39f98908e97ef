"""Cached greedy decoding of a model built under `mixed_bfloat16`.

The demo trains in bfloat16 (`DTYPE_POLICY = "mixed_bfloat16"`); its dev
evaluation and its export decode with the cached step functions, which run
outside Keras' `__call__` (no autocast) and so mix float32 caches with
bfloat16 activations (issue #19: the ConvBlock step's residual additions).
"""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from t2t_multimodel.training import evaluation
from tests.decoding import tiny


@pytest.fixture(scope="module")
def bf16_model():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny.build_model()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    features = {
        "inputs": tf.constant([[5, 6, 7, 1], [8, 9, 1, 0]], tf.int32),
        "inputs_mask": tf.constant([[True] * 4, [True] * 3 + [False]]),
        "targets": tf.constant([[5, 1], [6, 1]], tf.int32),
        "targets_mask": tf.constant([[True, True], [True, True]]),
        "target_space_id": tf.constant([3, 3], tf.int32),
    }
    model(
        features,
        input_modality="symbol",
        target_modality="symbol",
        training=False,
    )
    return model


@pytest.mark.parametrize(
    "problem, inputs",
    [
        (tiny.TEXT_PROBLEM, {"inputs": [[5, 6, 7, 1], [8, 9, 1, 0]]}),
        (tiny.CAPTION_PROBLEM, {"inputs": tf.random.uniform((2, 16, 16, 3))}),
        (
            tiny.SPEECH_PROBLEM,
            {"inputs": tf.random.uniform((2, 40, tiny.NUM_MEL_BINS))},
        ),
    ],
)
def test_greedy_decoding_runs_in_bfloat16(bf16_model, problem, inputs):
    features = {
        "inputs": tf.convert_to_tensor(inputs["inputs"]),
        "target_space_id": tf.constant([3, 3], tf.int32),
    }
    if problem is not tiny.CAPTION_PROBLEM:
        features["inputs_mask"] = tf.ones(
            tf.shape(features["inputs"])[:2], bool
        )
    decode = evaluation.greedy_decode_fn(
        bf16_model, problem, num_ids=64, max_length=6
    )
    ids = decode(features).numpy()
    assert ids.shape == (2, 6)
    assert ((ids >= 0) & (ids < 64)).all()
