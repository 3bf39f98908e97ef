"""Tests of the demo's export scoring: metrics, baselines, flags, checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from programs import demo_report, demo_scoring
from t2t_multimodel.data import features as features_lib


@dataclasses.dataclass(frozen=True)
class FakeProblem:
    name: str
    metrics: tuple[str, ...]
    input_space_id: int = features_lib.SpaceID.EN_TOK
    target_space_id: int = features_lib.SpaceID.DE_TOK


class TestBaselines:
    def test_majority_class(self):
        problem = FakeProblem("img", ("accuracy_top1",), 16, 1)
        base = demo_scoring.baselines(
            problem,
            train_targets=[3, 3, 1, 2],
            dev_inputs=[b"png"] * 4,
            references=[3, 1, 1, 3],
        )
        # Always class 3: right on 2 of 4 dev labels.
        assert base["accuracy_top1"]["value"] == 0.5
        assert base["accuracy_top1"]["baseline"] == "majority class"

    def test_copy_input_for_text_inputs(self):
        problem = FakeProblem("mt", ("bleu",))
        base = demo_scoring.baselines(
            problem,
            train_targets=["x"],
            dev_inputs=["the same sentence here ."],
            references=["the same sentence here ."],
        )
        assert base["bleu"]["baseline"] == "copy the input"
        assert base["bleu"]["value"] == pytest.approx(100.0)

    def test_best_constant_for_speech_wer(self):
        problem = FakeProblem("asr", ("wer",), 13, 3)
        base = demo_scoring.baselines(
            problem,
            train_targets=["a b", "a b", "c d e"],
            dev_inputs=[np.zeros(4, np.float32)] * 2,
            references=["a b", "a c"],
        )
        # "a b": 0 + 1 errors over 4 words = 25%; "c d e": 2 + 2 +1 insert.
        assert base["wer"]["output"] == "a b"
        assert base["wer"]["value"] == pytest.approx(25.0)

    def test_right_branching_and_exact_trees(self):
        problem = FakeProblem("parse", ("exact_tree", "bracket_f1"), 3, 15)
        base = demo_scoring.baselines(
            problem,
            train_targets=["S NP NN /NP VP VBZ /VP /S"],
            dev_inputs=["dogs bark"],
            references=["S NP NNS /NP VP VBP /VP /S"],
        )
        assert base["exact_tree"]["value"] == 0.0
        # Two leaves: the right-branching tree is (S t1 t2), 1 bracket of
        # the gold's 3 (S, NP, VP): P = 1, R = 1/3, F1 = 50%.
        assert base["bracket_f1"]["value"] == pytest.approx(50.0)


class TestBeatsAndTable:
    def test_beats_respects_direction(self):
        assert demo_scoring.beats("bleu", 5.1, 5.0)
        assert not demo_scoring.beats("bleu", 5.0, 5.0)
        assert demo_scoring.beats("wer", 40.0, 90.0)
        assert not demo_scoring.beats("wer", 95.0, 90.0)
        assert not demo_scoring.beats("bleu", None, 1.0)

    def test_task_metrics(self):
        problem = FakeProblem("img", ("accuracy_top1",))
        values = demo_scoring.task_metrics(problem, [1, 2, 3, 4], [1, 2, 0, 0])
        assert values == {"accuracy_top1": 0.5}

    def test_table_flags_what_does_not_beat_its_baseline(self):
        scores = {
            "mt": {
                "dev_examples": 10,
                "metrics": {"bleu": 3.0},
                "baselines": {
                    "bleu": {"baseline": "copy the input", "value": 4.0}
                },
                "beats_baseline": {"bleu": False},
                "checks": {"outputs": 10, "distinct_outputs": 9},
            },
            "img": {
                "dev_examples": 4,
                "metrics": {"accuracy_top1": 0.9},
                "baselines": {
                    "accuracy_top1": {
                        "baseline": "majority class",
                        "value": 0.1,
                    }
                },
                "beats_baseline": {"accuracy_top1": True},
                "checks": {"outputs": 4, "distinct_outputs": 3},
            },
        }
        lines = demo_report.scores_table(scores).splitlines()
        mt = next(line for line in lines if line.startswith("mt "))
        img = next(line for line in lines if line.startswith("img "))
        assert "FLAG" in mt and "3.00" in mt and "4.00" in mt
        assert "FLAG" not in img and "90.0%" in img and "10.0%" in img


class TestOutputChecks:
    def test_distinct_and_language_shares(self):
        problem = FakeProblem("mt", ("bleu",))
        outputs = ["Das Haus ist klein.", "Das Haus ist klein.", "The cat."]
        checks = demo_scoring.output_checks(problem, outputs, [])
        assert checks["distinct_outputs"] == 2
        assert checks["expected_output"] == "de"
        assert checks["in_domain_target_share"] == pytest.approx(2 / 3)
        assert "out_of_domain_target_share" not in checks

    def test_parse_well_formed(self):
        problem = FakeProblem("parse", ("exact_tree",), 3, 15)
        outputs = ["S NP NN /NP /S", "S NP NN"]
        checks = demo_scoring.output_checks(problem, outputs, outputs)
        assert checks["well_formed"] == 0.5
        assert checks["out_of_domain_target_share"] == 0.5
        assert "model_well_formed" not in checks

    def test_parse_shares_before_the_served_repair(self):
        problem = FakeProblem("parse", ("exact_tree",), 3, 15)
        served = ["S NP NN /NP /S", "S NN /S", "S XX /S", "S NN /S"]
        checks = demo_scoring.output_checks(
            problem,
            served,
            served[:2],
            repaired=[False, True, True, False],
            ood_repaired=[True, True],
        )
        assert checks["well_formed"] == 1.0
        assert checks["model_well_formed"] == 0.5
        assert checks["out_of_domain_model_well_formed"] == 0.0
        scores = {
            "parse": {
                "dev_examples": 4,
                "metrics": {"exact_tree": 0.0},
                "baselines": {},
                "beats_baseline": {"exact_tree": False},
                "checks": checks,
            }
        }
        table = demo_report.scores_table(scores)
        assert "100% well-formed (model 50%, OOD 0%)" in table


def test_wav_bytes_round_trip():
    import io

    import soundfile

    waveform = np.array([0.0, 0.5, -0.5, 0.25], np.float32)
    data, rate = soundfile.read(io.BytesIO(demo_scoring.wav_bytes(waveform)))
    assert rate == 16000
    np.testing.assert_allclose(data, waveform, atol=1 / 32768)


def test_read_split_gives_raw_inputs(tmp_path):
    from tests.training import fake_problems

    problems = [
        fake_problems.text_problem(),
        fake_problems.image_problem(),
        fake_problems.speech_problem(),
    ]
    fake_problems.write(problems, str(tmp_path))
    text, image, speech = (
        demo_scoring.read_split(p, str(tmp_path), "dev") for p in problems
    )
    raw = list(fake_problems._text_examples(2, 12))
    assert [ex["inputs"] for ex in text] == [ex["inputs"] for ex in raw]
    assert [ex["targets"] for ex in text] == [ex["targets"] for ex in raw]
    raw_images = list(fake_problems._image_examples(4, 12))
    assert image[0]["inputs"] == raw_images[0]["inputs"]  # PNG bytes.
    assert [ex["targets"] for ex in image] == [
        ex["targets"] for ex in raw_images
    ]
    assert speech[0]["inputs"].dtype == np.float32
    assert speech[0]["inputs"].shape == (1600,)
    assert isinstance(speech[0]["targets"], str)


def test_read_split_of_some_keys_and_which_problems_read_train(tmp_path):
    from tests.training import fake_problems

    text = fake_problems.text_problem()
    image = fake_problems.image_problem()
    speech = fake_problems.speech_problem()
    fake_problems.write([text, image, speech], str(tmp_path))
    # Class ids come in whole batches; the images are not read.
    labels = demo_scoring.read_split(image, str(tmp_path), "dev", ("targets",))
    raw_images = list(fake_problems._image_examples(4, 12))
    assert labels == [{"targets": ex["targets"]} for ex in raw_images]
    assert all(type(ex["targets"]) is int for ex in labels)
    words = demo_scoring.read_split(text, str(tmp_path), "dev", ("targets",))
    raw = list(fake_problems._text_examples(2, 12))
    assert words == [{"targets": ex["targets"]} for ex in raw]
    # Translation's baseline copies the input; the others need train targets
    # (what score_problem asks before reading the train split).
    from t2t_multimodel.decoding import decoder, scoring

    def needs_train_targets(p):
        text_inputs = decoder.input_kind(p) == decoder.TEXT
        return scoring.needs_train_targets(p.metrics, text_inputs=text_inputs)

    assert not needs_train_targets(text)
    assert needs_train_targets(image)  # Majority class.
    assert needs_train_targets(speech)  # Best constant output.
