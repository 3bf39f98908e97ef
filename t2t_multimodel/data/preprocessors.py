"""Per-example preprocessing in pure TF ops: images, audio, spectrograms.

The functions take one example's tensor (no batch axis) and use only TF ops,
so the same code runs inside `tf.data` at training time and inside an exported
serving graph (raw JPEG/PNG or WAV bytes in). They implement the paper's input
conventions (section 2.1 and the T2T data code): images resized to 299x299 with
80% of training images resized to 360x360, randomly cropped and flipped;
audio as a 16 kHz waveform or an 80-bin log-mel spectrogram.

`MapFeature` wraps such a function as a Dataset-level preprocessor, the kind a
`Problem` lists in `Problem.preprocessors`: `preprocessor(dataset,
training=...)` maps one feature of every example, and
`preprocessor.apply(example, training=...)` does the same to a single example
dict (what a serving signature needs).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

# T2T / the paper: 299x299 images; training crops come from 360x360.
IMAGE_SIZE = (299, 299)
AUGMENT_RESIZE = (360, 360)
SAMPLE_RATE = 16000

TensorFn = Callable[[tf.Tensor], tf.Tensor]


def decode_image(
    image_bytes: tf.Tensor,
    size: tuple[int, int] | None = IMAGE_SIZE,
    channels: int = 3,
) -> tf.Tensor:
    """Decodes an encoded image into float32 `[H, W, channels]` in [0, 1].

    Args:
      image_bytes: scalar `tf.string`, a JPEG, PNG, BMP or GIF (the first
        frame of an animation).
      size: `(H, W)` to resize to (bilinear with antialiasing), or `None` to
        keep the decoded size.
      channels: 3 (gray is tiled to RGB, alpha dropped) or 1 (RGB converted
        to luma).

    Returns:
      float32 `[H, W, channels]` in [0, 1].
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    # dtype=float32 scales 8-bit and 16-bit images to [0, 1].
    image = tf.io.decode_image(
        image_bytes, channels=0, dtype=tf.float32, expand_animations=False
    )
    depth = tf.shape(image)[-1]
    if channels == 3:
        image = tf.cond(
            depth < 3,  # gray or gray+alpha
            lambda: tf.tile(image[..., :1], [1, 1, 3]),
            lambda: image[..., :3],  # RGB or RGBA
        )
    else:
        image = tf.cond(
            depth < 3,
            lambda: image[..., :1],
            lambda: tf.image.rgb_to_grayscale(image[..., :3]),
        )
    image.set_shape([None, None, channels])
    if size is not None:
        image = resize_image(image, size)
    return image


