"""download: fresh, skip, resume, servers without Range, checks, mirrors.

A `ThreadingHTTPServer` on 127.0.0.1 (port 0, `tests/local_http.py`) serves
in-memory files with HTTP Range support; per-path switches make it cut a
response short once or ignore Range. Every request's path and headers are
recorded.
"""

from __future__ import annotations

import hashlib
import os
import socket

import numpy as np
import pytest

from t2t_multimodel import errors
from t2t_multimodel.data import download
from tests import local_http

CONTENT = np.random.default_rng(0).bytes(300_000)
SHA256 = hashlib.sha256(CONTENT).hexdigest()
MD5 = hashlib.md5(CONTENT).hexdigest()
CUT = local_http.CUT


@pytest.fixture
def server():
    with local_http.serve({"/data/x.tgz": CONTENT}) as httpd:
        yield httpd


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _ranges(server):
    return [headers.get("Range") for _, headers in server.requests]


class TestDownload:
    def test_fresh_download_is_verified_and_renamed(self, server, tmp_path):
        path = download.download(
            f"{server.base}/data/x.tgz",
            str(tmp_path / "tmp"),
            sha256=SHA256,
            md5=MD5.upper(),
            size=len(CONTENT),
            progress=False,
        )
        assert path == str(tmp_path / "tmp" / "x.tgz")
        assert _read(path) == CONTENT
        assert sorted(os.listdir(tmp_path / "tmp")) == [
            ".x.tgz.verified",  # The digests, so a rerun skips hashing.
            "x.tgz",
        ]
        assert _ranges(server) == [None]

    def test_present_file_is_skipped(self, server, tmp_path):
        url = f"{server.base}/data/x.tgz"
        download.download(url, str(tmp_path), progress=False)
        path = download.download(
            url, str(tmp_path), sha256=SHA256, progress=False
        )
        assert _read(path) == CONTENT
        assert len(server.requests) == 1

    def test_present_file_is_hashed_once(self, tmp_path, monkeypatch):
        path = tmp_path / "x.tgz"
        path.write_bytes(CONTENT)
        url = "http://127.0.0.1:9/data/x.tgz"  # Never contacted.
        download.download(url, str(tmp_path), sha256=SHA256)
        monkeypatch.setattr(download, "_digests", None)  # Must not hash.
        download.download(url, str(tmp_path), sha256=SHA256)
        monkeypatch.undo()
        mtime = path.stat().st_mtime_ns
        path.write_bytes(b"\0" * len(CONTENT))  # Changed: hashed again.
        os.utime(path, ns=(mtime + 10**9, mtime + 10**9))  # (Clock ticks.)
        with pytest.raises(download.ChecksumMismatchError, match="sha256"):
            download.download(url, str(tmp_path), sha256=SHA256)

    def test_present_file_that_differs_is_an_error_and_kept(self, tmp_path):
        (tmp_path / "x.tgz").write_bytes(b"not it")
        with pytest.raises(download.ChecksumMismatchError, match="sha256"):
            download.download(
                "http://127.0.0.1:9/data/x.tgz", str(tmp_path), sha256=SHA256
            )
        assert (tmp_path / "x.tgz").read_bytes() == b"not it"

    def test_interrupted_download_resumes_with_range(self, server, tmp_path):
        server.cut_once.add("/data/x.tgz")
        url = f"{server.base}/data/x.tgz"
        with pytest.raises(download.DownloadError, match="run again"):
            download.download(url, str(tmp_path), attempts=1, progress=False)
        partial = tmp_path / ("x.tgz" + download.PARTIAL_SUFFIX)
        assert partial.read_bytes() == CONTENT[:CUT]
        assert not (tmp_path / "x.tgz").exists()

        # A later call: the digest covers the kept bytes and the rest.
        path = download.download(
            url, str(tmp_path), sha256=SHA256, progress=False
        )
        assert _read(path) == CONTENT
        assert _ranges(server) == [None, f"bytes={CUT}-"]
        assert not partial.exists()

    def test_resumes_within_one_call(self, server, tmp_path):
        server.cut_once.add("/data/x.tgz")
        path = download.download(
            f"{server.base}/data/x.tgz",
            str(tmp_path),
            size=len(CONTENT),
            md5=MD5,
            progress=False,
        )
        assert _read(path) == CONTENT
        assert _ranges(server) == [None, f"bytes={CUT}-"]

    def test_server_ignoring_range_restarts_cleanly(self, server, tmp_path):
        server.ignore_range.add("/data/x.tgz")
        partial = tmp_path / ("x.tgz" + download.PARTIAL_SUFFIX)
        partial.write_bytes(b"\xff" * 5000)  # Not a prefix of the file.
        path = download.download(
            f"{server.base}/data/x.tgz", str(tmp_path), progress=False
        )
        assert _read(path) == CONTENT
        assert _ranges(server) == ["bytes=5000-"]

    def test_complete_partial_of_unknown_size(self, server, tmp_path):
        partial = tmp_path / ("x.tgz" + download.PARTIAL_SUFFIX)
        partial.write_bytes(CONTENT)
        path = download.download(
            f"{server.base}/data/x.tgz", str(tmp_path), progress=False
        )
        assert _read(path) == CONTENT  # 416 "bytes */N": it was complete.
        assert _ranges(server) == [f"bytes={len(CONTENT)}-"]

    def test_partial_longer_than_the_file_restarts(self, server, tmp_path):
        partial = tmp_path / ("x.tgz" + download.PARTIAL_SUFFIX)
        partial.write_bytes(CONTENT + b"junk")
        path = download.download(
            f"{server.base}/data/x.tgz", str(tmp_path), progress=False
        )
        assert _read(path) == CONTENT
        assert _ranges(server) == [f"bytes={len(CONTENT) + 4}-", None]

    def test_checksum_mismatch_leaves_no_file(self, server, tmp_path):
        url = f"{server.base}/data/x.tgz"
        bad = "0" * 64
        with pytest.raises(download.ChecksumMismatchError) as info:
            download.download(url, str(tmp_path), sha256=bad, progress=False)
        message = str(info.value)
        assert url in message and bad in message and SHA256 in message
        assert errors.is_user_error(info.value)
        assert os.listdir(tmp_path) == []

    def test_announced_size_mismatch_fails_early(self, server, tmp_path):
        with pytest.raises(download.ChecksumMismatchError, match="300,000"):
            download.download(
                f"{server.base}/data/x.tgz",
                str(tmp_path),
                size=123,
                progress=False,
            )
        assert os.listdir(tmp_path) == []

    def test_mirror_replaces_scheme_and_host(self, server, tmp_path):
        server.files["/base/wmt13/x.tgz"] = CONTENT
        path = download.download(
            "https://www.statmt.org/wmt13/x.tgz",
            str(tmp_path),
            mirror=server.base + "/base/",
            sha256=SHA256,
            progress=False,
        )
        assert _read(path) == CONTENT
        assert [p for p, _ in server.requests] == ["/base/wmt13/x.tgz"]

    def test_http_404_names_the_url(self, server, tmp_path):
        url = f"{server.base}/data/missing.tgz"
        with pytest.raises(download.DownloadError, match="404") as info:
            download.download(url, str(tmp_path), progress=False)
        assert url in str(info.value)
        assert errors.is_user_error(info.value)
        assert os.listdir(tmp_path) == []

    def test_unreachable_host(self, tmp_path):
        with socket.socket() as s:  # A port nobody listens on.
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(download.DownloadError, match="cannot reach"):
            download.download(
                f"http://127.0.0.1:{port}/x.tgz", str(tmp_path), timeout=5
            )

    def test_file_mirror(self, tmp_path):
        mirror = tmp_path / "mirror" / "wmt13"
        mirror.mkdir(parents=True)
        (mirror / "x.tgz").write_bytes(CONTENT)
        path = download.download(
            "http://www.statmt.org/wmt13/x.tgz",
            str(tmp_path / "out"),
            mirror=(tmp_path / "mirror").as_uri(),
            sha256=SHA256,
            progress=False,
        )
        assert _read(path) == CONTENT

    def test_file_mirror_without_the_file(self, tmp_path):
        with pytest.raises(download.DownloadError, match="on the mirror"):
            download.download(
                "http://h/wmt13/x.tgz",
                str(tmp_path),
                mirror=tmp_path.as_uri(),
                progress=False,
            )

    def test_filename_must_be_plain(self, tmp_path):
        with pytest.raises(ValueError, match="plain file name"):
            download.download("http://h/x", str(tmp_path), filename="../x")


def test_verify_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(CONTENT)
    download.verify_file(str(path), size=len(CONTENT), md5=MD5, sha256=SHA256)
    with pytest.raises(download.ChecksumMismatchError, match="md5"):
        download.verify_file(str(path), md5="0" * 32)
