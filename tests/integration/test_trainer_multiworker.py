"""Two MultiWorkerMirroredStrategy workers on loopback ports stay in sync.

Each worker is a subprocess with its own TF_CONFIG. In the paper's per-worker
mode worker 0 trains a text problem and worker 1 an image problem (different
sub-graphs, the same all-reduced gradient list); with a uniform mixture both
follow the same seeded schedule; with `all_per_step` both train both problems
in every update. Either way both must end with identical
trainable weights, different from the initial ones.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.training import fake_problems

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

WORKER = """
import logging
import sys
import numpy as np
from t2t_multimodel.training import loop
from tests.training import fake_problems

data_dir, model_dir, mixing, out = sys.argv[1:5]
mixing, _, step_mixing = mixing.partition("+")
logging.basicConfig(level=logging.INFO)
models, initial = [], []

def model_fn(**kwargs):
    model = fake_problems.tiny_model(decoder_moe=True, **kwargs)
    models.append(model)
    initial.extend(w.numpy() for w in model.trainable_weights)
    return model

result = loop.train(
    problems=[fake_problems.text_problem(), fake_problems.image_problem()],
    data_dir=data_dir, model_dir=model_dir, model_fn=model_fn,
    train_steps=4, learning_rate_schedule=0.01,
    data=loop.DataConfig(batch_size=4, batch_unit="examples", max_length=16,
                         mixing=mixing,
                         step_mixing=step_mixing or "one_per_step"),
    checkpoint=loop.CheckpointConfig(every=2),
    evaluation=loop.EvalConfig(every=0, steps=1),
    strategy="multi_worker", seed=3, log_every=1,
)
final = [w.numpy() for w in models[0].trainable_weights]
problems = sorted({name for _, name, _ in result["history"]})
np.savez(out, problems=np.array(problems), n=len(final),
         **{f"final{i}": w for i, w in enumerate(final)},
         **{f"initial{i}": w for i, w in enumerate(initial)})
"""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(tmp_path, data_dir, mixing):
    (tmp_path / "worker.py").write_text(WORKER)
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        env["PYTHONPATH"] = os.pathsep.join(
            [ROOT] + [p for p in env.get("PYTHONPATH", "").split(":") if p]
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log = open(tmp_path / f"worker{index}.log", "w")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(tmp_path / "worker.py"),
                    data_dir,
                    str(tmp_path / "model"),
                    mixing,
                    str(tmp_path / f"worker{index}.npz"),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        for index, proc in enumerate(procs):
            code = proc.wait(timeout=600)
            log = (tmp_path / f"worker{index}.log").read_text()
            assert code == 0, f"worker {index} failed:\n{log[-4000:]}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data"))
    fake_problems.write(
        [fake_problems.text_problem(), fake_problems.image_problem()], path
    )
    return path


def _assert_in_sync(results):
    w0, w1 = results
    assert int(w0["n"]) == int(w1["n"]) > 0
    changed = 0
    for i in range(int(w0["n"])):
        np.testing.assert_array_equal(w0[f"final{i}"], w1[f"final{i}"])
        np.testing.assert_array_equal(w0[f"initial{i}"], w1[f"initial{i}"])
        changed += not np.array_equal(w0[f"final{i}"], w0[f"initial{i}"])
    assert changed > 0.9 * int(w0["n"])


@pytest.mark.slow
def test_per_worker_mode_text_and_image_stay_in_sync(tmp_path, data_dir):
    results = _run_workers(tmp_path, data_dir, "per_worker")
    assert list(results[0]["problems"]) == ["fake_copy_text"]
    assert list(results[1]["problems"]) == ["fake_image"]
    _assert_in_sync(results)
    assert (tmp_path / "model" / "eval_results.json").exists()


@pytest.mark.slow
def test_uniform_mixture_two_workers_stay_in_sync(tmp_path, data_dir):
    results = _run_workers(tmp_path, data_dir, "uniform")
    assert list(results[0]["problems"]) == list(results[1]["problems"])
    _assert_in_sync(results)


@pytest.mark.slow
def test_all_per_step_two_workers_stay_in_sync(tmp_path, data_dir):
    results = _run_workers(tmp_path, data_dir, "uniform+all_per_step")
    for result in results:
        assert list(result["problems"]) == ["fake_copy_text", "fake_image"]
    _assert_in_sync(results)
