"""Offline demo speech recognition: espeak-ng speaking real English sentences.

A stand-in for the paper's WSJ speech task (section 4) that works offline:
the English sentences of the Ding dictionary (`demo_translate`) spoken by the
espeak-ng synthesizer (`apt-get install espeak-ng`; `espeak-ng -v en-us -s
160 --stdout TEXT`, a 22.05 kHz mono 16-bit WAV). It is synthetic audio of
real text, one voice, no noise: numbers on it say that the pipeline and the
model work, not how well real speech is recognized.

Sentences: Ding English sides of `MIN_WORDS`-`MAX_WORDS` words made only of
letters, apostrophes, commas, hyphens and spaces before the final `.!?` (no
digits or abbreviations, which espeak expands into other words), and whose
words are all among the `VOCAB_WORDS` most frequent words of those
sentences' transcripts (10,190 speakable sentences, 8,973 distinct words;
3,935 sentences keep to the 2,000 most frequent). The restriction makes it
a limited-vocabulary task, as the early read-speech corpora were: a dev
sentence is new, but its words were heard in training, so a small model can
learn the sounds of the words instead of meeting most of them once. They
keep the Ding split (`demo_translate.is_dev`, so no dev sentence of EN-DE is
heard in speech training); within each split they are ordered by hash and
the first `NUM_TRAIN` / `NUM_DEV` distinct transcripts are spoken (3,000 of
3,676 train sentences, all 196 dev sentences; ~1.8 s each).

Audio: the WAV is decoded with soundfile, silence beyond 50 ms at either end
(|x| < 0.01) is trimmed, and the waveform is resampled to 16 kHz by FFT
(band-limited) resampling (`resample_fft`: the spectrum truncated to the new
Nyquist frequency). Stored as float32 `[S]` in [-1, 1]; the preprocessor
computes the paper's 80-bin log-mel spectrogram. Targets: the transcript
lower-cased, curly apostrophes straightened, punctuation other than
apostrophes removed. Space AUDIO_SPECTRAL -> EN_TOK; the metric is WER.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import io
import math
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator

import numpy as np
import soundfile
import tensorflow as tf

from problems import problem as problem_lib
from problems import registry, text_features
from problems.demo import translate as demo_translate
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors
from t2t_multimodel.modalities import specs as modality_specs

ESPEAK = "espeak-ng"
ESPEAK_ARGS = ("-v", "en-us", "-s", "160", "--stdout")
SAMPLE_RATE = 16000
MIN_WORDS = 4
MAX_WORDS = 8
VOCAB_WORDS = 2000
NUM_TRAIN = 3000
NUM_DEV = 400  # All of them: 196 dev sentences keep to VOCAB_WORDS.
NUM_WORKERS = 2  # espeak-ng processes run in parallel (threads wait on them).
SILENCE_THRESHOLD = 0.01
SILENCE_MARGIN_S = 0.05
_CHUNK = 32

_SPEAKABLE_RE = re.compile(r"[A-Za-z][A-Za-z'’, -]*[.!?]")
_NOT_TRANSCRIPT_RE = re.compile(r"[^a-z' ]+")


def transcript(sentence: str) -> str:
    """The target text of a spoken sentence.

    `"I’m tired, honestly!"` -> `"i'm tired honestly"`.
    """
    text = sentence.lower().replace("’", "'")
    return " ".join(_NOT_TRANSCRIPT_RE.sub(" ", text).split())


def is_speakable(sentence: str) -> bool:
    """Whether espeak says exactly the words of `sentence` (see module)."""
    words = len(sentence.split())
    return bool(
        MIN_WORDS <= words <= MAX_WORDS and _SPEAKABLE_RE.fullmatch(sentence)
    )


def frequent_words(transcripts: Iterable[str], count: int) -> set[str]:
    """The `count` most frequent words of `transcripts` (ties: first seen)."""
    counts = collections.Counter(w for t in transcripts for w in t.split())
    return {word for word, _ in counts.most_common(count)}


def select_sentences(
    english: list[str],
    split: str,
    count: int,
    vocab_words: int | None = VOCAB_WORDS,
) -> list[tuple[str, str]]:
    """`(sentence, transcript)` pairs chosen for `split` (see module).

    Args:
      english: candidate sentences (the Ding English sides). A transcript
        is spoken once: sentences that differ only in case or punctuation
        are kept as their first occurrence, in its split.
      split: `train` or `dev` (the Ding split of the sentence).
      count: how many to take, at most.
      vocab_words: keep only transcripts whose words are all among the this
        many most frequent words of all speakable transcripts (None: all).
    """
    want_dev = split == problem_lib.DEV
    first: dict[str, str] = {}  # Transcript -> its first sentence, any split.
    for sentence in english:
        if is_speakable(sentence):
            first.setdefault(transcript(sentence), sentence)
    if vocab_words is not None:
        allowed = frequent_words(first, vocab_words)
        first = {
            text: sentence
            for text, sentence in first.items()
            if all(w in allowed for w in text.split())
        }
    chosen = {
        text: sentence
        for text, sentence in first.items()
        if demo_translate.is_dev(sentence) == want_dev
    }

    def order(text: str) -> bytes:
        return hashlib.sha1(text.encode("utf-8")).digest()

    return [(chosen[t], t) for t in sorted(chosen, key=order)[:count]]


def _next_smooth(n: int) -> int:
    """The smallest integer >= n whose prime factors are 2, 3 and 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def resample_fft(waveform: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling by truncating or zero-padding the spectrum.

    The input is zero-padded to `down * k` samples (`rate / new_rate = down /
    up` in lowest terms, `k` 5-smooth), so both FFT sizes (`down * k` and
    `up * k`) have only small prime factors and the output grid falls on
    whole samples; the padding is cut off the output.

    Args:
      waveform: float `[S]`.
      rate: its sample rate (Hz).
      new_rate: the output rate (Hz).

    Returns:
      float32 `[round(S * new_rate / rate)]`; a sine below both Nyquist
      frequencies keeps its frequency and amplitude.
    """
    num_in = waveform.shape[0]
    num_out = int(round(num_in * new_rate / rate))
    gcd = math.gcd(rate, new_rate)
    up, down = new_rate // gcd, rate // gcd
    k = _next_smooth(max(1, -(-num_in // down)))
    padded_in, padded_out = down * k, up * k
    spectrum = np.fft.rfft(waveform.astype(np.float64), padded_in)
    keep = min(spectrum.shape[0], padded_out // 2 + 1)
    resized = np.zeros(padded_out // 2 + 1, np.complex128)
    resized[:keep] = spectrum[:keep]
    # irfft normalizes by the output length: rescale to keep amplitudes.
    out = np.fft.irfft(resized, padded_out) * (padded_out / padded_in)
    return out[:num_out].astype(np.float32)


def trim_silence(waveform: np.ndarray, rate: int) -> np.ndarray:
    """Drops leading/trailing silence, keeping `SILENCE_MARGIN_S` of it."""
    loud = np.nonzero(np.abs(waveform) >= SILENCE_THRESHOLD)[0]
    if loud.size == 0:
        return waveform
    margin = int(SILENCE_MARGIN_S * rate)
    start = max(0, int(loud[0]) - margin)
    return waveform[start : int(loud[-1]) + 1 + margin]


def synthesize(sentence: str, espeak: str = ESPEAK) -> np.ndarray:
    """espeak-ng's reading of `sentence`: float32 `[S]` at 16 kHz."""
    wav = subprocess.run(
        [espeak, *ESPEAK_ARGS, sentence], capture_output=True, check=True
    ).stdout
    # soundfile, not `wave`: espeak's streamed WAV header has a dummy size.
    waveform, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    if waveform.ndim == 2:
        waveform = waveform.mean(axis=1)
    waveform = trim_silence(waveform, rate)
    return np.clip(resample_fft(waveform, rate, SAMPLE_RATE), -1.0, 1.0)


def _generator(
    ding_path: str, split: str, count: int, espeak: str
) -> problem_lib.Generator:
    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        del tmp_dir  # The data comes from installed packages.
        if shutil.which(espeak) is None:
            raise problem_lib.MissingDataError(
                f"{espeak} not found: install it with `apt-get install "
                "espeak-ng` (scripts/setup.sh installs every demo package)."
            )
        english = [en for en, _ in demo_translate.read_ding_pairs(ding_path)]
        chosen = select_sentences(english, split, count)
        with concurrent.futures.ThreadPoolExecutor(NUM_WORKERS) as pool:
            # In chunks, so that at most one chunk of audio waits in memory.
            for start in range(0, len(chosen), _CHUNK):
                chunk = chosen[start : start + _CHUNK]
                waveforms = pool.map(
                    lambda s: synthesize(s, espeak), [s for s, _ in chunk]
                )
                for (_, text), waveform in zip(chunk, waveforms):
                    yield {"inputs": waveform, "targets": text}

    return generate


def espeak_problem(
    ding_path: str = demo_translate.DING_PATH,
    num_train: int = NUM_TRAIN,
    num_dev: int = NUM_DEV,
    espeak: str = ESPEAK,
    name: str = "demo_speech_espeak",
) -> problem_lib.Problem:
    """The espeak speech problem over the Ding sentences at `ding_path`."""
    counts = {problem_lib.TRAIN: num_train, problem_lib.DEV: num_dev}
    return problem_lib.Problem(
        name=name,
        generators={
            split: _generator(ding_path, split, count, espeak)
            for split, count in counts.items()
        },
        features={
            "inputs": features_lib.Feature(
                tf.float32, (None,), modality=modality_specs.AUDIO_SPECTRAL
            ),
            "targets": text_features.TEXT,
        },
        preprocessors=(preprocessors.log_mel_feature(sample_rate=SAMPLE_RATE),),
        metrics=("wer",),
        input_space_id=features_lib.SpaceID.AUDIO_SPECTRAL,
        target_space_id=features_lib.SpaceID.EN_TOK,
        raw_files_help=(
            f"`apt-get install espeak-ng {demo_translate.DING_PACKAGE}`."
        ),
        num_shards=2,
    )


DEMO_SPEECH_ESPEAK = registry.register(espeak_problem())
