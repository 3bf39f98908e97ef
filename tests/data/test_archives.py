"""archives.extract: tar/zip/gz unpacking, slip refusal, idempotence."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile

import pytest

from t2t_multimodel import errors
from t2t_multimodel.data import archives


def _tar(path, members, links=()):
    """A .tgz of `{name: bytes}` plus `(name, target)` symlinks."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return str(path)


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


LIBRI = {
    "LibriSpeech/dev-clean/1/2/1-2.trans.txt": b"1-2-0000 HELLO\n",
    "LibriSpeech/dev-clean/1/2/1-2-0000.flac": b"fLaC",
}


def test_tgz_extracts_once(tmp_path):
    archive = _tar(tmp_path / "dev-clean.tar.gz", LIBRI)
    out = tmp_path / "tmp"
    assert archives.extract(archive, str(out)) == str(out)
    for name, data in LIBRI.items():
        assert (out / name).read_bytes() == data
    # Idempotent: the marker says it is done, nothing is unpacked again.
    (out / "LibriSpeech/dev-clean/1/2/1-2-0000.flac").unlink()
    archives.extract(archive, str(out))
    assert not (out / "LibriSpeech/dev-clean/1/2/1-2-0000.flac").exists()


def test_other_prefixes_extract_again(tmp_path):
    archive = _zip(
        tmp_path / "annotations_trainval2014.zip",
        {
            "annotations/captions_train2014.json": b"{}",
            "annotations/instances_train2014.json": b"{}",
        },
    )
    archives.extract(archive, prefixes=("annotations/captions_",))
    assert (tmp_path / "annotations/captions_train2014.json").exists()
    assert not (tmp_path / "annotations/instances_train2014.json").exists()
    archives.extract(archive)  # All members: not the same request.
    assert (tmp_path / "annotations/instances_train2014.json").exists()


@pytest.mark.parametrize(
    "name", ["../evil.txt", "a/../../evil.txt", "/tmp/t2t_mm_evil.txt"]
)
def test_tar_slip_is_refused(tmp_path, name):
    archive = _tar(tmp_path / "bad.tgz", {"ok.txt": b"ok", name: b"evil"})
    out = tmp_path / "out"
    with pytest.raises(archives.UnsafeArchiveError, match="outside") as info:
        archives.extract(archive, str(out))
    assert errors.is_user_error(info.value)
    assert not (tmp_path / "evil.txt").exists()
    assert not os.path.exists("/tmp/t2t_mm_evil.txt")
    assert not (out / ".bad.tgz.extracted").exists()  # Not marked done.


def test_tar_link_out_is_refused(tmp_path):
    archive = _tar(
        tmp_path / "link.tar.gz", {}, links=[("d/passwd", "../../../etc")]
    )
    with pytest.raises(archives.UnsafeArchiveError, match="link"):
        archives.extract(archive, str(tmp_path / "out"))
    assert not os.path.lexists(tmp_path / "out" / "d" / "passwd")


def test_zip_slip_is_refused(tmp_path):
    archive = _zip(tmp_path / "bad.zip", {"ok": b"1", "../evil.txt": b"2"})
    with pytest.raises(archives.UnsafeArchiveError, match="evil"):
        archives.extract(archive, str(tmp_path / "out"))
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "ok").exists()  # Names checked first.


def test_single_gz(tmp_path):
    path = tmp_path / "giga-fren.release2.fixed.en.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"hello\n")
    archives.extract(str(path), str(tmp_path / "out"))
    assert (tmp_path / "out/giga-fren.release2.fixed.en").read_bytes() == (
        b"hello\n"
    )


def test_damaged_and_unknown_archives(tmp_path):
    archive = _tar(tmp_path / "x.tgz", LIBRI)
    data = (tmp_path / "x.tgz").read_bytes()
    (tmp_path / "x.tgz").write_bytes(data[: len(data) // 2])
    with pytest.raises(archives.ArchiveError, match="download it again"):
        archives.extract(archive, str(tmp_path / "out"))
    (tmp_path / "x.rar").write_bytes(b"")
    with pytest.raises(archives.ArchiveError, match="cannot unpack"):
        archives.extract(str(tmp_path / "x.rar"))
