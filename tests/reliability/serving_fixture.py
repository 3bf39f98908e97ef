"""A tiny exported MultiModel (tests/decoding/tiny.py) for the serving tests.

`export_tiny(directory)` writes the SavedModel of `t2t-mm-exporter` for the
four tiny problems (text, image class, caption, speech) with greedy decoding
of at most `MAX_LENGTH` tokens and text inputs truncated to
`MAX_INPUT_LENGTH` ids; `bad_wavs()` holds WAV encodings TF cannot decode.
"""

from __future__ import annotations

import io
import os

import numpy as np
import soundfile

from t2t_multimodel.export import saved_model
from tests.decoding import tiny

MAX_LENGTH = 6
MAX_INPUT_LENGTH = 16
MAX_AUDIO_SECONDS = 2.0


def export_tiny(directory: str) -> str:
    """Exports the random tiny model; returns the SavedModel directory."""
    vocab = tiny.build_vocabulary(directory)
    model = tiny.build_model(seed=0)
    export_dir = os.path.join(directory, "export")
    saved_model.export(
        model=model,
        problems=tiny.PROBLEMS,
        vocabulary=vocab,
        export_dir=export_dir,
        beam_size=1,
        max_length=MAX_LENGTH,
        max_input_length=MAX_INPUT_LENGTH,
    )
    return export_dir


def _wav(subtype: str, seconds: float = 0.2, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone, rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def bad_wavs() -> dict[str, bytes]:
    """WAV encodings other than 16-bit PCM, by name."""
    return {
        "8-bit": _wav("PCM_U8"),
        "24-bit": _wav("PCM_24"),
        "float": _wav("FLOAT"),
    }
