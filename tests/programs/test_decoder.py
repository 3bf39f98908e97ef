"""programs/decoder.decode: what it refuses before building a model.

The checks run before the model is restored, so a `model_dir` that does not
exist shows they come first.
"""

from __future__ import annotations

import pytest

from programs import decoder
from t2t_multimodel import errors
from t2t_multimodel.data import pipeline

TEXT = "demo_translate_ende_ding"


def _decode(tmp_path, **kwargs):
    return decoder.decode(
        model_dir=str(tmp_path / "no_model"), problem_name=TEXT, **kwargs
    )


def test_split_needs_a_data_dir_and_no_request_file(tmp_path):
    with pytest.raises(errors.UserError, match="pass --data_dir"):
        _decode(tmp_path, split="test")
    with pytest.raises(errors.UserError, match="exclude each other"):
        _decode(tmp_path, split="test", decode_from_file="x", data_dir="d")


def test_missing_shards_before_the_model(tmp_path):
    with pytest.raises(pipeline.MissingShardsError) as raised:
        _decode(tmp_path, split="test", data_dir=str(tmp_path))
    assert f"no test shards of problem '{TEXT}'" in str(raised.value)
    assert "t2t-mm-datagen" in str(raised.value)


def test_request_file_checks_before_the_model(tmp_path):
    source = tmp_path / "in.txt"
    with pytest.raises(decoder.DecodeInputError, match="not a readable"):
        _decode(tmp_path, decode_from_file=str(source))
    source.write_text("a\n")
    with pytest.raises(decoder.DecodeInputError, match="is the input file"):
        _decode(
            tmp_path,
            decode_from_file=str(source),
            decode_to_file=str(source),
        )
    with pytest.raises(errors.NotWritableError, match="cannot write"):
        _decode(
            tmp_path,
            decode_from_file=str(source),
            decode_to_file=str(source / "under_a_file"),
        )
    assert source.read_text() == "a\n"
