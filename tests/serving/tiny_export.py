"""A tiny SavedModel with the exporter's serving signature shapes, for tests.

`write_tiny_export(path)` saves a `tf.Module` (no weights) whose signatures
have exactly the names, input keys and dtypes that `t2t-mm-exporter` writes
(SPEC.md section 1), with answers simple enough to compute by hand:

- `echo_upper` (text): `inputs` -> `outputs` = upper-cased input + " (N)",
  N the length in UTF-8 characters.
- `classify_brightness` (image classification): `image_bytes` ->
  `scores` = [1 - m, m] with m the mean pixel value / 255 over RGB,
  `class_ids` = argmax, `classes` = "dark" or "bright".
- `caption_size` (captioning): `image_bytes` -> `outputs` = "an image of
  H x W pixels".
- `transcribe_length` (speech): `audio_bytes` (WAV) -> `outputs` =
  "N samples at R Hz".
- `first_byte`: `inputs` -> `outputs` = the first byte of the input, which
  is not valid UTF-8 for a multi-byte first character (the b64 output path).
"""

from __future__ import annotations

import io
import struct
import wave
import zlib

import numpy as np
import tensorflow as tf
from PIL import Image

CLASS_NAMES = ("dark", "bright")
_STRINGS = tf.TensorSpec([None], tf.string)


class _TinyModel(tf.Module):
    @tf.function(input_signature=[_STRINGS])
    def echo_upper(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        length = tf.strings.length(inputs, unit="UTF8_CHAR")
        outputs = tf.strings.join(
            [tf.strings.upper(inputs), " (", tf.strings.as_string(length), ")"]
        )
        return {"outputs": outputs}

    @tf.function(input_signature=[_STRINGS])
    def first_byte(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"outputs": tf.strings.substr(inputs, 0, 1, unit="BYTE")}

    @tf.function(input_signature=[_STRINGS])
    def classify_brightness(
        self, image_bytes: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        def mean(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(
                data, channels=3, expand_animations=False
            )
            return tf.reduce_mean(tf.cast(image, tf.float32)) / 255.0

        m = tf.map_fn(mean, image_bytes, fn_output_signature=tf.float32)
        scores = tf.stack([1.0 - m, m], axis=1)  # [batch, 2]
        class_ids = tf.argmax(scores, axis=1, output_type=tf.int32)
        classes = tf.gather(tf.constant(CLASS_NAMES), class_ids)
        return {"classes": classes, "class_ids": class_ids, "scores": scores}

    @tf.function(input_signature=[_STRINGS])
    def caption_size(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        def caption(data: tf.Tensor) -> tf.Tensor:
            image = tf.io.decode_image(
                data, channels=3, expand_animations=False
            )
            size = tf.strings.as_string(tf.shape(image)[:2])
            return tf.strings.join(
                ["an image of ", size[0], " x ", size[1], " pixels"]
            )

        outputs = tf.map_fn(caption, image_bytes, fn_output_signature=tf.string)
        return {"outputs": outputs}

    @tf.function(input_signature=[_STRINGS])
    def transcribe_length(self, audio_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        def describe(data: tf.Tensor) -> tf.Tensor:
            audio, rate = tf.audio.decode_wav(data)
            samples = tf.strings.as_string(tf.shape(audio)[0])
            return tf.strings.join(
                [samples, " samples at ", tf.strings.as_string(rate), " Hz"]
            )

        outputs = tf.map_fn(
            describe, audio_bytes, fn_output_signature=tf.string
        )
        return {"outputs": outputs}


def write_tiny_export(path: str) -> str:
    """Saves the tiny model's five signatures as a SavedModel at `path`."""
    model = _TinyModel()
    signatures = {
        name: getattr(model, name)
        for name in (
            "echo_upper",
            "first_byte",
            "classify_brightness",
            "caption_size",
            "transcribe_length",
        )
    }
    tf.saved_model.save(model, path, signatures=signatures)
    return path


def png_bytes(value: int, height: int = 4, width: int = 6) -> bytes:
    """A gray PNG of constant pixel `value`, `height` x `width`."""
    pixels = np.full((height, width), value, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(num_samples: int, rate: int = 8000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV of `num_samples` frames of a 440 Hz tone."""
    t = np.arange(num_samples) / rate
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    frames = np.repeat(tone[:, None], channels, axis=1)  # [samples, channels]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(frames.tobytes())
    return buffer.getvalue()


def blank_png_bytes(width: int, height: int) -> bytes:
    """A valid black gray PNG of any size, compressed row by row.

    10,000 x 10,000 gives the issue's ~97 KB file that decodes to 100 M
    pixels, without ever holding the pixels in memory.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
        )

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # Filter byte 0, then `width` black pixels.
    parts = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )
