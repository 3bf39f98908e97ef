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


def test_gin_required_macro_and_syntax_error(tmp_path):
    import gin

    required = tmp_path / "required.gin"
    required.write_text("SIZE = %gin.REQUIRED\n")
    broken = tmp_path / "broken.gin"
    broken.write_text("A = 1\nB = [1,\n")
    messages = []
    for path in (required, broken):
        gin.clear_config()
        try:
            with pytest.raises(errors.ConfigError) as info:
                with errors.gin_config_errors([str(path)], [str(tmp_path)]):
                    gin.parse_config_files_and_bindings([str(path)], [])
            messages.append(str(info.value))
        finally:
            gin.clear_config()
    assert messages == [
        "gin macro SIZE is %gin.REQUIRED but no gin file or binding sets it; "
        'add e.g. --gin_bindings="SIZE = ..." (macros such as DATA_DIR and '
        "MODEL_DIR are set by the flags of the same name).",
        f"gin syntax error in {broken}, line 3: EOF in multi-line statement.",
    ]


def test_ensure_writable_dir_free_space(tmp_path):
    errors.ensure_writable_dir(str(tmp_path / "new"))
    assert (tmp_path / "new").is_dir()
    assert not list((tmp_path / "new").iterdir())  # The probe is removed.
    with pytest.raises(errors.NotWritableError) as info:
        errors.ensure_writable_dir(str(tmp_path / "new"), need_bytes=1 << 60)
    assert "bytes free but needs about 1,152,921,504,606,846,976" in str(
        info.value
    )


def test_config_differences_ignores_keys_at_any_depth():
    old = {"a": {"dtype": "float32", "units": 4}, "dtype": "float32"}
    new = {"a": {"dtype": "mixed_bfloat16", "units": 8}, "dtype": "x"}
    assert errors.config_differences(old, new, ignore=("dtype",)) == [
        "a.units: 4 -> 8"
    ]
