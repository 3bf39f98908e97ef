"""Tests of the web application through Starlette's test client.

The tiny export (tests/serving/tiny_export.py) has one signature of each
kind the exporter writes; its answers are computed by hand here.
"""

from __future__ import annotations

import asyncio
import base64
import json

import httpx2
import pytest
from starlette import testclient

from t2t_multimodel.serving import app as app_lib
from tests.serving import tiny_export

PREDICT = "/v1/models/multimodel:predict"
JSON_HEADERS = {"Content-Type": "application/json"}


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def app(served):
    return app_lib.create_app(
        served, max_batch_size=8, batch_timeout_ms=2, max_request_bytes=4096
    )


@pytest.fixture(scope="module")
def batching_app(served):
    # A wide batching window, so that concurrent requests surely meet.
    return app_lib.create_app(served, max_batch_size=64, batch_timeout_ms=300)


@pytest.fixture(scope="module")
def roomy(served):
    # The default limits (16 MiB bodies).
    app = app_lib.create_app(served, batch_timeout_ms=2)
    with testclient.TestClient(app, base_url="http://localhost") as client:
        yield client


@pytest.fixture(scope="module")
def client(app):
    with testclient.TestClient(app, base_url="http://localhost") as client:
        yield client


def _predict(client, body) -> tuple[int, dict]:
    response = client.post(PREDICT, json=body)
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


class TestPredict:
    def test_text(self, client) -> None:
        status, body = _predict(
            client,
            {"signature_name": "echo_upper", "instances": ["héllo", "b"]},
        )
        assert status == 200
        assert body == {"predictions": ["HéLLO (5)", "B (1)"]}

    def test_image_classification(self, client) -> None:
        # Pixel value 51 -> mean 0.2 -> scores [0.8, 0.2], class 0 "dark".
        status, body = _predict(
            client,
            {
                "signature_name": "classify_brightness",
                "instances": [
                    {"image_bytes": _b64(tiny_export.png_bytes(51))},
                    {"image_bytes": _b64(tiny_export.png_bytes(255))},
                ],
            },
        )
        assert status == 200
        first, second = body["predictions"]
        assert first == {
            "classes": "dark",
            "class_ids": 0,
            "scores": pytest.approx([0.8, 0.2], abs=1e-6),
        }
        assert second == {"classes": "bright", "class_ids": 1, "scores": [0, 1]}

    def test_captioning_and_columnar_format(self, client) -> None:
        images = [
            tiny_export.png_bytes(9, 3, 5),
            tiny_export.png_bytes(9, 7, 2),
        ]
        status, body = _predict(
            client,
            {
                "signature_name": "caption_size",
                "inputs": [_b64(i) for i in images],
            },
        )
        assert status == 200
        assert body == {
            "outputs": ["an image of 3 x 5 pixels", "an image of 7 x 2 pixels"]
        }

    def test_speech(self, client) -> None:
        audio = [
            tiny_export.wav_bytes(800),
            tiny_export.wav_bytes(50, 16000, 2),
        ]
        status, body = _predict(
            client,
            {
                "signature_name": "transcribe_length",
                "instances": [_b64(a) for a in audio],
            },
        )
        assert status == 200
        assert body == {
            "predictions": ["800 samples at 8000 Hz", "50 samples at 16000 Hz"]
        }

    def test_invalid_utf8_output_is_b64(self, client) -> None:
        status, body = _predict(
            client, {"signature_name": "first_byte", "instances": ["é", "a"]}
        )
        assert status == 200
        assert body == {"predictions": [{"b64": "ww=="}, "a"]}

    def test_versioned_path_and_server_timing(self, client) -> None:
        response = client.post(
            "/v1/models/multimodel/versions/1:predict",
            json={"signature_name": "echo_upper", "instances": ["x"]},
        )
        assert response.json() == {"predictions": ["X (1)"]}
        assert response.headers["server-timing"].startswith("total;dur=")


