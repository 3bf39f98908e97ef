"""The shared subword vocabulary: a SentencePiece model (paper section 2.1).

The paper uses one 8k subword vocabulary for every text of every task ("a
single vocabulary"), so that the shared language modality net embeds EN, DE,
FR, parse trees and captions in one table. T2T built it with its own
`SubwordTextEncoder`; here it is a SentencePiece model, built on the host with
the `sentencepiece` package and usable in-graph through
`tensorflow_text.SentencepieceTokenizer`, so that a SavedModel can take raw
strings. Ids 0, 1 and 2 are reserved: padding, end of sequence and unknown.
Normalization is the identity and whitespace is kept verbatim, so decoding
round-trips the text exactly (with byte fallback, even unseen characters).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Sequence

import sentencepiece as spm
import tensorflow as tf

from t2t_multimodel import atomic_write

PAD_ID = 0
EOS_ID = 1
UNK_ID = 2

# Byte fallback needs 256 byte pieces plus the characters; only worth it (and
# only possible) for realistic vocabulary sizes, not the tiny test ones.
_BYTE_FALLBACK_MIN_SIZE = 1024


class Vocabulary:
    """A SentencePiece subword vocabulary with the project's reserved ids.

    Build one with `build_vocabulary` or load one with `Vocabulary.load`.
    `encode` never appends EOS (the TFRecord writer does); `decode` stops at
    the first EOS and skips padding.

    Args:
      serialized_model: the SentencePiece model proto, as bytes.
      path: the file it was read from, if any (for messages).
    """

    def __init__(self, serialized_model: bytes, path: str | None = None):
        self._model = bytes(serialized_model)
        self._path = path
        self._processor = spm.SentencePieceProcessor(model_proto=self._model)
        reserved = (
            self._processor.pad_id(),
            self._processor.eos_id(),
            self._processor.unk_id(),
        )
        if reserved != (PAD_ID, EOS_ID, UNK_ID):
            raise ValueError(
                f"vocabulary {path or '<bytes>'} has pad/eos/unk ids "
                f"{reserved}; expected {(PAD_ID, EOS_ID, UNK_ID)}. Rebuild it "
                "with t2t_multimodel.data.vocabulary.build_vocabulary."
            )
        self._tf_tokenizer = None

    @classmethod
    def load(cls, path: str) -> Vocabulary:
        """Reads a SentencePiece `.model` file (a local or tf.io path)."""
        with tf.io.gfile.GFile(path, "rb") as f:
            return cls(f.read(), path=path)

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def vocab_size(self) -> int:
        """Number of ids, reserved ones included."""
        return self._processor.get_piece_size()

    @property
    def serialized_model(self) -> bytes:
        return self._model

    @property
    def sha256(self) -> str:
        """Hex digest of the serialized model (identifies the vocabulary)."""
        return hashlib.sha256(self._model).hexdigest()

    def encode(self, text: str) -> list[int]:
        """Returns the ids of `text`, without EOS."""
        return list(self._processor.encode(text, out_type=int))

    def decode(self, ids: Iterable[int]) -> str:
        """Returns the text of `ids` up to the first EOS, skipping PAD."""
        kept = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i != PAD_ID:
                kept.append(i)
        return self._processor.decode(kept)

    def id_to_piece(self, i: int) -> str:
        return self._processor.id_to_piece(int(i))

    def tf_tokenizer(self):
        """A `tensorflow_text.SentencepieceTokenizer` of this model.

        It tokenizes `tf.string [B]` into a ragged int32 `[B, None]` (no EOS)
        and detokenizes ids back to strings inside a graph, so an exported
        SavedModel takes raw text. Loading such a SavedModel needs
        `import tensorflow_text` first (its ops are custom ops).
        """
        if self._tf_tokenizer is None:
            import tensorflow_text  # Optional at datagen time; heavy import.

            self._tf_tokenizer = tensorflow_text.SentencepieceTokenizer(
                model=self._model, out_type=tf.int32, add_eos=False
            )
        return self._tf_tokenizer

    def tf_detokenize(self, ids: tf.Tensor) -> tf.Tensor:
        """In-graph `decode`: int `[B, T]` ids -> `tf.string [B]`.

        Everything from the first EOS of a row on is dropped, as is padding.
        """
        ids = tf.cast(ids, tf.int32)
        # keep[b, t] is True before the first EOS of row b.
        seen_eos = tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=1)
        keep = tf.logical_and(tf.equal(seen_eos, 0), tf.not_equal(ids, PAD_ID))
        ragged = tf.ragged.boolean_mask(ids, keep)  # [B, None]
        return self.tf_tokenizer().detokenize(ragged)

    def __repr__(self) -> str:
        return f"Vocabulary(path={self._path!r}, vocab_size={self.vocab_size})"


def build_vocabulary(
    texts: Iterable[str],
    path: str,
    vocab_size: int = 8192,
    *,
    model_type: str = "unigram",
    byte_fallback: bool | None = None,
    max_sentences: int = 2_000_000,
    max_sentence_length: int = 16384,
    user_defined_symbols: Sequence[str] = (),
) -> Vocabulary:
    """Trains a SentencePiece vocabulary on `texts` and writes it to `path`.

    The vocabulary reserves PAD=0, EOS=1, UNK=2 (no BOS). `vocab_size` is an
    upper bound: a small corpus gives a smaller vocabulary instead of failing
    (`hard_vocab_limit=False`). Normalization is the identity and extra
    whitespace is kept, so `decode(encode(text)) == text` for every text whose
    characters were seen (all texts when byte fallback is on). The file is
    written to a temporary name and renamed, so `path` is either absent or
    complete.

    Args:
      texts: training text, one sentence (or line) per item.
      path: output `.model` file.
      vocab_size: the maximum number of ids, reserved ones included.
      model_type: `"unigram"` (default) or `"bpe"`.
      byte_fallback: encode unseen characters as UTF-8 byte pieces. `None`
        turns it on when `vocab_size >= 1024` (it needs 256 byte pieces).
      max_sentences: sentences sampled (shuffled) from a larger corpus.
      max_sentence_length: longer items (in bytes) are skipped by the trainer.
      user_defined_symbols: pieces that are never split.

    Returns:
      The new `Vocabulary`.

    Raises:
      ValueError: on an empty corpus or an unknown `model_type`.
    """
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model_type must be unigram or bpe: {model_type!r}")
    if byte_fallback is None:
        byte_fallback = vocab_size >= _BYTE_FALLBACK_MIN_SIZE
    # SentencePiece treats each iterator item as a sentence; newlines inside
    # one would be kept as characters, so split items into lines.
    sentences = (
        line for text in texts for line in text.splitlines() if line.strip()
    )
    counted = _Counting(sentences)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=counted,
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            pad_id=PAD_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            bos_id=-1,
            hard_vocab_limit=False,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            character_coverage=1.0,
            byte_fallback=byte_fallback,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            max_sentence_length=max_sentence_length,
            user_defined_symbols=list(user_defined_symbols),
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as e:
        if counted.error is not None:
            raise counted.error from None
        if counted.count == 0:
            raise ValueError(
                f"cannot build vocabulary {path}: no training text"
            ) from e
        if "smaller than required_chars" in str(e):
            raise ValueError(
                f"vocab_size={vocab_size} is too small for the characters of "
                f"the corpus (every character gets an id): {e}"
            ) from e
        raise
    if counted.error is not None:
        raise counted.error
    vocab = Vocabulary(model.getvalue(), path=path)
    atomic_write.write_bytes(path, vocab.serialized_model)
    return vocab


class _Counting:
    """Iterator wrapper that counts items and keeps the iterator's error.

    SentencePiece's C++ trainer does not propagate a Python exception raised
    by the iterator (a generator's missing-data error, say); the wrapper ends
    the iteration instead and `build_vocabulary` re-raises the error.
    """

    def __init__(self, items: Iterable[str]):
        self._items = iter(items)
        self.count = 0
        self.error: BaseException | None = None

    def __iter__(self) -> _Counting:
        return self

    def __next__(self) -> str:
        try:
            item = next(self._items)
        except StopIteration:
            raise
        except BaseException as e:  # noqa: BLE001  re-raised by the caller
            self.error = e
            raise StopIteration from e
        self.count += 1
        return item
