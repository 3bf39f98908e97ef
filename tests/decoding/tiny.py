"""Tiny problems, vocabulary, raw inputs and a random MultiModel for tests.

Shared by tests/decoding and tests/export: a text -> text problem, image
classification, image captioning and speech recognition (log-mel), all
unregistered `Problem` values over one 64-id vocabulary, and a d = 16 model
with every modality they name.
"""

from __future__ import annotations

import io

import keras
import numpy as np
import soundfile
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors, vocabulary
from t2t_multimodel.modalities import specs as modality_specs
from t2t_multimodel.models import build, decoder, encoder, io_mixer

VOCAB_FILE = "vocab.tiny.64.model"
HIDDEN = 16
NUM_MEL_BINS = 8
TEXTS = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "der hund lief schnell",
    "le chat est content",
    "where is the house",
    "the cat and the dog",
] * 4


def _text() -> features_lib.Feature:
    return features_lib.Feature(
        tf.int64, (None,), modality_specs.SYMBOL, vocabulary=VOCAB_FILE
    )


def _image() -> features_lib.Feature:
    return features_lib.Feature(tf.string, (), modality_specs.IMAGE)


def _problem(name, inputs, targets, space, preprocessing=()):
    return problem_lib.Problem(
        name=name,
        generators={},
        features={"inputs": inputs, "targets": targets},
        preprocessors=preprocessing,
        input_space_id=space[0],
        target_space_id=space[1],
    )


S = features_lib.SpaceID
TEXT_PROBLEM = _problem(
    "tiny_translate", _text(), _text(), (S.EN_TOK, S.DE_TOK)
)
IMAGE_PROBLEM = _problem(
    "tiny_image",
    _image(),
    features_lib.Feature(tf.int64, (), modality_specs.class_label(5)),
    (S.IMAGE, S.IMAGE_LABEL),
    (preprocessors.image_feature((8, 8), augment=False),),
)
CAPTION_PROBLEM = _problem(
    "tiny_caption",
    _image(),
    _text(),
    (S.IMAGE, S.CAPTION),
    (preprocessors.image_feature((8, 8), augment=False),),
)
SPEECH_PROBLEM = _problem(
    "tiny_speech",
    features_lib.Feature(tf.float32, (None,), modality_specs.AUDIO_SPECTRAL),
    _text(),
    (S.AUDIO_SPECTRAL, S.EN_TOK),
    (preprocessors.log_mel_feature(num_mel_bins=NUM_MEL_BINS),),
)
PROBLEMS = (TEXT_PROBLEM, IMAGE_PROBLEM, CAPTION_PROBLEM, SPEECH_PROBLEM)


def build_vocabulary(directory: str) -> vocabulary.Vocabulary:
    return vocabulary.build_vocabulary(
        TEXTS, f"{directory}/{VOCAB_FILE}", vocab_size=64
    )


def build_model(seed: int = 0, hidden: int = HIDDEN):
    """A random d = 16 MultiModel (1 encoder, 1 mixer, 2 decoder blocks)."""
    keras.utils.set_random_seed(seed)
    moe = {"num_experts": 4, "top_k": 2, "intermediate_dim": hidden}
    return build.build_model(
        modality_specs=[
            spec
            for p in PROBLEMS
            for spec in (
                p.features["inputs"].modality,
                p.features["targets"].modality,
            )
        ],
        hidden_dim=hidden,
        encoder=encoder.Encoder(
            hidden, num_blocks=2, moe_position=1, dropout=0.0, **moe
        ),
        mixer=io_mixer.IOMixer(hidden, num_heads=2, num_conv_blocks=1),
        decoder=decoder.Decoder(
            hidden, num_blocks=2, moe_position=1, num_heads=2, **moe
        ),
        modality_kwargs={
            "symbol": {"vocab_size": 64},
            "image": {"entry_filters": (4, 8), "res_filters": (8,)},
            "audio_spectral": {"num_blocks": 2},
        },
    )


def png(seed: int, size=(11, 7), gray: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    shape = size if gray else (*size, 3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(seed: int, size=(20, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*size, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG")
    return buffer.getvalue()


def wav(seed: int, seconds: float, rate: int = 16000, channels: int = 1):
    """16-bit PCM WAV bytes of a noisy tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)
    data = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def raw_inputs(problem) -> list:
    """A few valid raw requests of `problem` (varied sizes and formats)."""
    if problem is TEXT_PROBLEM:
        return ["the cat sat", "der hund lief schnell", "where"]
    if problem is SPEECH_PROBLEM:
        return [wav(0, 0.3), wav(1, 0.5, rate=22050, channels=2)]
    return [png(0), png(1, (5, 9), gray=True), jpeg(2)]
