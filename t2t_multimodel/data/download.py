"""Downloads of the public raw corpora for datagen (SPEC.md section 1).

`download(url, directory)` fetches one file into `tmp_dir` with the standard
library's urllib (no extra dependency), the way T2T's `maybe_download` did,
plus what a 30 GB corpus needs:
- **Skip.** A file already under its final name is not fetched again; its
  size and checksums are verified where known (a mismatch is an error that
  leaves the file alone: it may be the user's). A stamp `.<name>.verified`
  (digests, size, mtime) spares rehashing an unchanged file on later runs.
- **Resume.** Bytes arrive in `<name>.partial`; an interrupted transfer
  (dropped connection, timeout, Ctrl-C) keeps them, and the next attempt,
  in this call or a later one, asks for the rest with an HTTP `Range:
  bytes=N-` request. A server that ignores Range (200 instead of 206) or
  answers from another offset gets a clean restart from byte 0.
- **Verify, then rename.** The partial file becomes `<name>` by one atomic
  `os.replace` only once it is complete (the announced length) and matches
  the known size, MD5 and SHA-256. A mismatch deletes it and raises
  `ChecksumMismatchError` naming the URL, the expected and the actual value.
- **Mirror.** `mirror=` fetches from a mirror instead (`mirrors.py`).
Failures (HTTP errors, no network, interrupted for good) raise
`DownloadError`, a `UserError`: the programs print it as one paragraph.
Two processes must not download the same file into one directory at once
(they would share the partial file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

import tqdm

from t2t_multimodel import errors
from t2t_multimodel.data import mirrors

_LOG = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
_CHUNK = 1 << 20  # Bytes per read (and per progress-bar update).
_USER_AGENT = "t2t-multimodel-datagen (Python urllib)"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIABLE = re.compile(r"bytes\s+\*/(\d+)")


class DownloadError(errors.UserError, OSError):
    """A download failed: HTTP error, no network, a bad mirror, cut off."""


class ChecksumMismatchError(DownloadError):
    """A file's size, MD5 or SHA-256 differs from the published value."""


@dataclasses.dataclass(frozen=True)
class _Expected:
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(a for a in ("md5", "sha256") if getattr(self, a))


class _Interrupted(Exception):
    """The transfer stopped early; the partial file holds what came."""


class _RangeRefused(_Interrupted):
    """416 for a range the file does not have: the partial file is bad."""


# Verification.


def _digests(path: str, algorithms: tuple[str, ...]) -> dict[str, str]:
    hashes = {a: hashlib.new(a) for a in algorithms}
    if hashes:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                for h in hashes.values():
                    h.update(chunk)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _mismatch(
    path: str, expected: _Expected, digests: Mapping[str, str]
) -> str | None:
    """`what: expected X, got Y` for the first check that fails, or None."""
    actual_size = os.path.getsize(path)
    if expected.size is not None and actual_size != expected.size:
        return f"size: expected {expected.size:,} bytes, got {actual_size:,}"
    for algorithm in expected.algorithms:
        want = getattr(expected, algorithm)
        if digests[algorithm] != want:
            return f"{algorithm}: expected {want}, got {digests[algorithm]}"
    return None


def verify_file(
    path: str,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
) -> None:
    """Checks a file against its published size and checksums.

    Also for files placed by hand (ImageNet, the treebank).

    Raises:
      ChecksumMismatchError: naming the file, the expected and actual value.
    """
    expected = _expected(size, md5, sha256)
    problem = _mismatch(path, expected, _digests(path, expected.algorithms))
    if problem:
        raise ChecksumMismatchError(_present_mismatch(path, problem))


def _present_mismatch(path: str, problem: str) -> str:
    return (
        f"{path} does not match its published {problem}. Delete it to "
        "download it again, or replace it with the published file."
    )


def _stamp_path(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.verified")


def _write_stamp(path: str, digests: Mapping[str, str]) -> None:
    """Records the digests of `path` as it is now (size, mtime)."""
    stat = os.stat(path)
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **digests}
    with contextlib.suppress(OSError):  # Only a cache.
        with open(_stamp_path(path), "w") as f:
            json.dump(record, f)


