"""The `tf.distribute` strategy of a run and this process's place in it.

`default` (one device), `mirrored` (all local devices) and `multi_worker`
(MultiWorkerMirroredStrategy; the cluster and this task come from the
`TF_CONFIG` environment variable, which TensorFlow itself reads). Create the
strategy first thing in a process: MultiWorkerMirroredStrategy must exist
before other TensorFlow ops run.
"""

from __future__ import annotations

from typing import Any, Literal

import tensorflow as tf

StrategyName = Literal["default", "mirrored", "multi_worker"]


def make_strategy(strategy: StrategyName | tf.distribute.Strategy):
    """The strategy by name; `multi_worker` reads the cluster from TF_CONFIG."""
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(
        f"strategy must be default, mirrored or multi_worker: {strategy!r}"
    )


def worker_info(strategy: Any) -> tuple[int, int, bool]:
    """`(worker_index, num_workers, is_chief)` of this process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 0, 1, True
    spec = resolver.cluster_spec().as_dict()
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if task_type == "chief":
        return 0, workers, True
    index = task_id + (1 if "chief" in spec else 0)
    return index, workers, index == 0
