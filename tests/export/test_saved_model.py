"""Tests of the SavedModel export: reloaded in a fresh process, served raw.

The export is reloaded by a subprocess that imports only tensorflow and
tensorflow_text; its answers must equal the in-process `ProblemDecoder`'s on
the same raw requests, and bad requests must fail with the documented
errors.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from t2t_multimodel.decoding import decoder
from t2t_multimodel.export import saved_model
from tests.decoding import tiny

CLASS_NAMES = ("zero", "one", "two", "three", "four")

# Runs in a fresh interpreter: plain TensorFlow (+ tensorflow_text ops).
_SERVE = r"""
import base64, json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (SentencePiece ops)

request = json.load(open(sys.argv[1]))
loaded = tf.saved_model.load(request["export_dir"])

def call(name, items):
    fn = loaded.signatures[name]
    (key,) = fn.structured_input_signature[1]
    raw = tf.constant([base64.b64decode(x) for x in items])
    return key, fn(**{key: raw})

def plain(value):
    value = value.numpy()
    if value.dtype == object:
        return [[b.decode() for b in row] if value.ndim == 2 else row.decode()
                for row in value]
    return value.tolist()

result = {"answers": {}, "keys": {}, "errors": {}}
for name, items in request["inputs"].items():
    key, out = call(name, items)
    result["keys"][name] = key
    result["answers"][name] = {k: plain(v) for k, v in out.items()}
for label, (name, items) in request["bad"].items():
    try:
        call(name, items)
        result["errors"][label] = None
    except tf.errors.InvalidArgumentError as e:
        result["errors"][label] = e.message
result["modules"] = sorted(
    m for m in sys.modules if m.split(".")[0] in ("t2t_multimodel", "problems")
)
json.dump(result, open(sys.argv[2], "w"))
"""


def _b64(items):
    return [
        base64.b64encode(x if isinstance(x, bytes) else x.encode()).decode()
        for x in items
    ]


def _serve_fresh(tmp_path, export_dir, inputs, bad):
    request = {
        "export_dir": export_dir,
        "inputs": {name: _b64(items) for name, items in inputs.items()},
        "bad": {k: (name, _b64(items)) for k, (name, items) in bad.items()},
    }
    with open(tmp_path / "request.json", "w") as f:
        json.dump(request, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-c", _SERVE, "request.json", "answers.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "answers.json") as f:
        return json.load(f)


def _check_same(fresh: dict, local: dict) -> None:
    assert sorted(fresh) == sorted(local)
    for key, value in local.items():
        if value.dtype.kind in "iUO":
            np.testing.assert_array_equal(np.array(fresh[key]), value, key)
        else:
            np.testing.assert_allclose(fresh[key], value, atol=1e-5)


def _export_and_compare(tmp_path, problems, config, bad):
    vocab = tiny.build_vocabulary(str(tmp_path))
    model = tiny.build_model()
    export_dir = str(tmp_path / "export")
    names = {tiny.IMAGE_PROBLEM.name: CLASS_NAMES}
    saved_model.export(
        model=model,
        problems=problems,
        vocabulary=vocab,
        export_dir=export_dir,
        class_names=names,
        **config,
    )
    # Nothing but the export next to it: the temporary directory is gone.
    assert sorted(os.listdir(tmp_path)) == ["export", tiny.VOCAB_FILE]
    inputs = {p.name: tiny.raw_inputs(p) for p in problems}
    fresh = _serve_fresh(tmp_path, export_dir, inputs, bad)
    assert fresh["modules"] == []
    decode_config = decoder.DecodeConfig(**config)
    for p in problems:
        local = decoder.ProblemDecoder(
            model, p, vocab, decode_config, names.get(p.name)
        ).decode(inputs[p.name])
        _check_same(fresh["answers"][p.name], local)
        assert (
            fresh["keys"][p.name] == decoder.INPUT_NAMES[decoder.input_kind(p)]
        )
    return export_dir, fresh


@pytest.mark.slow  # ~40-80 s on 2 shared cores: tracing, a fresh TF.
def test_text_and_classes_fresh_process(tmp_path):
    bad = {
        "empty_text": (tiny.TEXT_PROBLEM.name, ["fine", ""]),
        "not_an_image": (tiny.IMAGE_PROBLEM.name, [tiny.png(0), b"<html>"]),
    }
    _, fresh = _export_and_compare(
        tmp_path,
        [tiny.TEXT_PROBLEM, tiny.IMAGE_PROBLEM],
        {"beam_size": 1, "max_length": 4, "top_k": 3},
        bad,
    )
    assert set(fresh["answers"][tiny.IMAGE_PROBLEM.name]["classes"]) <= set(
        CLASS_NAMES
    )
    errors = fresh["errors"]
    assert re.search(
        r"inputs at batch positions.*\[1\].*are empty",
        errors["empty_text"],
        re.S,
    )
    assert re.search(
        r"image_bytes at batch positions.*\[1\].*not a JPEG, PNG, BMP or GIF",
        errors["not_an_image"],
        re.S,
    )


@pytest.mark.slow
def test_all_kinds_beam_search_and_saved_model_cli(tmp_path):
    bad = {
        "empty_image": (tiny.CAPTION_PROBLEM.name, [b""]),
        "not_a_wav": (tiny.SPEECH_PROBLEM.name, [tiny.png(0)]),
        "empty_wav": (tiny.SPEECH_PROBLEM.name, [tiny.wav(0, 0.0)]),
    }
    export_dir, fresh = _export_and_compare(
        tmp_path,
        list(tiny.PROBLEMS),
        {"beam_size": 2, "alpha": 0.6, "max_length": 5},
        bad,
    )
    assert "not a JPEG" in fresh["errors"]["empty_image"]
    assert "not RIFF/WAVE" in fresh["errors"]["not_a_wav"]
    assert "0 samples" in fresh["errors"]["empty_wav"]
    # The standard CLI; plain `saved_model_cli` cannot register the
    # SentencePiece ops, so its main runs after `import tensorflow_text`.
    cli = (
        "import sys, tensorflow_text; "
        "from tensorflow.python.tools import saved_model_cli; "
        "sys.argv[0] = 'saved_model_cli'; saved_model_cli.main()"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            cli,
            "run",
            "--dir",
            export_dir,
            "--tag_set",
            "serve",
            "--signature_def",
            tiny.TEXT_PROBLEM.name,
            "--input_exprs",
            "inputs=[b'the cat sat', b'where']",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = fresh["answers"][tiny.TEXT_PROBLEM.name]["outputs"][:1]
    assert "Result for output key outputs" in done.stdout
    assert repr(expected[0].encode())[1:] in done.stdout


def test_existing_export_dir_is_kept(tmp_path):
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "keep").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        saved_model.export(
            model=None,
            problems=[tiny.IMAGE_PROBLEM],
            vocabulary=None,
            export_dir=str(export_dir),
        )
    assert (export_dir / "keep").read_text() == "x"
