"""Decoding raw inputs of one problem with a trained MultiModel (section 4).

`ProblemDecoder` turns raw requests into answers with TF ops only, so the
same code runs eagerly (`t2t-mm-decoder`) and inside an exported SavedModel:
- raw inputs -> model features: text through the problem vocabulary's
  in-graph SentencePiece tokenizer (EOS appended; longer texts keep their
  first `max_input_length - 1` ids), encoded images (JPEG/PNG/BMP/GIF) and
  16-bit PCM WAVs (any rate, mono or stereo; resampled to 16 kHz) through
  `data/preprocessors.py` and the problem's own per-example preprocessors
  (`MapFeature.apply`: resizing, log-mel spectrograms);
- features -> ids: `search.py`, the decoding path the trainer's evaluation
  uses too: `model.encode` once, then greedy (`beam_size == 1`, as T2T) or
  beam search (`samplers.py`) with `model.decode_step` as the next-logits
  function (cached: each new token costs one position); with `cache=False`
  every step reruns the full teacher-forced model call on the prefix (the
  reference and the benchmark baseline);
- ids -> text (up to the first EOS), or for class-label targets the top-k
  classes of one forward pass (the decoder is skipped).

Bad requests fail loudly: an empty input, bytes that are not an image (by
their magic bytes) or not a RIFF/WAVE file, or a WAV without samples raise
`tf.errors.InvalidArgumentError` whose message names the input and the
offending batch positions; nothing is answered for such a batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from t2t_multimodel.data import preprocessors, vocabulary
from t2t_multimodel.decoding import restore, samplers, search, tree_repair
from t2t_multimodel.metrics import names as metric_names

# Restoring lives in restore.py; these names stay importable from here for
# the programs that import them from this module (programs/decoder.py).
ModelDirError = restore.ModelDirError
restore_model = restore.restore_model
find_vocabulary = restore.find_vocabulary
resolve_checkpoint = restore.resolve_checkpoint

TEXT, IMAGE, AUDIO, CLASS = "text", "image", "audio", "class"
# The serving input name of each input kind (SPEC.md section 1).
INPUT_NAMES = {TEXT: "inputs", IMAGE: "image_bytes", AUDIO: "audio_bytes"}
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """How to decode.

    Attributes:
      beam_size: 1 is greedy search; more is beam search.
      alpha: the length penalty exponent of beam search.
      max_length: output tokens at most (the decoding cache size).
      max_input_length: text inputs keep their first `max_input_length - 1`
        ids plus EOS.
      max_audio_seconds: WAV inputs keep their first `max_audio_seconds`
        (after resampling to 16 kHz), which bounds the spectrogram and the
        encoder's length; the decoded WAV itself is held in memory once.
      top_k: classes returned for class-label problems.
      cache: incremental decoding (False: rerun the prefix every step).
      jit_compile: compile each cached decoding step with XLA (one
        `tf.function(model.decode_step, jit_compile=True)` per decoder). The
        step has static shapes, so XLA fuses its ~700 small ops; at batch 1
        that makes a step several times cheaper. Unused when `cache` is
        False (the prefix grows, so its shapes are not static).
    """

    beam_size: int = 4
    alpha: float = 0.6
    max_length: int = 256
    max_input_length: int = 256
    max_audio_seconds: float = 60.0
    top_k: int = 5
    cache: bool = True
    jit_compile: bool = True


def input_kind(problem: Any) -> str:
    """`text`, `image` or `audio`: what a raw request of `problem` holds."""
    feature = problem.features["inputs"]
    if feature.is_text:
        return TEXT
    if feature.dtype == tf.string:
        return IMAGE  # Stored as encoded image bytes.
    if feature.dtype == tf.float32 and tuple(feature.shape) == (None,):
        return AUDIO  # Stored as a waveform.
    raise ValueError(
        f"problem {problem.name!r}: cannot serve raw inputs stored as "
        f"{feature.dtype.name} {feature.shape}"
    )


def output_kind(problem: Any) -> str:
    """`text` or `class`: what `problem` answers."""
    feature = problem.features["targets"]
    if feature.is_text:
        return TEXT
    if feature.dtype.is_integer and tuple(feature.shape) == ():
        return CLASS
    raise ValueError(
        f"problem {problem.name!r}: cannot decode targets stored as "
        f"{feature.dtype.name} {feature.shape}"
    )


def writes_trees(problem: Any) -> bool:
    """Whether `problem` answers with linearized trees (parsing)."""
    scored = set(getattr(problem, "metrics", ()))
    return bool(scored & {metric_names.EXACT_TREE, metric_names.BRACKET_F1})


def _check(ok: tf.Tensor, name: str, what: str) -> tf.Operation:
    """Asserts `ok` `[B]`; the error names the failing batch positions."""
    bad = tf.reshape(tf.where(tf.logical_not(ok)), [-1])
    return tf.debugging.Assert(
        tf.reduce_all(ok),
        [f"Bad request: {name} at batch positions", bad, what],
        summarize=16,
    )


class ProblemDecoder:
    """Raw requests of one problem to answers (see the module docstring).

    Args:
      model: a `MultiModel` holding the problem's modalities.
      problem: a `problems.problem.Problem` (features, preprocessors,
        target_space_id, name).
      vocabulary: the problem's text vocabulary (None for image -> class).
      config: `DecodeConfig`.
      class_names: names of the classes (class-label problems); None uses
        the problem's `class_names` attribute if it has one, else the ids
        as strings.
    """

    def __init__(
        self,
        model: Any,
        problem: Any,
        vocabulary: vocabulary.Vocabulary | None = None,
        config: DecodeConfig = DecodeConfig(),
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.model = model
        self._jit_decode_step = None  # Made on first use, then reused.
        self.problem = problem
        self.vocabulary = vocabulary
        self.config = config
        self.input_kind = input_kind(problem)
        self.output_kind = output_kind(problem)
        self.input_name = INPUT_NAMES[self.input_kind]
        self.writes_trees = writes_trees(problem)
        self.input_modality = problem.input_modality
        self.target_modality = problem.target_modality
        if TEXT in (self.input_kind, self.output_kind) and vocabulary is None:
            raise ValueError(f"problem {problem.name!r} needs a vocabulary")
        # Created eagerly: a resource made inside a traced function would be
        # out of scope for the next trace (and for the SavedModel).
        with tf.init_scope():
            self.tokenizer = vocabulary.tf_tokenizer() if vocabulary else None
        self._preprocessors = [
            p
            for p in problem.preprocessors
            if getattr(p, "key", "") == "inputs"
        ]
        for p in problem.preprocessors:
            if not hasattr(p, "apply"):
                raise ValueError(
                    f"problem {problem.name!r}: preprocessor {p!r} has no "
                    "per-example `apply`, which serving needs (use "
                    "data.preprocessors.MapFeature)"
                )
        if self.input_kind == TEXT and self._preprocessors:
            raise ValueError(
                f"problem {problem.name!r}: text inputs cannot be "
                "preprocessed when serving"
            )
        if self.output_kind == CLASS:
            if class_names is None:
                class_names = getattr(problem, "class_names", None) or None
            self.class_names = tuple(class_names) if class_names else None
        if self.input_kind == AUDIO:
            example = tf.function(self._preprocess_one).get_concrete_function(
                tf.TensorSpec([], tf.string)
            )
            self._audio_shape = example.output_shapes
        self._serve = tf.function(
            self.serve,
            input_signature=[tf.TensorSpec([None], tf.string)],
            autograph=False,
        )

    # Raw requests -> model features.

    def _preprocess_one(self, raw: tf.Tensor) -> tf.Tensor:
        """One raw image or WAV -> the stored feature -> preprocessed."""
        if self.input_kind == AUDIO:
            waveform = preprocessors.decode_wav(raw)
            limit = int(
                self.config.max_audio_seconds * preprocessors.SAMPLE_RATE
            )
            waveform = waveform[:limit]
            size = tf.shape(waveform)[0]
            check = tf.debugging.Assert(
                size > 0, ["Bad request: audio_bytes holds a WAV of 0 samples"]
            )
            with tf.control_dependencies([check]):
                raw = tf.identity(waveform)
        example = {"inputs": raw}
        for p in self._preprocessors:
            example = p.apply(example, training=False)
        return example["inputs"]

    def _text_features(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        check = _check(tf.strings.length(texts) > 0, "inputs", "are empty")
        with tf.control_dependencies([check]):
            texts = tf.identity(texts)
        ids = self.tokenizer.tokenize(texts)  # [B, None]
        ids = ids[:, : self.config.max_input_length - 1]
        eos = tf.fill([ids.nrows(), 1], vocabulary.EOS_ID)
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
        dense = ids.to_tensor()  # [B, L]
        mask = tf.sequence_mask(ids.row_lengths(), tf.shape(dense)[1])
        return {"inputs": dense, "inputs_mask": mask}

    def _image_features(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        head = tf.strings.substr(images, 0, 4)
        ok = tf.zeros(tf.shape(images), tf.bool)
        for magic in _IMAGE_MAGIC:
            ok |= tf.equal(tf.strings.substr(head, 0, len(magic)), magic)
        check = _check(
            ok, "image_bytes", "are empty or not a JPEG, PNG, BMP or GIF image"
        )
        with tf.control_dependencies([check]):
            images = tf.identity(images)
        pixels = tf.map_fn(
            self._preprocess_one, images, fn_output_signature=tf.float32
        )
        return {"inputs": pixels}

    def _audio_features(self, wavs: tf.Tensor) -> dict[str, tf.Tensor]:
        # Padded: substr fails on a position past the end (empty requests).
        head = tf.strings.join([wavs, b"\0" * 12])
        ok = tf.logical_and(
            tf.equal(tf.strings.substr(head, 0, 4), b"RIFF"),
            tf.equal(tf.strings.substr(head, 8, 4), b"WAVE"),
        )
        check = _check(ok, "audio_bytes", "are empty or not RIFF/WAVE files")
        with tf.control_dependencies([check]):
            wavs = tf.identity(wavs)
        # Variable-length results: a ragged batch, then padding and a mask.
        features = tf.map_fn(
            self._preprocess_one,
            wavs,
            fn_output_signature=tf.RaggedTensorSpec(
                shape=self._audio_shape, dtype=tf.float32, ragged_rank=0
            ),
        )
        dense = features.to_tensor()  # [B, T, ...]
        mask = tf.sequence_mask(features.row_lengths(), tf.shape(dense)[1])
        return {"inputs": dense, "inputs_mask": mask}

    def model_features(self, raw: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw requests `tf.string [B]` -> model features (no targets)."""
        raw = tf.convert_to_tensor(raw, tf.string)
        if self.input_kind == TEXT:
            features = self._text_features(raw)
        elif self.input_kind == IMAGE:
            features = self._image_features(raw)
        else:
            features = self._audio_features(raw)
        batch = tf.shape(raw)[0]
        features["target_space_id"] = tf.fill(
            [batch], int(self.problem.target_space_id)
        )
        return features

    # Model features -> ids.

    def next_logits_fn(
        self, features: Mapping[str, tf.Tensor]
    ) -> tuple[samplers.NextLogitsFn, Any]:
        """`(next_logits_fn, initial_state)` for the samplers (text targets).

        Cached: `search.cached_next_logits` (`model.encode` once, then
        `model.decode_step`, compiled with XLA when `config.jit_compile`).
        Uncached (`config.cache=False`): the state holds the model features
        and the ids so far, and each step runs the full model on the prefix.
        """
        num_ids = self.vocabulary.vocab_size
        if not self.config.cache:
            fn, state = self._uncached_logits_fn(features)
            return search.known_ids_only(fn, num_ids), state
        step = self.model.decode_step
        if self.config.jit_compile:
            if self._jit_decode_step is None:
                # One function per decoder: XLA compiles once per shape.
                self._jit_decode_step = tf.function(
                    self.model.decode_step, jit_compile=True, autograph=False
                )
            step = self._jit_decode_step
        return search.cached_next_logits(
            self.model,
            features,
            input_modality=self.input_modality,
            target_modality=self.target_modality,
            target_space_id=int(self.problem.target_space_id),
            max_length=self.config.max_length,
            num_ids=num_ids,
            decode_step=step,
        )

    def _uncached_logits_fn(self, features):
        model, space_id = self.model, int(self.problem.target_space_id)
        max_length = self.config.max_length
        batch = tf.shape(features["target_space_id"])[0]
        inputs = {
            k: features[k] for k in ("inputs", "inputs_mask") if k in features
        }
        state = {
            "features": inputs,
            "ids": tf.zeros([batch, max_length], tf.int32),
        }

        def uncached(ids_t, index, state):
            hit = tf.equal(tf.range(max_length), index - 1)  # [T]
            ids = tf.where(hit, ids_t[:, None], state["ids"])  # [B', T]
            prefix = ids[:, : index + 1]  # [B', index + 1]
            call_features = dict(state["features"])
            call_features["targets"] = prefix
            call_features["targets_mask"] = tf.ones(tf.shape(prefix), tf.bool)
            call_features["target_space_id"] = tf.fill(
                tf.shape(prefix)[:1], space_id
            )
            logits = model(
                call_features,
                input_modality=self.input_modality,
                target_modality=self.target_modality,
                training=False,
            )["logits"]  # [B', index + 1, V]
            return logits[:, -1], {"features": state["features"], "ids": ids}

        return uncached, state

    def decode_features(
        self, features: Mapping[str, tf.Tensor]
    ) -> dict[str, tf.Tensor]:
        """Model features -> `{"ids" [B, T], "scores" [B]}` (best beam),
        or for class labels `{"class_ids" [B, k], "scores" [B, k]}`
        (softmax probabilities, best first)."""
        if self.output_kind == CLASS:
            logits = self.model(
                features,
                input_modality=self.input_modality,
                target_modality=self.target_modality,
                training=False,
            )["logits"]  # [B, C]
            k = min(self.config.top_k, int(logits.shape[-1]))
            probs, class_ids = tf.math.top_k(tf.nn.softmax(logits), k)
            return {"class_ids": tf.cast(class_ids, tf.int64), "scores": probs}
        fn, state = self.next_logits_fn(features)
        return search.search(
            fn,
            state,
            tf.shape(features["target_space_id"])[0],
            beam_size=self.config.beam_size,
            max_length=self.config.max_length,
            alpha=self.config.alpha,
        )

    # The serving function and eager convenience.

    def _class_strings(self, class_ids: tf.Tensor) -> tf.Tensor:
        if self.class_names is None:
            return tf.strings.as_string(class_ids)
        return tf.gather(tf.constant(self.class_names), class_ids)

    def serve(self, raw: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw requests `tf.string [B]` -> the serving outputs.

        Text targets: `outputs` tf.string `[B]` and `scores` float32 `[B]`.
        Linearized trees (parsing) are balanced by `tree_repair` so that
        every answer is a well-formed tree; `repaired` bool `[B]` says which
        answers the model had not written as trees.
        Class labels: `classes` tf.string `[B]`, `class_ids` int64 `[B]`,
        `scores` float32 `[B, k]`, `top_k_class_ids` int64 `[B, k]`,
        `top_k_classes` tf.string `[B, k]` (best first).
        """
        decoded = self.decode_features(self.model_features(raw))
        if self.output_kind == CLASS:
            ids = decoded["class_ids"]
            names = self._class_strings(ids)
            return {
                "classes": names[:, 0],
                "class_ids": ids[:, 0],
                "scores": decoded["scores"],
                "top_k_class_ids": ids,
                "top_k_classes": names,
            }
        outputs = self.vocabulary.tf_detokenize(decoded["ids"])
        if not self.writes_trees:
            return {"outputs": outputs, "scores": decoded["scores"]}
        outputs, repaired = tree_repair.repair_trees(outputs)
        return {
            "outputs": outputs,
            "scores": decoded["scores"],
            "repaired": repaired,
        }

    def decode(self, raw: Sequence[str | bytes]) -> dict[str, np.ndarray]:
        """Eager `serve` on a Python batch; strings come back as `str`."""
        outputs = self._serve(tf.constant(list(raw), tf.string))
        result = {}
        for key, value in outputs.items():
            value = value.numpy()
            if value.dtype == object:
                value = np.vectorize(lambda b: b.decode("utf-8"))(value)
            result[key] = value
        return result
