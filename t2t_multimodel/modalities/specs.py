"""Modality specs: which modality net a feature goes through (section 2.1).

A `ModalitySpec` names a modality net and how to build it; every problem that
names the same spec shares one instance in `MultiModel.modalities` (the paper
shares modality nets by modality, never by task). The constants are the specs
the paper's problems use: one shared `symbol` modality over the shared 8k
subword vocabulary, the `image` entry flow, the audio entry flows, and a
class-label exit flow per number of classes. The classes are named by import
path, resolved when a spec is built, so that problems and datagen can name
them without importing Keras.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
    """Which modality net a feature goes through.

    Attributes:
      name: the key in `MultiModel.modalities`. Every problem that names the
        same key shares one modality instance.
      cls: the `t2t_multimodel.modalities` class to build, or its import
        path as a string (`"t2t_multimodel.modalities.symbol.SymbolModality"`),
        resolved when the modality is built.
      kwargs: constructor arguments other than `hidden_dim`.
    """

    name: str
    cls: type | str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def class_name(self) -> str:
        """The modality class's name (`"SymbolModality"`), unresolved."""
        cls = self.cls
        return cls.rpartition(".")[2] if isinstance(cls, str) else cls.__name__

    def build(self, hidden_dim: int, **overrides: Any) -> Any:
        """Instantiates the modality at body width `hidden_dim`."""
        kwargs = {**dict(self.kwargs), **overrides}
        cls = self.cls
        if isinstance(cls, str):
            module_name, _, class_name = cls.rpartition(".")
            cls = getattr(importlib.import_module(module_name), class_name)
        return cls(hidden_dim=hidden_dim, name=self.name, **kwargs)


_MOD = "t2t_multimodel.modalities"

# The size of the paper's one shared subword vocabulary for all text.
VOCAB_SIZE = 8192

SYMBOL = ModalitySpec(
    "symbol", f"{_MOD}.symbol.SymbolModality", {"vocab_size": VOCAB_SIZE}
)
IMAGE = ModalitySpec("image", f"{_MOD}.image.ImageModality")
AUDIO_WAVEFORM = ModalitySpec("audio", f"{_MOD}.audio.AudioModality")
AUDIO_SPECTRAL = ModalitySpec(
    "audio_spectral", f"{_MOD}.audio.AudioSpectralModality"
)


def class_label(num_classes: int) -> ModalitySpec:
    """The class-label (exit flow) modality for `num_classes` classes."""
    return ModalitySpec(
        f"class_label_{num_classes}",
        f"{_MOD}.class_label.ClassLabelModality",
        {"num_classes": num_classes},
    )