class TestErrors:
    @pytest.mark.parametrize(
        "body, status, message",
        [
            (
                {"signature_name": "nope", "instances": ["a"]},
                400,
                'Serving signature name: "nope" not found in signature def',
            ),
            (
                {"signature_name": "echo_upper", "instances": [{"text": "a"}]},
                400,
                "does not have named input: text",
            ),
            (
                {
                    "signature_name": "classify_brightness",
                    "instances": [_b64(b"not an image")],
                },
                400,
                "Unknown image file format.",
            ),
            (
                {
                    "signature_name": "transcribe_length",
                    "instances": [_b64(b"RIFF")],
                },
                400,
                "Data too short when trying to read",
            ),
        ],
    )
    def test_bad_input(self, client, body, status: int, message: str) -> None:
        got_status, got = _predict(client, body)
        assert got_status == status
        assert list(got) == ["error"]
        assert message in got["error"]
        # Condensed: no TensorFlow graph noise.
        assert "[[{{node" not in got["error"]
        assert "Graph execution" not in got["error"]

    def test_malformed_json(self, client) -> None:
        response = client.post(
            PREDICT, content=b'{"instances": [', headers=JSON_HEADERS
        )
        assert response.status_code == 400
        assert response.json()["error"].startswith("JSON Parse error")

    def test_deeply_nested_json_is_400(self, roomy) -> None:
        # json.loads raised RecursionError: a plain-text 500 before.
        response = roomy.post(
            PREDICT, content=b"[" * 100_000, headers=JSON_HEADERS
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "error": "JSON Parse error: the JSON is nested too deeply"
        }
        good = {"signature_name": "echo_upper", "instances": ["ok"]}
        assert roomy.post(PREDICT, json=good).json() == {
            "predictions": ["OK (2)"]
        }

    def test_server_failure_is_json_500(self, served, monkeypatch) -> None:
        def broken(*args, **kwargs):
            raise KeyError("a bug")

        monkeypatch.setattr(app_lib.rest, "format_predict_response", broken)
        app = app_lib.create_app(served, batch_timeout_ms=2)
        with testclient.TestClient(
            app, base_url="http://localhost", raise_server_exceptions=False
        ) as client:
            response = client.post(
                PREDICT,
                json={"signature_name": "echo_upper", "instances": ["a"]},
            )
        assert response.status_code == 500
        assert response.json() == {"error": "internal error: KeyError"}

    def test_oversize_body_is_413(self, client) -> None:
        text = "x" * 5000  # max_request_bytes is 4096
        response = client.post(
            PREDICT, json={"signature_name": "echo_upper", "instances": [text]}
        )
        assert response.status_code == 413
        assert "exceeds the limit of 4096 bytes" in response.json()["error"]

    def test_oversize_chunked_body_is_413(self, client) -> None:
        def chunks():
            for _ in range(10):
                yield b" " * 1000

        response = client.post(PREDICT, content=chunks(), headers=JSON_HEADERS)
        assert response.status_code == 413

    def test_unknown_model_version_and_route_are_404(self, client) -> None:
        response = client.get("/v1/models/other")
        assert response.status_code == 404
        assert response.json() == {
            "error": "Servable not found for request: Latest(other)"
        }
        response = client.post(
            "/v1/models/multimodel/versions/2:predict", json={"instances": []}
        )
        assert response.status_code == 404
        assert "Specific(multimodel, 2)" in response.json()["error"]
        response = client.get("/nothing/here")
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found"}
        response = client.put("/v1/models/multimodel/metadata")
        assert response.status_code == 405
        assert response.json() == {"error": "Method Not Allowed"}

    def test_one_bad_instance_fails_only_its_request(
        self, batching_app
    ) -> None:
        good = {
            "signature_name": "classify_brightness",
            "instances": [_b64(tiny_export.png_bytes(255))],
        }
        bad = {
            "signature_name": "classify_brightness",
            "instances": [_b64(b"junk")],
        }

        async def burst() -> list[httpx2.Response]:
            transport = httpx2.ASGITransport(app=batching_app)
            async with httpx2.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                bodies = [good, bad, good, good, bad, good]
                return await asyncio.gather(
                    *(client.post(PREDICT, json=b) for b in bodies)
                )

        stats = batching_app.state.scheduler.stats
        calls, failed = stats.calls, stats.failed_calls
        retried = stats.retried_batches
        responses = asyncio.run(burst())
        statuses = [r.status_code for r in responses]
        assert statuses == [200, 400, 200, 200, 400, 200]
        assert responses[0].json()["predictions"][0]["classes"] == "bright"
        assert responses[4].json() == responses[1].json()
        # One batched call failed, then each request ran alone: 1 + 6 calls.
        assert stats.retried_batches - retried == 1
        assert stats.calls - calls == 7
        assert stats.failed_calls - failed == 1 + 2

    def test_concurrent_requests_are_batched(self, batching_app) -> None:
        async def burst() -> list[httpx2.Response]:
            transport = httpx2.ASGITransport(app=batching_app)
            async with httpx2.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            PREDICT,
                            json={
                                "signature_name": "echo_upper",
                                "instances": [f"s{i}"],
                            },
                        )
                        for i in range(16)
                    )
                )

        stats = batching_app.state.scheduler.stats
        calls, requests = stats.calls, stats.requests
        responses = asyncio.run(burst())
        assert [r.json() for r in responses] == [
            {"predictions": [f"S{i} ({len(str(i)) + 1})"]} for i in range(16)
        ]
        assert stats.requests - requests == 16
        assert stats.calls - calls == 1


