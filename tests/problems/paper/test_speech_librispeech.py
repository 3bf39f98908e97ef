"""Tests of the LibriSpeech and WAV-manifest problems on tiny audio files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from problems import problem as problem_lib
from problems import registry
from problems.paper import speech_librispeech
from t2t_multimodel.data import features as features_lib

PCM16 = 1 / 32768  # Quantization step of 16-bit files.


def _tone(num_samples: int, freq: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(num_samples) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write_librispeech(tmp_path) -> dict[str, np.ndarray]:
    audio = {
        "19-198-0000": _tone(1600, 440.0),
        "19-198-0001": _tone(2400, 220.0),
        "84-121123-0000": _tone(800, 330.0),
    }
    for subset, speaker, chapter, utts, trans in [
        (
            "train-clean-100",
            "19",
            "198",
            ["19-198-0000", "19-198-0001"],
            "19-198-0000 NORTHANGER ABBEY\n"
            "19-198-0001 THIS LITTLE WORK WAS FINISHED IN THE YEAR\n"
            "19-198-0002 NO FLAC FOR THIS ONE\n",
        ),
        (
            "dev-clean",
            "84",
            "121123",
            ["84-121123-0000"],
            "84-121123-0000 GO DO YOU HEAR\n",
        ),
    ]:
        chapter_dir = tmp_path / "LibriSpeech" / subset / speaker / chapter
        chapter_dir.mkdir(parents=True)
        for utt in utts:
            soundfile.write(
                chapter_dir / f"{utt}.flac", audio[utt], 16000, subtype="PCM_16"
            )
        (chapter_dir / f"{speaker}-{chapter}.trans.txt").write_text(trans)
    return audio


class TestLibriSpeech:
    def test_train_and_dev(self, tmp_path, caplog):
        audio = _write_librispeech(tmp_path)
        problem = speech_librispeech.SPEECH_LIBRISPEECH8K
        with caplog.at_level(logging.WARNING):
            train = list(problem.generate("train", str(tmp_path)))
        assert [ex["targets"] for ex in train] == [
            "northanger abbey",
            "this little work was finished in the year",
        ]
        assert "1 utterances without .flac skipped" in caplog.text
        for ex, utt in zip(train, ["19-198-0000", "19-198-0001"]):
            assert ex["inputs"].dtype == np.float32
            assert ex["inputs"].shape == audio[utt].shape  # 1600, 2400
            np.testing.assert_allclose(ex["inputs"], audio[utt], atol=PCM16)
        (dev,) = problem.generate("dev", str(tmp_path))
        assert dev["targets"] == "go do you hear"
        assert dev["inputs"].shape == (800,)

    def test_test_clean(self, tmp_path):
        problem = speech_librispeech.SPEECH_LIBRISPEECH8K
        with pytest.raises(problem_lib.MissingDataError, match="test-clean"):
            next(problem.generate("test", str(tmp_path)))
        chapter = tmp_path / "LibriSpeech" / "test-clean" / "1089" / "134686"
        chapter.mkdir(parents=True)
        soundfile.write(
            chapter / "1089-134686-0000.flac", _tone(800, 200.0), 16000
        )
        (chapter / "1089-134686.trans.txt").write_text(
            "1089-134686-0000 HE HOPED THERE WOULD BE STEW\n"
        )
        (test,) = problem.generate("test", str(tmp_path))
        assert test["targets"] == "he hoped there would be stew"
        assert test["inputs"].shape == (800,)

    def test_raw_files(self):
        files = speech_librispeech.SPEECH_LIBRISPEECH8K.raw_files
        assert [f.filename for f in files] == [
            "train-clean-100.tar.gz",
            "train-clean-360.tar.gz",
            "train-other-500.tar.gz",
            "dev-clean.tar.gz",
            "test-clean.tar.gz",
        ]
        assert all(f.extract and f.members == ("LibriSpeech/",) for f in files)
        assert files[-1].provides == (("LibriSpeech/test-clean", "test-clean"),)
        assert files[-1].remote.md5 == "32fa31d27d2e1cad72775fee3f4849a9"

    def test_definition(self):
        problem = registry.get_problem("speech_librispeech8k")
        assert problem is speech_librispeech.SPEECH_LIBRISPEECH8K
        assert problem.input_space_id == features_lib.SpaceID.AUDIO_SPECTRAL
        assert problem.target_space_id == features_lib.SpaceID.EN_TOK
        assert problem.input_modality == "audio_spectral"
        assert problem.target_modality == "symbol"
        assert problem.metrics == ("wer",)
        # 0.1 s of audio -> 10 frames of 80 log-mel bins.
        (to_log_mel,) = problem.preprocessors
        example = {"inputs": tf.constant(_tone(1600, 440.0))}
        assert to_log_mel.apply(example)["inputs"].shape == (10, 80)

    def test_missing_files_message(self, tmp_path):
        problem = speech_librispeech.SPEECH_LIBRISPEECH8K
        with pytest.raises(problem_lib.MissingDataError) as info:
            next(problem.generate("dev", str(tmp_path)))
        message = str(info.value)
        assert "dev-clean" in message
        assert "LibriSpeech/<subset>/<speaker>/<chapter>/" in message
        assert "https://www.openslr.org/12" in message


class TestWavManifest:
    def test_stereo_8khz_is_averaged_and_resampled(self, tmp_path):
        # Left = n / 1000, right = -n / 2000: the mono mean is n / 4000.
        n = np.arange(800)
        stereo = np.stack([n / 1000, -n / 2000], axis=1).astype(np.float32)
        (tmp_path / "clips").mkdir()
        soundfile.write(
            tmp_path / "clips" / "a.wav", stereo, 8000, subtype="PCM_16"
        )
        tone = _tone(4800, 100.0, rate=48000)
        soundfile.write(tmp_path / "b.wav", tone, 48000, subtype="PCM_16")
        (tmp_path / "wav_manifest_train.tsv").write_text(
            "clips/a.wav\tHello there.\n\nb.wav\t Second one \n"
        )
        problem = registry.get_problem("speech_wav_manifest8k")
        first, second = problem.generate("train", str(tmp_path))
        assert first["targets"] == "Hello there."
        assert second["targets"] == "Second one"
        # 8 kHz -> 16 kHz: 1600 samples; even j is input j / 2, odd j the
        # mean of its neighbours, the last one repeats input 799.
        wave = first["inputs"]
        assert wave.shape == (1600,) and wave.dtype == np.float32
        expected = np.minimum(np.arange(1600) / 2, 799) / 4000
        np.testing.assert_allclose(wave, expected, atol=2 * PCM16)
        # 48 kHz -> 16 kHz: 1600 samples; away from the edges, the box
        # filter (3 taps) then sampling every third input.
        wave = second["inputs"]
        assert wave.shape == (1600,)
        box = np.convolve(tone, np.ones(3) / 3, mode="same")
        np.testing.assert_allclose(wave[1:-1], box[3:-3:3], atol=2 * PCM16)

    def test_bad_line_and_missing_manifest(self, tmp_path):
        problem = speech_librispeech.SPEECH_WAV_MANIFEST8K
        with pytest.raises(problem_lib.MissingDataError) as info:
            next(problem.generate("dev", str(tmp_path)))
        assert "wav_manifest_dev.tsv" in str(info.value)
        assert "path<TAB>transcript" in str(info.value)
        (tmp_path / "wav_manifest_dev.tsv").write_text("a.wav no tab\n")
        with pytest.raises(ValueError, match="wav_manifest_dev.tsv:1"):
            next(problem.generate("dev", str(tmp_path)))


def test_datagen_end_to_end(tmp_path):
    """WAV manifest -> vocabulary + TFRecords -> parsed and preprocessed."""
    datagen = pytest.importorskip("programs.datagen")
    from t2t_multimodel.data import tfrecord
    from t2t_multimodel.data import vocabulary as vocabulary_lib

    raw, data = tmp_path / "raw", tmp_path / "data"
    raw.mkdir()
    texts = ["the cat sat on the mat", "a dog ran home", "the dog sat"]
    for i in range(len(texts)):
        soundfile.write(
            raw / f"{i}.wav", _tone(400 * (i + 1), 300.0, 8000), 8000
        )
    (raw / "wav_manifest_train.tsv").write_text(
        "".join(f"{i}.wav\t{t}\n" for i, t in enumerate(texts[:2]))
    )
    (raw / "wav_manifest_dev.tsv").write_text(f"2.wav\t{texts[2]}\n")
    datagen.generate_data(
        problem_names="speech_wav_manifest8k",
        data_dir=str(data),
        tmp_dir=str(raw),
        num_shards=1,
        vocab_size=64,
        verbose=False,
    )
    problem = speech_librispeech.SPEECH_WAV_MANIFEST8K
    vocab = vocabulary_lib.Vocabulary.load(
        str(data / problem.features["targets"].vocabulary)
    )
    (path,) = tfrecord.shard_paths(str(data), problem.name, "dev", 1)
    (record,) = tf.data.TFRecordDataset(path)
    example = tfrecord.parse_example(record, problem.features)
    # 1200 samples at 8 kHz -> 2400 at 16 kHz; text ids end with EOS.
    assert example["inputs"].shape == (2400,)
    ids = example["targets"].numpy().tolist()
    assert ids[-1] == vocabulary_lib.EOS_ID
    assert vocab.decode(ids[:-1]) == "the dog sat"
    (to_log_mel,) = problem.preprocessors
    assert to_log_mel.apply(example)["inputs"].shape == (15, 80)
