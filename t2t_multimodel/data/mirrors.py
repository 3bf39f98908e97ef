"""Mirrors of the public corpora: one rule to rewrite every origin URL.

A mirror (a local HTTP server, a lab's file server, `file:///srv/corpora`)
holds each file under its origin path, so datagen can fetch from it without
a table of its own: `mirror_url` swaps the origin's scheme and host for the
mirror's. Programs take the mirror from their `--mirror` flag or the
`T2T_MM_MIRROR` environment variable through `resolve_mirror`; the library
never reads the environment (STYLE.md section 9).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from t2t_multimodel import errors

MIRROR_ENV = "T2T_MM_MIRROR"
_MIRROR_SCHEMES = ("http", "https", "ftp", "file")


class MirrorError(errors.UserError, ValueError):
    """A mirror value that is not `scheme://host[:port][/path]`."""


def _parse_mirror(mirror: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(mirror.strip())
    remote = parts.scheme in ("http", "https", "ftp")
    if (
        parts.scheme not in _MIRROR_SCHEMES
        or (remote and not parts.netloc)
        or parts.query
        or parts.fragment
    ):
        raise MirrorError(
            f"bad mirror {mirror!r}: expected scheme://host[:port][/path] "
            f"with a scheme among {', '.join(_MIRROR_SCHEMES)} (e.g. "
            "http://127.0.0.1:8000/corpora or file:///srv/corpora), without "
            f"query or fragment (set by --mirror or ${MIRROR_ENV})."
        )
    return parts


def mirror_url(url: str, mirror: str | None) -> str:
    """The URL of `url`'s file on `mirror` (`url` itself without a mirror).

    Rule: the mirror's scheme and host (with port and user) replace the
    origin's; the mirror's path, without a trailing `/`, goes in front of
    the origin's path; the origin's query is kept. So with mirror
    `http://127.0.0.1:8000/base`, `https://www.statmt.org/wmt13/x.tgz`
    becomes `http://127.0.0.1:8000/base/wmt13/x.tgz`, and with
    `file:///srv/m` it becomes `file:///srv/m/wmt13/x.tgz`. One mirror
    serves every origin host, so it holds each file under its origin path
    (the paths of the public corpora do not collide,
    `data/public_corpora.py`).

    Raises:
      MirrorError: `mirror` is not `scheme://host[:port][/path]`.
    """
    if not mirror:
        return url
    base = _parse_mirror(mirror)
    origin = urllib.parse.urlsplit(url)
    path = base.path.rstrip("/") + "/" + origin.path.lstrip("/")
    return urllib.parse.urlunsplit(
        (base.scheme, base.netloc, path, origin.query, "")
    )


def resolve_mirror(
    flag_value: str | None, environ: Mapping[str, str]
) -> str | None:
    """The mirror a program should use: its flag, else `$T2T_MM_MIRROR`.

    Args:
      flag_value: the program's `--mirror` value (None or empty: unset).
      environ: the environment (`os.environ`), read by the program only.

    Returns:
      The mirror without a trailing `/`, or None when neither is set.

    Raises:
      MirrorError: the value is not a mirror URL (see `mirror_url`).
    """
    value = (flag_value or "").strip() or environ.get(MIRROR_ENV, "").strip()
    if not value:
        return None
    _parse_mirror(value)
    return value.rstrip("/")


__all__ = ["MIRROR_ENV", "MirrorError", "mirror_url", "resolve_mirror"]
