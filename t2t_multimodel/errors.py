"""User errors of the command-line tools: one paragraph, no traceback.

Every `bin/` script runs its `main` through `run_main`: an exception that a
user causes and fixes (an unknown problem name, a bad gin file or binding,
missing raw data or shards, a shard or vocabulary that does not fit, a
`model_dir` without a checkpoint or with one of another configuration, an
unwritable or full output directory, a rejected serving request) is printed
as one paragraph, `<prog>: error: <what is wrong and what to do>`, and the
script exits with `EXIT_USER_ERROR`; anything else is a bug and keeps its
Python traceback. The user-error types are the `UserError` classes below and
those listed in `_KNOWN_USER_ERRORS` (looked up in `sys.modules`, so this
module imports neither TensorFlow nor the modules that define them).
`gin_config_errors` turns gin's parse errors into `ConfigError`s that name
the file, line and bad name (no gin import: the library never imports gin).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tokenize
from collections.abc import Callable, Iterator, Sequence
from typing import Any

EXIT_USER_ERROR = 1
# 128 + SIGTERM: a run stopped by SIGTERM after saving a checkpoint.
EXIT_TERMINATED = 143
EXIT_INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C).


class UserError(Exception):
    """An error the user fixes; printed as one paragraph without traceback."""


class ConfigError(UserError, ValueError):
    """A gin file or binding that cannot be parsed or applied."""


class NotWritableError(UserError, OSError):
    """An output directory cannot be written (permissions or a full disk)."""


class IncompatibleCheckpointError(UserError, ValueError):
    """A `model_dir` holds a run of another model configuration."""


# (module, class name) of the user errors defined elsewhere in the project.
_KNOWN_USER_ERRORS = (
    ("problems.registry", "UnknownNameError"),
    ("problems.problem", "MissingDataError"),
    ("t2t_multimodel.data.pipeline", "MissingShardsError"),
    ("t2t_multimodel.data.pipeline", "ShardMismatchError"),
    ("t2t_multimodel.decoding.restore", "ModelDirError"),
    ("t2t_multimodel.serving.served_model", "ModelInputError"),
    ("t2t_multimodel.training.runner", "NonFiniteLossError"),
    ("t2t_multimodel.t2t_compat.checkpoint_import", "T2TImportError"),
)
# TensorFlow op errors caused by the data a user gave (corrupt shards, bad
# image or WAV bytes); matched by class name so TF is not imported here.
_TF_USER_ERRORS = ("InvalidArgumentError", "DataLossError", "NotFoundError")
_TF_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node .*|<stack traces unavailable>"
    r"|\s+File .*|\s*\[\[\{\{node .*|Stack trace for op definition.*)$"
)
_TF_SUFFIX = re.compile(
    r"\s*(\[\[\{\{node [^]]*\}\}\]\]|\[Op:[^]]*\]"
    r"|\{\{function_node [^}]*\}\})\s*"
)


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types printed without a traceback (see module doc)."""
    types: list[type[BaseException]] = [UserError, FileExistsError]
    for module_name, class_name in _KNOWN_USER_ERRORS:
        module = sys.modules.get(module_name)
        error = getattr(module, class_name, None) if module else None
        if isinstance(error, type):
            types.append(error)
    return tuple(types)


