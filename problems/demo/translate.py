"""Offline demo translation: EN-DE from the Ding dictionary, EN-FR from gettext.

Stand-ins for the paper's WMT tasks (section 4) built from real text that
installs from Debian packages (`../shared/reference/offline_data.md`):

- `demo_translate_ende_ding` / `demo_translate_deen_ding`: the example
  sentences of the Ding German-English dictionary (`apt-get install
  trans-de-en`, `/usr/share/trans/de-en`, GPL-2+). Each line is
  `DE :: EN`; both sides hold sub-entries split by ` | `, zipped only where
  their counts match. Per side: `{m}`, `[coll.]` and `<alt>` tags and
  `(optional words)` are removed and the first `; ` alternative is kept.
  Kept: pairs ending in `.`, `!` or `?` on both sides, with 4-30 English
  words and no ` / ` alternatives (16,702 pairs, duplicates removed).
  It is a dictionary: single sentences without context, many idioms.
- `demo_translate_enfr_gettext`: English messages and their French
  translations from the GNU `.mo` catalogs of a fixed list of Debian packages
  (`GETTEXT_CATALOGS`; gcc's option help dominates), read by explicit path so
  the data does not depend on what else is installed. Kept (`keep_message`):
  messages of 4-30 words that start with a letter and end in `.`, `!`
  or `?`, without printf/brace placeholders, markup, escapes, accelerators,
  URLs or line breaks, and with a translation different from the source;
  whitespace is collapsed; the first catalog wins on duplicate messages
  (3,715 pairs on Debian 12).

Splits are fixed and disjoint: an example is dev when the hash of its English
source sentence falls in the first `DEV_PERCENT` percent (`is_dev`), about 5%
(EN-DE: 15,904 train / 798 dev; EN-FR: 3,522 / 193). Space EN_TOK -> DE_TOK
(FR_TOK); the metric is BLEU.
"""

from __future__ import annotations

import functools
import gettext
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence

from problems import problem as problem_lib
from problems import registry, text_features
from t2t_multimodel.data import features as features_lib

DING_PATH = "/usr/share/trans/de-en"
DING_PACKAGE = "trans-de-en"
DEV_PERCENT = 5
MIN_ENGLISH_WORDS = 4
MAX_ENGLISH_WORDS = 30

LOCALE_DIR = "/usr/share/locale/fr/LC_MESSAGES"
# (Debian package, catalog file) pairs, Debian 12 (bookworm) names. The
# packages are listed in scripts/debian-packages.txt.
GETTEXT_CATALOGS: tuple[tuple[str, str], ...] = (
    ("gcc-12-locales", "gcc-12.mo"),
    ("util-linux-locales", "util-linux.mo"),
    ("git", "git.mo"),
    ("libgnutls30", "gnutls30.mo"),
    ("aptitude-common", "aptitude.mo"),
    ("e2fsprogs-l10n", "e2fsprogs.mo"),
    ("gnupg-l10n", "gnupg2.mo"),
    ("wget", "wget.mo"),
    ("coreutils", "coreutils.mo"),
    ("apt", "apt.mo"),
)

_SENTENCE_END = (".", "!", "?")
# Tags ({m}, [coll.], <alt spelling>) and optional words in parentheses.
_DING_TAG_RE = re.compile(r"\s*(\{[^}]*\}|\[[^\]]*\]|<[^>]*>|\([^)]*\))")
# Placeholders (%s, {0}, $1), markup (<b>, &amp;), escapes, accelerators
# (_File), quoting (`x'), option syntax (--foo), URLs, e-mail addresses.
_NOISY_MESSAGE_RE = re.compile(r"%|\{|\}|<|>|\$|\\|`|&|--|_|@|\t|\n|https?:")
_LETTER_START_RE = re.compile(r"^[^\W\d_]")

Pair = tuple[str, str]


def _good_length(english: str) -> bool:
    return MIN_ENGLISH_WORDS <= len(english.split()) <= MAX_ENGLISH_WORDS


