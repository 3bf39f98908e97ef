"""Registry look-ups the trainer's gin configuration needs.

The training library takes problem values and plain rates, never names
(STYLE.md section 1); `gin/runs/train.gin` resolves `PROBLEMS` with
`registry.resolve` and the sampling rates with `mixture_rates` below.
"""

from __future__ import annotations

from collections.abc import Sequence

from problems import registry


def mixture_rates(names: str | Sequence[str]) -> list[float] | None:
    """The rates of a single mixture, in `registry.resolve(names)` order.

    Args:
      names: what `PROBLEMS` holds: one name, a comma-separated string or a
        list of problem and mixture names.

    Returns:
      The mixture's relative rates when `names` is exactly one mixture (for
      `proportional` sampling, as its author set them); None otherwise, and
      the trainer then weighs problems by their train-set sizes.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if len(names) != 1 or names[0] not in registry.list_mixtures():
        return None
    rates: dict[str, float] = {}
    for name, rate in registry.get_mixture(names[0]).problem_rates:
        rates.setdefault(name, float(rate))
    return [rates[p.name] for p in registry.resolve(names)]
