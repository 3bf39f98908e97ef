"""T2T's command-line flags, translated to this project's gin (pure).

Users of Tensor2Tensor type `t2t-trainer --problem=P --hparams_set=S
--hparams='a=1,b=2' --output_dir=M --train_steps=N` and `t2t-decoder
--decode_hparams='beam_size=4,alpha=0.6'` (multimodel_facts.md section 8).
`t2t-mm-trainer` and `t2t-mm-decoder` accept those flags and hand their
values here, where each becomes gin: `--hparams_set` a model gin file,
every `--hparams` name one or more bindings of the shipped macros or
configurables, the rest program bindings. Only names with a real
equivalent are mapped (`TRAIN_HPARAMS`, `DECODE_HPARAMS`); any other name
is an error that says why (`NO_EQUIVALENT`) and names the nearest T2T and
gin names. Nothing here reads flags or parses gin: the programs do.

Values are parsed as T2T's `HParams.parse` did for scalars: int, then
float, then `true`/`false`, else the text itself.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from t2t_multimodel import errors

Value = int | float | bool | str


class T2TFlagError(errors.UserError, ValueError):
    """A T2T flag or hparam this project cannot translate; says why."""


# T2T's hparams sets -> shipped model gin files. T2T's names keep their
# meaning of size (multimodel_base d = 512, multimodel_tiny d = 128,
# multimodel1p8 the paper's d = 1536) on the paper architecture; the last
# T2T release's own architecture is multimodel_t2t_v19(_tiny).
HPARAMS_SETS: Mapping[str, str] = {
    "multimodel_base": "models/multimodel_base.gin",
    "multimodel_tiny": "models/multimodel_tiny.gin",
    "multimodel1p8": "models/multimodel_paper.gin",
    "multimodel_1p8": "models/multimodel_paper.gin",
    "multimodel_paper": "models/multimodel_paper.gin",
    "multimodel_t2t_v19": "models/multimodel_t2t_v19.gin",
    "multimodel_t2t_v19_tiny": "models/multimodel_t2t_v19_tiny.gin",
}
T2T_MODEL_NAMES = ("multi_model", "multimodel")

# Every macro the shipped model, train and decode gin files define
# (tests/programs/test_t2t_flags.py checks it against the files).
GIN_MACROS = (
    "ALPHA",
    "ATTENTION_DROPOUT",
    "BATCH_SIZE",
    "BATCH_UNIT",
    "BEAM_SIZE",
    "CONV_DROPOUT",
    "DATA_DIR",
    "DECODER_BLOCKS",
    "DECODER_MOE_POSITION",
    "DILATION_RATES",
    "DTYPE_POLICY",
    "ENCODER_BLOCKS",
    "ENCODER_MOE_POSITION",
    "EXPERT_DIM",
    "HIDDEN_DIM",
    "KERNEL_SIZES",
    "LABEL_SMOOTHING",
    "LEARNING_RATE",
    "MAX_INPUT_LENGTH",
    "MAX_LENGTH",
    "MIXER_CONV_BLOCKS",
    "MIXING",
    "MODEL_DIR",
    "MOE_LOSS_COEF",
    "NUM_EXPERTS",
    "NUM_HEADS",
    "PROBLEM",
    "PROBLEMS",
    "PROBLEMS_PER_STEP",
    "RETURN_BEAMS",
    "SEED",
    "STEP_MIXING",
    "STRATEGY",
    "TOP_K",
    "TRAIN_STEPS",
    "WARMUP_STEPS",
)


@dataclasses.dataclass(frozen=True)
class Rule:
    """How one T2T hparam becomes gin.

    Attributes:
      targets: the gin names it sets (for the README table and errors).
      to_bindings: the hparam's parsed value -> gin binding lines.
      note: what differs from T2T, if anything.
    """

    targets: tuple[str, ...]
    to_bindings: Callable[[Value], list[str]]
    note: str = ""


def _gin(value: Any) -> str:
    """A Python value as gin writes it (strings quoted, None, numbers)."""
    return repr(value)


def _number(value: Value, kind: type, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise T2TFlagError(f"hparam {name}={value!r}: expected a number")
    if kind is int and not float(value).is_integer():
        raise T2TFlagError(f"hparam {name}={value!r}: expected an integer")
    return kind(value)


def _set(name: str, *targets: str, kind: type = float, note: str = "") -> Rule:
    """A rule that sets every target to the value (as `kind`)."""

    def to_bindings(value: Value) -> list[str]:
        number = _number(value, kind, name)
        return [f"{t} = {_gin(number)}" for t in targets]

    return Rule(targets, to_bindings, note)


def _return_beams(value: Value) -> list[str]:
    if value not in (True, False, 0, 1):
        raise T2TFlagError(
            f"hparam return_beams={value!r}: expected true or false"
        )
    return [f"RETURN_BEAMS = {bool(value)!r}"]


def _learning_rate(value: Value) -> list[str]:
    rate = _number(value, float, "learning_rate")
    return [
        # schedules.py: T2T's noam multiplied by 5000 * 0.002 = 10 on top.
        f"LEARNING_RATE = {_gin(round(rate * 10, 12))}",
        f"schedules.Exp500kSchedule.learning_rate = {_gin(rate)}",
    ]


_SCHEDULES = {"noam": "NoamSchedule", "exp500k": "Exp500kSchedule"}


def _schedule(value: Value) -> list[str]:
    if value not in _SCHEDULES:
        raise T2TFlagError(
            f"learning-rate schedule {value!r} has no equivalent here; "
            f"the released ones are: {', '.join(_SCHEDULES)}"
        )
    return [
        "loop.train.learning_rate_schedule = "
        f"@schedules.{_SCHEDULES[str(value)]}()"
    ]


_MIXING = {"distributed": "per_worker", "uniform": "uniform"}


def _problem_choice(value: Value) -> list[str]:
    if value not in _MIXING:
        raise T2TFlagError(
            f"problem_choice={value!r} has no equivalent here (T2T's "
            "'adaptive' sampled by moving-average loss); use distributed "
            "(MIXING 'per_worker'), uniform, or set MIXING to "
            "'proportional' or 'temperature'."
        )
    return [f"MIXING = {_gin(_MIXING[str(value)])}"]


def _batch_size(value: Value) -> list[str]:
    size = _number(value, int, "batch_size")
    return [f"BATCH_SIZE = {size}", 'BATCH_UNIT = "tokens"']


def _max_length(value: Value) -> list[str]:
    length = _number(value, int, "max_length")
    return [f"MAX_LENGTH = {length if length > 0 else None}"]


def _clip(value: Value) -> list[str]:
    norm = _number(value, float, "clip_grad_norm")
    return [f"configs.OptimizerConfig.clip_norm = {_gin(norm or None)}"]


def _opt(field: str) -> str:
    return f"configs.OptimizerConfig.{field}"


_WARMUP = ("WARMUP_STEPS", "schedules.Exp500kSchedule.warmup_steps")
TRAIN_HPARAMS: Mapping[str, Rule] = {
    "hidden_size": _set("hidden_size", "HIDDEN_DIM", kind=int),
    "batch_size": Rule(
        ("BATCH_SIZE", "BATCH_UNIT"),
        _batch_size,
        "tokens per replica, as T2T",
    ),
    "max_length": Rule(
        ("MAX_LENGTH",),
        _max_length,
        "truncates text features instead of dropping long examples; 0: none",
    ),
    "learning_rate": Rule(
        ("LEARNING_RATE", "schedules.Exp500kSchedule.learning_rate"),
        _learning_rate,
        "noam's LEARNING_RATE is T2T's x 10 (T2T's 5000 * 0.002 factor)",
    ),
    "learning_rate_warmup_steps": _set(
        "learning_rate_warmup_steps", *_WARMUP, kind=int
    ),
    "learning_rate_decay_scheme": Rule(
        ("loop.train.learning_rate_schedule",), _schedule, "noam, exp500k"
    ),
    "learning_rate_schedule": Rule(
        ("loop.train.learning_rate_schedule",), _schedule, "noam, exp500k"
    ),
    "label_smoothing": _set("label_smoothing", "LABEL_SMOOTHING"),
    "dropout": _set(
        "dropout",
        "CONV_DROPOUT",
        note="the ConvBlocks' dropout (the paper's 0.4)",
    ),
    "attention_dropout": _set("attention_dropout", "ATTENTION_DROPOUT"),
    "num_heads": _set("num_heads", "NUM_HEADS", kind=int),
    "moe_num_experts": _set("moe_num_experts", "NUM_EXPERTS", kind=int),
    "moe_n1": _set("moe_n1", "NUM_EXPERTS", kind=int, note="T2T 2017"),
    "moe_k": _set("moe_k", "TOP_K", kind=int),
    "moe_loss_coef": _set("moe_loss_coef", "MOE_LOSS_COEF"),
    "moe_hidden_sizes": _set(
        "moe_hidden_sizes",
        "EXPERT_DIM",
        kind=int,
        note="one hidden layer per expert: one size",
    ),
    "optimizer_adam_beta1": _set("optimizer_adam_beta1", _opt("beta_1")),
    "optimizer_adam_beta2": _set("optimizer_adam_beta2", _opt("beta_2")),
    "beta1": _set("beta1", _opt("beta_1"), note="T2T 2017"),
    "beta2": _set("beta2", _opt("beta_2"), note="T2T 2017"),
    "optimizer_adam_epsilon": _set("optimizer_adam_epsilon", _opt("epsilon")),
    "clip_grad_norm": Rule((_opt("clip_norm"),), _clip, "0: no clipping"),
    "weight_decay": _set("weight_decay", _opt("weight_decay")),
    "problem_choice": Rule(
        ("MIXING",), _problem_choice, "distributed: per_worker; uniform"
    ),
}
DECODE_HPARAMS: Mapping[str, Rule] = {
    "beam_size": _set("beam_size", "BEAM_SIZE", kind=int, note="1: greedy"),
    "alpha": _set("alpha", "ALPHA"),
    "batch_size": _set("batch_size", "BATCH_SIZE", kind=int),
    "max_input_size": _set("max_input_size", "MAX_INPUT_LENGTH", kind=int),
    "max_length": _set(
        "max_length",
        "MAX_LENGTH",
        kind=int,
        note="this project's absolute output length",
    ),
    "return_beams": Rule(
        ("RETURN_BEAMS",),
        _return_beams,
        "every beam with its score, to <decode_to_file>.beams",
    ),
}
# T2T names users will try that have no faithful equivalent, and why.
NO_EQUIVALENT: Mapping[str, str] = {
    "num_hidden_layers": (
        "the paper's body has 6 encoder, 2 mixer and 4 decoder blocks: set "
        "ENCODER_BLOCKS, MIXER_CONV_BLOCKS and DECODER_BLOCKS"
    ),
    "filter_size": (
        "T2T's conv widening has no counterpart in the paper's ConvBlock; "
        "the MoE experts' width is EXPERT_DIM (moe_hidden_sizes)"
    ),
    "extra_length": (
        "decoding stops at an absolute MAX_LENGTH, not input length + "
        "extra_length: give max_length"
    ),
    "kernel_height": "the ConvBlock's kernels are KERNEL_SIZES",
    "large_kernel_size": "the ConvBlock's kernels are KERNEL_SIZES",
    "optimizer": "training always uses Adam (configs.OptimizerConfig.kind)",
}


def parse_value(text: str) -> Value:
    """An hparam value as T2T parsed scalars: int, float, bool, or text."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text.strip("'\"")


