"""Decoding requests one a line: a file, or a stream answered line by line.

A request line is text for text inputs and a file path for image and audio
inputs (the file's bytes are the request). The rules (docs/RELIABILITY.md,
issue #20 section 4):

- One output line per input line: output line N answers input line N. A
  blank line (only whitespace) gets a blank output line and is not sent to
  the model. Lines end at `\\n`; a `\\r` before it is dropped.
- A line that fails (not valid UTF-8, a media file that cannot be read, a
  request the model refuses, e.g. bytes that are not an image) is reported
  with its line number on `errors`, gets an EMPTY output line, and the other
  lines are decoded: a batch the model refuses is decoded again one request
  at a time to find the bad ones. After the last line `DecodeInputError`
  names the failed lines (the program then exits with status 1); the output
  file is written before that, complete.
- The output file is written atomically, and a path that is the input file
  (the same file after `os.path.realpath`) is refused before anything is
  decoded (`check_output_paths`).
- With `return_beams` every hypothesis is written as TSV lines
  `input_index<TAB>beam_rank<TAB>score<TAB>finished<TAB>text` (0-based:
  line N of the input is `input_index` N - 1; rank 0 is the best;
  `nbest.py` says what the score is), to `<output>.beams` after a header
  line, or on the output stream (no header); blank and failed lines have
  none.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from t2t_multimodel import atomic_write, errors
from t2t_multimodel.decoding import decoder as decoder_lib
from t2t_multimodel.decoding import nbest

# Failed line numbers named in the final error (the rest are counted).
_NAMED_FAILURES = 20


class DecodeInputError(errors.UserError):
    """Request lines that cannot be read or decoded; names them."""


@dataclasses.dataclass(frozen=True)
class Line:
    """One input line.

    Attributes:
      number: 1-based line number.
      text: the line without its line break; None if not valid UTF-8.
      error: why `text` is None.
    """

    number: int
    text: str | None
    error: str | None = None

    @property
    def blank(self) -> bool:
        return self.text is not None and not self.text.strip()


def parse_line(number: int, raw: bytes | str) -> Line:
    """One line (its line break removed) -> `Line`, checking UTF-8."""
    if isinstance(raw, str):  # A text stream has decoded it already.
        return Line(number, raw.rstrip("\r"))
    raw = raw.removesuffix(b"\r")
    try:
        return Line(number, raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        return Line(
            number,
            None,
            f"line {number}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at "
            f"byte {e.start + 1} of the line)",
        )


def split_lines(data: bytes) -> list[Line]:
    """The lines of a whole file's bytes (a last line may lack its `\\n`)."""
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # The file's final line break.
    return [parse_line(i + 1, piece) for i, piece in enumerate(pieces)]


def numbered_lines(stream: Any) -> Iterator[Line]:
    """The lines of a stream, read as bytes when it has a binary buffer.

    Reading bytes keeps a line that is not UTF-8 from ending the stream
    (a text stream raises `UnicodeDecodeError` and loses the rest).
    """
    source = getattr(stream, "buffer", stream)
    for i, raw in enumerate(iter(source.readline, source.read(0))):
        end = b"\n" if isinstance(raw, bytes) else "\n"
        yield parse_line(i + 1, raw.removesuffix(end))


def check_output_paths(source: str | None, outputs: Iterable[str]) -> None:
    """Refuses an output path that is the input file.

    Raises:
      DecodeInputError: an output is `source` (after `os.path.realpath`).
    """
    if source is None:
        return
    real = os.path.realpath(source)
    for path in outputs:
        if os.path.realpath(path) == real:
            raise DecodeInputError(
                f"--decode_to_file={path} is the input file "
                f"--decode_from_file={source}: decoding would overwrite it. "
                "Choose another --decode_to_file (default: the input path + "
                "'.decoded')."
            )


def request_bytes(text: str, kind: str) -> bytes:
    """The raw request of one line: its text, or a media file's contents.

    Raises:
      DecodeInputError: the media file cannot be read.
    """
    if kind == decoder_lib.TEXT:
        return text.encode("utf-8")
    path = os.path.expanduser(text)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DecodeInputError(
            f"cannot read {kind} file {text!r} ({e.strerror}); give one "
            f"{kind} file path per line."
        ) from None


@dataclasses.dataclass(frozen=True)
class Answer:
    """The answer to one line: an n-best list, or nothing (blank, failed).

    Attributes:
      line: the input line.
      hypotheses: best first; empty for a blank or failed line.
      error: why the line failed, else None.
    """

    line: Line
    hypotheses: tuple[nbest.Hypothesis, ...] = ()
    error: str | None = None

    @property
    def text(self) -> str:
        """The output line: the best hypothesis, or empty."""
        return self.hypotheses[0].text if self.hypotheses else ""


