"""Tests of t2t_multimodel/layers/attention.py against NumPy references."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.layers import attention, positional
from tests import testing
from tests.layers import test_conv


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_mha(layer, query, memory=None, mask=None):
    """The T2T formula (parity README section 4) in float64 NumPy.

    `mask` is bool, broadcastable to [B, heads, Tq, Tk].
    """
    memory = query if memory is None else memory
    w = {
        n: np.asarray(getattr(layer, n).kernel, "float64")
        for n in ("q", "k", "v", "output_transform")
    }
    h, dh = layer.num_heads, layer.head_dim

    def split(x):  # [B, T, d] -> [B, h, T, dh]
        return x.reshape(x.shape[0], x.shape[1], h, dh).transpose(0, 2, 1, 3)

    q = split(query @ w["q"]) * dh**-0.5
    k, v = split(memory @ w["k"]), split(memory @ w["v"])
    logits = q @ k.transpose(0, 1, 3, 2)
    if mask is not None:
        logits = logits + np.where(mask, 0.0, -1e9)
    o = _softmax(logits) @ v  # [B, h, Tq, dh]
    o = o.transpose(0, 2, 1, 3).reshape(query.shape[0], query.shape[1], -1)
    return o @ w["output_transform"]


def _causal(t):
    return np.tril(np.ones((t, t), bool))


class TestMultiHeadAttention:
    def test_layer_self_causal(self):
        x = _rng().normal(size=(2, 6, 16)).astype("float32")
        mask = np.arange(6)[None] < np.array([[6], [4]])
        layer = testing.run_layer_test(
            attention.MultiHeadAttention,
            {"hidden_dim": 16, "num_heads": 4, "dropout": 0.1},
            x,
            expected_output_shape=(2, 6, 16),
            expected_num_trainable_weights=4,
            call_kwargs={"memory_mask": mask, "causal": True},
        )
        names = sorted(w.path.split("/")[-2] for w in layer.weights)
        assert names == ["k", "output_transform", "q", "v"]
        assert all(tuple(w.shape) == (16, 16) for w in layer.weights)

    def test_layer_cross(self):
        x = _rng(1).normal(size=(2, 5, 16)).astype("float32")
        memory = _rng(2).normal(size=(2, 7, 12)).astype("float32")
        testing.run_layer_test(
            attention.MultiHeadAttention,
            {"hidden_dim": 16, "num_heads": 8, "use_bias": True},
            x,
            expected_output_shape=(2, 5, 16),
            expected_num_trainable_weights=8,
            call_kwargs={"memory": memory},
        )

    def test_hand_computed(self):
        # One head, identity kernels: weights softmax([1, 0] / sqrt(2)).
        layer = attention.MultiHeadAttention(2, 1)
        layer.build((None, None, 2))
        layer.set_weights([np.eye(2, dtype="float32")] * 4)
        query = np.array([[[1.0, 0.0]]], "float32")
        memory = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
        a = 1 / (1 + math.exp(-1 / math.sqrt(2)))
        np.testing.assert_allclose(
            layer(query, memory)[0, 0], [a, 1 - a], rtol=1e-6
        )
        masked = layer(query, memory, memory_mask=np.array([[True, False]]))
        np.testing.assert_allclose(masked[0, 0], [1.0, 0.0], atol=1e-7)

    def test_matches_numpy(self):
        rng = _rng(3)
        query = rng.normal(size=(2, 5, 16)).astype("float32")
        memory = rng.normal(size=(2, 7, 16)).astype("float32")
        mem_mask = np.arange(7)[None] < np.array([[7], [3]])
        layer = attention.MultiHeadAttention(16, 4)
        y = np.asarray(layer(query, memory, memory_mask=mem_mask))
        ref = np_mha(layer, query, memory, mem_mask[:, None, None, :])
        np.testing.assert_allclose(y, ref, atol=1e-5)
        y = np.asarray(layer(query, causal=True))
        np.testing.assert_allclose(
            y, np_mha(layer, query, mask=_causal(5)), atol=1e-5
        )

    def test_causality(self):
        rng = _rng(4)
        x = rng.normal(size=(2, 8, 16)).astype("float32")
        x2 = x.copy()
        x2[:, 5:] = rng.normal(size=(2, 3, 16))
        layer = attention.MultiHeadAttention(16, 4)
        y, y2 = (np.asarray(layer(v, causal=True)) for v in (x, x2))
        np.testing.assert_allclose(y2[:, :5], y[:, :5], atol=1e-6)
        assert np.abs(y2[:, 5:] - y[:, 5:]).max() > 1e-3
        y, y2 = (np.asarray(layer(v)) for v in (x, x2))
        assert np.abs(y2[:, :5] - y[:, :5]).max() > 1e-3

    def test_memory_padding(self):
        rng = _rng(5)
        query = rng.normal(size=(2, 4, 16)).astype("float32")
        memory = rng.normal(size=(2, 6, 16)).astype("float32")
        mask = np.arange(6)[None] < np.array([[5], [2]])
        layer = attention.MultiHeadAttention(16, 4)
        y = np.asarray(layer(query, memory, memory_mask=mask))
        memory2 = np.where(
            mask[..., None], memory, 30 * rng.normal(size=(2, 6, 16))
        )
        y2 = np.asarray(
            layer(query, memory2.astype("float32"), memory_mask=mask)
        )
        np.testing.assert_allclose(y2, y, atol=1e-5)

    def test_cached_steps_equal_causal_call(self):
        x = _rng(6).normal(size=(2, 9, 16)).astype("float32")
        layer = attention.MultiHeadAttention(16, 4)
        full = np.asarray(layer(x, causal=True))
        cache = layer.initial_cache(2, 12)
        step = tf.function(lambda q, c, i: layer(q, cache=c, cache_index=i))
        outs = []
        for t in range(9):
            y, cache = step(tf.constant(x[:, t : t + 1]), cache, tf.constant(t))
            outs.append(np.asarray(y))
        np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)
        np.testing.assert_allclose(cache["key"][:, :9], layer.k(x), atol=1e-6)
        np.testing.assert_array_equal(cache["key"][:, 9:], 0)
        # A chunk of 3 positions at offset 2 after a 2-position prefix.
        cache = layer.initial_cache(2, 12)
        _, cache = layer(x[:, :2], cache=cache, cache_index=0)
        y, _ = layer(x[:, 2:5], cache=cache, cache_index=2)
        np.testing.assert_allclose(y, full[:, 2:5], atol=1e-5)

    def test_memory_cache_equals_memory(self):
        rng = _rng(7)
        query = rng.normal(size=(2, 3, 16)).astype("float32")
        memory = rng.normal(size=(2, 6, 16)).astype("float32")
        mask = np.arange(6)[None] < np.array([[6], [4]])
        layer = attention.MultiHeadAttention(16, 4)
        y = layer(query, memory, memory_mask=mask)
        mc = layer.precompute_memory(memory)
        y2 = layer(query, memory_cache=mc, memory_mask=mask)
        np.testing.assert_allclose(y2, y, atol=1e-6)

    def test_attention_dropout(self):
        x = _rng(8).normal(size=(2, 6, 16)).astype("float32")
        layer = attention.MultiHeadAttention(16, 4, dropout=0.5)
        a, b = (np.asarray(layer(x, training=False)) for _ in range(2))
        np.testing.assert_array_equal(a, b)
        assert np.abs(np.asarray(layer(x, training=True)) - a).max() > 1e-3

    def test_rejects_bad_heads(self):
        with pytest.raises(ValueError):
            attention.MultiHeadAttention(10, 4)


def np_layer_norm(layer, x):
    return test_conv.np_layer_norm(
        x, np.asarray(layer.gamma), np.asarray(layer.beta), 1e-6
    )


def np_attention_block(block, target, source, source_mask=None):
    t = target.shape[1]
    x = target + np.asarray(positional.timing_signal(t, target.shape[2]))
    for conv_block in block.conv_blocks:
        x = test_conv._block_reference(conv_block, x)
    y = np_mha(block.self_attention, x, mask=_causal(t))
    mask = None if source_mask is None else source_mask[:, None, None, :]
    z = np_mha(block.source_attention, y, source, mask)
    return np_layer_norm(block.layer_norm, x + y + z)


SMALL = {"kernel_sizes": (3, 3, 5, 5), "dilation_rates": (1, 1, 1, 2)}


class TestAttentionBlock:
    def test_layer(self):
        rng = _rng(9)
        target = rng.normal(size=(2, 6, 16)).astype("float32")
        source = rng.normal(size=(2, 7, 16)).astype("float32")
        source_mask = np.arange(7)[None] < np.array([[7], [4]])
        target_mask = np.arange(6)[None] < np.array([[6], [5]])
        testing.run_layer_test(
            attention.AttentionBlock,
            {"hidden_dim": 16, "num_heads": 8, "attention_dropout": 0.1},
            target,
            expected_output_shape=(2, 6, 16),
            expected_num_trainable_weights=2 * 16 + 2 * 4 + 2,
            call_kwargs={
                "source": source,
                "source_mask": source_mask,
                "target_mask": target_mask,
            },
            atol=1e-5,
        )

    def test_matches_numpy(self):
        rng = _rng(10)
        target = rng.normal(size=(2, 8, 16)).astype("float32")
        source = rng.normal(size=(2, 5, 16)).astype("float32")
        source_mask = np.arange(5)[None] < np.array([[5], [3]])
        block = attention.AttentionBlock(16, 4, **SMALL)
        block.build(target.shape, source.shape)
        test_conv._randomize(block, seed=3)
        y = np.asarray(block(target, source, source_mask=source_mask))
        ref = np_attention_block(block, target, source, source_mask)
        np.testing.assert_allclose(y, ref, atol=2e-4)

    def test_causal_in_target_and_source_padding(self):
        rng = _rng(11)
        target = rng.normal(size=(2, 10, 16)).astype("float32")
        source = rng.normal(size=(2, 6, 16)).astype("float32")
        mask = np.arange(6)[None] < np.array([[6], [2]])
        block = attention.AttentionBlock(16)
        y = np.asarray(block(target, source, source_mask=mask))
        target2 = target.copy()
        target2[:, 7:] = rng.normal(size=(2, 3, 16))
        source2 = np.where(
            mask[..., None], source, 20 * rng.normal(size=source.shape)
        )
        y2 = np.asarray(
            block(target2, source2.astype("float32"), source_mask=mask)
        )
        np.testing.assert_allclose(y2[:, :7], y[:, :7], atol=1e-5)
        assert np.abs(y2[:, 7:] - y[:, 7:]).max() > 1e-3

    def test_step_equals_full_call(self):
        rng = _rng(12)
        target = rng.normal(size=(2, 10, 16)).astype("float32")
        source = rng.normal(size=(2, 6, 16)).astype("float32")
        mask = np.arange(6)[None] < np.array([[6], [4]])
        block = attention.AttentionBlock(16, **SMALL)
        full = np.asarray(block(target, source, source_mask=mask))
        state = block.initial_state(source, 12, source_mask=mask)
        step = tf.function(block.step)
        outs = []
        for t in range(10):
            y, state = step(tf.constant(target[:, t : t + 1]), state)
            outs.append(np.asarray(y))
        assert int(state["index"]) == 10
        np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)


@pytest.mark.parametrize(
    "name", ["t2t_v19_text_seed1.npz", "t2t_v19_text_d64_seed1.npz"]
)
@pytest.mark.parametrize(
    "layer_index,input_tap",
    [(0, "16_decoder_input"), (1, "24_dec0_ffn_residual_out")],
)
def test_matches_t2t_v19_dump(name, layer_index, input_tap):
    dump = test_conv._load_dump(name)
    taps = {k[7:]: dump[k] for k in dump.files if k.startswith("tap/")}
    x = dump["tap/" + input_tap]  # [B, T, d]
    encoded = taps["enc1_residual_out"][:, :, 0]  # [B, L, d]
    source_mask = dump["in/inputs"][:, :, 0, 0] != 0  # [B, L]
    d = x.shape[-1]
    prefix = f"var/multi_model/dec_layer_{layer_index}/attention/"

    def load(scope):
        layer = attention.MultiHeadAttention(d, 8)
        layer.build(x.shape)
        for n in ("q", "k", "v", "output_transform"):
            getattr(layer, n).kernel.assign(dump[f"{prefix}{scope}/{n}/kernel"])
        return layer

    y = load("decoder_self_attention")(x, causal=True)
    np.testing.assert_allclose(
        y, taps[f"dec{layer_index}_self_attention"], atol=1e-5
    )
    z = load("encdec_attention")(y, encoded, memory_mask=source_mask)
    np.testing.assert_allclose(
        z, taps[f"dec{layer_index}_encdec_attention"], atol=1e-5
    )


def test_attention_block_without_timing_signal():
    rng = _rng(13)
    target = rng.normal(size=(2, 7, 16)).astype("float32")
    source = rng.normal(size=(2, 4, 16)).astype("float32")
    timed = attention.AttentionBlock(16, **SMALL)
    plain = attention.AttentionBlock(16, use_timing_signal=False, **SMALL)
    y = timed(target, source)
    plain(target, source)
    plain.set_weights(timed.get_weights())
    signal = np.asarray(positional.timing_signal(7, 16))
    np.testing.assert_allclose(plain(target + signal, source), y, atol=1e-5)
    state = plain.initial_state(source, 7)
    y_0, _ = plain.step(target[:, :1] + signal[:1], state)
    np.testing.assert_allclose(y_0, y[:, :1], atol=1e-5)


def test_attention_block_steps_in_graph_loop():
    # The decoding state keeps fixed shapes inside a tf.while_loop even when
    # the per-step input slice has an unknown static length.
    rng = _rng(14)
    target = tf.constant(rng.normal(size=(2, 8, 16)).astype("float32"))
    source = tf.constant(rng.normal(size=(2, 5, 16)).astype("float32"))
    block = attention.AttentionBlock(16, **SMALL)
    full = block(target, source)

    @tf.function
    def decode():
        state = block.initial_state(source, 8)
        outputs = tf.TensorArray(tf.float32, 8)
        for t in tf.range(8):
            y, state = block.step(target[:, t : t + 1], state)
            outputs = outputs.write(t, y[:, 0])
        return tf.transpose(outputs.stack(), (1, 0, 2))

    np.testing.assert_allclose(decode(), full, atol=1e-5)