def parse_hparams(text: str) -> list[tuple[str, Value]]:
    """`name=value,name=value` -> `[(name, value), ...]` in order.

    Raises:
      T2TFlagError: an item without `=`.
    """
    items = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise T2TFlagError(
                f"bad hparams item {item!r}: expected name=value "
                "(e.g. --hparams='hidden_size=256,learning_rate=0.05')"
            )
        items.append((name.strip(), parse_value(value)))
    return items


def _unknown(name: str, flag: str, table: Mapping[str, Rule]) -> T2TFlagError:
    gin_names = sorted({t for r in table.values() for t in r.targets})
    close_gin = difflib.get_close_matches(
        name.upper(), [*GIN_MACROS, *gin_names], n=3, cutoff=0.5
    )
    close_t2t = difflib.get_close_matches(name, list(table), n=3, cutoff=0.6)
    why = NO_EQUIVALENT.get(name, "")
    lines = [f"{flag} name {name!r} has no equivalent here"]
    if why:
        lines[0] += f": {why}"
    if close_t2t:
        lines.append(f"mapped T2T names near it: {', '.join(close_t2t)}")
    if close_gin:
        lines.append(f"nearest gin names: {', '.join(close_gin)}")
    lines.append(
        f"mapped names: {', '.join(table)} (README 'T2T flags'); set "
        "anything else with --gin_bindings"
    )
    return T2TFlagError("; ".join(lines) + ".")


