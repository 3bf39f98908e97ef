"""Tests of the demo speech problem (espeak-ng reading Ding sentences)."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from problems import problem as problem_lib
from problems.demo import speech as demo_speech
from problems.demo import translate as demo_translate

_HAS_ESPEAK = shutil.which(demo_speech.ESPEAK) is not None


class TestText:
    def test_transcript(self):
        assert demo_speech.transcript("I’m tired, honestly!") == (
            "i'm tired honestly"
        )
        assert (
            demo_speech.transcript("Well-known  facts.") == "well known facts"
        )

    def test_is_speakable(self):
        speakable = demo_speech.is_speakable
        assert speakable("They slipped quietly into the room.")
        assert speakable("I’m not sure, really.")
        assert not speakable("It costs 5 dollars now.")  # Digits.
        assert not speakable("Mr. Smith came home late.")  # Abbreviation.
        assert not speakable("Too short.")  # 2 words.
        assert not speakable("one two three four five six seven eight nine.")

    def test_select_sentences_keeps_split_dedupes_and_caps(self):
        english = [f"This is sentence {w}." for w in "abcdefghijklmnopqrst"]
        english += ["This is sentence A.", "It costs 5 dollars now."]
        train = demo_speech.select_sentences(english, "train", 100)
        dev = demo_speech.select_sentences(english, "dev", 100)
        chosen = [s for s, _ in train + dev]
        # "This is sentence A." has the transcript of "... a.": kept once.
        assert len(chosen) == 20 and "This is sentence A." not in chosen
        assert all(demo_translate.is_dev(s) for s, _ in dev)
        assert not any(demo_translate.is_dev(s) for s, _ in train)
        capped = demo_speech.select_sentences(english, "train", 3)
        assert capped == train[:3]
        assert train[0][1] == demo_speech.transcript(train[0][0])

    def test_frequent_words_ties_in_order_of_first_use(self):
        texts = ["b a c", "a d", "c"]
        # a: 2, c: 2, b: 1, d: 1 -> the two most frequent are a and c.
        assert demo_speech.frequent_words(texts, 2) == {"a", "c"}
        # A tie for the last place goes to the word seen first (b, not d).
        assert demo_speech.frequent_words(texts, 3) == {"a", "c", "b"}

    def test_select_sentences_keeps_to_the_frequent_words(self):
        common = [f"The cat sat there {n}." for n in ("now", "then")] * 1
        english = common + [
            "The cat sat there now.",
            "The cat sat there quietly.",  # "quietly": seen once.
            "The dog sat there now.",  # "dog": seen once.
        ]
        # Word counts over the distinct transcripts: the, sat, there: 4;
        # cat: 3; now: 2; then, quietly, dog: 1.
        both = lambda **kw: [
            t
            for split in ("train", "dev")
            for _, t in demo_speech.select_sentences(english, split, 9, **kw)
        ]
        kept = both(vocab_words=5)
        assert sorted(kept) == ["the cat sat there now"]
        assert len(both(vocab_words=None)) == 4


class TestAudio:
    def test_resample_fft_keeps_a_sine(self):
        t = np.arange(22050) / 22050
        sine = 0.5 * np.sin(2 * np.pi * 440 * t)
        out = demo_speech.resample_fft(sine, 22050, 16000)
        assert out.shape == (16000,) and out.dtype == np.float32
        expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
        np.testing.assert_allclose(out, expected, atol=1e-5)

    def test_resample_fft_length_and_removes_high_frequencies(self):
        # 10 kHz is above the new Nyquist (8 kHz): filtered out, not aliased.
        t = np.arange(22051) / 22050
        out = demo_speech.resample_fft(
            np.sin(2 * np.pi * 10000 * t), 22050, 16000
        )
        assert out.shape == (16001,)  # round(22051 * 16000 / 22050)
        assert np.abs(out[100:-100]).max() < 0.05

    def test_trim_silence(self):
        rate = 1000  # 50 ms margin = 50 samples.
        wave = np.zeros(1000, np.float32)
        wave[300:400] = 0.5
        trimmed = demo_speech.trim_silence(wave, rate)
        assert trimmed.shape == (200,)  # 250..450
        np.testing.assert_array_equal(trimmed[50:150], 0.5)
        silent = np.zeros(10, np.float32)
        assert demo_speech.trim_silence(silent, rate) is silent


@pytest.mark.skipif(not _HAS_ESPEAK, reason="apt-get install espeak-ng")
class TestEspeak:
    def test_one_sentence_rate_and_length(self):
        sentence = "They slipped quietly into the room."
        wav = subprocess.run(
            [demo_speech.ESPEAK, *demo_speech.ESPEAK_ARGS, sentence],
            capture_output=True,
            check=True,
        ).stdout
        raw, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
        assert rate == 22050 and raw.ndim == 1
        trimmed = demo_speech.trim_silence(raw, rate)
        waveform = demo_speech.synthesize(sentence)
        assert waveform.dtype == np.float32 and waveform.ndim == 1
        assert waveform.shape[0] == round(trimmed.shape[0] * 16000 / 22050)
        assert 1.0 < waveform.shape[0] / 16000 < 3.0  # ~2 s of speech.
        assert 0.2 < np.abs(waveform).max() <= 1.0
        log_mel = demo_speech.espeak_problem().preprocessors[0].fn(waveform)
        assert log_mel.shape == (-(-waveform.shape[0] // 160), 80)

    def test_problem_on_small_ding_file(self, tmp_path):
        path = tmp_path / "de-en"
        lines = [
            f"Satz {i}. :: This is sentence {w}.\n"
            for i, w in enumerate("abcdefghij")
        ]
        path.write_text("".join(lines), encoding="utf-8")
        problem = demo_speech.espeak_problem(
            str(path), num_train=3, num_dev=1, name="t_speech"
        )
        train = list(problem.generate("train", ""))
        assert len(train) == 3
        assert all(e["inputs"].dtype == np.float32 for e in train)
        assert {e["targets"] for e in train} <= {
            f"this is sentence {w}" for w in "abcdefghij"
        }
        dataset = tf.data.Dataset.from_tensors({"inputs": train[0]["inputs"]})
        for preprocess in problem.preprocessors:
            dataset = preprocess(dataset)
        assert next(iter(dataset))["inputs"].shape[-1] == 80


def test_missing_espeak(tmp_path):
    problem = demo_speech.espeak_problem(espeak="no-such-espeak-binary")
    with pytest.raises(problem_lib.MissingDataError, match="espeak-ng"):
        next(iter(problem.generate("train", "")))
