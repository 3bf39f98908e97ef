"""TensorFlow Datasets (TFDS) as a source of the paper problems' raw examples.

An alternative to the raw files (`t2t-mm-datagen --source=tfds`): each paper
problem whose corpus has a TFDS builder reads its raw examples from the
prepared TFDS dataset instead of `tmp_dir`, mapped to exactly the types its
raw-file generators yield (`str` text, encoded image bytes as stored, float32
16 kHz waveforms, `int` labels), so the vocabulary, the features and the
TFRecords written from them are the same. `SOURCES` is the one place that
says, per problem, which builder, config and version it maps to, which TFDS
splits make its train and dev splits, and how the fields map:

- translate_ende_wmt8k: `wmt_t2t_translate/de-en:1.0.0` (T2T's corpus:
  europarl v7, commoncrawl, news-commentary v13; the raw files use v11), or
  else `wmt14_translate/de-en:1.0.0` (news-commentary v9); train = `train`,
  dev = `validation` (newstest2013); inputs = `en`, targets = `de`.
- translate_enfr_wmt8k: `wmt14_translate/fr-en:1.0.0` (europarl v7,
  commoncrawl, UN 2000, news-commentary v9, giga-fren: the raw corpora);
  inputs = `en`, targets = `fr`.
- translate_deen_wmt8k / translate_fren_wmt8k: `problem.reverse` of the two
  above (`REVERSED`), the same swap as the raw-file problems.
  Text is stripped and pairs with an empty side are dropped, as
  `translate_wmt.read_parallel_lines` does.
- image_imagenet: `imagenet2012:5.1.0`, train = `train`, dev =
  `validation`; inputs = `image` read undecoded (the JPEG bytes TFDS
  stored), targets = `label`. **TFDS labels are already 0-based in sorted
  wnid order** (its `labels.txt`), the problem's convention, so the offset
  is 0 (`IMAGENET_TFDS_LABEL_OFFSET`); build_imagenet_data.py's TFRecords are
  1-based (`image_imagenet.TFRECORD_LABEL_OFFSET`). TFDS converted the 22
  CMYK train JPEGs and the one PNG to RGB JPEG; the raw files keep them.
- caption_mscoco8k: `coco_captions/2014:1.1.0` (Karpathy splits of COCO
  2014): train = `train` (= train2014), dev = `val+test+restval` (= all of
  val2014, the raw problem's dev); one example per caption, in Karpathy's
  order, whitespace-collapsed as `caption_mscoco.read_captions` does.
- speech_librispeech8k: `librispeech/default:2.1.1`, train =
  `train_clean100+train_clean360+train_other500`, dev = `dev_clean`;
  `speech` int16 at 16 kHz -> float32 / 32768 (what soundfile gives for the
  16-bit FLAC files), `text` stripped and lower-cased as
  `speech_librispeech.read_librispeech` does.
- parse_ptb_wsj8k: the Penn Treebank WSJ (LDC99T42) has no TFDS builder
  (`NO_TFDS_BUILDER`): it always reads its raw files.

Test splits (`optional_splits`, used when the prepared dataset has them):
newstest2014 (`test`) for the WMT builders, `test_clean` for LibriSpeech,
Karpathy's `test` for COCO; imagenet2012's `test` has no labels and is not
used.

Examples come in TFDS's stored order (shards read one after the other), not
the raw files' order. By default nothing is downloaded: an unprepared
dataset raises `MissingDataError` with the `tfds build` command to run.
With `download=True` (`t2t-mm-datagen --source=tfds --download`) the first
candidate builder prepares itself with TFDS's own `download_and_prepare`
(TFDS downloads, verifies and generates; ImageNet still needs its archives
in `manual_dir`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from problems import problem as problem_lib
from problems import registry
from t2t_multimodel.data import preprocessors

_LOG = logging.getLogger(__name__)

ToExamples = Callable[[Mapping[str, Any]], Iterator[problem_lib.Example]]

IMAGENET_NUM_CLASSES = 1000
# TFDS's ClassLabel numbers the sorted wnids from 0, as the problem does.
IMAGENET_TFDS_LABEL_OFFSET = 0
INT16_SCALE = 32768.0  # soundfile's float scale for 16-bit PCM.
SAMPLE_RATE = preprocessors.SAMPLE_RATE  # The raw readers' rate (16 kHz).


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """Where one problem's raw examples live in TFDS, and how they map.

    Attributes:
      builder: TFDS builder name (`imagenet2012`).
      config: builder config (`de-en`), or None for builders without one.
      version: the prepared version the mapping was written for.
      splits: problem split -> TFDS split (`"a+b"` concatenates splits).
      to_examples: one TFDS example as `tfds.as_numpy` yields it -> the
        problem's raw examples (zero, one or several).
      undecoded: features read as stored (encoded image bytes).
      manual_files: archives TFDS cannot download, put in `--manual_dir`.
      build_notes: anything else `tfds build` needs (URLs, packages).
      optional_splits: problem split -> TFDS split, used only when the
        prepared dataset has it (the test splits).
    """

    builder: str
    config: str | None
    version: str
    splits: Mapping[str, str]
    to_examples: ToExamples
    undecoded: tuple[str, ...] = ()
    manual_files: tuple[str, ...] = ()
    build_notes: str = ""
    optional_splits: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def available_splits(self, builder: Any) -> dict[str, str]:
        """problem split -> TFDS split of what the prepared `builder` has."""
        have = set(builder.info.splits.keys())
        optional = {
            split: name
            for split, name in self.optional_splits.items()
            if all(s in have for s in _split_names(name))
        }
        return {**self.splits, **optional}

    @property
    def full_name(self) -> str:
        """`name/config:version`, as `tfds.builder` and `tfds build` take it."""
        config = f"/{self.config}" if self.config else ""
        return f"{self.builder}{config}:{self.version}"

    def build_command(self, data_dir: str | None) -> str:
        """The `tfds build` command that prepares this dataset."""
        command = f"tfds build {self.full_name}"
        if self.manual_files:
            command += " --manual_dir=<dir holding the archives>"
        return command + f" --data_dir={data_dir or '<TFDS data_dir>'}"

    def help(self, data_dir: str | None) -> str:
        """How to prepare the dataset, for a `MissingDataError`."""
        lines = [f"  {self.build_command(data_dir)}"]
        if self.manual_files:
            lines.append(
                "  with these downloaded by hand into --manual_dir: "
                + ", ".join(self.manual_files)
            )
        if self.build_notes:
            lines.append(f"  {self.build_notes}")
        return "\n".join(lines)


def _text(value: bytes) -> str:
    return value.decode("utf-8")


def translation_examples(language: str) -> ToExamples:
    """English -> `language` pairs; stripped, empty sides dropped."""

    def to_examples(example: Mapping[str, Any]) -> Iterator[dict]:
        source = _text(example["en"]).strip()
        target = _text(example[language]).strip()
        if source and target:  # As translate_wmt.read_parallel_lines.
            yield {"inputs": source, "targets": target}

    return to_examples


def imagenet_examples(example: Mapping[str, Any]) -> Iterator[dict]:
    """The stored JPEG bytes and the 0-based sorted-wnid label."""
    label = int(example["label"]) + IMAGENET_TFDS_LABEL_OFFSET
    if not 0 <= label < IMAGENET_NUM_CLASSES:  # The test split has -1.
        raise ValueError(
            f"imagenet2012 label {label} is outside 0.."
            f"{IMAGENET_NUM_CLASSES - 1} ({_text(example['file_name'])})"
        )
    yield {"inputs": bytes(example["image"]), "targets": label}


def coco_caption_examples(example: Mapping[str, Any]) -> Iterator[dict]:
    """One (image bytes, caption) example per caption of the image."""
    image = bytes(example["image"])
    for text in example["captions"]["text"]:
        # Whitespace collapsed as caption_mscoco.read_captions does.
        caption = " ".join(_text(text).split())
        if caption:
            yield {"inputs": image, "targets": caption}


def librispeech_examples(example: Mapping[str, Any]) -> Iterator[dict]:
    """The float32 waveform in [-1, 1) and the lower-cased transcript."""
    speech = np.asarray(example["speech"])
    if speech.dtype != np.int16:
        raise TypeError(f"librispeech speech is {speech.dtype}, not int16")
    # x / 2**15 is exact in float32: the values soundfile reads from FLAC.
    waveform = speech.astype(np.float32) / np.float32(INT16_SCALE)
    # Lower-cased as speech_librispeech.read_librispeech does.
    yield {
        "inputs": waveform,
        "targets": _text(example["text"]).strip().lower(),
    }


_WMT_SPLITS = {problem_lib.TRAIN: "train", problem_lib.DEV: "validation"}
_WMT_TEST = {problem_lib.TEST: "test"}  # newstest2014.
_WMT_NOTES = (
    "(tfds build downloads the WMT corpora from statmt.org: run it where "
    "there is network, then copy the data_dir.)"
)

SOURCES: dict[str, tuple[TfdsSource, ...]] = {
    "translate_ende_wmt8k": (
        TfdsSource(
            "wmt_t2t_translate",
            "de-en",
            "1.0.0",
            _WMT_SPLITS,
            translation_examples("de"),
            build_notes=_WMT_NOTES,
            optional_splits=_WMT_TEST,
        ),
        TfdsSource(
            "wmt14_translate",
            "de-en",
            "1.0.0",
            _WMT_SPLITS,
            translation_examples("de"),
            build_notes=_WMT_NOTES,
            optional_splits=_WMT_TEST,
        ),
    ),
    "translate_enfr_wmt8k": (
        TfdsSource(
            "wmt14_translate",
            "fr-en",
            "1.0.0",
            _WMT_SPLITS,
            translation_examples("fr"),
            build_notes=_WMT_NOTES,
            optional_splits=_WMT_TEST,
        ),
    ),
    "image_imagenet": (
        TfdsSource(
            "imagenet2012",
            None,
            "5.1.0",
            {problem_lib.TRAIN: "train", problem_lib.DEV: "validation"},
            imagenet_examples,
            undecoded=("image",),
            manual_files=("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
            build_notes=(
                "(from https://image-net.org/download-images, registration "
                "required; nothing else is downloaded.)"
            ),
        ),
    ),
    "caption_mscoco8k": (
        TfdsSource(
            "coco_captions",
            "2014",
            "1.1.0",
            {problem_lib.TRAIN: "train", problem_lib.DEV: "val+test+restval"},
            coco_caption_examples,
            undecoded=("image",),
            build_notes=(
                "(tfds build downloads COCO 2014 from cocodataset.org and "
                "Karpathy's splits: run it where there is network, then copy "
                "the data_dir.)"
            ),
            optional_splits={problem_lib.TEST: "test"},  # Karpathy's.
        ),
    ),
    "speech_librispeech8k": (
        TfdsSource(
            "librispeech",
            "default",
            "2.1.1",
            {
                problem_lib.TRAIN: (
                    "train_clean100+train_clean360+train_other500"
                ),
                problem_lib.DEV: "dev_clean",
            },
            librispeech_examples,
            build_notes=(
                "(tfds build downloads from openslr.org and decodes the FLAC "
                "files with pydub + ffmpeg: run it where there is network "
                "and both are installed, then copy the data_dir; reading "
                "the prepared data needs neither.)"
            ),
            optional_splits={problem_lib.TEST: "test_clean"},
        ),
    ),
}
# Reverse translation problems: `problem.reverse` of these problems.
REVERSED = {
    "translate_deen_wmt8k": "translate_ende_wmt8k",
    "translate_fren_wmt8k": "translate_enfr_wmt8k",
}
NO_TFDS_BUILDER = {
    "parse_ptb_wsj8k": (
        "the Penn Treebank WSJ (LDC99T42) is licensed by the LDC and has no "
        "TFDS builder"
    ),
}


class NoTfdsSourceError(ValueError):
    """The problem's corpus has no TFDS builder; use its raw files."""


