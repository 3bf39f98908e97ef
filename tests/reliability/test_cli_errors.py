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


@pytest.mark.parametrize("where", ["a_file", "under_a_file"])
def test_datagen_data_dir_that_is_or_is_under_a_file(tmp_path, where):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    data_dir = blocker if where == "a_file" else blocker / "data"
    done = _run(
        "t2t-mm-datagen",
        "--problem=demo_translate_ende_ding",
        f"--data_dir={data_dir}",
        f"--tmp_dir={tmp_path / 'raw'}",
    )
    line = _error_line(done, "t2t-mm-datagen")
    assert f"cannot write to {data_dir}: " in line
    assert blocker.read_text() == "not a directory"
    assert "Building vocabulary" not in done.stderr


@pytest.fixture()
def read_only_dir(tmp_path):
    """A read-only tmpfs (root ignores file modes; needs mount rights)."""
    mount_point = tmp_path / "read_only"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"]
        + [str(mount_point)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_datagen_read_only_data_dir_fails_before_any_work(
    tmp_path, read_only_dir
):
    done = _run(
        "t2t-mm-datagen",
        "--problem=demo_translate_ende_ding",
        f"--data_dir={read_only_dir}",
        f"--tmp_dir={tmp_path / 'raw'}",
    )
    line = _error_line(done, "t2t-mm-datagen")
    assert line == (
        f"t2t-mm-datagen: error: cannot write to {read_only_dir}: Read-only "
        "file system. Choose a writable directory with free space."
    )
    # Checked first: the vocabulary (minutes on real data) was not built.
    assert "Building vocabulary" not in done.stderr


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


def test_trainer_misspelt_macro_names_the_nearest(train_setup):
    model_dir = train_setup / "misspelt"
    done = _train(
        train_setup,
        "--gin_bindings=PROBLEMS = 'demo_translate_ende_ding'",
        "--gin_bindings=HIDEN_DIM = 32",
        model_dir=str(model_dir),
    )
    line = _error_line(done, "t2t-mm-trainer")
    assert line == (
        "t2t-mm-trainer: error: gin binding 'HIDEN_DIM = 32' sets macro "
        "HIDEN_DIM, which no gin file of this run defines (it would be "
        "ignored); did you mean HIDDEN_DIM?"
    )
    assert not model_dir.exists()  # Nothing was trained or written.


def test_trainer_run_prints_no_gin_lookup_errors(tmp_path):
    # A real run with a short include: gin's Python-path reader logs an
    # absl ERROR line ("E... resource_reader.py:55] Path not found:
    # runs/train.gin") per search-path miss before finding the file;
    # gin_setup's filter drops them. TF's own C++ log level is left to the
    # program's default (no TF_CPP_MIN_LOG_LEVEL in the environment).
    if os.path.isdir(os.path.join(ROOT, "runs")):
        pytest.skip("a runs/ directory in the checkout shadows gin/runs")
    fake_problems.write([fake_problems.text_problem()], str(tmp_path / "data"))
    experiment = EXPERIMENT.replace(
        repr(
            os.path.join(ROOT, "t2t_multimodel", "configs", "runs", "train.gin")
        ),
        "'runs/train.gin'",
    )
    assert "include 'runs/train.gin'" in experiment
    experiment += (
        "PROBLEMS = 'unused: the problems come from fake_problems'\n"
        "loop.train.problems = [@fake_problems.text_problem()]\n"
        "TRAIN_STEPS = 1\n"
    )
    (tmp_path / "experiment.gin").write_text(experiment)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(BIN, "t2t-mm-trainer"),
            "--gin_file=experiment.gin",
            "--data_dir=data",
            "--model_dir=model",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Path not found" not in done.stderr, done.stderr[-3000:]
    errors_logged = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("E") and "resource_reader" in line
    ]
    assert not errors_logged


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
