"""Tests of the T2T v1.9 MultiModel body (`models/t2t_v19.py`).

Numerical parity with the original T2T code is in test_t2t_import.py (the
reference dumps); these tests check the body's own contracts at tiny sizes:
layer API and config, timing signals, masking, causality, cached decoding and
the eval-mode load-balancing loss with T2T's zero-initialised gates.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.layers import positional
from t2t_multimodel.modalities import specs as specs_lib
from t2t_multimodel.models import build, t2t_v19
from tests import testing

D = 32
ENC = dict(hidden_dim=D, filter_size=16, num_layers=1, num_experts=4)
DEC = dict(
    hidden_dim=D,
    filter_size=16,
    num_layers=2,
    moe_layers=(0,),
    num_experts=4,
    moe_hidden_size=24,
)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1)


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_encoder_layer_api():
    testing.run_layer_test(
        t2t_v19.T2TV19Encoder,
        {**ENC, "dropout": 0.1},
        _normal(2, 7, D),
        expected_output_shape=(2, 7, D),
        # 4 ConvSteps x (depthwise, pointwise, gamma, beta), the MoE's
        # w_gate, w_noise, w_0, w_1 and the layer norm.
        expected_num_trainable_weights=16 + 4 + 2,
        call_kwargs={
            "padding_mask": np.array([[True] * 7, [True] * 5 + [0] * 2])
        },
    )


def test_decoder_layer_api():
    testing.run_layer_test(
        t2t_v19.T2TV19Decoder,
        DEC,
        _normal(2, 5, D),
        expected_output_shape=(2, 5, D),
        # Per layer: 8 attention kernels, 2 layer norms, an MoE (4) or a
        # dense FFN (2 kernels, 2 biases).
        expected_num_trainable_weights=2 * (8 + 4 + 4),
        call_kwargs={"encoded": _normal(2, 6, D, seed=1)},
    )


def test_expert_widths_and_scales():
    enc = t2t_v19.T2TV19Encoder(**ENC)
    dec = t2t_v19.T2TV19Decoder(**DEC)
    # T2T ffn_expert_fn: the output is scaled by (hidden / d) ** -0.5.
    assert enc.moes[0].intermediate_dim == 16
    assert enc.moes[0].expert_output_scale == pytest.approx((16 / 32) ** -0.5)
    assert dec.ffns[0].intermediate_dim == 24
    assert dec.ffns[0].expert_output_scale == pytest.approx((24 / 32) ** -0.5)
    assert [type(f).__name__ for f in dec.ffns[1]] == ["Dense", "Dense"]
    # Kernels 3, 3, 15, 15; dilations 1, 1, 1, 4; widths f, f, d, d.
    steps = enc.conv_steps[0]
    assert [s.kernel_size for s in steps] == [3, 3, 15, 15]
    assert [s.dilation_rate for s in steps] == [1, 1, 1, 4]
    assert [s.filters for s in steps] == [16, 16, D, D]


def test_bad_moe_layers():
    with pytest.raises(ValueError, match="moe_layers"):
        t2t_v19.T2TV19Decoder(**{**DEC, "moe_layers": (2,)})


def test_timing_signals_differ_above_32_channels():
    # Encoder: 16 timescales, 32 channels, zero above; decoder: full depth.
    d = 64
    zeros = np.zeros([1, 6, d], "float32")
    enc = t2t_v19.T2TV19Encoder(d, 8, 1, num_experts=2)
    dec = t2t_v19.T2TV19Decoder(d, 8, 1, moe_layers=(), num_experts=2)
    _, enc_taps = enc.forward(zeros)
    _, dec_taps = dec.forward(zeros, zeros)
    enc_timing = np.asarray(enc_taps["input_timing"])[0]
    dec_timing = np.asarray(dec_taps["input_timing"])[0]
    np.testing.assert_array_equal(enc_timing[:, 32:], 0.0)
    # Position 1, channel 1: sin(1 * exp(-ln(1e4) / 15)).
    assert enc_timing[1, 1] == pytest.approx(np.sin(np.exp(-np.log(1e4) / 15)))
    # The decoder's has 32 timescales: channel 1 is sin(exp(-ln(1e4) / 31)).
    assert dec_timing[1, 1] == pytest.approx(np.sin(np.exp(-np.log(1e4) / 31)))
    np.testing.assert_allclose(
        dec_timing, np.asarray(positional.timing_signal(6, d)), atol=1e-6
    )


def test_encoder_padding():
    enc = t2t_v19.T2TV19Encoder(**ENC)
    enc.build()
    # Random gates (T2T's zero gates make the loss independent of x).
    enc.moes[0].w_gate.assign(_normal(D, 4, seed=2))
    x = _normal(2, 9, D)
    mask = np.ones([2, 9], bool)
    mask[1, 6:] = False
    other = x.copy()
    other[1, 6:] = _normal(3, D, seed=5)  # new values at padded positions
    out_a = np.asarray(enc(x, padding_mask=mask))
    loss_a = float(enc.losses[0])
    out_b = np.asarray(enc(other, padding_mask=mask))
    loss_b = float(enc.losses[0])
    # Real positions never see padding (masked convs, per-row MoE and LN).
    np.testing.assert_allclose(out_a[:, :6], out_b[:, :6], atol=1e-5)
    np.testing.assert_allclose(out_a[0], out_b[0], atol=1e-5)
    # As in T2T, the MoE routes padded rows: they count in its loss.
    assert loss_a != loss_b
    masked = t2t_v19.T2TV19Encoder(**ENC, moe_padding_mask=True)
    masked(x, padding_mask=mask)
    masked.set_weights(enc.get_weights())
    masked(x, padding_mask=mask)
    loss_c = float(masked.losses[0])
    masked(other, padding_mask=mask)
    assert float(masked.losses[0]) == pytest.approx(loss_c, abs=1e-7)


def test_decoder_is_causal():
    dec = t2t_v19.T2TV19Decoder(**DEC)
    x, encoded = _normal(2, 6, D), _normal(2, 4, D, seed=1)
    changed = x.copy()
    changed[:, 3] += 1.0
    a = np.asarray(dec(x, encoded))
    b = np.asarray(dec(changed, encoded))
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-6)
    assert np.abs(a[:, 3:] - b[:, 3:]).max() > 1e-3


def test_decoder_source_mask():
    dec = t2t_v19.T2TV19Decoder(**DEC)
    x, encoded = _normal(2, 5, D), _normal(2, 4, D, seed=1)
    mask = np.array([[True] * 4, [True, True, False, False]])
    other = encoded.copy()
    other[1, 2:] = 7.0
    a = np.asarray(dec(x, encoded, source_mask=mask))
    b = np.asarray(dec(x, other, source_mask=mask))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_incremental_decoding_matches_full_call():
    dec = t2t_v19.T2TV19Decoder(**DEC)
    x, encoded = _normal(2, 6, D), _normal(2, 4, D, seed=1)
    mask = np.array([[True] * 4, [True, True, True, False]])
    full = np.asarray(dec(x, encoded, source_mask=mask))
    testing.assert_steps_match_call(dec, x, encoded, mask, full)


def _tiny_text_model():
    spec = specs_lib.ModalitySpec(
        "symbol",
        "t2t_multimodel.modalities.symbol.SymbolModality",
        {"vocab_size": 64},
    )
    return build.build_model(
        modality_specs=[spec],
        hidden_dim=D,
        encoder=t2t_v19.T2TV19Encoder(D, 16, 2, num_experts=30),
        decoder=t2t_v19.T2TV19Decoder(
            D, 16, 2, moe_layers=(0,), num_experts=30, moe_hidden_size=24
        ),
        modality_kwargs={"symbol": {"shared_embeddings": False}},
    )


def _text_features():
    rng = np.random.default_rng(3)
    inputs = rng.integers(2, 64, size=(2, 7)).astype("int32")
    targets = rng.integers(2, 64, size=(2, 5)).astype("int32")
    inputs[1, 5:] = 0
    targets[1, 4:] = 0
    return {
        "inputs": inputs,
        "inputs_mask": inputs != 0,
        "targets": targets,
        "targets_mask": targets != 0,
        "target_space_id": np.array([4, 4], "int32"),
    }


def test_eval_load_loss_with_zero_gates():
    # T2T's zero gates send every row to experts 0 and 1 with gates 1/2:
    # importance = [N/2, N/2, 0, ...] has cv2 = 14 with 30 experts, and the
    # tie rule gives every expert the load N/2 (cv2 = 0). Three MoE layers
    # (2 encoder, 1 decoder) x 0.01 x 14 = 0.42, T2T's eval value.
    model = _tiny_text_model()
    feats = _text_features()
    out = model(
        feats, input_modality="symbol", target_modality="symbol", training=False
    )
    loss = model.compute_loss(feats, out, target_modality="symbol")
    assert float(loss["extra_loss"]) == pytest.approx(0.42, abs=1e-6)
    assert float(model.encoder.moes[0].importance_cv2) == pytest.approx(14.0)
    assert float(model.encoder.moes[0].load_cv2) == 0.0


def test_model_training_step_and_config_round_trip():
    model = _tiny_text_model()
    feats = _text_features()
    kwargs = dict(input_modality="symbol", target_modality="symbol")
    with tf.GradientTape() as tape:
        out = model(feats, training=True, **kwargs)
        loss = model.compute_loss(feats, out, target_modality="symbol")
    grads = tape.gradient(loss["loss"], model.trainable_weights)
    # Every weight of the text path gets a gradient (the gates through the
    # load-balancing loss and the noise).
    assert all(g is not None for g in grads)
    before = np.array(model.encoder.moes[1].w_gate)
    keras.optimizers.SGD(0.1).apply_gradients(
        zip(grads, model.trainable_weights)
    )
    assert not np.array_equal(before, np.array(model.encoder.moes[1].w_gate))
    config = keras.saving.serialize_keras_object(model)
    clone = keras.saving.deserialize_keras_object(config)
    clone.set_weights(model.get_weights())
    a = model(feats, training=False, **kwargs)["logits"]
    b = clone(feats, training=False, **kwargs)["logits"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert clone.encoder.get_config() == model.encoder.get_config()
    assert clone.decoder.get_config() == model.decoder.get_config()
