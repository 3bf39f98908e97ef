"""Tests of the MS-COCO captioning problem on a tiny COCO-2014 layout."""

from __future__ import annotations

import io
import json
import logging
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from problems import registry
from problems.paper import caption_mscoco
from t2t_multimodel.data import features as features_lib


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 7), color).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


TRAIN_JSON = {
    "info": {"description": "COCO 2014 Dataset"},
    "images": [
        {"id": 57870, "file_name": "COCO_train2014_000000057870.jpg"},
        {"id": 384029, "file_name": "COCO_train2014_000000384029.jpg"},
        {"id": 999, "file_name": "COCO_train2014_000000000999.jpg"},
    ],
    "annotations": [
        {"image_id": 384029, "id": 1, "caption": "A man riding a bike.\n"},
        {"image_id": 57870, "id": 2, "caption": "A restaurant with  chairs "},
        {"image_id": 57870, "id": 3, "caption": "Tables in a dining room."},
        {"image_id": 999, "id": 4, "caption": "Its image file is missing."},
    ],
}
VAL_JSON = {
    "images": [{"id": 42, "file_name": "COCO_val2014_000000000042.jpg"}],
    "annotations": [{"image_id": 42, "id": 5, "caption": "A dog on grass."}],
}


def _write_coco(tmp_path) -> dict[str, bytes]:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_train2014.json").write_text(
        json.dumps(TRAIN_JSON)
    )
    (tmp_path / "annotations" / "captions_val2014.json").write_text(
        json.dumps(VAL_JSON)
    )
    images = {
        "COCO_train2014_000000057870.jpg": _jpeg((200, 10, 10)),
        "COCO_train2014_000000384029.jpg": _jpeg((10, 200, 10)),
        "COCO_val2014_000000000042.jpg": _jpeg((10, 10, 200)),
    }
    (tmp_path / "train2014").mkdir()
    for name in list(images)[:2]:
        (tmp_path / "train2014" / name).write_bytes(images[name])
    # val2014 only as the downloaded zip.
    with zipfile.ZipFile(tmp_path / "val2014.zip", "w") as archive:
        name = "COCO_val2014_000000000042.jpg"
        archive.writestr(f"val2014/{name}", images[name])
    return images


class TestCaptionMscoco:
    def test_one_example_per_caption(self, tmp_path, caplog):
        images = _write_coco(tmp_path)
        problem = caption_mscoco.CAPTION_MSCOCO8K
        with caplog.at_level(logging.WARNING):
            train = list(problem.generate("train", str(tmp_path)))
        restaurant = images["COCO_train2014_000000057870.jpg"]
        bike = images["COCO_train2014_000000384029.jpg"]
        assert train == [
            {"inputs": restaurant, "targets": "A restaurant with chairs"},
            {"inputs": restaurant, "targets": "Tables in a dining room."},
            {"inputs": bike, "targets": "A man riding a bike."},
        ]
        assert "1 images missing" in caplog.text
        dev = list(problem.generate("dev", str(tmp_path)))
        assert dev == [
            {
                "inputs": images["COCO_val2014_000000000042.jpg"],
                "targets": "A dog on grass.",
            }
        ]

    def test_test_split_val2014_or_karpathy(self, tmp_path):
        images = _write_coco(tmp_path)
        problem = caption_mscoco.CAPTION_MSCOCO8K
        # Without Karpathy's JSON, test is val2014 (T2T's `_test`).
        test = list(problem.generate("test", str(tmp_path)))
        assert test == list(problem.generate("dev", str(tmp_path)))
        # Karpathy's JSON: its "test" images in its order, COCO captions;
        # an image without file or captions is skipped.
        karpathy = {
            "dataset": "coco",
            "images": [
                {
                    "filepath": "train2014",
                    "filename": "COCO_train2014_000000384029.jpg",
                    "split": "test",
                    "sentences": [{"raw": "not used"}],
                },
                {
                    "filepath": "val2014",
                    "filename": "COCO_val2014_000000000042.jpg",
                    "split": "val",
                },
                {
                    "filepath": "train2014",
                    "filename": "COCO_train2014_000000057870.jpg",
                    "split": "test",
                },
                {
                    "filepath": "val2014",
                    "filename": "COCO_val2014_000000000999.jpg",
                    "split": "test",
                },
            ],
        }
        folder = tmp_path / "caption_datasets"
        folder.mkdir()
        (folder / "dataset_coco.json").write_text(json.dumps(karpathy))
        bike = images["COCO_train2014_000000384029.jpg"]
        restaurant = images["COCO_train2014_000000057870.jpg"]
        assert list(problem.generate("test", str(tmp_path))) == [
            {"inputs": bike, "targets": "A man riding a bike."},
            {"inputs": restaurant, "targets": "A restaurant with chairs"},
            {"inputs": restaurant, "targets": "Tables in a dining room."},
        ]

    def test_raw_files(self):
        files = caption_mscoco.CAPTION_MSCOCO8K.raw_files
        assert [(f.filename, f.extract) for f in files] == [
            ("annotations_trainval2014.zip", True),
            ("train2014.zip", False),  # Read as a zip.
            ("val2014.zip", False),
        ]
        assert files[0].members == ("annotations/captions_",)

    def test_definition_and_preprocessor(self):
        problem = registry.get_problem("caption_mscoco8k")
        assert problem is caption_mscoco.CAPTION_MSCOCO8K
        assert problem.input_space_id == features_lib.SpaceID.IMAGE
        assert problem.target_space_id == features_lib.SpaceID.EN_TOK
        assert problem.input_modality == "image"
        assert problem.target_modality == "symbol"
        assert problem.metrics == ("bleu",)
        (decode,) = problem.preprocessors
        image = decode.apply({"inputs": tf.constant(_jpeg((0, 0, 255)))})
        assert image["inputs"].shape == (299, 299, 3)
        np.testing.assert_allclose(
            tf.reduce_mean(image["inputs"], axis=[0, 1]), [0, 0, 1], atol=0.02
        )

    def test_missing_files_message(self, tmp_path):
        problem = caption_mscoco.CAPTION_MSCOCO8K
        with pytest.raises(problem_lib.MissingDataError) as info:
            next(problem.generate("train", str(tmp_path)))
        message = str(info.value)
        assert "annotations/captions_train2014.json" in message
        assert "train2014/COCO_train2014_*.jpg" in message
        assert "http://images.cocodataset.org/zips/train2014.zip" in message
        # Annotations without any image: the error names the image folder.
        (tmp_path / "captions_val2014.json").write_text(json.dumps(VAL_JSON))
        with pytest.raises(problem_lib.MissingDataError, match="val2014/"):
            list(problem.generate("dev", str(tmp_path)))
