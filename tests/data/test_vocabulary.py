"""Tests for t2t_multimodel.data.vocabulary."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from t2t_multimodel.data import vocabulary
from tests import testing

_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Grüße aus München, die Straße ist schön und groß.",
    "Le garçon a mangé à l'école ; où est-il ? Déjà là, très bien.",
    "A  sentence   with  odd   spacing and 42 digits.",
] * 10


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vocab") / "vocab.test.model")
    return vocabulary.build_vocabulary(_TEXTS, path, vocab_size=64)


class TestVocabulary:
    def test_reserved_ids(self, vocab):
        assert (vocabulary.PAD_ID, vocabulary.EOS_ID) == (0, 1)
        assert vocab.id_to_piece(0) == "<pad>"
        assert vocab.id_to_piece(1) == "</s>"
        assert vocab.id_to_piece(2) == "<unk>"
        for text in _TEXTS[:4]:
            ids = vocab.encode(text)
            assert min(ids) >= 3  # no reserved id in an encoding, no EOS

    def test_round_trip_with_accents_and_spacing(self, vocab):
        for text in _TEXTS[:4] + ["  Straße à l'école  ", "fox über"]:
            assert vocab.decode(vocab.encode(text)) == text

    def test_size_is_bounded_and_small_corpus_gives_smaller(self, vocab):
        # hard_vocab_limit=False: 64 requested, the corpus supports fewer.
        assert 40 < vocab.vocab_size <= 64

    def test_decode_stops_at_eos_and_skips_pad(self, vocab):
        ids = vocab.encode("the dog")
        assert vocab.decode([0] + ids + [1] + vocab.encode("fox") + [0]) == (
            "the dog"
        )

    def test_load_is_identical_and_file_is_atomic(self, vocab):
        loaded = vocabulary.Vocabulary.load(vocab.path)
        assert loaded.serialized_model == vocab.serialized_model
        assert loaded.sha256 == vocab.sha256
        assert loaded.encode(_TEXTS[1]) == vocab.encode(_TEXTS[1])
        leftovers = [
            f
            for f in os.listdir(os.path.dirname(vocab.path))
            if f.endswith(".tmp")
        ]
        assert leftovers == []

    def test_file_mode_follows_umask(self, tmp_path):
        # Readable by others under umask 022 (mkstemp's 0600 was not).
        path = tmp_path / "vocab.mode.model"
        with testing.umask(0o022):
            vocabulary.build_vocabulary(_TEXTS, str(path), vocab_size=64)
        assert testing.tree_modes(str(path)) == {".": 0o644}
        assert os.listdir(tmp_path) == ["vocab.mode.model"]

    def test_tf_tokenizer_matches_host(self, vocab):
        texts = [_TEXTS[0], _TEXTS[1], _TEXTS[2], "München"]
        ragged = vocab.tf_tokenizer().tokenize(tf.constant(texts))
        for row, text in zip(ragged.to_list(), texts):
            assert row == vocab.encode(text)
        # In-graph detokenize stops at EOS and drops padding.
        padded = ragged.to_tensor(default_value=0)
        eos = tf.fill([4, 1], vocabulary.EOS_ID)
        junk = tf.fill([4, 2], 7)
        ids = tf.concat([padded, eos, junk], axis=1)
        out = vocab.tf_detokenize(ids).numpy()
        assert [s.decode("utf-8") for s in out] == texts

    def test_bpe_and_byte_fallback(self, tmp_path):
        path = str(tmp_path / "bpe.model")
        vocab = vocabulary.build_vocabulary(
            _TEXTS, path, vocab_size=2000, model_type="bpe"
        )
        # byte fallback (auto for >= 1024) round-trips unseen characters.
        text = "日本 Ωmega"
        assert vocab.decode(vocab.encode(text)) == text
        assert vocab.vocab_size < 2000

    def test_empty_corpus_raises(self, tmp_path):
        with pytest.raises(ValueError, match="no training text"):
            vocabulary.build_vocabulary([], str(tmp_path / "v.model"), 64)
        assert not os.path.exists(tmp_path / "v.model")

    def test_too_small_vocab_size_is_a_clear_error(self, tmp_path):
        with pytest.raises(ValueError, match="vocab_size"):
            vocabulary.build_vocabulary(_TEXTS, str(tmp_path / "v.model"), 20)

    def test_wrong_reserved_ids_are_refused(self, tmp_path):
        import io

        import sentencepiece as spm

        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(_TEXTS),
            model_writer=model,
            vocab_size=80,
            hard_vocab_limit=False,
            minloglevel=2,
        )
        with pytest.raises(ValueError, match="pad/eos/unk"):
            vocabulary.Vocabulary(model.getvalue())


def test_tf_tokenizer_survives_saved_model(tmp_path, vocab):
    """The in-graph tokenizer can be exported (what the exporter relies on)."""

    class Tokenize(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = vocab.tf_tokenizer()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            ids = self.tokenizer.tokenize(texts).to_tensor()  # [B, L]
            eos = tf.fill([tf.shape(ids)[0], 1], vocabulary.EOS_ID)
            ids = tf.concat([ids, eos], axis=1)
            return {"ids": ids, "text": vocab.tf_detokenize(ids)}

    tf.saved_model.save(Tokenize(), str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    out = loaded(tf.constant(["Grüße aus München", "the dog"]))
    first = out["ids"].numpy()[0].tolist()
    assert first[: first.index(1)] == vocab.encode("Grüße aus München")
    assert [t.decode() for t in out["text"].numpy()] == [
        "Grüße aus München",
        "the dog",
    ]
