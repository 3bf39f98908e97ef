"""t2t-mm-demo: the offline demo, README command 1 (SPEC.md section 1).

  t2t-mm-demo [--steps=N] [--out=runs/demo] [--problems=demo_all]
      [--gin_file=F ...] [--gin_bindings='HIDDEN_DIM = 64' ...]

Generates the offline demo data, trains one tiny MultiModel jointly on every
demo problem, evaluates it, exports it with a serving signature per problem,
decodes a few dev examples per problem with the export and writes
OUT/eval_results.json and OUT/training_curves.png. Settings are in the
shipped experiments/demo.gin (extra --gin_file / --gin_bindings override
them).
A rerun resumes: datagen skips complete data, training continues from the
last checkpoint, a finished run only reports again.

One call runs the whole offline demo into `out_dir`:

1. datagen: the demo problems' raw data (installed Debian/PyPI packages) to
   the shared vocabulary and TFRecords in `out_dir/data` (raw scratch files
   in `out_dir/tmp`); a problem whose shards are complete is skipped;
2. training: ONE MultiModel trained jointly on all of them (`train_fn`, the
   trainer's `loop.train` as gin configures it) in `out_dir/model`, with a
   progress bar moved by the trainer's `on_step` callback; a rerun resumes
   from the last checkpoint and a finished run is not trained again;
3. evaluation on every problem's dev split: the trainer evaluates several
   times during training (the curves) and at the end; with
   `full_dev_evaluation` the final model is evaluated again on the WHOLE
   dev split of every problem, with the greedy search the export serves;
4. export of a SavedModel with one serving signature per problem, on raw
   inputs, to `out_dir/export`; it is reloaded with plain TensorFlow and
   decodes a few dev examples of every problem (source, reference, output);
5. the report: `out_dir/eval_results.json`, `out_dir/training_curves.png`
   and a results table (`demo_report.py`).

Keyword-only arguments and no flags: `bin/t2t-mm-demo` and the tests call it
alike (STYLE.md section 5).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import soundfile
import tensorflow as tf
import tqdm
from absl import flags

from problems import problem as problem_lib
from problems import registry
from problems.demo import mixtures as demo_mixture
from programs import cli, datagen, demo_report, exporter, gin_setup
from t2t_multimodel import atomic_write, errors
from t2t_multimodel.data import pipeline, tfrecord
from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.decoding import restore
from t2t_multimodel.training import configs, evaluation, inputs

DEFAULT_OUT_DIR = os.path.join("runs", "demo")
DEFAULT_PROBLEMS = demo_mixture.DEMO_ALL.name
_CAPS_FILE = "demo_caps.json"
_RUNNER_LOGGER = "t2t_multimodel.training.runner"


def _print(message: str, verbose: bool) -> None:
    if verbose:
        print(message, flush=True)


def _capped(generate: problem_lib.Generator, limit: int):
    def generate_capped(tmp_dir: str) -> Iterator[problem_lib.Example]:
        for index, example in enumerate(generate(tmp_dir)):
            if index >= limit:
                return
            yield example

    return generate_capped


def cap_problem(
    problem: problem_lib.Problem,
    *,
    max_train: int | None = None,
    max_dev: int | None = None,
) -> problem_lib.Problem:
    """`problem` with at most `max_train` / `max_dev` examples (a new value).

    The name, features and space ids stay, so the shards and the model are
    those of the registered problem; only the generators stop early.
    """
    limits = {problem_lib.TRAIN: max_train, problem_lib.DEV: max_dev}
    generators = {
        split: gen if limits.get(split) is None else _capped(gen, limits[split])
        for split, gen in problem.generators.items()
    }
    return dataclasses.replace(problem, generators=generators)


def _data_complete(problem: problem_lib.Problem, data_dir: str) -> bool:
    for split in problem.generators:
        meta = tfrecord.read_meta(data_dir, problem.name, split)
        if not meta or len(meta.get("shards", {})) != meta.get("num_shards"):
            return False
        try:
            pipeline.find_shards(problem, split, data_dir)
        except (pipeline.MissingShardsError, pipeline.ShardMismatchError):
            return False
    return True


def generate(
    problems: Sequence[problem_lib.Problem],
    *,
    data_dir: str,
    tmp_dir: str,
    caps: Mapping[str, Any],
    verbose: bool = True,
) -> list[str]:
    """Runs datagen for the problems whose data is missing or incomplete.

    A problem counts as done when every split's shards are complete and were
    written with the same example caps (recorded in `data_dir`).

    Returns:
      The names of the problems generated now.
    """
    os.makedirs(data_dir, exist_ok=True)
    caps_path = os.path.join(data_dir, _CAPS_FILE)
    recorded = {}
    if os.path.exists(caps_path):
        with open(caps_path) as f:
            recorded = json.load(f)
    todo = [
        p
        for p in problems
        if recorded.get(p.name) != caps or not _data_complete(p, data_dir)
    ]
    if todo:
        _print(f"datagen: {', '.join(p.name for p in todo)}", verbose)
        datagen.generate_data(
            problem_names=todo,
            data_dir=data_dir,
            tmp_dir=tmp_dir,
            verbose=verbose,
        )
        recorded.update({p.name: caps for p in todo})
        atomic_write.write_json(caps_path, recorded)
    else:
        _print(f"datagen: all data is in {data_dir}", verbose)
    return [p.name for p in todo]


def _finished(model_dir: str, steps: int) -> bool:
    """Whether `model_dir` holds a checkpoint and dev results at `steps`."""
    path = os.path.join(model_dir, "eval_results.json")
    latest = tf.train.latest_checkpoint(model_dir)
    if latest is None or not os.path.exists(path):
        return False
    with open(path) as f:
        step = json.load(f).get("step", -1)
    return step >= steps and int(latest.rsplit("-", 1)[-1]) == step


def _show_progress(
    bar: tqdm.tqdm, step: int, metrics: Mapping[str, float]
) -> None:
    """The trainer's `on_step`: moves the bar to `step`, shows the loss."""
    bar.update(max(0, step - bar.n))
    trained = [k[: -len("/loss")] for k in metrics if k.endswith("/loss")]
    bar.set_postfix_str(f"{', '.join(trained)} loss {metrics['loss']:.3f}")


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silences `logger_name`'s INFO lines (the bar shows the progress)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def train(
    problems: Sequence[problem_lib.Problem],
    *,
    train_fn: Callable[..., Mapping[str, Any]],
    data_dir: str,
    model_dir: str,
    steps: int,
    data: configs.DataConfig,
    evaluation_config: evaluation.EvalConfig,
    checkpoint: configs.CheckpointConfig,
    verbose: bool = True,
) -> None:
    """Trains (or resumes) the joint model up to `steps`, with a bar.

    `log_every=1`: the trainer writes every step's summaries, which the
    report counts the examples of each problem from (`demo_report`); its
    per-step log lines are silenced, the bar replaces them.
    """
    if _finished(model_dir, steps):
        _print(f"training: {model_dir} is trained to step {steps}", verbose)
        return
    bar = tqdm.tqdm(
        total=steps, desc="training", unit="step", disable=not verbose
    )
    with bar, _quiet(_RUNNER_LOGGER):
        train_fn(
            problems=problems,
            data_dir=data_dir,
            model_dir=model_dir,
            train_steps=steps,
            data=data,
            evaluation=evaluation_config,
            checkpoint=checkpoint,
            log_every=1,
            on_step=functools.partial(_show_progress, bar),
        )


