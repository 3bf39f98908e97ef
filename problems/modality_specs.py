"""The modality nets problems name, as specs (one shared instance per name).

Problems refer to these constants so that every text problem names the same
`symbol` modality (the paper's single shared language modality net and 8k
vocabulary), every image-input problem the same `image` entry flow, and so on.
The classes are named by import path so that this module does not import Keras.
"""

from __future__ import annotations

from t2t_multimodel.data import features

_MOD = "t2t_multimodel.modalities"

# The paper's one shared subword vocabulary for all text.
VOCAB_SIZE = 8192
SHARED_VOCAB_FILE = f"vocab.shared.{VOCAB_SIZE}.model"

SYMBOL = features.ModalitySpec(
    "symbol", f"{_MOD}.symbol.SymbolModality", {"vocab_size": VOCAB_SIZE}
)
IMAGE = features.ModalitySpec("image", f"{_MOD}.image.ImageModality")
AUDIO_WAVEFORM = features.ModalitySpec("audio", f"{_MOD}.audio.AudioModality")
AUDIO_SPECTRAL = features.ModalitySpec(
    "audio_spectral", f"{_MOD}.audio.AudioSpectralModality"
)


def class_label(num_classes: int) -> features.ModalitySpec:
    """The class-label (exit flow) modality for `num_classes` classes."""
    return features.ModalitySpec(
        f"class_label_{num_classes}",
        f"{_MOD}.class_label.ClassLabelModality",
        {"num_classes": num_classes},
    )
