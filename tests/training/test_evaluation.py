"""Tests of training/evaluation.py: it decodes as the served model does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.data import vocabulary
from t2t_multimodel.decoding import decoder, samplers
from t2t_multimodel.training import evaluation
from tests.decoding import tiny

MAX_LENGTH = 8
# exact_tree is the exact-match percentage of the decoded texts.
PROBLEM = dataclasses.replace(tiny.TEXT_PROBLEM, metrics=("exact_tree",))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("data"))
    return tiny.build_model(), tiny.build_vocabulary(data_dir), data_dir


def _padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids, ids != 0


def _batch(vocab, sources: list[str], targets: list[list[int]]) -> dict:
    inputs, inputs_mask = _padded(
        [vocab.encode(s) + [vocabulary.EOS_ID] for s in sources]
    )
    target_ids, targets_mask = _padded(targets)
    return {
        "inputs": tf.constant(inputs),
        "inputs_mask": tf.constant(inputs_mask),
        "targets": tf.constant(target_ids),
        "targets_mask": tf.constant(targets_mask),
        "target_space_id": tf.fill(
            [len(sources)], int(PROBLEM.target_space_id)
        ),
    }


def _served_ids(model, vocab, batch) -> np.ndarray:
    """The greedy ids of the serving decoder (`beam_size=1`)."""
    served = decoder.ProblemDecoder(
        model,
        PROBLEM,
        vocab,
        decoder.DecodeConfig(
            beam_size=1, max_length=MAX_LENGTH, jit_compile=False
        ),
    )
    return served.decode_features(batch)["ids"].numpy()


def _samplers_greedy(model, vocab, batch) -> np.ndarray:
    """`samplers.greedy_search` driven by hand over `model.decode_step`."""
    encoded = model.encode(batch, input_modality="symbol", training=False)
    state = model.initial_decode_state(encoded, 2, MAX_LENGTH)

    def next_logits(ids_t, index, state):
        logits, state = model.decode_step(
            ids_t,
            index,
            state,
            target_space_id=int(PROBLEM.target_space_id),
            target_modality="symbol",
        )
        known = tf.range(tf.shape(logits)[-1]) < vocab.vocab_size
        return tf.where(known, logits, samplers.NEG_INF), state

    ids, _ = samplers.greedy_search(next_logits, state, 2, MAX_LENGTH)
    return ids.numpy()


def _stripped(ids: np.ndarray) -> list[list[int]]:
    """Rows up to their first EOS, which is kept (EOS-terminated targets)."""
    out = []
    for row in ids.tolist():
        eos = vocabulary.EOS_ID
        end = row.index(eos) + 1 if eos in row else len(row)
        out.append([i for i in row[:end] if i])
    return out


def _evaluator(model, data_dir, batches, steps):
    return evaluation.Evaluator(
        model,
        [PROBLEM],
        lambda problem: batches,
        data_dir=data_dir,
        label_smoothing=0.0,
        config=evaluation.EvalConfig(steps=steps, max_decode_length=MAX_LENGTH),
    )


class TestEvaluator:
    def test_decodes_with_the_serving_greedy_search(self, run):
        model, vocab, data_dir = run
        sources = ["the cat sat", "der hund lief schnell"]
        batch = _batch(vocab, sources, [[5, 1], [6, 1]])
        served = _served_ids(model, vocab, batch)
        np.testing.assert_array_equal(
            served, _samplers_greedy(model, vocab, batch)
        )
        evaluator = _evaluator(model, data_dir, [batch], None)
        assert evaluator.decoding == evaluation.GREEDY
        ids = evaluator._decoder(PROBLEM, vocab.vocab_size, MAX_LENGTH)(batch)
        np.testing.assert_array_equal(ids.numpy(), served)
        assert np.abs(served).sum() > 0  # the model emitted something
        # With the served outputs as references, every decoded text is right.
        batch = _batch(vocab, sources, _stripped(served))
        result = _evaluator(model, data_dir, [batch], None).evaluate(1)
        values = result["problems"][PROBLEM.name]
        assert values["exact_tree"] == 100.0
        assert values["decoding"] == evaluation.GREEDY

    def test_steps_none_is_the_whole_dev_split(self, run):
        model, vocab, data_dir = run
        batches = [
            _batch(vocab, ["the cat", "a dog"], [[5, 1], [6, 1]]),
            _batch(vocab, ["where is"], [[7, 1]]),
        ]
        whole = _evaluator(model, data_dir, batches, None)
        assert whole.evaluate_problem(PROBLEM, 1)["examples"] == 3
        first = _evaluator(model, data_dir, batches, 1)
        assert first.evaluate_problem(PROBLEM, 1)["examples"] == 2
