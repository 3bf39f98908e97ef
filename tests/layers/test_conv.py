"""Tests of t2t_multimodel/layers/conv.py against NumPy references."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.layers import conv
from tests import testing


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _same_pads(size: int, field: int, stride: int) -> tuple[int, int]:
    """TF SAME padding along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + field - size, 0)
    return total // 2, total - total // 2


def np_sepconv(x, dw, pw, *, dilation=(1, 1), strides=(1, 1), causal=False):
    """NumPy separable conv on [B, H, W, C] with T2T-layout kernels."""
    kh, kw = dw.shape[:2]
    fields = [(kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1]
    pads = [_same_pads(x.shape[1 + i], fields[i], strides[i]) for i in (0, 1)]
    if causal:
        pads[0] = (fields[0] - 1, 0)
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    out_h = (xp.shape[1] - fields[0]) // strides[0] + 1
    out_w = (xp.shape[2] - fields[1]) // strides[1] + 1
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    r = i * strides[0] + a * dilation[0]
                    c = j * strides[1] + b * dilation[1]
                    y[:, i, j] += xp[:, r, c] * dw[a, b, :, 0]
    return y @ pw[0, 0]


def np_sepconv1d(x, dw, pw, *, dilation=1, strides=1, causal=False):
    y = np_sepconv(
        x[:, :, None],
        dw,
        pw,
        dilation=(dilation, 1),
        strides=(strides, 1),
        causal=causal,
    )
    return y[:, :, 0]


def np_layer_norm(x, scale, bias, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def np_conv_step(step, x, mask=None):
    """NumPy ConvStep from the layer's weights."""
    dw, pw = (
        np.asarray(w)
        for w in (step.conv.depthwise_kernel, step.conv.pointwise_kernel)
    )
    y = np.maximum(x, 0) if step.use_relu else x
    if mask is not None:
        y = y * mask[..., None]
    c = step.conv
    if step.rank == 1:
        y = np_sepconv1d(
            y,
            dw,
            pw,
            dilation=c._dilation[0],
            strides=c._strides[0],
            causal=step.causal,
        )
    else:
        y = np_sepconv(y, dw, pw, dilation=c._dilation, strides=c._strides)
    ln = step.layer_norm
    return np_layer_norm(
        y, np.asarray(ln.gamma), np.asarray(ln.beta), step.layer_norm_epsilon
    )


def _randomize(layer: keras.layers.Layer, seed: int = 1) -> None:
    rng = _rng(seed)
    layer.set_weights(
        [
            rng.normal(size=w.shape).astype("float32") * 0.5
            + (1.0 if "gamma" in w.path else 0.0)
            for w in layer.weights
        ]
    )


class TestSeparableConv:
    def test_layer(self):
        x = _rng().normal(size=(2, 9, 8)).astype("float32")
        testing.run_layer_test(
            conv.SeparableConv,
            {"filters": 6, "kernel_size": 3, "strides": 2},
            x,
            expected_output_shape=(2, 5, 6),
            expected_num_trainable_weights=2,
        )

    def test_layer_2d_with_bias(self):
        x = _rng().normal(size=(2, 7, 8, 4)).astype("float32")
        testing.run_layer_test(
            conv.SeparableConv,
            {
                "filters": 5,
                "kernel_size": (3, 3),
                "rank": 2,
                "strides": (2, 2),
                "use_bias": True,
            },
            x,
            expected_output_shape=(2, 4, 4, 5),
            expected_num_trainable_weights=3,
        )

    def test_t2t_kernel_layout(self):
        layer = conv.SeparableConv(7, 15, dilation_rate=4)
        layer.build((None, None, 5))
        assert tuple(layer.depthwise_kernel.shape) == (15, 1, 5, 1)
        assert tuple(layer.pointwise_kernel.shape) == (1, 1, 5, 7)
        assert layer.receptive_field == 57

    @pytest.mark.parametrize(
        "kernel,dilation,stride,causal,length",
        [
            (3, 1, 1, False, 10),
            (15, 1, 1, False, 12),
            (15, 4, 1, False, 20),
            (4, 1, 1, False, 9),
            (3, 2, 1, True, 11),
            (3, 1, 2, False, 9),
            (3, 1, 3, True, 10),
        ],
    )
    def test_1d_matches_numpy(self, kernel, dilation, stride, causal, length):
        x = _rng(kernel).normal(size=(2, length, 4)).astype("float32")
        layer = conv.SeparableConv(
            3, kernel, dilation_rate=dilation, strides=stride, causal=causal
        )
        y = np.asarray(layer(x))
        ref = np_sepconv1d(
            x,
            np.asarray(layer.depthwise_kernel),
            np.asarray(layer.pointwise_kernel),
            dilation=dilation,
            strides=stride,
            causal=causal,
        )
        assert y.shape == (2, math.ceil(length / stride), 3)
        np.testing.assert_allclose(y, ref, atol=1e-5)

    @pytest.mark.parametrize(
        "kernel,dilation,stride",
        [
            ((3, 3), 1, 2),
            ((3, 1), (2, 1), 1),
            ((1, 1), 1, (2, 1)),
            ((3, 3), 2, 1),
        ],
    )
    def test_2d_matches_numpy(self, kernel, dilation, stride):
        x = _rng(3).normal(size=(2, 7, 6, 3)).astype("float32")
        layer = conv.SeparableConv(
            4, kernel, dilation_rate=dilation, strides=stride, rank=2
        )
        y = np.asarray(layer(x))
        pair = conv._as_pair
        ref = np_sepconv(
            x,
            np.asarray(layer.depthwise_kernel),
            np.asarray(layer.pointwise_kernel),
            dilation=pair(dilation, 2, ""),
            strides=pair(stride, 2, ""),
        )
        sh, sw = pair(stride, 2, "")
        assert y.shape == (2, math.ceil(7 / sh), math.ceil(6 / sw), 4)
        np.testing.assert_allclose(y, ref, atol=1e-5)

    def test_hand_computed_causal(self):
        # One channel, kernel taps [1, 2, 3] (oldest first), dilation 2:
        # y[t] = x[t-4] + 2 x[t-2] + 3 x[t].
        layer = conv.SeparableConv(1, 3, dilation_rate=2, causal=True)
        layer.build((None, None, 1))
        layer.set_weights(
            [
                np.array([1, 2, 3], "float32").reshape(3, 1, 1, 1),
                np.ones((1, 1, 1, 1), "float32"),
            ]
        )
        x = np.arange(1, 7, dtype="float32").reshape(1, 6, 1)
        y = np.asarray(layer(x))[0, :, 0]
        np.testing.assert_allclose(y, [3, 6, 11, 16, 22, 28])

    def test_rejects_bad_arguments(self):
        with pytest.raises(ValueError):
            conv.SeparableConv(4, 3, strides=2, dilation_rate=2)
        with pytest.raises(ValueError):
            conv.SeparableConv(4, 3, rank=2, causal=True)


class TestConvStep:
    def test_layer(self):
        x = _rng().normal(size=(2, 10, 8)).astype("float32")
        mask = np.arange(10)[None] < np.array([[10], [7]])
        testing.run_layer_test(
            conv.ConvStep,
            {"filters": 8, "kernel_size": 3, "dilation_rate": 2},
            x,
            expected_output_shape=(2, 10, 8),
            expected_num_trainable_weights=4,
            call_kwargs={"padding_mask": mask},
        )

    def test_layer_2d_strided(self):
        x = _rng().normal(size=(2, 8, 8, 3)).astype("float32")
        testing.run_layer_test(
            conv.ConvStep,
            {
                "filters": 6,
                "kernel_size": 3,
                "strides": 2,
                "rank": 2,
                "use_relu": False,
            },
            x,
            expected_output_shape=(2, 4, 4, 6),
            expected_num_trainable_weights=4,
        )

    @pytest.mark.parametrize("causal", [False, True])
    def test_matches_numpy_with_mask(self, causal):
        x = _rng(5).normal(size=(2, 12, 6)).astype("float32")
        mask = np.arange(12)[None] < np.array([[12], [8]])
        step = conv.ConvStep(5, 3, dilation_rate=2, causal=causal)
        step.build(x.shape)
        _randomize(step)
        y = np.asarray(step(x, padding_mask=mask))
        ref = np_conv_step(step, x, mask.astype("float32"))
        np.testing.assert_allclose(y, ref, atol=1e-4)

    def test_2d_matches_numpy(self):
        x = _rng(6).normal(size=(2, 6, 5, 3)).astype("float32")
        step = conv.ConvStep(4, (3, 3), strides=2, rank=2)
        step.build(x.shape)
        _randomize(step)
        np.testing.assert_allclose(
            np.asarray(step(x)), np_conv_step(step, x), atol=1e-4
        )

    def test_padding_invariance(self):
        rng = _rng(7)
        x = rng.normal(size=(2, 14, 6)).astype("float32")
        mask = np.arange(14)[None] < np.array([[14], [9]])
        step = conv.ConvStep(6, 15)
        y = np.asarray(step(x, padding_mask=mask))
        x2 = np.where(mask[..., None], x, 100 * rng.normal(size=x.shape))
        y2 = np.asarray(step(x2.astype("float32"), padding_mask=mask))
        np.testing.assert_allclose(y2[mask], y[mask], atol=1e-5)
        # Without the mask the padded values do leak into real positions.
        y3 = np.asarray(step(x2.astype("float32")))
        assert np.abs(y3[1, :9] - y[1, :9]).max() > 1e-2

    def test_step_equals_causal_call(self):
        x = _rng(8).normal(size=(2, 10, 4)).astype("float32")
        step = conv.ConvStep(4, 3, dilation_rate=3, causal=True)
        full = np.asarray(step(x))
        state = step.initial_state(2)
        assert tuple(state.shape) == (2, 6, 4)
        outs = []
        for t in range(10):
            y, state = step.step(x[:, t : t + 1], state)
            outs.append(np.asarray(y))
        np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)


def _block_reference(block, x, mask=None):
    s = block.conv_steps
    h1 = np_conv_step(s[0], x, mask)
    h2 = x + np_conv_step(s[1], h1, mask)
    h3 = np_conv_step(s[2], h2, mask)
    return x + np_conv_step(s[3], h3, mask)


class TestConvBlock:
    def test_layer(self):
        x = _rng().normal(size=(2, 12, 8)).astype("float32")
        mask = np.arange(12)[None] < np.array([[12], [5]])
        layer = testing.run_layer_test(
            conv.ConvBlock,
            {"hidden_dim": 8, "causal": True},
            x,
            expected_output_shape=(2, 12, 8),
            expected_num_trainable_weights=16,
            call_kwargs={"padding_mask": mask},
        )
        assert layer.kernel_sizes == (3, 3, 15, 15)
        assert layer.dilation_rates == (1, 1, 1, 8)
        assert [s.conv.receptive_field for s in layer.conv_steps] == [
            3,
            3,
            15,
            113,
        ]

    @pytest.mark.parametrize("causal", [False, True])
    def test_matches_numpy(self, causal):
        x = _rng(9).normal(size=(2, 20, 8)).astype("float32")
        mask = np.arange(20)[None] < np.array([[20], [13]])
        block = conv.ConvBlock(8, causal=causal, dilation_rates=(1, 1, 1, 2))
        block.build(x.shape)
        _randomize(block, seed=2)
        y = np.asarray(block(x, padding_mask=mask, training=False))
        ref = _block_reference(block, x, mask.astype("float32"))
        np.testing.assert_allclose(y, ref, atol=2e-4)

    def test_causality(self):
        rng = _rng(10)
        x = rng.normal(size=(2, 20, 8)).astype("float32")
        x2 = x.copy()
        x2[:, 11:] = rng.normal(size=(2, 9, 8))
        causal = conv.ConvBlock(8, causal=True)
        y, y2 = (np.asarray(causal(v)) for v in (x, x2))
        np.testing.assert_allclose(y2[:, :11], y[:, :11], atol=1e-5)
        assert np.abs(y2[:, 11:] - y[:, 11:]).max() > 1e-2
        # The non-causal block does look ahead (the test can fail).
        plain = conv.ConvBlock(8)
        y, y2 = (np.asarray(plain(v)) for v in (x, x2))
        assert np.abs(y2[:, :11] - y[:, :11]).max() > 1e-2

    def test_padding_invariance(self):
        rng = _rng(11)
        x = rng.normal(size=(2, 20, 8)).astype("float32")
        mask = np.arange(20)[None] < np.array([[16], [6]])
        block = conv.ConvBlock(8)
        y = np.asarray(block(x, padding_mask=mask))
        x2 = np.where(mask[..., None], x, 50 * rng.normal(size=x.shape))
        y2 = np.asarray(block(x2.astype("float32"), padding_mask=mask))
        np.testing.assert_allclose(y2[mask], y[mask], atol=1e-4)

    def test_dropout_only_in_training(self):
        x = _rng(12).normal(size=(2, 10, 8)).astype("float32")
        block = conv.ConvBlock(8, dropout=0.4)
        a, b = (np.asarray(block(x, training=False)) for _ in range(2))
        np.testing.assert_array_equal(a, b)
        t = np.asarray(block(x, training=True))
        zeros = np.mean(t == 0)
        assert 0.25 < zeros < 0.55
        np.testing.assert_allclose(t[t != 0], a[t != 0] / 0.6, rtol=1e-5)

    def test_step_equals_causal_call(self):
        x = _rng(13).normal(size=(2, 20, 8)).astype("float32")
        block = conv.ConvBlock(8, causal=True)
        full = np.asarray(block(x))
        state = block.initial_state(2)
        step = tf.function(block.step)
        outs = []
        for t in range(20):
            y, state = step(tf.constant(x[:, t : t + 1]), state)
            outs.append(np.asarray(y))
        np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)

    def test_step_needs_causal(self):
        block = conv.ConvBlock(8)
        block.build((None, None, 8))
        with pytest.raises(ValueError):
            block.initial_state(1)