def has_source(problem_name: str) -> bool:
    """Whether `problem_name` can read its examples from TFDS."""
    return problem_name in SOURCES or problem_name in REVERSED


def _split_names(split: str) -> list[str]:
    return [s.strip() for s in split.split("+")]


def load_builder(source: TfdsSource, data_dir: str | None) -> Any | None:
    """The builder of `source` if prepared in `data_dir`, else None.

    Only reads metadata: nothing is downloaded or generated.
    """
    builder = tfds.builder(source.full_name, data_dir=data_dir)
    return builder if builder.is_prepared() else None


def _check_audio_rate(source: TfdsSource, builder: Any) -> None:
    for key, feature in builder.info.features.items():
        rate = getattr(feature, "sample_rate", SAMPLE_RATE)
        if rate != SAMPLE_RATE:  # The raw readers resample; this does not.
            raise ValueError(
                f"TFDS {source.full_name} {key} is at {rate} Hz, not "
                f"{SAMPLE_RATE}"
            )


def _missing_split(
    source: TfdsSource, builder: Any, data_dir: str | None
) -> str | None:
    have = set(builder.info.splits.keys())
    for split in source.splits.values():
        absent = [s for s in _split_names(split) if s not in have]
        if absent:
            return (
                f"TFDS {source.full_name} in {builder.data_dir} lacks the "
                f"split(s) {', '.join(absent)} (it has {sorted(have)}); "
                f"rebuild it with the files of every split:\n"
                f"{source.help(data_dir)}"
            )
    return None


