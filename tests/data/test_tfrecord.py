"""Tests for t2t_multimodel.data.tfrecord."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import tfrecord, vocabulary
from tests import testing
from tests.data import fake_problems

_FEATURES = {
    "inputs": features_lib.Feature(tf.int64, (None,), vocabulary="v.model"),
    "image": features_lib.Feature(tf.string, ()),
    "label": features_lib.Feature(tf.int64, ()),
    "wave": features_lib.Feature(tf.float32, (None,)),
    "spec": features_lib.Feature(tf.float32, (None, 3)),
    "box": features_lib.Feature(tf.int64, (2, 2)),
}


@pytest.fixture(scope="module")
def vocabs(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("v") / "v.model")
    vocab = vocabulary.build_vocabulary(
        fake_problems.sentences(50, 0), path, vocab_size=64
    )
    return {"v.model": vocab}


def _raw(i: int = 0) -> dict:
    return {
        "inputs": "the cat sat",
        "image": b"\x89PNG fake",
        "label": 3 + i,
        "wave": np.array([0.5, -0.25, 1.0], np.float32),
        "spec": np.arange(6, dtype=np.float32).reshape(2, 3),
        "box": [[1, 2], [3, 4]],
        "ignored": "not a feature",
    }


class TestSpecAndExamples:
    def test_parse_spec(self):
        spec = tfrecord.parse_spec(_FEATURES)
        assert spec["inputs"] == tf.io.VarLenFeature(tf.int64)
        assert spec["image"] == tf.io.FixedLenFeature([], tf.string)
        assert spec["label"] == tf.io.FixedLenFeature([], tf.int64)
        assert spec["wave"] == tf.io.VarLenFeature(tf.float32)
        assert spec["spec"] == tf.io.VarLenFeature(tf.float32)
        assert spec["box"] == tf.io.FixedLenFeature([2, 2], tf.int64)

    def test_encode_parse_round_trip(self, vocabs):
        example = tfrecord.encode_example(_raw(), _FEATURES, vocabs)
        assert "ignored" not in example.features.feature
        parsed = tfrecord.parse_example(example.SerializeToString(), _FEATURES)
        ids = vocabs["v.model"].encode("the cat sat") + [vocabulary.EOS_ID]
        assert parsed["inputs"].numpy().tolist() == ids
        assert parsed["image"].numpy() == b"\x89PNG fake"
        assert int(parsed["label"]) == 3
        np.testing.assert_array_equal(parsed["wave"], [0.5, -0.25, 1.0])
        np.testing.assert_array_equal(parsed["spec"], [[0, 1, 2], [3, 4, 5]])
        np.testing.assert_array_equal(parsed["box"], [[1, 2], [3, 4]])

    @pytest.mark.parametrize(
        "key, value, error",
        [
            ("inputs", [5, 6], TypeError),
            ("image", 7, TypeError),
            ("spec", np.zeros([2, 4]), ValueError),
            ("box", [1, 2, 3, 4], ValueError),
        ],
    )
    def test_bad_values(self, vocabs, key, value, error):
        raw = _raw()
        raw[key] = value
        with pytest.raises(error, match=key):
            tfrecord.encode_example(raw, _FEATURES, vocabs)

    def test_missing_feature(self, vocabs):
        raw = _raw()
        del raw["label"]
        with pytest.raises(KeyError, match="label"):
            tfrecord.encode_example(raw, _FEATURES, vocabs)

    def test_shard_paths(self):
        assert tfrecord.shard_paths("/d", "p", "train", 3) == [
            "/d/p-train-00000-of-00003",
            "/d/p-train-00001-of-00003",
            "/d/p-train-00002-of-00003",
        ]


class TestWriteSplit:
    def test_round_robin_stats_and_meta(self, tmp_path, vocabs):
        raws = [_raw(i) for i in range(7)]
        stats = tfrecord.write_split(
            raws, _FEATURES, vocabs, str(tmp_path), "p", "train", 3
        )
        assert stats.num_examples == 7
        assert stats.shards_written == (0, 1, 2)
        ids = len(vocabs["v.model"].encode("the cat sat")) + 1
        assert stats.num_tokens == {"inputs": 7 * ids}
        labels = [
            [
                int(tfrecord.parse_example(r, _FEATURES)["label"])
                for r in tf.data.TFRecordDataset(path)
            ]
            for path in stats.paths
        ]
        assert labels == [[3, 6, 9], [4, 7], [5, 8]]
        meta = tfrecord.read_meta(str(tmp_path), "p", "train")
        assert [s["examples"] for s in meta["shards"].values()] == [3, 2, 2]
        assert tfrecord.check_meta(meta, "p", _FEATURES, vocabs) == []
        other = dict(_FEATURES, label=features_lib.Feature(tf.float32, ()))
        assert len(tfrecord.check_meta(meta, "q", other, vocabs)) == 2

    def test_failed_run_leaves_no_final_file(self, tmp_path, vocabs):
        def examples():
            yield _raw(0)
            yield _raw(1)
            raise RuntimeError("generator died")

        with pytest.raises(RuntimeError, match="died"):
            tfrecord.write_split(
                examples(), _FEATURES, vocabs, str(tmp_path), "p", "train", 2
            )
        # Only hidden temporaries remain; the next run removes them.
        assert all(f.startswith(".") for f in os.listdir(tmp_path))
        tfrecord.write_split(
            [_raw(0)], _FEATURES, vocabs, str(tmp_path), "p", "train", 2
        )
        assert sorted(os.listdir(tmp_path)) == [
            "p-train-00000-of-00002",
            "p-train-00001-of-00002",
            "p-train.meta.json",
        ]

    def test_files_get_umask_modes(self, tmp_path, vocabs):
        out = str(tmp_path / "out")
        with testing.umask(0o022):
            tfrecord.write_split(
                [_raw(0), _raw(1)], _FEATURES, vocabs, out, "p", "train", 2
            )
        # The metadata was 0600 (mkstemp); a reader in a container or
        # another user must be able to read the split.
        assert testing.tree_modes(out) == {
            ".": 0o755,
            "p-train-00000-of-00002": 0o644,
            "p-train-00001-of-00002": 0o644,
            "p-train.meta.json": 0o644,
        }

    def test_other_vocabulary_rewrites_everything(self, tmp_path, vocabs):
        out = str(tmp_path / "out")
        tfrecord.write_split(
            [_raw(0), _raw(1)], _FEATURES, vocabs, out, "p", "dev", 2
        )
        other = vocabulary.build_vocabulary(
            ["a completely different corpus of words"] * 5,
            str(tmp_path / "other.model"),
            vocab_size=40,
        )
        stats = tfrecord.write_split(
            [_raw(0), _raw(1)],
            _FEATURES,
            {"v.model": other},
            out,
            "p",
            "dev",
            2,
        )
        assert stats.shards_written == (0, 1)
        meta = tfrecord.read_meta(out, "p", "dev")
        assert meta["vocabularies"]["v.model"] == other.sha256
