"""Tests of t2t_multimodel/layers/positional.py (T2T timing signals)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.layers import positional
from tests import testing


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def test_full_depth_hand_computed():
    # 4 channels -> 2 timescales, increment ln(1e4) / 1: r = [1, 1e-4].
    signal = np.asarray(positional.timing_signal(4, 4))
    assert signal.dtype == np.float32
    np.testing.assert_allclose(signal[0], [0, 0, 1, 1])
    np.testing.assert_allclose(
        signal[1],
        [math.sin(1), math.sin(1e-4), math.cos(1), math.cos(1e-4)],
        atol=1e-7,
    )
    np.testing.assert_allclose(
        signal[3],
        [math.sin(3), math.sin(3e-4), math.cos(3), math.cos(3e-4)],
        atol=1e-7,
    )


def test_full_depth_matches_t2t_formula():
    # add_timing_signal_1d at d = 64: 32 timescales, ln(1e4) / 31 apart.
    signal = np.asarray(positional.timing_signal(20, 64))
    p = np.arange(20)[:, None]
    r = np.exp(-np.arange(32) * math.log(1e4) / 31)[None]
    ref = np.concatenate([np.sin(p * r), np.cos(p * r)], axis=1)
    np.testing.assert_allclose(signal, ref, atol=2e-6)


def test_16_timescales_matches_parity_readme():
    # Parity README section 4: r_i = exp(-i ln(1e4) / 15), i = 0..15,
    # [sin | cos] in 32 channels, zero-padded to d.
    signal = np.asarray(positional.timing_signal(12, 40, num_timescales=16))
    p = np.arange(12)[:, None]
    r = np.exp(-np.arange(16) * math.log(1e4) / 15)[None]
    np.testing.assert_allclose(signal[:, :16], np.sin(p * r), atol=2e-6)
    np.testing.assert_allclose(signal[:, 16:32], np.cos(p * r), atol=2e-6)
    np.testing.assert_array_equal(signal[:, 32:], 0)
    # Hand-computed: position 5, slowest timescale r_15 = 1e-4.
    np.testing.assert_allclose(signal[5, 15], math.sin(5e-4), rtol=1e-5)
    np.testing.assert_allclose(signal[5, 0], math.sin(5.0), atol=1e-6)


def test_variants_coincide_at_32_and_differ_at_64():
    full32 = positional.timing_signal(10, 32)
    t2t32 = positional.timing_signal(10, 32, num_timescales=16)
    np.testing.assert_allclose(full32, t2t32, atol=1e-6)
    full64 = np.asarray(positional.timing_signal(10, 64))
    t2t64 = np.asarray(positional.timing_signal(10, 64, num_timescales=16))
    assert np.abs(full64 - t2t64).max() > 0.5


def test_odd_channels_and_start_index():
    signal = np.asarray(positional.timing_signal(6, 5))
    np.testing.assert_array_equal(signal[:, 4], 0)
    tail = positional.timing_signal(3, 8, start_index=4)
    np.testing.assert_allclose(
        tail, np.asarray(positional.timing_signal(7, 8))[4:], atol=1e-6
    )
    with pytest.raises(ValueError):
        positional.timing_signal(3, 16, num_timescales=16)


class TestAddTimingSignal:
    def test_layer(self):
        x = np.random.default_rng(0).normal(size=(2, 7, 8)).astype("float32")
        layer = testing.run_layer_test(
            positional.AddTimingSignal,
            {"num_timescales": 2},
            x,
            expected_output_shape=(2, 7, 8),
            expected_num_trainable_weights=0,
        )
        y = np.asarray(layer(x))
        ref = x + np.asarray(positional.timing_signal(7, 8, num_timescales=2))
        np.testing.assert_allclose(y, ref, atol=1e-6)

    def test_start_index_in_tf_function(self):
        x = np.random.default_rng(1).normal(size=(2, 9, 6)).astype("float32")
        layer = positional.AddTimingSignal()
        full = np.asarray(layer(x))
        fn = tf.function(lambda v, i: layer(v, start_index=i))
        for t in (0, 4, 8):
            y = fn(tf.constant(x[:, t : t + 1]), tf.constant(t))
            np.testing.assert_allclose(y, full[:, t : t + 1], atol=1e-6)


PARITY_DIR = testing.PARITY_DIR


@pytest.mark.parametrize(
    "name", ["t2t_v19_text_seed1.npz", "t2t_v19_text_d64_seed1.npz"]
)
def test_matches_t2t_v19_dump(name):
    try:
        dump = np.load(f"{PARITY_DIR}/{name}")
    except FileNotFoundError:
        pytest.skip(f"{name} not available")
    # Encoder: add_timing_signal, 16 timescales, zero-padded to d.
    bottom = dump["tap/00_inputs_bottom"][:, :, 0]  # [B, L, d]
    timed = dump["tap/01_encoder_input_timing"][:, :, 0]
    length, d = bottom.shape[1:]
    encoder = positional.AddTimingSignal(16)
    np.testing.assert_allclose(encoder(bottom), timed, atol=1e-6)
    # Decoder: add_timing_signal_1d, full depth, on the shifted targets.
    shifted = np.concatenate(
        [
            np.broadcast_to(dump["tap/15_target_space_emb"][0, 0], (2, 1, d)),
            dump["tap/14_targets_bottom"][:, :-1],
        ],
        axis=1,
    )
    decoder = positional.AddTimingSignal()
    np.testing.assert_allclose(
        decoder(shifted.astype("float32")),
        dump["tap/16_decoder_input"],
        atol=1e-6,
    )
