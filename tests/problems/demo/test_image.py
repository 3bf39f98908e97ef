"""Tests of the demo image problem (Fashion-MNIST IDX files)."""

from __future__ import annotations

import gzip
import io
import os
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from problems import registry
from problems.demo import image as demo_image


def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x0800 | array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion(tmp_path, num_train: int = 3, num_test: int = 2):
    rng = np.random.default_rng(0)
    sets = {}
    for prefix, n in (("train", num_train), ("t10k", num_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) * 3 % 10
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
        sets[prefix] = (images, labels)
    return sets


class TestIdx:
    def test_read_idx(self, tmp_path):
        path = tmp_path / "x-ubyte.gz"
        _write_idx(path, np.array([[1, 2, 3], [4, 5, 255]], np.uint8))
        got = demo_image.read_idx(str(path))
        np.testing.assert_array_equal(got, [[1, 2, 3], [4, 5, 255]])

    def test_bad_magic_and_truncation(self, tmp_path):
        path = tmp_path / "bad.gz"
        with gzip.open(path, "wb") as f:
            f.write(struct.pack(">II", 0x0D01, 3) + b"\0" * 12)
        with pytest.raises(ValueError, match="not a uint8 IDX"):
            demo_image.read_idx(str(path))
        with gzip.open(path, "wb") as f:
            f.write(struct.pack(">II", 0x0801, 3) + b"\0\0")
        with pytest.raises(ValueError, match="2 bytes"):
            demo_image.read_idx(str(path))


class TestProblem:
    def test_examples_cap_and_preprocessing(self, tmp_path):
        sets = _fake_fashion(tmp_path)
        problem = demo_image.fashion_mnist_problem(
            str(tmp_path), max_train_examples=2, name="t_fashion"
        )
        train = list(problem.generate("train", ""))
        dev = list(problem.generate("dev", ""))
        assert [e["targets"] for e in train] == [0, 3]  # Capped at 2.
        assert [e["targets"] for e in dev] == [0, 3]
        png = Image.open(io.BytesIO(train[1]["inputs"]))
        assert (png.format, png.mode, png.size) == ("PNG", "L", (28, 28))
        np.testing.assert_array_equal(np.asarray(png), sets["train"][0][1])
        dataset = tf.data.Dataset.from_tensor_slices(
            {"inputs": [train[1]["inputs"]], "targets": [3]}
        )
        for preprocess in problem.preprocessors:
            dataset = preprocess(dataset)
        image = next(iter(dataset))["inputs"].numpy()
        assert image.shape == (28, 28, 3) and image.dtype == np.float32
        expected = sets["train"][0][1].astype(np.float32) / 255.0
        for channel in range(3):  # Gray tiled to RGB.
            np.testing.assert_allclose(image[..., channel], expected, atol=1e-6)

    def test_missing_files_name_the_package(self, tmp_path):
        problem = demo_image.fashion_mnist_problem(str(tmp_path))
        with pytest.raises(
            problem_lib.MissingDataError, match="dataset-fashion-mnist"
        ):
            next(iter(problem.generate("dev", "")))


@pytest.mark.skipif(
    not os.path.exists(demo_image.DATA_DIR),
    reason="apt-get install dataset-fashion-mnist",
)
class TestRealFashionMnist:
    def test_counts_and_first_examples(self):
        images, labels = demo_image.read_split(demo_image.DATA_DIR, "train")
        assert images.shape == (60000, 28, 28)
        # The first Fashion-MNIST training image is an ankle boot (9); the
        # first test image too; classes are balanced (6,000 / 1,000 each).
        assert labels[0] == 9 and labels[:10].tolist() == [
            9,
            0,
            0,
            3,
            0,
            2,
            7,
            2,
            5,
            5,
        ]
        assert np.bincount(labels).tolist() == [6000] * 10
        problem = registry.get_problem("demo_image_fashion_mnist")
        dev = list(problem.generate("dev", ""))
        assert len(dev) == 10000 and dev[0]["targets"] == 9
        assert np.bincount([e["targets"] for e in dev]).tolist() == [1000] * 10
        first = np.asarray(Image.open(io.BytesIO(dev[0]["inputs"])))
        test_images, _ = demo_image.read_split(demo_image.DATA_DIR, "dev")
        np.testing.assert_array_equal(first, test_images[0])
