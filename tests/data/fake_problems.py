"""Fake problems for data and datagen tests: tiny, deterministic, in memory.

`make_*` return unregistered `Problem` values with unique names; `register`
adds them to the global registry (names never repeat within a process).
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from problems import registry
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors
from t2t_multimodel.modalities import specs as modality_specs

VOCAB_FILE = "vocab.test.64.model"
_COUNTER = itertools.count()

WORDS = (
    "the cat sat on a mat with grüne äpfel und der hund lief schnell "
    "le chat était très content où est la maison"
).split()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{next(_COUNTER)}"


def sentences(n: int, seed: int) -> list[str]:
    """`n` sentences of 1..12 words from WORDS (varied lengths)."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(WORDS, size=rng.integers(1, 13))) for _ in range(n)
    ]


def _text(vocab_file: str = VOCAB_FILE) -> features_lib.Feature:
    return features_lib.Feature(
        tf.int64, (None,), modality_specs.SYMBOL, vocabulary=vocab_file
    )


def make_text_problem(
    num_train: int = 40, num_dev: int = 6, num_shards: int = 4
) -> problem_lib.Problem:
    """Copy-reverse text task: targets are the input words reversed."""

    def generator(n: int, seed: int):
        def generate(tmp_dir: str):
            for s in sentences(n, seed):
                yield {"inputs": s, "targets": " ".join(s.split()[::-1])}

        return generate

    return problem_lib.Problem(
        name=unique_name("fake_text"),
        generators={
            problem_lib.TRAIN: generator(num_train, 0),
            problem_lib.DEV: generator(num_dev, 1),
        },
        features={"inputs": _text(), "targets": _text()},
        input_space_id=features_lib.SpaceID.EN_TOK,
        target_space_id=features_lib.SpaceID.DE_TOK,
        num_shards=num_shards,
    )


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def make_image_problem(
    num_train: int = 12, num_dev: int = 4, size: int = 4
) -> problem_lib.Problem:
    """Constant-color 6x6 PNGs; the label is the color's gray level / 50."""

    def generator(n: int, offset: int):
        def generate(tmp_dir: str):
            for i in range(n):
                label = (i + offset) % 5
                image = np.full([6, 6, 3], label * 50, np.uint8)
                yield {"inputs": png_bytes(image), "targets": label}

        return generate

    return problem_lib.Problem(
        name=unique_name("fake_image"),
        generators={
            problem_lib.TRAIN: generator(num_train, 0),
            problem_lib.DEV: generator(num_dev, 1),
        },
        features={
            "inputs": features_lib.Feature(tf.string, (), modality_specs.IMAGE),
            "targets": features_lib.Feature(
                tf.int64, (), modality_specs.class_label(5)
            ),
        },
        preprocessors=(
            preprocessors.image_feature((size, size), augment=False),
        ),
        input_space_id=features_lib.SpaceID.IMAGE,
        target_space_id=features_lib.SpaceID.IMAGE_LABEL,
        num_shards=2,
    )


def make_audio_problem(num_train: int = 8, num_dev: int = 2):
    """Waveforms of 100 * (1 + i % 4) samples of value 0.5 -> a sentence."""

    def generator(n: int, seed: int):
        def generate(tmp_dir: str):
            for i, s in enumerate(sentences(n, seed)):
                wave = np.full([100 * (1 + i % 4)], 0.5, np.float32)
                yield {"inputs": wave, "targets": s}

        return generate

    return problem_lib.Problem(
        name=unique_name("fake_audio"),
        generators={
            problem_lib.TRAIN: generator(num_train, 2),
            problem_lib.DEV: generator(num_dev, 3),
        },
        features={
            "inputs": features_lib.Feature(
                tf.float32, (None,), modality_specs.AUDIO_WAVEFORM
            ),
            "targets": _text(),
        },
        input_space_id=features_lib.SpaceID.AUDIO_WAV,
        target_space_id=features_lib.SpaceID.EN_TOK,
        num_shards=2,
    )


def make_missing_data_problem() -> problem_lib.Problem:
    def generate(tmp_dir: str):
        raise problem_lib.MissingDataError(
            f"put corpus.txt into {tmp_dir} (https://example.org/corpus)"
        )
        yield  # pragma: no cover  (makes this a generator)

    return problem_lib.Problem(
        name=unique_name("fake_missing"),
        generators={problem_lib.TRAIN: generate, problem_lib.DEV: generate},
        features={"inputs": _text(), "targets": _text()},
    )


def register(problem: problem_lib.Problem) -> problem_lib.Problem:
    return registry.register(problem)
