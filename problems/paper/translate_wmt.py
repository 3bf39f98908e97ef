"""WMT English-German and English-French translation (the paper's tasks 5-8).

The corpora are T2T's (multimodel_facts.md section 8): EN-DE trains on
news-commentary v11, commoncrawl and europarl v7; EN-FR on commoncrawl,
europarl v7, news-commentary v9, giga-fren and UN 2000; both use newstest2013
as dev. DE->EN and FR->EN are `problem.reverse` values of the same problems.

Raw files, read in the formats WMT ships them:
- Training text: line-aligned plain text pairs `<corpus>.<pair>.<lang>` (e.g.
  `europarl-v7.de-en.de` / `.en`). Each file is looked up in `tmp_dir` under
  its path inside the release archive (`training/europarl-v7.de-en.de`) and
  under its bare name; if neither exists, it is read straight out of the
  archive as downloaded (`training-parallel-europarl-v7.tgz`, ...) with
  `tarfile`, member by member as a stream, without extracting the rest.
  Gzipped members (giga-fren's `*.gz` inside `training-giga-fren.tar`) are
  decompressed on the fly. Lines are split on `\\n` only and stripped; pairs
  with an empty side are skipped, and so are the extra lines when the two
  files differ in length; both counts are logged. Corpora whose files are
  absent are skipped with a warning; if none is present,
  `MissingDataError` says what to put where.
- Dev: newstest2013 SGML, `newstest2013-src.en.sgm` with
  `newstest2013-ref.de.sgm` (or `.fr.sgm`): `<srcset>`/`<refset>`, `<doc
  docid=...>`, `<seg id=...>text</seg>`. Segments are aligned by (doc id, seg
  id) and XML/HTML entities are unescaped. Looked up in `tmp_dir`,
  `tmp_dir/dev/` or WMT's `dev.tgz`; T2T's plain-text `dev/newstest2013.en`
  / `.de` pair is accepted when the SGML files are absent.
- Test: newstest2014 (the paper's Table 1 test set; 3003 segments for
  EN-DE), SGML, from WMT's `dev.tgz` (`dev/newstest2014-deen-src.en.sgm`
  with `-ref.de.sgm`, or the `-ref.en` / `-src.de` pair) or from the
  `test-full.tgz` released after WMT14 (sacrebleu's `wmt14/full`,
  `test-full/newstest2014-deen-src.en.sgm`, ...), aligned by ids as dev.

Downloads (`raw_files`, fetched by t2t-mm-datagen when missing): the
training archives above and WMT19's `dev.tgz` (newstest2013 and 2014, the
file with a published checksum; T2T fetched WMT17's, which holds the same
two sets), from `t2t_multimodel.data.public_corpora`. Nothing is unpacked:
the archives are read in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import html
import io
import itertools
import logging
import os
import re
import tarfile
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from problems import problem as problem_lib
from problems import registry, text_features
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import public_corpora, raw_files

_LOG = logging.getLogger(__name__)

_STATMT = "http://www.statmt.org"
_WMT_DEV_URL = public_corpora.WMT_DEV.url
_WMT_TEST_FULL = public_corpora.WMT14_TEST_FULL


@dataclasses.dataclass(frozen=True)
class ParallelFiles:
    """A pair of line-aligned files as shipped in a release archive.

    Attributes:
      archive: the archive's file name as downloaded (`*.tgz` / `*.tar`).
      url: where the archive is published.
      source: path inside the archive of the English side.
      target: path inside the archive of the other side.
    """

    archive: str
    url: str
    source: str
    target: str


def _pair(archive: str, url: str, prefix: str, lang: str) -> ParallelFiles:
    return ParallelFiles(archive, url, f"{prefix}.en", f"{prefix}.{lang}")


ENDE_TRAIN = (
    _pair(
        "training-parallel-nc-v11.tgz",
        "http://data.statmt.org/wmt16/translation-task/"
        "training-parallel-nc-v11.tgz",
        "training-parallel-nc-v11/news-commentary-v11.de-en",
        "de",
    ),
    _pair(
        "training-parallel-commoncrawl.tgz",
        f"{_STATMT}/wmt13/training-parallel-commoncrawl.tgz",
        "commoncrawl.de-en",
        "de",
    ),
    _pair(
        "training-parallel-europarl-v7.tgz",
        f"{_STATMT}/wmt13/training-parallel-europarl-v7.tgz",
        "training/europarl-v7.de-en",
        "de",
    ),
)
ENFR_TRAIN = (
    _pair(
        "training-parallel-commoncrawl.tgz",
        f"{_STATMT}/wmt13/training-parallel-commoncrawl.tgz",
        "commoncrawl.fr-en",
        "fr",
    ),
    _pair(
        "training-parallel-europarl-v7.tgz",
        f"{_STATMT}/wmt13/training-parallel-europarl-v7.tgz",
        "training/europarl-v7.fr-en",
        "fr",
    ),
    _pair(
        "training-parallel-nc-v9.tgz",
        f"{_STATMT}/wmt14/training-parallel-nc-v9.tgz",
        "training/news-commentary-v9.fr-en",
        "fr",
    ),
    ParallelFiles(
        "training-giga-fren.tar",
        f"{_STATMT}/wmt10/training-giga-fren.tar",
        "giga-fren.release2.fixed.en.gz",
        "giga-fren.release2.fixed.fr.gz",
    ),
    _pair(
        "training-parallel-un.tgz",
        f"{_STATMT}/wmt13/training-parallel-un.tgz",
        "un/undoc.2000.fr-en",
        "fr",
    ),
)


def _dev(lang: str) -> tuple[ParallelFiles, ParallelFiles]:
    sgml = ParallelFiles(
        "dev.tgz",
        _WMT_DEV_URL,
        "dev/newstest2013-src.en.sgm",
        f"dev/newstest2013-ref.{lang}.sgm",
    )
    plain = _pair("dev.tgz", _WMT_DEV_URL, "dev/newstest2013", lang)
    return sgml, plain


def _test(lang: str) -> tuple[ParallelFiles, ...]:
    """newstest2014 candidates: English side first, then the other."""
    pair = f"{lang}en"
    prefix = f"newstest2014-{pair}"
    return (
        ParallelFiles(
            "dev.tgz",
            _WMT_DEV_URL,
            f"dev/{prefix}-src.en.sgm",
            f"dev/{prefix}-ref.{lang}.sgm",
        ),
        # In the full set both sides are complete documents: ref.en / src.de
        # are the same segments as src.en / ref.de.
        ParallelFiles(
            "dev.tgz",
            _WMT_DEV_URL,
            f"dev/{prefix}-ref.en.sgm",
            f"dev/{prefix}-src.{lang}.sgm",
        ),
        ParallelFiles(
            _WMT_TEST_FULL.filename,
            _WMT_TEST_FULL.url,
            f"test-full/{prefix}-src.en.sgm",
            f"test-full/{prefix}-ref.{lang}.sgm",
        ),
    )


def _disk_names(member: str) -> tuple[str, ...]:
    """The names `member` may have in `tmp_dir` once unpacked."""
    names = [member, os.path.basename(member)]
    if member.endswith(".gz"):  # A user may have gunzipped it.
        names += [n[: -len(".gz")] for n in names]
    return tuple(dict.fromkeys(names))  # A bare member is listed once.


def _on_disk(tmp_dir: str, member: str) -> str | None:
    """The member's path in `tmp_dir`, unpacked or by its bare name."""
    for name in _disk_names(member):
        path = os.path.join(tmp_dir, name)
        if os.path.isfile(path):
            return path
    return None