class TestModelEndpoints:
    def test_status(self, client) -> None:
        for path in [
            "/v1/models/multimodel",
            "/v1/models/multimodel/versions/1",
        ]:
            response = client.get(path)
            assert response.status_code == 200
            assert response.json() == {
                "model_version_status": [
                    {
                        "version": "1",
                        "state": "AVAILABLE",
                        "status": {"error_code": "OK", "error_message": ""},
                    }
                ]
            }

    def test_metadata(self, client) -> None:
        response = client.get("/v1/models/multimodel/metadata")
        assert response.status_code == 200
        body = response.json()
        assert body["model_spec"] == {
            "name": "multimodel",
            "signature_name": "",
            "version": "1",
        }
        defs = body["metadata"]["signature_def"]["signature_def"]
        assert sorted(defs) == [
            "caption_size",
            "classify_brightness",
            "echo_upper",
            "first_byte",
            "transcribe_length",
        ]
        classify = defs["classify_brightness"]
        assert classify["method_name"] == "tensorflow/serving/predict"
        assert classify["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
        assert classify["inputs"]["image_bytes"]["tensor_shape"] == {
            "dim": [{"size": "-1", "name": ""}],
            "unknown_rank": False,
        }
        outputs = classify["outputs"]
        assert {k: v["dtype"] for k, v in outputs.items()} == {
            "classes": "DT_STRING",
            "class_ids": "DT_INT32",
            "scores": "DT_FLOAT",
        }
        assert [
            d["size"] for d in outputs["scores"]["tensor_shape"]["dim"]
        ] == [
            "-1",
            "2",
        ]
        assert classify["inputs"]["image_bytes"]["name"].endswith(":0")
        for name in ("echo_upper", "transcribe_length"):
            assert list(defs[name]["outputs"]) == ["outputs"]
        assert list(defs["transcribe_length"]["inputs"]) == ["audio_bytes"]

    def test_page_and_static_files(self, client) -> None:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<meta name="model-name" content="multimodel">' in page.text
        for name in ("app.js", "wav.js", "style.css"):
            response = client.get(f"/static/{name}")
            assert response.status_code == 200, name
            assert len(response.content) > 500
        assert json.loads(client.get("/v1/models/multimodel").text)