def _verify_present(path: str, expected: _Expected) -> None:
    """`verify_file`, without rehashing a file this module verified before.

    A stamp `.<name>.verified` beside the file holds its digests with its
    size and mtime; while those match, a 30 GB archive is not hashed again
    on every datagen run.
    """
    stat = os.stat(path)
    with contextlib.suppress(OSError, ValueError):
        with open(_stamp_path(path)) as f:
            stamp = json.load(f)
        if (
            stamp.get("size") == stat.st_size
            and stamp.get("mtime_ns") == stat.st_mtime_ns
            and (expected.size is None or expected.size == stat.st_size)
            and all(
                stamp.get(a) == getattr(expected, a)
                for a in expected.algorithms
            )
        ):
            return
    digests = _digests(path, expected.algorithms)
    problem = _mismatch(path, expected, digests)
    if problem:
        raise ChecksumMismatchError(_present_mismatch(path, problem))
    _write_stamp(path, digests)


def _expected(size, md5, sha256) -> _Expected:
    return _Expected(
        None if size is None else int(size),
        md5.lower() if md5 else None,
        sha256.lower() if sha256 else None,
    )


# The transfer.


class _Partial:
    """The partial file and the digests of the bytes in it."""

    def __init__(self, path: str, algorithms: tuple[str, ...]):
        self.path = path
        self._algorithms = algorithms
        self.restart_digests()
        if os.path.exists(path):  # Left by an earlier, interrupted run.
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    self._update(chunk)

    def _update(self, chunk: bytes) -> None:
        for h in self._hashes.values():
            h.update(chunk)
        self.size += len(chunk)

    def restart(self) -> None:
        """Empties the file: the next bytes are the file's first."""
        with open(self.path, "wb"):
            pass
        self.restart_digests()

    def restart_digests(self) -> None:
        self._hashes = {a: hashlib.new(a) for a in self._algorithms}
        self.size = 0

    def append(self, f, chunk: bytes) -> None:
        f.write(chunk)
        self._update(chunk)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        self.restart_digests()

    def digests(self) -> dict[str, str]:
        return {a: h.hexdigest() for a, h in self._hashes.items()}


def _open(source: str, offset: int, timeout: float):
    """urlopen with `Range: bytes=offset-`; None if that range is empty.

    None means the server says the file has exactly `offset` bytes (416
    with `Content-Range: bytes */offset`): the partial file is complete.
    """
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(source, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            found = _UNSATISFIABLE.match(e.headers.get("Content-Range") or "")
            e.close()
            if found and int(found.group(1)) == offset:
                return None
            raise _RangeRefused(
                f"the server refused the range from byte {offset}"
            ) from None
        e.close()
        raise DownloadError(
            f"HTTP error {e.code} ({e.reason}) for {source}. Check the URL "
            "or mirror, or place the file by hand."
        ) from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (TimeoutError, ConnectionResetError)):
            raise _Interrupted(f"{e.reason}") from None
        host = urllib.parse.urlsplit(source).netloc
        if not host:  # A file:// mirror.
            raise DownloadError(
                f"cannot read {source} ({e.reason}): is the file on the mirror?"
            ) from None
        raise DownloadError(
            f"cannot reach {host} to download {source} ({e.reason}). Check "
            f"the network or proxy, set a mirror (--mirror or "
            f"${mirrors.MIRROR_ENV}), or place the file by hand."
        ) from None
    except (OSError, http.client.HTTPException) as e:
        raise _Interrupted(f"{type(e).__name__}: {e}") from None


def _announced_total(response, offset: int) -> tuple[int | None, bool]:
    """(the file's total size if announced, whether the body resumes)."""
    status = getattr(response, "status", None)
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if offset and status == 206:
        found = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if found and int(found.group(1)) == offset:
            total = found.group(3)
            if total.isdigit():
                return int(total), True
            return (offset + length if length is not None else None), True
        return None, False  # Resumed elsewhere: restart (see caller).
    return length, False


