"""Greedy and beam search over a next-logits function (paper section 4).

Problem-blind samplers in TF ops: they run under `tf.function` (also without
autograph, as inside a `keras.export.ExportArchive` endpoint) as one
`tf.while_loop` with fixed shapes, writing ids into a `[batch, max_length]`
buffer. A sampler gets `next_logits_fn(ids_t, index, state) -> (logits,
state)`: `ids_t` int32 `[B']` are the tokens at position `index - 1` (zeros
at `index == 0`, where the model feeds its command token), `logits` `[B', V]`
score position `index`, and `state` is a nested structure of tensors (the
model's decoding cache) whose leaves have the batch as leading axis; rank-0
leaves (step counters) are batch-independent and passed through untouched.
Beam search tiles the state to `B * beam` rows (row `b * beam + k` is beam
`k` of example `b`) and reorders it with `tf.gather` after every step.

Beam search follows T2T's `beam_search.py` with the GNMT length penalty
`((5 + length) / 6) ** alpha` (Wu et al. 2016; length counts the EOS): the
2 * beam best extensions are split into alive beams (no EOS, ranked by log
probability) and finished ones (ending in EOS, ranked by penalized score).
The loop stops at `max_length` or when, for every example, `beam` hypotheses
have finished and none of them can be beaten by an alive beam (its best
possible score is its log probability over the largest penalty, at
`max_length`). So all `beam` returned hypotheses are exact beam-search
results, not only the best. Examples with fewer than `beam` finished
hypotheses at `max_length` fill the remaining slots with their best alive
beams (no EOS; scored at length `max_length`), after the finished ones.
After EOS the ids are `PAD_ID` (0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

EOS_ID = (
    1  # t2t_multimodel.data.vocabulary.EOS_ID (decoding never imports data)
)
# A finite "minus infinity": -inf would turn 0 * -inf into NaN.
NEG_INF = -1e9

NextLogitsFn = Callable[[tf.Tensor, tf.Tensor, Any], tuple[tf.Tensor, Any]]


def length_penalty(length: Any, alpha: float) -> tf.Tensor:
    """GNMT's length penalty `((5 + length) / 6) ** alpha` (float32)."""
    length = tf.cast(length, tf.float32)
    return tf.pow((5.0 + length) / 6.0, alpha)


def _write_column(buffer: tf.Tensor, index: tf.Tensor, column: tf.Tensor):
    """`buffer[..., index] = column` for a fixed-size `[..., T]` buffer."""
    hit = tf.equal(tf.range(tf.shape(buffer)[-1]), index)  # [T]
    return tf.where(hit, column[..., None], buffer)


