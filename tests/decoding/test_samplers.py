"""Tests of greedy and beam search on hand-made next-logits tables."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from t2t_multimodel.decoding import samplers

PAD, EOS, A, B = 0, 1, 2, 3

# First-order "model": the probabilities of the next token given the
# previous one (row 0 = the start). PAD never comes out.
PROBS = {
    0: {EOS: 0.05, A: 0.55, B: 0.40},
    A: {EOS: 0.20, A: 0.30, B: 0.50},
    B: {EOS: 0.60, A: 0.25, B: 0.15},
    EOS: {EOS: 1.0},
}


def _table(probs=PROBS) -> np.ndarray:
    table = np.full([4, 4], -1e4, np.float32)
    for prev, row in probs.items():
        for token, p in row.items():
            table[prev, token] = math.log(p)
    return table


def _markov_fn(table: np.ndarray):
    """next_logits_fn of a first-order table; the state counts calls."""
    table = tf.constant(table)

    def next_logits(ids_t, index, state):
        del index
        logits = tf.gather(table, ids_t)  # [B', V]
        return logits, {"calls": state["calls"] + 1, "rows": state["rows"]}

    return next_logits


def _state(batch: int):
    return {"calls": tf.constant(0), "rows": tf.zeros([batch, 3])}


def _lp(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


class TestGreedySearch:
    def test_picks_argmax_and_stops_after_eos(self):
        ids, scores = samplers.greedy_search(
            _markov_fn(_table()), _state(2), 2, max_length=5
        )
        # a (.55) -> b (.5) -> EOS (.6), then padding.
        np.testing.assert_array_equal(ids.numpy(), [[A, B, EOS, 0, 0]] * 2)
        np.testing.assert_allclose(
            scores.numpy(), [math.log(0.55 * 0.5 * 0.6)] * 2, rtol=1e-6
        )

    def test_early_eos_and_max_length(self):
        probs = dict(PROBS)
        probs[0] = {EOS: 0.7, A: 0.2, B: 0.1}
        ids, scores = samplers.greedy_search(
            _markov_fn(_table(probs)), _state(1), 1, max_length=3
        )
        np.testing.assert_array_equal(ids.numpy(), [[EOS, 0, 0]])
        np.testing.assert_allclose(scores.numpy(), [math.log(0.7)], rtol=1e-6)
        # Cut at max_length before any EOS.
        ids, scores = samplers.greedy_search(
            _markov_fn(_table()), _state(1), 1, max_length=2
        )
        np.testing.assert_array_equal(ids.numpy(), [[A, B]])
        np.testing.assert_allclose(
            scores.numpy(), [math.log(0.55 * 0.5)], rtol=1e-6
        )


class TestBeamSearch:
    def test_alpha_zero_order_and_scores(self):
        # Step 0: alive a (.55), b (.4); finished E (.05).
        # Step 1: alive ab (.275), aa (.165); finished bE (.24), aE (.11).
        # Step 2: abE (.165) enters; the best alive aab (.0825) cannot beat
        # the worst finished (.165): stop.
        ids, scores = samplers.beam_search(
            _markov_fn(_table()), _state(1), 1, 2, max_length=6, alpha=0.0
        )
        np.testing.assert_array_equal(
            ids.numpy()[0], [[B, EOS, 0, 0, 0, 0], [A, B, EOS, 0, 0, 0]]
        )
        np.testing.assert_allclose(
            scores.numpy()[0], [math.log(0.24), math.log(0.165)], rtol=1e-5
        )

    def test_length_penalty_reorders(self):
        # alpha = 2: bE scores log(.24) / (7/6)^2 = -1.0485 and abE
        # log(.165) / (8/6)^2 = -1.0135, so the longer one wins.
        ids, scores = samplers.beam_search(
            _markov_fn(_table()), _state(1), 1, 2, max_length=4, alpha=2.0
        )
        np.testing.assert_array_equal(
            ids.numpy()[0], [[A, B, EOS, 0], [B, EOS, 0, 0]]
        )
        expected = [
            math.log(0.165) / _lp(3, 2.0),
            math.log(0.24) / _lp(2, 2.0),
        ]
        np.testing.assert_allclose(scores.numpy()[0], expected, rtol=1e-5)
        np.testing.assert_allclose(expected, [-1.01350, -1.04848], atol=1e-4)

    def test_alpha_06_scores(self):
        ids, scores = samplers.beam_search(
            _markov_fn(_table()), _state(3), 3, 2, max_length=5, alpha=0.6
        )
        expected = [math.log(0.24) / _lp(2, 0.6), math.log(0.165) / _lp(3, 0.6)]
        for row in range(3):
            np.testing.assert_array_equal(
                ids.numpy()[row], [[B, EOS, 0, 0, 0], [A, B, EOS, 0, 0]]
            )
            np.testing.assert_allclose(scores.numpy()[row], expected, rtol=1e-5)

    def test_unfinished_slots_filled_with_alive_beams(self):
        # max_length 1: only E finished; slot 1 is the best alive beam a.
        ids, scores = samplers.beam_search(
            _markov_fn(_table()), _state(1), 1, 2, max_length=1, alpha=0.6
        )
        np.testing.assert_array_equal(ids.numpy()[0], [[EOS], [A]])
        np.testing.assert_allclose(
            scores.numpy()[0],
            [math.log(0.05) / _lp(1, 0.6), math.log(0.55) / _lp(1, 0.6)],
            rtol=1e-5,
        )

    def test_beam_one_is_greedy_plus_early_eos(self):
        # Beam 1 with alpha = 0 follows the argmax path of greedy search but
        # also keeps the EOS branches off it: it returns greedy's answer
        # unless ending earlier is more probable (then its score is higher).
        equal = 0
        for seed in range(6):
            rng = np.random.default_rng(seed)
            probs = 0.75 * rng.dirichlet(np.ones(7), size=8)
            probs[:, 0] += 0.25  # EOS, so that greedy stops
            table = np.full([8, 8], -1e4, np.float32)  # PAD never comes out
            table[:, 1:] = np.log(probs)
            fn = _markov_fn(table)
            greedy_ids, greedy_scores = samplers.greedy_search(
                fn, _state(1), 1, max_length=12
            )
            beam_ids, beam_scores = samplers.beam_search(
                fn, _state(1), 1, 1, max_length=12, alpha=0.0
            )
            path = [t for t in greedy_ids.numpy()[0] if t]
            prefix_log_p, prev, branches = 0.0, 0, []
            for token in path:  # the EOS branch at each greedy step
                branches.append(prefix_log_p + table[prev, EOS])
                prefix_log_p += table[prev, token]
                prev = token
            best = int(np.argmax(branches))
            expected = path[:best] + [EOS]
            expected += [0] * (12 - len(expected))
            np.testing.assert_array_equal(beam_ids.numpy()[0, 0], expected)
            np.testing.assert_allclose(
                beam_scores[0, 0], branches[best], rtol=1e-5
            )
            if best == len(path) - 1:
                equal += 1
                np.testing.assert_array_equal(beam_ids[:, 0], greedy_ids)
                np.testing.assert_allclose(
                    beam_scores[:, 0], greedy_scores, rtol=1e-5
                )
        assert 0 < equal < 6  # both cases occur

    def test_state_is_reordered_with_the_beams(self):
        # Second-order model: the logits depend on the token two steps back,
        # which only the state holds. Misordered states would give scores
        # that do not match the returned sequences' true probabilities.
        rng = np.random.default_rng(1)
        vocab, alpha = 6, 0.6
        table = np.log(rng.dirichlet(np.ones(vocab), size=(vocab, vocab)))
        table = table.astype(np.float32)
        const = tf.constant(table)

        def next_logits(ids_t, index, state):
            logits = tf.gather_nd(
                const, tf.stack([state["prev"], ids_t], axis=1)
            )
            return logits, {
                "prev": ids_t,
                "step": state["step"] + 1,
                "memory": state["memory"],
            }

        # A static batch (2) must stay static through the reordering even
        # when the batch size is a tensor whose value is unknown at tracing.
        @tf.function(
            input_signature=[tf.TensorSpec([], tf.int32)], autograph=False
        )
        def search(batch):
            state = {
                "prev": tf.zeros([2], tf.int32),
                "step": tf.constant(0),
                "memory": tf.zeros([2, 3]),  # passed through unchanged
            }
            return samplers.beam_search(
                next_logits, state, batch, 3, max_length=7, alpha=alpha
            )

        ids, scores = search(tf.constant(2))
        for b in range(2):
            for k in range(3):
                seq = list(ids.numpy()[b, k])
                prev2, prev1, log_p, length = 0, 0, 0.0, 0
                for token in seq:
                    log_p += table[prev2, prev1, token]
                    length += 1
                    prev2, prev1 = prev1, token
                    if token == EOS:
                        break
                np.testing.assert_allclose(
                    scores.numpy()[b, k], log_p / _lp(length, alpha), rtol=1e-5
                )
            assert np.all(np.diff(scores.numpy()[b]) <= 1e-6)
