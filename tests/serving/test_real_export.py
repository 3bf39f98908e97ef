"""The REST API on a real `t2t-mm-exporter` SavedModel (slow: tracing).

A random tiny MultiModel (tests/decoding/tiny.py) is exported with its four
problems (text, image classification, captioning, speech); every answer of
the REST API must equal the loaded signature's own outputs on the same raw
requests, and the same requests sent concurrently (so batched together by
the server) must get the same answers as one request holding them all.
"""

from __future__ import annotations

import asyncio
import base64

import httpx2
import numpy as np
import pytest
from starlette import testclient

from t2t_multimodel.export import saved_model
from t2t_multimodel.serving import app as app_lib
from t2t_multimodel.serving import served_model
from tests.decoding import tiny

PREDICT = "/v1/models/multimodel:predict"
CLASS_NAMES = ("zero", "one", "two", "three", "four")


def _json_instance(value: str | bytes):
    if isinstance(value, str):
        return value
    return {"b64": base64.b64encode(value).decode()}


def _expected(outputs: dict, i: int) -> dict:
    row = {}
    for name, value in outputs.items():
        if value.dtype == object:
            row[name] = np.vectorize(lambda b: b.decode())(value[i]).tolist()
        else:
            row[name] = value[i].tolist()
    return row


@pytest.fixture(scope="module")
def real_export(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("real_export")
    return saved_model.export(
        model=tiny.build_model(),
        problems=list(tiny.PROBLEMS),
        vocabulary=tiny.build_vocabulary(str(directory)),
        export_dir=str(directory / "export"),
        beam_size=1,
        max_length=4,
        top_k=3,
        class_names={tiny.IMAGE_PROBLEM.name: CLASS_NAMES},
    )


@pytest.mark.slow  # ~60 s on 2 shared cores: the export traces every problem.
def test_rest_answers_equal_the_signatures(real_export: str) -> None:
    served = served_model.ServedModel(real_export)
    keys = {p.name: served.signatures[p.name].inputs for p in tiny.PROBLEMS}
    assert {name: list(inputs) for name, inputs in keys.items()} == {
        "tiny_translate": ["inputs"],
        "tiny_image": ["image_bytes"],
        "tiny_caption": ["image_bytes"],
        "tiny_speech": ["audio_bytes"],
    }
    app = app_lib.create_app(served, max_batch_size=16, batch_timeout_ms=300)
    with testclient.TestClient(app, base_url="http://localhost") as client:
        metadata = client.get("/v1/models/multimodel/metadata").json()
        defs = metadata["metadata"]["signature_def"]["signature_def"]
        assert {p.name for p in tiny.PROBLEMS} <= set(defs)
        image_outputs = defs["tiny_image"]["outputs"]
        assert image_outputs["scores"]["dtype"] == "DT_FLOAT"
        assert image_outputs["classes"]["dtype"] == "DT_STRING"
        for problem in tiny.PROBLEMS:
            raw = tiny.raw_inputs(problem)
            (key,) = keys[problem.name]
            response = client.post(
                PREDICT,
                json={
                    "signature_name": problem.name,
                    "instances": [_json_instance(x) for x in raw],
                },
            )
            assert response.status_code == 200, response.text
            values = [x.encode() if isinstance(x, str) else x for x in raw]
            direct = served.run(
                problem.name, {key: np.array(values, dtype=object)}
            )
            predictions = response.json()["predictions"]
            assert len(predictions) == len(raw)
            for i, prediction in enumerate(predictions):
                expected = _expected(direct, i)
                assert sorted(prediction) == sorted(expected)
                for name, value in expected.items():
                    if direct[name].dtype.kind == "f":
                        assert prediction[name] == pytest.approx(value, 1e-6)
                    else:
                        assert prediction[name] == value, (problem.name, name)
        bad = client.post(
            PREDICT,
            json={"signature_name": "tiny_image", "instances": [{"b64": ""}]},
        )
        assert bad.status_code == 400
        assert "not a JPEG, PNG, BMP or GIF" in bad.json()["error"]

        async def one_by_one(name: str, raw: list) -> list:
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                responses = await asyncio.gather(
                    *(
                        client.post(
                            PREDICT,
                            json={
                                "signature_name": name,
                                "instances": [_json_instance(x)],
                            },
                        )
                        for x in raw
                    )
                )
            return [r.json()["predictions"][0] for r in responses]

        # Concurrent single requests, batched together by the server, answer
        # what one request with every instance answers.
        for problem in (tiny.TEXT_PROBLEM, tiny.IMAGE_PROBLEM):
            raw = tiny.raw_inputs(problem)
            calls = app.state.scheduler.stats.calls
            together = client.post(
                PREDICT,
                json={
                    "signature_name": problem.name,
                    "instances": [_json_instance(x) for x in raw],
                },
            )
            singles = asyncio.run(one_by_one(problem.name, raw))
            assert app.state.scheduler.stats.calls - calls == 2
            for single, joint in zip(singles, together.json()["predictions"]):
                assert single.keys() == joint.keys()
                for name, value in joint.items():
                    if name == "scores":
                        assert single[name] == pytest.approx(value, abs=1e-5)
                    else:
                        assert single[name] == value, (problem.name, name)