def download_and_prepare(
    source: TfdsSource, data_dir: str | None, manual_dir: str | None = None
) -> Any:
    """Prepares `source` with TFDS's own `download_and_prepare`.

    TFDS downloads (with its pinned checksums), extracts and generates the
    dataset into `data_dir`; this is `tfds build`, run from datagen.

    Args:
      source: the dataset to prepare.
      data_dir: the TFDS data_dir (None: TFDS's default).
      manual_dir: where archives TFDS cannot download are (ImageNet's).

    Returns:
      The prepared builder.

    Raises:
      problem_lib.MissingDataError: TFDS could not prepare it (no network,
        manual files missing, a checksum mismatch); the message has TFDS's
        reason and the `tfds build` command.
    """
    builder = tfds.builder(source.full_name, data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    _LOG.info("preparing TFDS %s (download_and_prepare)", source.full_name)
    try:
        builder.download_and_prepare(download_config=config)
    except (AssertionError, OSError, ValueError) as e:  # TFDS's own kinds.
        raise problem_lib.MissingDataError(
            f"TFDS could not prepare {source.full_name} "
            f"({type(e).__name__}: {e}).\n{source.help(data_dir)}"
        ) from e
    except Exception as e:
        # TFDS's download errors (NonMatchingChecksumError, DownloadError,
        # ExtractError) derive from Exception only; anything else is a bug.
        if type(e).__module__.startswith("tensorflow_datasets"):
            raise problem_lib.MissingDataError(
                f"TFDS could not prepare {source.full_name} "
                f"({type(e).__name__}: {e}).\n{source.help(data_dir)}"
            ) from e
        raise
    return builder


def resolve(
    problem_name: str,
    data_dir: str | None,
    *,
    download: bool = False,
    manual_dir: str | None = None,
) -> tuple[TfdsSource, Any]:
    """The first prepared candidate source of a problem and its builder.

    Args:
      problem_name: a problem in `SOURCES`; a `REVERSED` one resolves to
        its forward problem's source.
      data_dir: the TFDS data_dir; None means TFDS's default
        (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
      download: when no candidate is prepared, prepare the first one with
        `download_and_prepare` (TFDS downloads it) instead of failing.
      manual_dir: with `download`, where TFDS finds manual downloads.

    Raises:
      NoTfdsSourceError: no TFDS builder for this problem.
      problem_lib.MissingDataError: no candidate is prepared (or one lacks a
        split); the message says which `tfds build` to run.
    """
    problem_name = REVERSED.get(problem_name, problem_name)
    if problem_name not in SOURCES:
        why = NO_TFDS_BUILDER.get(problem_name, "it has no TFDS source")
        raise NoTfdsSourceError(
            f"{problem_name}: {why}; read it from its raw files (source raw)."
            f" Problems with a TFDS source: "
            f"{', '.join(sorted([*SOURCES, *REVERSED]))}"
        )
    candidates = SOURCES[problem_name]
    for source in candidates:
        builder = load_builder(source, data_dir)
        if builder is None:
            continue
        if message := _missing_split(source, builder, data_dir):
            raise problem_lib.MissingDataError(message)
        _check_audio_rate(source, builder)
        return source, builder
    if download:
        source = candidates[0]
        builder = download_and_prepare(source, data_dir, manual_dir)
        if message := _missing_split(source, builder, data_dir):
            raise problem_lib.MissingDataError(message)
        _check_audio_rate(source, builder)
        return source, builder
    where = data_dir or "TFDS's default data_dir"
    raise problem_lib.MissingDataError(
        f"{problem_name}: none of "
        f"{', '.join(s.full_name for s in candidates)} is prepared in "
        f"{where}. Prepare one (t2t-mm-datagen downloads nothing unless "
        "given --download):\n" + "\n".join(s.help(data_dir) for s in candidates)
    )


def _generator(
    source: TfdsSource, builder: Any, split: str
) -> problem_lib.Generator:
    decoders = {key: tfds.decode.SkipDecoding() for key in source.undecoded}
    # One shard after the other, in stored order: reruns see the same order.
    read_config = tfds.ReadConfig(interleave_cycle_length=1)

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        del tmp_dir  # The TFDS data_dir was fixed by `resolve`.
        dataset = builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders=decoders or None,
            read_config=read_config,
        )
        for example in tfds.as_numpy(dataset):
            yield from source.to_examples(example)

    return generate


