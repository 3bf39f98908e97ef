"""A real `t2t-mm-serve` process on loopback under a burst of requests.

200 concurrent requests (32 client threads, every signature kind, answers
checked exactly) must all succeed, twice; the server's resident memory after
the second burst may exceed that after the first (warm) burst by at most
`RSS_MARGIN_MB`. The first burst is the warm-up: it grows thread stacks,
allocator arenas and TensorFlow's per-shape caches once. Measured on the
2-core machine: +0.2 MB between the bursts (RSS about 735 MB).
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests import testing
from tests.serving import tiny_export

NUM_REQUESTS = 200
NUM_CLIENTS = 32
RSS_MARGIN_MB = 30
BURST_TIMEOUT_S = 180


def _rss_mb(pid: int) -> float:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024.0


def _case(i: int) -> tuple[dict, object]:
    """Request `i` of a burst and its expected prediction."""
    kind = i % 4
    if kind == 0:
        text = f"request {i}"
        return (
            {"signature_name": "echo_upper", "instances": [text]},
            f"REQUEST {i} ({len(text)})",
        )
    if kind == 1:
        data = tiny_export.png_bytes(255 if i % 8 == 1 else 0)
        label = "bright" if i % 8 == 1 else "dark"
        return (
            {
                "signature_name": "classify_brightness",
                "instances": [{"b64": base64.b64encode(data).decode()}],
            },
            label,
        )
    if kind == 2:
        data = tiny_export.png_bytes(7, 2 + i % 5, 3)
        return (
            {
                "signature_name": "caption_size",
                "instances": [{"b64": base64.b64encode(data).decode()}],
            },
            f"an image of {2 + i % 5} x 3 pixels",
        )
    data = tiny_export.wav_bytes(10 + i)
    return (
        {
            "signature_name": "transcribe_length",
            "instances": [{"b64": base64.b64encode(data).decode()}],
        },
        f"{10 + i} samples at 8000 Hz",
    )


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "v1/models/multimodel:predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _burst(url: str) -> list[str]:
    """Sends NUM_REQUESTS requests at once; returns the failures."""
    cases = [_case(i) for i in range(NUM_REQUESTS)]
    failures = []
    with concurrent.futures.ThreadPoolExecutor(NUM_CLIENTS) as pool:
        futures = [pool.submit(_post, url, body) for body, _ in cases]
        done, pending = concurrent.futures.wait(futures, BURST_TIMEOUT_S)
        assert not pending, f"{len(pending)} requests unanswered"
        for i, (future, (_, expected)) in enumerate(zip(futures, cases)):
            status, answer = future.result()
            if status != 200:
                failures.append(f"{i}: HTTP {status} {answer}")
                continue
            got = answer["predictions"][0]
            got = got["classes"] if isinstance(got, dict) else got
            if got != expected:
                failures.append(f"{i}: {got!r} != {expected!r}")
    return failures


def test_burst_of_concurrent_requests_with_flat_memory(server) -> None:
    assert _burst(server.url) == []
    rss_warm = _rss_mb(server.pid)
    start = time.monotonic()
    assert _burst(server.url) == []
    seconds = time.monotonic() - start
    rss_after = _rss_mb(server.pid)
    print(
        f"burst of {NUM_REQUESTS}: {seconds:.2f} s; RSS {rss_warm:.1f} -> "
        f"{rss_after:.1f} MB"
    )
    assert rss_after - rss_warm < RSS_MARGIN_MB


def test_server_keeps_serving_after_bad_requests(server) -> None:
    bad = [
        {"signature_name": "nope", "instances": ["a"]},
        {"signature_name": "echo_upper", "instances": [{"text": "a"}]},
        {"signature_name": "caption_size", "instances": [{"b64": "AAAA"}]},
    ]
    # Over the default 16 MiB limit: a 413 JSON answer, not a reset.
    bad.append(
        {"signature_name": "echo_upper", "instances": ["x" * (17 << 20)]}
    )
    answers = [_post(server.url, body) for body in bad]
    assert "exceeds the limit of 16777216 bytes" in answers[-1][1]["error"]
    statuses = [status for status, _ in answers]
    request = urllib.request.Request(
        server.url + "v1/models/multimodel:predict",
        data=b"{oops",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    statuses.append(error.value.code)
    assert statuses == [400, 400, 400, 413, 400]
    good = {"signature_name": "echo_upper", "instances": ["still here"]}
    assert _post(server.url, good) == (
        200,
        {"predictions": ["STILL HERE (10)"]},
    )


def test_help_and_missing_export(repo_root, tmp_path) -> None:
    script = str(repo_root / "bin" / "t2t-mm-serve")
    result = subprocess.run(
        [sys.executable, script, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=testing.script_env(),
    )
    assert result.returncode in (0, 1)  # absl exits 1 after --help
    for flag in ("--export_dir", "--port", "--host", "--max_batch_size"):
        assert flag in result.stdout
    result = subprocess.run(
        [sys.executable, script, f"--export_dir={tmp_path}", "--port=0"],
        capture_output=True,
        text=True,
        timeout=180,
        env=testing.script_env(),
    )
    assert result.returncode == 1
    assert "no saved_model.pb" in result.stderr


def _raw_post(url: str, data: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "v1/models/multimodel:predict", data=data, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_other_sites_cannot_drive_the_api(server) -> None:
    good = {"signature_name": "echo_upper", "instances": ["ok"]}
    data = json.dumps(good).encode()
    # A cross-site form or fetch without preflight: text/plain, form data.
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        status, answer = _raw_post(
            server.url, data, {"Content-Type": content_type}
        )
        assert status == 415
        assert answer["error"].startswith(
            f"Content-Type must be application/json, got '{content_type}'"
        )
    # DNS rebinding: the browser sends the attacker's name as Host.
    status, answer = _raw_post(
        server.url,
        data,
        {"Content-Type": "application/json", "Host": "evil.example:8501"},
    )
    assert status == 403
    assert answer["error"].startswith("Host 'evil.example:8501' is not allowed")
    assert _post(server.url, good) == (200, {"predictions": ["OK (2)"]})


def test_thousand_instances_do_not_block_a_small_request(server) -> None:
    # The issue: 1,000 instances in one request ran as one batch and both
    # it and a concurrent 1-instance request timed out.
    big = {"signature_name": "echo_upper", "instances": ["x"] * 1000}
    small = {"signature_name": "echo_upper", "instances": ["small"]}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        big_answer = pool.submit(_post, server.url, big)
        small_answer = pool.submit(_post, server.url, small)
        status, answer = big_answer.result(timeout=60)
        assert small_answer.result(timeout=60) == (
            200,
            {"predictions": ["SMALL (5)"]},
        )
    assert status == 400
    assert answer["error"].startswith(
        "Request has 1000 instances, more than the limit of 64 per request"
    )


def test_corrupt_saved_model_pb_is_one_line(
    repo_root, tiny_export_dir: str, tmp_path
) -> None:
    export = tmp_path / "export"
    shutil.copytree(tiny_export_dir, export)
    (export / "saved_model.pb").write_bytes(b"\x07garbage" * 100)
    result = subprocess.run(
        [
            sys.executable,
            str(repo_root / "bin" / "t2t-mm-serve"),
            f"--export_dir={export}",
            "--port=0",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=testing.script_env(),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("t2t-mm-serve:")
    ]
    assert lines == [
        f"t2t-mm-serve: error: cannot load the export {export}/saved_model.pb:"
        " not a SavedModel protobuf (Error parsing message with type "
        "'tensorflow.SavedModel': Wire format was corrupt). The export is "
        "corrupt or incomplete (a failed copy or a disk error); export the "
        "model again with t2t-mm-exporter, or copy the export again."
    ]
