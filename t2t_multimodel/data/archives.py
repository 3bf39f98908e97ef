"""Safe, idempotent unpacking of downloaded corpora for datagen.

`extract(archive, directory)` unpacks `.tar`, `.tar.gz` / `.tgz` (and the
other compressions `tarfile` reads), `.zip` and single-file `.gz` archives,
as LibriSpeech (`*.tar.gz`) and the COCO annotations (`*.zip`) need. It
refuses members that would land outside `directory` (absolute names, `..`,
links pointing out: "tar slip" / "zip slip") and device files, raising
`UnsafeArchiveError`. Members are checked and written one at a time, so a
30 GB tarball is read once; on an unsafe member, what came before it stays
but the archive does not count as extracted. When every member is out, a
marker `.<archive name>.extracted` (the archive's size and the member
prefixes asked for) is written in `directory`, and later calls with the same
archive and prefixes return at once: rerunning datagen does not unpack again.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Sequence

from t2t_multimodel import errors

_LOG = logging.getLogger(__name__)

_TAR_SUFFIXES = (
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
)
# Python >= 3.11.4 (and the 3.10.12 / 3.9.17 backports) also applies its own
# "data" filter: no absolute or escaping names or links, sane permissions.
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


class ArchiveError(errors.UserError, ValueError):
    """An archive cannot be unpacked (unknown format, damaged)."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the target directory."""


def _within(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _check_name(archive: str, root: str, name: str) -> None:
    target = os.path.realpath(os.path.join(root, name))
    if os.path.isabs(name) or not _within(root, target):
        raise UnsafeArchiveError(
            f"{archive} holds the member {name!r}, which would be written "
            f"outside {root} (path traversal); refused. Get the archive "
            "from its publisher again."
        )


def _check_tar_member(archive: str, root: str, member: tarfile.TarInfo):
    _check_name(archive, root, member.name)
    if member.issym() or member.islnk():
        base = os.path.dirname(member.name) if member.issym() else ""
        target = os.path.realpath(os.path.join(root, base, member.linkname))
        if os.path.isabs(member.linkname) or not _within(root, target):
            raise UnsafeArchiveError(
                f"{archive} holds the link {member.name!r} -> "
                f"{member.linkname!r}, which points outside {root}; refused."
            )
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(
            f"{archive} holds {member.name!r}, a device or pipe; refused."
        )


def _selected(name: str, prefixes: tuple[str, ...] | None) -> bool:
    return prefixes is None or name.startswith(prefixes)


def _extract_tar(archive: str, root: str, prefixes) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:  # Read in order: one pass over a .tar.gz.
            if not _selected(member.name, prefixes):
                continue
            _check_tar_member(archive, root, member)
            try:
                tar.extract(member, root, **_TAR_FILTER)
            except tarfile.FilterError as e:  # Caught by ours first.
                raise UnsafeArchiveError(f"{archive}: {e}; refused.") from e


def _extract_zip(archive: str, root: str, prefixes) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if _selected(m.filename, prefixes)]
        for member in members:  # All names first: zip has a directory.
            _check_name(archive, root, member.filename)
        for member in members:
            zf.extract(member, root)


def _extract_gz(archive: str, root: str) -> None:
    name = os.path.basename(archive)[: -len(".gz")]
    target = os.path.join(root, name)
    partial = target + ".partial"
    with gzip.open(archive, "rb") as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(partial, target)


def _kind(archive: str) -> str:
    name = os.path.basename(archive).lower()
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(".gz"):
        return "gz"
    raise ArchiveError(
        f"cannot unpack {archive}: expected a .tar, .tar.gz, .tgz, .tar.bz2, "
        ".tar.xz, .zip or .gz file."
    )


def _marker_path(archive: str, root: str) -> str:
    return os.path.join(root, f".{os.path.basename(archive)}.extracted")


def _write_marker(path: str, record: dict) -> None:
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(record, f)
    os.replace(partial, path)


def _read_marker(path: str) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        with open(path) as f:
            return json.load(f)
    return None


def extract(
    archive: str,
    directory: str | None = None,
    *,
    prefixes: Sequence[str] | None = None,
) -> str:
    """Unpacks `archive` into `directory` once; returns `directory`.

    Args:
      archive: a `.tar`, `.tar.gz`/`.tgz` (or `.bz2`/`.xz`), `.zip`, or a
        single-file `.gz` (unpacked to its name without `.gz`).
      directory: where members go (created); default: the archive's folder.
      prefixes: unpack only the members whose name starts with one of these
        (e.g. `("annotations/captions_",)`); None: all. Not for `.gz`.

    Returns:
      `directory`.

    Raises:
      UnsafeArchiveError: a member would be written outside `directory`, or
        is a device or pipe.
      ArchiveError: unknown suffix, or a damaged or truncated archive.
    """
    root = os.path.realpath(directory or os.path.dirname(archive) or ".")
    kind = _kind(archive)
    if kind == "gz" and prefixes is not None:
        raise ValueError(f"{archive} is one file: no member prefixes")
    chosen = None if prefixes is None else tuple(prefixes)
    record = {
        "size": os.path.getsize(archive),
        "prefixes": None if chosen is None else list(chosen),
    }
    marker = _marker_path(archive, root)
    if _read_marker(marker) == record:
        _LOG.info("%s already unpacked in %s", archive, root)
        return root
    os.makedirs(root, exist_ok=True)
    _LOG.info("unpacking %s into %s", archive, root)
    try:
        if kind == "tar":
            _extract_tar(archive, root, chosen)
        elif kind == "zip":
            _extract_zip(archive, root, chosen)
        else:
            _extract_gz(archive, root)
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        gzip.BadGzipFile,
        zlib.error,
        EOFError,
    ) as e:
        raise ArchiveError(
            f"cannot unpack {archive} ({type(e).__name__}: {e}): it is "
            "damaged or incomplete. Delete it and download it again."
        ) from e
    _write_marker(marker, record)
    return root


__all__ = ["ArchiveError", "UnsafeArchiveError", "extract"]
