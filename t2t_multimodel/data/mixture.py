"""Joint training over several problems: mixing rates and a problem schedule.

The paper trains one model on eight corpora at once (section 4). A batch
always comes from one problem, because problems have different feature
structures (an image batch cannot share a tensor with a sentence batch), so a
mixture is not one interleaved Dataset but a SCHEDULE: a deterministic stream
of problem indices, one per training step, drawn with
`tf.data.Dataset.sample_from_datasets`. The trainer takes the next batch of the
scheduled problem's own pipeline. Being a pure function of the seed, the
schedule of a resumed run continues exactly (`start_step`).

Sampling schemes: `proportional` to dataset size (or to given rates),
`uniform`, and `temperature` (rate_i proportional to size_i^(1/T), T5's
scheme; T=1 is proportional, T->inf uniform). The paper's own setup ran one
problem per worker (`worker_problem`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import tensorflow as tf

Scheme = Literal["proportional", "uniform", "temperature"]


def mixing_rates(
    sizes_or_rates: Sequence[float],
    scheme: Scheme = "proportional",
    temperature: float = 2.0,
) -> list[float]:
    """Normalized sampling rates of the problems of a mixture.

    Args:
      sizes_or_rates: per problem, its number of training examples or a
        relative rate (non-negative, not all zero).
      scheme: `proportional` (rate_i = s_i / sum s), `uniform` (1 / N) or
        `temperature` (rate_i proportional to s_i^(1 / temperature)).
      temperature: T of the temperature scheme (> 0).

    Returns:
      Rates summing to 1, in the order given.

    Raises:
      ValueError: on negative or all-zero values, or an unknown scheme.
    """
    values = [float(v) for v in sizes_or_rates]
    if not values:
        raise ValueError("a mixture needs at least one problem")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"sizes/rates must be >= 0, not all 0: {values}")
    if scheme == "uniform":
        values = [1.0] * len(values)
    elif scheme == "temperature":
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        values = [v ** (1.0 / temperature) for v in values]
    elif scheme != "proportional":
        raise ValueError(
            f"scheme must be proportional, uniform or temperature: {scheme!r}"
        )
    total = sum(values)
    return [v / total for v in values]


def problem_schedule(
    rates: Sequence[float], seed: int, start_step: int = 0
) -> tf.data.Dataset:
    """An endless, seeded stream of int32 problem indices, one per step.

    Args:
      rates: sampling rate of each problem (e.g. from `mixing_rates`).
      seed: the schedule is a deterministic function of it.
      start_step: skip this many steps (resuming a run).

    Returns:
      A `tf.data.Dataset` of scalar int32 indices into `rates`.
    """
    if len(rates) == 1:
        return tf.data.Dataset.from_tensors(tf.constant(0, tf.int32)).repeat()
    constants = [
        tf.data.Dataset.from_tensors(tf.constant(i, tf.int32)).repeat()
        for i in range(len(rates))
    ]
    schedule = tf.data.Dataset.sample_from_datasets(
        constants, weights=[float(r) for r in rates], seed=seed
    )
    return schedule.skip(start_step) if start_step else schedule


def worker_problem(worker_index: int, num_problems: int) -> int:
    """The paper's one-problem-per-worker mode: worker w trains w mod N."""
    if num_problems < 1:
        raise ValueError(f"num_problems must be >= 1, got {num_problems}")
    return worker_index % num_problems
