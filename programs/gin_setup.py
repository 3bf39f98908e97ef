"""The one gin set-up of the programs: shipped gin files, parsing, checks.

The gin files ship inside the package (`t2t_multimodel/configs/`, found with
`importlib.resources`), so every program finds them when installed, from any
folder. A `--gin_file` name is resolved here, before gin sees it, in this
order: a path that exists (relative to the working directory, or absolute),
then each `--gin_search_paths` directory, then the shipped tree and its
`models/`, `runs/` and `experiments/` folders; gin is handed the absolute
path. The shipped files include each other by package path
(`include 't2t_multimodel/configs/runs/train.gin'`), which gin's own
Python-path reader resolves through the installed package, so no include
depends on the working directory and nothing in gin is patched. The shipped
folders are also added as gin search paths so that users' own gin files with
the short includes of earlier releases (`include 'runs/train.gin'`) keep
working.

A binding of an UPPER_SNAKE macro that no gin file defines (a misspelt
`HIDEN_DIM = 16`) is an error naming the nearest defined macros: gin itself
would define a new, unused macro and the run would silently train with the
default.
"""

from __future__ import annotations

import difflib
import importlib.resources
import logging
import os
import re
from collections.abc import Sequence

from t2t_multimodel import errors

# The shipped folders searched for short names, after the user's paths.
_SUBDIRS = ("", "models", "runs", "experiments")
_MACRO_BINDING = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s*=")


def configs_dir() -> str:
    """The directory of the gin files shipped in the package."""
    return str(importlib.resources.files("t2t_multimodel") / "configs")


def search_paths(extra: Sequence[str] = ()) -> list[str]:
    """The user's search paths, then the shipped gin folders."""
    root = configs_dir()
    return [*extra, *(os.path.join(root, sub) for sub in _SUBDIRS)]


def shipped_files() -> list[str]:
    """Every shipped gin file, relative to the configs directory."""
    root = configs_dir()
    names = []
    for directory, _, files in os.walk(root):
        for name in files:
            if name.endswith(".gin"):
                path = os.path.join(directory, name)
                names.append(os.path.relpath(path, root))
    return sorted(names)


def resolve_file(name: str, paths: Sequence[str]) -> str:
    """The absolute path of gin file `name` (see the module docstring).

    Raises:
      errors.ConfigError: no such file; names the nearest shipped files.
    """
    if os.path.isfile(name):
        return os.path.abspath(name)
    for directory in paths:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return os.path.abspath(path)
    if os.path.isdir(name):
        raise errors.ConfigError(f"gin file {name} is a directory.")
    shipped = shipped_files()
    near = difflib.get_close_matches(name, shipped, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise errors.ConfigError(
        f"gin file {name} not found (searched the working directory and "
        f"{', '.join(map(os.path.normpath, paths))}).{hint} Shipped files: "
        "t2t-mm-trainer --helpfull lists none; see README's gin table or "
        f"{configs_dir()}."
    )


class _GinLookupNoise(logging.Filter):
    """Drops gin's "Path not found" records of a normal search.

    gin's Python-path reader logs an ERROR for every search-path prefix where
    a short include name is not a package resource, although the search then
    goes on and finds the file; a newcomer reads those lines as failures.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.ERROR
            and str(record.msg).startswith("Path not found:")
            and record.module == "resource_reader"
        )


_NOISE_FILTER = _GinLookupNoise()


def _defined_macros(gin) -> list[str]:
    names = set()
    for line in gin.config_str().splitlines():
        match = _MACRO_BINDING.match(line)
        if match:
            names.add(match.group(1))
    return sorted(names)


def _is_macro(gin, name: str) -> bool:
    try:
        gin.query_parameter(f"{name}/macro.value")
    except ValueError:
        return False
    return True


def check_macro_bindings(gin, bindings: Sequence[str]) -> None:
    """Raises if a binding sets an UPPER_SNAKE macro no gin file defines.

    Call after the files are parsed and before the bindings are.

    Raises:
      errors.ConfigError: names the unknown macro and the nearest ones.
    """
    for binding in bindings:
        for line in binding.splitlines():
            match = _MACRO_BINDING.match(line)
            if not match or _is_macro(gin, match.group(1)):
                continue
            name = match.group(1)
            known = _defined_macros(gin)
            near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = (
                f"did you mean {', '.join(near)}?"
                if near
                else f"defined macros: {', '.join(known)}."
            )
            raise errors.ConfigError(
                f"gin binding {line.strip()!r} sets macro {name}, which no "
                f"gin file of this run defines (it would be ignored); {hint}"
            )


def parse(
    files: Sequence[str],
    bindings: Sequence[str] = (),
    *,
    extra_search_paths: Sequence[str] = (),
    program_bindings: Sequence[str] = (),
) -> list[str]:
    """Parses gin `files` and `bindings` as every program does.

    Args:
      files: gin file names or paths (see the module docstring).
      bindings: the user's `--gin_bindings` (macros are checked).
      extra_search_paths: the user's `--gin_search_paths`.
      program_bindings: bindings the program sets from its own flags
        (`DATA_DIR`, `MODEL_DIR`, ...); applied after the user's.

    Returns:
      The absolute paths of the parsed files.

    Raises:
      errors.ConfigError: a missing file, a syntax error, an unknown
        configurable or macro, or a `%gin.REQUIRED` value left unset.
    """
    import gin

    logging.getLogger().addFilter(_NOISE_FILTER)
    paths = search_paths(extra_search_paths)
    for path in paths:  # For the short includes of users' own files.
        gin.add_config_file_search_path(path)
    resolved = [resolve_file(name, paths) for name in files]
    with errors.gin_config_errors(resolved, paths):
        gin.parse_config_files_and_bindings(
            resolved, None, finalize_config=False
        )
        check_macro_bindings(gin, bindings)
        gin.parse_config_files_and_bindings(
            None, [*bindings, *program_bindings]
        )
    return resolved


def flag_bindings(values: Sequence[tuple[str, object]]) -> list[str]:
    """`MACRO = repr(value)` for each (macro, value) whose value is set."""
    return [
        f"{name} = {value!r}" for name, value in values if value is not None
    ]


def write_operative_config(model_dir: str) -> None:
    """Writes gin's operative config to `model_dir/operative_config.gin`."""
    import gin

    from t2t_multimodel import atomic_write

    atomic_write.write_text(
        os.path.join(model_dir, "operative_config.gin"),
        gin.operative_config_str(),
    )
