"""Unit tests of t2t_multimodel.errors (formatting, exit codes, helpers)."""

from __future__ import annotations

import pytest

from t2t_multimodel import errors


def test_condense_drops_tf_noise_and_joins_lines():
    message = (
        "Graph execution error:\n\nDetected at node DecodeWav defined at:\n"
        '  File "x.py", line 3\n'
        "{{function_node __wrapped__DecodeWav_device_/job:localhost/replica:0"
        "/task:0/device:CPU:0}} Can only read 16-bit WAV files, but received "
        "8 [Op:DecodeWav]"
    )
    assert errors.condense_message(message) == (
        "Can only read 16-bit WAV files, but received 8"
    )


def test_run_main_user_error_exits_1_without_traceback(capsys):
    def main(argv):
        raise errors.NotWritableError("cannot write to /x: denied.\nSecond")

    with pytest.raises(SystemExit) as info:
        errors.run_main(main, "prog")(["prog"])
    assert info.value.code == errors.EXIT_USER_ERROR == 1
    assert capsys.readouterr().err == (
        "prog: error: cannot write to /x: denied. Second\n"
    )


def test_run_main_keeps_tracebacks_of_bugs():
    def main(argv):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        errors.run_main(main, "prog")(["prog"])


def test_config_differences_lists_paths():
    old = {"a": {"hidden_dim": 16, "layers": [1, 2]}, "b": 1}
    new = {"a": {"hidden_dim": 32, "layers": [1, 3]}, "c": 2}
    assert errors.config_differences(old, new) == [
        "a.hidden_dim: 16 -> 32",
        "a.layers[1]: 2 -> 3",
        "b: 1 -> absent",
        "c: absent -> 2",
    ]


def test_condense_tf_assert():
    message = (
        "Error in user-defined function passed to MapDataset:17 "
        "transformation with iterator: Iterator::Root: assertion failed: "
        "[Corrupt or truncated TFRecord shard] [/d/x-train-00000-of-00002] "
        "[read records:] [0] [expected:] [100] [Delete it.]\n"
        "\t [[{{node Assert}}]] [[IteratorGetNext]]"
    )
    assert errors.condense_message(message) == (
        "Corrupt or truncated TFRecord shard /d/x-train-00000-of-00002 "
        "read records: 0 expected: 100 Delete it."
    )
