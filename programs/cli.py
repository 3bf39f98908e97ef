"""How every program starts: its help text, flags and user-error handling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from absl import app

from t2t_multimodel import errors


def start(
    main: Callable[[list[str]], Any],
    *,
    prog: str,
    doc: str | None,
    define_flags: Callable[[], None],
) -> None:
    """Defines the flags and runs `main` under absl with `run_main`.

    Args:
      main: the program's main(argv).
      prog: the installed command name (for error messages).
      doc: the program module's docstring, shown by --help (absl reads the
        `__main__` module's, which is a generated stub for console scripts).
      define_flags: defines the program's flags.
    """
    sys.modules["__main__"].__doc__ = doc
    define_flags()
    app.run(errors.run_main(main, prog))
