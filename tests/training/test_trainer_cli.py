"""`bin/t2t-mm-trainer`: gin tiers, operative config, resume after SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import gin
import pytest
import tensorflow as tf

from tests.training import fake_problems

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TRAINER = os.path.join(ROOT, "bin", "t2t-mm-trainer")

# The experiment tier of a test: gin/runs/train.gin plus tiny values, with
# the fake problems and the tiny model of tests/training/fake_problems.py.
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
LEARNING_RATE = 0.5
WARMUP_STEPS = 10
loop.train.problems = [@fake_problems.text_problem()]
loop.train.model_fn = @fake_problems.tiny_model
loop.train.log_every = 1
configs.CheckpointConfig.every = 4
evaluation.EvalConfig.every = 0
evaluation.EvalConfig.steps = 1
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _command(tmp_path, model_dir, steps):
    return [
        sys.executable,
        TRAINER,
        f"--gin_file={tmp_path / 'experiment.gin'}",
        f"--gin_bindings=TRAIN_STEPS = {steps}",
        f"--data_dir={tmp_path / 'data'}",
        f"--model_dir={model_dir}",
    ]


@pytest.fixture()
def setup(tmp_path):
    fake_problems.write([fake_problems.text_problem()], str(tmp_path / "data"))
    (tmp_path / "experiment.gin").write_text(EXPERIMENT)
    return tmp_path


def test_help_runs():
    out = subprocess.run(
        [sys.executable, TRAINER, "--help"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    # absl exits with status 1 after printing the help (by design).
    assert out.returncode in (0, 1)
    assert "--gin_file" in out.stdout + out.stderr
    assert "--model_dir" in out.stdout + out.stderr


@pytest.mark.slow
def test_sigkill_then_resume_and_operative_config(setup):
    tmp_path = setup
    model_dir = tmp_path / "model"
    proc = subprocess.Popen(
        _command(tmp_path, model_dir, 10_000),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            latest = tf.train.latest_checkpoint(str(model_dir))
            if latest and int(latest.rsplit("-", 1)[1]) >= 8:
                break
            assert proc.poll() is None, "the trainer exited early"
            time.sleep(0.5)
        else:
            pytest.fail("no checkpoint within 300 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = int(tf.train.latest_checkpoint(str(model_dir)).split("-")[-1])
    assert killed_at % 4 == 0

    # The operative config was written at start and gin re-parses it.
    text = (model_dir / "operative_config.gin").read_text()
    assert "loop.train" in text and "fake_problems.tiny_model" in text
    gin.clear_config()
    try:
        gin.parse_config(text)
    finally:
        gin.clear_config()

    out = subprocess.run(
        _command(tmp_path, model_dir, killed_at + 2),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    logged = [int(s) for s in re.findall(r"step (\d+)/", out.stderr)]
    assert logged == [killed_at + 1, killed_at + 2]
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(
        f"ckpt-{killed_at + 2}"
    )
    assert (model_dir / "eval_results.json").exists()


def _parse(files, bindings):
    import problems  # noqa: F401  (the gin files import the registry)

    gin.clear_config()
    for sub in ("", "models", "runs", "experiments"):
        gin.add_config_file_search_path(
            os.path.join(ROOT, "t2t_multimodel", "configs", sub)
        )
    try:
        gin.parse_config_files_and_bindings(files, bindings)
        return {
            name: gin.query_parameter(f"{name}/macro.value")
            for name in ("PROBLEMS", "MIXING", "STRATEGY", "HIDDEN_DIM")
        }
    finally:
        gin.clear_config()


@pytest.mark.parametrize(
    "experiment",
    sorted(  # gin/experiments/paper/ is tested by tests/experiments.
        f
        for f in os.listdir(
            os.path.join(ROOT, "t2t_multimodel", "configs", "experiments")
        )
        if f.endswith(".gin")
    ),
)
def test_experiments_parse(experiment):
    macros = _parse(
        [
            os.path.join(
                ROOT, "t2t_multimodel", "configs", "experiments", experiment
            )
        ],
        ["DATA_DIR = '/d'", "MODEL_DIR = '/m'"],
    )
    assert macros["PROBLEMS"] and macros["HIDDEN_DIM"] > 0


def test_required_macros_are_enforced():
    with pytest.raises(ValueError, match="MODEL_DIR"):
        _parse(
            [
                os.path.join(
                    ROOT,
                    "t2t_multimodel",
                    "configs",
                    "experiments",
                    "demo_all_tiny.gin",
                )
            ],
            ["DATA_DIR = '/d'"],
        )


@pytest.mark.parametrize(
    "bindings, step_mixing, k",
    [
        ([], "one_per_step", 2),
        (["STEP_MIXING = 'all_per_step'"], "all_per_step", 2),
        (
            ["STEP_MIXING = 'k_per_step'", "PROBLEMS_PER_STEP = 3"],
            "k_per_step",
            3,
        ),
    ],
)
def test_step_mixing_is_a_gin_setting(bindings, step_mixing, k):
    import problems  # noqa: F401  (the gin files import the registry)
    from t2t_multimodel.training import configs

    gin.clear_config()
    for sub in ("", "models", "runs", "experiments"):
        gin.add_config_file_search_path(
            os.path.join(ROOT, "t2t_multimodel", "configs", sub)
        )
    try:
        gin.parse_config_files_and_bindings(
            [
                os.path.join(
                    ROOT,
                    "t2t_multimodel",
                    "configs",
                    "experiments",
                    "demo_all_tiny.gin",
                )
            ],
            ["DATA_DIR = '/d'", "MODEL_DIR = '/m'", *bindings],
        )
        data = gin.get_bindings(configs.DataConfig)
    finally:
        gin.clear_config()
    assert data["step_mixing"] == step_mixing
    assert data["problems_per_step"] == k
    assert configs.DataConfig().step_mixing == "one_per_step"
