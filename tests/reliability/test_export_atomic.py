"""An export killed with SIGKILL leaves no SavedModel that looks complete.

A child process exports the tiny MultiModel (tests/reliability/
serving_fixture.py) to `E/1` and is killed while the SavedModel is being
written (its temporary directory exists). Neither `E/1` nor any version of
`E` may then resolve for serving; a rerun writes a loadable `E/1`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from t2t_multimodel.serving import served_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
CHILD = """
import os, sys
from t2t_multimodel.export import saved_model
from tests.decoding import tiny
from tests.reliability import serving_fixture as f
directory, target = sys.argv[1], sys.argv[2]
saved_model.export(
    model=tiny.build_model(seed=0), problems=tiny.PROBLEMS,
    vocabulary=tiny.build_vocabulary(directory), export_dir=target,
    beam_size=1, max_length=f.MAX_LENGTH)
"""


def _child(directory, target) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(target)],
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_killed_export_is_not_served_and_rerun_completes(tmp_path):
    base = tmp_path / "exports"
    target = base / "1"
    proc = _child(tmp_path, target)
    try:
        deadline = time.monotonic() + 300
        while True:
            temporary = (
                [n for n in os.listdir(base) if ".tmp-" in n]
                if base.exists()
                else []
            )
            if temporary:
                # Let the write start: the tmp dir gets its first files.
                time.sleep(0.3)
                break
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "export never started"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    with pytest.raises(FileNotFoundError):
        served_model.resolve_version(str(base))

    proc = _child(tmp_path, target)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert served_model.resolve_version(str(base)) == (str(target), "1")
