"""The Problem value: a task's data, features and metrics (STYLE.md section 6).

A problem is a frozen dataclass, not a class hierarchy. Variants are values:
`reverse(problem, name=...)` makes the reverse translation problem (the paper's
DE->EN from EN->DE) by swapping inputs and targets, their features, modalities
and space ids, with no `_rev` name parsing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import tensorflow as tf

from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import raw_files as raw_files_lib

Example = dict[str, Any]
Generator = Callable[[str], Iterator[Example]]
# `fn(dataset)`, or `fn(dataset, training=...)` when it augments in training
# (see t2t_multimodel.data.preprocessors.MapFeature).
Preprocessor = Callable[..., tf.data.Dataset]

TRAIN = "train"
DEV = "dev"
# The held-out split a paper table is scored on (newstest2014, LibriSpeech
# test-clean, PTB section 23, ...), where the corpus has one. Optional:
# datagen skips it, with a warning, when its raw files are absent.
TEST = "test"
SPLITS = (TRAIN, DEV)
OPTIONAL_SPLITS = (TEST,)


class MissingDataError(FileNotFoundError):
    """A problem's raw files are absent; the message says what goes where."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """A task: raw-file generators, stored features, preprocessing, metrics.

    Attributes:
      name: registry name, `<task>_<data><vocab>` (e.g. `translate_ende_wmt8k`).
      generators: split name -> `generate(tmp_dir)` yielding raw examples
        (`str` for text features, encoded image bytes, float waveforms, int
        labels); the TFRecord writer encodes them with `features`.
      features: stored features; at least `inputs` and `targets`.
      preprocessors: applied in order to the parsed `tf.data.Dataset` (e.g.
        image decoding and resizing, log-mel spectrograms); one that takes a
        `training` keyword gets the pipeline's mode (augmentation).
      metrics: task metric names reported at evaluation (e.g. `bleu`,
        `accuracy_top1`, `accuracy_top5`, `wer`, `exact_tree`, `bracket_f1`).
      input_space_id: space id of the inputs (T2T's input space).
      target_space_id: the command token: the learned task embedding that is
        the decoder's first input.
      loss_multiplier: weight of this problem's loss in joint training.
      raw_files_help: what the user must place in `tmp_dir` (and the public URL)
        when the raw files are missing.
      num_shards: default number of train shards (dev gets one).
      class_names: for class-label targets, the name of each class id (the
        exporter's `classes` output); empty means the ids are the names.
      raw_files: the public files datagen downloads into `tmp_dir` when
        they are missing, and what to unpack (`data/raw_files.py`).
      manual_download: for corpora that need a licence or a login
        (ImageNet, the Penn Treebank): how to get the files by hand.
    """

    name: str
    generators: Mapping[str, Generator]
    features: Mapping[str, features_lib.Feature]
    preprocessors: Sequence[Preprocessor] = ()
    metrics: Sequence[str] = ()
    input_space_id: int = features_lib.SpaceID.GENERIC
    target_space_id: int = features_lib.SpaceID.GENERIC
    loss_multiplier: float = 1.0
    raw_files_help: str = ""
    num_shards: int = 10
    class_names: tuple[str, ...] = ()
    raw_files: tuple[raw_files_lib.RawFile, ...] = ()
    manual_download: str = ""

    def generate(self, split: str, tmp_dir: str) -> Iterator[Example]:
        """Yields raw examples of `split` read from the files in `tmp_dir`."""
        if split not in self.generators:
            raise ValueError(
                f"problem {self.name!r} has no split {split!r}; it has "
                f"{sorted(self.generators)}"
            )
        return self.generators[split](tmp_dir)

    @property
    def input_modality(self) -> str | None:
        spec = self.features["inputs"].modality
        return spec.name if spec else None

    @property
    def target_modality(self) -> str | None:
        spec = self.features["targets"].modality
        return spec.name if spec else None

    @property
    def text_vocabularies(self) -> set[str]:
        """Vocabulary file names used by this problem's text features."""
        return {f.vocabulary for f in self.features.values() if f.vocabulary}


def _swap_example(example: Example) -> Example:
    swapped = dict(example)
    swapped["inputs"] = example["targets"]
    swapped["targets"] = example["inputs"]
    return swapped


def _reversed_generator(generate: Generator) -> Generator:
    def generate_reversed(tmp_dir: str) -> Iterator[Example]:
        for example in generate(tmp_dir):
            yield _swap_example(example)

    return generate_reversed


def reverse(problem: Problem, name: str, **changes: Any) -> Problem:
    """Returns `problem` with inputs and targets swapped, as a new value.

    Swaps the generators' outputs, the features (with their modalities and
    vocabularies) and the space ids. `changes` override further fields
    (metrics, for instance).
    """
    feats = dict(problem.features)
    feats["inputs"], feats["targets"] = feats["targets"], feats["inputs"]
    return dataclasses.replace(
        problem,
        name=name,
        generators={
            split: _reversed_generator(gen)
            for split, gen in problem.generators.items()
        },
        features=feats,
        input_space_id=problem.target_space_id,
        target_space_id=problem.input_space_id,
        **changes,
    )
