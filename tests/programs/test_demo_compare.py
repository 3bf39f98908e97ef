"""programs.demo_compare: two demo runs' figures and weights, compared."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from programs import demo_compare


def _run(root, name, results, weights):
    run = root / name
    (run / "model").mkdir(parents=True)
    with open(run / "eval_results.json", "w") as f:
        json.dump(results, f)
    ckpt = tf.train.Checkpoint(
        **{k: tf.Variable(v) for k, v in weights.items()}
    )
    ckpt.save(os.path.join(run, "model", "model.ckpt"))
    return str(run)


_RESULTS = {
    "step": 100,
    "timings_s": {"training_s": 12.5},
    "model_dir": "/a/model",
    "problems": {"p": {"bleu": 3.25, "examples": 20}},
    "export_scores": {
        "p": {
            "metrics": {"bleu": 4.5},
            "samples": [{"output": "ein Haus", "reference": "ein Haus"}],
        }
    },
}


def test_identical_runs(tmp_path, capsys):
    w = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    a = _run(tmp_path, "a", _RESULTS, w)
    other = {**_RESULTS, "timings_s": {"training_s": 99.0}, "model_dir": "/b"}
    b = _run(tmp_path, "b", other, w)
    assert demo_compare.results_differences(a, b) == []
    assert demo_compare.weight_differences(a, b) == []
    assert demo_compare.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "figures: identical" in out and "weights: identical" in out


def test_differences_are_named(tmp_path, capsys):
    a = _run(
        tmp_path, "a", _RESULTS, {"w": np.zeros([2], np.float32), "n": 3}
    )
    changed = json.loads(json.dumps(_RESULTS))
    changed["problems"]["p"]["bleu"] = 3.5
    changed["export_scores"]["p"]["samples"][0]["output"] = "ein Hund"
    changed["extra"] = 1
    b = _run(
        tmp_path,
        "b",
        changed,
        {"w": np.array([0.0, 0.25], np.float32), "n": 3},
    )
    assert demo_compare.results_differences(a, b) == [
        "export_scores.p.samples[0].output: 'ein Haus' vs 'ein Hund'",
        "extra: only in run 2",
        "problems.p.bleu: 3.25 vs 3.5",
    ]
    (line,) = demo_compare.weight_differences(a, b)
    assert line.startswith(
        "w/.ATTRIBUTES/VARIABLE_VALUE: max |difference| 0.25"
    )
    assert demo_compare.main([a, b]) == 1
    assert "figures: 3 differ" in capsys.readouterr().out