def _available(tmp_dir: str, files: ParallelFiles) -> bool:
    on_disk = all(_on_disk(tmp_dir, m) for m in (files.source, files.target))
    return on_disk or os.path.isfile(os.path.join(tmp_dir, files.archive))


def _tar_member(tar: tarfile.TarFile, member: str) -> BinaryIO:
    """Streams `member` out of `tar`, reading headers only up to it."""
    base = os.path.basename(member)
    for info in tar:
        name = info.name.removeprefix("./")
        if info.isfile() and (name == member or name.endswith("/" + base)):
            return tar.extractfile(info)
    raise problem_lib.MissingDataError(f"{member} is not in {tar.name}")


@contextlib.contextmanager
def open_text(tmp_dir: str, member: str, archive: str) -> Iterator[TextIO]:
    """Opens a release file from `tmp_dir` or from inside its archive.

    Args:
      tmp_dir: the raw-data directory.
      member: the file's path inside the release archive.
      archive: the archive's file name in `tmp_dir`.

    Yields:
      A UTF-8 text stream (undecodable bytes replaced) that splits lines on
      `\\n` only; `.gz` files are decompressed.
    """
    with contextlib.ExitStack() as stack:
        path = _on_disk(tmp_dir, member)
        if path is not None:
            raw: BinaryIO = stack.enter_context(open(path, "rb"))
            gzipped = path.endswith(".gz")
        else:
            archive_path = os.path.join(tmp_dir, archive)
            tar = stack.enter_context(tarfile.open(archive_path, "r:*"))
            raw = stack.enter_context(_tar_member(tar, member))
            gzipped = member.endswith(".gz")
        if gzipped:
            raw = stack.enter_context(gzip.GzipFile(fileobj=raw))
        yield stack.enter_context(
            io.TextIOWrapper(
                raw, encoding="utf-8", errors="replace", newline="\n"
            )
        )


