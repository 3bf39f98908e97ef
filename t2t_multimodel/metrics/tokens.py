"""Per-token accuracy and the running sums that evaluation keeps.

Per-token accuracy is reported for every task in the paper (section 4,
Table 1): the fraction of real target positions where the argmax of the
teacher-forced logits is the target id. `Accumulator` sums numerators and
denominators over evaluation batches, so ratios are corpus-level.
"""

from __future__ import annotations

import numpy as np


def token_correct(
    logits: np.ndarray, targets: np.ndarray, mask: np.ndarray
) -> tuple[int, int]:
    """Correct argmax tokens and real tokens (per-token accuracy parts).

    Args:
      logits: `[batch, length, vocab]` teacher-forced logits.
      targets: `[batch, length]` ids.
      mask: `[batch, length]` bool, True at real positions.

    Returns:
      `(correct, total)` over masked positions.
    """
    predictions = np.argmax(logits, axis=-1)  # [batch, length]
    mask = np.asarray(mask, bool)
    correct = np.logical_and(predictions == np.asarray(targets), mask)
    return int(correct.sum()), int(mask.sum())


class Accumulator:
    """Sums numerators and denominators over eval batches.

    `add("accuracy", correct, total)` then `result("accuracy")` is
    `correct_sum / total_sum` (0 when nothing was added).
    """

    def __init__(self) -> None:
        self._num: dict[str, float] = {}
        self._den: dict[str, float] = {}

    def add(self, name: str, numerator: float, denominator: float) -> None:
        """Adds one batch's `numerator` and `denominator` to `name`."""
        self._num[name] = self._num.get(name, 0.0) + float(numerator)
        self._den[name] = self._den.get(name, 0.0) + float(denominator)

    def result(self, name: str) -> float:
        """The sum of numerators over the sum of denominators (0 if none)."""
        den = self._den.get(name, 0.0)
        return self._num.get(name, 0.0) / den if den else 0.0

    def __contains__(self, name: str) -> bool:
        return name in self._num
