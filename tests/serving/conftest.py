"""Fixtures: the tiny export, its loaded model and a test client."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from tests import testing
from tests.serving import tiny_export


@pytest.fixture(scope="session")
def tiny_export_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = tmp_path_factory.mktemp("serving") / "export"
    return tiny_export.write_tiny_export(str(path))


@pytest.fixture(scope="session")
def served(tiny_export_dir: str):
    from t2t_multimodel.serving import served_model

    return served_model.ServedModel(tiny_export_dir)


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Server:
    """A `t2t-mm-serve` process on loopback: its URL, pid and log file."""

    url: str
    pid: int
    log: pathlib.Path


def _log_tail(log: pathlib.Path) -> str:
    return log.read_text(errors="replace")[-2000:]


@pytest.fixture(scope="session")
def server(
    tiny_export_dir: str,
    repo_root: pathlib.Path,
    tmp_path_factory: pytest.TempPathFactory,
):
    """`bin/t2t-mm-serve` on the tiny export, 127.0.0.1, a free port."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = testing.script_env()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                str(repo_root / "bin" / "t2t-mm-serve"),
                f"--export_dir={tiny_export_dir}",
                "--host=127.0.0.1",
                "--port=0",
                "--batch_timeout_ms=2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        url = _wait_until_serving(process, log, timeout_s=180)
        yield Server(url, process.pid, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait_until_serving(
    process: subprocess.Popen, log: pathlib.Path, timeout_s: float
) -> str:
    """The server's base URL once its status endpoint answers 200."""
    deadline = time.monotonic() + timeout_s
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"t2t-mm-serve exited: {_log_tail(log)}")
        if url is None:
            match = re.search(r"at (http://127\.0\.0\.1:\d+/)", log.read_text())
            url = match.group(1) if match else None
        if url is not None:
            try:
                with urllib.request.urlopen(
                    url + "v1/models/multimodel", timeout=5
                ) as response:
                    if response.status == 200:
                        return url
            except OSError:
                pass
        time.sleep(0.2)
    pytest.fail(f"t2t-mm-serve not serving in {timeout_s} s: {_log_tail(log)}")
