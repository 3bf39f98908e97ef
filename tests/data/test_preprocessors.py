"""Tests for t2t_multimodel.data.preprocessors (numbers, not only shapes)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2t_multimodel.data import preprocessors


def _png(array: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _wav(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV; `samples` float [S] or [S, C] in [-1, 1]."""
    samples = samples.reshape(len(samples), -1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _dominant_hz(waveform: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return np.argmax(spectrum) * rate / len(waveform)


class TestDecodeImage:
    def test_known_2x2_png(self):
        rgb = np.array(
            [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]],
            np.uint8,
        )
        out = preprocessors.decode_image(_png(rgb, "RGB"), size=None).numpy()
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, rgb / 255.0)

    def test_gray_is_tiled_and_rgba_loses_alpha(self):
        gray = np.array([[0, 51], [102, 255]], np.uint8)
        out = preprocessors.decode_image(_png(gray, "L"), size=None).numpy()
        np.testing.assert_allclose(out, np.repeat(gray[..., None], 3, -1) / 255)
        rgba = np.zeros([2, 2, 4], np.uint8)
        rgba[..., 0], rgba[..., 3] = 204, 10
        out = preprocessors.decode_image(_png(rgba, "RGBA"), size=None)
        np.testing.assert_allclose(out.numpy()[..., 0], 0.8)
        assert out.shape == (2, 2, 3)

    def test_rgb_to_one_channel(self):
        rgb = np.full([2, 2, 3], 255, np.uint8)
        out = preprocessors.decode_image(_png(rgb, "RGB"), None, channels=1)
        # Luma weights 0.2989 + 0.5870 + 0.1140 = 0.9999.
        np.testing.assert_allclose(out.numpy(), 0.9999, atol=1e-6)
        assert out.shape == (2, 2, 1)

    def test_resize_of_constant_image_is_constant(self):
        rgb = np.full([5, 7, 3], 128, np.uint8)
        for fmt in ("PNG", "BMP", "GIF", "JPEG"):
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format=fmt)
            out = preprocessors.decode_image(buf.getvalue(), (3, 4)).numpy()
            assert out.shape == (3, 4, 3)
            np.testing.assert_allclose(out, 128 / 255, atol=2 / 255)

    def test_resize_is_antialiased(self):
        # 4x4 -> 2x2 of a checkerboard of 2x2 blocks.
        block = np.kron(np.array([[0, 255], [255, 0]]), np.ones([2, 2]))
        img = np.repeat(block[..., None], 3, -1).astype(np.uint8)
        out = preprocessors.decode_image(_png(img, "RGB"), (2, 2)).numpy()
        # The antialiasing triangle filter (radius 2 input pixels) puts
        # weights .75, .75, .25 (sum 1.75) on input pixels at distances .5,
        # .5, 1.5: own block a = 1.5 / 1.75, other block b = .25 / 1.75.
        a, b = 1.5 / 1.75, 0.25 / 1.75
        expected = [[2 * a * b, a * a + b * b], [a * a + b * b, 2 * a * b]]
        np.testing.assert_allclose(out[..., 0], expected, atol=1e-6)


class TestRandomCropAndFlip:
    def test_augmented_output_is_window_of_resized(self):
        rng = np.random.default_rng(0)
        image = tf.constant(rng.uniform(size=[6, 6, 3]), tf.float32)
        out = preprocessors.random_crop_and_flip(
            image, (4, 4), resize_to=(6, 6), probability=1.0, seed=3
        ).numpy()
        big = preprocessors.resize_image(image, (6, 6)).numpy()
        windows = [
            big[i : i + 4, j : j + 4] for i in range(3) for j in range(3)
        ]
        windows += [w[:, ::-1] for w in windows]
        assert min(np.abs(w - out).max() for w in windows) < 1e-6

    def test_augmentation_rates(self):
        # Columns increase left to right: a flip makes them decrease.
        ramp = np.tile(np.linspace(0, 1, 6, dtype=np.float32), [6, 1])
        image = tf.constant(np.repeat(ramp[..., None], 3, -1))
        resized = preprocessors.resize_image(image, (4, 4)).numpy()
        ds = tf.data.Dataset.range(400).map(
            lambda _: preprocessors.random_crop_and_flip(
                image, (4, 4), resize_to=(6, 6), seed=5
            )
        )
        augmented = flipped = 0
        for out in ds.as_numpy_iterator():
            if np.abs(out - resized).max() < 1e-6:
                continue
            augmented += 1
            flipped += out[0, 0, 0] > out[0, -1, 0]
        # 400 draws: sd(augmented) = 8, sd(flipped | 320) ~ 9; 3 sigma.
        assert 296 <= augmented <= 344
        assert abs(flipped - augmented / 2) <= 27

    def test_probability_zero_only_resizes(self):
        image = tf.random.stateless_uniform([8, 8, 3], seed=[1, 2])
        out = preprocessors.random_crop_and_flip(image, (4, 4), probability=0.0)
        expected = preprocessors.resize_image(image, (4, 4))
        np.testing.assert_allclose(out.numpy(), expected.numpy())

    def test_default_crop_source_is_360_for_299(self):
        with pytest.raises(ValueError, match="smaller"):
            preprocessors.random_crop_and_flip(
                tf.zeros([4, 4, 3]), (4, 4), resize_to=(3, 4)
            )


