"""Tests for problems.datagen and bin/t2t-mm-datagen on fake problems."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from problems import problem as problem_lib
from problems import registry
from programs import datagen
from t2t_multimodel.data import tfrecord, vocabulary
from tests.data import fake_problems

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ROOT = os.path.dirname(_ROOT)
_SCRIPT = os.path.join(_ROOT, "bin", "t2t-mm-datagen")


def _records(path: str) -> list[tf.train.Example]:
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(path)
    ]


def _ids(example: tf.train.Example, key: str) -> list[int]:
    return list(example.features.feature[key].int64_list.value)


@pytest.fixture()
def text_problem():
    return fake_problems.register(fake_problems.make_text_problem())


class TestGenerateData:
    def test_shards_meta_vocabulary_and_contents(self, tmp_path, text_problem):
        data_dir = str(tmp_path / "data")
        result = datagen.generate_data(
            problem_names=text_problem.name,
            data_dir=data_dir,
            tmp_dir=str(tmp_path / "tmp"),
            vocab_size=64,
            verbose=False,
        )
        name = text_problem.name
        files = sorted(os.listdir(data_dir))
        assert files == sorted(
            [f"{name}-train-{i:05d}-of-00004" for i in range(4)]
            + [f"{name}-dev-00000-of-00001", fake_problems.VOCAB_FILE]
            + [f"{name}-train.meta.json", f"{name}-dev.meta.json"]
        )
        train = result[name]["train"]
        assert train.num_examples == 40
        assert result[name]["dev"].num_examples == 6
        vocab = vocabulary.Vocabulary.load(
            os.path.join(data_dir, fake_problems.VOCAB_FILE)
        )
        assert vocab.vocab_size <= 64
        # Round robin: shard 1 holds examples 1, 5, 9, ...; text + EOS.
        texts = fake_problems.sentences(40, seed=0)
        shard1 = _records(train.paths[1])
        assert len(shard1) == 10
        for k, example in enumerate(shard1):
            ids = _ids(example, "inputs")
            assert ids[-1] == vocabulary.EOS_ID
            assert vocabulary.EOS_ID not in ids[:-1]
            assert vocab.decode(ids) == texts[1 + 4 * k]
        tokens = sum(
            len(_ids(e, key))
            for p in train.paths
            for e in _records(p)
            for key in ("inputs", "targets")
        )
        assert sum(train.num_tokens.values()) == tokens
        with open(os.path.join(data_dir, f"{name}-train.meta.json")) as f:
            meta = json.load(f)
        assert meta["num_shards"] == 4
        assert meta["vocabularies"] == {fake_problems.VOCAB_FILE: vocab.sha256}
        assert [s["examples"] for s in meta["shards"].values()] == [10] * 4
        assert meta["features"]["inputs"]["vocabulary"] == (
            fake_problems.VOCAB_FILE
        )

    def test_rerun_regenerates_only_the_deleted_shard(
        self, tmp_path, text_problem
    ):
        kwargs = dict(
            problem_names=[text_problem.name],
            data_dir=str(tmp_path),
            tmp_dir=str(tmp_path / "tmp"),
            vocab_size=64,
            verbose=False,
        )
        first = datagen.generate_data(**kwargs)[text_problem.name]["train"]
        vocab_path = str(tmp_path / fake_problems.VOCAB_FILE)
        before = {p: os.stat(p).st_mtime_ns for p in [*first.paths, vocab_path]}
        with open(first.paths[2], "rb") as f:
            content = f.read()
        os.remove(first.paths[2])
        second = datagen.generate_data(**kwargs)[text_problem.name]
        assert second["train"].shards_written == (2,)
        assert second["train"].shards_skipped == (0, 1, 3)
        assert second["dev"].shards_written == ()
        assert second["train"].num_examples == 40
        for path, mtime in before.items():
            if path != first.paths[2]:
                assert os.stat(path).st_mtime_ns == mtime, path
        with open(first.paths[2], "rb") as f:
            assert f.read() == content
        leftovers = [
            f
            for f in os.listdir(tmp_path)
            if f.endswith((".incomplete", ".tmp"))
        ]
        assert leftovers == []

    def test_other_shard_count_replaces_all(self, tmp_path, text_problem):
        kwargs = dict(
            problem_names=text_problem.name,
            data_dir=str(tmp_path),
            tmp_dir=str(tmp_path),
            vocab_size=64,
            verbose=False,
        )
        datagen.generate_data(**kwargs)
        stats = datagen.generate_data(**kwargs, num_shards=3)
        pattern = tfrecord.shard_pattern(
            str(tmp_path), text_problem.name, "train"
        )
        assert sorted(tf.io.gfile.glob(pattern)) == list(
            stats[text_problem.name]["train"].paths
        )
        assert stats[text_problem.name]["train"].shards_written == (0, 1, 2)

    def test_mixture_shares_one_vocabulary(self, tmp_path, text_problem):
        audio = fake_problems.register(fake_problems.make_audio_problem())
        image = fake_problems.register(fake_problems.make_image_problem())
        mixture = registry.register_mixture(
            registry.Mixture(
                fake_problems.unique_name("fake_mix"),
                ((text_problem.name, 1.0), (audio.name, 1.0)),
            )
        )
        result = datagen.generate_data(
            problem_names=f"{mixture.name},{image.name}",
            data_dir=str(tmp_path),
            tmp_dir=str(tmp_path),
            vocab_size=64,
            verbose=False,
        )
        assert list(result) == [text_problem.name, audio.name, image.name]
        assert result[audio.name]["train"].num_examples == 8
        assert result[image.name]["train"].num_tokens == {}
        vocab_files = [f for f in os.listdir(tmp_path) if f.endswith(".model")]
        assert vocab_files == [fake_problems.VOCAB_FILE]

    def test_missing_data_error_passes_through(self, tmp_path):
        missing = fake_problems.register(
            fake_problems.make_missing_data_problem()
        )
        with pytest.raises(problem_lib.MissingDataError, match="corpus.txt"):
            datagen.generate_data(
                problem_names=missing.name,
                data_dir=str(tmp_path / "d"),
                tmp_dir=str(tmp_path / "t"),
                vocab_size=64,
                verbose=False,
            )
        assert not os.path.exists(tmp_path / "d" / fake_problems.VOCAB_FILE)

    def test_unknown_name(self, tmp_path, text_problem):
        with pytest.raises(registry.UnknownNameError, match=text_problem.name):
            datagen.generate_data(
                problem_names=text_problem.name + "x",
                data_dir=str(tmp_path),
                tmp_dir=str(tmp_path),
            )

    def test_summary_printed(self, tmp_path, text_problem, capsys):
        datagen.generate_data(
            problem_names=text_problem.name,
            data_dir=str(tmp_path),
            tmp_dir=str(tmp_path),
            vocab_size=64,
        )
        out = capsys.readouterr().out
        assert f"{text_problem.name:<32} train         40" in out
        assert "done in" in out


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": _ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, _SCRIPT, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


class TestCommandLine:
    def test_help(self):
        out = _run_cli("--help")
        # absl exits with status 1 after printing the help (by design).
        assert out.returncode in (0, 1)
        assert "Traceback" not in out.stderr
        assert "t2t-mm-datagen --problem=NAME[,NAME...]" in out.stdout
        for flag in ("--problem", "--data_dir", "--tmp_dir", "--num_shards"):
            assert flag in out.stdout

    def test_list_problems(self):
        out = _run_cli("--list_problems")
        assert out.returncode == 0, out.stderr
        # Same package, same registrations (minus this process's fakes).
        expected = [
            n
            for n in registry.list_problems() + registry.list_mixtures()
            if not n.startswith("fake_")
        ]
        assert out.stdout.split() == expected

    def test_user_error_is_one_paragraph_exit_1(self, tmp_path):
        out = _run_cli(
            "--problem=no_such_problem_xyz",
            f"--data_dir={tmp_path}",
            f"--tmp_dir={tmp_path}",
        )
        assert out.returncode == 1
        assert "Traceback" not in out.stderr
        assert "unknown problem or mixture 'no_such_problem_xyz'" in out.stderr
        assert "--list_problems" in out.stderr
