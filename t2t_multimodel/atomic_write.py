"""Atomic writes of files and directories: the project's one writer.

A reader never sees a half-written file: the data goes to a temporary name
in the target's directory (`.NAME.<random>.tmp`, so the rename stays on one
file system), is flushed and fsynced, and is renamed over the target with
`os.replace`; the directory is then fsynced so the rename survives a crash.
On any error (or Ctrl-C) the temporary file is removed and an existing
target is left as it was.

Files and directories get the modes of the process umask (0644 and 0755
under umask 022), like `open` and `os.makedirs`, not the 0600/0700 of
`tempfile.mkstemp`/`mkdtemp`: an export or a vocabulary must be readable by
a `tensorflow_model_server` container or another user when the umask allows.

`write_bytes`, `write_text` and `write_json` write a whole file;
`open_atomic` yields a file object to write into; `temp_path` and `publish`
serve writers that open the file themselves (the TFRecord shard writer);
`make_temp_dir` and `publish_dir` serve a directory written whole (the
SavedModel export).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from typing import IO, Any

_FILE_MODE = 0o666  # The umask is applied by the OS, as for `open`.
_DIR_MODE = 0o777
_ATTEMPTS = 100


def temp_path(path: str, suffix: str = ".tmp") -> str:
    """A fresh temporary name next to `path`: `.NAME.<random><suffix>`.

    Nothing is created; the caller writes the file (with the umask's mode,
    as `open` or `tf.io.TFRecordWriter` do) and then calls `publish`.
    """
    head, tail = os.path.split(os.path.abspath(path))
    return os.path.join(head, f".{tail}.{secrets.token_hex(4)}{suffix}")


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_parent(path: str) -> None:
    # A directory fsync is not supported everywhere (some network file
    # systems); the rename itself has happened, so this is best effort.
    with contextlib.suppress(OSError):
        _fsync_path(os.path.dirname(os.path.abspath(path)), directory=True)


def publish(temp: str, path: str) -> None:
    """Fsyncs the finished file `temp` and renames it to `path`.

    `temp` must be in the directory of `path` (see `temp_path`). The
    temporary file is removed if the rename fails.
    """
    try:
        _fsync_path(temp)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise
    _fsync_parent(path)


@contextlib.contextmanager
def open_atomic(
    path: str, mode: str = "wb", encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Yields a file that replaces `path` when the block ends without error.

    Creates the parent directories. On an exception the temporary file is
    removed, `path` keeps its old content, and the exception propagates.

    Args:
      path: the file to write.
      mode: "wb" or "w".
      encoding: for text mode (default UTF-8).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        temp = temp_path(path)
        try:
            fd = os.open(temp, flags, _FILE_MODE)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        if mode == "wb":
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding or "utf-8")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise
    _fsync_parent(path)


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically (see the module docstring)."""
    with open_atomic(path, "wb") as f:
        f.write(data)


def write_text(path: str, text: str, encoding: str = "utf-8") -> None:
    """Writes `text` to `path` atomically (see the module docstring)."""
    with open_atomic(path, "w", encoding=encoding) as f:
        f.write(text)


def write_json(
    path: str, value: Any, *, indent: int | None = 2, sort_keys: bool = True
) -> None:
    """Writes `value` as JSON (and a final newline) to `path` atomically.

    The JSON is encoded before the file is opened, so a value that cannot
    be serialized leaves no file and no temporary file.
    """
    text = json.dumps(value, indent=indent, sort_keys=sort_keys) + "\n"
    write_text(path, text)


def make_temp_dir(path: str) -> str:
    """Creates an empty directory next to `path` to write it in; its name.

    The name is `.NAME.tmp-<random>` and the mode follows the umask (unlike
    `tempfile.mkdtemp`'s 0700), so the directory keeps it when `publish_dir`
    renames it to `path`. Creates the parent of `path` if needed.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    head, tail = os.path.split(os.path.abspath(path))
    for _ in range(_ATTEMPTS):
        temp = os.path.join(head, f".{tail}.tmp-{secrets.token_hex(4)}")
        try:
            os.mkdir(temp, _DIR_MODE)
            return temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def _fsync_tree(directory: str) -> None:
    for root, _, files in os.walk(directory):
        for name in files:
            _fsync_path(os.path.join(root, name))
        with contextlib.suppress(OSError):
            _fsync_path(root, directory=True)


def publish_dir(source: str, path: str, *, overwrite: bool = False) -> None:
    """Renames the finished directory `source` (see `make_temp_dir`) to `path`.

    Every file under `source` is fsynced first. A new `path` appears at once
    (one rename). An existing `path` is, with `overwrite`, moved aside,
    replaced and then deleted: readers see the old or the new directory,
    never a mix, but for a moment neither. `source` is removed on failure.

    Raises:
      FileExistsError: `path` exists and `overwrite` is False.
    """
    try:
        _fsync_tree(source)
        if not os.path.exists(path):
            os.rename(source, path)
        elif not overwrite:
            raise FileExistsError(f"{path} exists")
        else:
            old = make_temp_dir(path)
            os.rename(path, os.path.join(old, "old"))
            try:
                os.rename(source, path)
            except BaseException:
                os.rename(os.path.join(old, "old"), path)
                os.rmdir(old)
                raise
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(source, ignore_errors=True)
        raise
    _fsync_parent(path)
