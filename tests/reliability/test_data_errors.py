"""Broken data reaching t2t-mm-trainer: one paragraph naming the file.

A fresh copy of the tiny text problem's shards (tests/training/
fake_problems.py) is broken in one way per test: a truncated shard, shards
of another problem under this problem's names, a replaced vocabulary. The
trainer must exit 1 with one `t2t-mm-trainer: error:` line that names the
file and what is wrong, without a Python traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from t2t_multimodel import errors
from t2t_multimodel.data import vocabulary
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
TRAIN_STEPS = 3
loop.train.problems = [@fake_problems.text_problem()]
loop.train.model_fn = @fake_problems.tiny_model
configs.DataConfig.shuffle_buffer = 1
evaluation.EvalConfig.every = 0
"""
# An absolute include: with ROOT on PYTHONPATH, a `runs/` directory in ROOT
# (run outputs) would shadow gin/runs for gin's Python-path reader.
EXPERIMENT = EXPERIMENT.replace(
    "'runs/train.gin'",
    repr(os.path.join(ROOT, "t2t_multimodel", "configs", "runs", "train.gin")),
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("pristine")
    fake_problems.write([fake_problems.text_problem()], str(path / "data"))
    (path / "experiment.gin").write_text(EXPERIMENT)
    return path


@pytest.fixture()
def data(pristine, tmp_path):
    shutil.copytree(pristine / "data", tmp_path / "data")
    return tmp_path / "data"


def _train(pristine, data_dir, model_dir, *extra):
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "bin", "t2t-mm-trainer"),
            f"--gin_file={pristine / 'experiment.gin'}",
            f"--data_dir={data_dir}",
            f"--model_dir={model_dir}",
            *extra,
        ],
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == errors.EXIT_USER_ERROR, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("t2t-mm-trainer: error: ")
    ]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def test_truncated_shard(pristine, data, tmp_path):
    # Cut inside the first record, so the first step reads the end of the
    # shard (a cut further in fails when reading gets there: streaming).
    for i in range(2):
        shard = data / f"fake_copy_text-train-0000{i}-of-00002"
        shard.write_bytes(shard.read_bytes()[:30])
    line = _train(pristine, data, tmp_path / "model")
    assert (
        f"Corrupt or truncated TFRecord shard {data}/fake_copy_text-train-0000"
        in line
    )
    assert "read records: 0 expected: 100" in line


def test_shards_of_another_problem(pristine, data, tmp_path):
    # The shards are renamed to another problem's names, meta and all.
    for name in os.listdir(data):
        if name.startswith("fake_copy_text"):
            os.rename(
                data / name, data / name.replace("fake_copy_text", "other")
            )
    line = _train(
        pristine,
        data,
        tmp_path / "model",
        "--gin_bindings=fake_problems.text_problem.name = 'other'",
    )
    assert str(data / "other-train-?????-of-?????") in line
    assert "written for problem 'fake_copy_text', not 'other'" in line


def test_vocabulary_that_does_not_match(pristine, data, tmp_path):
    path = data / fake_problems.VOCAB_FILE
    vocabulary.build_vocabulary(
        ["a different corpus for another vocabulary"] * 50,
        str(tmp_path / "other.model"),
        vocab_size=32,
    )
    shutil.copy(tmp_path / "other.model", path)
    line = _train(pristine, data, tmp_path / "model")
    assert f"were written with another {fake_problems.VOCAB_FILE}" in line
    assert str(data) in line
    with open(data / "fake_copy_text-train.meta.json") as f:
        assert fake_problems.VOCAB_FILE in json.load(f)["vocabularies"]