def hparams_bindings(
    text: str | None,
    table: Mapping[str, Rule] = TRAIN_HPARAMS,
    flag: str = "--hparams",
) -> list[str]:
    """The gin bindings of a T2T `--hparams` (or `--decode_hparams`) text.

    Raises:
      T2TFlagError: a bad item, a name without equivalent (with the
        nearest names), or a value of the wrong kind.
    """
    bindings: list[str] = []
    for name, value in parse_hparams(text or ""):
        rule = table.get(name)
        if rule is None:
            raise _unknown(name, flag, table)
        bindings += rule.to_bindings(value)
    return bindings


def decode_hparams_bindings(text: str | None) -> list[str]:
    """The gin bindings of T2T's `--decode_hparams` (see `hparams_bindings`)."""
    return hparams_bindings(text, DECODE_HPARAMS, "--decode_hparams")


def hparams_set_file(name: str) -> str:
    """The model gin file of a T2T `--hparams_set` name.

    Raises:
      T2TFlagError: an unknown set, naming the nearest ones.
    """
    if name in HPARAMS_SETS:
        return HPARAMS_SETS[name]
    close = difflib.get_close_matches(name, list(HPARAMS_SETS), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise T2TFlagError(
        f"unknown --hparams_set {name!r}.{hint} Known: "
        f"{', '.join(HPARAMS_SETS)}."
    )


def model_dir(model_dir_flag: str | None, output_dir: str | None) -> str | None:
    """`--model_dir`, or T2T's `--output_dir` (the same directory).

    Raises:
      T2TFlagError: both given and different.
    """
    if model_dir_flag and output_dir and model_dir_flag != output_dir:
        raise T2TFlagError(
            f"--model_dir={model_dir_flag} and --output_dir={output_dir} "
            "name the same thing (T2T's --output_dir is the model_dir): "
            "give one"
        )
    return model_dir_flag or output_dir


def check_model(name: str | None) -> None:
    """T2T's `--model`: only the MultiModel is here.

    Raises:
      T2TFlagError: another model name.
    """
    if name is not None and name not in T2T_MODEL_NAMES:
        raise T2TFlagError(
            f"--model={name}: this project trains the MultiModel only "
            f"(T2T's --model={T2T_MODEL_NAMES[0]}); pick its size with "
            "--hparams_set"
        )


@dataclasses.dataclass(frozen=True)
class TrainerGin:
    """What the trainer's T2T flags add to its gin.

    Attributes:
      files: gin files to parse after the user's `--gin_file`s.
      bindings: gin bindings applied before the user's `--gin_bindings`.
      program_bindings: macros set from flags (applied last).
    """

    files: tuple[str, ...]
    bindings: tuple[str, ...]
    program_bindings: tuple[tuple[str, Any], ...]


def trainer_gin(
    *,
    gin_files: Sequence[str],
    problem: Sequence[str] | None = None,
    hparams_set: str | None = None,
    hparams: str | None = None,
    train_steps: int | None = None,
    eval_steps: int | None = None,
    model: str | None = None,
) -> TrainerGin:
    """Translates the trainer's T2T flags (see the module docstring).

    Without `--gin_file`, `runs/train.gin` comes first; the hparams set's
    model file is parsed after the user's files, so it picks the model even
    when an experiment file includes another.

    Raises:
      T2TFlagError: a flag that cannot be translated, or neither a gin file
        nor an hparams set (nothing says which model to train).
    """
    check_model(model)
    if not gin_files and not hparams_set:
        raise T2TFlagError(
            "give --gin_file (an experiment, e.g. "
            "experiments/table1/multimodel_base.gin) or T2T's --hparams_set "
            "(e.g. multimodel_base) with --problem"
        )
    files = [] if gin_files else ["runs/train.gin"]
    if hparams_set:
        files.append(hparams_set_file(hparams_set))
    bindings = hparams_bindings(hparams)
    if eval_steps is not None:
        bindings.append(f"evaluation.EvalConfig.steps = {int(eval_steps)}")
    program = []
    if problem:
        program.append(("PROBLEMS", ",".join(problem)))
    if train_steps is not None:
        program.append(("TRAIN_STEPS", int(train_steps)))
    return TrainerGin(tuple(files), tuple(bindings), tuple(program))


def table_rows(
    table: Mapping[str, Rule] = TRAIN_HPARAMS,
) -> list[tuple[str, str, str]]:
    """`(T2T name, gin names, note)` per rule, for the README table."""
    return [
        (name, ", ".join(rule.targets), rule.note)
        for name, rule in table.items()
    ]
