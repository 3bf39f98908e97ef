"""Model features to output ids: the one decoding path (paper section 4).

Serving (`decoder.ProblemDecoder`, hence the exported SavedModel) and the
trainer's dev evaluation (`training/evaluation.py`) both decode with these
functions, so the BLEU, WER and tree scores the trainer reports are those
of the decoder users get:
- `cached_next_logits`: `model.encode` once, then `model.decode_step` per
  output token (the decoding cache), as a next-logits function for the
  samplers; ids the vocabulary does not know are never emitted;
- `search`: greedy search (`beam_size == 1`, as T2T) or beam search
  (`samplers.py`), keeping the best beam.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from t2t_multimodel.decoding import samplers


def known_ids_only(
    next_logits_fn: samplers.NextLogitsFn, num_ids: int
) -> samplers.NextLogitsFn:
    """`next_logits_fn` with the logits of ids `>= num_ids` at `NEG_INF`.

    The modality's softmax may be wider than the vocabulary (8192 rows for a
    smaller SentencePiece model): those ids must never be emitted.
    """

    def next_logits(ids_t, index, state):
        logits, state = next_logits_fn(ids_t, index, state)
        known = tf.range(tf.shape(logits)[-1]) < num_ids  # [V]
        return tf.where(known, logits, samplers.NEG_INF), state

    return next_logits


def cached_next_logits(
    model: Any,
    features: Mapping[str, tf.Tensor],
    *,
    input_modality: str,
    target_modality: str,
    target_space_id: Any,
    max_length: int,
    num_ids: int,
    decode_step: Callable[..., Any] | None = None,
) -> tuple[samplers.NextLogitsFn, Any]:
    """`(next_logits_fn, initial_state)` of cached decoding.

    Args:
      model: a `MultiModel` (`encode`, `initial_decode_state`,
        `decode_step`).
      features: model features with `inputs` (and `inputs_mask`) and
        `target_space_id` `[B]`.
      input_modality: key of the input modality.
      target_modality: key of the target modality.
      target_space_id: the command token (int or `[B]`).
      max_length: output positions the decoding cache holds.
      num_ids: the vocabulary size; larger ids are never emitted.
      decode_step: `model.decode_step` or a compiled version of it (the
        serving decoder's XLA step); None uses `model.decode_step`.
    """
    batch = tf.shape(features["target_space_id"])[0]
    encoded = model.encode(
        features, input_modality=input_modality, training=False
    )
    state = model.initial_decode_state(encoded, batch, max_length)
    step = decode_step or model.decode_step

    def next_logits(ids_t, index, state):
        return step(
            ids_t,
            index,
            state,
            target_space_id=target_space_id,
            target_modality=target_modality,
        )

    return known_ids_only(next_logits, num_ids), state


def search(
    next_logits_fn: samplers.NextLogitsFn,
    initial_state: Any,
    batch_size: Any,
    *,
    beam_size: int,
    max_length: int,
    alpha: float = 0.6,
) -> dict[str, tf.Tensor]:
    """Greedy (`beam_size == 1`) or beam search; the best hypothesis.

    Returns:
      `{"ids": int32 [B, max_length], "scores": float32 [B]}`; ids are PAD
      after a row's EOS (see `samplers.py` for the scores).
    """
    if beam_size == 1:
        ids, scores = samplers.greedy_search(
            next_logits_fn, initial_state, batch_size, max_length
        )
        return {"ids": ids, "scores": scores}
    ids, scores = samplers.beam_search(
        next_logits_fn,
        initial_state,
        batch_size,
        beam_size,
        max_length,
        alpha=alpha,
    )
    return {"ids": ids[:, 0], "scores": scores[:, 0]}