PARITY_DIR = testing.PARITY_DIR


def _load_dump(name: str):
    path = f"{PARITY_DIR}/{name}"
    try:
        return np.load(path)
    except FileNotFoundError:
        pytest.skip(f"{path} not available")


@pytest.mark.parametrize(
    "name", ["t2t_v19_text_seed1.npz", "t2t_v19_text_d64_seed1.npz"]
)
@pytest.mark.parametrize("layer_index", [0, 1])
def test_conv_steps_match_t2t_v19_dump(name, layer_index):
    # T2T v1.9 conv_res_step: four ConvSteps on the masked encoder input,
    # (filter, 3), (filter, 3), (d, 15), (d, 15, dilation 4), SAME padding.
    dump = _load_dump(name)
    inputs = {0: "01_encoder_input_timing", 1: "07_enc0_residual_out"}
    outputs = {0: "02_enc0_conv_res_step", 1: "08_enc1_conv_res_step"}
    x = dump["tap/" + inputs[layer_index]][:, :, 0]  # [B, L, d]
    mask = dump["in/inputs"][:, :, 0, 0] != 0  # [B, L]
    d = x.shape[-1]
    prefix = f"var/multi_model/enc_layer_{layer_index}/conv_res_step/"
    filters = dump[prefix + "residual1/conv_block_0_single/pointwise_kernel"]
    specs = [
        ("residual1", 0, filters.shape[-1], 3, 1),
        ("residual1", 1, filters.shape[-1], 3, 1),
        ("residual2", 0, d, 15, 1),
        ("residual2", 1, d, 15, 4),
    ]
    y = x
    for scope, i, width, kernel, dilation in specs:
        step = conv.ConvStep(width, kernel, dilation_rate=dilation)
        step.build(y.shape)
        conv_scope = f"{prefix}{scope}/conv_block_{i}_single/"
        norm_scope = f"{prefix}{scope}/conv_block_norm_{i}/layer_norm_"
        step.conv.depthwise_kernel.assign(dump[conv_scope + "depthwise_kernel"])
        step.conv.pointwise_kernel.assign(dump[conv_scope + "pointwise_kernel"])
        step.layer_norm.gamma.assign(dump[norm_scope + "scale"])
        step.layer_norm.beta.assign(dump[norm_scope + "bias"])
        y = np.asarray(step(y, padding_mask=mask))
    np.testing.assert_allclose(
        y, dump["tap/" + outputs[layer_index]][:, :, 0], atol=1e-5
    )
