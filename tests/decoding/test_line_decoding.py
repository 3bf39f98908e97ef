"""Request lines: UTF-8, blank lines, failed lines, same-file refusal.

A stub n-best decoder answers each text with its words reversed and refuses
(as the model does, with a TF `InvalidArgumentError`) any request holding
"bad", so the tests run without a model.
"""

from __future__ import annotations

import io
import os

import pytest
import tensorflow as tf

from t2t_multimodel.decoding import line_decoding, nbest


class _Stub:
    """`NBestDecoder`-like: two hypotheses per request; refuses "bad"."""

    def __init__(self, kind: str = "text") -> None:
        self.decoder = type("D", (), {"input_kind": kind})()
        self.calls: list[int] = []

    def decode(self, raw):
        self.calls.append(len(raw))
        bad = [i for i, r in enumerate(raw) if b"bad" in r]
        if bad:
            raise tf.errors.InvalidArgumentError(
                None, None, f"Bad request: inputs at batch positions {bad}"
            )
        return [
            [
                nbest.Hypothesis(" ".join(reversed(r.decode().split())), -1.0),
                nbest.Hypothesis(r.decode(), -2.5),
            ]
            for r in raw
        ]


def _decoder(batch_size=3, kind="text"):
    errors_to = io.StringIO()
    stub = _Stub(kind)
    return line_decoding.LineDecoder(stub, batch_size, errors_to), errors_to


def test_one_output_line_per_input_line(tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(b"a b\n\n  \nc d e\r\nf")  # No final line break.
    target = tmp_path / "out.txt"
    lines, _ = _decoder()
    answers = line_decoding.decode_file(lines, str(source), str(target))
    assert target.read_text() == "b a\n\n\ne d c\nf\n"
    assert [a.line.number for a in answers] == [1, 2, 3, 4, 5]
    assert lines.decoder.calls == [3]  # Blank lines never reach the model.


def test_invalid_utf8_and_refused_lines_fail_alone(tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(b"a b\nx \xff y\nbad one\nc d\n\xc3\n")
    target = tmp_path / "out.txt"
    lines, errors_to = _decoder(batch_size=8)
    with pytest.raises(line_decoding.DecodeInputError) as raised:
        line_decoding.decode_file(lines, str(source), str(target))
    message = str(raised.value)
    assert message.startswith("3 of 5 lines failed (line 2, 3, 5)")
    assert "their output lines are empty" in message
    assert "line 2: not valid UTF-8 (byte 0xff at byte 3 of the line)" in (
        message
    )
    # Written before the error: the good lines answered, the others empty.
    assert target.read_text() == "b a\n\n\nd c\n\n"
    reported = errors_to.getvalue().splitlines()
    assert reported[0].startswith("line 2: not valid UTF-8")
    assert reported[1].startswith("line 5: not valid UTF-8 (byte 0xc3")
    assert reported[2].startswith("line 3: Bad request: inputs at batch")
    # The refused batch of 3 was retried one request at a time.
    assert lines.decoder.calls == [3, 1, 1, 1]


def test_same_file_is_refused_before_decoding(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("a b\n")
    os.symlink(source, tmp_path / "link.txt")
    lines, _ = _decoder()
    for target in (source, tmp_path / "link.txt", tmp_path / "." / "in.txt"):
        with pytest.raises(line_decoding.DecodeInputError, match="overwrite"):
            line_decoding.decode_file(lines, str(source), str(target))
    # `<target>.beams` may not be the input either.
    beams = tmp_path / "x.beams"
    beams.write_text("c d\n")
    with pytest.raises(line_decoding.DecodeInputError, match="overwrite"):
        line_decoding.decode_file(
            lines, str(beams), str(tmp_path / "x"), return_beams=True
        )
    assert source.read_text() == "a b\n" and beams.read_text() == "c d\n"
    assert lines.decoder.calls == []


def test_return_beams_file(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("a b\n\nc d e\n")
    target = tmp_path / "out.txt"
    lines, _ = _decoder()
    line_decoding.decode_file(
        lines, str(source), str(target), return_beams=True
    )
    assert target.read_text() == "b a\n\ne d c\n"
    assert (tmp_path / "out.txt.beams").read_text().splitlines() == [
        "input_index\tbeam_rank\tscore\tfinished\ttext",
        "0\t0\t-1.000000\t1\tb a",
        "0\t1\t-2.500000\t1\ta b",
        "2\t0\t-1.000000\t1\te d c",
        "2\t1\t-2.500000\t1\tc d e",
    ]


def test_stream_goes_on_after_invalid_utf8():
    stdin = io.TextIOWrapper(io.BytesIO(b"a b\n\xfe\n\nc d\n"))
    out = io.StringIO()
    lines, errors_to = _decoder()
    with pytest.raises(line_decoding.DecodeInputError, match="1 of 4 lines"):
        line_decoding.decode_stream(
            lines, line_decoding.numbered_lines(stdin), out
        )
    assert out.getvalue() == "b a\n\n\nd c\n"
    assert "line 2: not valid UTF-8 (byte 0xfe" in errors_to.getvalue()
    # A text stream without a buffer (already decoded) works too.
    out = io.StringIO()
    line_decoding.decode_stream(
        lines,
        line_decoding.numbered_lines(io.StringIO("x y\n")),
        out,
        return_beams=True,
    )
    assert out.getvalue() == (
        "0\t0\t-1.000000\t1\ty x\n0\t1\t-2.500000\t1\tx y\n"
    )


def test_media_lines_read_files(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"p q")
    source = tmp_path / "in.txt"
    source.write_text(f"{image}\n{tmp_path}/none.png\n")
    lines, errors_to = _decoder(kind="image")
    with pytest.raises(line_decoding.DecodeInputError, match="1 of 2"):
        line_decoding.decode_file(lines, str(source), str(tmp_path / "o"))
    assert (tmp_path / "o").read_text() == "q p\n\n"
    assert "line 2: cannot read image file" in errors_to.getvalue()
