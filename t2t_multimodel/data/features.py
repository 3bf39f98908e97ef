"""Feature descriptions shared by problems, the TFRecord writer and the reader.

A problem describes each stored feature once (`Feature`); the TFRecord writer,
the parse spec and the model's modality dict are all derived from that single
description so they cannot drift apart (STYLE.md section 7). Target-space ids
are T2T's table: the paper's command tokens (section 2.4, "To-German", ...).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from collections.abc import Mapping
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


NUM_SPACE_IDS = 32


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
    """Which modality net a feature goes through.

    Attributes:
      name: the key in `MultiModel.modalities`. Every problem that names the
        same key shares one modality instance (the paper shares modality nets
        by modality, never by task).
      cls: the `t2t_multimodel.modalities` class to build, or its import
        path as a string (`"t2t_multimodel.modalities.symbol.SymbolModality"`),
        resolved when the modality is built.
      kwargs: constructor arguments other than `hidden_dim`.
    """

    name: str
    cls: type | str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def build(self, hidden_dim: int, **overrides: Any) -> Any:
        """Instantiates the modality at body width `hidden_dim`."""
        kwargs = {**dict(self.kwargs), **overrides}
        cls = self.cls
        if isinstance(cls, str):
            module_name, _, class_name = cls.rpartition(".")
            cls = getattr(importlib.import_module(module_name), class_name)
        return cls(hidden_dim=hidden_dim, name=self.name, **kwargs)


@dataclasses.dataclass(frozen=True)
class Feature:
    """One stored feature of a problem's examples.

    Attributes:
      dtype: storage dtype in the `tf.train.Example` (`tf.int64`,
        `tf.float32` or `tf.string`).
      shape: per-example shape; `None` marks a variable-length axis.
      modality: the modality net the model uses for this feature, if any.
      vocabulary: for text features, the vocabulary file name in `data_dir`;
        the generator yields raw strings and the writer encodes them (plus EOS).
    """

    dtype: tf.DType
    shape: tuple[int | None, ...] = (None,)
    modality: ModalitySpec | None = None
    vocabulary: str | None = None

    @property
    def is_text(self) -> bool:
        return self.vocabulary is not None

    @property
    def is_variable_length(self) -> bool:
        return any(d is None for d in self.shape)
