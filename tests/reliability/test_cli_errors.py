"""Bad input to the command-line tools: one paragraph, no traceback, exit 1.

Each case runs a `bin/` script in a subprocess and checks the exact parts of
its message that a user needs (the bad name and its nearest names, the file
and line, the directory); docs/RELIABILITY.md lists the full messages.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from t2t_multimodel import errors
from tests.training import fake_problems

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
BIN = os.path.join(ROOT, "bin")
EXPERIMENT = """
from __gin__ import dynamic_registration
include 'runs/train.gin'
from t2t_multimodel.training import evaluation
from t2t_multimodel.training import loop
from tests.training import fake_problems
HIDDEN_DIM = 16
BATCH_SIZE = 8
BATCH_UNIT = "examples"
MAX_LENGTH = 16
TRAIN_STEPS = 2
loop.train.model_fn = @fake_problems.tiny_model
evaluation.EvalConfig.every = 0
"""
# An absolute include: with ROOT on PYTHONPATH, a `runs/` directory in ROOT
# (run outputs) would shadow gin/runs for gin's Python-path reader.
EXPERIMENT = EXPERIMENT.replace(
    "'runs/train.gin'",
    repr(os.path.join(ROOT, "t2t_multimodel", "configs", "runs", "train.gin")),
)


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, os.path.join(BIN, script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def _error_line(done: subprocess.CompletedProcess, prog: str) -> str:
    assert done.returncode == errors.EXIT_USER_ERROR, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [
        line
        for line in done.stderr.splitlines()
        if line.startswith(f"{prog}: error: ")
    ]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def test_datagen_unknown_problem_lists_nearest_names(tmp_path):
    done = _run(
        "t2t-mm-datagen",
        "--problem=translate_ende_wmt8",
        f"--data_dir={tmp_path}",
        f"--tmp_dir={tmp_path}",
    )
    line = _error_line(done, "t2t-mm-datagen")
    assert "unknown problem or mixture 'translate_ende_wmt8'" in line
    assert "Did you mean: translate_ende_wmt8k" in line


def test_datagen_missing_raw_data_says_what_goes_where(tmp_path):
    done = _run(
        "t2t-mm-datagen",
        "--problem=parse_ptb_wsj8k",
        f"--data_dir={tmp_path / 'data'}",
        f"--tmp_dir={tmp_path / 'raw'}",
    )
    line = _error_line(done, "t2t-mm-datagen")
    assert str(tmp_path / "raw") in line


@pytest.fixture(scope="module")
def train_setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    fake_problems.write([fake_problems.text_problem()], str(path / "data"))
    (path / "experiment.gin").write_text(EXPERIMENT)
    return path


def _train(setup, *extra: str, model_dir: str | None = None):
    return _run(
        "t2t-mm-trainer",
        f"--gin_file={setup / 'experiment.gin'}",
        f"--data_dir={setup / 'data'}",
        f"--model_dir={model_dir or setup / 'model'}",
        *extra,
    )


def test_trainer_unknown_problem(train_setup):
    done = _train(train_setup, "--gin_bindings=PROBLEMS = 'fake_copy_txt'")
    line = _error_line(done, "t2t-mm-trainer")
    assert "unknown problem or mixture 'fake_copy_txt'" in line
    assert "<function" not in line


def test_trainer_missing_required_macro(train_setup):
    done = _train(train_setup)  # The experiment does not set PROBLEMS.
    line = _error_line(done, "t2t-mm-trainer")
    assert "PROBLEMS" in line and "%gin.REQUIRED" in line
    assert "--gin_bindings" in line


def test_trainer_unknown_gin_file(train_setup):
    done = _train(train_setup, "--gin_file=experiments/no_such.gin")
    line = _error_line(done, "t2t-mm-trainer")
    assert "gin file experiments/no_such.gin not found" in line


def test_trainer_binding_to_missing_parameter(train_setup):
    bad = train_setup / "bad.gin"
    bad.write_text("PROBLEMS = 'x'\nconfigs.DataConfig.bach_size = 3\n")
    done = _train(train_setup, f"--gin_file={bad}")
    line = _error_line(done, "t2t-mm-trainer")
    assert f'In file "{bad}", line 2' in line
    assert "bach_size" in line


def test_trainer_gin_syntax_error(train_setup):
    bad = train_setup / "syntax.gin"
    bad.write_text("PROBLEMS = 'x'\nTRAIN_STEPS = [1,\n")
    done = _train(train_setup, f"--gin_file={bad}")
    line = _error_line(done, "t2t-mm-trainer")
    assert f"gin syntax error in {bad}, line 3" in line


def test_trainer_unwritable_model_dir(train_setup):
    blocker = train_setup / "a_file"
    blocker.write_text("x")
    done = _train(
        train_setup,
        "--gin_bindings=PROBLEMS = 'demo_translate_ende_ding'",
        model_dir=str(blocker / "model"),
    )
    line = _error_line(done, "t2t-mm-trainer")
    assert f"cannot write to {blocker / 'model'}" in line


def test_gin_errors_in_process_name_file_line_and_name(tmp_path):
    import gin

    @gin.configurable("reliability_fn")
    def fn(a=1):
        return a

    path = tmp_path / "x.gin"
    path.write_text("reliability_fn.a = 2\nno_such_fn.a = 3\n")
    gin.clear_config()
    try:
        with pytest.raises(errors.ConfigError) as info:
            with errors.gin_config_errors([str(path)]):
                gin.parse_config_files_and_bindings([str(path)], [])
    finally:
        gin.clear_config()
    message = errors.format_user_error("prog", info.value)
    assert message == (
        "prog: error: bad gin configuration: No configurable matching "
        f"'no_such_fn'. In file \"{path}\", line 2 no_such_fn.a = 3"
    )
