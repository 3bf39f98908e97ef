"""Tests of the batch scheduler with a plain Python model (no TensorFlow)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from t2t_multimodel.serving import batching


class _Recorder:
    """A fake model: doubles `x`; fails on any negative value."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[tuple[str, list[float]]] = []
        self.delay_s = delay_s
        self.thread_names: set[str] = set()

    def __call__(self, name: str, inputs: dict) -> dict:
        self.thread_names.add(threading.current_thread().name)
        x = inputs["x"]
        self.calls.append((name, x.tolist()))
        time.sleep(self.delay_s)
        if (x < 0).any():
            raise ValueError("negative input")
        return {"y": 2 * x, "n": np.full([len(x)], len(x))}


def _submit(scheduler, name: str, values: list[float]):
    return scheduler.submit(name, {"x": np.array(values)}, len(values))


def test_requests_queued_together_run_as_one_call() -> None:
    model = _Recorder()
    # A long timeout: the batch closes when 6 instances are queued.
    scheduler = batching.BatchScheduler(
        model, max_batch_size=6, batch_timeout_ms=5000
    )
    futures = [_submit(scheduler, "s", [float(i), i + 0.5]) for i in range(3)]
    results = [f.result(timeout=10) for f in futures]
    scheduler.close()
    assert model.calls == [("s", [0.0, 0.5, 1.0, 1.5, 2.0, 2.5])]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], [2.0 * i, 2 * i + 1.0])
        np.testing.assert_array_equal(result["n"], [6, 6])
    assert scheduler.stats == batching.BatchStats(
        calls=1,
        failed_calls=0,
        requests=3,
        instances=6,
        retried_batches=0,
        largest_batch=6,
    )
    assert model.thread_names == {"model-batching"}


def test_timeout_closes_a_partial_batch() -> None:
    model = _Recorder()
    scheduler = batching.BatchScheduler(
        model, max_batch_size=100, batch_timeout_ms=50
    )
    start = time.monotonic()
    result = _submit(scheduler, "s", [1.0]).result(timeout=10)
    waited = time.monotonic() - start
    scheduler.close()
    np.testing.assert_array_equal(result["y"], [2.0])
    assert 0.04 <= waited < 5.0


def test_signatures_are_batched_separately_oldest_first() -> None:
    model = _Recorder()
    scheduler = batching.BatchScheduler(
        model, max_batch_size=4, batch_timeout_ms=200
    )
    futures = [
        _submit(scheduler, "a", [1.0]),
        _submit(scheduler, "b", [10.0]),
        _submit(scheduler, "a", [2.0]),
        _submit(scheduler, "b", [20.0]),
    ]
    results = [f.result(timeout=10)["y"].tolist() for f in futures]
    scheduler.close()
    assert results == [[2.0], [20.0], [4.0], [40.0]]
    assert model.calls == [("a", [1.0, 2.0]), ("b", [10.0, 20.0])]


def test_a_bad_request_fails_alone() -> None:
    model = _Recorder()
    scheduler = batching.BatchScheduler(
        model, max_batch_size=3, batch_timeout_ms=5000
    )
    futures = [
        _submit(scheduler, "s", [1.0]),
        _submit(scheduler, "s", [-1.0]),
        _submit(scheduler, "s", [3.0]),
    ]
    assert futures[0].result(timeout=10)["y"].tolist() == [2.0]
    with pytest.raises(ValueError, match="negative input"):
        futures[1].result(timeout=10)
    assert futures[2].result(timeout=10)["y"].tolist() == [6.0]
    scheduler.close()
    # One failed batched call, then each request alone.
    assert model.calls == [
        ("s", [1.0, -1.0, 3.0]),
        ("s", [1.0]),
        ("s", [-1.0]),
        ("s", [3.0]),
    ]
    assert scheduler.stats.retried_batches == 1
    assert (scheduler.stats.calls, scheduler.stats.failed_calls) == (4, 2)
    assert scheduler.stats.requests == 2


def test_large_request_runs_alone_and_batches_respect_the_size() -> None:
    model = _Recorder(delay_s=0.05)
    scheduler = batching.BatchScheduler(
        model, max_batch_size=2, batch_timeout_ms=300
    )
    futures = [
        _submit(scheduler, "s", [1.0, 2.0, 3.0]),
        _submit(scheduler, "s", [4.0]),
        _submit(scheduler, "s", [5.0]),
        _submit(scheduler, "s", [6.0]),
    ]
    results = [f.result(timeout=10)["y"].tolist() for f in futures]
    scheduler.close()
    assert results == [[2.0, 4.0, 6.0], [8.0], [10.0], [12.0]]
    assert [len(x) for _, x in model.calls] == [3, 2, 1]
    assert scheduler.stats.largest_batch == 3


def test_unequal_shapes_fall_back_to_single_calls() -> None:
    model = _Recorder()
    scheduler = batching.BatchScheduler(
        model, max_batch_size=4, batch_timeout_ms=300
    )
    a = scheduler.submit("s", {"x": np.ones([1, 2])}, 1)
    b = scheduler.submit("s", {"x": np.ones([1, 3])}, 1)
    assert a.result(timeout=10)["y"].shape == (1, 2)
    assert b.result(timeout=10)["y"].shape == (1, 3)
    scheduler.close()


def test_queue_bound_and_close() -> None:
    release = threading.Event()

    def blocked(name: str, inputs: dict) -> dict:
        release.wait(10)
        return {"y": inputs["x"]}

    scheduler = batching.BatchScheduler(
        blocked, max_batch_size=1, batch_timeout_ms=0, max_queued_requests=2
    )
    first = _submit(scheduler, "s", [1.0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the worker holds `first`
        with scheduler._condition:
            if scheduler._num_queued == 0:
                break
        time.sleep(0.01)
    queued = [_submit(scheduler, "s", [2.0]), _submit(scheduler, "s", [3.0])]
    with pytest.raises(batching.QueueFullError):
        _submit(scheduler, "s", [4.0])
    release.set()
    scheduler.close()
    assert [f.result(timeout=1)["y"].tolist() for f in [first, *queued]] == [
        [1.0],
        [2.0],
        [3.0],
    ]
    with pytest.raises(RuntimeError, match="closed"):
        _submit(scheduler, "s", [5.0])
