"""Tests of t2t-mm-decoder and t2t-mm-exporter on a fake training run.

The run directory holds what t2t-mm-trainer writes (model_config.json, a
checkpoint, problems.json) plus the shared vocabulary, for a tiny random
model of two registered demo problems (text -> text and image -> class).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

import problems
from problems import text_features
from programs import decoder as decode_lib
from t2t_multimodel.decoding import decoder
from t2t_multimodel.models import build, encoder, io_mixer
from t2t_multimodel.models import decoder as decoder_layer
from tests.decoding import tiny

_BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin")
TEXT = "demo_translate_ende_ding"
IMAGE = "demo_image_fashion_mnist"


def _run(program: str, *args: str, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, os.path.join(_BIN, program), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )


def _user_error(done, *needles: str) -> None:
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, last


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A fake training run of TEXT and IMAGE (d = 16, random weights)."""
    model_dir = str(tmp_path_factory.mktemp("run"))
    specs = [
        problems.get_problem(n).features[k].modality
        for n in (TEXT, IMAGE)
        for k in ("inputs", "targets")
    ]
    keras.utils.set_random_seed(0)
    moe = {"num_experts": 4, "top_k": 2, "intermediate_dim": 16}
    model = build.build_model(
        modality_specs=specs,
        hidden_dim=16,
        encoder=encoder.Encoder(16, num_blocks=1, moe_position=1, **moe),
        mixer=io_mixer.IOMixer(16, num_heads=2, num_conv_blocks=1),
        decoder=decoder_layer.Decoder(
            16, num_blocks=1, moe_position=1, num_heads=2, **moe
        ),
        modality_kwargs={
            "image": {"entry_filters": (4, 8), "res_filters": (8,)}
        },
    )
    with open(os.path.join(model_dir, "model_config.json"), "w") as f:
        json.dump(keras.saving.serialize_keras_object(model), f)
    with open(os.path.join(model_dir, "problems.json"), "w") as f:
        json.dump({"problems": [TEXT, IMAGE]}, f)
    tf.train.Checkpoint(model=model).save(os.path.join(model_dir, "model.ckpt"))
    vocab = tiny.build_vocabulary(model_dir)
    os.replace(
        os.path.join(model_dir, tiny.VOCAB_FILE),
        os.path.join(model_dir, text_features.SHARED_VOCAB_FILE),
    )
    return model_dir, vocab


def test_help():
    for program in ("t2t-mm-decoder", "t2t-mm-exporter"):
        done = _run(program, "--help")
        # absl exits with status 1 after printing the help (by design).
        assert done.returncode in (0, 1), done.stderr
        assert "--model_dir" in done.stdout


@pytest.mark.slow  # Three fresh processes importing TensorFlow.
def test_user_errors_are_one_paragraph(run_dir, tmp_path):
    model_dir, _ = run_dir
    _user_error(
        _run("t2t-mm-decoder", f"--model_dir={tmp_path}", f"--problem={TEXT}"),
        "t2t-mm-decoder: error:",
        "model_config.json not found",
    )
    _user_error(
        _run("t2t-mm-decoder", f"--model_dir={model_dir}", "--problem=demo_tx"),
        "unknown problem 'demo_tx'",
    )
    _user_error(
        _run("t2t-mm-exporter", f"--model_dir={model_dir}", "--export_dir=/"),
        "t2t-mm-exporter: error:",
        "exists",
    )


@pytest.mark.slow
def test_decode_file_and_stdin(run_dir, tmp_path):
    model_dir, vocab = run_dir
    source = tmp_path / "in.txt"
    source.write_text("the cat sat\n\nwhere is the house\n")
    target = tmp_path / "out.txt"
    args = [f"--model_dir={model_dir}", f"--problem={TEXT}"]
    args += ["--beam_size=2", "--max_length=4"]
    done = _run(
        "t2t-mm-decoder",
        *args,
        f"--decode_from_file={source}",
        f"--decode_to_file={target}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    model, (problem,), vocab = decode_lib.load(model_dir, [TEXT], None)
    config = decoder.DecodeConfig(beam_size=2, max_length=4)
    expected = decoder.ProblemDecoder(model, problem, vocab, config).decode(
        ["the cat sat", "where is the house"]
    )["outputs"]
    assert target.read_text().splitlines() == list(expected)
    done = _run("t2t-mm-decoder", *args, stdin="the cat sat\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [expected[0]]


@pytest.mark.slow
def test_classify_image_paths_and_missing_file(run_dir, tmp_path):
    model_dir, _ = run_dir
    image = tmp_path / "shirt.png"
    image.write_bytes(tiny.png(3, (28, 28), gray=True))
    args = [f"--model_dir={model_dir}", f"--problem={IMAGE}"]
    done = _run("t2t-mm-decoder", *args, stdin=f"{image}\n{image}\n")
    assert done.returncode == 0, done.stderr[-2000:]
    answers = done.stdout.splitlines()
    assert len(answers) == 2 and answers[0] == answers[1]
    assert answers[0] in [str(i) for i in range(10)]
    # A bad request is reported and the next line answered; exit status 1.
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    lines = f"{tmp_path}/none.png\n{image}\n{bad}\n{image}\n"
    done = _run("t2t-mm-decoder", *args, stdin=lines)
    assert done.stdout.splitlines() == answers
    assert "cannot read image file" in done.stderr
    assert "image_bytes at batch positions" in done.stderr
    _user_error(done, "2 of 4 requests failed", "none.png")


@pytest.mark.slow
def test_exporter_writes_every_trained_problem(run_dir, tmp_path):
    model_dir, _ = run_dir
    export_dir = str(tmp_path / "export")
    done = _run(
        "t2t-mm-exporter",
        f"--model_dir={model_dir}",
        f"--export_dir={export_dir}",
        "--gin_bindings=BEAM_SIZE = 1",
        "--gin_bindings=MAX_LENGTH = 3",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import tensorflow_text  # noqa: F401  (the SentencePiece ops)

    loaded = tf.saved_model.load(export_dir)
    assert {TEXT, IMAGE} <= set(loaded.signatures)
    out = loaded.signatures[IMAGE](image_bytes=tf.constant([tiny.png(0)]))
    assert out["scores"].shape == (1, 5)
    out = loaded.signatures[TEXT](inputs=tf.constant(["the cat"]))
    assert out["outputs"].shape == (1,)
