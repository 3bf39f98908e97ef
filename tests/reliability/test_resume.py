"""Resuming a run whose data changed, or after a failed start or save.

A module fixture trains the tiny text problem of tests/training/
fake_problems.py through `bin/t2t-mm-trainer` (3 steps, checkpoints at 2 and
3); each test copies that `model_dir` and breaks one thing: another
vocabulary in the data_dir, a wrong model configuration without
`model_config.json`, re-sharded data, a disk that fills up during a save.
The trainer must exit 1 with one `t2t-mm-trainer: error:` line (or go on
with a warning where it can) and leave the run's files as they were.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from t2t_multimodel import errors
from t2t_multimodel.data import tfrecord
from t2t_multimodel.data import vocabulary as vocabulary_lib
from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.training import checkpoints, loop
from tests.training import fake_problems

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
PROG = "t2t-mm-trainer"
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
configs.CheckpointConfig.every = 2
configs.DataConfig.shuffle_buffer = 1
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


def _trainer(setup, data_dir, model_dir, steps, *extra, module=None):
    """Runs the trainer (or `python -m module`, a patched trainer)."""
    program = ["-m", module] if module else [os.path.join(ROOT, "bin", PROG)]
    return subprocess.run(
        [
            sys.executable,
            *program,
            f"--gin_file={setup / 'experiment.gin'}",
            f"--gin_bindings=TRAIN_STEPS = {steps}",
            f"--data_dir={data_dir}",
            f"--model_dir={model_dir}",
            *extra,
        ],
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


def _snapshot(directory) -> dict[str, str]:
    """Relative path -> sha256 of every file under `directory`."""
    out = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, directory)] = digest
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume")
    fake_problems.write([fake_problems.text_problem()], str(path / "data"))
    (path / "experiment.gin").write_text(EXPERIMENT)
    done = _trainer(path, path / "data", path / "model", 3)
    assert done.returncode == 0, done.stderr[-3000:]
    return path


@pytest.fixture()
def run(setup, tmp_path):
    """A copy of the trained run (checkpoints at steps 2 and 3)."""
    shutil.copytree(setup / "model", tmp_path / "model")
    return tmp_path / "model"


def _write_data(data_dir, vocab, num_shards: int = 2) -> None:
    problem = fake_problems.text_problem()
    for split in ("train", "dev"):
        tfrecord.write_split(
            problem.generate(split, ""),
            problem.features,
            {fake_problems.VOCAB_FILE: vocab},
            str(data_dir),
            problem.name,
            split,
            num_shards if split == "train" else 1,
        )


def test_run_keeps_its_vocabulary(setup):
    kept = setup / "model" / fake_problems.VOCAB_FILE
    original = setup / "data" / fake_problems.VOCAB_FILE
    assert kept.read_bytes() == original.read_bytes()
    # So decoding and export find it without --data_dir.
    vocab = decoder_lib.find_vocabulary(
        fake_problems.text_problem(), [str(setup / "model")]
    )
    assert vocab.path == str(kept)


def test_resume_with_another_vocabulary_is_refused(setup, run, tmp_path):
    other = tmp_path / "other_data"
    other.mkdir()
    # The same size, other pieces: the words with other letters get the
    # ids of the original words ("ij kl" here is "ab cd" there).
    letters = str.maketrans("abcdefgh", "ijklmnop")
    vocab = vocabulary_lib.build_vocabulary(
        [" ".join(fake_problems.WORDS).translate(letters)] * 20,
        str(other / fake_problems.VOCAB_FILE),
        vocab_size=24,
    )
    original = vocabulary_lib.Vocabulary.load(
        str(setup / "data" / fake_problems.VOCAB_FILE)
    )
    assert vocab.vocab_size == original.vocab_size
    assert vocab.sha256 != original.sha256
    _write_data(other, vocab)
    before = _snapshot(run)
    line = _error_line(_trainer(setup, other, run, 5))
    assert (
        f"{other / fake_problems.VOCAB_FILE} holds another vocabulary "
        f"{fake_problems.VOCAB_FILE} than the one this run was trained with "
        f"({run / fake_problems.VOCAB_FILE}" in line
    )
    assert "--data_dir" in line and "t2t-mm-datagen" in line
    assert _snapshot(run) == before


def test_failed_restore_writes_nothing(setup, run):
    # A run without model_config.json, resumed with another model size:
    # the restore fails, and the run with the right size then resumes.
    (run / "model_config.json").unlink()
    (run / "model.ckpt-9_temp").mkdir()  # Left by a save killed half-way.
    (run / "model.ckpt-9_temp" / "part-00000-of-00001.index").write_text("x")
    before = _snapshot(run)
    done = _trainer(
        setup,
        setup / "data",
        run,
        5,
        "--gin_bindings=fake_problems.tiny_model.hidden_dim = 32",
    )
    line = _error_line(done)
    assert f"{run / 'model.ckpt-3'} does not fit the requested model" in line
    assert (
        "decoder/attention_norm_0/beta [16] in the checkpoint, [32] in the "
        "model" in line
    )
    after = _snapshot(run)
    assert "model_config.json" not in after
    # Only the interrupted save's leftovers were removed.
    assert {k: v for k, v in before.items() if "_temp" not in k} == after

    done = _trainer(setup, setup / "data", run, 4)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [int(s) for s in STEP.findall(done.stderr)] == [4]
    assert (run / "model_config.json").exists()
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-4")


def test_resharded_data_restarts_the_data_stream(setup, run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(setup / "data", data)
    for name in os.listdir(data):
        if name.startswith("fake_copy_text-train"):
            os.remove(data / name)
    vocab = vocabulary_lib.Vocabulary.load(str(data / fake_problems.VOCAB_FILE))
    _write_data(data, vocab, num_shards=3)  # Was 2.
    done = _trainer(setup, data, run, 4)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FailedPrecondition" not in done.stderr
    assert "the input data changed since" in done.stderr
    assert f"restored {run / 'model.ckpt-3'} at step 3" in done.stderr
    assert [int(s) for s in STEP.findall(done.stderr)] == [4]
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-4")
    assert (run / "model.ckpt-3.index").exists()  # keep=5: still there.


def test_disk_full_during_a_save(setup, run):
    # tests/reliability/full_disk_trainer.py: the trainer, with a save
    # that fails as SaveV2 does on a full disk from step 4 on (a part file
    # in model.ckpt-4_temp/, then ResourceExhaustedError).
    before = _snapshot(run)
    done = _trainer(
        setup,
        setup / "data",
        run,
        6,
        module="tests.reliability.full_disk_trainer",
    )
    line = _error_line(done)
    assert f"the disk of {run} is full: saving the checkpoint of step 4" in line
    assert "No space left on device" in line
    assert f"the newest complete checkpoint, {run / 'model.ckpt-3'}" in line
    assert "rerun the same command" in line
    # Nothing of the failed save is left; the previous checkpoint is intact.
    assert not [n for n in os.listdir(run) if "ckpt-4" in n]
    assert tf.train.latest_checkpoint(str(run)).endswith("model.ckpt-3")
    after = _snapshot(run)
    for name in ("model.ckpt-3.index", "model.ckpt-2.index", "checkpoint"):
        assert after[name] == before[name]


def _train_in_process(data_dir, model_dir, steps, **checkpoint):
    return loop.train(
        problems=[fake_problems.text_problem()],
        data_dir=str(data_dir),
        model_dir=str(model_dir),
        model_fn=fake_problems.tiny_model,
        train_steps=steps,
        learning_rate_schedule=0.05,
        data=loop.DataConfig(
            batch_size=8, batch_unit="examples", max_length=16
        ),
        checkpoint=loop.CheckpointConfig(every=2, **checkpoint),
        evaluation=loop.EvalConfig(every=0, steps=1, batch_size=4),
        log_every=1,
    )


def test_unknown_data_position_that_does_not_fit(setup, tmp_path, monkeypatch):
    # A checkpoint without the data fingerprint (saved before it existed)
    # whose data position does not fit re-sharded data: the error names
    # the setting that resumes without it.
    data = tmp_path / "data"
    shutil.copytree(setup / "data", data)
    model_dir = tmp_path / "model"
    _train_in_process(data, model_dir, 2)
    for name in os.listdir(data):
        if name.startswith("fake_copy_text-train"):
            os.remove(data / name)
    vocab = vocabulary_lib.Vocabulary.load(str(data / fake_problems.VOCAB_FILE))
    _write_data(data, vocab, num_shards=3)
    monkeypatch.setattr(checkpoints, "_FINGERPRINT_KEY", "absent")
    with pytest.raises(errors.IncompatibleCheckpointError) as info:
        _train_in_process(data, model_dir, 3)
    message = str(info.value)
    assert "the input data position saved in" in message
    assert "model.ckpt-2" in message
    assert "configs.CheckpointConfig.restore_data_position = False" in message
    result = _train_in_process(data, model_dir, 3, restore_data_position=False)
    assert result["step"] == 3


def test_free_space_counts_every_kept_checkpoint(setup, tmp_path):
    fresh = checkpoints.free_space_needed(str(tmp_path), 100, keep=5)
    assert fresh == (
        600,
        "6 checkpoints of this model: keep=5 plus the one being written",
    )
    # The trained run holds two: four more until the oldest is deleted.
    resumed = checkpoints.free_space_needed(str(setup / "model"), 100, 5)
    assert resumed == (
        400,
        "4 checkpoints of this model: keep=5 plus the one being written, "
        "2 already there",
    )
    assert checkpoints.free_space_needed(str(tmp_path), 100, None)[0] == 200
