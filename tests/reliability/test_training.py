"""Training reliability: SIGTERM saves, exact resume, determinism, bad dirs.

In-process runs of `loop.train` on the tiny text problem of
tests/training/fake_problems.py (d = 16, batches of 8, a few steps).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess

import pytest
import tensorflow as tf

from t2t_multimodel import errors
from t2t_multimodel.training import loop
from tests.training import fake_problems


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data"))
    fake_problems.write([fake_problems.text_problem()], path)
    return path


def _train(data_dir, model_dir, steps, **kwargs):
    args = dict(
        problems=[fake_problems.text_problem()],
        data_dir=data_dir,
        model_dir=model_dir,
        model_fn=fake_problems.tiny_model,
        train_steps=steps,
        learning_rate_schedule=0.05,
        data=loop.DataConfig(
            batch_size=8, batch_unit="examples", max_length=16
        ),
        checkpoint=loop.CheckpointConfig(every=3, keep=5),
        evaluation=loop.EvalConfig(every=0, steps=1, batch_size=4),
        seed=3,
        log_every=1,
        deterministic=True,
    )
    args.update(kwargs)
    return loop.train(**args)


def _losses(result):
    return [(step, loss) for step, _, loss in result["history"]]


def test_two_runs_with_one_seed_have_identical_losses(data_dir, tmp_path):
    first = _train(data_dir, str(tmp_path / "a"), 6)
    second = _train(data_dir, str(tmp_path / "b"), 6)
    assert [s for s, _ in _losses(first)] == [1, 2, 3, 4, 5, 6]
    # Bit-identical, not merely close.
    assert _losses(first) == _losses(second)
    third = _train(data_dir, str(tmp_path / "c"), 6, seed=4)
    assert _losses(third) != _losses(first)


def test_resume_continues_at_the_checkpoint_step_exactly(data_dir, tmp_path):
    straight = _train(data_dir, str(tmp_path / "straight"), 6)
    model_dir = str(tmp_path / "resumed")
    _train(data_dir, model_dir, 3)
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-3")
    resumed = _train(data_dir, model_dir, 6)
    # Steps 4..6 after the restart: same weights, optimizer state, data
    # position and problem schedule as the uninterrupted run.
    assert _losses(resumed) == _losses(straight)[3:]


class _SigtermAtStep(logging.Handler):
    """Sends this process SIGTERM when the step loop logs step `step`."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def emit(self, record):
        if f"step {self.step}/" in record.getMessage() or (
            f"step {self.step} " in record.getMessage()
        ):
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_a_checkpoint_and_stops(data_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    handler = _SigtermAtStep(5)
    runner_log = logging.getLogger("t2t_multimodel.training.runner")
    runner_log.addHandler(handler)
    old_level = runner_log.level
    runner_log.setLevel(logging.INFO)
    before = signal.getsignal(signal.SIGTERM)
    try:
        result = _train(data_dir, model_dir, 100)
    finally:
        runner_log.removeHandler(handler)
        runner_log.setLevel(old_level)
    assert result["terminated"] is True
    assert result["step"] == 5
    # Saved at the step it stopped at (5 is no multiple of every=3).
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-5")
    assert signal.getsignal(signal.SIGTERM) == before  # Handler restored.
    resumed = _train(data_dir, model_dir, 6)
    assert [s for s, _ in _losses(resumed)] == [6]


def test_incompatible_checkpoint_says_what_differs(data_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    _train(data_dir, model_dir, 1)
    config = open(os.path.join(model_dir, "model_config.json")).read()
    wider = functools.partial(fake_problems.tiny_model, hidden_dim=32)
    with pytest.raises(errors.IncompatibleCheckpointError) as info:
        _train(data_dir, model_dir, 2, model_fn=wider)
    message = str(info.value)
    assert model_dir in message and "another model configuration" in message
    assert "hidden_dim: 16 -> 32" in message
    # The old run's files are left as they were.
    assert open(os.path.join(model_dir, "model_config.json")).read() == config


def test_model_dir_under_a_file_fails_before_building(data_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    calls = []

    def model_fn(**kwargs):
        calls.append(kwargs)
        return fake_problems.tiny_model(**kwargs)

    with pytest.raises(errors.NotWritableError) as info:
        _train(data_dir, str(blocker / "run"), 2, model_fn=model_fn)
    assert f"cannot write to {blocker / 'run'}" in str(info.value)
    assert not calls  # Failed before the model was built.


@pytest.fixture()
def tmpfs(tmp_path):
    """`tmpfs(size)` mounts a tmpfs (needs root and mount rights, else skips).

    Unmounted lazily at teardown: a TensorBoard writer that failed on the
    full disk keeps its event file open until the process ends.
    """
    mounted = []

    def mount(size: str):
        mount_point = tmp_path / f"disk_{size}"
        mount_point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs"]
            + [str(mount_point)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(mount_point)
        return mount_point

    yield mount
    for mount_point in mounted:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture()
def tiny_tmpfs(tmpfs):
    """A 64 KiB tmpfs."""
    return tmpfs("64k")


def test_full_disk_fails_early_with_sizes(data_dir, tiny_tmpfs):
    # The tiny model's checkpoints need more than 64 KiB.
    with pytest.raises(errors.NotWritableError) as info:
        _train(data_dir, str(tiny_tmpfs / "run"), 2)
    message = str(info.value)
    assert "bytes free but needs about" in message
    assert "6 checkpoints of this model: keep=5" in message
    assert not [f for f in os.listdir(tiny_tmpfs / "run") if "ckpt" in f]


def test_free_space_check_counts_the_kept_checkpoints(data_dir, tmpfs):
    # A checkpoint of the tiny model is 3 x 41,232 bytes (weights and Adam's
    # two slots): 512 KiB hold 4, not the 6 that keep=5 needs (the check
    # counted 2 before, so the run started and the disk filled up later).
    small_tmpfs = tmpfs("512k")
    with pytest.raises(errors.NotWritableError) as info:
        _train(data_dir, str(small_tmpfs / "run"), 2)
    message = str(info.value)
    assert "needs about 742,176 (6 checkpoints of this model: keep=5" in message
    assert not [f for f in os.listdir(small_tmpfs / "run") if "ckpt" in f]
    # keep=2 needs 3: the run fits.
    result = _train(
        data_dir,
        str(small_tmpfs / "run"),
        2,
        checkpoint=loop.CheckpointConfig(every=3, keep=2),
    )
    assert result["step"] == 2


class _FillDiskAtStep(logging.Handler):
    """Fills the file system of `path` when the step loop logs `step`."""

    def __init__(self, step: int, path):
        super().__init__()
        self.step, self.path = step, path

    def emit(self, record):
        if f"step {self.step}/" not in record.getMessage():
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:  # ENOSPC: full.
            pass
        finally:
            os.close(fd)


def test_disk_filling_up_mid_run(data_dir, tmpfs):
    # A real full disk (another process fills it after step 3's first
    # checkpoint at step 2): TensorBoard's event writer or the next save
    # fails, whichever writes first; the error is one paragraph, the
    # checkpoint of step 2 is intact, and once space is freed the same
    # command resumes from it.
    # 2 MiB: the checkpoints with their data position are ~480 KB here.
    disk = tmpfs("2m")
    model_dir = str(disk / "run")
    filler = disk / "filler"
    handler = _FillDiskAtStep(3, filler)
    runner_log = logging.getLogger("t2t_multimodel.training.runner")
    runner_log.addHandler(handler)
    old_level = runner_log.level
    runner_log.setLevel(logging.INFO)
    small = loop.CheckpointConfig(every=2, keep=2)
    try:
        with pytest.raises(errors.NotWritableError) as info:
            _train(data_dir, model_dir, 6, checkpoint=small)
    finally:
        runner_log.removeHandler(handler)
        runner_log.setLevel(old_level)
    message = str(info.value)
    assert f"the disk of {model_dir} is full: " in message
    assert "No space left on device" in message
    newest = f"{model_dir}/model.ckpt-2"
    assert f"the newest complete checkpoint, {newest}, is intact" in message
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-2")
    assert not [n for n in os.listdir(model_dir) if "_temp" in n]
    filler.unlink()
    resumed = _train(data_dir, model_dir, 4, checkpoint=small)
    assert [s for s, _ in _losses(resumed)] == [3, 4]


def test_no_space_at_all_names_the_error(tiny_tmpfs):
    with open(tiny_tmpfs / "filler", "wb") as f:
        try:
            f.write(b"\0" * (1 << 20))
        except OSError:
            pass
    with pytest.raises(errors.NotWritableError) as info:
        errors.ensure_writable_dir(str(tiny_tmpfs / "run"))
    assert "No space left on device" in str(info.value)