def _transfer(
    source: str,
    partial: _Partial,
    expected: _Expected,
    label: str,
    progress: bool,
    timeout: float,
) -> None:
    """Appends the rest of the file to `partial`; returns when complete.

    Raises:
      _Interrupted: the transfer stopped early (`partial` keeps the bytes).
      DownloadError: HTTP error or no network.
      ChecksumMismatchError: the server announces another size.
    """
    if expected.size is not None:
        if partial.size == expected.size:
            return
        if partial.size > expected.size:
            partial.restart()
    try:
        response = _open(source, partial.size, timeout)
    except _RangeRefused:
        partial.restart()  # Longer than the file: the next try starts anew.
        raise
    if response is None:
        return
    with response:
        total, resumed = _announced_total(response, partial.size)
        if partial.size and not resumed:
            _LOG.info(
                "%s: the server sent the whole file (no resume from byte "
                "%d); restarting",
                label,
                partial.size,
            )
            partial.restart()
            if getattr(response, "status", None) == 206:
                raise _Interrupted("the server resumed from another byte")
        if (
            expected.size is not None
            and total is not None
            and total != expected.size
        ):
            partial.remove()
            raise ChecksumMismatchError(
                f"{source} has {total:,} bytes, expected {expected.size:,} "
                "(the published size): the file changed or the mirror holds "
                "another one. Nothing was kept."
            )
        with (
            open(partial.path, "ab") as f,
            tqdm.tqdm(
                total=total,
                initial=partial.size,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not progress,
            ) as bar,
        ):
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _Interrupted(f"{type(e).__name__}: {e}") from None
                if not chunk:
                    break
                partial.append(f, chunk)
                bar.update(len(chunk))
    if total is not None and partial.size < total:
        raise _Interrupted(
            f"the connection closed after {partial.size:,} of {total:,} bytes"
        )


def _target_name(url: str, filename: str | None) -> str:
    name = filename or os.path.basename(urllib.parse.urlsplit(url).path)
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(
            f"cannot name the download of {url!r} ({name!r}): pass a plain "
            "file name as `filename`"
        )
    return name


def download(
    url: str,
    directory: str,
    *,
    filename: str | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    mirror: str | None = None,
    progress: bool = True,
    attempts: int = 3,
    timeout: float = 60.0,
) -> str:
    """Downloads `url` into `directory` unless it is there; returns the path.

    See the module docstring for skipping, resuming and verification.

    Args:
      url: the file's public (origin) URL; http, https, ftp or file.
      directory: where the file goes (datagen's `tmp_dir`; created).
      filename: its name there (default: the last part of the URL's path).
      sha256, md5: published hex digests to verify (either case).
      size: the published size in bytes.
      mirror: fetch from this mirror instead (`mirrors.mirror_url`).
      progress: show a tqdm progress bar on stderr.
      attempts: transfers tried in this call; each one after an
        interruption resumes where the previous stopped.
      timeout: seconds to wait for a connection or a read.

    Returns:
      `directory/filename`.

    Raises:
      mirrors.MirrorError: `mirror` is not a mirror URL.
      DownloadError: HTTP error, unreachable host, or still
        interrupted after `attempts` tries (the partial file is kept; run
        again to resume).
      ChecksumMismatchError: the size or a checksum differs (a downloaded
        file is deleted; a file that was already present is kept).
    """
    name = _target_name(url, filename)
    expected = _expected(size, md5, sha256)
    source = mirrors.mirror_url(url, mirror)
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, name)
    if os.path.isfile(final):
        _verify_present(final, expected)
        _LOG.info("%s is present: not downloaded", final)
        return final
    partial = _Partial(final + PARTIAL_SUFFIX, expected.algorithms)
    if partial.size:
        _LOG.info("resuming %s from byte %d", source, partial.size)
    for attempt in range(1, max(1, attempts) + 1):
        try:
            _transfer(source, partial, expected, name, progress, timeout)
            break
        except _Interrupted as e:
            if attempt >= attempts:
                raise DownloadError(
                    f"the download of {source} was interrupted after "
                    f"{partial.size:,} bytes ({e}; {attempt} attempts). The "
                    f"partial file {partial.path} is kept: run again to "
                    "resume."
                ) from None
            _LOG.warning("%s: %s; resuming (attempt %d)", name, e, attempt + 1)
    problem = _mismatch(partial.path, expected, partial.digests())
    if problem:
        partial.remove()
        raise ChecksumMismatchError(
            f"the file downloaded from {source} does not match its published "
            f"{problem}; it was deleted. The origin file changed, the mirror "
            "holds another one, or the transfer was corrupted: run again, or "
            "check the URL and mirror."
        )
    os.replace(partial.path, final)
    _write_stamp(final, partial.digests())
    return final


__all__ = [
    "PARTIAL_SUFFIX",
    "ChecksumMismatchError",
    "DownloadError",
    "download",
    "verify_file",
]