def is_dev(source: str, dev_percent: int = DEV_PERCENT) -> bool:
    """Whether the example with this source sentence belongs to dev.

    The split depends only on the sentence (SHA-1 of its UTF-8 bytes), so it
    is fixed, disjoint, independent of file order, and shared by every demo
    problem that reads the same sentences (the speech demo speaks Ding
    sentences and keeps their split).

    Args:
      source: the English source sentence.
      dev_percent: percentage of sentences (by hash) that go to dev.

    Returns:
      True for dev, False for train.
    """
    digest = hashlib.sha1(source.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < dev_percent


def clean_ding_side(text: str) -> str:
    """One Ding sub-entry without tags, optional words or alternatives.

    `Er ist {m} (sehr) müde [ugs.]; Er ist erschöpft.` -> `Er ist müde`;
    the first `; ` alternative is kept, whitespace collapsed.
    """
    text = _DING_TAG_RE.sub("", text)
    text = text.split("; ")[0]
    return " ".join(text.split())


def parse_ding_line(line: str) -> list[Pair]:
    """The `(english, german)` sentence pairs of one Ding dictionary line.

    Args:
      line: `DE :: EN`, each side with ` | `-separated sub-entries.

    Returns:
      Pairs of aligned sub-entries that are sentences on both sides (see the
      module docstring); empty for comments and headword-only lines.
    """
    if line.startswith("#") or " :: " not in line:
        return []
    german, english = line.rstrip("\n").split(" :: ", 1)
    de_parts, en_parts = german.split(" | "), english.split(" | ")
    if len(de_parts) != len(en_parts):
        return []
    pairs = []
    for de, en in zip(de_parts, en_parts):
        de, en = clean_ding_side(de), clean_ding_side(en)
        if not (de.endswith(_SENTENCE_END) and en.endswith(_SENTENCE_END)):
            continue
        if not _good_length(en) or "/" in de + en:
            continue
        pairs.append((en, de))
    return pairs


def _missing(path: str, package: str) -> problem_lib.MissingDataError:
    return problem_lib.MissingDataError(
        f"{path} not found: install it with `apt-get install {package}` "
        "(scripts/setup.sh installs every demo package)."
    )


@functools.lru_cache(maxsize=4)
def _read_ding_cached(path: str, mtime: float) -> tuple[Pair, ...]:
    del mtime  # Only part of the cache key.
    pairs: dict[Pair, None] = {}  # Ordered set: drops duplicate pairs.
    with open(path, encoding="utf-8") as f:
        for line in f:
            for pair in parse_ding_line(line):
                pairs[pair] = None
    return tuple(pairs)


def read_ding_pairs(path: str = DING_PATH) -> tuple[Pair, ...]:
    """All `(english, german)` sentence pairs of the Ding file, in file order.

    Cached per file (and modification time): EN-DE, DE-EN and the speech
    demo read the file once.

    Raises:
      MissingDataError: when the file is absent.
    """
    if not os.path.exists(path):
        raise _missing(path, DING_PACKAGE)
    return _read_ding_cached(path, os.path.getmtime(path))


def keep_message(msgid: str, msgstr: str) -> bool:
    """Whether a gettext message pair is a clean sentence pair (see module)."""
    if _NOISY_MESSAGE_RE.search(msgid) or _NOISY_MESSAGE_RE.search(msgstr):
        return False
    if not _LETTER_START_RE.match(msgid) or not msgid.endswith(_SENTENCE_END):
        return False
    return _good_length(msgid) and msgstr != msgid


def read_mo_pairs(path: str) -> list[Pair]:
    """The kept `(english, french)` pairs of one `.mo` catalog, sorted.

    Plural entries and the header are skipped; a message context
    (`ctx\\x04msgid`) is dropped from the key.
    """
    with open(path, "rb") as f:
        # `_catalog` is the parsed table: gettext has no public iterator.
        catalog = gettext.GNUTranslations(f)._catalog
    pairs = []
    for msgid, msgstr in catalog.items():
        if isinstance(msgid, tuple) or not msgid:  # Plurals, header.
            continue
        msgid = " ".join(msgid.split("\x04")[-1].split())
        msgstr = " ".join(msgstr.split())
        if msgstr and keep_message(msgid, msgstr):
            pairs.append((msgid, msgstr))
    return sorted(pairs)


def read_gettext_pairs(
    locale_dir: str = LOCALE_DIR,
    catalogs: Sequence[tuple[str, str]] = GETTEXT_CATALOGS,
) -> list[Pair]:
    """The EN-FR pairs of `catalogs`, in list order, first message wins.

    Raises:
      MissingDataError: naming the packages whose catalogs are absent.
    """
    missing = [
        package
        for package, name in catalogs
        if not os.path.exists(os.path.join(locale_dir, name))
    ]
    if missing:
        raise problem_lib.MissingDataError(
            f"French gettext catalogs missing in {locale_dir}: install them "
            f"with `apt-get install {' '.join(missing)}` (scripts/setup.sh "
            "installs every demo package)."
        )
    pairs: dict[str, str] = {}
    for _, name in catalogs:
        for msgid, msgstr in read_mo_pairs(os.path.join(locale_dir, name)):
            pairs.setdefault(msgid, msgstr)
    return list(pairs.items())


def _split_generator(
    read_pairs: Callable[[], Sequence[Pair]], split: str
) -> problem_lib.Generator:
    want_dev = split == problem_lib.DEV

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        del tmp_dir  # The data comes from installed packages.
        for source, target in read_pairs():
            if is_dev(source) == want_dev:
                yield {"inputs": source, "targets": target}

    return generate


def ding_problem(
    path: str = DING_PATH, name: str = "demo_translate_ende_ding"
) -> problem_lib.Problem:
    """The EN->DE Ding problem reading `path` (tests pass a small file)."""
    read = functools.partial(read_ding_pairs, path)
    return problem_lib.Problem(
        name=name,
        generators={
            split: _split_generator(read, split) for split in problem_lib.SPLITS
        },
        features={"inputs": text_features.TEXT, "targets": text_features.TEXT},
        metrics=("bleu",),
        input_space_id=features_lib.SpaceID.EN_TOK,
        target_space_id=features_lib.SpaceID.DE_TOK,
        raw_files_help=f"`apt-get install {DING_PACKAGE}` ({path}).",
        num_shards=2,
    )


def gettext_problem(
    locale_dir: str = LOCALE_DIR,
    catalogs: Sequence[tuple[str, str]] = GETTEXT_CATALOGS,
    name: str = "demo_translate_enfr_gettext",
) -> problem_lib.Problem:
    """The EN->FR gettext problem over `catalogs` in `locale_dir`."""
    read = functools.partial(read_gettext_pairs, locale_dir, tuple(catalogs))
    packages = " ".join(sorted({package for package, _ in catalogs}))
    return problem_lib.Problem(
        name=name,
        generators={
            split: _split_generator(read, split) for split in problem_lib.SPLITS
        },
        features={"inputs": text_features.TEXT, "targets": text_features.TEXT},
        metrics=("bleu",),
        input_space_id=features_lib.SpaceID.EN_TOK,
        target_space_id=features_lib.SpaceID.FR_TOK,
        raw_files_help=f"`apt-get install {packages}` ({locale_dir}).",
        num_shards=1,
    )


DEMO_TRANSLATE_ENDE_DING = registry.register(ding_problem())
DEMO_TRANSLATE_DEEN_DING = registry.register(
    problem_lib.reverse(
        DEMO_TRANSLATE_ENDE_DING, name="demo_translate_deen_ding"
    )
)
DEMO_TRANSLATE_ENFR_GETTEXT = registry.register(gettext_problem())
