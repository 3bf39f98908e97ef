"""Tests for problems.tfds_sources: TFDS as a source of raw examples.

No network and no real corpus. Each builder's metadata is written offline
from its own code (`_write_metadata`: real features, the split names our
table uses), which is what `builder.is_prepared()` and TFDS's split checks
read. `tfds.testing.mock_data` then replaces the stored records, either with
its random examples or (`_serve`) with fixed examples that go through the
builder's own `serialize_example` / `deserialize_example` (the round trip of
TFDS's stored records, undecoded images included). Those fixed examples are
also written as raw files in each corpus's real format, and datagen's output
from both sources is compared byte for byte, file by file. The split names
themselves come from the builders' `_split_generators` run on a fake
download manager, and one test builds a real (tiny) imagenet2012 from
manual-download tars with `download_and_prepare`, which needs no network.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import types

import numpy as np
import pytest
import soundfile
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image
from tensorflow_datasets.core import splits as splits_lib

import problems  # noqa: F401  (registers every problem)
from problems import problem as problem_lib
from problems import registry, text_features
from problems.paper import image_imagenet, speech_librispeech, tfds_sources
from programs import datagen
from t2t_multimodel.data import vocabulary

_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
_SCRIPT = os.path.join(_ROOT, "bin", "t2t-mm-datagen")
PAPER_PROBLEMS = {
    "translate_ende_wmt8k",
    "translate_deen_wmt8k",
    "translate_enfr_wmt8k",
    "translate_fren_wmt8k",
    "parse_ptb_wsj8k",
    "image_imagenet",
    "caption_mscoco8k",
    "speech_librispeech8k",
}
USE_FILES = tfds.testing.MockPolicy.USE_FILES


def _source(problem_name: str, index: int = 0) -> tfds_sources.TfdsSource:
    return tfds_sources.SOURCES[problem_name][index]


def _tfds_split_names(source: tfds_sources.TfdsSource) -> set[str]:
    names = set()
    for split in source.splits.values():
        names.update(s.strip() for s in split.split("+"))
    return names


def _write_metadata(
    source: tfds_sources.TfdsSource,
    data_dir: str,
    split_names: set[str] | None = None,
) -> None:
    """Writes the builder's real metadata, as `tfds build` would, no data."""
    builder = tfds.builder(source.full_name, data_dir=data_dir)
    infos = [
        splits_lib.SplitInfo(
            name=name,
            shard_lengths=[1],
            num_bytes=0,
            filename_template=tfds.core.ShardedFileTemplate(
                data_dir=builder.data_path,
                template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
                dataset_name=builder.name,
                split=name,
                filetype_suffix="tfrecord",
            ),
        )
        for name in sorted(split_names or _tfds_split_names(source))
    ]
    builder.info.set_splits(splits_lib.SplitDict(infos))
    builder.data_path.mkdir(parents=True, exist_ok=True)
    builder.info.write_to_directory(builder.data_path)


@contextlib.contextmanager
def _serve(data_dir: str, examples: dict[str, list[dict]]):
    """Mocks TFDS to serve `examples[split]` through the builder's features.

    A split expression `a+b` serves `examples[a]` then `examples[b]`.
    """

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        del read_config, kwargs
        records = [
            self.info.features.serialize_example(example)
            for name in str(split).split("+")
            for example in examples[name.strip()]
        ]
        dataset = tf.data.Dataset.from_tensor_slices(
            tf.constant(records, tf.string, shape=[len(records)])
        )
        return dataset.map(
            functools.partial(
                self.info.features.deserialize_example, decoders=decoders
            )
        )

    with tfds.testing.mock_data(
        policy=USE_FILES, data_dir=data_dir, as_dataset_fn=as_dataset
    ):
        yield


def _datagen(name: str, out: str, tmp_dir: str, **kwargs) -> dict:
    return datagen.generate_data(
        problem_names=name,
        data_dir=out,
        tmp_dir=tmp_dir,
        num_shards=2,
        vocab_size=64,
        verbose=False,
        **kwargs,
    )[name]


def _assert_same_files(dir_a: str, dir_b: str) -> None:
    names = sorted(os.listdir(dir_a))
    assert names == sorted(os.listdir(dir_b))
    for name in names:
        with open(os.path.join(dir_a, name), "rb") as f:
            a = f.read()
        with open(os.path.join(dir_b, name), "rb") as f:
            assert f.read() == a, name


def _records(path: str) -> list[tf.train.Example]:
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(path)
    ]


