"""Import of T2T v1.9 weights and numerical parity with the original code.

The reference dumps (shared/reference/t2t_v19_parity) were made by the
original T2T v1.9.0 MultiModel; the imported model must reproduce their
logits and losses to 1e-4 (we get ~1e-6) and every intermediate tensor.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.t2t_compat import checkpoint_import as t2t_import
from t2t_multimodel.t2t_compat import parity as t2t_parity
from tests import testing

REFERENCE = testing.PARITY_DIR
DUMPS = {
    # file: (trainable parameters, d, vocab, classes) from the README.
    "t2t_v19_text_seed1.npz": (566_496, 32, 256, None),
    "t2t_v19_text_d64_seed1.npz": (2_193_856, 64, 256, None),
    "t2t_v19_image_seed1.npz": (273_642, 32, None, 10),
}
TEXT = "t2t_v19_text_seed1.npz"
IMAGE = "t2t_v19_image_seed1.npz"

pytestmark = pytest.mark.skipif(
    not os.path.isdir(REFERENCE), reason="no T2T parity dumps"
)


def _path(name: str) -> str:
    return os.path.join(REFERENCE, name)


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_dump_parity(name):
    params, d, vocab, classes = DUMPS[name]
    variables = t2t_import.read_t2t_variables(_path(name))
    assert sum(v.size for v in variables.values()) == params
    sizes = t2t_import.infer_sizes(variables)
    assert (sizes.hidden_dim, sizes.vocab_size, sizes.num_classes) == (
        d,
        vocab,
        classes,
    )
    assert (sizes.num_encoder_layers, sizes.num_experts) == (2, 30)
    assert sizes.filter_size == 2 * d
    model = t2t_import.import_t2t_checkpoint(variables)
    diffs, unmatched = t2t_parity.compare_with_dump(model, np.load(_path(name)))
    for key in t2t_parity.OUTPUT_KEYS:
        assert diffs[key] <= 1e-4, (key, diffs[key])
    # Every tap but the raw image is recomputed, and matches as well.
    assert unmatched == ([] if vocab else ["tap/00_inputs_bottom"])
    worst_tap = max(v for k, v in diffs.items() if k.startswith("tap/"))
    assert worst_tap <= 1e-4, diffs
    n_taps = sum(k.startswith("tap/") for k in diffs)
    assert n_taps == (31 if vocab else 15)


def test_text_sizes():
    sizes = t2t_import.infer_sizes(t2t_import.read_t2t_variables(_path(TEXT)))
    assert sizes.num_decoder_layers == 2
    assert sizes.moe_layers == (0,)
    assert sizes.moe_hidden_size == 128
    assert sizes.decoder_filter_size == 64
    assert (sizes.kernel_size, sizes.large_kernel_size) == (3, 15)
    assert sizes.num_target_spaces == 32


def _remove_and_add(variables, remove=(), add=None):
    out = {k: v for k, v in variables.items() if k not in remove}
    out.update(add or {})
    return out


def test_missing_and_extra_variables_are_listed():
    variables = t2t_import.read_t2t_variables(_path(TEXT))
    gone = [
        "enc_layer_1/moe/parallel_7/w_1",
        "dec_layer_0/attention/encdec_attention/k/kernel",
    ]
    extra = {"enc_layer_0/conv_res_step/extra/kernel": np.zeros([2, 2])}
    broken = _remove_and_add(variables, gone, extra)
    model = t2t_import.build_t2t_v19_model(t2t_import.infer_sizes(variables))
    before = [np.array(w) for w in model.weights]
    with pytest.raises(t2t_import.T2TImportError) as info:
        t2t_import.assign_t2t_weights(model, broken)
    assert info.value.missing == sorted(gone)
    assert info.value.unexpected == sorted(extra)
    for name in [*gone, *extra]:
        assert name in str(info.value)
    # All or nothing: no weight was assigned.
    for b, w in zip(before, model.weights):
        np.testing.assert_array_equal(b, np.array(w))


def test_shape_mismatch_is_listed():
    variables = t2t_import.read_t2t_variables(_path(TEXT))
    name = "dec_layer_1/ffn/conv_hidden_relu/conv1_single/kernel"
    bad = dict(variables)
    bad[name] = variables[name].reshape(32, 64)  # T2T's is [1, 1, 32, 64]
    model = t2t_import.build_t2t_v19_model(t2t_import.infer_sizes(variables))
    with pytest.raises(t2t_import.T2TImportError) as info:
        t2t_import.assign_t2t_weights(model, bad)
    assert info.value.mismatched == [f"{name}: (32, 64) vs (1, 1, 32, 64)"]


def _logits(model, dump):
    feats, source, target = t2t_parity.dump_features(dump)
    out = model(
        feats, input_modality=source, target_modality=target, training=False
    )
    return np.asarray(out["logits"])


def test_round_trip_save_load(tmp_path):
    dump = np.load(_path(TEXT))
    model = t2t_import.import_t2t_checkpoint(_path(TEXT))
    path = t2t_import.save_model(model, str(tmp_path))
    assert os.path.basename(path) == "model.ckpt-0"
    assert (tmp_path / "model_config.json").exists()
    restored = t2t_import.load_model(str(tmp_path))
    assert restored is not model
    np.testing.assert_array_equal(_logits(restored, dump), _logits(model, dump))
    np.testing.assert_allclose(
        _logits(restored, dump).reshape(dump["out/logits"].shape),
        dump["out/logits"],
        atol=1e-4,
    )


def test_reads_tf1_checkpoint(tmp_path):
    # A TF1 name-based checkpoint as T2T wrote it: the model variables, the
    # global step and Adam slots (the importer must skip the latter).
    variables = t2t_import.read_t2t_variables(_path(TEXT))
    graph = tf.Graph()
    with graph.as_default():
        tf_vars = [
            tf.compat.v1.Variable(value, name=f"multi_model/{name}")
            for name, value in variables.items()
        ]
        first = next(iter(variables))
        tf_vars += [
            tf.compat.v1.Variable(
                np.ones_like(variables[first]), name=f"multi_model/{first}/Adam"
            ),
            tf.compat.v1.Variable(0, dtype=tf.int64, name="global_step"),
        ]
        saver = tf.compat.v1.train.Saver(tf_vars)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(session, str(tmp_path / "model.ckpt"), 250)
    read = t2t_import.read_t2t_variables(prefix)
    assert sorted(read) == sorted(variables)
    model = t2t_import.import_t2t_checkpoint(str(tmp_path))  # the directory
    dump = np.load(_path(TEXT))
    logits = _logits(model, dump).reshape(dump["out/logits"].shape)
    np.testing.assert_allclose(logits, dump["out/logits"], atol=1e-4)


def test_cli_verify_fails_on_a_wrong_logit(tmp_path):
    # A copy of the image dump with one logit moved by 1e-3: the import
    # still works, the check prints the differences and exits 1.
    dump = dict(np.load(_path(IMAGE)))
    dump["out/logits"] = dump["out/logits"].copy()
    dump["out/logits"].flat[3] += 1e-3
    tampered = str(tmp_path / "tampered.npz")
    np.savez(tampered, **dump)
    model_dir = tmp_path / "model"
    root = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir)
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(root, "bin", "t2t-mm-import"),
            f"--t2t_checkpoint={tampered}",
            f"--model_dir={model_dir}",
            f"--verify_npz={tampered}",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL: largest logit/loss difference 0.001" in result.stdout
    assert "tap/15_body_output" in result.stdout
    assert (model_dir / "model.ckpt-0.index").exists()


def _held_out_dump(name: str, seed: int, path: str) -> None:
    """Writes a dump of the same format with new weights and inputs.

    Its outputs and taps come from this port; the README's independent
    NumPy forward then checks them (a held-out seed for the port).
    """
    rng = np.random.default_rng(seed)
    variables = {
        k: (v + rng.normal(0.0, 0.5 * v.std() + 1e-2, v.shape)).astype(v.dtype)
        for k, v in t2t_import.read_t2t_variables(_path(name)).items()
    }
    model = t2t_import.import_t2t_checkpoint(variables)
    dump = {f"var/multi_model/{k}": v for k, v in variables.items()}
    if name == IMAGE:
        dump["in/inputs"] = rng.integers(0, 256, [2, 16, 16, 3]) / 255.0
        dump["in/inputs"] = dump["in/inputs"].astype("float32")
        dump["in/targets"] = rng.integers(0, 10, [2, 1, 1, 1]).astype("int32")
        dump["out/logits"] = np.zeros([2, 1, 1, 1, 10], "float32")
    else:
        inputs = rng.integers(2, 256, [2, 9]).astype("int32")
        targets = rng.integers(2, 256, [2, 7]).astype("int32")
        inputs[:, -1], inputs[1, 5], inputs[1, 6:] = 1, 1, 0
        targets[:, -1], targets[1, 4], targets[1, 5:] = 1, 1, 0
        dump["in/inputs"] = inputs[:, :, None, None]
        dump["in/targets"] = targets[:, :, None, None]
    dump["in/target_space_id"] = np.int32(rng.integers(0, 32))
    got = t2t_parity.recompute(model, dump)
    for i, (key, value) in enumerate(sorted(got.items())):
        if key.startswith("tap/"):
            key = f"tap/{i:02d}_{key[4:]}"
        dump[key] = value.astype("float32")
    np.savez(path, **dump)


@pytest.mark.parametrize("name", [TEXT, IMAGE])
def test_held_out_seed_matches_numpy_reference(name, tmp_path):
    path = str(tmp_path / "held_out.npz")
    _held_out_dump(name, 1234, path)
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REFERENCE, "np_reference_forward.py"),
            path,
        ],
        capture_output=True,
        text=True,
    )
    out = result.stdout
    assert result.returncode == 0 and "MISMATCH" not in out, out
    # The NumPy forward computes every tap but these two.
    unchecked = re.findall(r"no numpy value for \d+_(\w+)", out)
    assert set(unchecked) <= {"body_output", "target_space_emb"}, out
    taps = float(re.search(r"taps max abs diff (\S+)", out).group(1))
    logits = float(re.search(r"logits max abs diff (\S+)", out).group(1))
    assert taps <= 1e-4 and logits <= 1e-4, out
    losses = re.findall(r"np (\S+) t2t (\S+)", out)
    assert len(losses) == 3
    for ours, ref in losses:
        assert abs(float(ours) - float(ref)) <= 1e-4, out


def test_cached_decoding_matches_the_dump():
    # Step-by-step decoding (self-attention caches, memory keys/values
    # computed once) gives the dump's teacher-forced logits (eager here; a
    # tf.while_loop version matched to 1.3e-6 by hand).
    dump = np.load(_path(TEXT))
    model = t2t_import.import_t2t_checkpoint(_path(TEXT))
    feats, _, _ = t2t_parity.dump_features(dump)
    targets = feats["targets"]
    length = int(targets.shape[1])
    encoded = model.encode(feats, input_modality="symbol")

    def decode(encoded):
        state = model.initial_decode_state(encoded, 2, length)
        steps = []
        for i in range(length):
            previous = targets[:, max(i - 1, 0)]
            logits, state = model.decode_step(
                previous,
                tf.constant(i),
                state,
                target_space_id=feats["target_space_id"],
                target_modality="symbol",
            )
            steps.append(logits)
        return tf.stack(steps, axis=1)  # [B, T, V]

    logits = np.asarray(decode(encoded)).reshape(dump["out/logits"].shape)
    np.testing.assert_allclose(logits, dump["out/logits"], atol=1e-4)


def test_sharded_embeddings_are_joined():
    # 2017 T2T checkpoints split each V x d symbol matrix into row shards
    # (`weights_0..n-1`, the first ones one row longer).
    variables = t2t_import.read_t2t_variables(_path(TEXT))
    scope = "symbol_modality_256_32/input_emb"
    full = variables.pop(f"{scope}/weights_0")
    for i, rows in enumerate(np.split(full, [86, 171])):
        variables[f"{scope}/weights_{i}"] = rows
    model = t2t_import.import_t2t_checkpoint(variables)
    np.testing.assert_array_equal(model.modalities["symbol"].input_emb, full)
    dump = np.load(_path(TEXT))
    logits = _logits(model, dump).reshape(dump["out/logits"].shape)
    np.testing.assert_allclose(logits, dump["out/logits"], atol=1e-4)
