"""Compares two demo runs: are their figures and weights identical?

`python3 -m programs.demo_compare RUN1 RUN2` (what
`scripts/demo_reproducible.sh` calls) reads both runs' `eval_results.json`
and latest checkpoints and prints every difference: figures of the
trainer's dev evaluations and of the export's scores on the whole dev
splits (their metrics, baselines, checks and decoded samples), and the
weights of the final checkpoint, bit for bit (the largest absolute
difference per differing variable). Wall-clock timings and the runs' own
paths are not figures and are skipped. Exits 0 when nothing differs,
1 otherwise.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

# Keys of eval_results.json that differ between two identical runs.
_NOT_FIGURES = frozenset(
    {"timings_s", "export_dir", "model_dir", "training_curves"}
)


def _walk(a: Any, b: Any, path: str) -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if path == "" and key in _NOT_FIGURES:
                continue
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                yield f"{where}: only in run {'1' if key in a else '2'}"
            else:
                yield from _walk(a[key], b[key], where)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _walk(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        if a != b and not (math.isnan(a) and math.isnan(b)):
            yield f"{path}: {a!r} vs {b!r}"
    elif a != b:
        yield f"{path}: {a!r} vs {b!r}"


def results_differences(run1: str, run2: str) -> list[str]:
    """Differences between the figures of two runs' `eval_results.json`."""
    results = []
    for run in (run1, run2):
        with open(os.path.join(run, "eval_results.json")) as f:
            results.append(json.load(f))
    return list(_walk(results[0], results[1], ""))


def weight_differences(run1: str, run2: str) -> list[str]:
    """Variables of the two runs' latest checkpoints that are not equal."""
    import numpy as np
    import tensorflow as tf

    readers = []
    for run in (run1, run2):
        path = tf.train.latest_checkpoint(os.path.join(run, "model"))
        if path is None:
            return [f"{run}/model: no checkpoint"]
        readers.append(tf.train.load_checkpoint(path))
    shapes = [r.get_variable_to_shape_map() for r in readers]
    out = [
        f"{name}: only in run {'1' if name in shapes[0] else '2'}"
        for name in sorted(set(shapes[0]) ^ set(shapes[1]))
    ]
    for name in sorted(set(shapes[0]) & set(shapes[1])):
        x, y = (np.asarray(r.get_tensor(name)) for r in readers)
        if x.shape != y.shape:
            out.append(f"{name}: shape {x.shape} vs {y.shape}")
        elif not np.array_equal(x, y):
            if x.dtype.kind in "fc":
                diff = np.max(np.abs(x.astype(np.float64) - y))
                out.append(f"{name}: max |difference| {diff:.3g}")
            else:
                out.append(f"{name}: differs")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(
            "usage: python3 -m programs.demo_compare RUN1 RUN2",
            file=sys.stderr,
        )
        return 2
    figures = results_differences(*args)
    weights = weight_differences(*args)
    for title, lines in (("figures", figures), ("weights", weights)):
        verdict = f"{len(lines)} differ" if lines else "identical"
        print(f"{title}: {verdict}")
        for line in lines[:50]:
            print(f"  {line}")
        if len(lines) > 50:
            print(f"  ... and {len(lines) - 50} more")
    return 0 if not (figures or weights) else 1


if __name__ == "__main__":
    sys.exit(main())
