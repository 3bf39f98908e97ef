"""A problem's stored split as decoder batches, references and train targets.

Decoding a whole split (`scoring.py`, paper section 4, Table 1) starts from
the TFRecord shards `t2t-mm-datagen` wrote, not from raw files: the stored
inputs go through what serving does to a raw request once it is decoded
(`decoder.ProblemDecoder`): text keeps its first `max_input_length - 1` ids
plus EOS, a waveform its first `max_audio_seconds`, and the problem's own
per-example input preprocessors run (`MapFeature.apply`, not training:
image resizing without augmentation, log-mel spectrograms). Each example
also gets what the output files show: its input (the detokenized text, or
an id of the image or audio: its SHA-256 prefix, and the audio's length)
and its reference (the detokenized target, or the class name).

Examples keep the order in which they were generated (`pipeline.
read_examples`): index `i` is the `i`-th example of the split (for the
one-shard dev and test splits, the `i`-th record of the file).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from t2t_multimodel.data import pipeline, preprocessors, vocabulary
from t2t_multimodel.decoding import decoder as decoder_lib

# Variable-length inputs are padded to a multiple of this many positions:
# fewer distinct shapes, so fewer retraces and XLA compilations of the
# decoding step (the masks make the padding invisible to the model).
PAD_MULTIPLE = 16
_HASH_CHARS = 16
_TRAIN_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class SplitExample:
    """What the output files show of one stored example.

    Attributes:
      index: its position in the split (0-based, generation order).
      input: the detokenized input text, `image sha256:<prefix>` or
        `audio <seconds> s sha256:<prefix>` (of the stored bytes/samples).
      reference: the detokenized target, or the class name.
      label: the class id of a class-label target, else None.
    """

    index: int
    input: str
    reference: str
    label: int | None = None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_HASH_CHARS]


class SplitReader:
    """Batches of one problem's split for a `ProblemDecoder`.

    Args:
      problem: the problem (name, features, preprocessors, target space id).
      vocabulary: its text vocabulary (None for image -> class).
      config: the `DecodeConfig` whose input limits apply
        (`max_input_length`, `max_audio_seconds`).
    """

    def __init__(
        self,
        problem: Any,
        vocabulary: vocabulary.Vocabulary | None,
        config: decoder_lib.DecodeConfig,
    ) -> None:
        self.problem = problem
        self.vocabulary = vocabulary
        self.config = config
        self.input_kind = decoder_lib.input_kind(problem)
        self.output_kind = decoder_lib.output_kind(problem)
        self.class_names = tuple(getattr(problem, "class_names", ()) or ())
        self._preprocessors = [
            p
            for p in problem.preprocessors
            if getattr(p, "key", "") == "inputs"
        ]

    def class_name(self, label: int) -> str:
        """The name of class `label` (its id when the problem has none)."""
        if 0 <= label < len(self.class_names):
            return self.class_names[label]
        return str(label)

    def _model_input(self, stored: tf.Tensor) -> tf.Tensor:
        """One stored input -> the model's input (as serving makes it)."""
        if self.input_kind == decoder_lib.TEXT:
            limit = self.config.max_input_length - 1
            ids = tf.cast(stored, tf.int32)[:-1][:limit]  # Stored: ... EOS.
            return tf.concat([ids, [vocabulary.EOS_ID]], axis=0)
        if self.input_kind == decoder_lib.AUDIO:
            limit = int(
                self.config.max_audio_seconds * preprocessors.SAMPLE_RATE
            )
            stored = stored[:limit]
        example = {"inputs": stored}
        for p in self._preprocessors:
            example = p.apply(example, training=False)
        return example["inputs"]

    def _element(self, example: dict[str, tf.Tensor]) -> dict:
        inputs = self._model_input(example["inputs"])
        return {
            "inputs": inputs,
            "length": tf.shape(inputs)[0],
            "stored": example["inputs"],
            "stored_length": tf.size(example["inputs"]),
            "targets": example["targets"],
        }

    def _features(self, batch: dict[str, tf.Tensor]) -> dict:
        inputs = batch["inputs"]
        size = tf.shape(inputs)[0]
        features = {
            "target_space_id": tf.fill(
                [size], tf.constant(int(self.problem.target_space_id))
            )
        }
        if self.input_kind == decoder_lib.IMAGE:
            features["inputs"] = inputs
            return features
        length = tf.shape(inputs)[1]
        padded = (length + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE
        pads = [[0, 0], [0, padded - length]] + [[0, 0]] * (
            len(inputs.shape) - 2
        )
        features["inputs"] = tf.pad(inputs, pads)  # [B, padded, ...]
        features["inputs_mask"] = tf.sequence_mask(batch["length"], padded)
        return features

    def _shown_input(self, stored: np.ndarray, length: int) -> str:
        if self.input_kind == decoder_lib.TEXT:
            return self.vocabulary.decode(stored.tolist())
        if self.input_kind == decoder_lib.IMAGE:
            return f"image sha256:{_digest(bytes(stored))}"
        samples = np.asarray(stored[:length], np.float32)
        seconds = length / preprocessors.SAMPLE_RATE
        return f"audio {seconds:.2f} s sha256:{_digest(samples.tobytes())}"

    def _example(self, index: int, batch: dict, row: int) -> SplitExample:
        shown = self._shown_input(
            batch["stored"][row], int(batch["stored_length"][row])
        )
        target = batch["targets"][row]
        if self.output_kind == decoder_lib.CLASS:
            label = int(target)
            return SplitExample(index, shown, self.class_name(label), label)
        return SplitExample(index, shown, self.vocabulary.decode(target))

    def batches(
        self, split: str, data_dir: str, batch_size: int
    ) -> Iterator[tuple[dict[str, tf.Tensor], list[SplitExample]]]:
        """`(model features, examples)` of every batch of the split, in order.

        The features hold `inputs` (`inputs_mask` for variable lengths) and
        `target_space_id`, as `ProblemDecoder.model_features` makes them.

        Raises:
          pipeline.MissingShardsError, pipeline.ShardMismatchError: the
            split is not (or not rightly) in `data_dir`.
        """
        dataset = pipeline.read_examples(self.problem, split, data_dir)
        dataset = dataset.map(
            self._element, num_parallel_calls=tf.data.AUTOTUNE
        )
        dataset = dataset.padded_batch(batch_size).prefetch(2)
        index = 0
        for batch in dataset:
            features = self._features(batch)
            numpy = {
                k: batch[k].numpy()
                for k in ("stored", "stored_length", "targets")
            }
            rows = int(tf.shape(batch["inputs"])[0])
            examples = [
                self._example(index + row, numpy, row) for row in range(rows)
            ]
            index += rows
            yield features, examples

    def train_targets(
        self, data_dir: str, max_examples: int | None = None
    ) -> collections.Counter | None:
        """How often each train target occurs: class ids, or detokenized text.

        Only the targets are parsed (the inputs are skipped undecoded). The
        counter's keys are in order of first appearance in the reading order
        (up to 8 shards read in parallel, a fixed order).

        Args:
          data_dir: where the shards are.
          max_examples: read at most this many (None: all).

        Returns:
          The counts, or None when the train split is not in `data_dir`.
        """
        try:
            dataset = pipeline.read_examples(
                self.problem,
                "train",
                data_dir,
                keys=("targets",),
                ordered=False,
            )
        except pipeline.MissingShardsError:
            return None
        if max_examples is not None:
            dataset = dataset.take(max_examples)
        dataset = dataset.map(lambda ex: ex["targets"])
        counts: collections.Counter = collections.Counter()
        if self.output_kind == decoder_lib.CLASS:
            for labels in dataset.batch(_TRAIN_BATCH).as_numpy_iterator():
                counts.update(int(label) for label in labels)
            return counts
        by_ids: collections.Counter = collections.Counter()
        for rows in dataset.padded_batch(_TRAIN_BATCH).as_numpy_iterator():
            # Stored text ends in EOS and holds no PAD: trailing zeros are
            # the batch's padding.
            by_ids.update(
                np.trim_zeros(r, "b").tobytes() for r in rows.astype(np.int64)
            )
        # Detokenize each distinct target once.
        for ids, count in by_ids.items():
            text = self.vocabulary.decode(np.frombuffer(ids, np.int64))
            counts[text] += count
        return counts
