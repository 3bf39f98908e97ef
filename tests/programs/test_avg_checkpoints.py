"""t2t-mm-avg-checkpoints on a tiny run: averaged, with its vocabulary.

The run is made as in tests/training/test_averaging.py: a tiny model's
checkpoints at steps 10, 20 and 30 with random weights and Adam slots; its
problems.json names a registered text problem, whose vocabulary file is in
the data_dir only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from programs import avg_checkpoints
from t2t_multimodel import atomic_write
from tests.training import fake_problems, test_averaging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PROGRAM = os.path.join(ROOT, "bin", "t2t-mm-avg-checkpoints")
VOCAB = "vocab.shared.8192.model"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, PROGRAM, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _tiny_run(model_dir: str) -> list:
    """Checkpoints at steps 10, 20, 30 of a tiny model; their weights."""
    model, opt = test_averaging._run([fake_problems.text_problem()])
    atomic_write.write_json(
        os.path.join(model_dir, "model_config.json"),
        keras.saving.serialize_keras_object(model),
    )
    saver = test_averaging._checkpointer(model_dir, model, opt)
    rng = np.random.default_rng(0)
    snapshots = []
    for step in test_averaging.STEPS:
        for v in model.trainable_variables + opt.m + opt.v:
            v.assign(rng.normal(size=v.shape).astype(np.float32))
        saver.checkpoint.step.assign(step)
        saver.save(step)
        snapshots.append(test_averaging._snapshot(model, opt))
    return snapshots


def test_averages_the_last_two_with_the_vocabulary(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("run"))
    snapshots = _tiny_run(model_dir)
    with open(os.path.join(model_dir, "problems.json"), "w") as f:
        json.dump({"problems": ["translate_ende_wmt8k"]}, f)
    data_dir = tmp_path_factory.mktemp("data")
    (data_dir / VOCAB).write_bytes(b"the vocabulary")
    out = tmp_path_factory.mktemp("avg") / "averaged"
    done = _run(
        f"--model_dir={model_dir}",
        "--num_last=2",
        f"--output_dir={out}",
        f"--data_dir={data_dir}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"into {out}/model.ckpt-30" in done.stdout
    assert (out / VOCAB).read_bytes() == b"the vocabulary"
    with open(out / "averaging.json") as f:
        record = json.load(f)
    assert record["checkpoints"] == ["model.ckpt-20", "model.ckpt-30"]
    assert VOCAB in record["copied"]
    assert tf.train.latest_checkpoint(str(out)).endswith("model.ckpt-30")
    # One weight: the mean of the last two checkpoints' values.
    reader = tf.train.load_checkpoint(str(out / "model.ckpt-30"))
    (weights20, _), (weights30, _) = snapshots[1], snapshots[2]
    (path, value20), *_ = sorted(weights20.items())
    keys = [
        k
        for k in reader.get_variable_to_shape_map()
        if k.startswith("model/") and "OPTIMIZER_SLOT" not in k
    ]
    averaged = [
        reader.get_tensor(k)
        for k in keys
        if reader.get_tensor(k).shape == value20.shape
        and np.allclose(reader.get_tensor(k), (value20 + weights30[path]) / 2)
    ]
    assert averaged, f"no checkpoint tensor is the mean of {path}"

    # Again into the same directory: refused, then replaced on --overwrite.
    again = _run(
        f"--model_dir={model_dir}", "--num_last=1", f"--output_dir={out}"
    )
    assert again.returncode == 1
    assert "Traceback" not in again.stderr
    assert "exists and is not an empty directory" in again.stderr
    done = _run(
        f"--model_dir={model_dir}",
        "--num_last=1",
        f"--output_dir={out}",
        "--overwrite",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "vocab.shared.8192.model is neither in" in done.stderr


def test_vocabulary_files(tmp_path):
    model_dir, data_dir = tmp_path / "m", tmp_path / "d"
    model_dir.mkdir()
    data_dir.mkdir()
    assert avg_checkpoints.vocabulary_files(str(model_dir), None) == ([], [])
    (model_dir / "problems.json").write_text(
        json.dumps({"problems": ["image_imagenet", "fake_unknown_problem"]})
    )
    assert avg_checkpoints.vocabulary_files(str(model_dir), None) == ([], [])
    (model_dir / "problems.json").write_text(
        json.dumps({"problems": ["parse_ptb_wsj8k", "caption_mscoco8k"]})
    )
    assert avg_checkpoints.vocabulary_files(str(model_dir), None) == (
        [],
        [VOCAB],
    )
    (model_dir / VOCAB).write_text("v")  # The trainer put it there.
    assert avg_checkpoints.vocabulary_files(str(model_dir), None) == ([], [])
    (data_dir / VOCAB).write_text("v")
    assert avg_checkpoints.vocabulary_files(str(model_dir), str(data_dir)) == (
        [str(data_dir / VOCAB)],
        [],
    )


def test_help():
    done = _run("--help")
    assert done.returncode in (0, 1)
    assert "--num_last" in done.stdout and "--output_dir" in done.stdout