def resize_image(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Bilinear resize with antialiasing to float32 `[*size, C]` in [0, 1]."""
    image = tf.image.resize(image, size, antialias=True)
    return tf.clip_by_value(image, 0.0, 1.0)


def random_crop_and_flip(
    image: tf.Tensor,
    size: tuple[int, int] = IMAGE_SIZE,
    *,
    resize_to: tuple[int, int] | None = None,
    probability: float = 0.8,
    seed: int | None = None,
) -> tf.Tensor:
    """The paper's / T2T's training augmentation of one image.

    With probability `probability` the image is resized to `resize_to`
    (default: `size` scaled by 360/299, i.e. 360x360 for 299x299), randomly
    cropped to `size` and randomly flipped left-right; otherwise it is only
    resized to `size`.

    Args:
      image: float32 `[H, W, C]` in [0, 1], any size.
      size: output `(H, W)`.
      resize_to: the size cropped from; each side must be >= `size`.
      probability: fraction of augmented images (0.8 in T2T).
      seed: op seed, for reproducible augmentation.

    Returns:
      float32 `[size[0], size[1], C]`.
    """
    if resize_to is None:
        resize_to = tuple(
            round(s * AUGMENT_RESIZE[0] / IMAGE_SIZE[0]) for s in size
        )
    if resize_to[0] < size[0] or resize_to[1] < size[1]:
        raise ValueError(f"resize_to {resize_to} is smaller than {size}")
    depth = image.shape[-1]
    # Distinct op seeds: equal ones would give the coin, the crop and the
    # flip the same random stream (flipping would correlate with the coin).
    seeds = [None] * 3 if seed is None else [seed, seed + 1, seed + 2]

    def augment() -> tf.Tensor:
        big = resize_image(image, resize_to)
        crop = tf.image.random_crop(
            big, [size[0], size[1], depth], seed=seeds[1]
        )
        return tf.image.random_flip_left_right(crop, seed=seeds[2])

    coin = tf.random.uniform([], seed=seeds[0])
    out = tf.cond(
        coin < probability, augment, lambda: resize_image(image, size)
    )
    out.set_shape([size[0], size[1], depth])
    return out


def decode_wav(
    wav_bytes: tf.Tensor, sample_rate: int = SAMPLE_RATE
) -> tf.Tensor:
    """Decodes a 16-bit PCM WAV into a mono float32 waveform at `sample_rate`.

    Channels are averaged. Resampling is in-graph: when the file's rate is
    higher than `sample_rate`, a moving average over `round(rate /
    sample_rate)` samples first suppresses most of what would alias (a cheap
    box low-pass, not a sinc filter); then the output sample `j` is the linear
    interpolation of the input at time `j / sample_rate`. The output has
    `floor(S * sample_rate / rate)` samples.

    Args:
      wav_bytes: scalar `tf.string`, a RIFF WAV file, 16-bit PCM.
      sample_rate: output rate in Hz.

    Returns:
      float32 `[S']` in [-1, 1].
    """
    audio, rate = tf.audio.decode_wav(wav_bytes)  # [S, C], scalar int32
    waveform = tf.reduce_mean(audio, axis=-1)  # [S]
    return resample(waveform, rate, sample_rate)


def resample(
    waveform: tf.Tensor, rate: tf.Tensor | int, sample_rate: int
) -> tf.Tensor:
    """Resamples float32 `[S]` from `rate` to `sample_rate` (see decode_wav)."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    rate64 = tf.cast(rate, tf.float64)
    num_in = tf.shape(waveform, out_type=tf.int64)[0]
    # Box low-pass of width k = round(rate / sample_rate) when downsampling,
    # as differences of a float64 cumulative sum (exact enough for hours).
    k = tf.maximum(
        tf.cast(tf.round(rate64 / sample_rate), tf.int64),
        tf.constant(1, tf.int64),
    )
    x = tf.cast(waveform, tf.float64)
    padded = tf.pad(x, [[k // 2 + 1, k - 1 - k // 2]])
    csum = tf.cumsum(padded)  # [S + k]
    smoothed = (csum[k:] - csum[:-k]) / tf.cast(k, tf.float64)  # [S]
    # Output sample j sits at input position j * rate / sample_rate.
    num_out = num_in * sample_rate // tf.cast(rate, tf.int64)
    pos = tf.range(num_out, dtype=tf.float64) * (rate64 / sample_rate)
    left = tf.minimum(tf.cast(tf.floor(pos), tf.int64), num_in - 1)
    right = tf.minimum(left + 1, num_in - 1)
    frac = pos - tf.cast(left, tf.float64)
    out = (1.0 - frac) * tf.gather(smoothed, left) + frac * tf.gather(
        smoothed, right
    )
    return tf.cast(out, tf.float32)


def log_mel_spectrogram(
    waveform: tf.Tensor,
    sample_rate: int = SAMPLE_RATE,
    num_mel_bins: int = 80,
    frame_length: int = 400,
    frame_step: int = 160,
    *,
    fft_length: int = 512,
    lower_edge_hertz: float = 20.0,
    upper_edge_hertz: float | None = None,
    preemphasis: float = 0.97,
    log_floor: float = 1e-3,
) -> tf.Tensor:
    """The paper's spectral audio input: log-mel filterbank features.

    As T2T's `compute_mel_filterbank_features`: pre-emphasis, a 25 ms / 10 ms
    periodic-Hann STFT (frames padded at the end), the magnitude spectrum
    mapped onto `num_mel_bins` mel bands, and `log(max(mel, log_floor))`.

    Args:
      waveform: float32 `[S]` in [-1, 1] at `sample_rate`.
      sample_rate: Hz.
      num_mel_bins: mel bands (80 in the paper's setup).
      frame_length: samples per frame (400 = 25 ms at 16 kHz).
      frame_step: hop in samples (160 = 10 ms).
      fft_length: FFT size (>= frame_length).
      lower_edge_hertz: lowest mel band edge.
      upper_edge_hertz: highest edge (default: Nyquist).
      preemphasis: coefficient of `x[t] - a * x[t-1]` (0 disables it).
      log_floor: floor before the log; silence maps to `log(log_floor)`.

    Returns:
      float32 `[ceil(S / frame_step), num_mel_bins]`.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if preemphasis:
        waveform = tf.concat(
            [waveform[:1], waveform[1:] - preemphasis * waveform[:-1]], 0
        )
    stft = tf.signal.stft(
        waveform,
        frame_length=frame_length,
        frame_step=frame_step,
        fft_length=fft_length,
        window_fn=tf.signal.hann_window,
        pad_end=True,
    )  # [T, fft_length // 2 + 1] complex
    magnitude = tf.abs(stft)
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=num_mel_bins,
        num_spectrogram_bins=fft_length // 2 + 1,
        sample_rate=sample_rate,
        lower_edge_hertz=lower_edge_hertz,
        upper_edge_hertz=upper_edge_hertz or sample_rate / 2,
    )  # [fft_length // 2 + 1, num_mel_bins]
    mel = tf.matmul(magnitude, mel_matrix)  # [T, num_mel_bins]
    return tf.math.log(tf.maximum(mel, log_floor))


Example = dict[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class MapFeature:
    """A preprocessor that maps one feature of every example.

    Attributes:
      key: the feature to map.
      fn: applied to the feature (one example, no batch axis).
      train_fn: used instead of `fn` when `training` is true (augmentation);
        `None` means `fn` in both modes.
    """

    key: str
    fn: TensorFn
    train_fn: TensorFn | None = None

    def apply(
        self, example: Mapping[str, Any], training: bool = False
    ) -> Example:
        """Returns a copy of the single `example` with `key` mapped."""
        fn = self.train_fn if training and self.train_fn else self.fn
        out = dict(example)
        out[self.key] = fn(example[self.key])
        return out

    def __call__(
        self, dataset: tf.data.Dataset, training: bool = False
    ) -> tf.data.Dataset:
        return dataset.map(
            lambda ex: self.apply(ex, training),
            num_parallel_calls=tf.data.AUTOTUNE,
        )


def map_feature(
    fn: TensorFn, key: str = "inputs", *, train_fn: TensorFn | None = None
) -> MapFeature:
    """A Dataset-level preprocessor applying `fn` to feature `key`."""
    return MapFeature(key=key, fn=fn, train_fn=train_fn)


def image_feature(
    size: tuple[int, int] = IMAGE_SIZE,
    key: str = "inputs",
    *,
    channels: int = 3,
    augment: bool = True,
    seed: int | None = None,
) -> MapFeature:
    """Encoded image bytes -> float32 `[*size, channels]` in [0, 1].

    In training (when `augment`) 80% of images are resized to 360/299 of
    `size`, randomly cropped and flipped (`random_crop_and_flip`).
    """

    def decode(image_bytes: tf.Tensor) -> tf.Tensor:
        return decode_image(image_bytes, size, channels)

    def decode_and_augment(image_bytes: tf.Tensor) -> tf.Tensor:
        image = decode_image(image_bytes, None, channels)
        return random_crop_and_flip(image, size, seed=seed)

    return MapFeature(key, decode, decode_and_augment if augment else None)


def log_mel_feature(
    key: str = "inputs", sample_rate: int = SAMPLE_RATE, **kwargs: Any
) -> MapFeature:
    """Waveform `[S]` -> log-mel `[T, num_mel_bins]` (`log_mel_spectrogram`)."""

    def to_log_mel(waveform: tf.Tensor) -> tf.Tensor:
        return log_mel_spectrogram(waveform, sample_rate, **kwargs)

    return MapFeature(key, to_log_mel)


def accepts_training(preprocessor: Callable[..., Any]) -> bool:
    """Whether `preprocessor` takes a `training` keyword argument."""
    try:
        params = inspect.signature(preprocessor).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def apply_preprocessors(
    dataset: tf.data.Dataset,
    preprocessors: Sequence[Callable[..., tf.data.Dataset]],
    training: bool = False,
) -> tf.data.Dataset:
    """Applies `Problem.preprocessors` in order.

    A preprocessor is `fn(dataset) -> dataset`, or `fn(dataset, training=...)`
    when it behaves differently in training (augmentation).
    """
    for preprocessor in preprocessors:
        if accepts_training(preprocessor):
            dataset = preprocessor(dataset, training=training)
        else:
            dataset = preprocessor(dataset)
    return dataset
