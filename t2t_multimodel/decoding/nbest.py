"""N-best lists: every hypothesis of the search with its score (section 4).

T2T's `decode_hparams.return_beams` wrote every beam of beam search instead
of the best one. `NBestDecoder` does that for a `decoder.ProblemDecoder`,
whose serving signature (and so the export) keeps its single answer:
- text targets: `samplers.beam_search` already returns all `beam_size`
  hypotheses in its order of preference, each with its ranking score, the
  log probability over the GNMT length penalty `((5 + length) / 6) **
  alpha` (the log probability itself when `alpha == 0`): the finished ones
  (ended by EOS) by score, then, when fewer than `beam_size` finished by
  `max_length`, the best unfinished ones by score (so a score may be higher
  than the one above it; `Hypothesis.finished` tells them apart). Greedy
  search (`beam_size == 1`) gives one hypothesis scored by its log
  probability;
- class labels: the `top_k` classes of one forward pass, scored by their
  log probability.

The search runs in one `tf.function` per decoder (shapes relaxed after the
first retrace, so batches of other lengths reuse the trace); detokenizing
is done in Python (`Vocabulary.decode`: ids up to the first EOS).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.decoding import samplers

# The columns of an n-best TSV file (`tsv_lines`).
TSV_HEADER = ("input_index", "beam_rank", "score", "finished", "text")


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """One entry of an n-best list.

    Attributes:
      text: the detokenized output, or the class name.
      score: the search's ranking score (see the module docstring).
      class_id: the class id of a class-label answer, else None.
      finished: False for a text that reached `max_length` without EOS.
    """

    text: str
    score: float
    class_id: int | None = None
    finished: bool = True


def search_name(decoder: decoder_lib.ProblemDecoder) -> str:
    """How `decoder` searches: `beam`, `greedy` or `top_k` (class labels)."""
    if decoder.output_kind == decoder_lib.CLASS:
        return "top_k"
    return "greedy" if decoder.config.beam_size == 1 else "beam"


class NBestDecoder:
    """Model features or raw requests -> n-best lists of one problem.

    Args:
      decoder: the `ProblemDecoder` (model, problem, vocabulary, config).
    """

    def __init__(self, decoder: decoder_lib.ProblemDecoder) -> None:
        self.decoder = decoder
        self.search = search_name(decoder)
        self._from_features = tf.function(
            self._search, reduce_retracing=True, autograph=False
        )
        self._from_raw = tf.function(
            lambda raw: self._search(decoder.model_features(raw)),
            input_signature=[tf.TensorSpec([None], tf.string)],
            autograph=False,
        )

    def _search(self, features: Mapping[str, tf.Tensor]) -> dict:
        """`{"ids": [B, K] classes or [B, K, T] tokens, "scores": [B, K]}`."""
        d = self.decoder
        if d.output_kind == decoder_lib.CLASS:
            out = d.decode_features(features)  # Softmax top-k, best first.
            return {
                "ids": out["class_ids"],
                "scores": tf.math.log(out["scores"]),
            }
        fn, state = d.next_logits_fn(features)
        batch = tf.shape(features["target_space_id"])[0]
        config = d.config
        if config.beam_size == 1:
            ids, scores = samplers.greedy_search(
                fn, state, batch, config.max_length
            )
            return {"ids": ids[:, None], "scores": scores[:, None]}
        ids, scores = samplers.beam_search(
            fn,
            state,
            batch,
            config.beam_size,
            config.max_length,
            alpha=config.alpha,
        )
        return {"ids": ids, "scores": scores}

    def _hypotheses(self, out: Mapping[str, tf.Tensor]) -> list:
        ids, scores = out["ids"].numpy(), out["scores"].numpy()
        d = self.decoder
        result = []
        for row_ids, row_scores in zip(ids, scores):
            if d.output_kind == decoder_lib.CLASS:
                names = d.class_names
                row = [
                    Hypothesis(
                        names[int(c)] if names else str(int(c)),
                        float(s),
                        int(c),
                    )
                    for c, s in zip(row_ids, row_scores)
                ]
            else:
                row = [
                    Hypothesis(
                        d.vocabulary.decode(i.tolist()),
                        float(s),
                        finished=bool(np.any(i == samplers.EOS_ID)),
                    )
                    for i, s in zip(row_ids, row_scores)
                ]
            result.append(row)
        return result

    def decode_features(
        self, features: Mapping[str, tf.Tensor]
    ) -> list[list[Hypothesis]]:
        """Model features (`inputs`, masks, `target_space_id`) -> n-best
        lists, one per example, best first."""
        return self._hypotheses(self._from_features(dict(features)))

    def decode(self, raw: Sequence[str | bytes]) -> list[list[Hypothesis]]:
        """Raw requests (text, image or WAV bytes) -> n-best lists.

        Raises:
          tf.errors.InvalidArgumentError: a bad request (as `decoder.serve`).
        """
        return self._hypotheses(self._from_raw(tf.constant(list(raw))))


def one_line(text: str) -> str:
    """`text` as one TSV field: tabs and line breaks become spaces."""
    return " ".join(text.replace("\t", " ").splitlines())


def tsv_lines(index: int, hypotheses: Sequence[Hypothesis]) -> list[str]:
    """The n-best TSV lines of one input (columns: `TSV_HEADER`).

    `rank` 0 is the best; the score has 6 decimals; `finished` is 1 or 0.
    """
    return [
        f"{index}\t{rank}\t{h.score:.6f}\t{int(h.finished)}\t{one_line(h.text)}"
        for rank, h in enumerate(hypotheses)
    ]
