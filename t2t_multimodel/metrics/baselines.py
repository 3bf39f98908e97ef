"""Trivial baselines printed beside each task metric.

A metric means little without the score of a model that learned nothing. For
each task metric of the paper (section 4, Table 1) this module computes the
score of an output that ignores the input, or copies it:

- `copy_input_bleu`: translation BLEU of the source sentence as the
  hypothesis (names, numbers and punctuation often carry over).
- `majority_class_accuracy`: top-1 accuracy of always predicting the most
  frequent train label.
- `best_constant_output`: the single string, among the most frequent train
  targets, whose corpus BLEU (or WER) on the dev references is best when
  output for every dev example.
- `right_branching_f1`: bracket F1 of right-branching trees (below).

All take plain Python lists and return floats or strings, on the scale of the
metric they stand beside (BLEU, WER and F1 in percent, accuracy a fraction as
evaluation reports `accuracy_top1`).
"""

from __future__ import annotations

import collections
from collections.abc import Hashable, Sequence

from t2t_multimodel.metrics import evalb, names, text, trees

DEFAULT_NUM_CANDIDATES = 200


def copy_input_bleu(sources: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU of the source sentences taken as translations.

    Args:
      sources: detokenized source sentences.
      references: detokenized target references, aligned with `sources`.

    Returns:
      `text.bleu(sources, references)`, on the 0-100 scale.
    """
    return text.bleu(sources, references)


def _by_frequency(values: Sequence[Hashable]) -> list[Hashable]:
    """Distinct values, most frequent first; ties in order of first use."""
    # Counter.most_common keeps insertion order among equal counts.
    return [v for v, _ in collections.Counter(values).most_common()]


def majority_class(train_labels: Sequence[Hashable]) -> Hashable:
    """The most frequent train label (ties: the one seen first).

    Raises:
      ValueError: when `train_labels` is empty.
    """
    if not train_labels:
        raise ValueError("no train labels")
    return _by_frequency(train_labels)[0]


def majority_class_accuracy(
    train_labels: Sequence[Hashable], dev_labels: Sequence[Hashable]
) -> float:
    """Top-1 accuracy on `dev_labels` of always predicting `majority_class`.

    Returns:
      A fraction in [0, 1] (0.0 without dev labels), the scale of
      evaluation's `accuracy_top1`.
    """
    if not dev_labels:
        return 0.0
    label = majority_class(train_labels)
    return sum(y == label for y in dev_labels) / len(dev_labels)


def best_constant_output(
    train_targets: Sequence[str],
    references: Sequence[str],
    *,
    metric: str = names.BLEU,
    num_candidates: int = DEFAULT_NUM_CANDIDATES,
) -> tuple[str, float]:
    """The one output string that scores best on every dev example.

    Candidates are the `num_candidates` most frequent train targets (ties in
    order of first appearance). Each is output for every reference and
    scored with corpus BLEU (highest wins) or WER (lowest wins); on a tie
    the more frequent candidate wins.

    Args:
      train_targets: the train split's target strings.
      references: the dev references.
      metric: `names.BLEU` or `names.WER`.
      num_candidates: how many frequent train targets to try.

    Returns:
      `(string, score)`; `("", 0.0)` without train targets or references.

    Raises:
      ValueError: for another metric.
    """
    if metric == names.BLEU:
        score, sign = text.bleu_scorer(references), 1.0
    elif metric == names.WER:
        score = lambda hyps: text.word_error_rate(hyps, references)
        sign = -1.0  # Lower is better.
    else:
        raise ValueError(f"metric must be {names.BLEU!r} or {names.WER!r}")
    if not train_targets or not references:
        return "", 0.0
    candidates = _by_frequency(train_targets)[:num_candidates]
    best, best_score = "", 0.0
    for i, candidate in enumerate(candidates):
        value = score([candidate] * len(references))
        if i == 0 or sign * value > sign * best_score:
            best, best_score = candidate, value
    return best, best_score


def right_branching_tree(
    num_words: int,
    *,
    root_label: str = trees.DEFAULT_ROOT_LABEL,
    label: str = "NP",
    tag: str = trees.FILLER_TAG,
) -> str:
    """The right-branching binary tree over `num_words` leaves, linearized.

    Every phrase has a leaf on its left and the rest of the sentence on its
    right: `(root t1 (label t2 (label t3 ... (label t[n-1] t[n]))))`. Its
    brackets are the root over [0, n) and `label` over [i, n) for i in
    1..n-2; one word gives `(root t1)`.

    Args:
      num_words: leaves (words) of the sentence, at least 1.
      root_label: label of the root.
      label: label of every other phrase.
      tag: the POS tag of every leaf.

    Returns:
      e.g. `"S XX NP XX XX /NP /S"` for 3 words.

    Raises:
      ValueError: if `num_words` is less than 1.
    """
    if num_words < 1:
        raise ValueError(f"num_words must be at least 1, got {num_words}")
    inner = max(num_words - 2, 0)  # Phrases below the root.
    opening = [root_label] + [tag, label] * inner + [tag] * (num_words - inner)
    closing = [trees.CLOSE + label] * inner + [trees.CLOSE + root_label]
    return " ".join(opening + closing)


def right_branching_labels(train_targets: Sequence[str]) -> tuple[str, str]:
    """The labels `right_branching_f1` uses, read from the train trees.

    Returns:
      `(root_label, label)`: the most frequent root label of the train trees
      and the most frequent label of their other phrases (PTB: `S`, `NP`);
      ties in order of first appearance; `S` / `NP` when there are none.
    """
    roots, others = [], []
    for target in train_targets:
        tree, _ = trees.parse_or_repair(target)
        stack = [(tree, True)]
        while stack:
            node, is_root = stack.pop()
            if node.is_leaf:
                continue
            if node.label == trees.ROOT:  # Several top-level constituents.
                stack.extend((c, True) for c in reversed(node.children))
                continue
            (roots if is_root else others).append(node.label)
            stack.extend((c, False) for c in reversed(node.children))
    root_label = _by_frequency(roots)[0] if roots else "S"
    label = _by_frequency(others)[0] if others else "NP"
    return root_label, label


def right_branching_f1(
    train_targets: Sequence[str], references: Sequence[str]
) -> float:
    """Bracket F1 of right-branching trees on the dev references.

    The right-branching baseline of the parsing literature (e.g. Klein and
    Manning 2002) is unlabelled; for labelled evalb F1 we label its root with
    the most frequent root label of the train trees and every other phrase
    with their most frequent phrase label (`right_branching_labels`), the
    majority-class choice. Each reference gets the tree over its number of
    leaves (its words), XX-tagged; scoring is `evalb.bracket_scores`, which
    removes the gold's punctuation positions after building the tree.

    Returns:
      Corpus bracket F1 in percent.
    """
    root_label, label = right_branching_labels(train_targets)
    hypotheses = [
        right_branching_tree(
            len(trees.parse_or_repair(r)[0].leaves()),
            root_label=root_label,
            label=label,
        )
        for r in references
    ]
    return evalb.bracket_f1(hypotheses, references)
