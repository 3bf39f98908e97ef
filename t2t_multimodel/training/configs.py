"""The configuration values of a training run, as small frozen dataclasses.

`train` (loop.py) takes one of each instead of a long parameter list
(STYLE.md section 2); gin builds them in `gin/runs/train.gin`. The defaults
are the released recipe (multimodel_facts.md section 5.2): Adam 0.85 / 0.997
/ 1e-6 and gradient clipping at a global norm of 2.0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal

Mixing = Literal["proportional", "uniform", "temperature", "per_worker"]
StepMixing = Literal["one_per_step", "all_per_step", "k_per_step"]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Batching and problem mixing.

    Attributes:
      batch_size: per-replica batch, in `batch_unit`s.
      batch_unit: `"tokens"` (T2T: padded positions of the longest feature)
        or `"examples"`.
      max_length: truncation of text features (or a per-feature mapping).
      mixing: `proportional` (to `rates`, else to train-set sizes), `uniform`,
        `temperature` (sizes^(1/T)), or `per_worker` (worker w trains problem
        w mod N, the paper's setup).
      temperature: T of the temperature scheme.
      rates: relative rates for `proportional` (e.g. a Mixture's).
      shuffle_buffer: examples in each problem's shuffle buffer.
      batch_sizes: problem name -> its own `batch_size` (same unit), for
        problems whose examples cost far more than their token count says
        (T2T's per-problem batch multipliers): an image -> label batch
        counts examples in either unit, so 4096 "tokens" would be 4096
        ImageNet images. Used for its train and dev batches.
      step_mixing: how many problems one update trains on (`runner.py`):
        `one_per_step` (one problem drawn by the rates; T2T's
        single-machine mode), `all_per_step` (one batch of every problem
        with a non-zero rate, their objectives summed into one update: the
        paper's joint step on one device) or `k_per_step`
        (`problems_per_step` distinct problems drawn by the rates, summed).
        `per_worker` mixing needs `one_per_step`.
      problems_per_step: k of `k_per_step` (ignored otherwise).
    """

    batch_size: int = 4096
    batch_unit: Literal["tokens", "examples"] = "tokens"
    max_length: int | Mapping[str, int] | None = 256
    mixing: Mixing = "proportional"
    temperature: float = 2.0
    rates: Sequence[float] | None = None
    shuffle_buffer: int = 1000
    batch_sizes: Mapping[str, int] | None = None
    step_mixing: StepMixing = "one_per_step"
    problems_per_step: int = 2

    def problem_batch_size(self, problem_name: str) -> int:
        """The batch size of `problem_name`: its own, else `batch_size`."""
        return (self.batch_sizes or {}).get(problem_name, self.batch_size)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The released Adam recipe (multimodel_facts.md section 5.2).

    Attributes:
      beta_1, beta_2, epsilon: Adam's constants (0.85, 0.997, 1e-6).
      clip_norm: global gradient-norm clipping (2.0; None: off).
      weight_decay: T2T's weight decay rate (0: off).
      lazy_sparse: LazyAdam's row-sparse embedding updates (single replica).
      kind: `"fused_adam"` (one fused kernel per variable) or `"keras_adam"`
        (Keras' Adam, epsilon inside the bias correction; for comparison).
    """

    beta_1: float = 0.85
    beta_2: float = 0.997
    epsilon: float = 1e-6
    clip_norm: float | None = 2.0
    weight_decay: float = 0.0
    lazy_sparse: bool = True
    kind: Literal["fused_adam", "keras_adam"] = "fused_adam"


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Attributes: every (steps between saves), keep (newest kept),
    save_data_position (also save the input iterators where possible),
    restore_data_position (False: a resumed run restarts its data streams
    instead of restoring the saved position, e.g. after the shards were
    re-sharded; see checkpoints.py)."""

    every: int = 1000
    keep: int = 5
    save_data_position: bool = True
    restore_data_position: bool = True
