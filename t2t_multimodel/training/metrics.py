"""Evaluation metrics of the paper (section 4, Table 1) on host values.

Per-token accuracy and negative log-perplexity are what the paper reports for
every task; the task metrics are BLEU (translation, captioning, with
sacrebleu on detokenized text), top-1/top-5 accuracy (image classification),
word error rate (speech, with jiwer) and the percentage of fully correct
parse trees. All functions take NumPy arrays or Python strings and return
Python floats, so they are easy to check on hand-computed values.
"""

from __future__ import annotations

from collections.abc import Sequence

import jiwer
import numpy as np
import sacrebleu

# Task-metric names a Problem lists in `metrics`.
BLEU = "bleu"
TOP1 = "accuracy_top1"
TOP5 = "accuracy_top5"
WER = "wer"
EXACT_TREE = "exact_tree"
DECODED_METRICS = (BLEU, WER, EXACT_TREE)


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu defaults: 13a tokenization, 0-100 scale)."""
    if not hypotheses:
        return 0.0
    return float(
        sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score
    )


def word_error_rate(
    hypotheses: Sequence[str], references: Sequence[str]
) -> float:
    """Corpus WER in percent: word edits / reference words * 100.

    Empty references are skipped (WER is undefined for them).
    """
    pairs = [(h, r) for h, r in zip(hypotheses, references) if r.strip()]
    if not pairs:
        return 0.0
    hyps, refs = zip(*pairs)
    return 100.0 * float(jiwer.wer(list(refs), list(hyps)))


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Percentage of hypotheses equal to their reference after stripping.

    For parsing this is the paper's percentage of fully correct trees.
    """
    if not references:
        return 0.0
    hits = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return 100.0 * hits / len(references)


def top_k_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> int:
    """Number of rows whose label is among the `k` largest logits.

    Args:
      logits: `[batch, num_classes]`.
      labels: `[batch]` int class ids.
      k: how many top classes count.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).reshape(-1)
    k = min(k, logits.shape[-1])
    # Indices of the k largest logits per row (order inside the k is moot).
    top = np.argpartition(-logits, k - 1, axis=-1)[:, :k]  # [batch, k]
    return int(np.sum(np.any(top == labels[:, None], axis=-1)))


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
    predictions = np.argmax(logits, axis=-1)
    mask = np.asarray(mask, bool)
    correct = np.logical_and(predictions == np.asarray(targets), mask)
    return int(correct.sum()), int(mask.sum())


class Accumulator:
    """Sums numerators and denominators over eval batches.

    `add("accuracy", correct, total)` then `result("accuracy")` is
    `correct_sum / total_sum` (0 when nothing was added).
    """

    def __init__(self):
        self._num: dict[str, float] = {}
        self._den: dict[str, float] = {}

    def add(self, name: str, numerator: float, denominator: float) -> None:
        self._num[name] = self._num.get(name, 0.0) + float(numerator)
        self._den[name] = self._den.get(name, 0.0) + float(denominator)

    def result(self, name: str) -> float:
        den = self._den.get(name, 0.0)
        return self._num.get(name, 0.0) / den if den else 0.0

    def __contains__(self, name: str) -> bool:
        return name in self._num