class TestAudio:
    def test_wav_8k_to_16k_doubles_samples_same_frequency(self):
        t = np.arange(8000) / 8000
        sine = 0.5 * np.sin(2 * np.pi * 440 * t)
        out = preprocessors.decode_wav(_wav(sine, 8000), 16000).numpy()
        assert out.shape == (16000,)
        assert _dominant_hz(out, 16000) == pytest.approx(440, abs=1)
        # Even samples are the original ones (linear interpolation).
        np.testing.assert_allclose(out[::2], sine, atol=1e-4)
        np.testing.assert_allclose(
            out[1:-1:2], (sine[:-1] + sine[1:]) / 2, atol=1e-4
        )

    def test_stereo_is_averaged_and_48k_downsampled(self):
        t = np.arange(4800) / 48000
        left = 0.5 * np.sin(2 * np.pi * 1000 * t)
        stereo = np.stack([left, np.zeros_like(left)], -1)
        out = preprocessors.decode_wav(_wav(stereo, 48000), 16000).numpy()
        assert out.shape == (1600,)
        assert _dominant_hz(out, 16000) == pytest.approx(1000, abs=10)
        # Mono average halves the amplitude; the 3-tap box filter at 1 kHz
        # keeps (1 + 2 cos(2 pi 1000 / 48000)) / 3 of it.
        gain = (1 + 2 * np.cos(2 * np.pi * 1000 / 48000)) / 3
        assert np.abs(out[10:-10]).max() == pytest.approx(0.25 * gain, rel=0.01)

    def test_16k_is_unchanged(self):
        samples = np.linspace(-0.5, 0.5, 100)
        out = preprocessors.decode_wav(_wav(samples, 16000)).numpy()
        np.testing.assert_allclose(out, samples, atol=1e-4)

    def test_log_mel_silence_and_tone(self):
        silence = preprocessors.log_mel_spectrogram(tf.zeros([16000])).numpy()
        assert silence.shape == (100, 80)  # ceil(16000 / 160) frames
        np.testing.assert_allclose(silence, np.log(1e-3))
        t = np.arange(16000) / 16000
        tone = preprocessors.log_mel_spectrogram(
            np.float32(0.5 * np.sin(2 * np.pi * 1000 * t))
        ).numpy()
        mel = tf.signal.linear_to_mel_weight_matrix(80, 257, 16000, 20.0, 8000)
        # The loudest band is the one whose filter weights the 1 kHz bin most.
        expected_band = np.argmax(mel.numpy()[1000 * 512 // 16000])
        assert np.all(np.argmax(tone[5:-5], -1) == expected_band)
        assert tone[50].max() > np.log(1e-3) + 5


class TestDatasetHelpers:
    def test_map_feature_training_switch(self):
        prep = preprocessors.map_feature(
            lambda x: x + 1, "inputs", train_fn=lambda x: x * 10
        )
        ds = tf.data.Dataset.from_tensor_slices({"inputs": [1, 2], "t": [5, 6]})
        evals = list(preprocessors.apply_preprocessors(ds, [prep], False))
        trains = list(preprocessors.apply_preprocessors(ds, [prep], True))
        assert [int(e["inputs"]) for e in evals] == [2, 3]
        assert [int(e["inputs"]) for e in trains] == [10, 20]
        assert [int(e["t"]) for e in trains] == [5, 6]

    def test_plain_dataset_function_and_image_feature(self):
        rgb = np.full([3, 3, 3], 255, np.uint8)
        ds = tf.data.Dataset.from_tensors({"inputs": _png(rgb, "RGB")})
        prep = [
            preprocessors.image_feature((4, 4)),
            lambda d: d.map(lambda e: {"inputs": e["inputs"] * 2}),
        ]
        (ex,) = list(preprocessors.apply_preprocessors(ds, prep, True))
        assert ex["inputs"].shape == (4, 4, 3)
        np.testing.assert_allclose(ex["inputs"].numpy(), 2.0, atol=1e-5)

    def test_log_mel_feature_single_example(self):
        prep = preprocessors.log_mel_feature(num_mel_bins=8)
        out = prep.apply({"inputs": tf.zeros([320])})
        np.testing.assert_allclose(out["inputs"].numpy(), np.log(1e-3))
        assert out["inputs"].shape == (2, 8)
