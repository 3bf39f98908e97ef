"""Tests of loading an export and running its signatures on NumPy batches."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from t2t_multimodel import errors
from t2t_multimodel.serving import served_model
from tests.serving import tiny_export


def test_signatures_and_run(served) -> None:
    assert list(served.signatures) == [
        "caption_size",
        "classify_brightness",
        "echo_upper",
        "first_byte",
        "transcribe_length",
    ]
    spec = served.signatures["classify_brightness"]
    assert {k: (v.dtype.name, v.shape) for k, v in spec.inputs.items()} == {
        "image_bytes": ("string", (None,))
    }
    assert spec.outputs["scores"].shape == (None, 2)
    assert spec.outputs["class_ids"].numpy_dtype == np.int32
    images = np.array([tiny_export.png_bytes(0), tiny_export.png_bytes(255)])
    outputs = served.run("classify_brightness", {"image_bytes": images})
    np.testing.assert_array_equal(outputs["scores"], [[1, 0], [0, 1]])
    np.testing.assert_array_equal(outputs["class_ids"], [0, 1])
    assert outputs["classes"].tolist() == [b"dark", b"bright"]


def test_undecodable_bytes_raise_condensed_model_input_error(served) -> None:
    with pytest.raises(served_model.ModelInputError) as error:
        served.run("caption_size", {"image_bytes": np.array([b"x"], object)})
    assert str(error.value).startswith("Unknown image file format.")
    assert "\n" not in str(error.value)


def test_condense_tf_error() -> None:
    message = (
        "Graph execution error:\n\nDetected at node map/DecodeWav defined at "
        "(most recent call last):\n<stack traces unavailable>\n"
        "Data too short when trying to read string\n"
        "\t [[{{node map/while/DecodeWav}}]] [Op:__inference_sig_610]"
    )
    assert (
        served_model.condense_tf_error(message)
        == "Data too short when trying to read string"
    )
    assert served_model.condense_tf_error("plain message") == "plain message"


def test_resolve_version(tiny_export_dir: str, tmp_path) -> None:
    assert served_model.resolve_version(tiny_export_dir) == (
        tiny_export_dir,
        "1",
    )
    # TF Serving's base-path layout: the highest numbered version wins.
    for version in ("3", "12"):
        shutil.copytree(tiny_export_dir, tmp_path / version)
    os.makedirs(tmp_path / "40")  # no saved_model.pb: not a version
    path, version = served_model.resolve_version(str(tmp_path))
    assert (path, version) == (str(tmp_path / "12"), "12")
    with pytest.raises(FileNotFoundError, match="t2t-mm-exporter"):
        served_model.resolve_version(str(tmp_path / "40"))


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x07garbage" * 100, "not a SavedModel protobuf (Error parsing"),
        (b"", "no meta graph tagged 'serve'"),
        ("half", "not a SavedModel protobuf (Error parsing"),
    ],
)
def test_corrupt_saved_model_pb_is_a_user_error(
    tiny_export_dir: str, tmp_path, content, reason: str
) -> None:
    export = tmp_path / "export"
    shutil.copytree(tiny_export_dir, export)
    pb = export / "saved_model.pb"
    if content == "half":  # A copy cut short.
        content = pb.read_bytes()[: pb.stat().st_size // 2]
    pb.write_bytes(content)
    with pytest.raises(served_model.ExportLoadError) as error:
        served_model.ServedModel(str(export))
    message = str(error.value)
    assert message.startswith(f"cannot load the export {pb}: {reason}")
    assert message.endswith(
        ". The export is corrupt or incomplete (a failed copy or a disk "
        "error); export the model again with t2t-mm-exporter, or copy the "
        "export again."
    )
    assert "\n" not in message
    assert errors.is_user_error(error.value)


def test_missing_variables_is_a_user_error(tiny_export_dir, tmp_path) -> None:
    export = tmp_path / "export"
    shutil.copytree(tiny_export_dir, export)
    shutil.rmtree(export / "variables")
    with pytest.raises(served_model.ExportLoadError) as error:
        served_model.ServedModel(str(export))
    assert str(error.value).startswith(
        f"cannot load the export {export}: Unsuccessful TensorSliceReader "
        "constructor: Failed to find any matching files for "
        f"{export}/variables/variables."
    )
    assert "\n" not in str(error.value)
