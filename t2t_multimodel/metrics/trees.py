"""Linearized constituency trees: parse, check and repair them.

The parsing task (paper section 4, WSJ parsing) outputs trees linearized as in
`problems/parse_ptb.py` (T2T's `words_and_tags_from_wsj_tree`, after Vinyals
et al. 2015, "Grammar as a Foreign Language"): space-separated tokens, the
opening label of every node in pre-order, POS tags included, and a closer
`/LABEL` after the last word of every phrase; POS tags get no closer and the
words are not in the output. `(S (NP (DT The) (NN dog)) (VP (VBZ barks))
(. .))` is `S NP DT NN /NP VP VBZ /VP . /S`. A POS tag is therefore a leaf:
positions in the sentence are counted by preterminals.

Which opening labels are phrases? A label closed somewhere in the sequence,
or one of `phrase_labels` (default `PTB_PHRASE_LABELS`, the Penn Treebank's
phrase labels plus OntoNotes' NML); every other label is a POS tag. Without
that rule a truncated output such as `S NP DT NN /NP VP VBZ` could not be told
apart from five sister tags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

# Phrase labels of the Penn Treebank II bracketing guidelines, plus NML
# (OntoNotes' nominal modifier, in the demo parsing data). POS tags and
# phrase labels are disjoint sets in the PTB and OntoNotes.
PTB_PHRASE_LABELS = frozenset(
    "ADJP ADVP CONJP FRAG INTJ LST NAC NML NP NX PP PRN PRT QP RRC S SBAR "
    "SBARQ SINV SQ UCP VP WHADJP WHADVP WHNP WHPP X".split()
)
CLOSE = "/"
# Label of the implicit root that holds several top-level constituents. It is
# never written in a linearization and never counted as a bracket (as
# evalb's TOP, which COLLINS.prm deletes).
ROOT = ""
# The POS tag `repair` fills missing positions with; Vinyals et al. (2015)
# normalised every POS tag to XX.
FILLER_TAG = "XX"
DEFAULT_ROOT_LABEL = "S"


@dataclasses.dataclass(frozen=True)
class Tree:
    """A node of a linearized tree.

    Attributes:
      label: the phrase label, the POS tag of a leaf, or `ROOT` ("") for the
        implicit root of several top-level constituents.
      children: sub-trees in order; empty for a leaf (a POS tag).
    """

    label: str
    children: tuple[Tree, ...] = ()

    @property
    def is_leaf(self) -> bool:
        """True for a POS tag (a preterminal; the words are not carried)."""
        return not self.children

    def leaves(self) -> list[str]:
        """The POS tags, left to right (one per word position)."""
        out, stack = [], [self]
        while stack:  # Iterative: hypotheses may nest very deeply.
            node = stack.pop()
            if node.is_leaf:
                out.append(node.label)
            else:
                stack.extend(reversed(node.children))
        return out


def _tokens(linearized: str | Sequence[str]) -> list[str]:
    if isinstance(linearized, str):
        return linearized.split()
    return list(linearized)


def _phrases(tokens: list[str], phrase_labels: Collection[str]) -> set[str]:
    """Labels that open a phrase: the given ones and any closed label."""
    closed = {t[len(CLOSE) :] for t in tokens if t.startswith(CLOSE)}
    return set(phrase_labels) | closed


def _siblings(
    stack: list[tuple[str, list[Tree]]], top: list[Tree]
) -> list[Tree]:
    """Where the next node goes: in the innermost open phrase, or on top."""
    return stack[-1][1] if stack else top


def parse(
    linearized: str | Sequence[str],
    *,
    phrase_labels: Collection[str] = PTB_PHRASE_LABELS,
) -> Tree:
    """Parses a linearized tree.

    Args:
      linearized: e.g. `"S NP DT NN /NP VP VBZ /VP . /S"`, or its tokens.
      phrase_labels: labels that open a phrase even when never closed.

    Returns:
      The root. Several top-level constituents (or a lone POS tag) are held
      by a `ROOT` node, as the PTB's unlabeled wrapper holds them.

    Raises:
      ValueError: when a closer does not close the innermost open phrase, a
        phrase has no children, a phrase is left open, or there are no
        tokens.
    """
    tokens = _tokens(linearized)
    phrases = _phrases(tokens, phrase_labels)
    stack: list[tuple[str, list[Tree]]] = []  # Open phrases, outermost first.
    top: list[Tree] = []
    for i, token in enumerate(tokens):
        if token.startswith(CLOSE):
            label = token[len(CLOSE) :]
            if not stack or stack[-1][0] != label:
                inner = stack[-1][0] if stack else "nothing"
                raise ValueError(f"token {i} {token!r} while {inner} is open")
            label, children = stack.pop()
            if not children:
                raise ValueError(f"empty {label} closed at token {i}")
            _siblings(stack, top).append(Tree(label, tuple(children)))
        elif token in phrases:
            stack.append((token, []))
        else:
            _siblings(stack, top).append(Tree(token))
    if stack:
        raise ValueError(f"unclosed {' '.join(label for label, _ in stack)}")
    if not top:
        raise ValueError("no tokens")
    if len(top) == 1 and not top[0].is_leaf:
        return top[0]
    return Tree(ROOT, tuple(top))


def is_well_formed(
    linearized: str | Sequence[str],
    *,
    phrase_labels: Collection[str] = PTB_PHRASE_LABELS,
) -> bool:
    """True when `linearized` parses to a single phrase at the root.

    Every closer closes the innermost open phrase of its label, no phrase is
    empty or left open, and one phrase spans everything (so `NP DT /NP VBZ`,
    two top-level nodes, is not well formed).
    """
    try:
        return parse(linearized, phrase_labels=phrase_labels).label != ROOT
    except ValueError:
        return False


def linearize(tree: Tree) -> str:
    """The inverse of `parse`: `Tree` -> `"S NP DT NN /NP ... /S"`."""
    out: list[str] = []
    stack: list[tuple[Tree, bool]] = [(tree, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            out.append(CLOSE + node.label)
        elif node.is_leaf:
            out.append(node.label)
        else:
            if node.label != ROOT:
                out.append(node.label)
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children))
    return " ".join(out)


def _rebuild(
    tokens: list[str], phrases: set[str], max_leaves: int | None
) -> list[Tree]:
    """The top-level constituents after steps 1-4 of `repair`."""
    stack: list[tuple[str, list[Tree]]] = []
    top: list[Tree] = []
    leaves = 0

    def close() -> None:
        label, children = stack.pop()
        if children:  # Phrases without any leaf are dropped.
            _siblings(stack, top).append(Tree(label, tuple(children)))

    for token in tokens:
        if token.startswith(CLOSE):
            open_labels = [label for label, _ in stack]
            label = token[len(CLOSE) :]
            if label in open_labels:
                depth = len(open_labels) - 1 - open_labels[::-1].index(label)
                while len(stack) > depth:
                    close()
            # Otherwise the closer matches nothing open and is dropped.
        elif token in phrases:
            stack.append((token, []))
        elif max_leaves is None or leaves < max_leaves:
            _siblings(stack, top).append(Tree(token))
            leaves += 1
    while stack:
        close()
    return top


def repair(
    linearized: str | Sequence[str],
    num_words: int | None = None,
    *,
    phrase_labels: Collection[str] = PTB_PHRASE_LABELS,
    root_label: str = DEFAULT_ROOT_LABEL,
    filler_tag: str = FILLER_TAG,
) -> str:
    """Turns any token sequence into a well-formed linearized tree.

    Vinyals et al. (2015, "Grammar as a Foreign Language") report that their
    seq2seq parser rarely output malformed trees and that they then added
    brackets at the beginning or the end of the tree to balance it. This is
    that post-processing, made deterministic, plus the leaf count that evalb
    needs (evalb rejects a tree whose length differs from the gold's):

    1. Phrases are the labels of `phrase_labels`, `root_label` and every
       label closed in the sequence, `filler_tag` excepted; any other label
       is a POS tag (a leaf).
    2. A closer `/X` closes the innermost open `X`, first closing every phrase
       opened inside it (their missing closers are inserted there); a closer
       with no open phrase of its label is dropped.
    3. Phrases still open at the end are closed at the end.
    4. With `num_words`, leaves past the first `num_words` are dropped (the
       rightmost ones). Phrases left without leaves are dropped.
    5. If the result is not one phrase, it is wrapped in `root_label` (an
       opening bracket at the beginning, a closer at the end).
    6. With `num_words`, missing leaves are appended as `filler_tag` leaves,
       the last children of the root (without it, an empty result gets one).

    A well-formed input with the right number of leaves is returned
    unchanged (whitespace normalised).

    Args:
      linearized: model output, e.g. `"S NP DT NN /NP VP VBZ"`.
      num_words: the number of words of the input sentence, or None to keep
        the number of leaves.
      phrase_labels: labels that open a phrase even when never closed.
      root_label: label of the added root.
      filler_tag: POS tag of added leaves.

    Returns:
      A well-formed linearized tree (with `num_words` leaves if given).

    Raises:
      ValueError: if `num_words` is less than 1.
    """
    if num_words is not None and num_words < 1:
        raise ValueError(f"num_words must be at least 1, got {num_words}")
    tokens = _tokens(linearized)
    if is_well_formed(tokens, phrase_labels=phrase_labels):
        tree = parse(tokens, phrase_labels=phrase_labels)
        if num_words is None or len(tree.leaves()) == num_words:
            return " ".join(tokens)
    # The added root is a phrase and added leaves are not, so that the
    # result parses back with the same phrase set.
    phrases = (_phrases(tokens, phrase_labels) | {root_label}) - {filler_tag}
    top = _rebuild(tokens, phrases, num_words)
    # Counted on `top`: a root without children would read as one leaf.
    have = sum(len(node.leaves()) for node in top)
    if len(top) == 1 and not top[0].is_leaf:
        root = top[0]
    else:
        root = Tree(root_label, tuple(top))
    want = num_words if num_words is not None else max(have, 1)
    filler = (Tree(filler_tag),) * (want - have)
    return linearize(Tree(root.label, root.children + filler))


def parse_or_repair(
    linearized: str | Sequence[str],
    num_words: int | None = None,
    *,
    phrase_labels: Collection[str] = PTB_PHRASE_LABELS,
) -> tuple[Tree, bool]:
    """`parse`, falling back to `parse(repair(...))`.

    Unlike `repair`, a sequence that parses to several top-level
    constituents is kept as it is (under `ROOT`), as a gold linearization of
    a PTB wrapper with several children is.

    Args:
      linearized: a linearized tree, possibly ill-formed.
      num_words: the number of leaves required, or None for any.
      phrase_labels: labels that open a phrase even when never closed.

    Returns:
      `(tree, repaired)`: the tree, and whether `repair` was needed (the
      sequence did not parse or had another number of leaves).
    """
    try:
        tree = parse(linearized, phrase_labels=phrase_labels)
        if num_words is None or len(tree.leaves()) == num_words:
            return tree, False
    except ValueError:
        pass
    fixed = repair(linearized, num_words, phrase_labels=phrase_labels)
    return parse(fixed, phrase_labels=phrase_labels), True
