"""public_corpora: the table is well formed; files download by mirror."""

from __future__ import annotations

import hashlib
import re
import urllib.parse

import pytest

from t2t_multimodel.data import public_corpora

ALL = {f for files in public_corpora.CORPORA.values() for f in files} | {
    public_corpora.WMT17_DEV_T2T,
    public_corpora.WMT14_TEST_FULL,
}


@pytest.mark.parametrize("remote", sorted(ALL, key=lambda f: f.url))
def test_entry_is_well_formed(remote):
    parts = urllib.parse.urlsplit(remote.url)
    assert parts.scheme in ("http", "https") and parts.netloc
    assert parts.path.endswith("/" + remote.filename)
    assert remote.size is None or remote.size > 0
    assert remote.md5 is None or re.fullmatch("[0-9a-f]{32}", remote.md5)
    assert remote.sha256 is None or re.fullmatch("[0-9a-f]{64}", remote.sha256)


def test_one_mirror_holds_every_file():
    # mirror_url keeps the origin path: no two files may share one.
    paths = [urllib.parse.urlsplit(f.url).path for f in ALL]
    assert len(paths) == len(set(paths))


def test_file_names_are_unique_within_the_table():
    files = {f for group in public_corpora.CORPORA.values() for f in group}
    names = [f.filename for f in files]
    assert len(names) == len(set(names))


def test_groups():
    corpora = public_corpora.CORPORA
    assert set(corpora) >= {"wmt_ende", "wmt_enfr", "librispeech", "mscoco2014"}
    assert public_corpora.WMT_DEV in corpora["wmt_ende"]
    assert public_corpora.WMT_DEV in corpora["wmt_enfr"]
    assert {f.filename for f in corpora["librispeech"]} == {
        "train-clean-100.tar.gz",
        "train-clean-360.tar.gz",
        "dev-clean.tar.gz",
        "test-clean.tar.gz",
    }
    for f in corpora["librispeech"]:
        assert f.md5 and f.sha256 and f.size


def test_download_corpus_from_a_mirror(tmp_path, monkeypatch):
    data = b"corpus bytes"
    (tmp_path / "mirror" / "wmt13").mkdir(parents=True)
    (tmp_path / "mirror" / "wmt13" / "x.tgz").write_bytes(data)
    remote = public_corpora.RemoteFile(
        "http://www.statmt.org/wmt13/x.tgz",
        "x.tgz",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    monkeypatch.setattr(public_corpora, "CORPORA", {"tiny": (remote,)})
    paths = public_corpora.download_corpus(
        "tiny",
        str(tmp_path / "tmp"),
        mirror=(tmp_path / "mirror").as_uri(),
        progress=False,
    )
    assert paths == {"x.tgz": str(tmp_path / "tmp" / "x.tgz")}
    assert (tmp_path / "tmp" / "x.tgz").read_bytes() == data


def test_unknown_and_manual_corpora():
    with pytest.raises(KeyError, match="LDC99T42"):
        public_corpora.download_corpus("ptb_wsj", "/nonexistent")
    with pytest.raises(KeyError, match="wmt_ende"):
        public_corpora.download_corpus("nope", "/nonexistent")
