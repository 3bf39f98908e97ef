"""Tests of the ImageNet problem on tiny ILSVRC-2012-layout files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from problems import registry
from problems.paper import image_imagenet
from t2t_multimodel.data import features as features_lib

# Sorted wnids -> labels 0, 1, 2.
WNIDS = ["n01440764", "n01443537", "n02119789"]
COLORS = {  # One solid color per class, to recognize images after decoding.
    "n01440764": (255, 0, 0),
    "n01443537": (0, 255, 0),
    "n02119789": (0, 0, 255),
}


def _jpeg(color: tuple[int, int, int], size=(8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _write_train(root) -> dict[bytes, int]:
    """train/<wnid>/*.JPEG; returns encoded bytes -> expected label."""
    expected = {}
    for label, wnid in enumerate(WNIDS):
        (root / "train" / wnid).mkdir(parents=True)
        for k in range(2):
            data = _jpeg(COLORS[wnid], size=(8 + k, 6))
            (root / "train" / wnid / f"{wnid}_{k + 1}.JPEG").write_bytes(data)
            expected[data] = label
    return expected


# Validation image i (1-based) is of class VAL_WNIDS[i - 1].
VAL_WNIDS = ["n02119789", "n01443537", "n01440764", "n02119789"]
VAL_LABELS = [2, 1, 0, 2]


def _write_val(root) -> list[bytes]:
    (root / "val").mkdir(parents=True)
    images = []
    for i, wnid in enumerate(VAL_WNIDS):
        data = _jpeg(COLORS[wnid], size=(5 + i, 4))
        (root / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG").write_bytes(data)
        images.append(data)
    return images


def _write_devkit(root) -> None:
    """Ground truth in devkit ids, and a meta.mat whose order is not sorted."""
    scipy_io = pytest.importorskip("scipy.io")
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    # Devkit order: id 1 = n02119789, 2 = n01440764, 3 = n01443537, and a
    # parent synset (id 1001) that is not a class.
    rows = [
        (1, "n02119789", "kit fox", 0),
        (2, "n01440764", "tench", 0),
        (3, "n01443537", "goldfish", 0),
        (1001, "n00001740", "entity", 3),
    ]
    dtype = [
        ("ILSVRC2012_ID", "O"),
        ("WNID", "O"),
        ("words", "O"),
        ("num_children", "O"),
    ]
    synsets = np.zeros((len(rows), 1), dtype=dtype)
    for i, row in enumerate(rows):
        synsets[i, 0] = row
    scipy_io.savemat(str(data / "meta.mat"), {"synsets": synsets})
    ids = {"n02119789": 1, "n01440764": 2, "n01443537": 3}
    truth = "".join(f"{ids[w]}\n" for w in VAL_WNIDS)  # "1\n3\n2\n1\n"
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text(truth)


def _generate(split, tmp_path):
    return list(image_imagenet.IMAGE_IMAGENET.generate(split, str(tmp_path)))


class TestFolderLayout:
    def test_train_labels_are_sorted_wnid_indices(self, tmp_path):
        expected = _write_train(tmp_path)
        examples = _generate("train", tmp_path)
        assert len(examples) == 6
        assert {ex["inputs"]: ex["targets"] for ex in examples} == expected
        assert image_imagenet.load_wnids(str(tmp_path)) == WNIDS
        # Shuffled once with a fixed seed: not in class order, reproducible.
        assert [ex["targets"] for ex in examples] != [0, 0, 1, 1, 2, 2]
        assert _generate("train", tmp_path) == examples

    def test_dev_devkit_ground_truth(self, tmp_path):
        _write_train(tmp_path)
        images = _write_val(tmp_path)
        _write_devkit(tmp_path)
        dev = _generate("dev", tmp_path)
        assert [ex["targets"] for ex in dev] == VAL_LABELS
        assert [ex["inputs"] for ex in dev] == images
        # meta.mat also gives the class list without a train folder.
        assert image_imagenet.read_devkit_meta(
            str(tmp_path / "ILSVRC2012_devkit_t12" / "data" / "meta.mat")
        ) == {1: "n02119789", 2: "n01440764", 3: "n01443537"}

    def test_dev_devkit_needs_meta(self, tmp_path):
        _write_train(tmp_path)
        _write_val(tmp_path)
        gt = tmp_path / "ILSVRC2012_devkit_t12" / "data"
        gt.mkdir(parents=True)
        (gt / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n")
        with pytest.raises(problem_lib.MissingDataError, match="meta.mat"):
            _generate("dev", tmp_path)

    def test_dev_kaggle_layout(self, tmp_path):
        root = tmp_path / "ILSVRC" / "Data" / "CLS-LOC"
        _write_train(root)
        images = _write_val(root)
        (tmp_path / "LOC_synset_mapping.txt").write_text(
            "n01440764 tench, Tinca tinca\nn01443537 goldfish\n"
            "n02119789 kit fox, Vulpes macrotis\n"
        )
        rows = [
            f"ILSVRC2012_val_{i + 1:08d},{w} 1 2 3 4 {w} 5 6 7 8"
            for i, w in enumerate(VAL_WNIDS)
        ]
        (tmp_path / "LOC_val_solution.csv").write_text(
            "ImageId,PredictionString\n" + "\n".join(reversed(rows)) + "\n"
        )
        dev = _generate("dev", tmp_path)
        assert [ex["targets"] for ex in dev] == VAL_LABELS
        assert [ex["inputs"] for ex in dev] == images
        assert len(_generate("train", tmp_path)) == 6

    def test_dev_synset_labels_file_and_val_folders(self, tmp_path):
        _write_train(tmp_path)
        _write_val(tmp_path)
        (tmp_path / "imagenet_2012_validation_synset_labels.txt").write_text(
            "\n".join(VAL_WNIDS) + "\n"
        )
        assert [
            ex["targets"] for ex in _generate("dev", tmp_path)
        ] == VAL_LABELS
        # Validation sorted into wnid folders instead (e.g. by a script).
        other = tmp_path / "sorted"
        (other / "val" / "n01443537").mkdir(parents=True)
        (other / "val" / "n01443537" / "a.JPEG").write_bytes(_jpeg((0, 255, 0)))
        (other / "imagenet_lsvrc_2015_synsets.txt").write_text(
            "\n".join(WNIDS) + "\n"
        )
        assert [ex["targets"] for ex in _generate("dev", other)] == [1]


def _tf_example(image: bytes, label: int, synset: str) -> bytes:
    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    feature = {
        "image/height": i(6),
        "image/width": i(8),
        "image/colorspace": b(b"RGB"),
        "image/channels": i(3),
        "image/class/label": i(label),
        "image/class/synset": b(synset.encode()),
        "image/format": b(b"JPEG"),
        "image/filename": b(f"{synset}_1.JPEG".encode()),
        "image/encoded": b(image),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


class TestTFRecordLayout:
    def test_label_offset(self, tmp_path):
        # build_imagenet_data.py: label = 1 + index of the sorted wnid.
        shards = [[("n01440764", 1), ("n02119789", 3)], [("n01443537", 2)]]
        images = []
        for k, shard in enumerate(shards):
            path = str(tmp_path / f"train-{k:05d}-of-00002")
            with tf.io.TFRecordWriter(path) as writer:
                for wnid, label in shard:
                    images.append(_jpeg(COLORS[wnid]))
                    writer.write(_tf_example(images[-1], label, wnid))
        with tf.io.TFRecordWriter(
            str(tmp_path / "validation-00000-of-00001")
        ) as w:
            w.write(_tf_example(images[0], 1, "n01440764"))
        train = _generate("train", tmp_path)
        assert [ex["targets"] for ex in train] == [0, 2, 1]
        assert [ex["inputs"] for ex in train] == images
        assert _generate("dev", tmp_path) == [
            {"inputs": images[0], "targets": 0}
        ]
        assert image_imagenet.TFRECORD_LABEL_OFFSET == 1

    def test_background_label_rejected(self, tmp_path):
        path = str(tmp_path / "validation-00000-of-00001")
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(_tf_example(_jpeg((1, 2, 3)), 0, "background"))
        with pytest.raises(ValueError, match="outside 1..1000"):
            _generate("dev", tmp_path)


class TestProblem:
    def test_definition(self):
        problem = registry.get_problem("image_imagenet")
        assert problem is image_imagenet.IMAGE_IMAGENET
        assert problem.input_space_id == features_lib.SpaceID.IMAGE == 16
        assert problem.target_space_id == features_lib.SpaceID.IMAGE_LABEL == 1
        assert problem.metrics == ("accuracy_top1", "accuracy_top5")
        assert problem.input_modality == "image"
        assert problem.target_modality == "class_label_1000"
        assert problem.features["inputs"].dtype == tf.string
        assert problem.features["targets"].shape == ()
        assert problem.loss_multiplier == 1.0

    def test_preprocessor_decodes_to_299(self):
        (preprocess,) = image_imagenet.IMAGE_IMAGENET.preprocessors
        example = {"inputs": tf.constant(_jpeg((255, 0, 0))), "targets": 0}
        for training in (False, True):
            image = preprocess.apply(example, training=training)["inputs"]
            assert image.shape == (299, 299, 3)
            np.testing.assert_allclose(
                tf.reduce_mean(image, axis=[0, 1]), [1.0, 0.0, 0.0], atol=0.02
            )
        small = image_imagenet.imagenet_problem("imagenet_test", (32, 24))
        image = small.preprocessors[0].apply(example)["inputs"]
        assert image.shape == (32, 24, 3)

    def test_missing_files_message(self, tmp_path):
        for split in ("train", "dev"):
            with pytest.raises(problem_lib.MissingDataError) as info:
                _generate(split, tmp_path)
            message = str(info.value)
            assert "train/nXXXXXXXX/*.JPEG" in message
            assert "ILSVRC2012_validation_ground_truth.txt" in message
            assert "validation-00000-of-00128" in message
            assert "https://image-net.org/challenges/LSVRC/2012/" in message
