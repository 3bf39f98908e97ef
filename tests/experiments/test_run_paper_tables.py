"""experiments/run_paper_tables.py: rows via t2t-mm-trainer, resume, tables.

Two tiny rows (the fake text problem of tests/training/fake_problems.py,
3 steps each) run through the real trainer binary; a second pass skips
them; docs/RESULTS.md-style tables are built from their eval files. The
paper's gin files are parsed and checked against the runner's rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments import paper_tables, results_report
from experiments import run_paper_tables as runner
from tests.training import fake_problems

ROOT = runner.ROOT
EXPERIMENT = """
from __gin__ import dynamic_registration
include 'train.gin'
from t2t_multimodel.training import configs
from t2t_multimodel.training import evaluation
from t2t_multimodel.training import loop
from tests.training import fake_problems

PROBLEMS = "unused: the problems come from fake_problems"
HIDDEN_DIM = 16
BATCH_SIZE = 8
BATCH_UNIT = "examples"
MAX_LENGTH = 16
LEARNING_RATE = {lr}
WARMUP_STEPS = 10
loop.train.problems = [@fake_problems.text_problem()]
loop.train.model_fn = @fake_problems.tiny_model
configs.CheckpointConfig.every = 100
evaluation.EvalConfig.every = 0
evaluation.EvalConfig.steps = 1
evaluation.EvalConfig.max_decode_length = 8
"""
TEXT = "fake_copy_text"


def test_summarize_and_compare_by_hand():
    assert results_report.summarize([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    assert results_report.summarize([4.0]) == (4.0, 0.0, 1)
    # diff 0.05; s.e. = sqrt(0.01/3 + 0.0025/3) = 0.0645; 2 s.e. = 0.13.
    text = results_report.compare([1.0, 1.1, 0.9], [1.05, 1.0, 1.1])
    assert text == "+0.05, within noise (2 s.e. = 0.13)"
    text = results_report.compare([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    assert text == "+1.00, beyond noise (2 s.e. = 0.16)"
    assert "one seed" in results_report.compare([1.0], [2.0])
    assert results_report.compare([], [2.0]) == "not run"


def test_metric_values():
    result = {"log_ppl": -1.5, "accuracy": 0.25, "wer": 40.0, "bleu": 3.0}
    assert results_report.metric_value(result, "log_ppl") == 1.5
    assert results_report.metric_value(result, "accuracy") == 25.0
    # BLEU comes first in TASK_METRICS.
    assert results_report.task_metric(result) == ("BLEU", 3.0)
    assert results_report.task_metric({"accuracy_top1": 0.5}) == (
        "top-1 %",
        50.0,
    )
    assert (
        results_report.metric_value({"log_ppl": -1, "accuracy": 0}, "task")
        is None
    )


def test_row_steps_and_read_final(tmp_path):
    row = paper_tables.Row("r", "r.gin", ("a", "b"), 600)
    assert row.steps_for(None) == 600 and row.steps_for(5) == 10
    (tmp_path / "eval_results.json").write_text(json.dumps({"step": 4}))
    assert runner.read_final(str(tmp_path), 5) is None
    assert runner.read_final(str(tmp_path), 4) == {"step": 4}
    assert runner.read_final(str(tmp_path / "missing"), 4) is None


def _fake_trainer(tmp_path, monkeypatch, code: str):
    """Points the runner at a stand-in trainer script; returns (path, row,
    model_dir) for a 7-step row "r"."""
    fake = tmp_path / "trainer.py"
    fake.write_text(code)
    monkeypatch.setattr(runner, "TRAINER", str(fake))
    row = paper_tables.Row("r", "r.gin", ("a",), 7)
    return fake, row, str(tmp_path / "m")


def test_row_past_its_time_budget_gets_sigterm(tmp_path, monkeypatch):
    # A stand-in trainer that would run for a minute; SIGTERM ends it.
    fake, row, model_dir = _fake_trainer(
        tmp_path,
        monkeypatch,
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
        "time.sleep(60)\n",
    )
    status = runner.run_row(
        row, data_dir="d", model_dir=model_dir, steps=7, seed=1, timeout_s=1
    )
    assert status == runner.TIMEOUT
    info = json.load(open(os.path.join(model_dir, runner.ROW_FILE)))
    assert info["steps"] == 7 and info["seed"] == 1
    assert 1.0 <= info["seconds"] < 30.0
    command = runner.trainer_command(
        row, data_dir="d", model_dir="m", steps=7, seed=3
    )
    assert command[1:] == [
        str(fake),
        "--gin_file=r.gin",
        "--data_dir=d",
        "--model_dir=m",
        "--gin_bindings=TRAIN_STEPS = 7",
        "--gin_bindings=SEED = 3",
    ]


def test_extra_bindings_are_recorded_and_never_mixed(tmp_path, monkeypatch):
    # A stand-in trainer that writes its command line and the final eval.
    _, row, model_dir = _fake_trainer(
        tmp_path,
        monkeypatch,
        "import json, os, sys\n"
        "model_dir = [a for a in sys.argv if a.startswith('--model_dir=')]"
        "[0].split('=', 1)[1]\n"
        "json.dump({'step': 7, 'argv': sys.argv[1:]},"
        " open(os.path.join(model_dir, 'eval_results.json'), 'w'))\n",
    )
    lower = ["LEARNING_RATE = 0.189"]
    kwargs = dict(data_dir="d", model_dir=model_dir, steps=7, seed=1)
    assert runner.run_row(row, extra_bindings=lower, **kwargs) == "trained"
    final = runner.read_final(model_dir, 7)
    assert final["argv"][-1] == "--gin_bindings=LEARNING_RATE = 0.189"
    info = json.load(open(os.path.join(model_dir, runner.ROW_FILE)))
    assert info["gin_bindings"] == lower
    assert runner.run_row(row, extra_bindings=lower, **kwargs) == "done"
    # The same run dir under other bindings (here none) is refused.
    with pytest.raises(ValueError, match="use another --out_dir"):
        runner.run_row(row, **kwargs)


def test_paper_gin_files_match_rows(tmp_path):
    # Parsed in a fresh process outside the repository (a `runs/` folder in
    # the repository root would shadow gin's `runs/train.gin` include).
    script = f"""
import json, os, gin
import problems
from experiments import paper_tables
R = {os.path.join(ROOT, "t2t_multimodel", "configs")!r}
out = {{}}
for row in paper_tables.ROWS:
    gin.clear_config()
    for sub in ("", "models", "runs", "experiments"):
        gin.add_config_file_search_path(os.path.join(R, sub))
    gin.parse_config_files_and_bindings(
        [os.path.join(R, "experiments", row.gin_file)],
        ["DATA_DIR = '/d'", "MODEL_DIR = '/m'"])
    q = lambda n: gin.query_parameter(n + "/macro.value")
    problems_ = [p.name for p in problems.registry.resolve(q("PROBLEMS"))]
    bindings = gin.config_str()
    out[row.name] = [problems_, q("TRAIN_STEPS"), q("MIXING"),
                     q("ENCODER_MOE_POSITION"), q("DECODER_MOE_POSITION"),
                     "use_attention = False" in bindings]
print(json.dumps(out))
"""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(parsed) == {r.name for r in paper_tables.ROWS}
    for row in paper_tables.ROWS:
        names, steps, mixing, enc_moe, dec_moe, no_attn = parsed[row.name]
        assert sorted(names) == sorted(row.problems), row.name
        assert steps == row.steps == 300 * len(row.problems), row.name
        assert mixing == "uniform"
        no_moe = row.name == "joint_all_no_moe"
        assert (enc_moe is None, dec_moe is None) == (no_moe, no_moe)
        assert no_attn == (row.name == "joint_all_no_attention")


@pytest.mark.slow
def test_two_rows_resume_and_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    data_dir = str(tmp_path / "data")
    fake_problems.write([fake_problems.text_problem()], data_dir)
    rows = []
    for name, lr in (("a", 0.5), ("b", 0.1)):
        (tmp_path / f"{name}.gin").write_text(EXPERIMENT.format(lr=lr))
        rows.append(
            paper_tables.Row(name, str(tmp_path / f"{name}.gin"), (TEXT,), 3)
        )
    out_dir = str(tmp_path / "out")
    kwargs = dict(out_dir=out_dir, data_dir=data_dir, seeds=[1], log=print)
    statuses = runner.run_all(rows, **kwargs)
    assert statuses == {("a", 1): "trained", ("b", 1): "trained"}
    eval_files = [
        os.path.join(
            runner.model_dir_for(out_dir, r, 3, 1), "eval_results.json"
        )
        for r in rows
    ]
    mtimes = [os.path.getmtime(f) for f in eval_files]
    # Finished rows are skipped: nothing is retrained or rewritten.
    assert runner.run_all(rows, **kwargs) == {
        ("a", 1): "done",
        ("b", 1): "done",
    }
    assert [os.path.getmtime(f) for f in eval_files] == mtimes

    results, seconds = runner.collect(rows, out_dir=out_dir, seeds=[1])
    assert set(results) == {"a", "b"} and seconds["a"][1] > 0
    table = paper_tables.Table(
        "t",
        "Tiny table",
        "a vs b",
        (TEXT,),
        (paper_tables.Column("A", "a"), paper_tables.Column("B", "b")),
        {TEXT: ("1.0 / 50%", "2.0 / 40%")},
    )
    path = str(tmp_path / "docs" / "RESULTS.md")
    text = results_report.write_results(
        [table],
        rows,
        results,
        seconds,
        path=path,
        plots_dir=str(tmp_path / "docs"),
        seeds=[1],
        steps_per_problem=3,
        command="test",
        notes="## Observations\n\nRow b learns less.\n",
    )
    assert open(path).read() == text
    # Hand-written notes sit after the tables, before the timings.
    assert "## Observations\n\nRow b learns less.\n\n## Time per row" in text
    assert "SMOKE PASS: 3 steps per problem" in text
    assert "Runs finished: 2 of 2" in text
    assert os.path.exists(tmp_path / "docs" / "paper_t.png")
    assert "![Tiny table](paper_t.png)" in text
    line = [ln for ln in text.splitlines() if ln.startswith(f"| {TEXT}")][0]
    cells = [c.strip() for c in line.strip("|").split("|")]
    problems_a = json.load(open(eval_files[0]))["problems"][TEXT]
    problems_b = json.load(open(eval_files[1]))["problems"][TEXT]
    assert cells[2] == f"{-problems_a['log_ppl']:.2f}"
    assert cells[3] == f"{-problems_b['log_ppl']:.2f}"
    assert cells[4:] == ["1.0 / 50%", "2.0 / 40%"]
    accuracy = f"{100 * problems_a['accuracy']:.2f}"
    bleu = f"{problems_a['bleu']:.2f} | {problems_b['bleu']:.2f}"
    assert f"| acc. % | {accuracy} |" in text
    assert f"| BLEU | {bleu} |" in text
    assert "one seed: cannot be told from noise" in text
    assert "## What this scale cannot show" in text