def with_tfds_source(
    problem: problem_lib.Problem,
    data_dir: str | None = None,
    *,
    download: bool = False,
    manual_dir: str | None = None,
) -> problem_lib.Problem:
    """`problem` with generators that read its prepared TFDS dataset.

    Everything else (features, vocabulary, preprocessors, space ids) is
    unchanged. A `REVERSED` problem is `problem.reverse` of its forward
    problem's TFDS version. Its splits are the source's `splits`, plus the
    `optional_splits` the prepared dataset has.

    Args:
      problem: a registered paper problem.
      data_dir: the TFDS data_dir (None: TFDS's default).
      download: prepare the dataset with TFDS's `download_and_prepare` if
        it is not prepared (see `resolve`).
      manual_dir: with `download`, where TFDS finds manual downloads.

    Raises:
      NoTfdsSourceError: the problem has no TFDS builder.
      problem_lib.MissingDataError: the dataset is not prepared.
    """
    if problem.name in REVERSED:
        forward = registry.get_problem(REVERSED[problem.name])
        reverse = problem_lib.reverse(
            with_tfds_source(
                forward, data_dir, download=download, manual_dir=manual_dir
            ),
            problem.name,
        )
        generators = reverse.generators
        help_text = reverse.raw_files_help
    else:
        source, builder = resolve(
            problem.name, data_dir, download=download, manual_dir=manual_dir
        )
        generators = {
            split: _generator(source, builder, tfds_split)
            for split, tfds_split in source.available_splits(builder).items()
        }
        help_text = source.help(data_dir)
        _LOG.info(
            "%s reads TFDS %s from %s",
            problem.name,
            source.full_name,
            os.fspath(builder.data_dir),
        )
    return dataclasses.replace(
        problem, generators=generators, raw_files_help=help_text
    )
