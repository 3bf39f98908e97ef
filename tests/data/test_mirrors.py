"""mirrors: the URL rewrite rule and the flag-or-environment choice."""

from __future__ import annotations

import pytest

from t2t_multimodel import errors
from t2t_multimodel.data import mirrors


class TestMirrors:
    @pytest.mark.parametrize(
        "url, mirror, expected",
        [
            (
                "https://www.statmt.org/wmt13/x.tgz",
                "http://127.0.0.1:8000/base",
                "http://127.0.0.1:8000/base/wmt13/x.tgz",
            ),
            (
                "http://www.openslr.org/resources/12/dev-clean.tar.gz",
                "https://m.example/",
                "https://m.example/resources/12/dev-clean.tar.gz",
            ),
            ("http://h/a/b?x=1", "file:///srv/m", "file:///srv/m/a/b?x=1"),
            ("http://h/a", None, "http://h/a"),
        ],
    )
    def test_mirror_url(self, url, mirror, expected):
        assert mirrors.mirror_url(url, mirror) == expected

    @pytest.mark.parametrize(
        "bad", ["127.0.0.1:8000", "http://", "http://h/p?q=1", "gopher://h"]
    )
    def test_bad_mirror(self, bad):
        with pytest.raises(mirrors.MirrorError, match="bad mirror"):
            mirrors.mirror_url("http://h/a", bad)

    def test_resolve_mirror(self):
        env = {mirrors.MIRROR_ENV: "http://env.example/m/"}
        assert mirrors.resolve_mirror(None, {}) is None
        assert mirrors.resolve_mirror("", {mirrors.MIRROR_ENV: " "}) is None
        assert mirrors.resolve_mirror(None, env) == "http://env.example/m"
        assert mirrors.resolve_mirror("http://flag/", env) == "http://flag"
        with pytest.raises(mirrors.MirrorError, match="T2T_MM_MIRROR"):
            mirrors.resolve_mirror(None, {mirrors.MIRROR_ENV: "nohost"})

    def test_bad_mirror_is_a_user_error(self):
        with pytest.raises(mirrors.MirrorError) as info:
            mirrors.resolve_mirror("ftp://", {})
        assert errors.is_user_error(info.value)
