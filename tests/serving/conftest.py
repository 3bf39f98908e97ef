"""Fixtures: the tiny export, its loaded model and a test client."""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.serving import tiny_export


@pytest.fixture(scope="session")
def tiny_export_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    path = tmp_path_factory.mktemp("serving") / "export"
    return tiny_export.write_tiny_export(str(path))


@pytest.fixture(scope="session")
def served(tiny_export_dir: str):
    from t2t_multimodel.serving import served_model

    return served_model.ServedModel(tiny_export_dir)


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parents[2]
