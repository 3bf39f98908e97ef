"""NBestDecoder: every beam with its score; the serving answer unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.decoding import decoder, nbest, samplers
from tests.decoding import tiny


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    return tiny.build_vocabulary(str(tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="module")
def model():
    return tiny.build_model()


def _decoders(model, vocab, problem, **config):
    d = decoder.ProblemDecoder(
        model, problem, vocab, decoder.DecodeConfig(**config)
    )
    return d, nbest.NBestDecoder(d)


TEXTS = ["the cat sat", "der hund lief schnell", "where"]


def assert_search_order(finished, scores):
    """Finished hypotheses first, each group best score first."""
    assert list(finished) == sorted(finished, reverse=True)
    for group in (True, False):
        mine = [s for f, s in zip(finished, scores) if f == group]
        assert mine == sorted(mine, reverse=True)


def test_beams_best_first_and_best_is_the_serving_answer(model, vocab):
    d, n = _decoders(model, vocab, tiny.TEXT_PROBLEM, beam_size=3, max_length=6)
    assert n.search == "beam"
    lists = n.decode(TEXTS)
    served = d.decode(TEXTS)
    assert [len(hyps) for hyps in lists] == [3, 3, 3]
    for hyps, text, score in zip(lists, served["outputs"], served["scores"]):
        assert_search_order([h.finished for h in hyps], [h.score for h in hyps])
        assert hyps[0].text == text
        assert hyps[0].score == pytest.approx(float(score), abs=1e-5)
    # The scores are beam_search's for the same next-logits function.
    features = d.model_features(tf.constant(TEXTS))
    fn, state = d.next_logits_fn(features)
    ids, scores = tf.function(
        lambda: samplers.beam_search(fn, state, 3, 3, 6, alpha=0.6)
    )()
    np.testing.assert_allclose(
        [[h.score for h in hyps] for hyps in lists], scores, atol=1e-5
    )
    texts = [[vocab.decode(row) for row in beams] for beams in ids.numpy()]
    assert [[h.text for h in hyps] for hyps in lists] == texts
    finished = (ids.numpy() == samplers.EOS_ID).any(axis=-1).tolist()
    assert [[h.finished for h in hyps] for hyps in lists] == finished


def test_greedy_gives_one_hypothesis(model, vocab):
    d, n = _decoders(model, vocab, tiny.TEXT_PROBLEM, beam_size=1, max_length=5)
    assert n.search == "greedy"
    lists = n.decode(TEXTS[:2])
    served = d.decode(TEXTS[:2])
    assert [len(hyps) for hyps in lists] == [1, 1]
    assert [hyps[0].text for hyps in lists] == list(served["outputs"])
    np.testing.assert_allclose(
        [hyps[0].score for hyps in lists], served["scores"], atol=1e-5
    )


def test_classes_scored_by_log_probability(model, vocab):
    d, n = _decoders(model, vocab, tiny.IMAGE_PROBLEM, top_k=3)
    assert n.search == "top_k"
    raw = tiny.raw_inputs(tiny.IMAGE_PROBLEM)
    lists = n.decode(raw)
    served = d.decode(raw)
    for hyps, ids, probs in zip(
        lists, served["top_k_class_ids"], served["scores"]
    ):
        assert [h.class_id for h in hyps] == list(ids)
        assert [h.text for h in hyps] == [str(i) for i in ids]
        np.testing.assert_allclose(
            [h.score for h in hyps], np.log(probs), rtol=1e-5
        )


@pytest.mark.slow  # Three traces of beam search.
def test_features_of_any_length_reuse_the_trace(model, vocab):
    # No XLA: compiling the step once per shape is slow and not under test.
    d, n = _decoders(
        model,
        vocab,
        tiny.TEXT_PROBLEM,
        beam_size=2,
        max_length=4,
        jit_compile=False,
    )
    for texts in (TEXTS[:1], TEXTS, TEXTS[1:]):
        features = d.model_features(tf.constant(texts))
        by_features = n.decode_features(features)
        assert [h[0].text for h in by_features] == [
            h[0].text for h in n.decode(texts)
        ]
    # Relaxed shapes: at most two traces for three shapes.
    assert n._from_features.experimental_get_tracing_count() <= 2


def test_tsv_lines():
    hyps = [
        nbest.Hypothesis("a\tb\nc", -0.25),
        nbest.Hypothesis("d", -0.125, finished=False),
    ]
    assert nbest.tsv_lines(4, hyps) == [
        "4\t0\t-0.250000\t1\ta b c",
        "4\t1\t-0.125000\t0\td",
    ]
