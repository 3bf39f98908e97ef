"""t2t-mm-trainer under SIGTERM and SIGKILL (subprocesses, tiny model).

SIGTERM: the step in progress finishes, a checkpoint of that step is saved
and the trainer exits with 143. SIGKILL at a random step: the rerun restores
the newest checkpoint and continues at the step after it.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from t2t_multimodel import errors
from tests.training import fake_problems

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
EXPERIMENT = """
from __gin__ import dynamic_registration
include 'runs/train.gin'
from t2t_multimodel.training import configs
from t2t_multimodel.training import evaluation
from t2t_multimodel.training import loop
from tests.training import fake_problems
PROBLEMS = "unused: the problems come from fake_problems"
HIDDEN_DIM = 16
BATCH_SIZE = 8
BATCH_UNIT = "examples"
MAX_LENGTH = 16
loop.train.problems = [@fake_problems.text_problem()]
loop.train.model_fn = @fake_problems.tiny_model
loop.train.log_every = 1
evaluation.EvalConfig.every = 0
evaluation.EvalConfig.steps = 1
"""
# An absolute include: with ROOT on PYTHONPATH, a `runs/` directory in ROOT
# (run outputs) would shadow gin/runs for gin's Python-path reader.
EXPERIMENT = EXPERIMENT.replace(
    "'runs/train.gin'",
    repr(os.path.join(ROOT, "t2t_multimodel", "configs", "runs", "train.gin")),
)
STEP = re.compile(r"step (\d+)/")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("interrupts")
    fake_problems.write([fake_problems.text_problem()], str(path / "data"))
    (path / "experiment.gin").write_text(EXPERIMENT)
    return path


def _start(setup, model_dir, steps, every):
    return subprocess.Popen(
        [
            sys.executable,
            os.path.join(ROOT, "bin", "t2t-mm-trainer"),
            f"--gin_file={setup / 'experiment.gin'}",
            f"--gin_bindings=TRAIN_STEPS = {steps}",
            f"--gin_bindings=configs.CheckpointConfig.every = {every}",
            f"--data_dir={setup / 'data'}",
            f"--model_dir={model_dir}",
        ],
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def _wait_for_step(proc, step: int) -> list[str]:
    """Reads the log until step `step` is logged; returns the lines read."""
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        lines.append(line)
        found = STEP.search(line)
        if found and int(found.group(1)) >= step:
            return lines
        assert time.monotonic() < deadline, "no such step within 300 s"
    pytest.fail("the trainer exited early:\n" + "".join(lines[-30:]))


def _checkpoint_step(model_dir) -> int:
    return int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])


def test_sigterm_saves_the_current_step_and_exits_143(setup, tmp_path):
    model_dir = tmp_path / "model"
    proc = _start(setup, model_dir, steps=10_000, every=1000)
    try:
        _wait_for_step(proc, 3)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == errors.EXIT_TERMINATED == 143, rest[-2000:]
    saved = re.search(r"SIGTERM: saved step (\d+)", rest)
    assert saved, rest[-2000:]
    # No periodic checkpoint before step 1000: this one is SIGTERM's.
    assert _checkpoint_step(model_dir) == int(saved.group(1)) >= 3


@pytest.mark.slow
def test_sigkill_at_a_random_step_resumes_at_that_checkpoint(setup, tmp_path):
    model_dir = tmp_path / "model"
    kill_at = random.Random(9).randint(4, 9)
    proc = _start(setup, model_dir, steps=10_000, every=2)
    try:
        _wait_for_step(proc, kill_at)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = _checkpoint_step(model_dir)
    assert saved % 2 == 0 and kill_at - 2 <= saved <= kill_at + 2
    proc = _start(setup, model_dir, steps=saved + 2, every=2)
    log = proc.stderr.read()
    proc.wait(timeout=300)
    assert proc.returncode == 0, log[-2000:]
    assert f"at step {saved}" in log  # "restored <path> at step <saved>"
    steps = [int(s) for s in STEP.findall(log)]
    assert steps == [saved + 1, saved + 2]
