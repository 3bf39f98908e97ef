"""Scoring a whole split: hand-checked metrics through stub decoders.

Fake problems with a test split are written to a temporary data_dir in the
real shard format; the n-best "decoder" is a stub whose hypotheses the test
chooses from the model features it receives, so every metric in the report
is compared with a value computed here independently (sacrebleu, jiwer,
hand counts), from the generators' examples rather than from the files.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil

import jiwer
import numpy as np
import pytest
import sacrebleu
import tensorflow as tf

from problems import problem as problem_lib
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import tfrecord, vocabulary
from t2t_multimodel.decoding import decoder, nbest, scoring, split_examples
from tests.training import fake_problems

TREES_VOCAB = "vocab.trees.model"
# Hand-counted parsing case (see test_parsing_metrics_by_hand).
TREES = [
    # (words, gold tree, hypothesis)
    (
        "ab cd ef",
        "S NP DT NN /NP VP VBZ /VP /S",
        "S NP DT NN /NP VP VBZ /VP /S",
    ),
    (
        "ab cd ef gh",
        "S NP DT NN /NP VP VBZ NP NN /NP /VP /S",
        "S NP DT NN /NP VP VBZ NN /VP /S",
    ),
    ("ab cd", "S NP NN /NP VP VBZ /VP /S", "S NP NN /NP VP VBZ"),
]


def _with_test(problem, test_generator, train_generator=None):
    generators = dict(problem.generators)
    generators["test"] = test_generator
    if train_generator is not None:
        generators["train"] = train_generator
    return dataclasses.replace(problem, generators=generators)


def _text_test(tmp):
    return fake_problems._text_examples(7, 23)


TEXT = _with_test(fake_problems.text_problem("score_text"), _text_test)
SPEECH = _with_test(
    fake_problems.speech_problem("score_speech"),
    lambda tmp: fake_problems._speech_examples(8, 10),
)
IMAGE = _with_test(
    dataclasses.replace(
        fake_problems.image_problem("score_image"),
        class_names=("top-left", "top-right", "bottom-left", "bottom-right"),
    ),
    lambda tmp: fake_problems._image_examples(9, 14),
)
_TREE_TEXT = features_lib.Feature(
    tf.int64, (None,), modality=fake_problems.SYMBOL, vocabulary=TREES_VOCAB
)
PARSE = problem_lib.Problem(
    name="score_parse",
    generators={
        "train": lambda tmp: (
            {"inputs": w, "targets": t} for w, t, _ in TREES * 2
        ),
        "test": lambda tmp: ({"inputs": w, "targets": t} for w, t, _ in TREES),
    },
    features={"inputs": _TREE_TEXT, "targets": _TREE_TEXT},
    metrics=("exact_tree", "bracket_f1"),
    target_space_id=features_lib.SpaceID.PARSE_TOK,
    num_shards=1,
)


def _write(problem, data_dir, vocabs, shards):
    for split, num_shards in shards.items():
        tfrecord.write_split(
            problem.generate(split, ""),
            problem.features,
            vocabs,
            data_dir,
            problem.name,
            split,
            num_shards,
        )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("data"))
    vocab = vocabulary.build_vocabulary(
        [" ".join(fake_problems.WORDS)] * 20,
        os.path.join(data_dir, fake_problems.VOCAB_FILE),
        vocab_size=24,
    )
    trees_vocab = vocabulary.build_vocabulary(
        [f"{w} {t} {h}" for w, t, h in TREES] * 20,
        os.path.join(data_dir, TREES_VOCAB),
        vocab_size=40,
    )
    vocabs = {fake_problems.VOCAB_FILE: vocab, TREES_VOCAB: trees_vocab}
    # Test splits of several shards: the reader restores generation order.
    _write(TEXT, data_dir, vocabs, {"test": 3})
    _write(SPEECH, data_dir, vocabs, {"train": 2, "test": 1})
    _write(IMAGE, data_dir, vocabs, {"train": 2, "test": 2})
    _write(PARSE, data_dir, vocabs, {"train": 1, "test": 1})
    return data_dir, vocab, trees_vocab


def _reader(problem, vocab, **config):
    return split_examples.SplitReader(
        problem, vocab, decoder.DecodeConfig(**config)
    )


def _input_texts(features, vocab):
    ids = features["inputs"].numpy()
    mask = features["inputs_mask"].numpy()
    return [vocab.decode(row[m].tolist()) for row, m in zip(ids, mask)]


def _run(problem, data_dir, **kwargs):
    return scoring.SplitRun(split="test", data_dir=data_dir, **kwargs)


class TestTranslation:
    def _hypothesis(self, source: str) -> str:
        """Right (the reversed words) for inputs starting "ab", else wrong."""
        words = source.split()
        return " ".join(reversed(words)) if words[0] == "ab" else "cd cd"

    def test_bleu_and_copy_baseline(self, data):
        data_dir, vocab, _ = data

        def stub(features):
            return [
                [nbest.Hypothesis(self._hypothesis(s), -1.0)]
                for s in _input_texts(features, vocab)
            ]

        reader = _reader(TEXT, vocab)
        decoded, report = scoring.score_split(
            reader, stub, _run(TEXT, data_dir, batch_size=4)
        )
        examples = list(_text_test(""))
        sources = [e["inputs"] for e in examples]
        refs = [e["targets"] for e in examples]
        hyps = [self._hypothesis(s) for s in sources]
        assert 0 < sum(h == r for h, r in zip(hyps, refs)) < len(refs)
        # Generation order, across the 3 shards.
        assert [d.example.input for d in decoded] == sources
        assert [d.example.index for d in decoded] == list(range(23))
        assert [d.example.reference for d in decoded] == refs
        bleu = sacrebleu.metrics.BLEU()
        expected = bleu.corpus_score(hyps, [refs])
        assert report["metrics"]["bleu"] == pytest.approx(expected.score)
        assert report["metrics"]["bleu_signature"] == str(bleu.get_signature())
        copy = sacrebleu.corpus_bleu(sources, [refs]).score
        assert report["baselines"]["bleu"] == {
            "baseline": "copy_input",
            "value": pytest.approx(copy),
        }
        assert report["examples"] == 23
        # Copying needs no train targets: no note about the missing split.
        assert "baseline_note" not in report

    def test_model_inputs_as_serving_makes_them(self, data):
        data_dir, vocab, _ = data
        reader = _reader(TEXT, vocab, max_input_length=3)
        features, examples = next(reader.batches("test", data_dir, 5))
        first = examples[0].input
        ids = features["inputs"].numpy()[0]
        expected = vocab.encode(first)[:2] + [vocabulary.EOS_ID]
        assert ids.tolist()[:3] == expected
        # Padded to a multiple of 16 positions, masked.
        assert ids.shape[0] == split_examples.PAD_MULTIPLE
        assert features["inputs_mask"].numpy()[0].tolist() == (
            [True] * 3 + [False] * 13
        )
        assert features["target_space_id"].numpy().tolist() == [8] * 5


def test_speech_wer_and_constant_baseline(data):
    data_dir, vocab, _ = data
    reader = _reader(SPEECH, vocab)

    def stub(features):
        assert features["inputs"].shape[1] % split_examples.PAD_MULTIPLE == 0
        return [[nbest.Hypothesis("ab cd", 0.0)]] * features["inputs"].shape[0]

    decoded, report = scoring.score_split(
        reader, stub, _run(SPEECH, data_dir, batch_size=3)
    )
    refs = [e["targets"] for e in fake_problems._speech_examples(8, 10)]
    assert [d.example.reference for d in decoded] == refs
    # One-word references: "ab cd" has 1 substitution or 1 insertion each.
    errors = sum(2 if r != "ab" and r != "cd" else 1 for r in refs)
    assert report["metrics"]["wer"] == pytest.approx(100 * errors / len(refs))
    assert report["metrics"]["wer"] == pytest.approx(
        100 * jiwer.wer(refs, ["ab cd"] * len(refs))
    )
    # Best constant: the train word most frequent in the test references.
    train = [e["targets"] for e in fake_problems._speech_examples(5, 32)]
    fewest = min(sum(r != w for r in refs) for w in set(train))
    baseline = report["baselines"]["wer"]
    assert baseline["baseline"] == "best_constant_output"
    assert baseline["value"] == pytest.approx(100 * fewest / len(refs))
    assert sum(r != baseline["output"] for r in refs) == fewest
    assert decoded[0].example.input.startswith("audio 0.10 s sha256:")


def test_baselines_without_a_train_split(data, tmp_path):
    data_dir, vocab, _ = data
    for name in os.listdir(data_dir):
        if name.startswith(f"{SPEECH.name}-test") or name.endswith(".model"):
            shutil.copy(os.path.join(data_dir, name), tmp_path / name)

    def stub(features):
        return [[nbest.Hypothesis("ab", 0.0)]] * features["inputs"].shape[0]

    _, report = scoring.score_split(
        _reader(SPEECH, vocab), stub, _run(SPEECH, str(tmp_path))
    )
    assert report["baselines"] == {}
    assert report["baseline_note"].startswith(
        f"no train split of {SPEECH.name} in {tmp_path}"
    )
    assert scoring.needs_train_targets(["bleu"], text_inputs=False)
    assert not scoring.needs_train_targets(["bleu"], text_inputs=True)


def test_image_top_k_and_majority_baseline(data):
    data_dir, vocab, _ = data
    reader = _reader(IMAGE, None)
    seen = []

    def stub(features):
        pixels = features["inputs"].numpy()[..., 0]  # [B, 16, 16]
        out = []
        for image in pixels:
            quads = [
                image[r : r + 8, c : c + 8].mean()
                for r in (0, 8)
                for c in (0, 8)
            ]
            label = int(np.argmax(quads))  # The brightest quadrant.
            i = len(seen)
            seen.append(label)
            wrong = [(label + 1) % 4, (label + 2) % 4]
            if i % 3 == 0:
                ranked = [label] + wrong
            elif i % 3 == 1:
                ranked = wrong[:1] + [label]
            else:
                ranked = wrong
            out.append([nbest.Hypothesis(str(c), 0.0, c) for c in ranked])
        return out

    decoded, report = scoring.score_split(
        reader, stub, _run(IMAGE, data_dir, batch_size=5)
    )
    labels = [e["targets"] for e in fake_problems._image_examples(9, 14)]
    assert seen == labels  # The stored images, in order, preprocessed.
    n = len(labels)
    top1 = sum(i % 3 == 0 for i in range(n)) / n
    top5 = sum(i % 3 != 2 for i in range(n)) / n
    assert report["metrics"] == {
        "accuracy_top1": pytest.approx(top1),
        "accuracy_top5": pytest.approx(top5),
    }
    names = IMAGE.class_names
    assert [d.example.reference for d in decoded] == [names[y] for y in labels]
    train = [e["targets"] for e in fake_problems._image_examples(3, 64)]
    counts = collections.Counter(train).most_common()
    majority = counts[0][0]
    assert report["baselines"]["accuracy_top1"] == {
        "baseline": "majority_class",
        "classes": [names[majority]],
        "value": pytest.approx(sum(y == majority for y in labels) / n),
    }
    assert decoded[0].example.input.startswith("image sha256:")


def test_parsing_metrics_by_hand(data):
    data_dir, _, trees_vocab = data
    reader = _reader(PARSE, trees_vocab)
    by_words = {w: h for w, _, h in TREES}

    def stub(features):
        return [
            [nbest.Hypothesis(by_words[w], 0.0)]
            for w in _input_texts(features, trees_vocab)
        ]

    _, report = scoring.score_split(reader, stub, _run(PARSE, data_dir))
    m = report["metrics"]
    # Brackets: gold 3 + 4 + 3 = 10; hypotheses 3 + 3 + 3 (the third
    # repaired to the gold tree) = 9, all matched: P 100, R 90.
    assert m["bracket_precision"] == pytest.approx(100.0)
    assert m["bracket_recall"] == pytest.approx(90.0)
    assert m["bracket_f1"] == pytest.approx(2 * 100 * 90 / 190)
    assert m["exact_tree"] == pytest.approx(100 / 3)
    assert m["well_formed"] == pytest.approx(200 / 3)
    assert m["repaired"] == pytest.approx(100 / 3)
    # Right-branching, labelled S (root) and NP (the commonest train phrase):
    # matched only the roots, 3 of 2 + 3 + 1 test and 10 gold brackets.
    assert report["baselines"]["bracket_f1"] == {
        "baseline": "right_branching",
        "value": pytest.approx(2 * 50 * 30 / 80),
    }


def test_write_results(data, tmp_path):
    data_dir, vocab, _ = data

    def stub(features):
        texts = _input_texts(features, vocab)
        return [
            [nbest.Hypothesis(f"{t}\tx", -0.5), nbest.Hypothesis("cd", -2.0)]
            for t in texts
        ]

    decoded, report = scoring.score_split(
        _reader(TEXT, vocab), stub, _run(TEXT, data_dir, baselines=False)
    )
    assert "baselines" not in report
    path = str(tmp_path / "out" / "test.tsv")
    files = scoring.write_results(path, decoded, report, return_beams=True)
    rows = [r.split("\t") for r in open(path).read().splitlines()]
    assert rows[0] == ["index", "input", "reference", "hypothesis"]
    assert len(rows) == 24 and all(len(r) == 4 for r in rows)
    first = decoded[0].example
    assert rows[1] == ["0", first.input, first.reference, f"{first.input} x"]
    hyp = open(files["hyp"]).read().splitlines()
    ref = open(files["ref"]).read().splitlines()
    assert len(hyp) == len(ref) == 23 and ref[0] == first.reference
    assert sacrebleu.corpus_bleu(hyp, [ref]).score == pytest.approx(
        report["metrics"]["bleu"]
    )
    beams = open(files["beams"]).read().splitlines()
    assert beams[0] == "input_index\tbeam_rank\tscore\tfinished\ttext"
    assert beams[1:3] == [
        f"0\t0\t-0.500000\t1\t{first.input} x",
        "0\t1\t-2.000000\t1\tcd",
    ]
    assert len(beams) == 1 + 2 * 23
    saved = json.load(open(files["metrics"]))
    assert saved["files"] == files and saved["metrics"] == report["metrics"]
    assert not [p for p in os.listdir(tmp_path / "out") if p.startswith(".")]


def test_format_report():
    report = {
        "problem": "p",
        "split": "test",
        "examples": 3,
        "decoding": {"search": "beam", "beam_size": 4, "alpha": 0.6},
        "metrics": {"bleu": 12.345, "bleu_signature": "nrefs:1|x"},
        "baselines": {"bleu": {"baseline": "copy_input", "value": 1.0}},
        "checkpoint": "m/model.ckpt-5",
    }
    text = scoring.format_report(report)
    assert "p test: 3 examples, beam search, beam 4, alpha 0.6" in text
    assert "12.35" in text and "1.00 (copy_input)" in text
    assert "BLEU signature: nrefs:1|x" in text
