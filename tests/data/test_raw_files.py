"""raw_files: what counts as present, and prepare's download + unpack.

The "publisher" is a folder read through file:// URLs (download.py accepts
them), so nothing leaves the machine; the HTTP path with a mirror is tested
end to end in tests/programs/test_datagen_download.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from t2t_multimodel.data import download, public_corpora, raw_files


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture()
def published(tmp_path):
    """A publisher folder with one tar.gz; its RawFile (unpack corpus/)."""
    data = _tar_gz(
        {"corpus/a/1.txt": b"one\n", "corpus/b.txt": b"b\n", "other.txt": b"x"}
    )
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "c.tar.gz").write_bytes(data)
    remote = public_corpora.RemoteFile(
        f"file://{origin}/c.tar.gz",
        "c.tar.gz",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return raw_files.RawFile(
        remote,
        extract=True,
        members=("corpus/",),
        provides=("corpus/a", ("corpus/b.txt", "b.txt")),
    )


class TestPresence:
    def test_provides_all_of_any_of(self, tmp_path, published):
        tmp = str(tmp_path / "raw")
        assert not published.present(tmp)
        os.makedirs(tmp_path / "raw" / "corpus" / "a")
        assert not published.content_present(tmp)  # b.txt still missing.
        (tmp_path / "raw" / "b.txt").write_text("b")  # The bare name works.
        assert published.content_present(tmp)
        assert published.present(tmp)

    def test_archive_alone_is_present(self, tmp_path, published):
        (tmp_path / "c.tar.gz").write_bytes(b"")
        assert published.present(str(tmp_path))
        assert not published.content_present(str(tmp_path))
        no_provides = raw_files.RawFile(published.remote)
        assert not no_provides.content_present(str(tmp_path / "x"))

    def test_glob_patterns(self, tmp_path, published):
        raw = raw_files.RawFile(published.remote, provides=("img/*.jpg",))
        (tmp_path / "img").mkdir()
        assert not raw.content_present(str(tmp_path))
        (tmp_path / "img" / "COCO_1.jpg").write_bytes(b"")
        assert raw.content_present(str(tmp_path))


class TestPrepare:
    def test_download_unpack_then_nothing(self, tmp_path, published):
        tmp = str(tmp_path / "raw")
        assert raw_files.missing([published, published], tmp) == [published]
        done = raw_files.prepare([published, published], tmp, progress=False)
        assert done == raw_files.Prepared(
            downloaded=("c.tar.gz",), extracted=("c.tar.gz",)
        )
        assert (tmp_path / "raw" / "corpus" / "a" / "1.txt").read_text() == (
            "one\n"
        )
        assert not (tmp_path / "raw" / "other.txt").exists()  # Not a member.
        assert raw_files.missing([published], tmp) == []
        # The publisher is gone: the archive in tmp_dir is enough.
        os.remove(tmp_path / "origin" / "c.tar.gz")
        again = raw_files.prepare([published], tmp, progress=False)
        assert again == raw_files.Prepared(
            present=("c.tar.gz",), extracted=("c.tar.gz",)
        )

    def test_unpacked_content_without_archive(self, tmp_path, published):
        os.remove(tmp_path / "origin" / "c.tar.gz")
        os.makedirs(tmp_path / "raw" / "corpus" / "a")
        (tmp_path / "raw" / "corpus" / "b.txt").write_text("b")
        done = raw_files.prepare([published], str(tmp_path / "raw"))
        assert done == raw_files.Prepared(present=("c.tar.gz",))
        assert sorted(os.listdir(tmp_path / "raw")) == ["corpus"]

    def test_bad_present_archive_is_kept_and_reported(
        self, tmp_path, published
    ):
        (tmp_path / "raw").mkdir()
        (tmp_path / "raw" / "c.tar.gz").write_bytes(b"not the archive")
        with pytest.raises(download.ChecksumMismatchError, match="size"):
            raw_files.prepare([published], str(tmp_path / "raw"))
        assert (tmp_path / "raw" / "c.tar.gz").read_bytes() == (
            b"not the archive"
        )