def evaluate(
    problems: Sequence[problem_lib.Problem],
    *,
    model_dir: str,
    data_dir: str,
    data: configs.DataConfig,
    evaluation_config: evaluation.EvalConfig,
    full_dev_split: bool = False,
) -> dict[str, Any]:
    """The dev results of the trained model (`eval_results.json`'s dict).

    Without `full_dev_split`: the trainer's final evaluation
    (`model_dir/eval_results.json`, `evaluation_config.steps` batches per
    problem). With it: the newest checkpoint evaluated on the whole dev
    split of every problem (`EvalConfig.steps=None`).
    """
    if not full_dev_split:
        with open(os.path.join(model_dir, "eval_results.json")) as f:
            return json.load(f)
    model = restore.restore_model(model_dir)
    step = int(tf.train.latest_checkpoint(model_dir).rsplit("-", 1)[-1])
    evaluator = evaluation.Evaluator(
        model,
        problems,
        functools.partial(
            inputs.dev_dataset,
            data_dir=data_dir,
            data=data,
            batch_size=evaluation_config.batch_size,
        ),
        data_dir=data_dir,
        label_smoothing=model.label_smoothing,
        config=dataclasses.replace(evaluation_config, steps=None),
    )
    return evaluator.evaluate(step)


def export(
    problems: Sequence[problem_lib.Problem],
    *,
    model_dir: str,
    data_dir: str,
    export_dir: str,
    beam_size: int,
    max_decode_length: int,
) -> str:
    """The exporter's `export` (skipped when the export is newer)."""
    index = os.path.join(model_dir, "checkpoint")
    stamp = os.path.join(export_dir, "saved_model.pb")
    if os.path.exists(stamp) and os.path.getmtime(stamp) > os.path.getmtime(
        index
    ):
        return export_dir
    return exporter.export(
        model_dir=model_dir,
        export_dir=export_dir,
        problem_names=[p.name for p in problems],
        data_dir=data_dir,
        beam_size=beam_size,
        max_length=max_decode_length,
        overwrite=True,
    )


