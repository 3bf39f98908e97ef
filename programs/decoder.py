"""t2t-mm-decoder: answers requests or scores a split with a trained MultiModel.

  t2t-mm-decoder --model_dir=M --problem=P [--data_dir=D]
      [--decode_from_file=F --decode_to_file=O]
      [--beam_size=4 --alpha=0.6 --max_length=256] [--return_beams]
      [--checkpoint_path=M/model.ckpt-N]
  t2t-mm-decoder --model_dir=M --problem=P --split=test --data_dir=D
      [--decode_to_file=O] [--nobaselines]
  t2t-mm-decoder --output_dir=M --problem=P --data_dir=D
      --decode_hparams='beam_size=4,alpha=0.6,return_beams=true' ...  (T2T)

Requests, one a line: text for text problems, an image or WAV file path for
image and speech problems. With --decode_from_file the answers go to
--decode_to_file (default: F.decoded), one line per input line, written
atomically; without it, lines are read from stdin and each is answered at
once. A blank line gets a blank answer; a line that fails (not UTF-8, an
unreadable file, a request the model refuses) is reported on stderr with
its number and gets an empty answer, the others are decoded, and the run
then exits with status 1 naming the failed lines. --decode_to_file may not
be the input file. --return_beams writes every beam: TSV lines
`input_index, beam_rank, score, finished, text` (0-based; the score is the
beam's log probability over the length penalty; finished 0: no EOS by
--max_length, ranked after the finished beams) to O.beams, or on stdout.

--split=test|dev decodes that whole split from the shards in --data_dir
and scores it with the problem's task metric (BLEU with its sacrebleu
signature, WER, top-1/top-5, exact trees and bracket F1), beside a trivial
baseline where it is cheap (the train split is read for the baselines'
targets; --nobaselines skips them). It writes O (default:
M/<problem>.<split>.<checkpoint>.tsv; TSV: index, input, reference,
hypothesis), O.hyp and O.ref (one a line, for sacrebleu), O.beams with
--return_beams, and O.metrics.json, and prints the scores.

The model is rebuilt from M (its Keras config) and its newest checkpoint,
or --checkpoint_path (a prefix such as M/model.ckpt-500, an averaged
checkpoint of t2t-mm-avg-checkpoints, or a directory: its newest). The
vocabulary is looked up in M, then D. Defaults come from the shipped
runs/decode.gin; --gin_file/--gin_bindings override them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from absl import flags

from problems import problem as problem_lib
from problems import registry
from programs import cli, gin_setup, t2t_flags
from t2t_multimodel import errors
from t2t_multimodel.data import pipeline
from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.decoding import (
    line_decoding,
    nbest,
    scoring,
    split_examples,
)

_log = logging.getLogger(__name__)

DecodeInputError = line_decoding.DecodeInputError


def load(
    model_dir: str,
    problem_names: Sequence[str],
    data_dir: str | None,
    *,
    checkpoint_path: str | None = None,
) -> tuple[Any, list[problem_lib.Problem], Any]:
    """`(model, problems, vocabulary)` for decoding or export.

    Raises:
      registry.UnknownNameError: an unknown problem name.
      decoder_lib.ModelDirError: no model, (such) checkpoint or vocabulary,
        or a model without a problem's modalities.
    """
    problems = [registry.get_problem(name) for name in problem_names]
    model = decoder_lib.restore_model(model_dir, checkpoint_path)
    trained = _trained_problems(model_dir)
    vocab = None
    for problem in problems:
        missing = [
            m
            for m in (problem.input_modality, problem.target_modality)
            if m not in model.modalities
        ]
        if missing:
            raise decoder_lib.ModelDirError(
                f"the model in {model_dir} has no {', '.join(missing)} "
                f"modality net, so it cannot run problem {problem.name!r} "
                f"(it has: {', '.join(sorted(model.modalities))})."
            )
        if trained is not None and problem.name not in trained:
            _log.warning(
                "%s was not trained on %s (only on %s)",
                model_dir,
                problem.name,
                ", ".join(trained),
            )
        vocab = vocab or decoder_lib.find_vocabulary(
            problem, [model_dir, data_dir or ""]
        )
    return model, problems, vocab


def _trained_problems(model_dir: str) -> list[str] | None:
    path = os.path.join(model_dir, "problems.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return list(json.load(f).get("problems", []))


def _step(checkpoint: str) -> int | None:
    found = re.search(r"-(\d+)$", checkpoint)
    return int(found.group(1)) if found else None


def _check_request_files(source: str, target: str, return_beams: bool) -> None:
    """Fails before the model is built: same file, unreadable, unwritable."""
    outputs = [target] + ([target + ".beams"] if return_beams else [])
    line_decoding.check_output_paths(source, outputs)
    if not os.path.isfile(source) or not os.access(source, os.R_OK):
        raise DecodeInputError(
            f"cannot read --decode_from_file={source}: not a readable file."
        )
    errors.ensure_writable_dir(os.path.dirname(os.path.abspath(target)))


def _score_split(
    d: decoder_lib.ProblemDecoder,
    *,
    split: str,
    data_dir: str,
    target: str,
    checkpoint: str,
    model_dir: str,
    batch_size: int,
    return_beams: bool,
    baselines: bool,
    max_train_examples: int | None,
) -> int:
    """Decodes and scores `split`; writes the files, prints the scores."""
    config = d.config
    n_best = nbest.NBestDecoder(d)
    settings = {"max_length": config.max_length}
    if n_best.search == "beam":
        settings.update(beam_size=config.beam_size, alpha=config.alpha)
    elif n_best.search == "top_k":
        settings = {"top_k": config.top_k}
    run = scoring.SplitRun(
        split=split,
        data_dir=data_dir,
        batch_size=batch_size,
        search=n_best.search,
        search_settings=settings,
        baselines=baselines,
        max_train_examples=max_train_examples,
    )
    reader = split_examples.SplitReader(d.problem, d.vocabulary, config)
    decoded, report = scoring.score_split(reader, n_best.decode_features, run)
    report.update(
        model_dir=model_dir, checkpoint=checkpoint, step=_step(checkpoint)
    )
    files = scoring.write_results(
        target, decoded, report, return_beams=return_beams
    )
    print(scoring.format_report(report))
    print("wrote " + ", ".join(files.values()))
    return len(decoded)


def decode(
    *,
    model_dir: str,
    problem_name: str,
    data_dir: str | None = None,
    decode_from_file: str | None = None,
    decode_to_file: str | None = None,
    split: str | None = None,
    checkpoint_path: str | None = None,
    return_beams: bool = False,
    baselines: bool = True,
    max_train_examples: int | None = None,
    beam_size: int = 4,
    alpha: float = 0.6,
    max_length: int = 256,
    max_input_length: int = 256,
    batch_size: int = 8,
    input_stream: Any = None,
    output_stream: TextIO | None = None,
) -> int:
    """Decodes request lines or scores a split (see the module docstring).

    The entry point `t2t-mm-decoder` configures with gin: its arguments are
    the program's settings, hence more than a library function would take.

    Returns:
      The number of input lines (or split examples) decoded.

    Raises:
      DecodeInputError: the output would overwrite the input, or lines
        failed (after the output is written).
    """
    if split and decode_from_file:
        raise errors.UserError(
            "--split and --decode_from_file exclude each other: decode a "
            "split of the data_dir, or the lines of a file."
        )
    if split and not data_dir:
        raise errors.UserError(
            f"--split={split} reads the split's shards: pass --data_dir=<the "
            "t2t-mm-datagen data_dir>."
        )
    target = decode_to_file
    if decode_from_file is not None:
        target = decode_to_file or decode_from_file + ".decoded"
        _check_request_files(decode_from_file, target, return_beams)
    if split:  # Missing shards fail before the model is built.
        pipeline.find_shards(
            registry.get_problem(problem_name), split, data_dir
        )
    checkpoint = decoder_lib.resolve_checkpoint(model_dir, checkpoint_path)
    if split:
        target = target or os.path.join(
            model_dir,
            f"{problem_name}.{split}.{os.path.basename(checkpoint)}.tsv",
        )
        errors.ensure_writable_dir(os.path.dirname(os.path.abspath(target)))
    model, (problem,), vocab = load(
        model_dir, [problem_name], data_dir, checkpoint_path=checkpoint
    )
    _log.info("restored %s", checkpoint)
    config = decoder_lib.DecodeConfig(
        beam_size=beam_size,
        alpha=alpha,
        max_length=max_length,
        max_input_length=max_input_length,
    )
    d = decoder_lib.ProblemDecoder(model, problem, vocab, config)
    if split:
        return _score_split(
            d,
            split=split,
            data_dir=data_dir,
            target=target,
            checkpoint=checkpoint,
            model_dir=model_dir,
            batch_size=batch_size,
            return_beams=return_beams,
            baselines=baselines,
            max_train_examples=max_train_examples,
        )
    lines = line_decoding.LineDecoder(nbest.NBestDecoder(d), batch_size)
    if decode_from_file is None:
        answers = line_decoding.decode_stream(
            lines,
            line_decoding.numbered_lines(input_stream or sys.stdin),
            output_stream or sys.stdout,
            return_beams=return_beams,
        )
    else:
        answers = line_decoding.decode_file(
            lines, decode_from_file, target, return_beams=return_beams
        )
    return len(answers)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The decoder's flags (defined when the program runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "The training run's model_dir.")
    flags.DEFINE_string("problem", None, "The problem to decode.")
    flags.DEFINE_string("data_dir", None, "Where the vocabulary is (fallback).")
    flags.DEFINE_string("decode_from_file", None, "Requests, one a line.")
    flags.DEFINE_string(
        "decode_to_file",
        None,
        "Answers (default: F.decoded); with --split the TSV (default: "
        "M/<problem>.<split>.<checkpoint>.tsv).",
    )
    flags.DEFINE_string(
        "split",
        None,
        "Decode and score this split of --data_dir (test, dev) instead of "
        "request lines.",
    )
    flags.DEFINE_string(
        "checkpoint_path",
        None,
        "The checkpoint to decode (a prefix such as M/model.ckpt-500, or a "
        "directory: its newest); default: the newest in --model_dir.",
    )
    flags.DEFINE_boolean(
        "return_beams",
        None,
        "Write every beam with its score (O.beams, or stdout); sets "
        "RETURN_BEAMS.",
    )
    flags.DEFINE_boolean(
        "baselines",
        True,
        "With --split: score the trivial baselines too (reads the train "
        "split's targets).",
    )
    flags.DEFINE_integer(
        "baseline_train_examples",
        None,
        "With --split: read at most this many train targets for the "
        "baselines (default: all).",
    )
    flags.DEFINE_integer("beam_size", None, "1: greedy; sets BEAM_SIZE.")
    flags.DEFINE_float("alpha", None, "Length penalty; sets ALPHA.")
    flags.DEFINE_integer("max_length", None, "Output tokens; sets MAX_LENGTH.")
    flags.DEFINE_multi_string("gin_file", ["runs/decode.gin"], "Gin files.")
    flags.DEFINE_multi_string("gin_bindings", [], "Extra gin bindings.")
    flags.DEFINE_list(
        "gin_search_paths", [], "Directories searched for gin files."
    )
    # T2T's flags (programs/t2t_flags.py translates them to gin).
    flags.DEFINE_string("output_dir", None, "T2T: the model_dir.")
    flags.DEFINE_string(
        "decode_hparams", None, "T2T: 'beam_size=4,alpha=0.6,...'."
    )
    flags.DEFINE_string(
        "hparams_set", None, "T2T: ignored (the model comes from model_dir)."
    )
    flags.DEFINE_string("model", None, "T2T: multi_model (the only one).")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    import gin

    import problems  # noqa: F401  (registers every problem and mixture)

    decode_using_gin = gin.configurable(decode)
    t2t_flags.check_model(FLAGS.model)
    gin_setup.parse(
        FLAGS.gin_file,
        [
            *t2t_flags.decode_hparams_bindings(FLAGS.decode_hparams),
            *FLAGS.gin_bindings,
        ],
        extra_search_paths=FLAGS.gin_search_paths,
        program_bindings=gin_setup.flag_bindings(
            [
                (
                    "MODEL_DIR",
                    t2t_flags.model_dir(FLAGS.model_dir, FLAGS.output_dir),
                ),
                ("PROBLEM", FLAGS.problem),
                ("DATA_DIR", FLAGS.data_dir),
                ("BEAM_SIZE", FLAGS.beam_size),
                ("ALPHA", FLAGS.alpha),
                ("MAX_LENGTH", FLAGS.max_length),
                ("RETURN_BEAMS", FLAGS.return_beams),
            ]
        ),
    )
    decode_using_gin(
        decode_from_file=FLAGS.decode_from_file,
        decode_to_file=FLAGS.decode_to_file,
        split=FLAGS.split,
        checkpoint_path=FLAGS.checkpoint_path,
        baselines=FLAGS.baselines,
        max_train_examples=FLAGS.baseline_train_examples,
    )


def run() -> None:
    """The console entry point."""
    cli.start(
        main, prog="t2t-mm-decoder", doc=__doc__, define_flags=define_flags
    )
