"""End to end: the demo pipeline (README command 1) at a very small size.

`problems.demo.run_demo` runs datagen on real offline demo data (capped to a
few examples per split), trains a tiny paper MultiModel jointly, evaluates,
exports and reloads the SavedModel, decodes with it and writes the report.
The default test takes two problems (text -> text, image -> class); the slow
one takes every demo problem and checks that a rerun resumes training.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import problems  # noqa: F401  (registers every problem and mixture)
from problems import registry
from programs import demo, demo_report
from t2t_multimodel.data import tfrecord
from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.decoding import restore
from t2t_multimodel.models import build, io_mixer
from t2t_multimodel.models import decoder as decoder_model
from t2t_multimodel.models import encoder as encoder_model
from t2t_multimodel.training import configs, evaluation, loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
BATCH = 4
MAX_TRAIN = 16
MAX_DEV = 4
DECODED = 2
QUICK_PROBLEMS = "demo_translate_ende_ding,demo_image_fashion_mnist"


def tiny_paper_model(*, modality_specs):
    """The paper body (encoder, I/O mixer, decoder) at d = 16."""
    return build.build_model(
        modality_specs=modality_specs,
        hidden_dim=16,
        encoder=encoder_model.Encoder(
            16,
            num_blocks=1,
            moe_position=1,
            num_experts=2,
            top_k=1,
            intermediate_dim=16,
            dropout=0.0,
        ),
        mixer=io_mixer.IOMixer(16, num_heads=2, num_conv_blocks=1, dropout=0.0),
        decoder=decoder_model.Decoder(
            16,
            num_blocks=1,
            moe_position=None,
            num_heads=2,
            intermediate_dim=16,
            dropout=0.0,
        ),
    )


DATA = configs.DataConfig(
    batch_size=BATCH,
    batch_unit="examples",
    max_length=16,
    mixing="uniform",
    shuffle_buffer=16,
)


def run_small(out_dir, steps, problem_names=QUICK_PROBLEMS):
    return demo.run_demo(
        out_dir=str(out_dir),
        steps=steps,
        problems=problem_names,
        train_fn=functools.partial(
            loop.train,
            model_fn=tiny_paper_model,
            learning_rate_schedule=1e-3,
            seed=1,
        ),
        data=DATA,
        evaluation_config=evaluation.EvalConfig(
            steps=1, batch_size=BATCH, max_decode_length=8
        ),
        checkpoint=configs.CheckpointConfig(keep=2, save_data_position=False),
        num_evals=1,
        max_train_examples=MAX_TRAIN,
        max_dev_examples=MAX_DEV,
        num_decode_examples=DECODED,
        beam_size=1,
        max_decode_length=8,
        verbose=False,
    )


def _split_examples(data_dir, name, split):
    meta = tfrecord.read_meta(str(data_dir), name, split)
    return sum(shard["examples"] for shard in meta["shards"].values())


def check_run(out_dir, results, problem_names, steps):
    names = [p.name for p in registry.resolve(problem_names)]
    # Datagen wrote the capped splits of every problem.
    for name in names:
        assert _split_examples(out_dir / "data", name, "train") == MAX_TRAIN
        assert _split_examples(out_dir / "data", name, "dev") == MAX_DEV
    # Training: every step trained one problem on one batch of BATCH.
    assert results["step"] == steps
    per_problem = results["problems"]
    assert sorted(per_problem) == sorted(names)
    assert sum(v["train_steps"] for v in per_problem.values()) == steps
    for values in per_problem.values():
        assert values["examples_seen"] == BATCH * values["train_steps"]
        assert np.isfinite(values["loss"])
        assert values[values["headline_metric"]] is not None
    # The report on disk is what run_demo returned.
    with open(out_dir / "eval_results.json") as f:
        assert json.load(f) == json.loads(json.dumps(results))
    with open(out_dir / "training_curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # Decoded examples came from the reloaded export, DECODED per problem.
    assert sorted(results["decoded_examples"]) == sorted(names)
    for examples in results["decoded_examples"].values():
        assert len(examples) == DECODED
        assert all(
            set(e) == {"source", "reference", "output"} for e in examples
        )


def check_export_matches_eager(out_dir, problem_names):
    """The reloaded serving signatures answer as eager decoding does."""
    import tensorflow_text  # noqa: F401  (SentencePiece ops of the export)

    loaded = tf.saved_model.load(str(out_dir / "export"))
    model = restore.restore_model(str(out_dir / "model"))
    results = json.loads((out_dir / "eval_results.json").read_text())
    for problem in registry.resolve(problem_names):
        assert problem.name in loaded.signatures
        vocab = restore.find_vocabulary(problem, [str(out_dir / "data")])
        eager = decoder_lib.ProblemDecoder(
            model,
            problem,
            vocab,
            decoder_lib.DecodeConfig(beam_size=1, max_length=8),
        )
        raw = [
            demo._raw_request(problem, example)[0]
            for example, _ in zip(problem.generate("dev", None), range(2))
        ]
        key = decoder_lib.INPUT_NAMES[decoder_lib.input_kind(problem)]
        served = loaded.signatures[problem.name](**{key: tf.constant(raw)})
        expected = eager.decode(raw)
        out_key = "classes" if "classes" in served else "outputs"
        got = [s.decode("utf-8") for s in served[out_key].numpy().tolist()]
        assert got == list(expected[out_key])
        shown = [e["output"] for e in results["decoded_examples"][problem.name]]
        assert shown == got[: len(shown)]
        if out_key == "classes":
            assert problem.class_names
            assert set(got) <= set(problem.class_names)


def test_demo_small(tmp_path):
    out_dir = tmp_path / "demo"
    results = run_small(out_dir, steps=4)
    check_run(out_dir, results, QUICK_PROBLEMS, steps=4)
    check_export_matches_eager(out_dir, QUICK_PROBLEMS)

    # A rerun of a finished run regenerates, retrains and re-exports nothing.
    def mtimes(sub):
        root = out_dir / sub
        return {
            p: os.path.getmtime(os.path.join(root, p)) for p in os.listdir(root)
        }

    before = {sub: mtimes(sub) for sub in ("data", "model", "export")}
    again = run_small(out_dir, steps=4)
    assert {sub: mtimes(sub) for sub in before} == before
    assert again["problems"] == results["problems"]

    # The final model on the whole dev split: every capped dev example,
    # although the config asks for one batch of one.
    full = demo.evaluate(
        registry.resolve(QUICK_PROBLEMS),
        model_dir=str(out_dir / "model"),
        data_dir=str(out_dir / "data"),
        data=DATA,
        evaluation_config=evaluation.EvalConfig(
            steps=1, batch_size=1, max_decode_length=8
        ),
        full_dev_split=True,
    )
    assert full["step"] == 4 and full["decoding"] == evaluation.GREEDY
    for values in full["problems"].values():
        assert values["examples"] == MAX_DEV


@pytest.mark.slow
def test_demo_every_problem_and_resume(tmp_path):
    out_dir = tmp_path / "demo"
    results = run_small(out_dir, steps=8, problem_names="demo_all")
    check_run(out_dir, results, "demo_all", steps=8)
    # More steps: training resumes at step 8 and the report covers all 10.
    resumed = run_small(out_dir, steps=10, problem_names="demo_all")
    check_run(out_dir, resumed, "demo_all", steps=10)
    check_export_matches_eager(out_dir, "demo_all")


def test_cli_help():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", "t2t-mm-demo"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # absl exits with status 1 after printing the help (by design).
    assert out.returncode in (0, 1), out.stderr[-2000:]
    for flag in ("--steps", "--out", "--problems", "--gin_bindings"):
        assert flag in out.stdout + out.stderr


def test_cap_problem_stops_each_split():
    problem = registry.get_problem("demo_parse_ptb_allennlp")
    capped = demo.cap_problem(problem, max_train=3, max_dev=None)
    assert capped.name == problem.name and capped.features == problem.features
    train = list(capped.generate("train", None))
    assert train == list(problem.generate("train", None))[:3]
    assert len(list(capped.generate("dev", None))) == 10  # All 10 dev trees.


def test_report_reads_events_counts_examples_and_plots(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    # Steps 1..5: problem a (batches 4, 4, 2), problem b (3, 3).
    for step, name, examples, loss in (
        (1, "a", 4, 2.0),
        (2, "b", 3, 5.0),
        (3, "a", 4, 1.0),
        (4, "a", 2, 3.0),
        (5, "b", 3, 4.0),
    ):
        with writer.as_default(step=step):
            tf.summary.scalar(f"{name}/examples", float(examples))
            tf.summary.scalar(f"{name}/loss", loss)
    writer.close()
    train = demo_report.read_scalars(str(tmp_path / "train"))
    assert train["a/loss"] == [(1, 2.0), (3, 1.0), (4, 3.0)]
    assert demo_report.examples_seen(train, ["a", "b", "c"]) == {
        "a": {"steps": 3, "examples": 10},
        "b": {"steps": 2, "examples": 6},
        "c": {"steps": 0, "examples": 0},
    }
    # Trailing mean over 2: [2, (2 + 1) / 2, (1 + 3) / 2].
    np.testing.assert_allclose(
        demo_report._smooth(np.array([2.0, 1.0, 3.0]), 2), [2.0, 1.5, 2.0]
    )
    assert demo_report.format_metric("accuracy_top1", 0.8123) == "81.2%"
    assert demo_report.format_metric("bleu", 3.456) == "3.46"
    assert demo_report.format_metric("wer", 93.61) == "93.6%"
    eval_ = {"a/loss": [(5, 1.5)], "a/accuracy_top1": [(5, 0.5)]}
    path = demo_report.plot_curves(
        str(tmp_path / "curves.png"),
        train=train,
        eval_=eval_,
        problem_metrics={"a": "accuracy_top1", "b": "bleu"},
    )
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    table = demo_report.results_table(
        [
            {
                "problem": "a",
                "metric": "accuracy_top1",
                "value": 0.5,
                "dev_examples": 8,
                "examples_seen": 10,
                "steps": 3,
            }
        ]
    )
    assert table.splitlines()[2].split() == [
        "a",
        "top-1",
        "accuracy",
        "50.0%",
        "8",
        "10",
        "3",
    ]


def test_progress_bar_follows_on_step():
    import io

    import tqdm

    with tqdm.tqdm(total=10, file=io.StringIO()) as bar:
        demo._show_progress(
            bar, 3, {"loss": 1.5, "a/loss": 1.5, "a/task_loss": 1.4}
        )
        assert bar.n == 3
        demo._show_progress(bar, 4, {"loss": 2.0, "a/loss": 1.2, "b/loss": 0.8})
        assert bar.n == 4
        assert "a, b loss 2.000" in str(bar.postfix)