def _previous(buffer: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """`buffer[..., index - 1]`, or zeros at `index == 0`."""
    prev = tf.gather(buffer, tf.maximum(index - 1, 0), axis=-1)
    return tf.where(index > 0, prev, tf.zeros_like(prev))


def greedy_search(
    next_logits_fn: NextLogitsFn,
    initial_state: Any,
    batch_size: Any,
    max_length: int,
    eos_id: int = EOS_ID,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Greedy decoding: the argmax token at every position.

    Args:
      next_logits_fn: `(ids_t [B], index, state) -> (logits [B, V], state)`.
      initial_state: the state for index 0 (leading axis B).
      batch_size: B (int or scalar tensor).
      max_length: output positions T.
      eos_id: the end-of-sequence id; a row stops after it.

    Returns:
      `(ids int32 [B, T], scores float32 [B])`: ids are `PAD_ID` after a
      row's EOS; a score is the sum of the chosen tokens' log probabilities
      (EOS included; no length penalty).
    """
    ids = tf.zeros([batch_size, max_length], tf.int32)
    scores = tf.zeros([batch_size], tf.float32)
    finished = tf.zeros([batch_size], tf.bool)

    def cond(index, ids, scores, finished, state):
        del ids, scores, state
        return tf.logical_and(
            index < max_length, tf.logical_not(tf.reduce_all(finished))
        )

    def body(index, ids, scores, finished, state):
        logits, state = next_logits_fn(_previous(ids, index), index, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # [B, V]
        token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        token_log_prob = tf.gather(log_probs, token, batch_dims=1)  # [B]
        token = tf.where(finished, 0, token)
        scores += tf.where(finished, 0.0, token_log_prob)
        ids = _write_column(ids, index, token)
        finished = tf.logical_or(finished, tf.equal(token, eos_id))
        return index + 1, ids, scores, finished, state

    _, ids, scores, _, _ = tf.while_loop(
        cond,
        body,
        (tf.constant(0), ids, scores, finished, initial_state),
        maximum_iterations=max_length,
    )
    return ids, scores


def _tile_state(state: Any, beam_size: int) -> Any:
    """Repeats every batch-major leaf `beam_size` times along axis 0."""

    def tile(x):
        x = tf.convert_to_tensor(x)
        if x.shape.rank == 0:
            return x
        return tf.repeat(x, beam_size, axis=0)  # [B * beam, ...]

    return tf.nest.map_structure(tile, state)


def _gather_state(state: Any, rows: tf.Tensor) -> Any:
    """Reorders every batch-major leaf by the flat beam `rows` `[B * K]`."""

    def gather(x):
        if x.shape.rank == 0:
            return x
        y = tf.gather(x, rows, axis=0)
        y.set_shape(x.shape)  # Same rows; keeps a static batch static.
        return y

    return tf.nest.map_structure(gather, state)


def beam_search(
    next_logits_fn: NextLogitsFn,
    initial_state: Any,
    batch_size: Any,
    beam_size: int,
    max_length: int,
    alpha: float = 0.6,
    eos_id: int = EOS_ID,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Beam search with the GNMT length penalty (see the module docstring).

    Args:
      next_logits_fn: `(ids_t [B * K], index, state) -> (logits [B * K, V],
        state)`; row `b * K + k` is beam `k` of example `b`.
      initial_state: the state of ONE beam per example (leading axis B); it
        is tiled to `B * K` rows here.
      batch_size: B (int or scalar tensor).
      beam_size: K (the vocabulary must have at least 2 K ids).
      max_length: output positions T.
      alpha: length penalty exponent (>= 0; 0 ranks by log probability).
      eos_id: the end-of-sequence id.

    Returns:
      `(ids int32 [B, K, T], scores float32 [B, K])`, best first; scores are
      log probabilities over the length penalty.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    k = beam_size
    state = _tile_state(initial_state, k)
    alive_seq = tf.zeros([batch_size, k, max_length], tf.int32)
    # Only beam 0 is real at the start; the others can never win.
    alive_log_probs = tf.tile(
        tf.constant([[0.0] + [NEG_INF] * (k - 1)]), [batch_size, 1]
    )  # [B, K]
    finished_seq = tf.zeros([batch_size, k, max_length], tf.int32)
    finished_scores = tf.fill([batch_size, k], NEG_INF)
    finished_flags = tf.zeros([batch_size, k], tf.bool)
    max_penalty = length_penalty(max_length, alpha)

    def cond(index, alive_seq, alive_log_probs, fin_seq, fin_scores, flags, s):
        del alive_seq, fin_seq, s
        best_alive = alive_log_probs[:, 0] / max_penalty  # [B]
        # Slots are sorted, so the last one is the worst finished score.
        worst_finished = tf.where(
            tf.reduce_all(flags, axis=1), fin_scores[:, -1], NEG_INF
        )
        settled = tf.reduce_all(worst_finished >= best_alive)
        return tf.logical_and(index < max_length, tf.logical_not(settled))

    def body(index, alive_seq, alive_log_probs, fin_seq, fin_scores, flags, s):
        prev = tf.reshape(_previous(alive_seq, index), [-1])  # [B * K]
        logits, s = next_logits_fn(prev, index, s)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        vocab = tf.shape(log_probs)[-1]
        log_probs = tf.reshape(log_probs, [batch_size, k, vocab])
        log_probs += alive_log_probs[:, :, None]  # [B, K, V]
        flat = tf.reshape(log_probs, [batch_size, k * vocab])  # [B, K * V]
        top_log_probs, top_index = tf.math.top_k(flat, 2 * k)  # [B, 2K]
        top_beam = top_index // vocab
        top_token = top_index % vocab
        top_seq = tf.gather(alive_seq, top_beam, batch_dims=1)  # [B, 2K, T]
        top_seq = _write_column(top_seq, index, top_token)
        # Extensions of the placeholder beams are never real hypotheses.
        real = top_log_probs > NEG_INF / 2
        top_eos = tf.logical_and(tf.equal(top_token, eos_id), real)

        # Alive: the K best extensions without EOS (2K hold at least K).
        alive_rank = tf.where(top_eos, NEG_INF + top_log_probs, top_log_probs)
        _, keep = tf.math.top_k(alive_rank, k)  # [B, K]
        alive_seq = tf.gather(top_seq, keep, batch_dims=1)
        alive_log_probs = tf.gather(top_log_probs, keep, batch_dims=1)
        source_beam = tf.gather(top_beam, keep, batch_dims=1)  # [B, K]
        rows = tf.range(batch_size)[:, None] * k + source_beam
        s = _gather_state(s, tf.reshape(rows, [-1]))

        # Finished: the K best of the old finished and the new EOS ones.
        new_scores = top_log_probs / length_penalty(index + 1, alpha)
        new_scores = tf.where(top_eos, new_scores, NEG_INF)
        all_scores = tf.concat([fin_scores, new_scores], axis=1)  # [B, 3K]
        fin_scores, best = tf.math.top_k(all_scores, k)
        fin_seq = tf.gather(
            tf.concat([fin_seq, top_seq], axis=1), best, batch_dims=1
        )
        flags = tf.gather(tf.concat([flags, top_eos], 1), best, batch_dims=1)
        return (
            index + 1,
            alive_seq,
            alive_log_probs,
            fin_seq,
            fin_scores,
            flags,
            s,
        )

    index, alive_seq, alive_log_probs, fin_seq, fin_scores, flags, _ = (
        tf.while_loop(
            cond,
            body,
            (
                tf.constant(0),
                alive_seq,
                alive_log_probs,
                finished_seq,
                finished_scores,
                finished_flags,
                state,
            ),
            maximum_iterations=max_length,
        )
    )
    # Slot j: the j-th finished hypothesis, then the best alive beams.
    num_finished = tf.reduce_sum(tf.cast(flags, tf.int32), axis=1)  # [B]
    slot = tf.range(k)[None, :]
    num_finished = num_finished[:, None]  # [B, 1]
    pick = tf.where(slot < num_finished, slot, k + slot - num_finished)
    alive_scores = alive_log_probs / length_penalty(index, alpha)
    ids = tf.gather(tf.concat([fin_seq, alive_seq], 1), pick, batch_dims=1)
    scores = tf.gather(
        tf.concat([fin_scores, alive_scores], 1), pick, batch_dims=1
    )
    return ids, scores
