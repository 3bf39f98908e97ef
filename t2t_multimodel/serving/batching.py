"""Batching of concurrent requests per signature, on one worker thread.

Clients `submit` a request (a signature name and a dict of input arrays,
batch first) and get a `concurrent.futures.Future`. One worker thread owns
every model call: it takes the signature whose oldest request waited longest,
collects more requests for it until `max_batch_size` instances are queued or
`batch_timeout_ms` has passed since that oldest request arrived, concatenates
them along the batch axis, makes one call and splits the outputs back per
request. If a batched call fails, each of its requests is run alone, so one
bad request fails only its own future. This is TF Serving's
`--enable_batching` behaviour in small (`max_batch_size`,
`batch_timeout_micros`, `max_enqueued_batches`), without its padding.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

RunFn = Callable[[str, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


class QueueFullError(RuntimeError):
    """Too many requests are waiting (an HTTP 503)."""


@dataclasses.dataclass
class BatchStats:
    """Counters of the worker.

    `calls` counts every model call, `failed_calls` those that raised;
    `requests`, `instances` and `largest_batch` count what succeeded.
    """

    calls: int = 0
    failed_calls: int = 0
    requests: int = 0
    instances: int = 0
    retried_batches: int = 0
    largest_batch: int = 0


@dataclasses.dataclass
class _Pending:
    signature_name: str
    inputs: Mapping[str, np.ndarray]
    num_instances: int
    arrival: float
    future: concurrent.futures.Future


class BatchScheduler:
    """Runs `run_fn` on batches of concurrent requests, on one thread.

    Args:
        run_fn: `(signature_name, inputs) -> outputs`; every array is batch
            first and every output has the batch size of the inputs.
        max_batch_size: most instances in one call; a larger request runs
            alone.
        batch_timeout_ms: how long the oldest waiting request may wait for
            others to join its batch.
        max_queued_requests: requests allowed to wait at once; `submit`
            raises `QueueFullError` beyond.
    """

    def __init__(
        self,
        run_fn: RunFn,
        *,
        max_batch_size: int = 32,
        batch_timeout_ms: float = 5.0,
        max_queued_requests: int = 1024,
    ) -> None:
        if max_batch_size < 1 or batch_timeout_ms < 0:
            raise ValueError("need max_batch_size >= 1, batch_timeout_ms >= 0")
        self.run_fn = run_fn
        self.max_batch_size = max_batch_size
        self.batch_timeout_ms = batch_timeout_ms
        self.max_queued_requests = max_queued_requests
        self.stats = BatchStats()
        self._queues: dict[str, collections.deque[_Pending]] = {}
        self._num_queued = 0
        self._closed = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(
            target=self._work, name="model-batching", daemon=True
        )
        self._thread.start()

    def submit(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        num_instances: int,
    ) -> concurrent.futures.Future:
        """Queues one request; the future gets its outputs or its error.

        Raises:
            QueueFullError: `max_queued_requests` are already waiting.
            RuntimeError: the scheduler is closed.
        """
        future: concurrent.futures.Future = concurrent.futures.Future()
        pending = _Pending(
            signature_name, inputs, num_instances, time.monotonic(), future
        )
        with self._condition:
            if self._closed:
                raise RuntimeError("the batch scheduler is closed")
            if self._num_queued >= self.max_queued_requests:
                raise QueueFullError(
                    f"{self._num_queued} requests are already waiting"
                )
            self._queues.setdefault(signature_name, collections.deque())
            self._queues[signature_name].append(pending)
            self._num_queued += 1
            self._condition.notify()
        return future

    def close(self, timeout_s: float = 10.0) -> None:
        """Runs what is queued, then stops the worker (waits `timeout_s`)."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join(timeout_s)

    def _queued_instances(self, signature_name: str) -> int:
        return sum(p.num_instances for p in self._queues[signature_name])

    def _next_batch(self) -> list[_Pending] | None:
        """Waits for and removes the next batch; None once closed and empty."""
        with self._condition:
            while not self._closed and not self._num_queued:
                self._condition.wait()
            if not self._num_queued:
                return None
            name = min(
                (n for n, q in self._queues.items() if q),
                key=lambda n: self._queues[n][0].arrival,
            )
            deadline = self._queues[name][0].arrival + (
                self.batch_timeout_ms / 1000.0
            )
            while (
                not self._closed
                and self._queued_instances(name) < self.max_batch_size
                and time.monotonic() < deadline
            ):
                self._condition.wait(max(0.0, deadline - time.monotonic()))
            queue = self._queues[name]
            batch = [queue.popleft()]
            size = batch[0].num_instances
            while (
                queue and size + queue[0].num_instances <= self.max_batch_size
            ):
                size += queue[0].num_instances
                batch.append(queue.popleft())
            self._num_queued -= len(batch)
            return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [p for p in batch if p.future.set_running_or_notify_cancel()]
            if live:
                self._run_batch(live)

    def _call(self, batch: list[_Pending]) -> list[Mapping[str, np.ndarray]]:
        """One model call for `batch`; its outputs split per request."""
        sizes = [p.num_instances for p in batch]
        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            inputs = {
                name: np.concatenate([p.inputs[name] for p in batch], axis=0)
                for name in batch[0].inputs
            }
        self.stats.calls += 1
        try:
            outputs = self.run_fn(batch[0].signature_name, inputs)
        except Exception:
            self.stats.failed_calls += 1
            raise
        self.stats.requests += len(batch)
        self.stats.instances += sum(sizes)
        self.stats.largest_batch = max(self.stats.largest_batch, sum(sizes))
        for name, value in outputs.items():
            if np.ndim(value) == 0 or np.shape(value)[0] != sum(sizes):
                raise ValueError(
                    f"output {name!r} has shape {np.shape(value)}, not the "
                    f"batch size {sum(sizes)} first"
                )
        bounds = np.cumsum(sizes)[:-1]
        split = {k: np.split(np.asarray(v), bounds) for k, v in outputs.items()}
        return [{k: v[i] for k, v in split.items()} for i in range(len(batch))]

    def _run_batch(self, batch: list[_Pending]) -> None:
        try:
            results = self._call(batch)
        except Exception as e:  # noqa: BLE001  (reported to the clients)
            if len(batch) == 1:
                batch[0].future.set_exception(e)
                return
            # One bad request must not fail the others: run each alone.
            self.stats.retried_batches += 1
            for pending in batch:
                self._run_batch([pending])
            return
        for pending, result in zip(batch, results):
            pending.future.set_result(result)
