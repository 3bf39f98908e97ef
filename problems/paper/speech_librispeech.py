"""Speech recognition: LibriSpeech, and any WAV + transcript manifest.

The paper trained on the WSJ speech corpus (task 1), which is not public and
for which T2T never had a generator; LibriSpeech is the public stand-in
(SPEC.md section 3). Examples are a float32 mono waveform at 16 kHz in
[-1, 1] and the transcript; the preprocessor turns the waveform into 80-bin
log-mel frames (the paper's spectral audio input, AUDIO_SPECTRAL space), and
the targets use the shared 8k vocabulary (EN_TOK space).

Raw formats:
- `speech_librispeech8k`: the LibriSpeech release (openslr.org/12) unpacked
  in `tmp_dir`: `LibriSpeech/<subset>/<speaker>/<chapter>/
  <speaker>-<chapter>-<utt>.flac` with one `<speaker>-<chapter>.trans.txt`
  per chapter, lines `<speaker>-<chapter>-<utt> TRANSCRIPT` in upper case.
  Train reads whichever of train-clean-100, train-clean-360 and
  train-other-500 are present (at least one); dev reads dev-clean; test
  (optional) reads test-clean, the set WERs are usually reported on. The
  transcripts are **lower-cased** (the shared vocabulary is learned from
  mostly lower-case WMT text; WER is case-blind on them either way).
  Utterances listed without a `.flac` are skipped with a count.
  t2t-mm-datagen downloads the five `*.tar.gz` (T2T's 960 h of training
  speech, dev-clean and test-clean; `raw_files`, with OpenSLR's MD5s) when
  neither the archive nor its unpacked folder is in `tmp_dir`, and unpacks
  them there.
- `speech_wav_manifest8k`: `tmp_dir/wav_manifest_train.tsv` and
  `wav_manifest_dev.tsv`, lines `path<TAB>transcript` (paths relative to
  `tmp_dir`, or absolute; blank lines skipped; transcripts kept as written).
  Audio is anything soundfile reads (WAV 16-bit PCM at any sample rate, mono
  or stereo, but also FLAC, ...).
Audio is read with soundfile, channels are averaged, and other sample rates
are resampled to 16 kHz with `t2t_multimodel.data.preprocessors.resample`
(a box low-pass of width round(rate/16000) when downsampling, then linear
interpolation; `floor(S * 16000 / rate)` samples out), the same function the
serving graph applies to WAV bytes, so training and serving audio match.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator

import numpy as np
import soundfile
import tensorflow as tf

from problems import problem as problem_lib
from problems import registry, text_features
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors, public_corpora, raw_files
from t2t_multimodel.modalities import specs as modality_specs

_LOG = logging.getLogger(__name__)

SAMPLE_RATE = preprocessors.SAMPLE_RATE
LIBRISPEECH_URL = "https://www.openslr.org/12"
TRAIN_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500")
DEV_SUBSETS = ("dev-clean",)
TEST_SUBSETS = ("test-clean",)
MANIFEST = "wav_manifest_{split}.tsv"


def read_audio(path: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Reads an audio file as a float32 mono waveform at `sample_rate`.

    Args:
      path: a file soundfile reads (WAV, FLAC, ...).
      sample_rate: output rate in Hz.

    Returns:
      float32 `[S']` in [-1, 1]; channels averaged; resampled with
      `preprocessors.resample` when the file's rate differs.
    """
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    waveform = audio.mean(axis=1)  # [S, C] -> [S]
    if rate != sample_rate:
        waveform = preprocessors.resample(waveform, rate, sample_rate).numpy()
    return waveform.astype(np.float32)


def _subset_dirs(tmp_dir: str, subsets: tuple[str, ...]) -> list[str]:
    dirs = []
    for subset in subsets:
        for root in (os.path.join(tmp_dir, "LibriSpeech"), tmp_dir):
            if os.path.isdir(os.path.join(root, subset)):
                dirs.append(os.path.join(root, subset))
                break
    return dirs


def read_librispeech(subset_dir: str) -> Iterator[problem_lib.Example]:
    """Yields `{"inputs": waveform, "targets": transcript}` of one subset.

    Chapters are read in sorted path order and utterances in their
    `.trans.txt` order; transcripts are lower-cased.
    """
    pattern = os.path.join(subset_dir, "*", "*", "*.trans.txt")
    missing = 0
    for trans_path in sorted(glob.glob(pattern)):
        chapter_dir = os.path.dirname(trans_path)
        with open(trans_path, encoding="utf-8") as f:
            lines = [line.split(maxsplit=1) for line in f if line.strip()]
        for utt_id, *text in lines:
            audio_path = os.path.join(chapter_dir, utt_id + ".flac")
            if not os.path.isfile(audio_path):
                missing += 1
                continue
            yield {
                "inputs": read_audio(audio_path),
                "targets": " ".join(text).strip().lower(),
            }
    if missing:
        _LOG.warning(
            "%s: %d utterances without .flac skipped", subset_dir, missing
        )


