"""Tests of ProblemDecoder: raw inputs, cached decoding, classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.data import preprocessors, vocabulary
from t2t_multimodel.decoding import decoder
from tests.decoding import tiny


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return tiny.build_vocabulary(str(tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="module")
def model():
    return tiny.build_model()


def _decoder(model, vocab, problem, **config):
    return decoder.ProblemDecoder(
        model, problem, vocab, decoder.DecodeConfig(**config)
    )


class TestRawInputs:
    def test_text_tokenized_with_eos_and_truncated(self, model, vocab):
        texts = ["the cat sat on the mat", "where"]
        d = _decoder(model, vocab, tiny.TEXT_PROBLEM, max_input_length=4)
        features = d.model_features(tf.constant(texts))
        expected = [vocab.encode(t)[:3] + [vocabulary.EOS_ID] for t in texts]
        width = max(len(e) for e in expected)
        np.testing.assert_array_equal(
            features["inputs"],
            [e + [0] * (width - len(e)) for e in expected],
        )
        np.testing.assert_array_equal(
            features["inputs_mask"],
            [[True] * len(e) + [False] * (width - len(e)) for e in expected],
        )
        assert len(vocab.encode(texts[0])) > 3  # it was truncated
        np.testing.assert_array_equal(
            features["target_space_id"], [int(tiny.S.DE_TOK)] * 2
        )

    def test_images_of_any_size_and_format(self, model, vocab):
        d = _decoder(model, vocab, tiny.IMAGE_PROBLEM)
        raw = tiny.raw_inputs(tiny.IMAGE_PROBLEM)
        features = d.model_features(tf.constant(raw))
        expected = [preprocessors.decode_image(r, (8, 8), 3) for r in raw]
        np.testing.assert_allclose(features["inputs"], np.stack(expected))
        assert features["inputs"].shape == (3, 8, 8, 3)

    def test_wavs_resampled_padded_and_masked(self, model, vocab):
        d = _decoder(model, vocab, tiny.SPEECH_PROBLEM)
        raw = tiny.raw_inputs(tiny.SPEECH_PROBLEM)  # 16 kHz mono, 22.05 stereo
        features = d.model_features(tf.constant(raw))
        # floor(S * 16000 / rate) samples, ceil(S' / 160) frames.
        frames = [
            math.ceil(4800 / 160),
            math.ceil(11025 * 16000 // 22050 / 160),
        ]
        assert features["inputs"].shape == (2, max(frames), tiny.NUM_MEL_BINS)
        np.testing.assert_array_equal(
            np.sum(features["inputs_mask"], axis=1), frames
        )
        one = preprocessors.log_mel_spectrogram(
            preprocessors.decode_wav(raw[1]), num_mel_bins=tiny.NUM_MEL_BINS
        )
        np.testing.assert_allclose(features["inputs"][1], one, atol=1e-5)

    @pytest.mark.parametrize(
        "problem,raw,message",
        [
            (tiny.TEXT_PROBLEM, ["ok", ""], "inputs at batch positions"),
            (tiny.IMAGE_PROBLEM, [b"", tiny.png(0)], "not a JPEG, PNG"),
            (tiny.CAPTION_PROBLEM, [tiny.png(0), b"GIF"], "not a JPEG, PNG"),
            (tiny.SPEECH_PROBLEM, [b"RIFF...."], "not RIFF/WAVE"),
            (tiny.SPEECH_PROBLEM, [tiny.wav(0, 0.0)], "0 samples"),
        ],
    )
    def test_bad_requests_raise_readable_errors(
        self, model, vocab, problem, raw, message
    ):
        d = _decoder(model, vocab, problem)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            d.model_features(tf.constant(raw))


class TestCachedDecoding:
    @pytest.mark.parametrize(
        "problem", [tiny.TEXT_PROBLEM, tiny.SPEECH_PROBLEM]
    )
    def test_cached_equals_uncached(self, model, vocab, problem):
        cached = _decoder(model, vocab, problem, beam_size=1, max_length=6)
        uncached = _decoder(
            model, vocab, problem, beam_size=1, max_length=6, cache=False
        )
        features = cached.model_features(tf.constant(tiny.raw_inputs(problem)))
        out_c = cached.decode_features(features)
        out_u = uncached.decode_features(features)
        np.testing.assert_array_equal(out_c["ids"], out_u["ids"])
        np.testing.assert_allclose(out_c["scores"], out_u["scores"], atol=1e-4)
        # Teacher-forced on the same ids, every step's logits agree.
        fn_c, state_c = cached.next_logits_fn(features)
        fn_u, state_u = uncached.next_logits_fn(features)
        ids = out_c["ids"]
        prev = tf.zeros_like(ids[:, 0])
        for index in range(ids.shape[1]):
            logits_c, state_c = fn_c(prev, tf.constant(index), state_c)
            logits_u, state_u = fn_u(prev, tf.constant(index), state_u)
            np.testing.assert_allclose(logits_c, logits_u, atol=1e-4)
            assert np.abs(logits_c).max() > 1e-2  # not trivially zero
            prev = ids[:, index]

    def test_beam_cached_equals_uncached(self, model, vocab):
        problem = tiny.TEXT_PROBLEM
        configs = dict(beam_size=3, alpha=0.6, max_length=5)
        cached = _decoder(model, vocab, problem, **configs)
        uncached = _decoder(model, vocab, problem, cache=False, **configs)
        features = cached.model_features(tf.constant(["the cat", "a dog ran"]))
        out_c = cached.decode_features(features)
        out_u = uncached.decode_features(features)
        np.testing.assert_array_equal(out_c["ids"], out_u["ids"])
        np.testing.assert_allclose(out_c["scores"], out_u["scores"], atol=1e-4)
        # Only ids of the vocabulary come out (the softmax has 64 rows).
        assert np.max(out_c["ids"]) < vocab.vocab_size < 64

    def test_jit_compiled_steps_equal_plain_steps(self, model, vocab):
        problem = tiny.TEXT_PROBLEM
        configs = dict(beam_size=1, max_length=5)
        jit = _decoder(model, vocab, problem, **configs)
        plain = _decoder(model, vocab, problem, jit_compile=False, **configs)
        assert jit.config.jit_compile  # The default.
        features = jit.model_features(tf.constant(["the cat", "a dog ran"]))
        out_j = jit.decode_features(features)
        out_p = plain.decode_features(features)
        np.testing.assert_array_equal(out_j["ids"], out_p["ids"])
        fn_j, state_j = jit.next_logits_fn(features)
        fn_p, state_p = plain.next_logits_fn(features)
        prev = tf.zeros_like(out_j["ids"][:, 0])
        for index in range(out_j["ids"].shape[1]):
            logits_j, state_j = fn_j(prev, tf.constant(index), state_j)
            logits_p, state_p = fn_p(prev, tf.constant(index), state_p)
            np.testing.assert_allclose(logits_j, logits_p, atol=1e-5)
            assert np.abs(logits_j).max() > 1e-2  # not trivially zero
            prev = out_j["ids"][:, index]
        # The compiled step is made once per decoder and reused.
        assert jit._jit_decode_step is not None
        assert plain._jit_decode_step is None

    def test_decode_returns_text_up_to_eos(self, model, vocab):
        d = _decoder(model, vocab, tiny.TEXT_PROBLEM, beam_size=1, max_length=5)
        raw = tiny.raw_inputs(tiny.TEXT_PROBLEM)
        out = d.decode(raw)
        ids = d.decode_features(d.model_features(tf.constant(raw)))["ids"]
        assert list(out["outputs"]) == [vocab.decode(row) for row in ids]


class TestClassification:
    def test_top_k_classes_of_one_forward_pass(self, model, vocab):
        names = ["zero", "one", "two", "three", "four"]
        d = decoder.ProblemDecoder(
            model,
            tiny.IMAGE_PROBLEM,
            None,
            decoder.DecodeConfig(top_k=3),
            class_names=names,
        )
        raw = tiny.raw_inputs(tiny.IMAGE_PROBLEM)
        out = d.decode(raw)
        features = d.model_features(tf.constant(raw))
        logits = model(
            features,
            input_modality="image",
            target_modality="class_label_5",
            training=False,
        )["logits"]
        probs = tf.nn.softmax(logits).numpy()
        top = np.argsort(-probs, axis=1)[:, :3]
        np.testing.assert_array_equal(out["top_k_class_ids"], top)
        np.testing.assert_array_equal(out["class_ids"], top[:, 0])
        np.testing.assert_allclose(
            out["scores"], np.take_along_axis(probs, top, 1), rtol=1e-5
        )
        assert list(out["classes"]) == [names[i] for i in top[:, 0]]

    def test_ids_as_names_without_class_names(self, model, vocab):
        d = _decoder(model, vocab, tiny.IMAGE_PROBLEM, top_k=2)
        out = d.decode(tiny.raw_inputs(tiny.IMAGE_PROBLEM)[:1])
        assert out["classes"][0] == str(out["class_ids"][0])
        assert out["scores"].shape == (1, 2)