def read_parallel_lines(
    tmp_dir: str, files: ParallelFiles
) -> Iterator[tuple[str, str]]:
    """Yields stripped (source, target) line pairs; skips and counts bad ones.

    Args:
      tmp_dir: the raw-data directory.
      files: the pair of line-aligned files.

    Yields:
      `(english, other)` pairs where both sides are non-empty.
    """
    empty = unpaired = 0
    with (
        open_text(tmp_dir, files.source, files.archive) as src,
        open_text(tmp_dir, files.target, files.archive) as tgt,
    ):
        for source, target in itertools.zip_longest(src, tgt):
            if source is None or target is None:
                unpaired += 1
                continue
            source, target = source.strip(), target.strip()
            if not source or not target:
                empty += 1
                continue
            yield source, target
    if empty or unpaired:
        _LOG.warning(
            "%s: skipped %d pairs with an empty side and %d unpaired lines "
            "(the files differ in length)",
            files.source,
            empty,
            unpaired,
        )


_DOC_RE = re.compile(r"<doc\b([^>]*)>(.*?)</doc>", re.S | re.I)
_DOCID_RE = re.compile(r"""docid\s*=\s*["']?([^"'\s>]+)""", re.I)
_SEG_RE = re.compile(
    r"""<seg\b[^>]*?\bid\s*=\s*["']?([^"'\s>]+)["']?[^>]*>(.*?)</seg>""",
    re.S | re.I,
)


def parse_sgml(text: str) -> list[tuple[tuple[str, str], str]]:
    """Parses a WMT `*.sgm` file into `((docid, segid), text)` in file order.

    Segment texts are stripped and their entities (`&amp;`, `&quot;`,
    `&#39;`, ...) unescaped.
    """
    segments = []
    for doc_attrs, body in _DOC_RE.findall(text):
        match = _DOCID_RE.search(doc_attrs)
        docid = match.group(1) if match else ""
        for segid, seg in _SEG_RE.findall(body):
            segments.append(((docid, segid), html.unescape(seg).strip()))
    return segments


def read_sgml_pairs(
    tmp_dir: str, files: ParallelFiles
) -> Iterator[tuple[str, str]]:
    """Yields (source, reference) segments of two SGML files, by id."""
    with open_text(tmp_dir, files.source, files.archive) as f:
        source = parse_sgml(f.read())
    with open_text(tmp_dir, files.target, files.archive) as f:
        target = dict(parse_sgml(f.read()))
    missing = empty = 0
    for key, text in source:
        ref = target.pop(key, None)
        if ref is None:
            missing += 1
        elif not text or not ref:
            empty += 1
        else:
            yield text, ref
    if missing or empty or target:
        _LOG.warning(
            "%s: skipped %d source segments without reference, %d empty, "
            "%d reference segments without source",
            files.target,
            missing,
            empty,
            len(target),
        )


def _raw_files(
    corpora: tuple[ParallelFiles, ...], lang: str
) -> tuple[raw_files.RawFile, ...]:
    """What datagen downloads: the training archives and dev.tgz.

    Each archive counts as present without the download when its members
    are unpacked in tmp_dir (under either name `_on_disk` accepts).
    """
    remote = {f.filename: f for f in public_corpora.CORPORA[f"wmt_en{lang}"]}
    sgml_dev, test = _dev(lang)[0], _test(lang)[0]
    files = [
        raw_files.RawFile(
            remote[c.archive],
            provides=(_disk_names(c.source), _disk_names(c.target)),
        )
        for c in corpora
    ]
    files.append(
        raw_files.RawFile(
            public_corpora.WMT_DEV,
            provides=tuple(
                _disk_names(m)
                for m in (sgml_dev.source, sgml_dev.target)
                + (test.source, test.target)
            ),
        )
    )
    return tuple(files)


