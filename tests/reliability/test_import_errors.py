"""t2t-mm-import on unreadable input and into a training run's model_dir.

A missing, truncated, non-zip or CRC-broken `.npz` fails with one line that
names the file (was: FileNotFoundError, BadZipFile or numpy's misleading
"allow_pickle" message, with tracebacks); a non-empty `model_dir` (a
training run) is refused unless `--overwrite`, and left as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from t2t_multimodel import errors
from t2t_multimodel.t2t_compat import checkpoint_import as t2t_import
from tests import testing

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
PROG = "t2t-mm-import"
IMAGE_DUMP = os.path.join(testing.PARITY_DIR, "t2t_v19_image_seed1.npz")


def _import(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", PROG), *args],
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def _error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == errors.EXIT_USER_ERROR, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [
        line
        for line in done.stderr.splitlines()
        if line.startswith(f"{PROG}: error: ")
    ]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def _npz(path) -> bytes:
    """An uncompressed .npz of one 4,000-float array; its bytes."""
    np.savez(path, **{"var/multi_model/x": np.arange(4000, dtype="float32")})
    with open(path, "rb") as f:
        return f.read()


def _broken(tmp_path, kind: str) -> str:
    path = tmp_path / f"{kind}.npz"
    if kind == "missing":
        return str(path)
    data = _npz(path)
    if kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "not_zip":
        data = b"# a text file, not an npz\n" * 10
    elif kind == "bad_crc":
        # A byte in the middle of the array data: the zip index is intact.
        middle = len(data) // 2
        data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("kind", ["missing", "truncated", "not_zip", "bad_crc"])
def test_unreadable_npz_is_named(tmp_path, kind):
    path = _broken(tmp_path, kind)
    with pytest.raises(t2t_import.T2TFileError) as info:
        t2t_import.read_t2t_variables(path)
    message = str(info.value)
    assert message.startswith(path)
    assert "allow_pickle" not in message
    if kind == "missing":
        assert "does not exist" in message
    else:
        assert "is not a readable .npz archive" in message
    if kind == "bad_crc":
        assert "CRC" in message


@pytest.mark.parametrize("kind", ["missing", "bad_crc"])
def test_cli_unreadable_npz(tmp_path, kind):
    path = _broken(tmp_path, kind)
    model_dir = tmp_path / "model"
    done = _import(f"--t2t_checkpoint={path}", f"--model_dir={model_dir}")
    line = _error_line(done)
    assert line.startswith(f"{PROG}: error: {path} ")
    assert not model_dir.exists() or not os.listdir(model_dir)


def test_missing_tf1_checkpoint_is_named(tmp_path):
    prefix = str(tmp_path / "model.ckpt-100")
    with pytest.raises(t2t_import.T2TFileError) as info:
        t2t_import.read_t2t_variables(prefix)
    assert f"cannot read the T2T checkpoint {prefix}" in str(info.value)


def _training_run(model_dir) -> dict[str, bytes]:
    """Files of a trainer's model_dir (contents do not matter here)."""
    os.makedirs(model_dir)
    files = {
        "model_config.json": b'{"class_name": "MultiModel"}',
        "checkpoint": b'model_checkpoint_path: "model.ckpt-500"\n',
        "model.ckpt-500.index": b"index",
        "model.ckpt-500.data-00000-of-00001": b"data",
        "operative_config.gin": b"TRAIN_STEPS = 500\n",
    }
    for name, data in files.items():
        with open(os.path.join(model_dir, name), "wb") as f:
            f.write(data)
    return files


def _contents(model_dir) -> dict[str, bytes]:
    out = {}
    for name in os.listdir(model_dir):
        with open(os.path.join(model_dir, name), "rb") as f:
            out[name] = f.read()
    return out


def test_non_empty_model_dir_is_refused(tmp_path):
    model_dir = tmp_path / "run"
    files = _training_run(model_dir)
    with pytest.raises(FileExistsError) as info:
        t2t_import.save_model(None, str(model_dir))
    assert f"{model_dir} is not empty" in str(info.value)
    assert _contents(model_dir) == files


@pytest.mark.skipif(not os.path.exists(IMAGE_DUMP), reason="no parity dumps")
def test_cli_refuses_a_training_run_unless_overwrite(tmp_path):
    model_dir = tmp_path / "run"
    files = _training_run(model_dir)
    line = _error_line(
        _import(f"--t2t_checkpoint={IMAGE_DUMP}", f"--model_dir={model_dir}")
    )
    assert f"{model_dir} is not empty (checkpoint, model.ckpt-500" in line
    assert "--overwrite" in line
    assert _contents(model_dir) == files

    done = _import(
        f"--t2t_checkpoint={IMAGE_DUMP}",
        f"--model_dir={model_dir}",
        "--overwrite",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    left = sorted(os.listdir(model_dir))
    # The old run's checkpoints and run files are replaced, not orphaned.
    assert "model.ckpt-500.index" not in left
    assert "operative_config.gin" not in left
    assert {"model.ckpt-0.index", "model_config.json", "checkpoint"} <= set(
        left
    )
    restored = t2t_import.load_model(str(model_dir))
    assert restored.weights
