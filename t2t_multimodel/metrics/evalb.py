"""Labelled bracket precision, recall and F1 of parse trees, as evalb scores.

Parsing results (paper section 4; Vinyals et al. 2015) are the F1 of Collins'
evalb with its COLLINS.prm parameters. Those defaults, applied to our
linearized trees (`trees.py`: POS tags, no words):

- A bracket is `(label, start, end)` over word positions, for every phrase,
  the root included (`S` spans the sentence). POS tags are not brackets.
- `DELETE_LABEL TOP -NONE- , : `` '' .`: the implicit `ROOT` of several
  top-level constituents is not counted (it plays TOP's part); a leaf tagged
  with one of these labels is removed and positions are counted without it;
  a bracket left covering no position is not counted.
- Labels are cut at the first `-` or `=` (evalb's function-tag stripping)
  and `EQ_LABEL ADVP PRT` makes PRT and ADVP one label.
- Brackets match as multisets: each gold bracket matches at most one test
  bracket with the same span and label (a unary chain of two equal labels
  counts twice). Corpus precision is the sum of matched brackets over the sum
  of test brackets, recall over the sum of gold brackets, both in percent,
  F1 their harmonic mean, as evalb's "-- All --" summary (not `len<=40`).
- Complete match is the percentage of sentences whose test and gold
  brackets are equal.

Deviations, because the trees carry no words: evalb decides punctuation by
each tree's own tags and rejects a sentence whose lengths differ ("Length
unmatch"), leaving it out of the totals. Here the gold tags decide which
positions are punctuation in both trees (what evalb does once the gold-tagged
words are put back into the output, which XX-tagged output such as Vinyals'
needs), and a hypothesis that does not parse or has the wrong number of
leaves is scored after `trees.repair` to the gold's length, so every sentence
counts. A sentence whose gold positions are all punctuation is skipped, as
evalb skips an empty one.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Collection, Sequence

from t2t_multimodel.metrics import trees

# COLLINS.prm: DELETE_LABEL lines, and EQ_LABEL ADVP PRT.
DELETE_LABELS = frozenset({"TOP", "-NONE-", ",", ":", "``", "''", "."})
EQUAL_LABELS = {"PRT": "ADVP"}

Bracket = tuple[str, int, int]


@dataclasses.dataclass(frozen=True)
class BracketScores:
    """Corpus totals of labelled bracket scoring.

    Attributes:
      matched: matched brackets, summed over sentences.
      gold: gold brackets, summed.
      test: hypothesis brackets, summed.
      sentences: sentences scored.
      complete: sentences whose hypothesis and gold brackets are equal.
      skipped: sentences left out (no non-punctuation position).
      repaired: hypotheses scored after `trees.repair`.
      gold_repaired: references that did not parse (e.g. truncated by a
        length limit) and were scored after `trees.repair`.
    """

    matched: int = 0
    gold: int = 0
    test: int = 0
    sentences: int = 0
    complete: int = 0
    skipped: int = 0
    repaired: int = 0
    gold_repaired: int = 0

    @property
    def precision(self) -> float:
        """Matched / test brackets, in percent (0 without test brackets)."""
        return 100.0 * self.matched / self.test if self.test else 0.0

    @property
    def recall(self) -> float:
        """Matched / gold brackets, in percent (0 without gold brackets)."""
        return 100.0 * self.matched / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall, in percent."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def complete_match(self) -> float:
        """Percentage of scored sentences with exactly the gold brackets."""
        return 100.0 * self.complete / self.sentences if self.sentences else 0.0


def normalize_label(label: str) -> str:
    """evalb's label: cut at the first `-` or `=`, PRT read as ADVP."""
    label = re.split(r"[-=]", label, maxsplit=1)[0]
    return EQUAL_LABELS.get(label, label)


def punctuation_positions(tags: Sequence[str]) -> list[bool]:
    """True at the positions whose tag is deleted (`DELETE_LABELS`)."""
    return [tag in DELETE_LABELS for tag in tags]


def brackets(
    tree: trees.Tree, deleted: Sequence[bool] | None = None
) -> collections.Counter[Bracket]:
    """The labelled brackets that evalb counts in `tree`.

    Args:
      tree: a parsed tree.
      deleted: per leaf, True if the position is removed before scoring
        (default: the tree's own punctuation, `punctuation_positions`).

    Returns:
      A multiset of `(label, start, end)`, end exclusive, over the positions
      left after deletion.

    Raises:
      ValueError: when `deleted` has another length than the leaves.
    """
    if deleted is None:
        deleted = punctuation_positions(tree.leaves())
    out: collections.Counter[Bracket] = collections.Counter()
    leaf = kept = 0
    # (node, closing, start): a closing entry is popped after the node's
    # subtree, when `kept` is its end.
    stack: list[tuple[trees.Tree, bool, int]] = [(tree, False, 0)]
    while stack:
        node, closing, start = stack.pop()
        if closing:
            label = normalize_label(node.label)
            if node.label != trees.ROOT and label not in DELETE_LABELS:
                if kept > start:  # evalb drops zero-length brackets.
                    out[(label, start, kept)] += 1
        elif node.is_leaf:
            if leaf >= len(deleted):
                raise ValueError(f"more leaves than {len(deleted)} positions")
            kept += not deleted[leaf]
            leaf += 1
        else:
            stack.append((node, True, kept))
            stack.extend((c, False, 0) for c in reversed(node.children))
    if leaf != len(deleted):
        raise ValueError(f"{leaf} leaves for {len(deleted)} positions")
    return out


def bracket_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    phrase_labels: Collection[str] = trees.PTB_PHRASE_LABELS,
) -> BracketScores:
    """Corpus labelled bracket scores of linearized trees (evalb style).

    Args:
      hypotheses: linearized output trees, possibly ill-formed.
      references: the gold linearized trees, aligned with `hypotheses`.
      phrase_labels: labels that open a phrase (see `trees.parse`).

    Returns:
      The corpus totals; `.f1`, `.precision`, `.recall`, `.complete_match`.

    Raises:
      ValueError: when the two lists differ in length.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses for {len(references)} references"
        )
    totals = collections.Counter()
    for hypothesis, reference in zip(hypotheses, references):
        gold, gold_fixed = trees.parse_or_repair(
            reference, phrase_labels=phrase_labels
        )
        totals["gold_repaired"] += gold_fixed
        tags = gold.leaves()
        deleted = punctuation_positions(tags)
        if all(deleted):
            totals["skipped"] += 1
            continue
        test, fixed = trees.parse_or_repair(
            hypothesis, len(tags), phrase_labels=phrase_labels
        )
        totals["repaired"] += fixed
        gold_brackets = brackets(gold, deleted)
        test_brackets = brackets(test, deleted)
        matched = sum((gold_brackets & test_brackets).values())
        totals["matched"] += matched
        totals["gold"] += gold_brackets.total()
        totals["test"] += test_brackets.total()
        totals["sentences"] += 1
        totals["complete"] += gold_brackets == test_brackets
    return BracketScores(**totals)


def bracket_f1(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """`bracket_scores(hypotheses, references).f1`, in percent."""
    return bracket_scores(hypotheses, references).f1
