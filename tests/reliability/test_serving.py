"""Serving reliability on an exported tiny MultiModel's signatures.

Bad requests (empty strings, non-image bytes, non-WAV bytes, unsupported WAV
encodings) fail as `ModelInputError` with a one-line message naming the
input and batch position, and the model keeps answering afterwards;
over-long inputs are truncated (text to `max_input_length - 1` ids, audio to
`max_audio_seconds`), not refused; a batch of 64 mixed-length requests per
signature is answered. The 1,000-request memory check is
benchmarks/serving_load.py (a 100-request variant runs here). Through the
HTTP application, a 1,000-instance request and a PNG that decodes to
10,000 x 10,000 pixels are refused at once (issue #20), and the export and
its vocabulary are readable by others under umask 022.
"""

from __future__ import annotations

import base64
import os
import time

import numpy as np
import pytest
from starlette import testclient

from t2t_multimodel.serving import app as app_lib
from t2t_multimodel.serving import served_model
from tests import testing
from tests.decoding import tiny
from tests.reliability import serving_fixture
from tests.serving import tiny_export

PREDICT = "/v1/models/multimodel:predict"
INPUTS = {
    "tiny_translate": "inputs",
    "tiny_image": "image_bytes",
    "tiny_caption": "image_bytes",
    "tiny_speech": "audio_bytes",
}


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("export"))
    with testing.umask(0o022):
        return serving_fixture.export_tiny(directory)


@pytest.fixture(scope="module")
def served(export_dir):
    return served_model.ServedModel(export_dir)


@pytest.fixture(scope="module")
def client(served):
    app = app_lib.create_app(served, batch_timeout_ms=2)
    with testclient.TestClient(app, base_url="http://localhost") as client:
        yield client


def test_export_and_vocabulary_get_umask_modes(export_dir):
    # Were 0700 directories and 0600 vocabulary (mkdtemp/mkstemp): a
    # tensorflow_model_server container or another user could not read them.
    modes = testing.tree_modes(export_dir)
    dirs = {
        path for path in modes if os.path.isdir(os.path.join(export_dir, path))
    }
    assert {modes[d] for d in dirs} == {0o755}
    assert {m for p, m in modes.items() if p not in dirs} == {0o644}
    assert "variables" in dirs and "saved_model.pb" in modes
    vocab = os.path.join(os.path.dirname(export_dir), tiny.VOCAB_FILE)
    assert testing.tree_modes(vocab) == {".": 0o644}
    leftovers = [
        name
        for name in os.listdir(os.path.dirname(export_dir))
        if name.startswith(".")
    ]
    assert leftovers == []


def _answers_after(client) -> None:
    good = {"signature_name": "tiny_translate", "instances": ["the cat"]}
    response = client.post(PREDICT, json=good)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1


def test_thousand_instances_are_refused_at_once(client):
    # Before: one model call of 1,000 texts (3.9 s and +183 MiB on this
    # tiny model; over 120 s and +7.5 GB on the real one).
    texts = [" ".join(tiny.TEXTS)] * 1000
    start = time.perf_counter()
    response = client.post(
        PREDICT, json={"signature_name": "tiny_translate", "instances": texts}
    )
    assert time.perf_counter() - start < 5.0
    assert response.status_code == 400
    assert response.json() == {
        "error": "Request has 1000 instances, more than the limit of 64 per "
        "request (t2t-mm-serve --max_instances_per_request); split it into "
        "several requests"
    }
    _answers_after(client)


def test_huge_png_is_refused_before_decoding(client):
    # Before: 8.3 s and +1.6 GB of RSS to decode these 97 KB.
    png = tiny_export.blank_png_bytes(10_000, 10_000)
    before = _rss_mib()
    response = client.post(
        PREDICT,
        json={
            "signature_name": "tiny_image",
            "instances": [{"b64": base64.b64encode(png).decode()}],
        },
    )
    assert _rss_mib() - before < 64
    assert response.status_code == 400
    assert response.json() == {
        "error": "input 'image_bytes', instance 0: the image is 10000 x "
        "10000 = 100,000,000 pixels, more than the limit of 16,777,216 "
        "(t2t-mm-serve --max_image_pixels); scale it down before sending it"
    }
    _answers_after(client)


def _run(served, name, values):
    array = np.array(values, dtype=object)
    return served.run(name, {INPUTS[name]: array})


