"""T2T's flags -> gin: every mapped name, the errors, the programs' use.

The 2-step training run from a T2T-style command line is in
tests/integration/test_table1_mixture.py; here the translation is checked
name by name, and the trainer's and decoder's gin is parsed and queried
without training.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import gin
import pytest

import problems  # noqa: F401  (registers every problem and mixture)
from programs import gin_setup, t2t_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

# Every mapped T2T hparam, a value, and exactly the bindings it gives.
TRAIN_CASES = [
    ("hidden_size", "256", ["HIDDEN_DIM = 256"]),
    ("batch_size", "2048", ["BATCH_SIZE = 2048", 'BATCH_UNIT = "tokens"']),
    ("max_length", "128", ["MAX_LENGTH = 128"]),
    ("max_length", "0", ["MAX_LENGTH = None"]),
    (
        "learning_rate",
        "0.1",
        [
            "LEARNING_RATE = 1.0",
            "schedules.Exp500kSchedule.learning_rate = 0.1",
        ],
    ),
    (
        "learning_rate_warmup_steps",
        "3000",
        [
            "WARMUP_STEPS = 3000",
            "schedules.Exp500kSchedule.warmup_steps = 3000",
        ],
    ),
    (
        "learning_rate_decay_scheme",
        "exp500k",
        ["loop.train.learning_rate_schedule = @schedules.Exp500kSchedule()"],
    ),
    (
        "learning_rate_schedule",
        "noam",
        ["loop.train.learning_rate_schedule = @schedules.NoamSchedule()"],
    ),
    ("label_smoothing", "0.2", ["LABEL_SMOOTHING = 0.2"]),
    ("dropout", "0.3", ["CONV_DROPOUT = 0.3"]),
    ("attention_dropout", "0.05", ["ATTENTION_DROPOUT = 0.05"]),
    ("num_heads", "4", ["NUM_HEADS = 4"]),
    ("moe_num_experts", "30", ["NUM_EXPERTS = 30"]),
    ("moe_n1", "120", ["NUM_EXPERTS = 120"]),
    ("moe_k", "2", ["TOP_K = 2"]),
    ("moe_loss_coef", "0.01", ["MOE_LOSS_COEF = 0.01"]),
    ("moe_hidden_sizes", "2048", ["EXPERT_DIM = 2048"]),
    ("optimizer_adam_beta1", "0.9", ["configs.OptimizerConfig.beta_1 = 0.9"]),
    ("optimizer_adam_beta2", "0.98", ["configs.OptimizerConfig.beta_2 = 0.98"]),
    ("beta1", "0.85", ["configs.OptimizerConfig.beta_1 = 0.85"]),
    ("beta2", "0.997", ["configs.OptimizerConfig.beta_2 = 0.997"]),
    (
        "optimizer_adam_epsilon",
        "1e-09",
        ["configs.OptimizerConfig.epsilon = 1e-09"],
    ),
    ("clip_grad_norm", "2.0", ["configs.OptimizerConfig.clip_norm = 2.0"]),
    ("clip_grad_norm", "0", ["configs.OptimizerConfig.clip_norm = None"]),
    ("weight_decay", "3.0", ["configs.OptimizerConfig.weight_decay = 3.0"]),
    ("problem_choice", "distributed", ["MIXING = 'per_worker'"]),
    ("problem_choice", "uniform", ["MIXING = 'uniform'"]),
]
DECODE_CASES = [
    ("beam_size", "4", ["BEAM_SIZE = 4"]),
    ("alpha", "0.6", ["ALPHA = 0.6"]),
    ("batch_size", "16", ["BATCH_SIZE = 16"]),
    ("max_input_size", "100", ["MAX_INPUT_LENGTH = 100"]),
    ("max_length", "300", ["MAX_LENGTH = 300"]),
    ("return_beams", "true", ["RETURN_BEAMS = True"]),
]


class TestHparams:
    @pytest.mark.parametrize("name,value,expected", TRAIN_CASES)
    def test_each_train_hparam(self, name, value, expected):
        assert t2t_flags.hparams_bindings(f"{name}={value}") == expected

    def test_every_train_hparam_is_tested(self):
        assert {n for n, _, _ in TRAIN_CASES} == set(t2t_flags.TRAIN_HPARAMS)

    @pytest.mark.parametrize("name,value,expected", DECODE_CASES)
    def test_each_decode_hparam(self, name, value, expected):
        assert t2t_flags.decode_hparams_bindings(f"{name}={value}") == expected
        assert {n for n, _, _ in DECODE_CASES} == set(t2t_flags.DECODE_HPARAMS)

    def test_several_in_order_with_spaces(self):
        bindings = t2t_flags.hparams_bindings(
            " hidden_size=64 , moe_k=1,, label_smoothing=0.0"
        )
        assert bindings == [
            "HIDDEN_DIM = 64",
            "TOP_K = 1",
            "LABEL_SMOOTHING = 0.0",
        ]
        assert t2t_flags.hparams_bindings(None) == []
        assert t2t_flags.hparams_bindings("") == []

    def test_values_parse_as_t2t_scalars(self):
        parse = t2t_flags.parse_value
        assert parse("3") == 3 and isinstance(parse("3"), int)
        assert parse("1e-6") == 1e-6
        assert parse("True") is True and parse("false") is False
        assert parse("'noam'") == "noam"

    def test_learning_rate_times_ten_has_no_float_noise(self):
        (noam, _) = t2t_flags.hparams_bindings("learning_rate=0.07")
        assert noam == "LEARNING_RATE = 0.7"

    @pytest.mark.parametrize(
        "text,expected",
        [
            (
                "num_hidden_layers=6",
                [
                    "ENCODER_BLOCKS, MIXER_CONV_BLOCKS and DECODER_BLOCKS",
                    "nearest gin names: ",
                ],
            ),
            ("hiden_size=3", ["mapped T2T names near it: hidden_size"]),
            ("moe_num_expert=3", ["nearest gin names: NUM_EXPERTS"]),
            ("filter_size=2048", ["EXPERT_DIM"]),
        ],
    )
    def test_unknown_name_names_the_nearest(self, text, expected):
        with pytest.raises(t2t_flags.T2TFlagError) as error:
            t2t_flags.hparams_bindings(text)
        message = str(error.value)
        name = text.split("=")[0]
        assert f"--hparams name {name!r} has no equivalent here" in message
        for part in expected:
            assert part in message
        assert "--gin_bindings" in message

    def test_decode_extra_length_says_why(self):
        with pytest.raises(t2t_flags.T2TFlagError, match="absolute MAX_LENG"):
            t2t_flags.decode_hparams_bindings("beam_size=4,extra_length=50")

    @pytest.mark.parametrize(
        "text,match",
        [
            ("hidden_size", "expected name=value"),
            ("hidden_size=big", "expected a number"),
            ("moe_k=1.5", "expected an integer"),
            ("learning_rate_decay_scheme=cosine", "noam, exp500k"),
            ("problem_choice=adaptive", "adaptive"),
        ],
    )
    def test_bad_values(self, text, match):
        with pytest.raises(t2t_flags.T2TFlagError, match=match):
            t2t_flags.hparams_bindings(text)

    def test_gin_macros_are_the_shipped_ones(self):
        root = gin_setup.configs_dir()
        names = set()
        for path in (
            "models/multimodel_base.gin",
            "runs/train.gin",
            "runs/decode.gin",
        ):
            with open(os.path.join(root, path)) as f:
                names |= set(
                    re.findall(r"^([A-Z][A-Z0-9_]*) =", f.read(), re.M)
                )
        assert set(t2t_flags.GIN_MACROS) == names


class TestOtherFlags:
    def test_hparams_sets(self):
        assert t2t_flags.hparams_set_file("multimodel_base") == (
            "models/multimodel_base.gin"
        )
        assert t2t_flags.hparams_set_file("multimodel_tiny") == (
            "models/multimodel_tiny.gin"
        )
        assert t2t_flags.hparams_set_file("multimodel1p8") == (
            "models/multimodel_paper.gin"
        )
        root = gin_setup.configs_dir()
        for path in t2t_flags.HPARAMS_SETS.values():
            assert os.path.isfile(os.path.join(root, path)), path
        with pytest.raises(t2t_flags.T2TFlagError, match="multimodel_base"):
            t2t_flags.hparams_set_file("multimodel_bas")

    def test_output_dir_is_model_dir(self):
        assert t2t_flags.model_dir(None, "/o") == "/o"
        assert t2t_flags.model_dir("/m", None) == "/m"
        assert t2t_flags.model_dir("/m", "/m") == "/m"
        with pytest.raises(t2t_flags.T2TFlagError, match="give one"):
            t2t_flags.model_dir("/m", "/o")

    def test_model(self):
        t2t_flags.check_model(None)
        t2t_flags.check_model("multi_model")
        with pytest.raises(t2t_flags.T2TFlagError, match="MultiModel only"):
            t2t_flags.check_model("transformer")

    def test_trainer_gin(self):
        t2t = t2t_flags.trainer_gin(
            gin_files=[],
            problem=["translate_ende_wmt8k", "translate_deen_wmt8k"],
            hparams_set="multimodel_tiny",
            hparams="hidden_size=64",
            train_steps=100,
            eval_steps=5,
            model="multi_model",
        )
        assert t2t.files == ("runs/train.gin", "models/multimodel_tiny.gin")
        assert t2t.bindings == (
            "HIDDEN_DIM = 64",
            "evaluation.EvalConfig.steps = 5",
        )
        assert t2t.program_bindings == (
            ("PROBLEMS", "translate_ende_wmt8k,translate_deen_wmt8k"),
            ("TRAIN_STEPS", 100),
        )
        with_experiment = t2t_flags.trainer_gin(
            gin_files=["experiments/x.gin"], hparams_set="multimodel_base"
        )
        assert with_experiment.files == ("models/multimodel_base.gin",)
        with pytest.raises(t2t_flags.T2TFlagError, match="--hparams_set"):
            t2t_flags.trainer_gin(gin_files=[], problem=["p"])

    def test_table_rows(self):
        rows = dict(
            (name, (targets, note))
            for name, targets, note in t2t_flags.table_rows()
        )
        assert rows["moe_k"] == ("TOP_K", "")
        assert "x 10" in rows["learning_rate"][1]


def test_trainer_t2t_command_line_resolves():
    """What the trainer parses from a T2T command line, without training."""
    from t2t_multimodel.training import loop

    t2t = t2t_flags.trainer_gin(
        gin_files=[],
        problem=["translate_ende_wmt8k"],
        hparams_set="multimodel_base",
        hparams=(
            "hidden_size=256,batch_size=1024,learning_rate=0.05,"
            "learning_rate_warmup_steps=3000,learning_rate_decay_scheme="
            "exp500k,optimizer_adam_beta1=0.9,clip_grad_norm=0,"
            "problem_choice=distributed"
        ),
        train_steps=1000,
        eval_steps=7,
    )
    gin.clear_config()
    try:
        gin.configurable(loop.train)
        gin_setup.parse(
            list(t2t.files),
            [*t2t.bindings, "SEED = 5"],
            program_bindings=gin_setup.flag_bindings(
                [
                    ("DATA_DIR", "/d"),
                    ("MODEL_DIR", t2t_flags.model_dir(None, "/out")),
                    *t2t.program_bindings,
                ]
            ),
        )
        query = gin.query_parameter
        assert query("MODEL_DIR/macro.value") == "/out"
        assert query("PROBLEMS/macro.value") == "translate_ende_wmt8k"
        assert query("TRAIN_STEPS/macro.value") == 1000
        assert query("HIDDEN_DIM/macro.value") == 256
        assert query("NUM_EXPERTS/macro.value") == 60  # multimodel_base's.
        assert query("BATCH_SIZE/macro.value") == 1024
        assert query("MIXING/macro.value") == "per_worker"
        assert query("schedules.Exp500kSchedule.learning_rate") == 0.05
        assert query("schedules.Exp500kSchedule.warmup_steps") == 3000
        assert "Exp500k" in str(query("loop.train.learning_rate_schedule"))
        assert query("configs.OptimizerConfig.beta_1") == 0.9
        assert query("configs.OptimizerConfig.clip_norm") is None
        assert query("evaluation.EvalConfig.steps") == 7
        assert query("SEED/macro.value") == 5
    finally:
        gin.clear_config()


def _run(program: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", program), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_trainer_bad_hparam_is_one_paragraph(tmp_path):
    done = _run(
        "t2t-mm-trainer",
        "--problem=translate_ende_wmt8k",
        "--hparams_set=multimodel_tiny",
        "--hparams=num_hidden_layers=2",
        f"--data_dir={tmp_path}",
        f"--output_dir={tmp_path / 'run'}",
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "t2t-mm-trainer: error: --hparams name 'num_hidden_layers'" in (
        done.stderr
    )
    assert not (tmp_path / "run").exists()


def test_decoder_t2t_flags(tmp_path):
    done = _run(
        "t2t-mm-decoder",
        f"--output_dir={tmp_path / 'none'}",
        "--problem=translate_ende_wmt8k",
        "--model=multi_model",
        "--hparams_set=multimodel_base",
        "--decode_hparams=beam_size=2,alpha=0.6,extra_length=10",
    )
    assert done.returncode == 1
    assert "extra_length" in done.stderr and "Traceback" not in done.stderr
    done = _run(
        "t2t-mm-decoder",
        f"--output_dir={tmp_path / 'none'}",
        "--problem=translate_ende_wmt8k",
        "--decode_hparams=beam_size=2,alpha=0.6",
    )
    # Translated and parsed: it fails only at the model_dir, which is empty.
    assert done.returncode == 1
    assert str(tmp_path / "none") in done.stderr
    assert "Traceback" not in done.stderr
