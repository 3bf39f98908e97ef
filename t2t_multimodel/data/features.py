"""Feature descriptions shared by problems, the TFRecord writer and the reader.

A problem describes each stored feature once (`Feature`); the TFRecord writer,
the parse spec and the model's modality dict are all derived from that single
description so they cannot drift apart (STYLE.md section 7). Target-space ids
are T2T's table: the paper's command tokens (section 2.4, "To-German", ...);
the model's command-token embedding has `models.multimodel.NUM_SPACE_IDS`
rows, more than the largest id here.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import tensorflow as tf


class SpaceID(enum.IntEnum):
    """T2T's input/target space ids (rows of the command-token embedding)."""

    GENERIC = 0
    IMAGE_LABEL = 1
    EN_CHR = 2
    EN_TOK = 3
    EN_BPE_TOK = 4
    FR_CHR = 5
    FR_TOK = 6
    DE_CHR = 7
    DE_TOK = 8
    DE_BPE_TOK = 9
    DIGIT_0 = 10
    DIGIT_1 = 11
    AUDIO_WAV = 12
    AUDIO_SPECTRAL = 13
    PARSE_CHR = 14
    PARSE_TOK = 15
    IMAGE = 16
    CAPTION = 17


@dataclasses.dataclass(frozen=True)
class Feature:
    """One stored feature of a problem's examples.

    Attributes:
      dtype: storage dtype in the `tf.train.Example` (`tf.int64`,
        `tf.float32` or `tf.string`).
      shape: per-example shape; `None` marks a variable-length axis.
      modality: the modality net the model uses for this feature, if any: a
        `t2t_multimodel.modalities.specs.ModalitySpec` (held, never used
        here, so data/ does not import the modalities).
      vocabulary: for text features, the vocabulary file name in `data_dir`;
        the generator yields raw strings and the writer encodes them (plus EOS).
    """

    dtype: tf.DType
    shape: tuple[int | None, ...] = (None,)
    modality: Any = None
    vocabulary: str | None = None

    @property
    def is_text(self) -> bool:
        return self.vocabulary is not None
