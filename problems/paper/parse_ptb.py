"""Penn Treebank WSJ constituency parsing as sequence to sequence.

The paper's parsing task (section 4, "WSJ parsing"): the words of a sentence
go in, the linearized tree comes out, in the shared 8k subword vocabulary
(T2T's `wmt_parsing_tokens_8k`, space EN_TOK -> PARSE_TOK).

Raw formats read (the LDC Treebank-3 release, LDC99T42, and T2T's files):
- `.mrg` files `parsed/mrg/wsj/SS/wsj_SSNN.mrg` anywhere under `tmp_dir`
  (e.g. `tmp_dir/treebank_3/parsed/mrg/wsj/02/wsj_0200.mrg`). Each file holds
  several bracketed trees, each spanning several lines and wrapped in an
  unlabeled root, `( (S ...) )`. Standard split: sections 02-21 train,
  22 dev, 23 test (00, 01 and 24 are not used).
- T2T's one-tree-per-line files `<prefix>_train.trees` / `<prefix>_dev.trees`
  (and `<prefix>_test.trees`) in `tmp_dir`, trees wrapped in `(TOP ...)`.
  Used when no `.mrg` is found.
The treebank is licensed by the LDC: t2t-mm-datagen cannot download it
(`manual_download` says how to get it).

Cleaning (the usual PTB preprocessing, as in evalb/Collins): `-NONE-` empty
elements (traces) are dropped, then every constituent left without words;
function tags and co-indices are stripped from labels (`NP-SBJ-1` -> `NP`,
`PP-LOC=2` -> `PP`; `-LRB-`, `-RRB-` and `PRP$` are kept). The root wrapper
(empty label, `TOP`, `ROOT` or `VROOT`) is removed.

Linearization (T2T's `words_and_tags_from_wsj_tree`, after Vinyals et al.
2015, "Grammar as a foreign language"): the targets are the opening labels in
pre-order, POS tags included, plus a `/LABEL` closer after the last word of
each non-POS constituent; POS tags get no closer. For example
`(S (NP (DT The) (NN dog)) (VP (VBZ barks)) (. .))` gives the words
`The dog barks .` and the targets `S NP DT NN /NP VP VBZ /VP . /S`.

`read_bracketed_trees`, `parse_tree`, `clean_tree` and `linearize_tree` are
public so that other problems (the offline demo parsing problem) reuse them.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import re
from collections.abc import Iterator

from problems import problem as problem_lib
from problems import registry, text_features
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import public_corpora

_LOG = logging.getLogger(__name__)

TRAIN_SECTIONS = tuple(range(2, 22))
DEV_SECTIONS = (22,)
TEST_SECTIONS = (23,)
ROOT_LABELS = ("", "TOP", "ROOT", "VROOT")
NONE_TAG = "-NONE-"
PTB_URL = "https://catalog.ldc.upenn.edu/LDC99T42"

_TOKEN_RE = re.compile(r"\(|\)|[^\s()]+")


@dataclasses.dataclass(frozen=True)
class Tree:
    """A constituency tree node.

    Attributes:
      label: the constituent or POS label (`""` for the PTB's unlabeled root).
      children: sub-trees and words (`str`), in order.
    """

    label: str
    children: tuple[Tree | str, ...]

    @property
    def is_preterminal(self) -> bool:
        """True for a POS node: one child, and that child is a word."""
        return len(self.children) == 1 and isinstance(self.children[0], str)


def read_bracketed_trees(text: str) -> Iterator[str]:
    """Splits text holding bracketed trees into one string per tree.

    Works for multi-line `.mrg` files and one-tree-per-line `.trees` files
    alike: a tree is everything from a `(` at depth 0 to its matching `)`.
    Lines starting with `*x*` (LDC file headers) are ignored.

    Args:
      text: file contents.

    Yields:
      Each tree's text, whitespace collapsed to single spaces.

    Raises:
      ValueError: when the brackets do not balance.
    """
    lines = [ln for ln in text.splitlines() if not ln.startswith("*x*")]
    depth, start = 0, -1
    joined = " ".join(lines)
    for i, char in enumerate(joined):
        if char == "(":
            if depth == 0:
                start = i
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' at character {i}")
            if depth == 0:
                yield " ".join(joined[start : i + 1].split())
    if depth != 0:
        raise ValueError(f"unbalanced '(' in tree starting at {start}")


def parse_tree(tree_str: str) -> Tree:
    """Parses one bracketed tree, e.g. `( (S (NP (DT The) ...)) )`.

    Args:
      tree_str: the tree; brackets need no surrounding spaces.

    Returns:
      The root `Tree` (label `""` for the PTB's unlabeled wrapper).

    Raises:
      ValueError: on malformed input.
    """
    tokens = _TOKEN_RE.findall(tree_str)
    if not tokens or tokens[0] != "(":
        raise ValueError(f"not a bracketed tree: {tree_str[:60]!r}")
    stack: list[tuple[str, list[Tree | str]]] = []
    root: Tree | None = None
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        if token == "(":
            label = ""
            if pos + 1 < len(tokens) and tokens[pos + 1] not in "()":
                label = tokens[pos + 1]
                pos += 1
            stack.append((label, []))
        elif token == ")":
            if not stack:
                raise ValueError(f"unbalanced ')' in {tree_str[:60]!r}")
            label, children = stack.pop()
            node = Tree(label, tuple(children))
            if stack:
                stack[-1][1].append(node)
            elif root is None:
                root = node
            else:
                raise ValueError(f"more than one tree in {tree_str[:60]!r}")
        else:
            if not stack:
                raise ValueError(f"word outside brackets: {token!r}")
            stack[-1][1].append(token)
        pos += 1
    if stack or root is None:
        raise ValueError(f"unbalanced '(' in {tree_str[:60]!r}")
    return root


def strip_function_tags(label: str) -> str:
    """`NP-SBJ-1` -> `NP`, `PP-LOC=2` -> `PP`; `-LRB-`, `-NONE-` unchanged."""
    if label.startswith("-") and label.endswith("-"):
        return label
    return re.split(r"[-=]", label, maxsplit=1)[0] or label


def clean_tree(tree: Tree, strip_functions: bool = True) -> Tree | None:
    """Drops `-NONE-` elements and emptied constituents; strips labels.

    Args:
      tree: a parsed tree.
      strip_functions: also remove function tags and co-indices.

    Returns:
      The cleaned tree, or None when nothing but empty elements was left.
    """
    label = strip_function_tags(tree.label) if strip_functions else tree.label
    if tree.is_preterminal:
        return None if tree.label == NONE_TAG else Tree(label, tree.children)
    children = []
    for child in tree.children:
        if isinstance(child, str):  # A word directly under a phrase.
            children.append(child)
            continue
        cleaned = clean_tree(child, strip_functions)
        if cleaned is not None:
            children.append(cleaned)
    return Tree(label, tuple(children)) if children else None


def _linearize(node: Tree | str, words: list[str], tags: list[str]) -> None:
    if isinstance(node, str):
        words.append(node)
        return
    tags.append(node.label)
    for child in node.children:
        _linearize(child, words, tags)
    if not node.is_preterminal:
        tags.append("/" + node.label)


def linearize(tree: Tree) -> tuple[list[str], list[str]]:
    """Words and linearized labels of `tree`, root wrapper removed.

    Args:
      tree: a (cleaned) tree; a root labelled `""`, `TOP`, `ROOT` or `VROOT`
        is a wrapper and contributes no labels (T2T strips `TOP`).

    Returns:
      `(words, tags)`: the leaves, and the opening labels plus `/LABEL`
      closers of non-POS constituents.
    """
    words: list[str] = []
    tags: list[str] = []
    nodes = tree.children if tree.label in ROOT_LABELS else (tree,)
    for node in nodes:
        _linearize(node, words, tags)
    return words, tags


def linearize_tree(
    tree_str: str, strip_functions: bool = True
) -> tuple[str, str]:
    """Parses, cleans and linearizes one bracketed tree.

    Args:
      tree_str: a PTB bracketed tree (`.mrg` or `.trees` style).
      strip_functions: strip function tags and co-indices from labels.

    Returns:
      `(words, linearized)` as space-separated strings; both are empty when
      the tree holds only empty elements.
    """
    tree = clean_tree(parse_tree(tree_str), strip_functions)
    if tree is None:
        return "", ""
    words, tags = linearize(tree)
    return " ".join(words), " ".join(tags)


def _mrg_files(tmp_dir: str, sections: tuple[int, ...]) -> list[str]:
    pattern = os.path.join(
        tmp_dir, "**", "parsed", "mrg", "wsj", "[0-9][0-9]", "wsj_*.mrg"
    )
    files = glob.glob(pattern, recursive=True)
    chosen = [
        f
        for f in files
        if int(os.path.basename(os.path.dirname(f))) in sections
    ]
    return sorted(chosen)


def _trees_files(tmp_dir: str, split: str) -> list[str]:
    files = sorted(glob.glob(os.path.join(tmp_dir, f"*_{split}.trees")))
    if len(files) > 1:
        raise ValueError(
            f"several `*_{split}.trees` files in {tmp_dir}: {files}; keep one"
        )
    return files


def _examples_from_files(paths: list[str]) -> Iterator[problem_lib.Example]:
    skipped = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for tree_str in read_bracketed_trees(text):
            words, linearized = linearize_tree(tree_str)
            if not words:
                skipped += 1
                continue
            yield {"inputs": words, "targets": linearized}
    if skipped:
        _LOG.warning("skipped %d trees without words in %s", skipped, paths)


def _missing(tmp_dir: str) -> problem_lib.MissingDataError:
    return problem_lib.MissingDataError(
        f"no Penn Treebank in {tmp_dir}. {HELP}"
    )


def _generator(split: str, sections: tuple[int, ...]) -> problem_lib.Generator:
    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        paths = _mrg_files(tmp_dir, sections) or _trees_files(tmp_dir, split)
        if not paths:
            raise _missing(tmp_dir)
        _LOG.info("parse_ptb %s: reading %d files", split, len(paths))
        yield from _examples_from_files(paths)

    return generate


HELP = (
    "Put the Penn Treebank WSJ .mrg files (LDC99T42, Treebank-3; licensed "
    f"by the LDC, {PTB_URL}) under tmp_dir so that "
    "`<tmp_dir>/[...]/parsed/mrg/wsj/02/wsj_0200.mrg` ... "
    "`wsj/23/wsj_2399.mrg` exist (sections 02-21 train, 22 dev, 23 test); "
    "or T2T's one-tree-per-line files `<tmp_dir>/<prefix>_train.trees`, "
    "`<tmp_dir>/<prefix>_dev.trees` (and `_test.trees`)."
)


PARSE_PTB_WSJ8K = registry.register(
    problem_lib.Problem(
        name="parse_ptb_wsj8k",
        generators={
            problem_lib.TRAIN: _generator(problem_lib.TRAIN, TRAIN_SECTIONS),
            problem_lib.DEV: _generator(problem_lib.DEV, DEV_SECTIONS),
            problem_lib.TEST: _generator(problem_lib.TEST, TEST_SECTIONS),
        },
        features={"inputs": text_features.TEXT, "targets": text_features.TEXT},
        metrics=("exact_tree", "bracket_f1"),
        input_space_id=features_lib.SpaceID.EN_TOK,
        target_space_id=features_lib.SpaceID.PARSE_TOK,
        raw_files_help=HELP,
        num_shards=10,
        manual_download=public_corpora.PTB_HELP,
    )
)
