"""Tests for t2t_multimodel.atomic_write: content, umask modes, failures."""

from __future__ import annotations

import json
import os

import pytest

from t2t_multimodel import atomic_write
from tests import testing


class TestWriteFile:
    def test_bytes_text_and_json_content(self, tmp_path):
        atomic_write.write_bytes(str(tmp_path / "a" / "b.bin"), b"\x00\xff")
        atomic_write.write_text(str(tmp_path / "t.txt"), "Grüße\n")
        atomic_write.write_json(str(tmp_path / "j.json"), {"b": 1, "a": [2]})
        assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\xff"
        assert (tmp_path / "t.txt").read_bytes() == "Grüße\n".encode()
        assert (tmp_path / "j.json").read_text() == (
            '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
        )
        assert sorted(os.listdir(tmp_path)) == ["a", "j.json", "t.txt"]

    @pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
    def test_mode_follows_umask(self, tmp_path, mask, mode):
        path = tmp_path / "f.json"
        with testing.umask(mask):
            atomic_write.write_json(str(path), [1])
            # Replacing keeps following the umask (mkstemp would give 0600).
            atomic_write.write_bytes(str(tmp_path / "g"), b"x")
        modes = testing.tree_modes(str(tmp_path))
        del modes["."]
        assert modes == {"f.json": mode, "g": mode}

    def test_failure_keeps_old_file_and_leaves_no_temp(self, tmp_path):
        path = tmp_path / "x.json"
        atomic_write.write_json(str(path), {"old": True})
        with pytest.raises(TypeError):
            atomic_write.write_json(str(path), {"bad": object()})
        with pytest.raises(RuntimeError, match="disk died"):
            with atomic_write.open_atomic(str(path), "w") as f:
                f.write('{"new": tru')
                raise RuntimeError("disk died")
        assert json.loads(path.read_text()) == {"old": True}
        assert os.listdir(tmp_path) == ["x.json"]

    def test_publish_a_file_written_elsewhere(self, tmp_path):
        path = str(tmp_path / "shard")
        temp = atomic_write.temp_path(path, ".incomplete")
        name = os.path.basename(temp)
        assert name.startswith(".shard.") and name.endswith(".incomplete")
        assert os.path.dirname(temp) == str(tmp_path)
        with testing.umask(0o022):
            with open(temp, "wb") as f:
                f.write(b"records")
        atomic_write.publish(temp, path)
        assert os.listdir(tmp_path) == ["shard"]
        assert testing.tree_modes(path)["."] == 0o644

    def test_failed_publish_removes_the_temp(self, tmp_path):
        temp = atomic_write.temp_path(str(tmp_path / "d" / "f"))
        os.makedirs(tmp_path / "d")
        (tmp_path / "d" / "f").mkdir()  # A directory: os.replace fails.
        (tmp_path / "d" / "f" / "in").write_text("keep")
        with open(temp, "w") as f:
            f.write("new")
        with pytest.raises(OSError):
            atomic_write.publish(temp, str(tmp_path / "d" / "f"))
        assert os.listdir(tmp_path / "d") == ["f"]
        assert (tmp_path / "d" / "f" / "in").read_text() == "keep"


class TestDirectory:
    def _write(self, path: str, text: str) -> str:
        temp = atomic_write.make_temp_dir(path)
        os.makedirs(os.path.join(temp, "variables"))
        with open(os.path.join(temp, "variables", "v"), "w") as f:
            f.write(text)
        return temp

    def test_publish_new_dir_with_umask_modes(self, tmp_path):
        path = str(tmp_path / "parent" / "export")
        with testing.umask(0o022):
            temp = self._write(path, "1")
            assert os.path.basename(temp).startswith(".export.tmp-")
            atomic_write.publish_dir(temp, path)
        assert testing.tree_modes(path) == {
            ".": 0o755,
            "variables": 0o755,
            "variables/v": 0o644,
        }
        assert os.listdir(tmp_path / "parent") == ["export"]

    def test_existing_dir_needs_overwrite(self, tmp_path):
        path = str(tmp_path / "export")
        atomic_write.publish_dir(self._write(path, "old"), path)
        with pytest.raises(FileExistsError, match="exists"):
            atomic_write.publish_dir(self._write(path, "new"), path)
        # The refused temporary directory is gone, the old export intact.
        assert os.listdir(tmp_path) == ["export"]
        assert (tmp_path / "export" / "variables" / "v").read_text() == "old"
        atomic_write.publish_dir(self._write(path, "new"), path, overwrite=True)
        assert os.listdir(tmp_path) == ["export"]
        assert (tmp_path / "export" / "variables" / "v").read_text() == "new"
