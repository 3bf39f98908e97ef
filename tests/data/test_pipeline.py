"""Tests for t2t_multimodel.data.pipeline on generated fake problems."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from programs import datagen
from t2t_multimodel.data import pipeline, tfrecord, vocabulary
from tests.data import fake_problems


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("data"))
    probs = {
        "text": fake_problems.register(fake_problems.make_text_problem()),
        "image": fake_problems.register(fake_problems.make_image_problem()),
        "audio": fake_problems.register(fake_problems.make_audio_problem()),
    }
    datagen.generate_data(
        problem_names=[p.name for p in probs.values()],
        data_dir=data_dir,
        tmp_dir=data_dir,
        vocab_size=64,
        verbose=False,
    )
    vocab = vocabulary.Vocabulary.load(
        os.path.join(data_dir, fake_problems.VOCAB_FILE)
    )
    return data_dir, probs, vocab


def _epoch(problem, data_dir, **kwargs):
    kwargs = {"shuffle": False, "repeat": False, "training": False, **kwargs}
    ds = pipeline.make_dataset(problem, "train", data_dir, **kwargs)
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def test_bucket_boundaries_are_t2ts():
    assert pipeline.bucket_boundaries(20) == list(range(8, 20))
    assert pipeline.bucket_boundaries(50)[12:] == [
        20,
        22,
        24,
        26,
        28,
        30,
        33,
        36,
        39,
        42,
        46,
    ]
    assert pipeline.bucket_boundaries(4) == [3]


class TestTextBatches:
    def test_padding_masks_and_space_id(self, generated):
        data_dir, probs, vocab = generated
        batches = _epoch(probs["text"], data_dir, batch_size=4)
        texts = []
        for b in batches:
            assert set(b) == {
                "inputs",
                "inputs_mask",
                "targets",
                "targets_mask",
                "target_space_id",
            }
            assert b["inputs"].dtype == np.int32
            assert b["inputs_mask"].dtype == bool
            np.testing.assert_array_equal(b["target_space_id"], 8)
            for key in ("inputs", "targets"):
                ids, mask = b[key], b[f"{key}_mask"]
                np.testing.assert_array_equal(mask, ids != 0)
                for row, row_mask in zip(ids, mask):
                    n = row_mask.sum()
                    assert row[n - 1] == vocabulary.EOS_ID  # last real id
                    assert np.all(row[n:] == 0)  # padding is 0
                    assert np.all(row_mask[:n])
            texts += [vocab.decode(row) for row in b["inputs"]]
        assert sorted(texts) == sorted(fake_problems.sentences(40, 0))
        assert max(len(b["inputs"]) for b in batches) == 4

    def test_tokens_bound_the_padded_batch(self, generated):
        data_dir, probs, _ = generated
        batches = _epoch(
            probs["text"], data_dir, batch_size=24, batch_unit="tokens"
        )
        assert sum(len(b["inputs"]) for b in batches) == 40
        for b in batches:
            length = max(b["inputs"].shape[1], b["targets"].shape[1])
            assert len(b["inputs"]) * length <= 24
        # Short sentences come in batches of several examples.
        assert max(len(b["inputs"]) for b in batches) >= 2

    def test_max_length_truncates_without_eos(self, generated):
        data_dir, probs, vocab = generated
        full = {
            tuple(r[m])
            for b in _epoch(probs["text"], data_dir, batch_size=40)
            for r, m in zip(b["inputs"], b["inputs_mask"])
        }
        cut = _epoch(probs["text"], data_dir, batch_size=40, max_length=3)
        for b in cut:
            assert b["inputs"].shape[1] <= 3
            for row, mask in zip(b["inputs"], b["inputs_mask"]):
                real = tuple(row[mask])
                assert any(f[:3] == real for f in full)
                if len(real) == 3:
                    assert mask.all()

    def test_training_repeats_with_static_batches_and_seed(self, generated):
        data_dir, probs, _ = generated

        def first(seed):
            ds = pipeline.make_dataset(
                probs["text"],
                "train",
                data_dir,
                batch_size=4,
                seed=seed,
                shuffle_buffer=16,
            )
            return [b["inputs"].numpy().tolist() for b in ds.take(15)]

        a, b = first(7), first(7)
        assert a == b
        assert all(len(batch) == 4 for batch in a)  # 15 * 4 > 40: repeats


class TestOtherModalities:
    def test_image_batches(self, generated):
        data_dir, probs, _ = generated
        batches = _epoch(probs["image"], data_dir, batch_size=5)
        assert [len(b["targets"]) for b in batches] == [5, 5, 2]
        labels = []
        for b in batches:
            assert set(b) == {"inputs", "targets", "target_space_id"}
            assert b["inputs"].shape[1:] == (4, 4, 3)
            assert b["targets"].dtype == np.int32
            np.testing.assert_array_equal(b["target_space_id"], 1)
            for image, label in zip(b["inputs"], b["targets"]):
                np.testing.assert_allclose(image, label * 50 / 255, atol=1e-6)
            labels += b["targets"].tolist()
        assert sorted(labels) == sorted(i % 5 for i in range(12))

    def test_audio_masks_are_lengths(self, generated):
        data_dir, probs, _ = generated
        batches = _epoch(probs["audio"], data_dir, batch_size=8)
        lengths = []
        for b in batches:
            assert b["inputs"].dtype == np.float32
            np.testing.assert_array_equal(b["inputs"][b["inputs_mask"]], 0.5)
            np.testing.assert_array_equal(b["inputs"][~b["inputs_mask"]], 0)
            lengths += b["inputs_mask"].sum(1).tolist()
        assert sorted(lengths) == sorted(100 * (1 + i % 4) for i in range(8))
        limited = _epoch(
            probs["audio"],
            data_dir,
            batch_size=8,
            max_length={"inputs": 150},
        )
        assert all(b["inputs"].shape[1] <= 150 for b in limited)


class TestSharding:
    def test_files_split_across_pipelines(self, generated):
        data_dir, probs, vocab = generated
        seen = []
        for i in range(2):
            ctx = tf.distribute.InputContext(2, i, 1)
            batches = _epoch(
                probs["text"], data_dir, batch_size=40, input_context=ctx
            )
            seen.append(
                sorted(vocab.decode(r) for b in batches for r in b["inputs"])
            )
        assert len(seen[0]) == len(seen[1]) == 20  # shards {0, 2} and {1, 3}
        assert sorted(seen[0] + seen[1]) == sorted(
            fake_problems.sentences(40, 0)
        )

    def test_records_split_when_fewer_files(self, generated):
        data_dir, probs, vocab = generated
        seen = []
        for i in range(5):  # 5 pipelines, 4 shards: record sharding
            ctx = tf.distribute.InputContext(5, i, 1)
            # Shuffled, unseeded: the partition must not depend on order.
            batches = _epoch(
                probs["text"],
                data_dir,
                batch_size=40,
                input_context=ctx,
                shuffle=True,
            )
            seen.append([vocab.decode(r) for b in batches for r in b["inputs"]])
        assert [len(s) for s in seen] == [8] * 5
        assert sorted(sum(seen, [])) == sorted(fake_problems.sentences(40, 0))


class TestErrors:
    def test_missing_split(self, generated, tmp_path):
        _, probs, _ = generated
        with pytest.raises(pipeline.MissingShardsError) as info:
            pipeline.make_dataset(
                probs["text"], "train", str(tmp_path), batch_size=2
            )
        message = str(info.value)
        assert (
            tfrecord.shard_pattern(str(tmp_path), probs["text"].name, "train")
            in message
        )
        assert f"t2t-mm-datagen --problem={probs['text'].name}" in message

    def test_missing_one_shard(self, generated, tmp_path):
        data_dir, probs, _ = generated
        copy = shutil.copytree(data_dir, tmp_path / "d")
        os.remove(copy / f"{probs['text'].name}-train-00001-of-00004")
        with pytest.raises(pipeline.MissingShardsError, match="1 of 4"):
            pipeline.make_dataset(
                probs["text"], "train", str(copy), batch_size=2
            )

    def test_corrupt_shard_is_named(self, generated, tmp_path):
        data_dir, probs, _ = generated
        copy = shutil.copytree(data_dir, tmp_path / "d")
        shard = str(copy / f"{probs['text'].name}-train-00002-of-00004")
        with open(shard, "rb") as f:
            data = f.read()
        with open(shard, "wb") as f:
            f.write(data[:-5])  # truncated last record
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            _epoch(probs["text"], str(copy), batch_size=4)
        assert shard in str(info.value)
        assert "Corrupt or truncated TFRecord shard" in str(info.value)

    def test_other_vocabulary_is_refused(self, generated, tmp_path):
        data_dir, probs, _ = generated
        copy = shutil.copytree(data_dir, tmp_path / "d")
        vocabulary.build_vocabulary(
            ["other words entirely"] * 5,
            str(copy / fake_problems.VOCAB_FILE),
            vocab_size=30,
        )
        with pytest.raises(pipeline.ShardMismatchError, match="another"):
            pipeline.make_dataset(
                probs["text"], "train", str(copy), batch_size=2
            )

    def test_other_problem_is_refused(self, generated, tmp_path):
        data_dir, probs, _ = generated
        copy = shutil.copytree(data_dir, tmp_path / "d")
        for f in os.listdir(copy):
            if f.startswith(probs["audio"].name + "-train"):
                os.rename(
                    copy / f,
                    copy / f.replace(probs["audio"].name, probs["text"].name),
                )
        with pytest.raises(pipeline.ShardMismatchError, match="do not fit"):
            pipeline.make_dataset(
                probs["text"], "train", str(copy), batch_size=2
            )


class TestReadExamples:
    def test_generation_order_across_shards(self, generated):
        data_dir, probs, vocab = generated
        problem = probs["text"]  # 40 train examples in 4 shards.
        stored = list(
            pipeline.read_examples(problem, "train", data_dir)
            .map(lambda ex: ex["targets"])
            .as_numpy_iterator()
        )
        expected = [ex["targets"] for ex in problem.generate("train", "")]
        assert [vocab.decode(ids) for ids in stored] == expected
        assert all(ids[-1] == vocabulary.EOS_ID for ids in stored)

    def test_only_the_keys_asked_for(self, generated):
        data_dir, probs, _ = generated
        labels = pipeline.read_examples(
            probs["image"], "train", data_dir, keys=("targets",), ordered=False
        )
        assert set(labels.element_spec) == {"targets"}
        ordered = pipeline.read_examples(probs["image"], "train", data_dir)
        assert sorted(x["targets"] for x in labels.as_numpy_iterator()) == (
            sorted(x["targets"] for x in ordered.as_numpy_iterator())
        )

    def test_corrupt_shard_is_named(self, generated, tmp_path):
        data_dir, probs, _ = generated
        copy = shutil.copytree(data_dir, tmp_path / "d")
        shard = str(copy / f"{probs['text'].name}-train-00001-of-00004")
        with open(shard, "rb") as f:
            data = f.read()
        with open(shard, "wb") as f:
            f.write(data[:-5])
        dataset = pipeline.read_examples(probs["text"], "train", str(copy))
        with pytest.raises(tf.errors.InvalidArgumentError, match=shard):
            list(dataset)
