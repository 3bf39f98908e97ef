"""A datagen killed with SIGKILL mid-shard leaves nothing taken as complete.

A child process generates a fake text problem whose train generator stops
(sleeps) half-way through writing the shards, after the vocabulary exists;
it is killed with SIGKILL there. The input pipeline must then refuse the
split (no shard counts as complete), and a rerun must finish it with every
example.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from problems import problem as problem_lib
from t2t_multimodel.data import pipeline
from tests.data import fake_problems

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
NAME = "reliability_atomic_text"
NUM_TRAIN = 120
CHILD = f"""
import dataclasses, os, sys, time
from problems import registry
from programs import datagen
from problems import problem as problem_lib
from tests.data import fake_problems

data_dir, mode = sys.argv[1], sys.argv[2]
base = fake_problems.make_text_problem({NUM_TRAIN}, 6, num_shards=3)

def train(tmp_dir):
    vocab_done = os.path.exists(
        os.path.join(data_dir, fake_problems.VOCAB_FILE))
    for i, s in enumerate(fake_problems.sentences({NUM_TRAIN}, 0)):
        if mode == "slow" and vocab_done and i == 60:
            open(os.path.join(data_dir, "..", "stopped"), "w").close()
            time.sleep(600)
        yield {{"inputs": s, "targets": " ".join(s.split()[::-1])}}

problem = dataclasses.replace(
    base, name="{NAME}",
    generators={{problem_lib.TRAIN: train,
                 problem_lib.DEV: base.generators[problem_lib.DEV]}})
registry.register(problem)
datagen.generate_data(problem_names="{NAME}", data_dir=data_dir,
                      tmp_dir=data_dir, vocab_size=64, verbose=False)
"""


def _child(data_dir: str, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, data_dir, mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_killed_datagen_leaves_no_complete_looking_shard(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    proc = _child(str(data_dir), "slow")
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "stopped").exists():
            if proc.poll() is not None:
                pytest.fail(proc.stdout.read().decode()[-2000:])
            assert time.monotonic() < deadline, "datagen never got half-way"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    problem = fake_problems.make_text_problem(NUM_TRAIN, 6, num_shards=3)
    problem = problem_lib.Problem(**{**problem.__dict__, "name": NAME})
    left = sorted(os.listdir(data_dir))
    with pytest.raises(pipeline.MissingShardsError) as info:
        pipeline.find_shards(problem, "train", str(data_dir))
    assert NAME in str(info.value) and "t2t-mm-datagen" in str(info.value)

    rerun = _child(str(data_dir), "fast")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out.decode()[-2000:]
    paths, counts = pipeline.find_shards(problem, "train", str(data_dir))
    assert len(paths) == 3 and sum(counts) == NUM_TRAIN
    records = sum(1 for p in paths for _ in tf.data.TFRecordDataset(p))
    assert records == NUM_TRAIN
    # What the killed run left was partial, never under a final name.
    final = {os.path.basename(p) for p in paths}
    assert not final & set(left)
