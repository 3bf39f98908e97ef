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

Several problems per step (the trainer's `k_per_step` mode) draw a SET of k
distinct problems per step instead (`problem_sets`), again a pure function of
the seed and the step.
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


def problem_sets(
    rates: Sequence[float], k: int, seed: int, start_step: int = 0
) -> tf.data.Dataset:
    """An endless, seeded stream of k distinct problem indices per step.

    Each step's set is drawn without replacement by the rates (Gumbel top-k:
    the k largest of `log(rate_i) + Gumbel noise`, i.e. successive draws by
    the rates among the problems not drawn yet), from stateless random
    numbers of `(seed, step)`, so a resumed run draws the same sets.
    Without replacement, a problem's inclusion probability is not exactly
    `k * rate`: large rates saturate at 1 and small ones gain.

    Args:
      rates: sampling rate of each problem (e.g. from `mixing_rates`).
      k: problems per step, 1 <= k <= the number of non-zero rates.
      seed: the sets are a deterministic function of it.
      start_step: the first step's index (resuming a run).

    Returns:
      A `tf.data.Dataset` of int32 `[k]` indices into `rates`, ascending.

    Raises:
      ValueError: if k is out of range.
    """
    positive = sum(1 for r in rates if r > 0)
    if not 1 <= k <= positive:
        raise ValueError(
            f"k must be in [1, {positive}] (the problems with a non-zero "
            f"rate), got {k}"
        )
    log_rates = tf.math.log(tf.constant([float(r) for r in rates], tf.float32))

    def draw(step):
        noise = tf.random.stateless_uniform(
            [len(rates)],
            seed=tf.stack([tf.constant(seed, tf.int64), step]),
            minval=1e-20,
            maxval=1.0,
        )
        gumbel = -tf.math.log(-tf.math.log(noise))
        top = tf.math.top_k(log_rates + gumbel, k=k).indices
        return tf.sort(tf.cast(top, tf.int32))

    return tf.data.Dataset.range(start_step, tf.int64.max).map(draw)


def worker_problem(worker_index: int, num_problems: int) -> int:
    """The paper's one-problem-per-worker mode: worker w trains w mod N."""
    if num_problems < 1:
        raise ValueError(f"num_problems must be >= 1, got {num_problems}")
    return worker_index % num_problems
