"""Gin includes never depend on the working directory or sys.path.

The demo writes `runs/`; a user may have `models/` or `experiments/` folders.
None of them may hide or break the shipped gin files, which include each
other by package path (programs/gin_setup.py), and no gin internals are
patched for it.
"""

from __future__ import annotations

import sys

import gin

from programs import gin_setup


def test_shipped_includes_resolve_past_same_named_folders(
    tmp_path, monkeypatch
):
    for name in ("runs/demo", "models", "experiments", "t2t_multimodel"):
        (tmp_path / name).mkdir(parents=True)
    # A decoy with the include's short name: it must not be read.
    (tmp_path / "runs" / "train.gin").write_text("this is not gin (((\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    gin.clear_config()
    try:
        gin_setup.parse(
            ["experiments/translate_ende_tiny.gin"],
            program_bindings=['DATA_DIR = "/d"', 'MODEL_DIR = "/m"'],
        )
        assert gin.query_parameter("MODEL_DIR/macro.value") == "/m"
        assert gin.query_parameter("TRAIN_STEPS/macro.value") > 0
    finally:
        gin.clear_config()


def test_a_user_file_with_the_old_short_includes_still_parses(tmp_path):
    own = tmp_path / "mine.gin"
    own.write_text(
        "include 'models/multimodel_tiny.gin'\n"
        "include 'runs/train.gin'\n"
        "PROBLEMS = 'demo_text'\n"
    )
    gin.clear_config()
    try:
        gin_setup.parse(
            [str(own)],
            ["TRAIN_STEPS = 7"],
            program_bindings=['DATA_DIR = "/d"', 'MODEL_DIR = "/m"'],
        )
        assert gin.query_parameter("TRAIN_STEPS/macro.value") == 7
    finally:
        gin.clear_config()
