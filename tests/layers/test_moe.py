"""Tests of t2t_multimodel/layers/moe.py: routing, loss, dispatch, parity."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.layers import moe
from tests import testing

PARITY_DIR = testing.PARITY_DIR


def _softmax(v):
    e = np.exp(v - v.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _cv2(v):
    v = np.asarray(v, np.float64)
    return v.var() / (v.mean() ** 2 + 1e-10)


def _dense_reference(x, w_gate, w_0, w_1, k, scale=1.0):
    """Gates of the top-k logits and every expert run on every row."""
    logits = x @ w_gate  # [N, E]
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]  # [N, k]
    gates = np.zeros_like(logits)
    np.put_along_axis(
        gates, top, _softmax(np.take_along_axis(logits, top, 1)), 1
    )
    y = np.zeros_like(x)
    for e in range(w_gate.shape[1]):
        f = np.maximum(x @ w_0[e], 0) @ w_1[e] * scale  # [N, d]
        y += gates[:, e : e + 1] * f
    return y, gates


def _layer(d, h, e, **kwargs):
    layer = moe.SparseMoE(d, h, e, **kwargs)
    layer.build((None, d))
    return layer


def _set_random(layer, seed, gate_scale=1.0):
    rng = np.random.default_rng(seed)
    for w in (layer.w_gate, layer.w_0, layer.w_1):
        scale = gate_scale if w is layer.w_gate else 0.5
        w.assign(rng.normal(size=w.shape).astype("float32") * scale)
    return rng


# Hand-set logits for 6 rows over 5 experts (x = identity rows, so the
# logits are the rows of w_gate). Row 3 has a tie between experts 1 and 4,
# row 5 a tie between the 2nd and 3rd best (experts 1 and 2): lowest index.
HAND_LOGITS = np.array(
    [
        [3.0, 1.0, 2.0, 0.0, -1.0],
        [0.0, 0.5, -2.0, 4.0, 1.0],
        [-1.0, -1.0, 5.0, 2.0, 2.5],
        [0.0, 2.0, 1.0, 0.0, 2.0],
        [1.0, 1.5, 1.2, 0.3, -3.0],
        [-2.0, 1.0, 1.0, 3.0, 0.1],
    ],
    np.float32,
)
HAND_TOP2 = np.array([[0, 2], [3, 4], [2, 4], [1, 4], [1, 2], [3, 1]])


def _hand_layer(**kwargs):
    layer = _layer(6, 4, 5, top_k=2, **kwargs)
    layer.w_gate.assign(HAND_LOGITS)
    return layer


class TestSparseMoE:
    def test_gate_picks_top_k_of_hand_set_logits(self):
        layer = _hand_layer()
        routing = layer.route(np.eye(6, dtype="float32"), training=False)
        np.testing.assert_array_equal(routing.expert_index, HAND_TOP2)
        expected = _softmax(np.take_along_axis(HAND_LOGITS, HAND_TOP2, 1))
        np.testing.assert_allclose(routing.expert_gate, expected, rtol=1e-6)
        # Row 0: softmax(3, 2) = (0.7311, 0.2689).
        np.testing.assert_allclose(
            routing.expert_gate[0], [0.7310586, 0.2689414], rtol=1e-6
        )

    def test_loss_on_hand_routing_equals_formula(self):
        layer = _hand_layer(loss_coef=0.5)
        layer(np.eye(6, dtype="float32"), training=False)
        gates = np.zeros((6, 5))
        np.put_along_axis(
            gates,
            HAND_TOP2,
            _softmax(np.take_along_axis(HAND_LOGITS, HAND_TOP2, 1)),
            1,
        )
        importance = gates.sum(0)
        # Step-function load: rows routed to each expert, except row 5
        # (logits -2, 1, 1, 3, 0.1): experts 1 and 2 tie with the 3rd value,
        # so T2T gives each P = Phi(0) = 0.5 (expert 1 is not "in" the
        # top-k for `noisy > threshold`).
        load = np.array([1, 2.5, 3.5, 2, 3], np.float64)
        np.testing.assert_allclose(
            layer.route(np.eye(6, dtype="float32")).load, load
        )
        expected = 0.5 * (_cv2(importance) + _cv2(load))
        assert len(layer.losses) == 1
        np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)
        np.testing.assert_allclose(
            float(layer.importance_cv2), _cv2(importance), rtol=1e-5
        )
        np.testing.assert_allclose(float(layer.load_cv2), _cv2(load), rtol=1e-5)

    def test_zero_gates_at_inference_route_all_to_first_experts(self):
        n, e, k = 12, 8, 2
        layer = _layer(4, 8, e, top_k=k)
        x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
        layer(x, training=False)
        routing = layer.route(x, training=False)
        np.testing.assert_array_equal(routing.expert_index, [[0, 1]] * n)
        np.testing.assert_allclose(routing.expert_gate, 0.5)
        # Every logit ties the threshold: P = Phi(0) = 0.5 for every expert.
        np.testing.assert_allclose(routing.load, [n / 2] * e)
        # importance = [6, 6, 0 x 6]: cv2 = E / k - 1 = 3; cv2(load) = 0.
        np.testing.assert_allclose(float(layer.losses[0]), 1e-2 * 3.0)
        np.testing.assert_allclose(float(layer.importance_cv2), 3.0)
        assert float(layer.load_cv2) == 0.0

    @pytest.mark.parametrize("capacity_factor", [None, 4.0])
    def test_output_equals_dense_reference(self, capacity_factor):
        layer = _layer(
            8,
            12,
            6,
            top_k=3,
            expert_output_scale=0.7,
            capacity_factor=capacity_factor,
        )
        _set_random(layer, 1)
        x = np.random.default_rng(2).normal(size=(2, 10, 8)).astype("float32")
        y = np.asarray(layer(x, training=False))
        ref, _ = _dense_reference(
            x.reshape(-1, 8),
            *(np.array(w) for w in (layer.w_gate, layer.w_0, layer.w_1)),
            k=3,
            scale=0.7,
        )
        np.testing.assert_allclose(y.reshape(-1, 8), ref, atol=1e-5)
        assert float(layer.dropped_count) == 0.0
        assert float(layer.assignment_count) == 60.0

    @pytest.mark.parametrize("top_k", [1, 3])
    def test_infer_equals_call_and_dense_reference(self, top_k):
        layer = _layer(8, 12, 6, top_k=top_k, expert_output_scale=0.7)
        _set_random(layer, 1)
        x = np.random.default_rng(2).normal(size=(3, 1, 8)).astype("float32")
        y_call = np.asarray(layer(x, training=False))
        counts = [float(layer.assignment_count), float(layer.load_cv2)]
        y = np.asarray(layer.infer(x))
        assert y.shape == (3, 1, 8)
        np.testing.assert_allclose(y, y_call, atol=1e-6)
        ref, _ = _dense_reference(
            x.reshape(-1, 8),
            *(np.array(w) for w in (layer.w_gate, layer.w_0, layer.w_1)),
            k=top_k,
            scale=0.7,
        )
        np.testing.assert_allclose(y.reshape(-1, 8), ref, atol=1e-5)
        # No loss and untouched statistics.
        assert len(layer.losses) == 1
        assert [float(layer.assignment_count), float(layer.load_cv2)] == (
            counts
        )
        # Eager, N * k = 9 >= E = 6 with top_k 3 runs every expert (dense);
        # top_k 1 and an unknown number of rows (below) gather the kernels.
        fn = tf.function(
            layer.infer, input_signature=[tf.TensorSpec([None, 1, 8])]
        )
        np.testing.assert_allclose(np.asarray(fn(x)), y, atol=1e-6)

    def test_capacity_drops_are_counted_and_contribute_zero(self):
        # k = 1, 8 rows, 4 experts, capacity ceil(1.0 * 1 * 8 / 4) = 2.
        # Rows 0-5 prefer expert 0, rows 6-7 expert 1: rows 2-5 are dropped.
        d = 4
        layer = _layer(d, 6, 4, top_k=1, capacity_factor=1.0)
        _set_random(layer, 3)
        w_gate = np.zeros((d, 4), np.float32)
        w_gate[0, 0] = w_gate[1, 1] = 5.0
        layer.w_gate.assign(w_gate)
        rng = np.random.default_rng(4)
        x = rng.uniform(0.1, 1.0, size=(8, d)).astype("float32")
        x[:6, 1] = 0.0
        x[6:, 0] = 0.0
        y = np.asarray(layer(x, training=False))
        ref, _ = _dense_reference(
            x, w_gate, np.array(layer.w_0), np.array(layer.w_1), k=1
        )
        np.testing.assert_array_equal(y[2:6], 0.0)
        np.testing.assert_allclose(
            y[[0, 1, 6, 7]], ref[[0, 1, 6, 7]], atol=1e-5
        )
        assert float(layer.dropped_count) == 4.0
        assert float(layer.assignment_count) == 8.0

    def test_capacity_serves_first_choices_before_second_choices(self):
        # k = 2, 4 rows, 2 experts, capacity ceil(0.5 * 2 * 4 / 2) = 2.
        # Rows 0, 1 choose expert 0 first; rows 2, 3 expert 1 first. Every
        # expert is filled by first choices, so all second choices drop.
        d = 2
        layer = _layer(d, 4, 2, top_k=2, capacity_factor=0.5)
        _set_random(layer, 5)
        layer.w_gate.assign(np.eye(2, dtype="float32"))
        x = np.array([[2, 1], [3, 0], [0, 2], [1, 4]], np.float32)
        y = np.asarray(layer(x, training=False))
        gates = _softmax(x)  # [4, 2]; logits = x
        w_0, w_1 = np.array(layer.w_0), np.array(layer.w_1)
        first = [0, 0, 1, 1]
        ref = np.stack(
            [
                gates[i, e] * (np.maximum(x[i] @ w_0[e], 0) @ w_1[e])
                for i, e in enumerate(first)
            ]
        )
        np.testing.assert_allclose(y, ref, atol=1e-5)
        assert float(layer.dropped_count) == 4.0

    @pytest.mark.parametrize("capacity_factor", [None, 1.0])
    def test_experts_run_on_routed_rows_only(
        self, capacity_factor, monkeypatch
    ):
        # Sparse dispatch: the expert matmuls see an [E, C, d] buffer with
        # C = the capacity (E * C ~ k * N), never all N rows per expert.
        n, e, k = 24, 8, 2
        layer = _layer(8, 16, e, top_k=k, capacity_factor=capacity_factor)
        _set_random(layer, 17)
        x = np.random.default_rng(18).normal(size=(n, 8)).astype("float32")
        shapes = []
        matmul = keras.ops.matmul

        def recording_matmul(a, b):
            shapes.append(tuple(a.shape))
            return matmul(a, b)

        monkeypatch.setattr(keras.ops, "matmul", recording_matmul)
        layer(x, training=False)
        monkeypatch.undo()
        index = np.asarray(layer.route(x, training=False).expert_index)
        if capacity_factor is None:
            capacity = np.bincount(index.ravel(), minlength=e).max()
            assert capacity < n
        else:
            capacity = math.ceil(capacity_factor * k * n / e)  # 6
        assert shapes == [(n, 8), (e, capacity, 8), (e, capacity, 16)]

    def test_padding_rows_are_excluded(self):
        layer = _layer(6, 8, 5, top_k=2, loss_coef=1.0)
        _set_random(layer, 6)
        x = np.random.default_rng(7).normal(size=(2, 6, 6)).astype("float32")
        mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]], bool)
        y = np.asarray(layer(x, training=False, padding_mask=mask))
        masked_loss = float(layer.losses[0])
        np.testing.assert_array_equal(y[~mask], 0.0)
        ref, gates = _dense_reference(
            x[mask],
            *(np.array(w) for w in (layer.w_gate, layer.w_0, layer.w_1)),
            k=2,
        )
        np.testing.assert_allclose(y[mask], ref, atol=1e-5)
        # The loss is that of the 7 real rows alone.
        load = (gates > 0).sum(0)
        expected = _cv2(gates.sum(0)) + _cv2(load)
        np.testing.assert_allclose(masked_loss, expected, rtol=1e-5)
        assert float(layer.assignment_count) == 14.0
        layer(x[mask], training=False)
        np.testing.assert_allclose(float(layer.losses[0]), masked_loss)

    def test_noise_only_in_training(self):
        layer = _layer(6, 8, 5, top_k=2, seed=11)
        _set_random(layer, 8, gate_scale=0.3)
        x = np.random.default_rng(9).normal(size=(16, 6)).astype("float32")
        clean = _layer(6, 8, 5, top_k=2, use_noise=False)
        for name in ("w_gate", "w_0", "w_1"):
            getattr(clean, name).assign(getattr(layer, name))
        y_eval = np.asarray(layer(x, training=False))
        np.testing.assert_array_equal(y_eval, np.asarray(layer(x)))
        np.testing.assert_allclose(
            y_eval, np.asarray(clean(x, training=False)), atol=1e-6
        )
        train_a = layer.route(x, training=True)
        train_b = layer.route(x, training=True)
        assert not np.array_equal(train_a.expert_gate, train_b.expert_gate)
        # Smooth load in training: not the integer/half step values.
        load = np.asarray(train_a.load)
        assert not np.allclose(load * 2, np.round(load * 2))
        np.testing.assert_allclose(load.sum(), 16 * 2, rtol=0.35)

    @pytest.mark.parametrize("capacity_factor", [None, 1.25])
    def test_layer_test(self, capacity_factor):
        x = np.random.default_rng(10).normal(size=(2, 5, 8)).astype("float32")
        testing.run_layer_test(
            moe.SparseMoE,
            {
                "hidden_dim": 8,
                "intermediate_dim": 16,
                "num_experts": 4,
                "top_k": 2,
                "capacity_factor": capacity_factor,
                "gate_initializer": "glorot_uniform",
                "seed": 1,
            },
            x,
            expected_output_shape=(2, 5, 8),
            expected_num_trainable_weights=4,
            call_kwargs={"padding_mask": np.arange(5)[None, :] < [[5], [3]]},
        )

    def test_tf_function_with_dynamic_shapes(self):
        layer = _layer(8, 16, 6, top_k=2, capacity_factor=1.0)
        _set_random(layer, 12)
        fn = tf.function(
            lambda x: layer(x, training=False),
            input_signature=[tf.TensorSpec([None, None, 8], tf.float32)],
        )
        for length in (3, 7):
            x = np.random.default_rng(length).normal(size=(2, length, 8))
            x = x.astype("float32")
            y_graph = np.asarray(fn(x))
            dropped = float(layer.dropped_count)
            np.testing.assert_allclose(
                y_graph, np.asarray(layer(x, training=False)), atol=1e-5
            )
            assert float(layer.dropped_count) == dropped

    def test_training_step_changes_gates_and_experts(self):
        # Zero-initialised gates (T2T, Shazeer): gradients still reach them
        # through the gates in the output and the load-balancing loss.
        layer = _layer(8, 16, 6, top_k=2, seed=3, capacity_factor=2.0)
        x = np.random.default_rng(13).normal(size=(12, 8)).astype("float32")
        before = [np.array(w) for w in layer.trainable_weights]
        optimizer = keras.optimizers.SGD(0.1)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                y = layer(x, training=True)
                loss = tf.reduce_mean(tf.square(y - 1.0)) + tf.add_n(
                    layer.losses
                )
            grads = tape.gradient(loss, layer.trainable_weights)
            optimizer.apply_gradients(zip(grads, layer.trainable_weights))

        step()
        names = [w.name for w in layer.trainable_weights]
        assert names == ["w_gate", "w_noise", "w_0", "w_1"]
        for name, b, w in zip(names, before, layer.trainable_weights):
            assert not np.array_equal(b, np.array(w)), name

    def test_mixed_precision_gates_in_float32(self):
        policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            layer = _layer(8, 16, 6, top_k=2)
        finally:
            keras.config.set_dtype_policy(policy)
        _set_random(layer, 14)
        x = np.random.default_rng(15).normal(size=(10, 8)).astype("float32")
        y = layer(x, training=False)
        assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
        assert layer.w_gate.dtype == "float32"
        ref, _ = _dense_reference(
            x, *(np.array(w) for w in (layer.w_gate, layer.w_0, layer.w_1)), k=2
        )
        np.testing.assert_allclose(np.asarray(y, "float32"), ref, atol=0.1)

    def test_fit_adds_the_load_balancing_loss(self):
        inputs = keras.Input((5, 8))
        hidden = moe.SparseMoE(
            8, 16, 4, top_k=2, loss_coef=10.0, gate_initializer="ones"
        )(inputs)
        model = keras.Model(inputs, hidden)
        model.compile(keras.optimizers.SGD(0.0), "mse")
        x = np.random.default_rng(16).normal(size=(2, 5, 8)).astype("float32")
        # Zero targets and outputs scaled to ~0: the loss is the MoE loss.
        model.layers[1].w_1.assign(np.zeros((4, 16, 8), "float32"))
        loss = model.evaluate(x, np.zeros((2, 5, 8)), verbose=0)
        # All logits equal: experts 0, 1 take every token; cv2 = 4/2 - 1.
        np.testing.assert_allclose(loss, 10.0 * 1.0, rtol=1e-5)

    @pytest.mark.parametrize(
        "initializer", ["glorot_uniform", keras.initializers.GlorotUniform(5)]
    )
    def test_initializers_per_expert_and_per_weight(self, initializer):
        layer = _layer(
            16,
            16,
            8,
            top_k=2,
            kernel_initializer=initializer,
            gate_initializer=initializer,
        )
        w_0, w_1 = np.array(layer.w_0), np.array(layer.w_1)
        limit = math.sqrt(6.0 / (16 + 16))  # fans of one [d, h] expert
        for w in (w_0, w_1):
            assert limit >= np.abs(w).max() > 0.9 * limit
        # Same shapes, same initializer: still different values.
        assert np.abs(w_0 - w_1).max() > 0.1
        assert np.abs(np.array(layer.w_gate) - layer.w_noise).max() > 0.1
        clone = moe.SparseMoE.from_config(layer.get_config())
        clone.build((None, 16))
        if not isinstance(initializer, str):  # int seed: reproducible
            np.testing.assert_array_equal(clone.w_1, w_1)


def _parity_cases():
    """Every MoE of every T2T v1.9 dump (held-out seeds are picked up too).

    Returns:
      (file, tap tag, variable scope, input tap name) tuples.
    """
    if not os.path.isdir(PARITY_DIR):
        return []
    cases = []
    for name in sorted(os.listdir(PARITY_DIR)):
        if not (name.startswith("t2t_v19_") and name.endswith(".npz")):
            continue
        cases += [
            (name, "enc0", "enc_layer_0/moe", "encoder_input_timing"),
            (name, "enc1", "enc_layer_1/moe", "enc0_residual_out"),
        ]
        if "text" in name:
            cases.append(
                (name, "dec0", "dec_layer_0/ffn/moe", "dec0_attn_residual_out")
            )
    return cases


@pytest.mark.parametrize(
    "case", _parity_cases(), ids=lambda c: f"{c[0][8:-4]}-{c[1]}"
)
def test_matches_t2t_v19_dump(case):
    name, tag, scope, input_tap = case
    dump = np.load(os.path.join(PARITY_DIR, name))
    # Tap names are "tap/NN_name"; NN is the call order.
    taps = {k[7:]: dump[k] for k in dump.files if k.startswith("tap/")}
    x = taps[input_tap]
    d = x.shape[-1]
    x = x.reshape(-1, d)  # [N, d], padding rows included as in T2T
    prefix = f"var/multi_model/{scope}/"
    hidden = dump[prefix + "parallel_0/w_0"].shape[1]
    # The encoder taps hold the loss with coefficient 1.0, dec0 with 0.01.
    layer = _layer(
        d,
        hidden,
        30,
        top_k=2,
        loss_coef=1e-2 if tag == "dec0" else 1.0,
        expert_output_scale=(hidden / d) ** -0.5,
    )
    layer.w_gate.assign(dump[prefix + "noisy_top_k_gating/w_gate"])
    layer.w_noise.assign(dump[prefix + "noisy_top_k_gating/w_noise"])
    for w, var in ((layer.w_0, "w_0"), (layer.w_1, "w_1")):
        w.assign(
            np.stack([dump[f"{prefix}parallel_{e}/{var}"] for e in range(30)])
        )
    y = layer(x, training=False)
    out_tap = "dec0_ffn_moe_out" if tag == "dec0" else f"{tag}_moe_out"
    np.testing.assert_allclose(
        np.asarray(y), taps[out_tap].reshape(-1, d), atol=1e-5
    )
    routing = layer.route(x, training=False)
    gates = np.zeros((x.shape[0], 30), np.float32)
    np.put_along_axis(
        gates, np.asarray(routing.expert_index), routing.expert_gate, 1
    )
    np.testing.assert_allclose(gates, taps[f"{tag}_moe_gates"], atol=1e-5)
    np.testing.assert_allclose(routing.load, taps[f"{tag}_moe_load"], atol=1e-5)
    np.testing.assert_allclose(
        float(layer.losses[0]), taps[f"{tag}_moe_loss"], atol=1e-5
    )
