"""Offline demo parsing: the gold trees shipped in allennlp 0.9.0's fixtures.

A stand-in for the paper's WSJ parsing task (section 4) built from real gold
constituency trees that install through PyPI (`offline_data.md`): the
allennlp 0.9.0 wheel (Apache-2) carries two WSJ trees in PTB brackets and
OntoNotes sentences in CoNLL-2012 files. `scripts/fetch-offline-data.sh`
downloads the wheel (`pip download --no-deps allennlp==0.9.0`) into the cache
directory (`$T2T_MM_CACHE`, default `~/.cache/t2t_multimodel`); this module
reads the fixture files out of it with `zipfile`. allennlp is never installed
or imported.

CoNLL-2012 to PTB (`conll_sentence_to_tree`): in each token's parse bit
(column 6) the `*` becomes `(POS word)` and the bits are joined; `(` and `)`
words and tags become `-LRB-` / `-RRB-`. Sentences whose parse column is `-`
(open_ie.gold_conll has none) are not trees and the file is not read.

The trees are cleaned and linearized as in `parse_ptb_wsj8k`
(`parse_ptb.linearize_tree`: traces and function tags dropped, words in,
`S NP DT NN /NP ...` out). The 50 trees (624 words), in `FIXTURE_FILES`
order, are split by position: every fifth tree (index 4, 9, ...) is dev,
giving 40 train / 10 dev trees. Space EN_TOK -> PARSE_TOK; the metrics are
exact tree match and labelled bracket F1. At this size the problem mainly
shows the task and the format; a tiny model cannot learn parsing from 40
trees.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator

from problems import problem as problem_lib
from problems import registry, text_features
from problems.paper import parse_ptb
from t2t_multimodel.data import features as features_lib

ALLENNLP_VERSION = "0.9.0"
WHEEL_NAME = f"allennlp-{ALLENNLP_VERSION}-py3-none-any.whl"
# The cache directory of scripts/fetch-offline-data.sh (same variable).
CACHE_DIR = os.environ.get(
    "T2T_MM_CACHE",
    os.path.join(os.path.expanduser("~"), ".cache", "t2t_multimodel"),
)
WHEEL_PATH = os.path.join(CACHE_DIR, WHEEL_NAME)
_FIXTURES = "allennlp/tests/fixtures/"
FIXTURE_FILES = (
    _FIXTURES + "data/example_ptb.trees",
    _FIXTURES + "conll_2012/subdomain/example.gold_conll",
    _FIXTURES + "conll_2012/subdomain2/example.gold_conll",
    _FIXTURES + "coref/coref.gold_conll",
    _FIXTURES + "data/srl/nt_6401.gold_conll",
)
DEV_EVERY = 5  # Trees 4, 9, 14, ... (0-based) are dev.

_BRACKETS = {"(": "-LRB-", ")": "-RRB-"}


def conll_sentence_to_tree(rows: list[list[str]]) -> str | None:
    """The PTB bracketed tree of one CoNLL-2012 sentence.

    Args:
      rows: the sentence's token lines split into columns (word in column 4,
        POS in 5, parse bit in 6, 1-based).

    Returns:
      e.g. `(TOP(S(NP (DT The) (NN dog))(VP (VBZ barks))))`, or None when the
      sentence has no parse (the bits are `-`).
    """
    bits = []
    for row in rows:
        word, pos, bit = row[3], row[4], row[5]
        if "*" not in bit:
            return None
        word, pos = _BRACKETS.get(word, word), _BRACKETS.get(pos, pos)
        bits.append(bit.replace("*", f" ({pos} {word})"))
    return "".join(bits)


def read_conll_trees(text: str) -> Iterator[str]:
    """The bracketed trees of a CoNLL-2012 `*_conll` file, in order.

    Sentences are separated by blank lines; `#begin document` / `#end
    document` lines are skipped.
    """
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.strip() and not line.startswith("#"):
            rows.append(line.split())
            continue
        if rows:
            tree = conll_sentence_to_tree(rows)
            if tree is not None:
                yield tree
            rows = []


def read_fixture_trees(wheel_path: str = WHEEL_PATH) -> list[str]:
    """The distinct fixture trees of the wheel, in `FIXTURE_FILES` order.

    51 trees are read; one CoNLL sentence appears in two files and is kept
    once, so that train and dev stay disjoint.

    Raises:
      MissingDataError: when the wheel has not been downloaded.
    """
    if not os.path.exists(wheel_path):
        raise problem_lib.MissingDataError(
            f"{wheel_path} not found: run scripts/fetch-offline-data.sh (it "
            f"runs `python3 -m pip download --no-deps allennlp=="
            f"{ALLENNLP_VERSION} -d {os.path.dirname(wheel_path)}`)."
        )
    trees: list[str] = []
    with zipfile.ZipFile(wheel_path) as wheel:
        for name in FIXTURE_FILES:
            text = wheel.read(name).decode("utf-8")
            if name.endswith(".trees"):
                trees.extend(parse_ptb.read_bracketed_trees(text))
            else:
                trees.extend(read_conll_trees(text))
    return list(dict.fromkeys(trees))


def _generator(wheel_path: str, split: str) -> problem_lib.Generator:
    want_dev = split == problem_lib.DEV

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        del tmp_dir  # The data comes from the downloaded wheel.
        for index, tree in enumerate(read_fixture_trees(wheel_path)):
            if (index % DEV_EVERY == DEV_EVERY - 1) != want_dev:
                continue
            words, linearized = parse_ptb.linearize_tree(tree)
            if words:
                yield {"inputs": words, "targets": linearized}

    return generate


def allennlp_parse_problem(
    wheel_path: str = WHEEL_PATH, name: str = "demo_parse_ptb_allennlp"
) -> problem_lib.Problem:
    """The parsing problem reading the allennlp wheel at `wheel_path`."""
    return problem_lib.Problem(
        name=name,
        generators={
            split: _generator(wheel_path, split) for split in problem_lib.SPLITS
        },
        features={
            "inputs": text_features.TEXT,
            "targets": text_features.TEXT,
        },
        metrics=("exact_tree", "bracket_f1"),
        input_space_id=features_lib.SpaceID.EN_TOK,
        target_space_id=features_lib.SpaceID.PARSE_TOK,
        raw_files_help=(
            "run scripts/fetch-offline-data.sh (downloads the allennlp "
            f"{ALLENNLP_VERSION} wheel to {os.path.dirname(wheel_path)})."
        ),
        num_shards=1,
    )


DEMO_PARSE_PTB_ALLENNLP = registry.register(allennlp_parse_problem())
