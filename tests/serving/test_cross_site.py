"""Tests of the CSRF and DNS-rebinding guard (Host and Content-Type checks).

Each refused request gets a JSON error (403 for the Host, 415 for the
Content-Type) before any route runs, and the server keeps answering normal
requests.
"""

from __future__ import annotations

import pathlib
import re

import pytest
from starlette import testclient

from t2t_multimodel.serving import app as app_lib
from t2t_multimodel.serving import cross_site

PREDICT = "/v1/models/multimodel:predict"
TEXT = {"signature_name": "echo_upper", "instances": ["hi"]}
ANSWER = {"predictions": ["HI (2)"]}


@pytest.fixture(scope="module")
def client(served):
    app = app_lib.create_app(
        served, batch_timeout_ms=2, allowed_hosts=["serve.example"]
    )
    with testclient.TestClient(app, base_url="http://localhost") as client:
        yield client


def _still_answers(client) -> None:
    assert client.post(PREDICT, json=TEXT).json() == ANSWER


@pytest.mark.parametrize(
    "host, name",
    [
        ("LocalHost:8501", "localhost"),
        ("[::1]:8501", "::1"),
        ("::1", "::1"),
        ("10.0.0.7", "10.0.0.7"),
        ("example.org.:80", "example.org"),
    ],
)
def test_host_name(host: str, name: str) -> None:
    assert cross_site.host_name(host) == name


class TestHost:
    @pytest.mark.parametrize(
        "host",
        [
            "localhost:8501",
            "127.0.0.1:9999",  # Any port: forwarding and proxies change it.
            "[::1]:8501",
            "app.localhost",
            "192.168.1.20:8501",  # An address cannot be rebound.
            "serve.example:8501",  # Named by the operator.
        ],
    )
    def test_allowed(self, client, host: str) -> None:
        response = client.post(PREDICT, json=TEXT, headers={"Host": host})
        assert response.status_code == 200
        assert response.json() == ANSWER

    @pytest.mark.parametrize(
        "method, path",
        [
            ("POST", PREDICT),
            ("GET", "/v1/models/multimodel/metadata"),
            ("GET", "/"),
        ],
    )
    def test_rebinding_name_is_403(self, client, method, path) -> None:
        response = client.request(
            method, path, json=TEXT, headers={"Host": "evil.example:8501"}
        )
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "error": "Host 'evil.example:8501' is not allowed: this server "
            "answers requests for localhost, IP addresses and the names it "
            "is told (protection against DNS rebinding); start it with "
            "--allowed_hosts=evil.example (or '*' for any) to serve that "
            "name"
        }
        _still_answers(client)

    def test_star_allows_any(self, served) -> None:
        app = app_lib.create_app(served, allowed_hosts=["*"])
        with testclient.TestClient(app, base_url="http://evil.example") as c:
            assert c.post(PREDICT, json=TEXT).json() == ANSWER


class TestContentType:
    @pytest.mark.parametrize(
        "content_type",
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            None,
        ],
    )
    def test_not_json_is_415(self, client, content_type) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post(
            PREDICT, content=b'{"instances": ["hi"]}', headers=headers
        )
        assert response.status_code == 415
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "error": "Content-Type must be application/json, got "
            f"{content_type or 'none'!r}; e.g. curl -H 'Content-Type: "
            "application/json' -d @request.json URL"
        }
        _still_answers(client)

    def test_json_with_charset_is_accepted(self, client) -> None:
        response = client.post(
            PREDICT,
            content=b'{"signature_name": "echo_upper", "instances": ["hi"]}',
            headers={"Content-Type": "Application/JSON; charset=utf-8"},
        )
        assert response.json() == ANSWER


def test_page_sends_json() -> None:
    # The page's one POST (static/app.js) must pass the Content-Type check.
    script = (pathlib.Path(app_lib.STATIC_DIR) / "app.js").read_text(
        encoding="utf-8"
    )
    posts = re.findall(r"fetch\([^)]*method: \"POST\"[^}]*\}", script, re.S)
    assert len(posts) == 1
    assert 'headers: { "Content-Type": "application/json" }' in posts[0]
