"""Tests of the per-request limits: header readers and the HTTP answers.

Each refused request gets a 400 JSON error naming the limit, the model is
not called for it (the batch scheduler's call count stays), and the server
answers the next normal request.
"""

from __future__ import annotations

import base64
import io
import struct

import pytest
from PIL import Image
from starlette import testclient

from t2t_multimodel.serving import app as app_lib
from t2t_multimodel.serving import request_limits
from tests.serving import tiny_export

PREDICT = "/v1/models/multimodel:predict"


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def _image(size: tuple[int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


class TestHeaders:
    @pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
    def test_image_size_from_header(self, fmt: str) -> None:
        assert request_limits.image_size(_image((37, 11), fmt)) == (37, 11)

    def test_huge_png_is_sized_without_decoding(self) -> None:
        data = tiny_export.blank_png_bytes(10_000, 10_000)
        assert len(data) < 100_000
        assert request_limits.image_size(data) == (10_000, 10_000)

    @pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n"])
    def test_not_an_image_is_none(self, data: bytes) -> None:
        assert request_limits.image_size(data) is None

    def test_wav_seconds(self) -> None:
        # 8000 frames of 2 channels x 2 bytes at 16 kHz: 0.5 s.
        wav = tiny_export.wav_bytes(8000, 16000, channels=2)
        assert request_limits.wav_seconds(wav) == 0.5
        assert request_limits.wav_seconds(tiny_export.wav_bytes(0)) == 0.0

    def test_streamed_wav_size_is_capped_at_the_bytes_sent(self) -> None:
        wav = bytearray(tiny_export.wav_bytes(1600, 8000))  # 0.2 s
        data_at = wav.index(b"data")
        wav[data_at + 4 : data_at + 8] = struct.pack("<I", 0xFFFFFFFF)
        assert request_limits.wav_seconds(bytes(wav)) == 0.2

    @pytest.mark.parametrize(
        "data", [b"", b"RIFF", b"RIFF\0\0\0\0WAVEdata\0\0\0\0", b"\x89PNG"]
    )
    def test_not_a_wav_is_none(self, data: bytes) -> None:
        assert request_limits.wav_seconds(data) is None


def _client(app):
    # One client per module: leaving its block closes the app's scheduler.
    with testclient.TestClient(app, base_url="http://localhost") as client:
        yield client


@pytest.fixture(scope="module")
def limited(served):
    yield from _client(
        app_lib.create_app(
            served,
            batch_timeout_ms=2,
            max_instances_per_request=4,
            max_image_pixels=100,
            max_audio_seconds=0.5,
        )
    )


@pytest.fixture(scope="module")
def default(served):
    yield from _client(app_lib.create_app(served, batch_timeout_ms=2))


def _refused(client, body: dict) -> str:
    """The 400 error of `body`; checks that the model was not called."""
    stats = client.app.state.scheduler.stats
    calls = stats.calls
    response = client.post(PREDICT, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert list(response.json()) == ["error"]
    assert stats.calls == calls
    good = client.post(
        PREDICT, json={"signature_name": "echo_upper", "instances": ["ok"]}
    )
    assert good.json() == {"predictions": ["OK (2)"]}
    return response.json()["error"]


class TestInstances:
    def test_too_many_rows(self, limited) -> None:
        error = _refused(
            limited,
            {"signature_name": "echo_upper", "instances": ["a"] * 5},
        )
        assert error == (
            "Request has 5 instances, more than the limit of 4 per request "
            "(t2t-mm-serve --max_instances_per_request); split it into "
            "several requests"
        )

    def test_too_many_columnar(self, limited) -> None:
        error = _refused(
            limited,
            {"signature_name": "caption_size", "inputs": [_b64(b"x")] * 6},
        )
        assert error.startswith("Request has 6 instances, more than the limit")

    def test_at_the_limit_is_answered(self, limited) -> None:
        response = limited.post(
            PREDICT,
            json={"signature_name": "echo_upper", "instances": ["a"] * 4},
        )
        assert response.json() == {"predictions": ["A (1)"] * 4}

    def test_thousand_instances_by_default(self, default) -> None:
        # The issue's request: 1,000 texts in one batch. Default limit 64.
        error = _refused(
            default,
            {"signature_name": "echo_upper", "instances": ["hello"] * 1000},
        )
        assert error.startswith(
            "Request has 1000 instances, more than the limit of 64 per request"
        )


class TestImages:
    def test_over_the_pixel_limit(self, limited) -> None:
        body = {
            "signature_name": "caption_size",
            "instances": [
                _b64(_image((10, 10), "PNG")),
                _b64(_image((11, 10), "JPEG")),
            ],
        }
        assert _refused(limited, body) == (
            "input 'image_bytes', instance 1: the image is 11 x 10 = 110 "
            "pixels, more than the limit of 100 (t2t-mm-serve "
            "--max_image_pixels); scale it down before sending it"
        )

    def test_issue_png_refused_before_decoding(self, default) -> None:
        # 97 KB that TF would decode into 100 M pixels (1.6 GB).
        png = tiny_export.blank_png_bytes(10_000, 10_000)
        error = _refused(
            default,
            {"signature_name": "classify_brightness", "instances": [_b64(png)]},
        )
        assert error.startswith(
            "input 'image_bytes', instance 0: the image is 10000 x 10000 = "
            "100,000,000 pixels, more than the limit of 16,777,216"
        )

    def test_not_an_image_still_gets_the_model_error(self, limited) -> None:
        response = limited.post(
            PREDICT,
            json={
                "signature_name": "caption_size",
                "instances": [_b64(b"not an image")],
            },
        )
        assert response.status_code == 400
        assert "Unknown image file format" in response.json()["error"]


class TestAudio:
    def test_over_the_length_limit(self, limited) -> None:
        body = {
            "signature_name": "transcribe_length",
            "instances": [_b64(tiny_export.wav_bytes(4800, 8000))],  # 0.6 s
        }
        assert _refused(limited, body) == (
            "input 'audio_bytes', instance 0: the audio is 0.6 s long, more "
            "than the limit of 0.5 s (t2t-mm-serve --max_audio_seconds); "
            "send a shorter recording or split it"
        )

    def test_over_a_minute_by_default(self, default) -> None:
        wav = tiny_export.wav_bytes(61 * 8000, 8000)  # 61 s, 976 KB
        error = _refused(
            default,
            {"signature_name": "transcribe_length", "instances": [_b64(wav)]},
        )
        assert "the audio is 61.0 s long, more than the limit of 60 s" in error
