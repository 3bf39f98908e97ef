"""Tests of t2t-mm-decoder and t2t-mm-exporter on a fake training run.

The run directory holds what t2t-mm-trainer writes (model_config.json, a
checkpoint, problems.json) plus the shared vocabulary, for a tiny random
model of two registered demo problems (text -> text and image -> class).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import sacrebleu
import tensorflow as tf

import problems
from problems import text_features
from programs import decoder as decode_lib
from t2t_multimodel.data import tfrecord
from t2t_multimodel.decoding import decoder, nbest
from t2t_multimodel.models import build, encoder, io_mixer
from t2t_multimodel.models import decoder as decoder_layer
from tests.decoding import test_nbest, tiny

_BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin")
TEXT = "demo_translate_ende_ding"
IMAGE = "demo_image_fashion_mnist"


def _run(program: str, *args: str, stdin: str | bytes | None = None):
    done = subprocess.run(
        [sys.executable, os.path.join(_BIN, program), *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    done.stdout = done.stdout.decode("utf-8", "replace")
    done.stderr = done.stderr.decode("utf-8", "replace")
    return done


def _user_error(done, *needles: str) -> None:
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, last


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A fake training run of TEXT and IMAGE (d = 16, random weights)."""
    model_dir = str(tmp_path_factory.mktemp("run"))
    specs = [
        problems.get_problem(n).features[k].modality
        for n in (TEXT, IMAGE)
        for k in ("inputs", "targets")
    ]
    keras.utils.set_random_seed(0)
    moe = {"num_experts": 4, "top_k": 2, "intermediate_dim": 16}
    model = build.build_model(
        modality_specs=specs,
        hidden_dim=16,
        encoder=encoder.Encoder(16, num_blocks=1, moe_position=1, **moe),
        mixer=io_mixer.IOMixer(16, num_heads=2, num_conv_blocks=1),
        decoder=decoder_layer.Decoder(
            16, num_blocks=1, moe_position=1, num_heads=2, **moe
        ),
        modality_kwargs={
            "image": {"entry_filters": (4, 8), "res_filters": (8,)}
        },
    )
    with open(os.path.join(model_dir, "model_config.json"), "w") as f:
        json.dump(keras.saving.serialize_keras_object(model), f)
    with open(os.path.join(model_dir, "problems.json"), "w") as f:
        json.dump({"problems": [TEXT, IMAGE]}, f)
    tf.train.Checkpoint(model=model).save(os.path.join(model_dir, "model.ckpt"))
    vocab = tiny.build_vocabulary(model_dir)
    os.replace(
        os.path.join(model_dir, tiny.VOCAB_FILE),
        os.path.join(model_dir, text_features.SHARED_VOCAB_FILE),
    )
    return model_dir, vocab


def test_help():
    for program in ("t2t-mm-decoder", "t2t-mm-exporter"):
        done = _run(program, "--help")
        # absl exits with status 1 after printing the help (by design).
        assert done.returncode in (0, 1), done.stderr
        assert "--model_dir" in done.stdout


@pytest.mark.slow  # Three fresh processes importing TensorFlow.
def test_user_errors_are_one_paragraph(run_dir, tmp_path):
    model_dir, _ = run_dir
    _user_error(
        _run("t2t-mm-decoder", f"--model_dir={tmp_path}", f"--problem={TEXT}"),
        "t2t-mm-decoder: error:",
        "model_config.json not found",
    )
    _user_error(
        _run("t2t-mm-decoder", f"--model_dir={model_dir}", "--problem=demo_tx"),
        "unknown problem 'demo_tx'",
    )
    _user_error(
        _run("t2t-mm-exporter", f"--model_dir={model_dir}", "--export_dir=/"),
        "t2t-mm-exporter: error:",
        "exists",
    )


