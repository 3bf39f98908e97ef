"""A `runs/` output folder (the demo's) must not hide gin/runs/train.gin."""

from __future__ import annotations

import os
import sys

import gin
from t2t_multimodel import errors

_GIN = os.path.join(os.path.dirname(__file__), "..", "..", "gin")


def test_include_resolves_past_a_runs_output_folder(tmp_path, monkeypatch):
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    gin.clear_config()
    for sub in ("", "models", "runs", "experiments"):
        gin.add_config_file_search_path(os.path.join(_GIN, sub))
    try:
        with errors.gin_config_errors():
            gin.parse_config_files_and_bindings(
                ["experiments/translate_ende_tiny.gin"],
                ['DATA_DIR = "/d"', 'MODEL_DIR = "/m"'],
                finalize_config=False,
            )
        assert gin.query_parameter("MODEL_DIR/macro.value") == "/m"
    finally:
        gin.clear_config()