def _help(train: tuple[ParallelFiles, ...], lang: str) -> str:
    lines = [
        "Put the WMT files in tmp_dir, unpacked (either path works) or as "
        "the downloaded archives (read without unpacking):"
    ]
    for files in train + _dev(lang)[:1]:
        lines.append(
            f"  {files.source} + {files.target} (or their bare names), or "
            f"{files.archive} from {files.url}"
        )
    lines.append(
        "Training uses every corpus found (at least one); dev needs "
        "newstest2013 (SGML, or T2T's plain dev/newstest2013.en + "
        f"dev/newstest2013.{lang}); test needs newstest2014 "
        f"({_test(lang)[0].source} + {_test(lang)[0].target} from "
        f"dev.tgz, or test-full.tgz from {_WMT_TEST_FULL.url})."
    )
    return "\n".join(lines)


def _train_generator(
    corpora: tuple[ParallelFiles, ...], help_text: str
) -> problem_lib.Generator:
    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        present = [c for c in corpora if _available(tmp_dir, c)]
        if not present:
            raise problem_lib.MissingDataError(
                f"no WMT training corpus in {tmp_dir}.\n{help_text}"
            )
        for files in corpora:
            if files not in present:
                _LOG.warning(
                    "%s not found in %s: skipped", files.archive, tmp_dir
                )
        for files in present:
            for source, target in read_parallel_lines(tmp_dir, files):
                yield {"inputs": source, "targets": target}

    return generate


def _dev_generator(lang: str, help_text: str) -> problem_lib.Generator:
    sgml, plain = _dev(lang)

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        readers = ((sgml, read_sgml_pairs), (plain, read_parallel_lines))
        for files, read in readers:
            if _available(tmp_dir, files):
                for source, target in read(tmp_dir, files):
                    yield {"inputs": source, "targets": target}
                return
        raise problem_lib.MissingDataError(
            f"no newstest2013 in {tmp_dir}.\n{help_text}"
        )

    return generate


def _test_generator(lang: str, help_text: str) -> problem_lib.Generator:
    candidates = _test(lang)

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        for files in candidates:
            if not _available(tmp_dir, files):
                continue
            try:  # Both files are read before the first pair comes.
                pairs = list(read_sgml_pairs(tmp_dir, files))
            except problem_lib.MissingDataError:  # Not in this archive.
                continue
            for source, target in pairs:
                yield {"inputs": source, "targets": target}
            return
        raise problem_lib.MissingDataError(
            f"no newstest2014 in {tmp_dir}.\n{help_text}"
        )

    return generate


def translation_problem(
    name: str,
    corpora: tuple[ParallelFiles, ...],
    lang: str,
    target_space_id: int,
) -> problem_lib.Problem:
    """An English-to-`lang` WMT problem (reverse it for `lang`-to-English)."""
    help_text = _help(corpora, lang)
    return problem_lib.Problem(
        name=name,
        generators={
            problem_lib.TRAIN: _train_generator(corpora, help_text),
            problem_lib.DEV: _dev_generator(lang, help_text),
            problem_lib.TEST: _test_generator(lang, help_text),
        },
        features={"inputs": text_features.TEXT, "targets": text_features.TEXT},
        metrics=("bleu",),
        input_space_id=features_lib.SpaceID.EN_TOK,
        target_space_id=target_space_id,
        raw_files_help=help_text,
        num_shards=100,  # T2T's default for the WMT corpora.
        raw_files=_raw_files(corpora, lang),
    )


TRANSLATE_ENDE_WMT8K = registry.register(
    translation_problem(
        "translate_ende_wmt8k", ENDE_TRAIN, "de", features_lib.SpaceID.DE_TOK
    )
)
TRANSLATE_DEEN_WMT8K = registry.register(
    problem_lib.reverse(TRANSLATE_ENDE_WMT8K, "translate_deen_wmt8k")
)
TRANSLATE_ENFR_WMT8K = registry.register(
    translation_problem(
        "translate_enfr_wmt8k", ENFR_TRAIN, "fr", features_lib.SpaceID.FR_TOK
    )
)
TRANSLATE_FREN_WMT8K = registry.register(
    problem_lib.reverse(TRANSLATE_ENFR_WMT8K, "translate_fren_wmt8k")
)
