"""t2t-mm-decoder: answers requests with a trained MultiModel (SPEC.md 1).

  t2t-mm-decoder --model_dir=M --problem=P [--data_dir=D]
      [--decode_from_file=F --decode_to_file=O]
      [--beam_size=4 --alpha=0.6 --max_length=256]
  t2t-mm-decoder --output_dir=M --problem=P --data_dir=D
      --decode_hparams='beam_size=4,alpha=0.6' ...   (T2T's flags)

One request a line: text for text problems, an image or WAV file path for
image and speech problems. Without --decode_from_file, lines are read from
stdin and answered at once. The model is rebuilt from M (its Keras config and
newest checkpoint); the vocabulary is looked up in M, then D. Defaults come
from the shipped runs/decode.gin; --gin_file/--gin_bindings override them.

It resolves the problem name (the library never imports `problems`),
rebuilds the model from `model_dir` (its Keras config and newest checkpoint,
never from re-parsed gin), finds the vocabulary (in `model_dir`, then
`data_dir`) and answers requests one a line: text for text inputs, a file
path for image and audio inputs. With `decode_from_file` the answers go to
`decode_to_file` (default: the input path + `.decoded`), one a line in input
order; without it, lines are read from `input_stream` (stdin) and each is
answered at once on `output_stream` (interactive use; a bad request is
reported on stderr and the next line is read; the run then ends with an
error naming the failed count). A text answer is the best beam's text; a
class-label answer is the top class name (or id).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from absl import flags

from problems import problem as problem_lib
from problems import registry
from programs import cli, gin_setup, t2t_flags
from t2t_multimodel import errors
from t2t_multimodel.decoding import decoder as decoder_lib

_log = logging.getLogger(__name__)


class DecodeInputError(errors.UserError):
    """A request line that cannot be read (a missing or unreadable file)."""


def load(
    model_dir: str, problem_names: Sequence[str], data_dir: str | None
) -> tuple[Any, list[problem_lib.Problem], Any]:
    """`(model, problems, vocabulary)` for decoding or export.

    Raises:
      registry.UnknownNameError: an unknown problem name.
      decoder_lib.ModelDirError: no model, checkpoint or vocabulary, or a
        model without a problem's modalities.
    """
    problems = [registry.get_problem(name) for name in problem_names]
    model = decoder_lib.restore_model(model_dir)
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


def _request(line: str, kind: str) -> bytes:
    """The raw request of one input line (file contents for media)."""
    if kind == decoder_lib.TEXT:
        return line.encode("utf-8")
    path = os.path.expanduser(line)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DecodeInputError(
            f"cannot read {kind} file {line!r} ({e.strerror}); give one "
            f"{kind} file path per line."
        ) from None


def _answers(d: decoder_lib.ProblemDecoder, raw: list[bytes]) -> list[str]:
    outputs = d.decode(raw)
    key = "classes" if d.output_kind == decoder_lib.CLASS else "outputs"
    return [str(a) for a in outputs[key]]


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _interactive(
    d: decoder_lib.ProblemDecoder, lines: Iterable[str], out: TextIO
) -> int:
    """Answers each line at once; a bad request is reported, not fatal."""
    count, failed = 0, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        try:
            answer = _answers(d, [_request(line, d.input_kind)])[0]
        except Exception as e:  # noqa: BLE001  (re-raised unless a user's)
            if not errors.is_user_error(e):
                raise
            failed.append(errors.format_user_error("request", e))
            print(failed[-1], file=sys.stderr, flush=True)
            continue
        print(answer, file=out, flush=True)
        count += 1
    if failed:
        raise DecodeInputError(
            f"{len(failed)} of {count + len(failed)} requests failed "
            f"(first: {failed[0]})"
        )
    return count


def decode(
    *,
    model_dir: str,
    problem_name: str,
    data_dir: str | None = None,
    decode_from_file: str | None = None,
    decode_to_file: str | None = None,
    beam_size: int = 4,
    alpha: float = 0.6,
    max_length: int = 256,
    max_input_length: int = 256,
    batch_size: int = 8,
    input_stream: TextIO | None = None,
    output_stream: TextIO | None = None,
) -> int:
    """Decodes requests one a line (see the module docstring).

    Returns:
      The number of answered lines.
    """
    model, (problem,), vocab = load(model_dir, [problem_name], data_dir)
    config = decoder_lib.DecodeConfig(
        beam_size=beam_size,
        alpha=alpha,
        max_length=max_length,
        max_input_length=max_input_length,
    )
    d = decoder_lib.ProblemDecoder(model, problem, vocab, config)
    kind = d.input_kind
    if decode_from_file is None:
        return _interactive(
            d, input_stream or sys.stdin, output_stream or sys.stdout
        )
    try:
        with open(decode_from_file, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
    except OSError as e:
        raise DecodeInputError(
            f"cannot read --decode_from_file={decode_from_file} ({e.strerror})"
        ) from None
    answers = []
    for batch in _batches(lines, batch_size):
        answers += _answers(d, [_request(line, kind) for line in batch])
        _log.info("decoded %d of %d lines", len(answers), len(lines))
    target = decode_to_file or decode_from_file + ".decoded"
    with open(target, "w", encoding="utf-8") as f:
        f.writelines(a + "\n" for a in answers)
    return len(answers)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The decoder's flags (defined when the program runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "The training run's model_dir.")
    flags.DEFINE_string("problem", None, "The problem to decode.")
    flags.DEFINE_string("data_dir", None, "Where the vocabulary is (fallback).")
    flags.DEFINE_string("decode_from_file", None, "Requests, one a line.")
    flags.DEFINE_string("decode_to_file", None, "Answers (default: F.decoded).")
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
            ]
        ),
    )
    decode_using_gin(
        decode_from_file=FLAGS.decode_from_file,
        decode_to_file=FLAGS.decode_to_file,
    )


def run() -> None:
    """The console entry point."""
    cli.start(
        main, prog="t2t-mm-decoder", doc=__doc__, define_flags=define_flags
    )