def _message(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return errors.condense_message(text)


class LineDecoder:
    """Answers request lines with an `NBestDecoder`, in batches.

    Args:
      decoder: the n-best decoder (`decode(raw) -> n-best lists`, and
        `decoder.input_kind`).
      batch_size: requests per model call.
      errors_to: where each failed line is reported (default: stderr).
    """

    def __init__(
        self,
        decoder: nbest.NBestDecoder,
        batch_size: int = 8,
        errors_to: TextIO | None = None,
    ) -> None:
        self.decoder = decoder
        self.kind = decoder.decoder.input_kind
        self.batch_size = max(1, batch_size)
        self.errors_to = errors_to

    def _failed(self, line: Line, error: str) -> Answer:
        print(error, file=self.errors_to or sys.stderr, flush=True)
        return Answer(line, error=error)

    def _decode(self, ready: Sequence[tuple[Line, bytes]]) -> list[Answer]:
        try:
            lists = self.decoder.decode([raw for _, raw in ready])
        except Exception as e:  # noqa: BLE001  (re-raised unless a user's)
            if not errors.is_user_error(e):
                raise
            if len(ready) == 1:
                line = ready[0][0]
                return [
                    self._failed(line, f"line {line.number}: {_message(e)}")
                ]
            # One bad request refuses its whole batch: find it, one by one.
            return [a for item in ready for a in self._decode([item])]
        return [Answer(line, tuple(h)) for (line, _), h in zip(ready, lists)]

    def _answer_batch(self, lines: Sequence[Line]) -> list[Answer]:
        answers, ready = [], []
        for line in lines:
            try:
                ready.append((line, request_bytes(line.text, self.kind)))
            except DecodeInputError as e:
                answers.append(self._failed(line, f"line {line.number}: {e}"))
        return answers + (self._decode(ready) if ready else [])

    def answer(self, lines: Sequence[Line]) -> list[Answer]:
        """One answer per line, in order (see the module docstring)."""
        answers: dict[int, Answer] = {}
        pending: list[Line] = []
        for line in lines:
            if line.text is None:
                answers[line.number] = self._failed(line, line.error or "")
            elif line.blank:
                answers[line.number] = Answer(line)
            else:
                pending.append(line)
        size = self.batch_size
        for start in range(0, len(pending), size):
            for answer in self._answer_batch(pending[start : start + size]):
                answers[answer.line.number] = answer
        return [answers[line.number] for line in lines]


def beam_lines(answer: Answer) -> list[str]:
    """The n-best TSV lines of one answer (none for blank or failed lines)."""
    return nbest.tsv_lines(answer.line.number - 1, answer.hypotheses)


def raise_if_failed(answers: Sequence[Answer]) -> None:
    """Raises `DecodeInputError` naming the failed lines, if any."""
    failed = [a for a in answers if a.error is not None]
    if not failed:
        return
    numbers = [str(a.line.number) for a in failed[:_NAMED_FAILURES]]
    more = len(failed) - len(numbers)
    named = ", ".join(numbers) + (f" and {more} more" if more else "")
    raise DecodeInputError(
        f"{len(failed)} of {len(answers)} lines failed (line {named}); "
        f"their output lines are empty. First: {failed[0].error}"
    )


def decode_file(
    decoder: LineDecoder,
    source: str,
    target: str,
    *,
    return_beams: bool = False,
) -> list[Answer]:
    """Decodes the lines of `source` into `target` (module docstring).

    Writes `target` (one line per input line) and, with `return_beams`,
    `target + ".beams"`, both atomically.

    Raises:
      DecodeInputError: `target` is `source`, `source` cannot be read, or
        lines failed (after the files are written).
    """
    outputs = [target] + ([target + ".beams"] if return_beams else [])
    check_output_paths(source, outputs)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DecodeInputError(
            f"cannot read --decode_from_file={source} ({e.strerror})"
        ) from None
    answers = decoder.answer(split_lines(data))
    atomic_write.write_text(target, "".join(a.text + "\n" for a in answers))
    if return_beams:
        lines = ["\t".join(nbest.TSV_HEADER)]
        for answer in answers:
            lines += beam_lines(answer)
        atomic_write.write_text(target + ".beams", "\n".join(lines) + "\n")
    raise_if_failed(answers)
    return answers


def decode_stream(
    decoder: LineDecoder,
    lines: Iterable[Line],
    out: TextIO,
    *,
    return_beams: bool = False,
) -> list[Answer]:
    """Answers each line at once on `out` (interactive use).

    Each answer is printed and flushed before the next line is read: the
    best hypothesis (an empty line for a blank or failed line), or with
    `return_beams` its n-best TSV lines.

    Raises:
      DecodeInputError: naming the failed lines, at the end of the input.
    """
    answers = []
    for line in lines:
        (answer,) = decoder.answer([line])
        answers.append(answer)
        if return_beams:
            for text in beam_lines(answer):
                print(text, file=out)
        else:
            print(answer.text, file=out)
        out.flush()
    raise_if_failed(answers)
    return answers