def _librispeech_generator(subsets: tuple[str, ...]) -> problem_lib.Generator:
    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        dirs = _subset_dirs(tmp_dir, subsets)
        if not dirs:
            raise problem_lib.MissingDataError(
                f"none of {', '.join(subsets)} found in {tmp_dir}.\n"
                f"{LIBRISPEECH_HELP}"
            )
        for subset_dir in dirs:
            yield from read_librispeech(subset_dir)

    return generate


def read_manifest(tmp_dir: str, split: str) -> Iterator[problem_lib.Example]:
    """Yields the examples listed in `tmp_dir/wav_manifest_<split>.tsv`."""
    path = os.path.join(tmp_dir, MANIFEST.format(split=split))
    if not os.path.isfile(path):
        raise problem_lib.MissingDataError(
            f"{path} not found.\n{MANIFEST_HELP}"
        )
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n") for line in f if line.strip()]
    for number, row in enumerate(rows, 1):
        audio_path, sep, transcript = row.partition("\t")
        if not sep:
            raise ValueError(f"{path}:{number}: expected `path<TAB>transcript`")
        yield {
            "inputs": read_audio(os.path.join(tmp_dir, audio_path)),
            "targets": transcript.strip(),
        }


def _manifest_generator(split: str) -> problem_lib.Generator:
    return lambda tmp_dir: read_manifest(tmp_dir, split)


def _librispeech_raw_files() -> tuple[raw_files.RawFile, ...]:
    """The subsets' archives; each unpacks to `LibriSpeech/<subset>/`."""
    archives = (
        public_corpora.LIBRISPEECH_TRAIN_CLEAN_100,
        public_corpora.LIBRISPEECH_TRAIN_CLEAN_360,
        public_corpora.LIBRISPEECH_TRAIN_OTHER_500,
        public_corpora.LIBRISPEECH_DEV_CLEAN,
        public_corpora.LIBRISPEECH_TEST_CLEAN,
    )
    files = []
    for remote in archives:
        subset = remote.filename.removesuffix(".tar.gz")
        # The folders `_subset_dirs` reads (under LibriSpeech/ or not).
        provides = ((os.path.join("LibriSpeech", subset), subset),)
        files.append(
            raw_files.RawFile(
                remote,
                extract=True,
                members=("LibriSpeech/",),
                provides=provides,
            )
        )
    return tuple(files)


LIBRISPEECH_HELP = (
    f"Download LibriSpeech from {LIBRISPEECH_URL} (train-clean-100.tar.gz, "
    "train-clean-360.tar.gz, train-other-500.tar.gz, dev-clean.tar.gz) and "
    "unpack them in tmp_dir, giving `<tmp_dir>/LibriSpeech/<subset>/"
    "<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac` and "
    "`<speaker>-<chapter>.trans.txt`. Train uses the train-* subsets "
    "present (at least one), dev uses dev-clean, test (optional) uses "
    "test-clean.tar.gz."
)
MANIFEST_HELP = (
    "Write `<tmp_dir>/wav_manifest_train.tsv` and "
    "`<tmp_dir>/wav_manifest_dev.tsv`, one utterance a line: "
    "`path<TAB>transcript`, paths relative to tmp_dir; the audio is WAV "
    "(16-bit PCM, any sample rate, mono or stereo) or any format soundfile "
    "reads."
)

_AUDIO = features_lib.Feature(
    tf.float32, (None,), modality=modality_specs.AUDIO_SPECTRAL
)


def speech_problem(
    name: str,
    generators: dict[str, problem_lib.Generator],
    raw_files_help: str,
    num_shards: int,
    files: tuple[raw_files.RawFile, ...] = (),
) -> problem_lib.Problem:
    """A waveform-to-text problem with the log-mel preprocessor."""
    return problem_lib.Problem(
        name=name,
        generators=generators,
        features={"inputs": _AUDIO, "targets": text_features.TEXT},
        preprocessors=(preprocessors.log_mel_feature("inputs"),),
        metrics=("wer",),
        input_space_id=features_lib.SpaceID.AUDIO_SPECTRAL,
        target_space_id=features_lib.SpaceID.EN_TOK,
        raw_files_help=raw_files_help,
        num_shards=num_shards,
        raw_files=files,
    )


SPEECH_LIBRISPEECH8K = registry.register(
    speech_problem(
        "speech_librispeech8k",
        {
            problem_lib.TRAIN: _librispeech_generator(TRAIN_SUBSETS),
            problem_lib.DEV: _librispeech_generator(DEV_SUBSETS),
            problem_lib.TEST: _librispeech_generator(TEST_SUBSETS),
        },
        LIBRISPEECH_HELP,
        num_shards=100,
        files=_librispeech_raw_files(),
    )
)
SPEECH_WAV_MANIFEST8K = registry.register(
    speech_problem(
        "speech_wav_manifest8k",
        {
            split: _manifest_generator(split)
            for split in (problem_lib.TRAIN, problem_lib.DEV)
        },
        MANIFEST_HELP,
        num_shards=10,
    )
)
