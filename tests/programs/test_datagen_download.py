"""datagen's download path, end to end, from a local mirror (no network).

A local HTTP server (`tests/local_http.py`) plays the mirror: it holds tiny
archives in the real release formats under the origin paths of the public
files (a LibriSpeech `*.tar.gz` of `LibriSpeech/<subset>/<spk>/<chapter>/`
with FLAC files and a `trans.txt`; WMT `*.tgz` with the news-commentary
texts and `dev.tgz`'s newstest2013/2014 SGML; the COCO annotations zip and
an image zip). The problems are the registered paper problems with their
`RemoteFile`s' sizes and checksums replaced by the tiny files' (real
checksums would need the real files); everything else (URLs, file names,
members to unpack, what counts as present, generators) is theirs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.parse
import zipfile

import numpy as np
import pytest
import soundfile
from PIL import Image

import problems  # noqa: F401  (registers every problem)
from problems import problem as problem_lib
from problems import registry
from programs import datagen
from t2t_multimodel.data import download, mirrors
from tests import local_http
from tests.problems.paper.test_translate_wmt import REF_DE_SGM, SRC_SGM

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
_SCRIPT = os.path.join(_ROOT, "bin", "t2t-mm-datagen")
MIRROR_PATH = "/mirror"


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _flac(seconds: float, freq: float) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, 16000, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (9, 7), color).save(buffer, format="JPEG")
    return buffer.getvalue()


def _librispeech_subset(subset: str, utterances: dict[str, str]) -> bytes:
    files = {}
    for utt, text in utterances.items():
        speaker, chapter, _ = utt.split("-")
        folder = f"LibriSpeech/{subset}/{speaker}/{chapter}"
        files[f"{folder}/{utt}.flac"] = _flac(0.05 * len(text.split()), 300)
        trans = f"{folder}/{speaker}-{chapter}.trans.txt"
        files[trans] = files.get(trans, b"") + f"{utt} {text}\n".encode()
    files["LibriSpeech/README.TXT"] = b"LibriSpeech ASR corpus\n"
    return _tar(files)


NEWSTEST2014_EN = SRC_SGM.replace("newstest2013", "newstest2014")
NEWSTEST2014_DE = REF_DE_SGM.replace("newstest2013", "newstest2014")

COCO_TRAIN_JSON = {
    "images": [{"id": 9, "file_name": "COCO_train2014_000000000009.jpg"}],
    "annotations": [
        {"image_id": 9, "id": 1, "caption": "A plate of food."},
        {"image_id": 9, "id": 2, "caption": "Some vegetables."},
    ],
}
COCO_VAL_JSON = {
    "images": [{"id": 42, "file_name": "COCO_val2014_000000000042.jpg"}],
    "annotations": [{"image_id": 42, "id": 3, "caption": "A dog."}],
}

# The served archives, by file name in tmp_dir.
ARCHIVES = {
    "train-clean-100.tar.gz": _librispeech_subset(
        "train-clean-100",
        {"19-198-0000": "NORTHANGER ABBEY", "19-198-0001": "THE END"},
    ),
    "dev-clean.tar.gz": _librispeech_subset(
        "dev-clean", {"84-121123-0000": "GO DO YOU HEAR"}
    ),
    "test-clean.tar.gz": _librispeech_subset(
        "test-clean", {"1089-134686-0000": "HE HOPED THERE WOULD BE STEW"}
    ),
    "training-parallel-nc-v11.tgz": _tar(
        {
            "training-parallel-nc-v11/news-commentary-v11.de-en.en": (
                b"Hello world.\nGood morning.\n"
            ),
            "training-parallel-nc-v11/news-commentary-v11.de-en.de": (
                "Hallo Welt.\nSchönen Morgen.\n".encode()
            ),
        }
    ),
    "dev.tgz": _tar(
        {
            "dev/newstest2013-src.en.sgm": SRC_SGM.encode(),
            "dev/newstest2013-ref.de.sgm": REF_DE_SGM.encode(),
            "dev/newstest2014-deen-src.en.sgm": NEWSTEST2014_EN.encode(),
            "dev/newstest2014-deen-ref.de.sgm": NEWSTEST2014_DE.encode(),
        }
    ),
    "annotations_trainval2014.zip": _zip(
        {
            "annotations/captions_train2014.json": json.dumps(COCO_TRAIN_JSON),
            "annotations/captions_val2014.json": json.dumps(COCO_VAL_JSON),
            "annotations/instances_train2014.json": "{}",  # Not unpacked.
        }
    ),
    "train2014.zip": _zip(
        {"train2014/COCO_train2014_000000000009.jpg": _jpeg((200, 0, 0))}
    ),
    "val2014.zip": _zip(
        {"val2014/COCO_val2014_000000000042.jpg": _jpeg((0, 0, 200))}
    ),
}


def _with_test_checksums(name: str, suffix: str):
    """The registered problem, renamed, with the tiny files' checksums.

    Its raw files not served here (the other LibriSpeech and WMT corpora)
    are dropped; the generators read whichever corpora are present.
    """
    problem = registry.get_problem(name)
    files = []
    for raw in problem.raw_files:
        data = ARCHIVES.get(raw.filename)
        if data is None:
            continue
        remote = dataclasses.replace(
            raw.remote,
            size=len(data),
            md5=hashlib.md5(data).hexdigest(),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        files.append(dataclasses.replace(raw, remote=remote))
    return dataclasses.replace(
        problem, name=f"{name}_{suffix}", raw_files=tuple(files)
    )


def _mirror_files(base: str, problem_list) -> dict[str, bytes]:
    """URL path on the mirror -> bytes, for every raw file of the problems."""
    files = {}
    for problem in problem_list:
        for raw in problem.raw_files:
            url = mirrors.mirror_url(raw.remote.url, base + MIRROR_PATH)
            files[urllib.parse.urlsplit(url).path] = ARCHIVES[raw.filename]
    return files


@pytest.fixture()
def paper_problems(request):
    suffix = request.node.name.replace("[", "_").strip("]")
    return [
        _with_test_checksums("speech_librispeech8k", suffix),
        _with_test_checksums("translate_ende_wmt8k", suffix),
        _with_test_checksums("caption_mscoco8k", suffix),
    ]


def _generate(problem_list, tmp_path, **kwargs):
    return datagen.generate_data(
        problem_names=problem_list,
        data_dir=str(tmp_path / "data"),
        tmp_dir=str(tmp_path / "raw"),
        num_shards=1,
        vocab_size=64,
        verbose=False,
        download=True,
        **kwargs,
    )


class TestDownloadPath:
    def test_mirror_download_extract_generate_then_offline(
        self, tmp_path, paper_problems
    ):
        with local_http.serve({}) as server:
            server.files = _mirror_files(server.base, paper_problems)
            # One transfer is cut after 100 kB of the archive: it resumes.
            big = max(server.files, key=lambda k: len(server.files[k]))
            server.cut = len(server.files[big]) // 3
            server.cut_once.add(big)
            results = _generate(
                paper_problems, tmp_path, mirror=server.base + MIRROR_PATH
            )
            requested = [path for path, _ in server.requests]
            ranges = [h.get("Range") for p, h in server.requests if p == big]
        assert sorted(requested) == sorted([*server.files, big])
        assert ranges == [None, f"bytes={len(server.files[big]) // 3}-"]
        raw = tmp_path / "raw"
        for name, data in ARCHIVES.items():
            assert (raw / name).read_bytes() == data, name
        assert not list(raw.glob("*.partial"))
        # LibriSpeech unpacked; COCO's captions unpacked, not the rest.
        assert (raw / "LibriSpeech" / "test-clean" / "1089").is_dir()
        assert sorted(os.listdir(raw / "annotations")) == [
            "captions_train2014.json",
            "captions_val2014.json",
        ]
        assert not (raw / "train2014").exists()  # Read from the zip.
        speech, wmt, coco = (results[p.name] for p in paper_problems)
        assert {s: speech[s].num_examples for s in speech} == {
            "train": 2,
            "dev": 1,
            "test": 1,
        }
        # newstest2013 and newstest2014 (3 aligned segments each).
        assert {s: wmt[s].num_examples for s in wmt} == {
            "train": 2,
            "dev": 3,
            "test": 3,
        }
        assert {s: coco[s].num_examples for s in coco} == {
            "train": 2,
            "dev": 1,
            "test": 1,  # val2014: no Karpathy JSON given.
        }
        data = os.listdir(tmp_path / "data")
        assert f"{paper_problems[1].name}-test-00000-of-00001" in data

        # Offline rerun: every file is present, the server is gone.
        again = _generate(
            paper_problems, tmp_path, mirror="http://127.0.0.1:9/gone"
        )
        assert again[paper_problems[1].name]["test"].shards_written == ()

    def test_unpacked_content_counts_as_present(self, tmp_path):
        problem = _with_test_checksums("speech_librispeech8k", "unpacked")
        raw = tmp_path / "raw"
        for raw_file in problem.raw_files:  # Unpacked, archives deleted.
            with tarfile.open(
                fileobj=io.BytesIO(ARCHIVES[raw_file.filename])
            ) as tar:
                tar.extractall(raw, filter="data")
        results = _generate(
            [problem], tmp_path, mirror="http://127.0.0.1:9/unreachable"
        )
        assert results[problem.name]["test"].num_examples == 1
        assert not list(raw.glob("*.tar.gz"))

    def test_checksum_failure_is_clear_and_leaves_nothing(self, tmp_path):
        problem = _with_test_checksums("translate_ende_wmt8k", "bad")
        nc = problem.raw_files[0]
        wrong = dataclasses.replace(nc.remote, md5="0" * 32, sha256=None)
        problem = dataclasses.replace(
            problem,
            raw_files=(dataclasses.replace(nc, remote=wrong),),
        )
        with local_http.serve({}) as server:
            server.files = _mirror_files(server.base, [problem])
            with pytest.raises(download.ChecksumMismatchError) as error:
                _generate([problem], tmp_path, mirror=server.base + "/mirror")
        message = str(error.value)
        assert f"{server.base}/mirror/wmt16/translation-task/" in message
        assert f"md5: expected {'0' * 32}, got " in message
        assert "it was deleted" in message
        assert os.listdir(tmp_path / "raw") == []  # No final, no partial.
        assert not (tmp_path / "data" / "vocab.shared.8192.model").exists()

    def test_without_download_nothing_is_fetched(self, tmp_path):
        problem = _with_test_checksums("translate_ende_wmt8k", "nodl")
        with pytest.raises(problem_lib.MissingDataError):
            datagen.generate_data(
                problem_names=[problem],
                data_dir=str(tmp_path / "data"),
                tmp_dir=str(tmp_path / "raw"),
                vocab_size=64,
                verbose=False,
                mirror="http://127.0.0.1:9/unused",
            )
        assert os.listdir(tmp_path / "raw") == []

    def test_manual_corpus_stops_before_any_download(self, tmp_path):
        ende = _with_test_checksums("translate_ende_wmt8k", "manual")
        ptb = registry.get_problem("parse_ptb_wsj8k")
        with pytest.raises(problem_lib.MissingDataError) as error:
            _generate([ende, ptb], tmp_path, mirror="http://127.0.0.1:9/x")
        assert "catalog.ldc.upenn.edu/LDC99T42" in str(error.value)
        assert os.listdir(tmp_path / "raw") == []


def _run_cli(*args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, _SCRIPT, *args],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": _ROOT,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **(env or {}),
        },
        timeout=300,
        check=False,
    )


class TestCommandLine:
    """The real program and registered problems, real published sizes."""

    @pytest.mark.parametrize("how", ["flag", "environment"])
    def test_mirror_and_published_size_check(self, tmp_path, how):
        # The mirror holds a file that is not the published one: the
        # published size (75,178,032 bytes) refuses it.
        path = "/m/wmt16/translation-task/training-parallel-nc-v11.tgz"
        with local_http.serve({path: ARCHIVES[path.rsplit("/", 1)[1]]}) as s:
            mirror = f"{s.base}/m"
            flag = [f"--mirror={mirror}"] if how == "flag" else []
            env = {mirrors.MIRROR_ENV: mirror} if how == "environment" else {}
            done = _run_cli(
                "--problem=translate_ende_wmt8k",
                f"--data_dir={tmp_path / 'data'}",
                f"--tmp_dir={tmp_path / 'raw'}",
                *flag,
                env=env,
            )
            requested = [p for p, _ in s.requests]
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert f"{s.base}{path} has " in done.stderr
        assert "expected 75,178,032" in done.stderr
        assert requested == [path]
        assert os.listdir(tmp_path / "raw") == []

    def test_list_problems_verbose(self):
        done = _run_cli("--list_problems", "--verbose")
        assert done.returncode == 0, done.stderr
        lines = {line.split()[0]: line for line in done.stdout.splitlines()}
        assert "splits: train, dev, test (optional)" in lines["parse_ptb_wsj8k"]
        assert "by hand" in lines["parse_ptb_wsj8k"]
        assert "splits: train, dev;" in lines["image_imagenet"]
        assert "download: 4 files, 1.7 GB" in lines["translate_deen_wmt8k"]
        assert "download: 5 files, 60.7 GB" in lines["speech_librispeech8k"]
        assert (
            "mixture: caption_mscoco8k 1, translate_ende_wmt8k 1,"
            in (lines["multimodel_paper_8"])
        )