def _wav_bytes(waveform: np.ndarray, sample_rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(
        buffer, waveform, sample_rate, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()


def _raw_request(problem: problem_lib.Problem, example: Mapping) -> tuple:
    """`(request bytes, shown source, shown reference)` of a raw example."""
    kind = decoder_lib.input_kind(problem)
    source = example["inputs"]
    if kind == decoder_lib.TEXT:
        request, shown = source.encode("utf-8"), source
    elif kind == decoder_lib.IMAGE:
        request, shown = source, f"<image, {len(source)} bytes>"
    else:
        waveform = np.asarray(source, np.float32)
        request = _wav_bytes(waveform)
        shown = f"<speech, {waveform.shape[0] / 16000:.1f} s WAV>"
    reference = example["targets"]
    names = problem.class_names
    if not isinstance(reference, str):
        reference = names[int(reference)] if names else str(int(reference))
    return request, shown, reference


def decode_examples(
    export_dir: str,
    problems: Sequence[problem_lib.Problem],
    *,
    tmp_dir: str,
    count: int,
) -> dict[str, list[dict[str, str]]]:
    """Decodes `count` dev examples per problem with the reloaded export.

    Each problem's serving signature is called on raw requests (text, image
    bytes, WAV bytes), as a served model would be.
    """
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops)

    loaded = tf.saved_model.load(export_dir)
    decoded = {}
    for problem in problems:
        examples = []
        for index, example in enumerate(problem.generate("dev", tmp_dir)):
            if index >= count:
                break
            examples.append(_raw_request(problem, example))
        if not examples:
            continue
        name = decoder_lib.INPUT_NAMES[decoder_lib.input_kind(problem)]
        requests = tf.constant([request for request, _, _ in examples])
        outputs = loaded.signatures[problem.name](**{name: requests})
        key = "classes" if "classes" in outputs else "outputs"
        answers = [a.decode("utf-8") for a in outputs[key].numpy().tolist()]
        decoded[problem.name] = [
            {"source": shown, "reference": reference, "output": answer}
            for (_, shown, reference), answer in zip(examples, answers)
        ]
    return decoded


def run_demo(
    *,
    out_dir: str = DEFAULT_OUT_DIR,
    steps: int,
    problems: str | Sequence[str] = DEFAULT_PROBLEMS,
    train_fn: Callable[..., Mapping[str, Any]],
    data: configs.DataConfig | None = None,
    evaluation_config: evaluation.EvalConfig | None = None,
    checkpoint: configs.CheckpointConfig | None = None,
    num_evals: int = 5,
    max_train_examples: int | None = None,
    max_dev_examples: int | None = None,
    num_decode_examples: int = 3,
    beam_size: int = 4,
    max_decode_length: int = 64,
    full_dev_evaluation: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Runs the offline demo into `out_dir` (see the module docstring).

    Args:
      out_dir: `data/`, `tmp/`, `model/`, `export/`, `eval_results.json` and
        `training_curves.png` go here.
      steps: training steps in all (a rerun resumes up to them).
      problems: problem or mixture names (a list or a comma list); a single
        mixture also gives the sampling rates when `data.mixing` is
        `proportional` and `data.rates` is unset.
      train_fn: the trainer, `loop.train` with the model and the learning
        rate schedule bound (gin or `functools.partial`); called with the
        problems, directories, steps and the configs below.
      data: batching and mixing (None: the defaults).
      evaluation_config: dev evaluation (None: the defaults); its `every`
        is replaced by `steps // num_evals`.
      checkpoint: checkpointing (None: the defaults); its `every` is
        replaced the same way, so a killed run resumes from the last
        evaluation.
      num_evals: dev evaluations during training (plus the final one).
      max_train_examples: cap on each problem's train examples (None: all).
      max_dev_examples: cap on each problem's dev examples (None: all).
      num_decode_examples: dev examples decoded per problem by the export.
      beam_size: beam size of the exported decoders (1: greedy).
      max_decode_length: output tokens at most when decoding.
      full_dev_evaluation: report the final model on the whole dev split of
        every problem (evaluated again after training) instead of the
        trainer's last evaluation (`evaluation_config.steps` batches).
      verbose: progress bars, the table and the examples on stdout.

    Returns:
      The dict written to `out_dir/eval_results.json`.
    """
    data = data or configs.DataConfig()
    evaluation_config = evaluation_config or evaluation.EvalConfig()
    checkpoint = checkpoint or configs.CheckpointConfig()
    paths = _Paths.under(out_dir)
    clock = _Stopwatch()
    selected = [
        cap_problem(p, max_train=max_train_examples, max_dev=max_dev_examples)
        for p in registry.resolve(problems)
    ]
    caps = {"max_train": max_train_examples, "max_dev": max_dev_examples}
    generate(
        selected,
        data_dir=paths.data,
        tmp_dir=paths.tmp,
        caps=caps,
        verbose=verbose,
    )
    clock.lap("datagen_s")
    every = max(1, steps // max(1, num_evals))
    train(
        selected,
        train_fn=train_fn,
        data_dir=paths.data,
        model_dir=paths.model,
        steps=steps,
        data=_with_mixture_rates(data, problems),
        evaluation_config=dataclasses.replace(evaluation_config, every=every),
        checkpoint=dataclasses.replace(checkpoint, every=every),
        verbose=verbose,
    )
    clock.lap("training_s")
    results = evaluate(
        selected,
        model_dir=paths.model,
        data_dir=paths.data,
        data=data,
        evaluation_config=evaluation_config,
        full_dev_split=full_dev_evaluation,
    )
    clock.lap("evaluation_s")
    _print("exporting the SavedModel ...", verbose)
    export(
        selected,
        model_dir=paths.model,
        data_dir=paths.data,
        export_dir=paths.export,
        beam_size=beam_size,
        max_decode_length=max_decode_length,
    )
    decoded = decode_examples(
        paths.export, selected, tmp_dir=paths.tmp, count=num_decode_examples
    )
    clock.lap("export_decode_s")
    return demo_report.report(
        selected,
        out_dir=out_dir,
        model_dir=paths.model,
        results=results,
        decoded=decoded,
        timings=clock.laps,
        verbose=verbose,
    )


@dataclasses.dataclass(frozen=True)
class _Paths:
    """The demo's folders under `out_dir`."""

    data: str
    tmp: str
    model: str
    export: str

    @classmethod
    def under(cls, out_dir: str) -> _Paths:
        names = [field.name for field in dataclasses.fields(cls)]
        return cls(*(os.path.join(out_dir, name) for name in names))


class _Stopwatch:
    """Seconds per part of the run, in order (the report's timings)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = now - self._last
        self._last = now


def _with_mixture_rates(
    data: configs.DataConfig, names: str | Sequence[str]
) -> configs.DataConfig:
    """`data` with a single mixture's rates for unset proportional rates."""
    rates = registry.mixture_rates(names)
    if data.mixing == "proportional" and data.rates is None and rates:
        return dataclasses.replace(data, rates=tuple(rates))
    return data


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The demo's flags (defined when the program runs, not on import)."""
    flags.DEFINE_integer("steps", None, "Training steps (default: demo.gin's).")
    flags.DEFINE_string("out", "runs/demo", "Output directory.")
    flags.DEFINE_string(
        "problems", "demo_all", "Problems or mixture (comma list)."
    )
    flags.DEFINE_multi_string(
        "gin_file", [], "Extra gin files (after demo.gin)."
    )
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    import gin

    from t2t_multimodel.training import loop

    # Made configurable before parsing: gin locks its registry then.
    train_using_gin = gin.configurable(loop.train)
    run_demo_using_gin = gin.configurable(run_demo)
    out = os.path.abspath(FLAGS.out)
    gin_setup.parse(
        ["experiments/demo.gin", *FLAGS.gin_file],
        FLAGS.gin_bindings,
        program_bindings=gin_setup.flag_bindings(
            [
                ("DATA_DIR", os.path.join(out, "data")),
                ("MODEL_DIR", os.path.join(out, "model")),
                ("PROBLEMS", FLAGS.problems),
            ]
        ),
    )
    steps = FLAGS.steps or gin.query_parameter("TRAIN_STEPS/macro.value")
    model_dir = os.path.join(out, "model")
    run_demo_using_gin(
        out_dir=out,
        steps=int(steps),
        problems=FLAGS.problems,
        train_fn=functools.partial(
            train_using_gin,
            on_start=lambda: gin_setup.write_operative_config(model_dir),
        ),
    )


def run() -> None:
    """The console entry point."""
    cli.start(main, prog="t2t-mm-demo", doc=__doc__, define_flags=define_flags)