def _is_tf_user_error(error: BaseException) -> bool:
    module = type(error).__module__ or ""
    return (
        module.startswith("tensorflow")
        and type(error).__name__ in _TF_USER_ERRORS
    )


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is printed as a user error (no traceback)."""
    return isinstance(error, user_error_types()) or _is_tf_user_error(error)


def condense_message(message: str) -> str:
    """One paragraph: TF's node markers and stack lines dropped, lines joined.

    E.g. TF's "Graph execution error:\\n\\nDetected at node ...\\nCorrupt
    shard x [[{{node ...}}]]" becomes "Corrupt shard x".
    """
    lines = [line for line in message.splitlines() if line.strip()]
    kept = [_TF_SUFFIX.sub("", line).strip() for line in lines]
    kept = [
        k for k, line in zip(kept, lines) if k and not _TF_NOISE.match(line)
    ]
    text = " ".join(kept) if kept else message.strip()
    text = condense_assert(text)
    # Gin appends "In call to configurable 'f' (<function f at 0x...>)":
    # bookkeeping of the program, not something the user can act on.
    text = re.sub(r" \(<(function|class) [^>]*>\)", "", text)
    text = re.sub(r"\s*In call to configurable '[^']*'\s*$", "", text)
    return re.sub(r"\s+", " ", text)


def condense_assert(text: str) -> str:
    """A `tf.debugging.Assert` message as plain text; others unchanged.

    "...: assertion failed: [Bad request: x at batch positions] [1 2] [are
    empty] [[Node]]" -> "Bad request: x at batch positions 1 2 are empty"
    (what precedes is TF's iterator and function bookkeeping).
    """
    if "assertion failed: " not in text:
        return text
    text = text.split("assertion failed: ", 1)[1]
    text = re.sub(r"\[\[[^]]*\]\]", "", text)
    return re.sub(r"\[([^][]*)\]", r"\1", text).strip()


def format_user_error(prog: str, error: BaseException) -> str:
    """`<prog>: error: <message>` in one paragraph."""
    # TF op errors keep their text in `message`; `str` adds a node trace.
    message = getattr(error, "message", None) or str(error)
    return f"{prog}: error: {condense_message(message)}"


def run_main(
    main: Callable[[list[str]], Any], prog: str | None = None
) -> Callable[[list[str]], Any]:
    """`main` for `absl.app.run` that prints user errors as one paragraph.

    A user error (`is_user_error`) goes to stderr as `format_user_error`
    and the process exits with `EXIT_USER_ERROR`; Ctrl-C exits with
    `EXIT_INTERRUPTED` and a one-line message; every other exception
    propagates with its traceback (it is a bug to report).
    """
    prog = prog or os.path.basename(sys.argv[0])

    def wrapped(argv: list[str]) -> Any:
        try:
            return main(argv)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as e:  # noqa: BLE001  (re-raised unless a user's)
            if not is_user_error(e):
                raise
            print(format_user_error(prog, e), file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    return wrapped


def _resolve(name: str, search_paths: Sequence[str]) -> str | None:
    if os.path.isfile(name):
        return name
    for directory in search_paths:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _untokenizable(path: str) -> str | None:
    """`path:line: reason` if Python's tokenizer (gin's) rejects the file."""
    try:
        with open(path, encoding="utf-8") as f:
            for _ in tokenize.generate_tokens(f.readline):
                pass
    except (tokenize.TokenError, SyntaxError) as e:
        reason = e.args[0] if e.args else str(e)
        where = e.args[1][0] if len(e.args) > 1 else "?"
        return f"{path}, line {where}: {reason}"
    return None


def _describe_gin_error(
    error: BaseException, files: Sequence[str], search_paths: Sequence[str]
) -> str:
    message = str(error)
    if isinstance(error, OSError) and "Unable to open file" in message:
        name = message.split("Unable to open file:", 1)[1].split(". ")[0]
        return (
            f"gin file {name.strip()} not found (searched the working "
            "directory and "
            f"{', '.join(map(os.path.normpath, search_paths)) or 'nothing'}); "
            "pass a path or a name of a shipped gin file (models/, runs/, "
            "experiments/)."
        )
    if "set to `%gin.REQUIRED` but not subsequently overridden" in message:
        binding = message.split(" set to", 1)[0].strip()
        what = binding
        if binding.endswith("/macro.value"):  # How gin names a macro.
            binding = binding[: -len("/macro.value")]
            what = f"gin macro {binding}"
        return (
            f"{what} is %gin.REQUIRED but no gin file or binding sets it; "
            f'add e.g. --gin_bindings="{binding} = ..." (macros such as '
            "DATA_DIR and MODEL_DIR are set by the flags of the same name)."
        )
    if isinstance(error, TypeError) and "not NoneType" in message:
        # gin's Python-path reader looks for `include 'runs/x.gin'` in a
        # package `runs`; a plain directory of that name on sys.path is a
        # namespace package without a file, and gin fails with a TypeError.
        heads = re.findall(r"include '([^'/]+)/", message)
        shadows = [
            os.path.join(p or ".", h)
            for h in heads
            for p in sys.path
            if os.path.isdir(os.path.join(p or ".", h))
        ]
        where = ", ".join(shadows) or "a directory on the Python path"
        include = message.splitlines()[-1].strip()
        return (
            f"gin could not resolve an include ({include}): {where} "
            "shadows the gin directory of that name "
            "(gin also searches Python packages). Rename that directory or "
            "remove its parent from PYTHONPATH."
        )
    if isinstance(error, (tokenize.TokenError, SyntaxError)):
        for name in files:
            path = _resolve(name, search_paths)
            found = _untokenizable(path) if path else None
            if found:
                return f"gin syntax error in {found}."
        return f"gin syntax error in a binding or included file: {message}"
    if "No bindings specified for" in message and "gin.macro" in message:
        macro = message.split("'", 2)[1].split("/")[0]
        return (
            f"gin macro %{macro} is used but never defined; define it in a "
            f'gin file or add --gin_bindings="{macro} = ..."'
        )
    return f"bad gin configuration: {message}"


@contextlib.contextmanager
def gin_config_errors(
    files: Sequence[str] = (),
    search_paths: Sequence[str] = (),
) -> Iterator[None]:
    """Raises gin parse errors in the block as one-paragraph `ConfigError`s.

    Wrap the `gin.parse_config_files_and_bindings` call (not the training:
    errors there may be bugs). Gin's own messages already hold "In file F,
    line N" and the bad name; this adds the file of a syntax error (Python's
    tokenizer, which gin uses, reports only the line), the search path of a
    file not found and the flag that fixes a missing `%gin.REQUIRED` value.

    Args:
      files: the gin files given (to find the one with a syntax error).
      search_paths: the directories gin searches for them.
    """
    try:
        yield
    except (
        ValueError,
        OSError,
        SyntaxError,
        TypeError,
        tokenize.TokenError,
    ) as e:
        if isinstance(e, UserError):
            raise
        raise ConfigError(_describe_gin_error(e, files, search_paths)) from e


def ensure_writable_dir(
    directory: str, need_bytes: int = 0, need_for: str = ""
) -> None:
    """Creates `directory`, checks it is writable and has `need_bytes` free.

    Run before the slow work (building a model, tracing a step), so that an
    unwritable or full output directory fails in seconds, not at the first
    checkpoint. A one-byte probe file is written, flushed and removed.

    Args:
      directory: the output directory (created with its parents).
      need_bytes: the free bytes the work needs.
      need_for: what those bytes are for, e.g. "6 checkpoints of this model"
        (said in the message).

    Raises:
      NotWritableError: naming the directory, the OS error or the free and
        needed bytes.
    """
    probe = os.path.join(directory, f".write_probe_{os.getpid()}")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotWritableError(
            f"cannot write to {directory}: it is a file, not a directory. "
            "Choose a directory (it is created if missing)."
        )
    try:
        os.makedirs(directory, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0")
            f.flush()
            os.fsync(f.fileno())
        free = shutil.disk_usage(directory).free
    except OSError as e:
        raise NotWritableError(
            f"cannot write to {directory}: {e.strerror or e}. Choose a "
            "writable directory with free space."
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)
    if free < need_bytes:
        what = f" ({need_for})" if need_for else ""
        raise NotWritableError(
            f"{directory} has {free:,} bytes free but needs about "
            f"{need_bytes:,}{what}. Free some space or choose another "
            "directory."
        )


def config_differences(
    old: Any,
    new: Any,
    path: str = "",
    limit: int = 8,
    ignore: Sequence[str] = (),
) -> list[str]:
    """Where two JSON values differ: `path: old -> new`, at most `limit`.

    Dict keys named in `ignore` are skipped at any depth.
    """
    out: list[str] = []
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if len(out) >= limit:
                break
            if key in ignore:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{sub}: absent -> {new[key]!r}")
            elif key not in new:
                out.append(f"{sub}: {old[key]!r} -> absent")
            else:
                out += config_differences(
                    old[key], new[key], sub, limit - len(out), ignore
                )
    elif (
        isinstance(old, list)
        and isinstance(new, list)
        and (len(old) == len(new))
    ):
        for i, (a, b) in enumerate(zip(old, new)):
            out += config_differences(
                a, b, f"{path}[{i}]", limit - len(out), ignore
            )
            if len(out) >= limit:
                break
    elif old != new:
        out.append(f"{path or '<root>'}: {old!r} -> {new!r}")
    return out[:limit]


_CKPT_PREFIX = "model/weights/"
_CKPT_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def _unescape(name: str) -> str:
    # TF's object-graph escaping of dict keys: "/" -> ".S", "." -> "..".
    out, i = [], 0
    while i < len(name):
        if name[i] == "." and i + 1 < len(name):
            out.append("/" if name[i + 1] == "S" else name[i + 1])
            i += 2
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def checkpoint_weight_shapes(
    variables: Sequence[tuple[str, Sequence[int]]],
) -> dict[str, tuple[int, ...]]:
    """Weight path -> shape of a trainer checkpoint's `model` weights.

    Args:
      variables: `tf.train.list_variables(checkpoint)`.
    """
    shapes = {}
    for name, shape in variables:
        if name.startswith(_CKPT_PREFIX) and name.endswith(_CKPT_SUFFIX):
            key = _unescape(name[len(_CKPT_PREFIX) : -len(_CKPT_SUFFIX)])
            shapes[key] = tuple(int(d) for d in shape)
    return shapes


def describe_weight_mismatch(
    expected: dict[str, tuple[int, ...]],
    found: dict[str, tuple[int, ...]],
    limit: int = 4,
) -> str:
    """What differs between a model's weight shapes and a checkpoint's."""

    def some(names: list[str]) -> str:
        more = f", ... ({len(names)} in all)" if len(names) > limit else ""
        return ", ".join(names[:limit]) + more

    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    shapes = [
        f"{k} {list(found[k])} in the checkpoint, {list(expected[k])} in the "
        "model"
        for k in sorted(set(expected) & set(found))
        if tuple(expected[k]) != tuple(found[k])
    ]
    parts = []
    if shapes:
        parts.append(f"shapes differ: {some(shapes)}")
    if missing:
        parts.append(f"not in the checkpoint: {some(missing)}")
    if extra:
        parts.append(f"only in the checkpoint: {some(extra)}")
    return "; ".join(parts) or "the weight names and shapes agree"
