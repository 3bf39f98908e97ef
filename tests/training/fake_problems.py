"""Tiny generated problems and a tiny model for the training tests.

Three problems written to a temporary `data_dir` in the real shard format
(`data/tfrecord.py`) with a tiny SentencePiece vocabulary (< 64 ids):
- `fake_copy_text`: text -> text, the target is the input's words reversed;
- `fake_image`: 16x16 gray PNG images -> 4 classes (the class is the
  brightest quadrant);
- `fake_speech`: 0.1 s waveforms (a tone whose pitch spells the word) ->
  text, through the log-mel preprocessor.
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors, tfrecord
from t2t_multimodel.data import vocabulary as vocabulary_lib
from t2t_multimodel.modalities import specs as specs_lib
from t2t_multimodel.models import decoder as decoder_lib
from t2t_multimodel.models import encoder as encoder_lib
from t2t_multimodel.models import multimodel

VOCAB_FILE = "vocab.fake.model"
WORDS = ["ab", "cd", "ef", "gh", "ba", "dc", "fe", "hg"]
_MOD = "t2t_multimodel.modalities"
SYMBOL = specs_lib.ModalitySpec(
    "symbol", f"{_MOD}.symbol.SymbolModality", {"vocab_size": 64}
)
IMAGE = specs_lib.ModalitySpec(
    "image",
    f"{_MOD}.image.ImageModality",
    {"entry_filters": (4, 8), "res_filters": (8,), "num_channels": 1},
)
LABEL = specs_lib.ModalitySpec(
    "class_label_4",
    f"{_MOD}.class_label.ClassLabelModality",
    {"num_classes": 4, "filters": (8, 8, 8, 8)},
)
AUDIO = specs_lib.ModalitySpec(
    "audio_spectral",
    f"{_MOD}.audio.AudioSpectralModality",
    {"num_blocks": 2, "filters": (4, 16)},
)
TEXT = features_lib.Feature(
    tf.int64, (None,), modality=SYMBOL, vocabulary=VOCAB_FILE
)


def _sentences(rng: np.random.Generator, n: int) -> list[str]:
    return [
        " ".join(rng.choice(WORDS, size=rng.integers(2, 5))) for _ in range(n)
    ]


def _text_examples(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for s in _sentences(rng, n):
        yield {"inputs": s, "targets": " ".join(reversed(s.split()))}


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_examples(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        label = int(rng.integers(4))
        image = rng.integers(0, 60, size=(16, 16), dtype=np.uint8)
        r, c = divmod(label, 2)
        image[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8] += 180
        yield {"inputs": _png(image), "targets": label}


def _speech_examples(seed: int, n: int):
    rng = np.random.default_rng(seed)
    t = np.arange(1600) / 16000.0
    for _ in range(n):
        word = str(rng.choice(WORDS))
        pitch = 300.0 + 200.0 * WORDS.index(word)
        wave = 0.5 * np.sin(2 * np.pi * pitch * t)
        yield {"inputs": wave.astype(np.float32).tolist(), "targets": word}


def text_problem(name: str = "fake_copy_text") -> problem_lib.Problem:
    return problem_lib.Problem(
        name=name,
        generators={
            "train": lambda tmp: _text_examples(1, 200),
            "dev": lambda tmp: _text_examples(2, 12),
        },
        features={"inputs": TEXT, "targets": TEXT},
        metrics=("bleu",),
        input_space_id=features_lib.SpaceID.EN_TOK,
        target_space_id=features_lib.SpaceID.DE_TOK,
        num_shards=2,
    )


def image_problem(name: str = "fake_image") -> problem_lib.Problem:
    return problem_lib.Problem(
        name=name,
        generators={
            "train": lambda tmp: _image_examples(3, 64),
            "dev": lambda tmp: _image_examples(4, 12),
        },
        features={
            "inputs": features_lib.Feature(tf.string, (), modality=IMAGE),
            "targets": features_lib.Feature(tf.int64, (), modality=LABEL),
        },
        preprocessors=(
            preprocessors.image_feature((16, 16), channels=1, augment=False),
        ),
        metrics=("accuracy_top1", "accuracy_top5"),
        target_space_id=features_lib.SpaceID.IMAGE_LABEL,
        loss_multiplier=0.7,
        num_shards=2,
    )


def speech_problem(name: str = "fake_speech") -> problem_lib.Problem:
    return problem_lib.Problem(
        name=name,
        generators={
            "train": lambda tmp: _speech_examples(5, 32),
            "dev": lambda tmp: _speech_examples(6, 8),
        },
        features={
            "inputs": features_lib.Feature(tf.float32, (None,), modality=AUDIO),
            "targets": TEXT,
        },
        preprocessors=(
            preprocessors.log_mel_feature(sample_rate=16000, num_mel_bins=8),
        ),
        metrics=("wer",),
        input_space_id=features_lib.SpaceID.AUDIO_SPECTRAL,
        target_space_id=features_lib.SpaceID.EN_TOK,
        num_shards=1,
    )


def write(problems, data_dir: str) -> None:
    """Builds the tiny vocabulary and writes every split of `problems`."""
    vocab = vocabulary_lib.build_vocabulary(
        [" ".join(WORDS)] * 20, f"{data_dir}/{VOCAB_FILE}", vocab_size=24
    )
    for p in problems:
        for split in ("train", "dev"):
            tfrecord.write_split(
                p.generate(split, ""),
                p.features,
                {VOCAB_FILE: vocab},
                data_dir,
                p.name,
                split,
                p.num_shards if split == "train" else 1,
            )


def tiny_model(
    *, modality_specs, hidden_dim: int = 16, decoder_moe: bool = False
):
    """A 1-block MultiModel (T2T v1.9 layout: no mixer), 4 experts, k=2.

    The encoder has an MoE; `decoder_moe` adds one to the decoder too (used
    by text problems only, unlike the encoder's).
    """
    return multimodel.MultiModel(
        {n: s.build(hidden_dim) for n, s in modality_specs.items()},
        encoder_lib.Encoder(
            hidden_dim,
            num_blocks=1,
            moe_position=1,
            num_experts=4,
            top_k=2,
            intermediate_dim=16,
            dropout=0.0,
        ),
        decoder_lib.Decoder(
            hidden_dim,
            num_blocks=1,
            moe_position=None,
            num_heads=2,
            intermediate_dim=16,
            dropout=0.0,
        ),
    )
