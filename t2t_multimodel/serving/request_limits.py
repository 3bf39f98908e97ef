"""Limits on one predict request, checked before the model runs.

One request must not be able to take the server down (issue #20). Besides
the body size (`app.py`, HTTP 413), a request is refused with an HTTP 400
when it has more than `max_instances` instances (checked in `rest.py`, before
any input is converted), when an image's header declares more than
`max_image_pixels` pixels, or when a WAV's header and data add up to more
than `max_audio_seconds`. The image and audio checks read only the headers
(Pillow's lazy `Image.open`, the RIFF chunk list), so a 97 KB PNG that would
decode to 10,000 x 10,000 pixels (1.6 GB in the model's decoder) costs
nothing. Inputs are recognised by the exporter's input names (SPEC.md
section 1): `image_bytes` and `audio_bytes`. Bytes that are not a readable
image or WAV pass unchanged: the model's decoder then rejects them with its
own message.

Defaults: 64 instances (twice the default `max_batch_size`: a 64-instance
request runs as one model call, about 1/16 of the time and memory of the
1,000-instance request of the issue); 4096 x 4096 pixels (12 MP phone
photos and 4K frames pass; the model resizes every image to its small input
size anyway); 60 s of audio (the default `DecodeConfig.max_audio_seconds`:
the exported model ignores any audio beyond it, so longer audio is refused
rather than silently cut).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping

import numpy as np
from PIL import Image

from t2t_multimodel.serving import rest

DEFAULT_MAX_INSTANCES = 64
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
DEFAULT_MAX_AUDIO_SECONDS = 60.0
IMAGE_INPUT = "image_bytes"
AUDIO_INPUT = "audio_bytes"


def image_size(data: bytes) -> tuple[int, int] | None:
    """`(width, height)` from an image's header; None if not an image.

    Only the header is read (Pillow opens images lazily); nothing is
    decoded.

    Raises:
      PIL.Image.DecompressionBombError: the header declares more than twice
        `Image.MAX_IMAGE_PIXELS` (179 million) pixels; Pillow refuses to
        open such an image at all.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS; the caller decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:
        raise
    except Exception:  # noqa: BLE001  (not an image Pillow can read)
        return None


def wav_seconds(data: bytes) -> float | None:
    """Seconds of audio in a RIFF/WAVE file, from its chunk headers.

    The data chunk's declared size is capped at the bytes present (a
    streamed WAV may declare 0xFFFFFFFF). None when `data` is not a WAV
    with a `fmt ` chunk before its `data` chunk.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position, bytes_per_second = 12, 0
    while position + 8 <= len(data):
        chunk = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        body = position + 8
        if chunk == b"fmt " and body + 16 <= len(data):
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            block_align = int.from_bytes(data[body + 12 : body + 14], "little")
            bytes_per_second = rate * block_align
        elif chunk == b"data":
            if not bytes_per_second:
                return None
            return min(size, len(data) - body) / bytes_per_second
        position = body + size + (size & 1)  # Chunks are word-aligned.
    return None


def _check_image(data: bytes, where: str, max_pixels: int) -> None:
    advice = (
        "(t2t-mm-serve --max_image_pixels); scale it down before sending it"
    )
    try:
        size = image_size(data)
    except Image.DecompressionBombError:
        # Pillow's own limit; above it the size is not available.
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or 0))
        raise rest.RestError(
            f"{where}: the image has more than {limit:,} pixels, the limit "
            f"{advice}"
        ) from None
    if size is not None and size[0] * size[1] > max_pixels:
        width, height = size
        raise rest.RestError(
            f"{where}: the image is {width} x {height} = {width * height:,} "
            f"pixels, more than the limit of {max_pixels:,} {advice}"
        )


def _check_audio(data: bytes, where: str, max_seconds: float) -> None:
    seconds = wav_seconds(data)
    if seconds is not None and seconds > max_seconds:
        raise rest.RestError(
            f"{where}: the audio is {seconds:.1f} s long, more than the "
            f"limit of {max_seconds:g} s (t2t-mm-serve --max_audio_seconds); "
            "send a shorter recording or split it"
        )


def check_media(
    inputs: Mapping[str, np.ndarray],
    *,
    max_image_pixels: int,
    max_audio_seconds: float,
) -> None:
    """Refuses an oversize image or a too long WAV among `inputs`.

    Args:
      inputs: a parsed request's arrays by input name, batch first.
      max_image_pixels: most pixels (width x height) of one image.
      max_audio_seconds: longest WAV, in seconds.

    Raises:
      rest.RestError: (400) naming the input, the instance and the limit.
    """
    for name, values in inputs.items():
        if name not in (IMAGE_INPUT, AUDIO_INPUT):
            continue
        for i, data in enumerate(np.asarray(values).ravel()):
            where = f"input {name!r}, instance {i}"
            if name == IMAGE_INPUT:
                _check_image(data, where, max_image_pixels)
            else:
                _check_audio(data, where, max_audio_seconds)
