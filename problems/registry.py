"""The problem and mixture registry (seqio style).

`register()` refuses duplicate names; `get()` raises a `KeyError` that lists
the nearest registered names, so a typo on the command line is easy to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence

from problems import problem as problem_lib

_PROBLEMS: dict[str, problem_lib.Problem] = {}
_MIXTURES: dict[str, Mixture] = {}


@dataclasses.dataclass(frozen=True)
class Mixture:
    """Problems trained together, each with a sampling rate.

    Attributes:
      name: registry name.
      problem_rates: `(problem_name, rate)` pairs; rates are relative weights
        used by `proportional` sampling, as `mixture_rates` gives them to the
        trainer (which may use another scheme instead: uniform, temperature,
        or one worker per task).
    """

    name: str
    problem_rates: tuple[tuple[str, float], ...]

    @property
    def problem_names(self) -> list[str]:
        return [name for name, _ in self.problem_rates]


class UnknownNameError(KeyError):
    """An unknown problem or mixture name; the message lists close names."""

    def __str__(self) -> str:  # KeyError quotes its message; undo that.
        return str(self.args[0]) if self.args else ""


def _check_new(name: str) -> None:
    if name in _PROBLEMS or name in _MIXTURES:
        raise ValueError(f"{name!r} is already registered")


def register(problem: problem_lib.Problem) -> problem_lib.Problem:
    """Registers `problem` under its name and returns it."""
    _check_new(problem.name)
    _PROBLEMS[problem.name] = problem
    return problem


def register_mixture(mixture: Mixture) -> Mixture:
    """Registers `mixture`; every problem it names must be registered."""
    _check_new(mixture.name)
    for name in mixture.problem_names:
        get_problem(name)
    _MIXTURES[mixture.name] = mixture
    return mixture


def _unknown(name: str, kind: str) -> UnknownNameError:
    names = sorted(_PROBLEMS) + sorted(_MIXTURES)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownNameError(
        f"unknown {kind} {name!r}.{hint} Run `t2t-mm-datagen --list_problems` "
        "to see every registered problem and mixture."
    )


def get_problem(name: str) -> problem_lib.Problem:
    """Returns the registered problem `name`."""
    try:
        return _PROBLEMS[name]
    except KeyError:
        raise _unknown(name, "problem") from None


def get_mixture(name: str) -> Mixture:
    """Returns the registered mixture `name`."""
    try:
        return _MIXTURES[name]
    except KeyError:
        raise _unknown(name, "mixture") from None


def get(name: str) -> problem_lib.Problem | Mixture:
    """Returns the problem or mixture registered as `name`."""
    if name in _PROBLEMS:
        return _PROBLEMS[name]
    if name in _MIXTURES:
        return _MIXTURES[name]
    raise _unknown(name, "problem or mixture")


def resolve(
    names: str | Sequence[str | problem_lib.Problem],
) -> list[problem_lib.Problem]:
    """Expands comma-separated problem and mixture names into problems.

    `Problem` values in the list are kept as they are (e.g. a registered
    problem with fewer examples, as the demo's tests use).
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: list[problem_lib.Problem] = []
    for name in names:
        item = name if isinstance(name, problem_lib.Problem) else get(name)
        items = (
            [get_problem(n) for n in item.problem_names]
            if isinstance(item, Mixture)
            else [item]
        )
        out.extend(p for p in items if p not in out)
    return out


def list_problems() -> list[str]:
    """Every registered problem name, sorted."""
    return sorted(_PROBLEMS)


def list_mixtures() -> list[str]:
    """Every registered mixture name, sorted."""
    return sorted(_MIXTURES)


def mixture_rates(names: str | Sequence[str]) -> list[float] | None:
    """The sampling rates of a single mixture, in `resolve(names)` order.

    This is the one place that turns a mixture into training rates: the
    trainer's gin (`runs/train.gin`: `DataConfig.rates`) and the demo both
    call it.

    Args:
      names: what `PROBLEMS` holds: one name, a comma-separated string or a
        list of problem and mixture names.

    Returns:
      When `names` is exactly one mixture: one relative rate per problem of
      `resolve(names)`, in that order (a problem the mixture names twice
      keeps its first rate, as `resolve` keeps its first place); the
      trainer's `proportional` mixing samples by them. None otherwise
      (problems, or several names): the trainer then weighs problems by
      their train-set sizes.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if len(names) != 1 or names[0] not in list_mixtures():
        return None
    rates: dict[str, float] = {}
    for name, rate in get_mixture(names[0]).problem_rates:
        rates.setdefault(name, float(rate))
    return [rates[p.name] for p in resolve(names)]
