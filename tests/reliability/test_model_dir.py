"""Decoding and export on a model_dir without, or with a foreign, checkpoint.

A tiny trainer-format run (model_config.json + a weights-by-path checkpoint
of a d = 16 model) is written by hand; a second directory pairs that
checkpoint with the config of a d = 32 model. `restore_model` and the
decoder/exporter CLIs must say which weights differ, in one paragraph.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel import errors
from t2t_multimodel.decoding import decoder
from t2t_multimodel.training import checkpoints, loop
from tests.training import fake_problems

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PROBLEM = "demo_translate_ende_ding"


def _model(hidden_dim: int):
    keras.backend.clear_session()  # Fresh layer names: the checkpoint keys.
    specs = loop.modality_specs([fake_problems.text_problem()])
    model = fake_problems.tiny_model(
        modality_specs=specs, hidden_dim=hidden_dim
    )
    ones = np.ones((1, 3), "int64")
    mask = np.ones((1, 3), bool)
    model(
        {
            "inputs": ones,
            "inputs_mask": mask,
            "targets": ones,
            "targets_mask": mask,
            "target_space_id": np.ones((1,), "int32"),
        },
        input_modality="symbol",
        target_modality="symbol",
    )
    return model


def _write_run(directory: str, model, checkpoint: bool = True) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "model_config.json"), "w") as f:
        json.dump(keras.saving.serialize_keras_object(model), f)
    with open(os.path.join(directory, "problems.json"), "w") as f:
        json.dump({"problems": [PROBLEM]}, f)
    if checkpoint:
        tf.train.Checkpoint(model=checkpoints.weights_by_path(model)).save(
            os.path.join(directory, "model.ckpt")
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    keras.utils.set_random_seed(0)
    good = str(root / "good")
    _write_run(good, _model(16))
    foreign = str(root / "foreign")
    _write_run(foreign, _model(32), checkpoint=False)
    for name in os.listdir(good):
        if name.startswith("model.ckpt") or name == "checkpoint":
            shutil.copy(os.path.join(good, name), foreign)
    no_ckpt = str(root / "no_ckpt")
    _write_run(no_ckpt, _model(16), checkpoint=False)
    return {"good": good, "foreign": foreign, "no_ckpt": no_ckpt}


def test_restore_model_of_own_checkpoint(runs):
    model = decoder.restore_model(runs["good"])
    assert len(model.weights) > 0


def test_foreign_checkpoint_lists_shape_differences(runs):
    with pytest.raises(decoder.ModelDirError) as info:
        decoder.restore_model(runs["foreign"])
    message = str(info.value)
    assert "does not match" in message and "shapes differ: " in message
    # Sorted by path: the first is a decoder layer norm, 16 saved, 32 asked.
    assert (
        "decoder/attention_norm_0/beta [16] in the checkpoint, [32] in the "
        "model" in message
    )


def test_checkpoint_weight_shapes_unescapes_paths(runs):
    path = tf.train.latest_checkpoint(runs["good"])
    shapes = errors.checkpoint_weight_shapes(tf.train.list_variables(path))
    model = _model(16)
    expected = {
        k: tuple(w.shape)
        for k, w in checkpoints.weights_by_path(model).weights.items()
    }
    assert shapes == expected


def _cli(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", program), *args],
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_paragraph(done, prog: str) -> str:
    assert done.returncode == errors.EXIT_USER_ERROR, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = [
        line
        for line in done.stderr.splitlines()
        if line.startswith(f"{prog}: error: ")
    ]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def test_exporter_without_checkpoint(runs, tmp_path):
    done = _cli(
        "t2t-mm-exporter",
        f"--model_dir={runs['no_ckpt']}",
        f"--export_dir={tmp_path / 'export'}",
    )
    line = _one_paragraph(done, "t2t-mm-exporter")
    assert f"no checkpoint in {runs['no_ckpt']}" in line
    assert not (tmp_path / "export").exists()


def test_decoder_with_foreign_checkpoint(runs, tmp_path):
    # The request file is checked before the model is built: it must exist.
    (tmp_path / "in.txt").write_text("the cat sat\n")
    done = _cli(
        "t2t-mm-decoder",
        f"--model_dir={runs['foreign']}",
        f"--problem={PROBLEM}",
        f"--decode_from_file={tmp_path / 'in.txt'}",
    )
    line = _one_paragraph(done, "t2t-mm-decoder")
    assert "does not match" in line and "shapes differ" in line


def test_exporter_unknown_problem(runs, tmp_path):
    done = _cli(
        "t2t-mm-exporter",
        f"--model_dir={runs['good']}",
        f"--export_dir={tmp_path / 'export'}",
        "--problems=demo_translate_ende_dig",
    )
    line = _one_paragraph(done, "t2t-mm-exporter")
    assert "'demo_translate_ende_dig'" in line
    assert "demo_translate_ende_ding" in line


def test_decoder_unknown_problem(runs):
    done = _cli(
        "t2t-mm-decoder",
        f"--model_dir={runs['good']}",
        "--problem=demo_translate_ende_dig",
    )
    line = _one_paragraph(done, "t2t-mm-decoder")
    assert "'demo_translate_ende_dig'" in line
    assert "Did you mean: demo_translate_ende_ding" in line