@pytest.mark.slow
def test_decode_file_and_stdin(run_dir, tmp_path):
    model_dir, vocab = run_dir
    source = tmp_path / "in.txt"
    source.write_text("the cat sat\n\nwhere is the house\n")
    target = tmp_path / "out.txt"
    args = [f"--model_dir={model_dir}", f"--problem={TEXT}"]
    args += ["--beam_size=2", "--max_length=4"]
    done = _run(
        "t2t-mm-decoder",
        *args,
        f"--decode_from_file={source}",
        f"--decode_to_file={target}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    model, (problem,), vocab = decode_lib.load(model_dir, [TEXT], None)
    config = decoder.DecodeConfig(beam_size=2, max_length=4)
    expected = decoder.ProblemDecoder(model, problem, vocab, config).decode(
        ["the cat sat", "where is the house"]
    )["outputs"]
    # One output line per input line: the blank line stays blank.
    assert target.read_text().splitlines() == [expected[0], "", expected[1]]
    done = _run("t2t-mm-decoder", *args, stdin="the cat sat\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [expected[0]]


@pytest.mark.slow
def test_classify_image_paths_and_missing_file(run_dir, tmp_path):
    model_dir, _ = run_dir
    image = tmp_path / "shirt.png"
    image.write_bytes(tiny.png(3, (28, 28), gray=True))
    args = [f"--model_dir={model_dir}", f"--problem={IMAGE}"]
    done = _run("t2t-mm-decoder", *args, stdin=f"{image}\n{image}\n")
    assert done.returncode == 0, done.stderr[-2000:]
    answers = done.stdout.splitlines()
    assert len(answers) == 2 and answers[0] == answers[1]
    assert answers[0] in problems.get_problem(IMAGE).class_names
    # A bad request is reported and the next line answered; exit status 1.
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    lines = f"{tmp_path}/none.png\n{image}\n{bad}\n{image}\n"
    done = _run("t2t-mm-decoder", *args, stdin=lines)
    # Failed lines get empty answers: output line N answers input line N.
    assert done.stdout.splitlines() == ["", answers[0], "", answers[0]]
    assert "line 1: cannot read image file" in done.stderr
    assert "line 3: Bad request: image_bytes at batch positions" in done.stderr
    _user_error(done, "2 of 4 lines failed (line 1, 3)", "none.png")


@pytest.mark.slow
def test_exporter_writes_every_trained_problem(run_dir, tmp_path):
    model_dir, _ = run_dir
    export_dir = str(tmp_path / "export")
    done = _run(
        "t2t-mm-exporter",
        f"--model_dir={model_dir}",
        f"--export_dir={export_dir}",
        "--gin_bindings=BEAM_SIZE = 1",
        "--gin_bindings=MAX_LENGTH = 3",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import tensorflow_text  # noqa: F401  (the SentencePiece ops)

    loaded = tf.saved_model.load(export_dir)
    assert {TEXT, IMAGE} <= set(loaded.signatures)
    out = loaded.signatures[IMAGE](image_bytes=tf.constant([tiny.png(0)]))
    assert out["scores"].shape == (1, 5)
    out = loaded.signatures[TEXT](inputs=tf.constant(["the cat"]))
    assert out["outputs"].shape == (1,)


def _expected(model_dir, texts, **config):
    """What ProblemDecoder answers in process (the CLI must agree)."""
    model, (problem,), vocab = decode_lib.load(model_dir, [TEXT], None)
    d = decoder.ProblemDecoder(
        model, problem, vocab, decoder.DecodeConfig(**config)
    )
    return nbest.NBestDecoder(d).decode(texts)


@pytest.mark.slow
def test_bad_lines_get_empty_answers_and_exit_1(run_dir, tmp_path):
    model_dir, _ = run_dir
    source = tmp_path / "in.txt"
    source.write_bytes(b"the cat sat\nder \xff hund\n\nwhere is the house\n")
    target = tmp_path / "out.txt"
    args = [f"--model_dir={model_dir}", f"--problem={TEXT}"]
    args += ["--beam_size=2", "--max_length=4"]
    done = _run(
        "t2t-mm-decoder",
        *args,
        f"--decode_from_file={source}",
        f"--decode_to_file={target}",
    )
    _user_error(
        done,
        "t2t-mm-decoder: error: 1 of 4 lines failed (line 2)",
        "line 2: not valid UTF-8 (byte 0xff at byte 5 of the line)",
    )
    good = _expected(
        model_dir,
        ["the cat sat", "where is the house"],
        beam_size=2,
        max_length=4,
    )
    assert target.read_text().splitlines() == [
        good[0][0].text,
        "",
        "",
        good[1][0].text,
    ]
    # On stdin too, the lines after the bad one are answered.
    done = _run("t2t-mm-decoder", *args, stdin=b"\xfe\xff\nthe cat sat\n\n")
    assert done.stdout.splitlines() == ["", good[0][0].text, ""]
    _user_error(done, "1 of 3 lines failed (line 1)", "not valid UTF-8")


@pytest.mark.slow
def test_output_equal_to_input_is_refused_before_loading(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("the cat sat\n")
    for target in (source, tmp_path / "sub" / ".." / "in.txt"):
        os.makedirs(tmp_path / "sub", exist_ok=True)
        done = _run(
            "t2t-mm-decoder",
            # No model there: the check comes before loading one.
            f"--model_dir={tmp_path / 'no_model'}",
            f"--problem={TEXT}",
            f"--decode_from_file={source}",
            f"--decode_to_file={target}",
        )
        _user_error(done, "is the input file", "would overwrite it")
    assert source.read_text() == "the cat sat\n"


@pytest.mark.slow
def test_return_beams_for_a_file(run_dir, tmp_path):
    model_dir, _ = run_dir
    source = tmp_path / "in.txt"
    source.write_text("the cat sat\n\nwhere\n")
    target = tmp_path / "out.txt"
    done = _run(
        "t2t-mm-decoder",
        f"--model_dir={model_dir}",
        f"--problem={TEXT}",
        f"--decode_from_file={source}",
        f"--decode_to_file={target}",
        "--decode_hparams=beam_size=3,max_length=5,return_beams=true",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _expected(
        model_dir, ["the cat sat", "where"], beam_size=3, max_length=5
    )
    rows = [
        r.split("\t")
        for r in (tmp_path / "out.txt.beams").read_text().splitlines()
    ]
    assert rows[0] == ["input_index", "beam_rank", "score", "finished", "text"]
    assert [r[:2] for r in rows[1:]] == [
        [str(i), str(k)] for i in (0, 2) for k in range(3)
    ]
    for i, hyps in zip((0, 2), expected):
        mine = [r for r in rows[1:] if r[0] == str(i)]
        scores = [float(r[2]) for r in mine]
        test_nbest.assert_search_order([r[3] == "1" for r in mine], scores)
        assert [r[3] == "1" for r in mine] == [h.finished for h in hyps]
        assert [r[4] for r in mine] == [h.text for h in hyps]
        np.testing.assert_allclose(scores, [h.score for h in hyps], atol=1e-5)
    assert target.read_text().splitlines() == [
        expected[0][0].text,
        "",
        expected[1][0].text,
    ]


SPLIT_TEXTS = [
    ("the cat sat on the mat", "der hund lief schnell"),
    ("where is the house", "where is the house"),
    ("a dog ran in the park", "le chat est content"),
    ("the cat and the dog", "the cat and the dog"),
    ("le chat est content", "the cat sat"),
]


@pytest.mark.slow
def test_split_is_decoded_and_scored(run_dir, tmp_path):
    """--split=test: the files agree with sacrebleu and in-process decoding."""
    model_dir, vocab = run_dir
    data_dir = tmp_path / "data"
    problem = problems.get_problem(TEXT)
    tfrecord.write_split(
        ({"inputs": i, "targets": t} for i, t in SPLIT_TEXTS),
        problem.features,
        {text_features.SHARED_VOCAB_FILE: vocab},
        str(data_dir),
        TEXT,
        "test",
        1,
    )
    out = tmp_path / "scores" / "test.tsv"
    done = _run(
        "t2t-mm-decoder",
        f"--model_dir={model_dir}",
        f"--problem={TEXT}",
        "--split=test",
        f"--data_dir={data_dir}",
        f"--decode_to_file={out}",
        f"--checkpoint_path={model_dir}/model.ckpt-1",
        "--beam_size=2",
        "--max_length=5",
        "--return_beams",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(
        (tmp_path / "scores" / "test.tsv.metrics.json").read_text()
    )
    hyps = (tmp_path / "scores" / "test.tsv.hyp").read_text().splitlines()
    refs = (tmp_path / "scores" / "test.tsv.ref").read_text().splitlines()
    sources = [i for i, _ in SPLIT_TEXTS]
    assert refs == [t for _, t in SPLIT_TEXTS]
    expected = _expected(model_dir, sources, beam_size=2, max_length=5)
    assert hyps == [h[0].text for h in expected]
    bleu = sacrebleu.metrics.BLEU()
    score = bleu.corpus_score(hyps, [refs])
    assert report["metrics"]["bleu"] == pytest.approx(score.score)
    assert report["metrics"]["bleu_signature"] == str(bleu.get_signature())
    assert report["baselines"]["bleu"]["baseline"] == "copy_input"
    assert report["baselines"]["bleu"]["value"] == pytest.approx(
        sacrebleu.corpus_bleu(sources, [refs]).score
    )
    assert report["decoding"] == {
        "search": "beam",
        "beam_size": 2,
        "alpha": 0.6,
        "max_length": 5,
        "batch_size": 8,
    }
    assert report["checkpoint"] == f"{model_dir}/model.ckpt-1"
    assert report["step"] == 1 and report["examples"] == 5
    rows = [r.split("\t") for r in out.read_text().splitlines()]
    assert rows[0] == ["index", "input", "reference", "hypothesis"]
    assert rows[1:] == [
        [str(i), s, r, h]
        for i, (s, r, h) in enumerate(zip(sources, refs, hyps))
    ]
    beams = (tmp_path / "scores" / "test.tsv.beams").read_text().splitlines()
    assert len(beams) == 1 + 2 * 5
    assert f"{TEXT} test: 5 examples, beam search, beam 2" in done.stdout
    assert "BLEU signature: nrefs:1" in done.stdout
    # A checkpoint that is not there: one paragraph naming those that are.
    done = _run(
        "t2t-mm-decoder",
        f"--model_dir={model_dir}",
        f"--problem={TEXT}",
        "--split=test",
        f"--data_dir={data_dir}",
        f"--checkpoint_path={model_dir}/model.ckpt-9",
    )
    _user_error(done, "no such checkpoint", "model.ckpt-1")
