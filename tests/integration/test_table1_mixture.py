"""Table 1's mixture end to end on tiny files in the corpora's real formats.

The eight problems of `multimodel_paper_8` get their raw files from the
per-problem test fixtures of tests/problems/paper (WMT text and SGML, PTB
`.mrg`, ILSVRC folders, COCO JSON + zip, LibriSpeech FLAC + trans.txt);
datagen writes them with one shared vocabulary, and `t2t-mm-trainer` trains
2 steps of a tiny model from the shipped Table 1 experiment file, given a
T2T-style command line (--problem, --hparams_set, --hparams, --output_dir,
--train_steps, --eval_steps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import gin
import pytest

import problems  # noqa: F401  (registers every problem and mixture)
from problems import registry
from programs import datagen, gin_setup
from tests.problems.paper import (
    test_caption_mscoco,
    test_image_imagenet,
    test_parse_ptb,
    test_speech_librispeech,
    test_translate_wmt,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TRAINER = os.path.join(ROOT, "bin", "t2t-mm-trainer")
EXPERIMENTS = [
    "experiments/table1/multimodel_paper.gin",
    "experiments/table1/multimodel_base.gin",
    "experiments/table1/multimodel_paper_multi_worker.gin",
    "experiments/table1/multimodel_base_multi_worker.gin",
]
PAPER_8 = [
    "caption_mscoco8k",
    "translate_ende_wmt8k",
    "translate_deen_wmt8k",
    "translate_enfr_wmt8k",
    "translate_fren_wmt8k",
    "parse_ptb_wsj8k",
    "image_imagenet",
    "speech_librispeech8k",
]


def test_the_mixture_is_the_papers_eight():
    mixture = registry.get_mixture("multimodel_paper_8")
    assert mixture.problem_names == PAPER_8
    assert {rate for _, rate in mixture.problem_rates} == {1.0}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_files_parse(name):
    from t2t_multimodel.training import loop

    gin.clear_config()
    try:
        gin.configurable(loop.train)
        gin_setup.parse(
            [name],
            program_bindings=['DATA_DIR = "/d"', 'MODEL_DIR = "/m"'],
        )
        query = gin.query_parameter
        assert query("PROBLEMS/macro.value") == "multimodel_paper_8"
        assert query("TRAIN_STEPS/macro.value") == 250000
        paper = "paper" in name
        assert query("HIDDEN_DIM/macro.value") == (1536 if paper else 512)
        assert query("BATCH_SIZE/macro.value") == (1024 if paper else 2048)
        assert query("BATCH_UNIT/macro.value") == "tokens"
        schedule = str(query("loop.train.learning_rate_schedule"))
        assert ("Exp500k" if paper else "Noam") in schedule
        if paper:
            assert query("schedules.Exp500kSchedule.learning_rate") == 0.05
            assert query("schedules.Exp500kSchedule.warmup_steps") == 3000
        else:
            assert query("LEARNING_RATE/macro.value") == 1.0  # T2T's 0.1.
            assert query("WARMUP_STEPS/macro.value") == 4000
        assert query("configs.OptimizerConfig.beta_1") == 0.85
        assert query("configs.OptimizerConfig.beta_2") == 0.997
        assert query("configs.OptimizerConfig.epsilon") == 1e-6
        assert query("configs.OptimizerConfig.clip_norm") == 2.0
        multi = "multi_worker" in name
        assert query("STRATEGY/macro.value") == (
            "multi_worker" if multi else "mirrored"
        )
        assert query("MIXING/macro.value") == (
            "per_worker" if multi else "uniform"
        )
        sizes = query("configs.DataConfig.batch_sizes")
        assert set(sizes) == {
            "image_imagenet",
            "caption_mscoco8k",
            "speech_librispeech8k",
        }
    finally:
        gin.clear_config()


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    test_translate_wmt._add_to_tar(tar, name, text.encode())


def write_raw_files(raw) -> None:
    """Tiny raw files of all eight problems, in their real formats."""
    test_translate_wmt._write_ende(raw)
    # commoncrawl holds both pairs; the fixture's has EN-DE only.
    with tarfile.open(raw / "training-parallel-commoncrawl.tgz", "w:gz") as t:
        _add(t, "commoncrawl.de-en.en", "A cat.\nA dog.\n")
        _add(t, "commoncrawl.de-en.de", "Eine Katze.\nEin Hund.\n")
        _add(t, "commoncrawl.fr-en.en", "A cat.\nA dog.\n")
        _add(t, "commoncrawl.fr-en.fr", "Un chat.\nUn chien.\n")
    with tarfile.open(raw / "training-parallel-un.tgz", "w:gz") as tar:
        _add(tar, "un/undoc.2000.fr-en.en", "Peace.\nThe cat.\n")
        _add(tar, "un/undoc.2000.fr-en.fr", "Paix.\nLe chat.\n")
    (raw / "dev" / "newstest2013.en").write_text("Yes.\nNo.\n")
    (raw / "dev" / "newstest2013.fr").write_text("Oui.\nNon.\n")
    test_parse_ptb._write_treebank(raw)
    test_image_imagenet._write_train(raw)
    test_image_imagenet._write_val(raw)
    (raw / "imagenet_2012_validation_synset_labels.txt").write_text(
        "".join(w + "\n" for w in test_image_imagenet.VAL_WNIDS)
    )
    test_caption_mscoco._write_coco(raw)
    test_speech_librispeech._write_librispeech(raw)


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    write_raw_files(raw)
    data = tmp_path_factory.mktemp("data")
    results = datagen.generate_data(
        problem_names="multimodel_paper_8",
        data_dir=str(data),
        tmp_dir=str(raw),
        num_shards=1,
        vocab_size=96,
        verbose=False,
    )
    return data, results


def test_datagen_writes_every_problem_and_test_split(paper_data):
    _, results = paper_data
    assert list(results) == PAPER_8
    for name, splits in results.items():
        assert splits["train"].num_examples > 0, name
        assert splits["dev"].num_examples > 0, name
    # PTB section 23 is in the fixture; COCO's test falls back to val2014.
    assert results["parse_ptb_wsj8k"]["test"].num_examples == 1
    assert results["caption_mscoco8k"]["test"].num_examples == 1
    assert "test" not in results["image_imagenet"]  # No public labels.
    assert "test" not in results["speech_librispeech8k"]  # Not in the files.


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def test_trainer_t2t_command_line_two_steps(paper_data, tmp_path):
    data, _ = paper_data
    model_dir = tmp_path / "run"
    hparams = ",".join(
        [
            "hidden_size=16",
            "moe_num_experts=2",
            "moe_k=1",
            "moe_hidden_sizes=16",
            "num_heads=2",
            "batch_size=64",
        ]
    )
    out = subprocess.run(
        [
            sys.executable,
            TRAINER,
            "--gin_file=experiments/table1/multimodel_base.gin",
            "--model=multi_model",
            "--problem=multimodel_paper_8",
            "--hparams_set=multimodel_tiny",
            f"--hparams={hparams}",
            f"--data_dir={data}",
            f"--output_dir={model_dir}",
            "--train_steps=2",
            "--eval_steps=1",
            "--strategy=default",
            # Small images and clips for a CPU test; no decoding at eval.
            "--gin_bindings=configs.DataConfig.batch_sizes = "
            "{'image_imagenet': 1, 'caption_mscoco8k': 8, "
            "'speech_librispeech8k': 256}",
            "--gin_bindings=evaluation.EvalConfig.decode = False",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    with open(model_dir / "problems.json") as f:
        assert json.load(f)["problems"] == PAPER_8
    operative = (model_dir / "operative_config.gin").read_text()
    assert "HIDDEN_DIM = 16" in operative
    assert "TRAIN_STEPS = 2" in operative
    with open(model_dir / "eval_results.json") as f:
        results = json.load(f)
    assert set(PAPER_8) <= set(json.dumps(results).split('"'))
