"""A problem's public raw files, and getting them into `tmp_dir` for datagen.

A `RawFile` pairs one published archive (`public_corpora.RemoteFile`: URL,
name in `tmp_dir`, size and checksums) with what datagen does once it is
there: unpack it (LibriSpeech's `*.tar.gz`, the COCO annotations zip) or
nothing (the WMT archives and the COCO image zips are read in place by their
problems), and the paths that show its content is already in `tmp_dir`
without the archive (`provides`: a user who unpacked LibriSpeech and deleted
the 23 GB tarball is not sent to download it again).

`prepare(files, tmp_dir, mirror=..., progress=...)` makes every file ready,
in order, touching the network only for what is missing (SPEC.md section 1:
"downloaded there when a public URL exists"):
- the archive is in `tmp_dir`: verified against its published size and
  checksums (a stamp spares rehashing, `download.py`) and unpacked if it
  must be (a marker spares unpacking twice, `archives.py`); no network;
- the archive is absent but everything in `provides` is there: nothing;
- otherwise: downloaded (resumable, verified, progress bar, `mirror`), then
  unpacked.
The library reads no flag or environment variable: the program passes the
mirror (`mirrors.resolve_mirror`).
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
from collections.abc import Sequence

from t2t_multimodel.data import archives, public_corpora

_LOG = logging.getLogger(__name__)

# A path (glob pattern) relative to tmp_dir, or alternatives of which one
# must exist (a member unpacked under its archive path or its bare name).
Provided = str | tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RawFile:
    """One public file a problem reads, and how datagen prepares it.

    Attributes:
      remote: the published file (URL, file name in tmp_dir, checksums).
      extract: unpack it into tmp_dir once downloaded (`archives.extract`).
      members: with `extract`, only the members whose names start with one
        of these prefixes (None: all).
      provides: glob patterns relative to tmp_dir (or tuples of alternative
        patterns) that all exist when the archive's content is already
        there without the archive; empty: only the archive itself counts.
    """

    remote: public_corpora.RemoteFile
    extract: bool = False
    members: tuple[str, ...] | None = None
    provides: tuple[Provided, ...] = ()

    @property
    def filename(self) -> str:
        """The archive's name in tmp_dir."""
        return self.remote.filename

    def content_present(self, tmp_dir: str) -> bool:
        """Whether everything in `provides` is in `tmp_dir` (False if none)."""
        if not self.provides:
            return False
        for item in self.provides:
            choices = (item,) if isinstance(item, str) else item
            if not any(_exists(os.path.join(tmp_dir, p)) for p in choices):
                return False
        return True

    def present(self, tmp_dir: str) -> bool:
        """The archive or its content is in `tmp_dir` (no download needed)."""
        archive = os.path.join(tmp_dir, self.filename)
        return os.path.isfile(archive) or self.content_present(tmp_dir)


def _exists(pattern: str) -> bool:
    # The first match is enough: a folder of 80k images is not listed.
    return next(glob.iglob(pattern), None) is not None


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What `prepare` did, by file name.

    Attributes:
      downloaded: fetched in this call.
      present: already in tmp_dir (the archive, or its content).
      extracted: unpacked (or found unpacked by the marker) in this call.
    """

    downloaded: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    extracted: tuple[str, ...] = ()


def missing(files: Sequence[RawFile], tmp_dir: str) -> list[RawFile]:
    """The files of `files` that `prepare` would download."""
    return [f for f in _unique(files) if not f.present(tmp_dir)]


def _unique(files: Sequence[RawFile]) -> list[RawFile]:
    """`files` without repeats of a file name (the first one is kept)."""
    seen: set[str] = set()
    out = []
    for raw in files:
        if raw.filename not in seen:
            seen.add(raw.filename)
            out.append(raw)
    return out


def prepare(
    files: Sequence[RawFile],
    tmp_dir: str,
    *,
    mirror: str | None = None,
    progress: bool = True,
) -> Prepared:
    """Downloads the missing `files` into `tmp_dir` and unpacks them.

    See the module docstring for what counts as present. A file name that
    appears twice (an archive two problems read) is prepared once; a
    repeat that must be unpacked with other members is unpacked again with
    those (the marker records the members).

    Args:
      files: the raw files, in the order to fetch them.
      tmp_dir: datagen's raw-data directory (created).
      mirror: fetch from this mirror instead of the publishers
        (`mirrors.mirror_url`).
      progress: tqdm progress bars on stderr.

    Returns:
      `Prepared`: what was downloaded, found and unpacked.

    Raises:
      download.DownloadError: a download failed (no network, HTTP error,
        interrupted for good: the partial file is kept for a resume).
      download.ChecksumMismatchError: a file differs from its published
        size or checksum (a downloaded one is deleted).
      archives.ArchiveError: an archive cannot be unpacked safely.
    """
    os.makedirs(tmp_dir, exist_ok=True)
    downloaded, present, extracted = [], [], []
    done: set[tuple[str, tuple[str, ...] | None]] = set()
    for raw in files:
        key = (raw.filename, raw.members if raw.extract else None)
        if key in done:
            continue
        done.add(key)
        archive = os.path.join(tmp_dir, raw.filename)
        if not os.path.isfile(archive) and raw.content_present(tmp_dir):
            _LOG.info("%s: its content is in %s", raw.filename, tmp_dir)
            present.append(raw.filename)
            continue
        if os.path.isfile(archive):
            present.append(raw.filename)
        else:
            downloaded.append(raw.filename)
        path = raw.remote.download(tmp_dir, mirror=mirror, progress=progress)
        if raw.extract:
            archives.extract(path, tmp_dir, prefixes=raw.members)
            extracted.append(raw.filename)
    return Prepared(
        downloaded=tuple(dict.fromkeys(downloaded)),
        present=tuple(dict.fromkeys(present)),
        extracted=tuple(dict.fromkeys(extracted)),
    )


__all__ = ["Prepared", "Provided", "RawFile", "missing", "prepare"]