def _jpeg(seed: int, size: tuple[int, int]) -> bytes:
    pixels = np.random.RandomState(seed).randint(0, 256, (*size, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class TestTable:
    def test_every_paper_problem_is_mapped_or_explained(self):
        mapped = (
            set(tfds_sources.SOURCES)
            | set(tfds_sources.REVERSED)
            | set(tfds_sources.NO_TFDS_BUILDER)
        )
        assert mapped == PAPER_PROBLEMS
        assert not tfds_sources.has_source("parse_ptb_wsj8k")
        with pytest.raises(tfds_sources.NoTfdsSourceError, match="LDC"):
            tfds_sources.resolve("parse_ptb_wsj8k", None)
        for name in PAPER_PROBLEMS:
            registry.get_problem(name)

    def test_names_versions_and_fields_exist_in_the_builders(self):
        fields = {
            "wmt_t2t_translate": {"en", "de"},
            "wmt14_translate": {"en"},
            "imagenet2012": {"image", "label", "file_name"},
            "coco_captions": {"image", "captions"},
            "librispeech": {"speech", "text"},
        }
        full_names = []
        for sources in tfds_sources.SOURCES.values():
            for source in sources:
                # Raises if the version or config is not in the builder code.
                builder = tfds.builder(source.full_name, data_dir="/nowhere")
                assert str(builder.version) == source.version
                assert fields[source.builder] <= set(builder.info.features)
                assert set(source.undecoded) <= set(builder.info.features)
                full_names.append(source.full_name)
        assert full_names == [
            "wmt_t2t_translate/de-en:1.0.0",
            "wmt14_translate/de-en:1.0.0",
            "wmt14_translate/fr-en:1.0.0",
            "imagenet2012:5.1.0",
            "coco_captions/2014:1.1.0",
            "librispeech/default:2.1.1",
        ]
        speech = tfds.builder("librispeech/default:2.1.1").info.features
        assert speech["speech"].sample_rate == tfds_sources.SAMPLE_RATE
        assert speech["speech"].np_dtype == np.int16

    def test_split_names_come_from_the_builders_code(self, tmp_path):
        root = epath.Path(tmp_path)
        (root / "LibriSpeech").mkdir()
        for name in ("SPEAKERS.TXT", "CHAPTERS.TXT"):
            (root / "LibriSpeech" / name).write_text(";\n")
        (root / "dataset_coco.json").write_text('{"images": []}')
        for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
            with tarfile.open(root / name, "w"):
                pass

        class FakeDownloadManager:  # Paths instead of downloads.
            manual_dir = root

            def download_and_extract(self, urls):
                if isinstance(urls, dict):
                    return dict.fromkeys(urls, root)
                return [root] * len(urls) if isinstance(urls, list) else root

            def extract(self, paths):
                return {k: [root] * len(v) for k, v in paths.items()}

            def iter_archive(self, path):
                return iter(())

        for sources in tfds_sources.SOURCES.values():
            for source in sources:
                builder = tfds.builder(source.full_name, data_dir="/nowhere")
                # The builder's own split definitions (private, but the
                # only offline way to read them).
                generators = builder._split_generators(FakeDownloadManager())
                names = (
                    set(generators)
                    if isinstance(generators, dict)
                    else {str(g.name) for g in generators}
                )
                assert _tfds_split_names(source) <= names, source.full_name
                optional = set(source.optional_splits.values())
                assert optional <= names, source.full_name

    def test_wmt_corpora(self):
        # The corpora each translation source trains on.
        expected = {
            "wmt_t2t_translate/de-en:1.0.0": [
                "europarl_v7",
                "commoncrawl",
                "newscommentary_v13",
            ],
            "wmt14_translate/de-en:1.0.0": [
                "europarl_v7",
                "commoncrawl",
                "newscommentary_v9",
            ],
            "wmt14_translate/fr-en:1.0.0": [
                "europarl_v7",
                "commoncrawl",
                "multiun",  # undoc.2000, the raw problem's UN corpus.
                "newscommentary_v9",
                "gigafren",
            ],
        }
        for name, corpora in expected.items():
            subsets = tfds.builder(name, data_dir="/nowhere").subsets
            assert subsets["train"] == corpora
            assert subsets["validation"] == ["newstest2013"]


class TestMappings:
    def test_librispeech_int16_to_float32(self):
        speech = np.array([-32768, -1, 0, 1, 16384, 32767], np.int16)
        (example,) = tfds_sources.librispeech_examples(
            {"speech": speech, "text": b" CHAPTER ONE MISSUS RACHEL \n"}
        )
        assert example["inputs"].dtype == np.float32
        np.testing.assert_array_equal(
            example["inputs"],
            [-1.0, -1 / 32768, 0.0, 1 / 32768, 0.5, 32767 / 32768],
        )
        assert example["targets"] == "chapter one missus rachel"

    def test_librispeech_scale_is_what_soundfile_reads(self, tmp_path):
        speech = np.random.RandomState(0).randint(
            -32768, 32768, 4000, dtype=np.int64
        )
        speech = speech.astype(np.int16)
        path = str(tmp_path / "a.flac")
        soundfile.write(path, speech, 16000, subtype="PCM_16")
        (example,) = tfds_sources.librispeech_examples(
            {"speech": speech, "text": b"A"}
        )
        np.testing.assert_array_equal(
            example["inputs"], speech_librispeech.read_audio(path)
        )

    def test_imagenet_label_offset(self):
        names = tfds.builder("imagenet2012").info.features["label"].names
        # TFDS's labels are the sorted wnids from 0: the problem's labels.
        assert len(names) == image_imagenet.NUM_CLASSES
        assert names == sorted(names)
        assert names[0] == "n01440764" and names[999] == "n15075141"
        assert tfds_sources.IMAGENET_TFDS_LABEL_OFFSET == 0
        assert image_imagenet.TFRECORD_LABEL_OFFSET == 1
        (example,) = tfds_sources.imagenet_examples(
            {"image": b"jpeg", "label": np.int64(999), "file_name": b"x"}
        )
        assert example == {"inputs": b"jpeg", "targets": 999}
        assert type(example["targets"]) is int
        with pytest.raises(ValueError, match="outside 0..999"):
            next(
                tfds_sources.imagenet_examples(
                    {"image": b"j", "label": np.int64(-1), "file_name": b"t"}
                )
            )

    def test_coco_one_example_per_caption(self):
        examples = list(
            tfds_sources.coco_caption_examples(
                {
                    "image": b"jpeg",
                    "captions": {
                        "id": np.array([7, 3]),
                        "text": np.array(
                            [b"A  man\n riding a horse. ", b"  "], object
                        ),
                    },
                }
            )
        )
        assert examples == [
            {"inputs": b"jpeg", "targets": "A man riding a horse."}
        ]

    def test_translation_strips_and_drops_empty_sides(self):
        to_examples = tfds_sources.translation_examples("de")
        assert list(to_examples({"en": b" Hi .\r", "de": b"Hallo ."})) == [
            {"inputs": "Hi .", "targets": "Hallo ."}
        ]
        assert list(to_examples({"en": b"Hi", "de": b"  "})) == []

    @pytest.mark.parametrize(
        "problem_name",
        ["translate_ende_wmt8k", "image_imagenet", "speech_librispeech8k"],
    )
    def test_random_mock_data_gives_raw_example_types(
        self, tmp_path, problem_name
    ):
        source = _source(problem_name)
        _write_metadata(source, str(tmp_path))
        # coco_captions is left out: mock_data's random generator cannot
        # make its nested `objects` sequence (mismatched lengths).
        with tfds.testing.mock_data(
            num_examples=3, policy=USE_FILES, data_dir=str(tmp_path)
        ):
            problem = tfds_sources.with_tfds_source(
                registry.get_problem(problem_name), str(tmp_path)
            )
            examples = list(problem.generate(problem_lib.DEV, "/unused"))
        assert 1 <= len(examples) <= 3
        for example in examples:
            inputs, targets = example["inputs"], example["targets"]
            if problem_name == "translate_ende_wmt8k":
                assert type(inputs) is str and type(targets) is str
            elif problem_name == "image_imagenet":
                assert type(inputs) is bytes and type(targets) is int
                assert 0 <= targets < 1000
            else:
                assert inputs.dtype == np.float32 and inputs.ndim == 1
                assert np.abs(inputs).max() <= 1.0
                assert type(targets) is str and targets == targets.lower()


class TestMissingData:
    def test_unprepared_says_what_to_run(self, tmp_path):
        data_dir = str(tmp_path / "tfds")
        with pytest.raises(problem_lib.MissingDataError) as error:
            tfds_sources.with_tfds_source(
                registry.get_problem("image_imagenet"), data_dir
            )
        message = str(error.value)
        assert (
            f"tfds build imagenet2012:5.1.0 --manual_dir=<dir holding the "
            f"archives> --data_dir={data_dir}"
        ) in message
        assert "ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar" in message
        assert not os.path.exists(data_dir)  # Nothing was downloaded.

    def test_every_candidate_is_listed(self, tmp_path):
        with pytest.raises(problem_lib.MissingDataError) as error:
            tfds_sources.with_tfds_source(
                registry.get_problem("translate_deen_wmt8k"), str(tmp_path)
            )
        message = str(error.value)
        for name in (
            "wmt_t2t_translate/de-en:1.0.0",
            "wmt14_translate/de-en:1.0.0",
        ):
            assert f"tfds build {name} --data_dir={tmp_path}" in message
        assert "--manual_dir" not in message

    def test_missing_split(self, tmp_path):
        source = _source("speech_librispeech8k")
        _write_metadata(source, str(tmp_path), {"dev_clean", "train_clean100"})
        with pytest.raises(problem_lib.MissingDataError) as error:
            tfds_sources.resolve("speech_librispeech8k", str(tmp_path))
        assert "train_clean360, train_other500" in str(error.value)

    def test_other_sample_rate_is_refused(self, tmp_path, monkeypatch):
        _write_metadata(_source("speech_librispeech8k"), str(tmp_path))
        tfds_sources.resolve("speech_librispeech8k", str(tmp_path))
        monkeypatch.setattr(
            tfds.features.Audio, "sample_rate", property(lambda self: 8000)
        )
        with pytest.raises(ValueError, match="speech is at 8000 Hz, not 16000"):
            tfds_sources.resolve("speech_librispeech8k", str(tmp_path))

    def test_second_candidate_is_used_when_first_is_absent(self, tmp_path):
        _write_metadata(_source("translate_ende_wmt8k", 1), str(tmp_path))
        source, builder = tfds_sources.resolve(
            "translate_ende_wmt8k", str(tmp_path)
        )
        assert source.full_name == "wmt14_translate/de-en:1.0.0"
        assert builder.is_prepared()
        reverse, _ = tfds_sources.resolve("translate_deen_wmt8k", str(tmp_path))
        assert reverse is source

    def test_cli_error(self, tmp_path):
        result = subprocess.run(
            [
                sys.executable,
                _SCRIPT,
                "--problem=image_imagenet",
                f"--data_dir={tmp_path / 'data'}",
                "--source=tfds",
                f"--tfds_data_dir={tmp_path / 'tfds'}",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert result.returncode == 1
        assert "tfds build imagenet2012:5.1.0 --manual_dir=" in result.stderr
        assert not os.path.exists(tmp_path / "data" / "image_imagenet-dev")


# --- Same examples, raw files vs TFDS: identical datagen output. ---

WMT_TRAIN = [
    ("Resumption of the session", "Wiederaufnahme der Sitzungsperiode"),
    ("  The house is small . ", "Das Haus ist klein ."),
    ("Only English", "   "),
    (
        "I declare resumed the session .",
        "Ich erkläre die Sitzung für eröffnet .",
    ),
]
WMT_DEV = [("Hello world .", "Hallo Welt ."), ("A cat .", "Eine Katze .")]


def _write_lines(path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


LIBRISPEECH_FOLDERS = {
    "train_clean100": "train-clean-100",
    "train_clean360": "train-clean-360",
    "train_other500": "train-other-500",
    "dev_clean": "dev-clean",
}


class TestSameOutputAsRawFiles:
    @pytest.mark.parametrize(
        "problem_name,lang,first_input",
        [
            ("translate_ende_wmt8k", "de", "Resumption of the session"),
            (
                "translate_deen_wmt8k",
                "de",
                "Wiederaufnahme der Sitzungsperiode",
            ),
            ("translate_enfr_wmt8k", "fr", "Resumption of the session"),
        ],
    )
    def test_translation(self, tmp_path, problem_name, lang, first_input):
        raw = tmp_path / "raw"
        prefix = f"europarl-v7.{lang}-en"
        train_en, train_xx = zip(*WMT_TRAIN)
        _write_lines(raw / "training" / f"{prefix}.en", train_en)
        _write_lines(raw / "training" / f"{prefix}.{lang}", train_xx)
        _write_lines(raw / "dev" / "newstest2013.en", [e for e, _ in WMT_DEV])
        _write_lines(
            raw / "dev" / f"newstest2013.{lang}", [x for _, x in WMT_DEV]
        )
        forward = tfds_sources.REVERSED.get(problem_name, problem_name)
        tfds_dir = str(tmp_path / "tfds")
        _write_metadata(_source(forward), tfds_dir)
        examples = {
            split: [{"en": e, lang: x} for e, x in pairs]
            for split, pairs in (("train", WMT_TRAIN), ("validation", WMT_DEV))
        }
        out_raw, out_tfds = str(tmp_path / "out_raw"), str(tmp_path / "out")
        raw_stats = _datagen(problem_name, out_raw, str(raw))
        with _serve(tfds_dir, examples):
            stats = _datagen(
                problem_name,
                out_tfds,
                str(tmp_path / "unused"),
                source="tfds",
                tfds_data_dir=tfds_dir,
            )
        _assert_same_files(out_raw, out_tfds)
        assert stats["train"].num_examples == 3  # The "   " pair dropped.
        assert stats["dev"].num_examples == raw_stats["dev"].num_examples == 2
        vocab = _vocabulary(out_tfds)
        first = _records(stats["train"].paths[0])[0]
        ids = first.features.feature["inputs"].int64_list.value
        assert vocab.decode(list(ids)) == first_input

    def test_imagenet_tfds_folders_and_tfrecords(self, tmp_path):
        names = tfds.builder("imagenet2012").info.features["label"].names
        raw = tmp_path / "raw"
        raw.mkdir()
        (raw / "imagenet_lsvrc_2015_synsets.txt").write_text(
            "\n".join(names) + "\n"
        )
        train = []  # (file name, bytes, wnid) in sorted path order.
        for k, wnid in enumerate(["n01440764", "n01443537", "n15075141"]):
            (raw / "train" / wnid).mkdir(parents=True)
            for i in range(2):
                data = _jpeg(10 * k + i, (6 + i, 5 + k))
                name = f"{wnid}_{i + 1}.JPEG"
                (raw / "train" / wnid / name).write_bytes(data)
                train.append((name, data, wnid))
        random.Random(image_imagenet.SHUFFLE_SEED).shuffle(train)
        val = []
        (raw / "val").mkdir()
        for i, wnid in enumerate(["n15075141", "n01751748", "n01440764"]):
            data = _jpeg(100 + i, (4, 7))
            name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
            (raw / "val" / name).write_bytes(data)
            val.append((name, data, wnid))
        (raw / "imagenet_2012_validation_synset_labels.txt").write_text(
            "".join(w + "\n" for _, _, w in val)
        )
        # TFDS examples as its builder writes them: the label is the wnid,
        # which TFDS's own ClassLabel turns into its index.
        examples = {
            split: [
                {"file_name": n, "image": d, "label": w} for n, d, w in items
            ]
            for split, items in (("train", train), ("validation", val))
        }
        # build_imagenet_data.py TFRecords: labels 1..1000.
        records = tmp_path / "records"
        records.mkdir()
        for prefix, items in (("train", train), ("validation", val)):
            path = str(records / f"{prefix}-00000-of-00001")
            with tf.io.TFRecordWriter(path) as writer:
                for _, data, wnid in items:
                    writer.write(_tf_example(data, names.index(wnid) + 1))
        tfds_dir = str(tmp_path / "tfds")
        _write_metadata(_source("image_imagenet"), tfds_dir)
        outs = [str(tmp_path / f"out_{k}") for k in ("raw", "rec", "tfds")]
        _datagen("image_imagenet", outs[0], str(raw))
        _datagen("image_imagenet", outs[1], str(records))
        with _serve(tfds_dir, examples):
            stats = _datagen(
                "image_imagenet",
                outs[2],
                "/unused",
                source="tfds",
                tfds_data_dir=tfds_dir,
            )
        _assert_same_files(outs[0], outs[2])
        _assert_same_files(outs[1], outs[2])
        dev = _records(stats["dev"].paths[0])
        labels = [
            e.features.feature["targets"].int64_list.value[0] for e in dev
        ]
        assert labels == [999, 65, 0]  # Sorted-wnid indices, from 0.
        image = dev[0].features.feature["inputs"].bytes_list.value[0]
        assert image == val[0][1]
        assert stats["train"].num_examples == 6

    def test_mscoco(self, tmp_path):
        raw = tmp_path / "raw"
        captions = {  # file -> captions, in annotation order.
            "COCO_train2014_000000000009.jpg": [
                "A  plate of food\n",
                " Some  vegetables on a plate. ",
            ],
            "COCO_train2014_000000000025.jpg": ["A giraffe eating."],
            "COCO_val2014_000000000042.jpg": ["A dog.", "A brown dog."],
            "COCO_val2014_000000000073.jpg": ["A motorcycle."],
            "COCO_val2014_000000000074.jpg": ["Two dogs ."],
        }
        images = {}
        for k, name in enumerate(captions):
            folder = raw / name.split("_")[1]
            folder.mkdir(parents=True, exist_ok=True)
            images[name] = _jpeg(k, (5, 6))
            (folder / name).write_bytes(images[name])
        (raw / "annotations").mkdir()
        for folder in ("train2014", "val2014"):
            names = [n for n in captions if folder in n]
            annotations = raw / "annotations" / f"captions_{folder}.json"
            annotations.write_text(
                json.dumps(
                    {
                        "images": [
                            {"id": i, "file_name": n}
                            for i, n in enumerate(names)
                        ],
                        "annotations": [
                            {"image_id": i, "id": 10 * i + j, "caption": c}
                            for i, n in enumerate(names)
                            for j, c in enumerate(captions[n])
                        ],
                    }
                )
            )

        # Karpathy's splits of val2014, for the raw files' test split.
        karpathy = [
            {"filepath": "val2014", "filename": n, "split": split}
            for n, split in zip(list(captions)[2:], ("val", "test", "restval"))
        ]
        (raw / "dataset_coco.json").write_text(json.dumps({"images": karpathy}))

        def tfds_example(name, image_id):
            return {
                "image": images[name],
                "image/filename": name,
                "image/id": image_id,
                "objects": [],
                "captions": [
                    {"id": 10 * image_id + j, "text": c}
                    for j, c in enumerate(captions[name])
                ],
            }

        names = list(captions)
        examples = {  # Karpathy splits: val2014 is val + test + restval.
            "train": [tfds_example(n, i) for i, n in enumerate(names[:2])],
            "val": [tfds_example(names[2], 0)],
            "test": [tfds_example(names[3], 1)],
            "restval": [tfds_example(names[4], 2)],
        }
        tfds_dir = str(tmp_path / "tfds")
        _write_metadata(_source("caption_mscoco8k"), tfds_dir)
        out_raw, out_tfds = str(tmp_path / "out_raw"), str(tmp_path / "out")
        _datagen("caption_mscoco8k", out_raw, str(raw))
        with _serve(tfds_dir, examples):
            stats = _datagen(
                "caption_mscoco8k",
                out_tfds,
                "/unused",
                source="tfds",
                tfds_data_dir=tfds_dir,
            )
        _assert_same_files(out_raw, out_tfds)
        assert stats["train"].num_examples == 3  # One per caption.
        assert stats["dev"].num_examples == 4
        assert stats["test"].num_examples == 1  # Karpathy's test image.
        vocab = _vocabulary(out_tfds)
        first = _records(stats["train"].paths[1])[0]  # Example 1.
        ids = list(first.features.feature["targets"].int64_list.value)
        assert vocab.decode(ids) == "Some vegetables on a plate."

    def test_librispeech(self, tmp_path):
        rng = np.random.RandomState(0)
        raw = tmp_path / "raw" / "LibriSpeech"
        utterances = {  # subset -> [(id, int16 speech, transcript)]
            "train_clean100": [
                ("19-198-0000", "NORTHANGER ABBEY"),
                ("19-198-0001", "THIS LITTLE WORK WAS FINISHED"),
            ],
            "train_clean360": [("14-208-0000", "CHAPTER ONE")],
            "train_other500": [],
            "dev_clean": [("84-121123-0000", "THIS LITTLE ABBEY")],
        }
        examples = {}
        for subset, utts in utterances.items():
            examples[subset] = []
            folder = LIBRISPEECH_FOLDERS[subset]
            lines = []
            for utt, text in utts:
                speaker, chapter, _ = utt.split("-")
                chapter_dir = raw / folder / speaker / chapter
                chapter_dir.mkdir(parents=True, exist_ok=True)
                speech = rng.randint(-20000, 20000, 1200).astype(np.int16)
                soundfile.write(
                    chapter_dir / f"{utt}.flac", speech, 16000, subtype="PCM_16"
                )
                lines.append(f"{utt} {text}")
                examples[subset].append(
                    {
                        "speech": speech,
                        "text": text,
                        "speaker_id": int(speaker),
                        "chapter_id": int(chapter),
                        "id": utt,
                    }
                )
            if lines:
                _write_lines(
                    chapter_dir / f"{speaker}-{chapter}.trans.txt", lines
                )
        assert sorted(os.listdir(raw)) == [
            "dev-clean",
            "train-clean-100",
            "train-clean-360",
        ]
        tfds_dir = str(tmp_path / "tfds")
        _write_metadata(_source("speech_librispeech8k"), tfds_dir)
        out_raw, out_tfds = str(tmp_path / "out_raw"), str(tmp_path / "out")
        _datagen("speech_librispeech8k", out_raw, str(raw.parent))
        with _serve(tfds_dir, examples):
            stats = _datagen(
                "speech_librispeech8k",
                out_tfds,
                "/unused",
                source="tfds",
                tfds_data_dir=tfds_dir,
            )
        _assert_same_files(out_raw, out_tfds)
        assert stats["train"].num_examples == 3
        dev = _records(stats["dev"].paths[0])[0].features.feature
        np.testing.assert_array_equal(
            np.array(dev["inputs"].float_list.value, np.float32),
            examples["dev_clean"][0]["speech"] / np.float32(32768),
        )
        vocab = _vocabulary(out_tfds)
        assert vocab.decode(list(dev["targets"].int64_list.value)) == (
            "this little abbey"
        )


def _vocabulary(data_dir: str) -> vocabulary.Vocabulary:
    return vocabulary.Vocabulary.load(
        os.path.join(data_dir, text_features.SHARED_VOCAB_FILE)
    )


def _tf_example(image: bytes, label: int) -> bytes:
    feature = {
        "image/encoded": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[image])
        ),
        "image/class/label": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[label])
        ),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_real_imagenet2012_build_from_manual_tars(tmp_path):
    """`tfds build imagenet2012` on tiny tars (offline), then datagen.

    TFDS stores the examples in its own shuffled order, so the records are
    compared as sorted lists (one shard per split).
    """
    names = tfds.builder("imagenet2012").info.features["label"].names
    raw, manual = tmp_path / "raw", tmp_path / "manual"
    manual.mkdir()
    class_tars = {}
    for k, wnid in enumerate(["n01440764", "n02105855", "n15075141"]):
        files = {
            f"{wnid}_{i}.JPEG": _jpeg(k * 7 + i, (5, 4 + i)) for i in (1, 2)
        }
        class_tars[f"{wnid}.tar"] = _tar_bytes(files)
        (raw / "train" / wnid).mkdir(parents=True)
        for name, data in files.items():
            (raw / "train" / wnid / name).write_bytes(data)
    (manual / "ILSVRC2012_img_train.tar").write_bytes(_tar_bytes(class_tars))
    # TFDS labels validation image i with line i of its validation_labels.
    val = {
        f"ILSVRC2012_val_{i:08d}.JPEG": _jpeg(50 + i, (6, 6)) for i in (1, 2)
    }
    (manual / "ILSVRC2012_img_val.tar").write_bytes(_tar_bytes(val))
    (raw / "val").mkdir()
    for name, data in val.items():
        (raw / "val" / name).write_bytes(data)
    (raw / "imagenet_lsvrc_2015_synsets.txt").write_text("\n".join(names))
    (raw / "imagenet_2012_validation_synset_labels.txt").write_text(
        "n01751748\nn09193705\n"  # TFDS's labels of val images 1 and 2.
    )
    tfds_dir = str(tmp_path / "tfds")
    builder = tfds.builder("imagenet2012:5.1.0", data_dir=tfds_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    kwargs = dict(num_shards=1, vocab_size=64, verbose=False)
    out_raw, out_tfds = str(tmp_path / "out_raw"), str(tmp_path / "out")
    datagen.generate_data(
        problem_names="image_imagenet",
        data_dir=out_raw,
        tmp_dir=str(raw),
        **kwargs,
    )
    result = datagen.generate_data(
        problem_names="image_imagenet",
        data_dir=out_tfds,
        tmp_dir="/unused",
        source="tfds",
        tfds_data_dir=tfds_dir,
        **kwargs,
    )["image_imagenet"]
    for split in ("train", "dev"):
        (path,) = result[split].paths
        other = os.path.join(out_raw, os.path.basename(path))
        a = sorted(r.numpy() for r in tf.data.TFRecordDataset(path))
        b = sorted(r.numpy() for r in tf.data.TFRecordDataset(other))
        assert a == b and len(a) == {"train": 6, "dev": 2}[split]
    dev = sorted(
        e.features.feature["targets"].int64_list.value[0]
        for e in _records(result["dev"].paths[0])
    )
    assert dev == [names.index("n01751748"), names.index("n09193705")]


class TestDatagenSource:
    def test_problem_without_builder_reads_its_raw_files(
        self, tmp_path, capsys
    ):
        with pytest.raises(problem_lib.MissingDataError) as error:
            _datagen(
                "parse_ptb_wsj8k",
                str(tmp_path / "out"),
                str(tmp_path / "raw"),
                source="tfds",
                tfds_data_dir=str(tmp_path / "tfds"),
            )
        # The raw-file generator's message, not a TFDS one.
        assert "tfds build" not in str(error.value)
        assert str(tmp_path / "raw") in str(error.value)
        assert "parse_ptb_wsj8k has no TFDS source" in capsys.readouterr().err

    def test_unknown_source(self, tmp_path):
        with pytest.raises(ValueError, match="'raw' or 'tfds', not 'hub'"):
            _datagen(
                "image_imagenet", str(tmp_path), str(tmp_path), source="hub"
            )


class _FakeBuilder:
    """A TFDS builder stand-in: prepared only by `download_and_prepare`."""

    def __init__(self, full_name: str, data_dir: str | None, fail=None):
        self.full_name = full_name
        self.data_dir = data_dir
        self.prepared = False
        self.fail = fail
        self.download_configs = []
        self.info = types.SimpleNamespace(
            splits={"train": None, "validation": None, "test": None},
            features={},
        )

    def is_prepared(self) -> bool:
        return self.prepared

    def download_and_prepare(self, download_config=None):
        self.download_configs.append(download_config)
        if self.fail:
            raise self.fail
        self.prepared = True

    def as_dataset(self, split, **kwargs):
        del kwargs
        pairs = {
            "train": [("A cat .", "Eine Katze .")],
            "validation": [("A dog .", "Ein Hund .")],
            "test": [("A cat .", "Eine Katze ."), ("No .", "Nein .")],
        }[split]
        en, de = ([p[i] for p in pairs] for i in (0, 1))
        return tf.data.Dataset.from_tensor_slices({"en": en, "de": de})


@pytest.fixture()
def fake_tfds(monkeypatch):
    """`tfds.builder` -> one `_FakeBuilder` per name (no network, no data)."""
    builders: dict[str, _FakeBuilder] = {}
    failures: dict[str, Exception] = {}

    def builder(name, data_dir=None):
        if name not in builders:
            builders[name] = _FakeBuilder(name, data_dir, failures.get(name))
        return builders[name]

    monkeypatch.setattr(tfds_sources.tfds, "builder", builder)
    return builders, failures


class TestDownloadAndPrepare:
    def test_without_download_nothing_is_prepared(self, tmp_path, fake_tfds):
        builders, _ = fake_tfds
        with pytest.raises(problem_lib.MissingDataError) as error:
            tfds_sources.with_tfds_source(
                registry.get_problem("translate_ende_wmt8k"), str(tmp_path)
            )
        assert "tfds build wmt_t2t_translate/de-en:1.0.0" in str(error.value)
        assert "--download" in str(error.value)
        assert all(not b.download_configs for b in builders.values())

    def test_download_prepares_the_first_candidate(self, tmp_path, fake_tfds):
        builders, _ = fake_tfds
        out = str(tmp_path / "out")
        stats = datagen.generate_data(
            problem_names="translate_deen_wmt8k",
            data_dir=out,
            tmp_dir=str(tmp_path / "unused"),
            vocab_size=64,
            verbose=False,
            source="tfds",
            tfds_data_dir=str(tmp_path / "tfds"),
            download=True,
            tfds_manual_dir=str(tmp_path / "manual"),
        )["translate_deen_wmt8k"]
        first = builders["wmt_t2t_translate/de-en:1.0.0"]
        (config,) = first.download_configs
        assert str(config.manual_dir) == str(tmp_path / "manual")
        assert not builders["wmt14_translate/de-en:1.0.0"].download_configs
        # The prepared dataset's test split (newstest2014) is written too.
        assert {s: stats[s].num_examples for s in stats} == {
            "train": 1,
            "dev": 1,
            "test": 2,
        }
        (test,) = _records(stats["test"].paths[0])[:1]
        ids = list(test.features.feature["inputs"].int64_list.value)
        assert _vocabulary(out).decode(ids) == "Eine Katze ."  # DE -> EN.

    def test_failure_is_a_missing_data_error(self, tmp_path, fake_tfds):
        _, failures = fake_tfds
        failures["imagenet2012:5.1.0"] = AssertionError(
            "Manual directory /m does not exist or is empty."
        )
        with pytest.raises(problem_lib.MissingDataError) as error:
            tfds_sources.with_tfds_source(
                registry.get_problem("image_imagenet"),
                str(tmp_path),
                download=True,
            )
        message = str(error.value)
        assert "TFDS could not prepare imagenet2012:5.1.0" in message
        assert "Manual directory /m does not exist" in message
        assert "ILSVRC2012_img_train.tar" in message

    def test_other_errors_are_not_hidden(self, tmp_path, fake_tfds):
        _, failures = fake_tfds
        failures["librispeech/default:2.1.1"] = KeyError("a bug")
        with pytest.raises(KeyError, match="a bug"):
            tfds_sources.with_tfds_source(
                registry.get_problem("speech_librispeech8k"),
                str(tmp_path),
                download=True,
            )