def _valid(name, i):
    problem = {p.name: p for p in tiny.PROBLEMS}[name]
    options = tiny.raw_inputs(problem)
    return options[i % len(options)]


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_empty_request_names_input_and_position(served, name):
    with pytest.raises(served_model.ModelInputError) as info:
        _run(served, name, [_valid(name, 0), b""])
    message = str(info.value)
    assert "\n" not in message
    assert (
        f"Bad request: {INPUTS[name]} at batch positions 1 are empty" in message
    )
    # The model still answers the next, valid request.
    assert len(next(iter(_run(served, name, [_valid(name, 0)]).values()))) == 1


@pytest.mark.parametrize("name", ["tiny_image", "tiny_caption"])
def test_non_image_bytes(served, name):
    with pytest.raises(served_model.ModelInputError) as info:
        _run(served, name, [b"GIF89a but no image", b"%PDF-1.4 text", b"x"])
    message = str(info.value)
    # Position 0 has a GIF magic, so TF's own decoder rejects it; the first
    # check names the PDF and the junk byte.
    assert "not a JPEG, PNG, BMP or GIF image" in message
    assert "at batch positions 1 2 are empty or not" in message


def test_non_wav_bytes(served):
    with pytest.raises(served_model.ModelInputError) as info:
        _run(served, "tiny_speech", [tiny.png(0), b"RIFF....AVI "])
    assert str(info.value) == (
        "Bad request: audio_bytes at batch positions 0 1 are empty or not "
        "RIFF/WAVE files"
    )


@pytest.mark.parametrize("encoding", ["8-bit", "24-bit", "float"])
def test_unsupported_wav_encodings(served, encoding):
    data = serving_fixture.bad_wavs()[encoding]
    with pytest.raises(served_model.ModelInputError) as info:
        _run(served, "tiny_speech", [data])
    message = str(info.value)
    assert "\n" not in message
    assert "WAV" in message or "wav" in message.lower()


def test_over_long_text_is_truncated(served):
    long_text = " ".join(["the cat sat on the mat"] * 2000)  # ~12k words
    short = " ".join(long_text.split()[:40])
    out = _run(served, "tiny_translate", [long_text, short])
    # Both keep the same first MAX_INPUT_LENGTH - 1 ids, so the same answer.
    assert out["outputs"][0] == out["outputs"][1]
    assert out["scores"][0] == pytest.approx(out["scores"][1], abs=1e-5)


def test_over_long_audio_is_truncated(served):
    # 5 minutes of audio: truncated to 60 s (the default max_audio_seconds)
    # before the spectrogram; its answer equals that of its first 60 s.
    long_wav = tiny.wav(0, 300.0)
    first_minute = tiny.wav(0, 300.0)[: 44 + 60 * 16000 * 2]
    header = bytearray(first_minute[:44])
    data_size = 60 * 16000 * 2
    header[40:44] = data_size.to_bytes(4, "little")
    header[4:8] = (36 + data_size).to_bytes(4, "little")
    first_minute = bytes(header) + first_minute[44:]
    out = _run(served, "tiny_speech", [long_wav, first_minute])
    assert out["outputs"][0] == out["outputs"][1]
    assert out["scores"][0] == pytest.approx(out["scores"][1], abs=1e-4)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_batch_of_64_mixed_length_requests(served, name):
    if name == "tiny_translate":
        rng = np.random.default_rng(0)
        words = " ".join(tiny.TEXTS).split()
        values = [
            " ".join(rng.choice(words, size=int(n)))
            for n in rng.integers(1, 60, size=64)
        ]
    elif name == "tiny_speech":
        values = [tiny.wav(i, 0.05 + 0.01 * i) for i in range(64)]
    else:
        values = [
            tiny.png(i, (5 + i, 3 + 2 * i), gray=i % 2 == 0) for i in range(64)
        ]
    out = _run(served, name, values)
    for key, value in out.items():
        assert value.shape[0] == 64, key
    if "scores" in out:
        assert np.all(np.isfinite(out["scores"]))


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_stream_of_requests_does_not_grow_memory(served):
    # The short variant of benchmarks/serving_load.py (1,000 requests).
    names = sorted(INPUTS)

    def send(i):
        name = names[i % len(names)]
        if name == "tiny_translate":
            value = " ".join(tiny.TEXTS[: 1 + i % 5])
        elif name == "tiny_speech":
            value = tiny.wav(i, 0.05 + 0.01 * (i % 10))
        else:
            value = tiny.png(i, (4 + i % 9, 3 + i % 7))
        _run(served, name, [value])

    for i in range(40):  # Warm-up: every signature traced and allocated.
        send(i)
    before = _rss_mib()
    for i in range(200):
        send(i)
    growth = _rss_mib() - before
    assert growth < 16.0, f"RSS grew {growth:.1f} MiB over 200 requests"
