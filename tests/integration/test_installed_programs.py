"""The programs as a user runs them: installed, from PATH, in any folder.

The project is built into a wheel and installed into a fresh virtual
environment (which reuses the machine's already installed dependencies, so
no download happens). Every program then runs from that environment's bin/
in an unrelated folder, away from the checkout: `--help` for each, and a real
tiny chain, datagen -> trainer (a user's own gin file that includes a shipped
one by its short name) -> exporter -> decoder, on the smallest offline demo
problem. Nothing here may depend on the checkout's bin/ or gin/ folders.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PROGRAMS = (
    "t2t-mm-datagen",
    "t2t-mm-trainer",
    "t2t-mm-decoder",
    "t2t-mm-exporter",
    "t2t-mm-serve",
    "t2t-mm-import",
    "t2t-mm-demo",
    "t2t-mm-avg-checkpoints",
)
PROBLEM = "demo_parse_ptb_allennlp"  # 40 trees: the smallest real problem.
USER_GIN = """\
# A user's own experiment: the shipped one by its short name, made tiny.
include 'experiments/demo_all_tiny.gin'

from t2t_multimodel.training import evaluation

PROBLEMS = "{problem}"
TRAIN_STEPS = 2
HIDDEN_DIM = 16
EXPERT_DIM = 16
NUM_EXPERTS = 2
BATCH_SIZE = 64
evaluation.EvalConfig.steps = 1
evaluation.EvalConfig.max_decode_length = 8
"""


def _run(venv, args, cwd, stdin=None, timeout=600):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env["PATH"]
    return subprocess.run(
        args,
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A virtual environment with the project installed from a wheel."""
    base = tmp_path_factory.mktemp("installed")
    dist = base / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            ROOT,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The wheel is built from the checkout: leave no build/ folder behind.
    (wheel,) = glob.glob(str(dist / "t2t_multimodel-*.whl"))
    path = str(base / "venv")
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", path],
        check=True,
        timeout=300,
    )
    subprocess.run(
        [
            os.path.join(path, "bin", "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            wheel,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path


@pytest.fixture
def elsewhere(tmp_path):
    """A folder with nothing of the project in it."""
    folder = tmp_path / "user" / "work"
    folder.mkdir(parents=True)
    return folder


def test_the_environment_uses_the_installed_copy(venv, elsewhere):
    done = _run(
        venv,
        [
            "python",
            "-c",
            "import programs, t2t_multimodel, problems;"
            "print(programs.__file__, t2t_multimodel.__file__)",
        ],
        elsewhere,
    )
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert path.startswith(venv), path


@pytest.mark.parametrize("program", PROGRAMS)
def test_help_from_path(venv, elsewhere, program):
    done = _run(venv, [program, "--help"], elsewhere)
    # absl exits with 1 after printing --help, by design.
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    assert program in done.stdout
    assert shutil_which(venv, program)


def shutil_which(venv, program):
    path = os.path.join(venv, "bin", program)
    return os.path.isfile(path) and os.access(path, os.X_OK)


def test_a_real_tiny_chain_from_an_unrelated_folder(venv, elsewhere):
    (elsewhere / "mine.gin").write_text(USER_GIN.format(problem=PROBLEM))
    steps = [
        ["t2t-mm-datagen", f"--problem={PROBLEM}", "--data_dir=data"]
        + ["--tmp_dir=raw"],
        ["t2t-mm-trainer", "--gin_file=mine.gin", "--data_dir=data"]
        + ["--model_dir=model"],
        # No --data_dir: the run's model_dir must hold what export needs.
        ["t2t-mm-exporter", "--model_dir=model", "--export_dir=export"],
    ]
    for args in steps:
        done = _run(venv, args, elsewhere)
        assert done.returncode == 0, (args, done.stderr[-3000:])
        noise = [
            line
            for line in done.stderr.splitlines()
            if line.startswith("E") and "resource_reader" in line
        ]
        assert not noise, noise
    assert (elsewhere / "model" / "operative_config.gin").is_file()
    assert (elsewhere / "export" / "saved_model.pb").is_file()
    done = _run(
        venv,
        [
            "t2t-mm-decoder",
            "--model_dir=model",
            f"--problem={PROBLEM}",
            "--beam_size=1",
            "--max_length=8",
        ],
        elsewhere,
        stdin="The dog barks .\nA cat sat .\n",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip().splitlines()) == 2
    # A misspelt macro in the user's bindings is an error, not ignored.
    done = _run(
        venv,
        [
            "t2t-mm-trainer",
            "--gin_file=mine.gin",
            "--data_dir=data",
            "--model_dir=model2",
            "--gin_bindings=HIDEN_DIM = 16",
        ],
        elsewhere,
    )
    assert done.returncode == 1
    assert "HIDEN_DIM" in done.stderr and "HIDDEN_DIM" in done.stderr
    assert not (elsewhere / "model2").exists()
