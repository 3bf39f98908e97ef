"""Parameter breakdown of the paper configuration (multimodel_paper.gin).

Building the d = 1536 model (about 2.5e9 parameters with 240 experts per MoE
layer) is too big for a test machine. Every component's parameter count is a
polynomial of degree <= 2 in d (all widths are fixed or proportional to d, and
the expert width EXPERT_DIM equals d in the paper set), so the test builds the
paper structure at small widths, interpolates each component's count exactly,
checks the interpolation on a width it did not use, and evaluates it at 1536.
Run with `-s` to see the table.
"""

from __future__ import annotations

import os
from fractions import Fraction

import gin
import keras
import pytest

from t2t_multimodel.modalities import specs as modality_specs
from t2t_multimodel.models import build

GIN_DIR = os.path.join(
    os.path.dirname(__file__), "..", "..", "t2t_multimodel", "configs", "models"
)
SPECS = (
    modality_specs.SYMBOL,  # the shared 8k vocabulary
    modality_specs.IMAGE,
    modality_specs.AUDIO_SPECTRAL,
    modality_specs.class_label(1000),  # ImageNet
)
FIT_WIDTHS = (8, 16, 24)
CHECK_WIDTH = 32
PAPER_WIDTH = 1536


def _moe_split(moe):
    experts = sum(
        w.numpy().size for w in moe.weights if w.name in ("w_0", "w_1")
    )
    gates = sum(
        w.numpy().size
        for w in moe.trainable_weights
        if w.name not in ("w_0", "w_1")
    )
    return experts, gates


def trainable(layer) -> int:
    """Trainable parameters (SparseMoE also keeps 4 statistics scalars)."""
    return sum(w.numpy().size for w in layer.trainable_weights)


def breakdown(model) -> dict[str, int]:
    """Trainable parameters by component."""
    parts = {
        f"modality {name}": trainable(modality)
        for name, modality in model.modalities.items()
    }
    parts["command token embedding"] = trainable(model.target_space_embedding)
    for name in ("encoder", "decoder"):
        component = getattr(model, name)
        experts, gates = _moe_split(component.moe)
        parts[f"{name} MoE experts"] = experts
        parts[f"{name} MoE gating"] = gates
        parts[f"{name} (rest)"] = trainable(component) - experts - gates
    parts["mixer"] = trainable(model.mixer)
    return parts


def _paper_model(width: int):
    gin.clear_config()
    gin.add_config_file_search_path(GIN_DIR)
    gin.parse_config_files_and_bindings(
        [os.path.join(GIN_DIR, "multimodel_paper.gin")],
        [f"HIDDEN_DIM = {width}", f"EXPERT_DIM = {width}"],
    )
    try:
        keras.utils.set_random_seed(0)
        return gin.get_configurable(build.build_model)(
            modality_specs=list(SPECS)
        )
    finally:
        gin.clear_config()


def _interpolate(points: dict[int, int], x: int) -> int:
    """The polynomial through `points` (Lagrange, exact) evaluated at x."""
    total = Fraction(0)
    for xi, yi in points.items():
        term = Fraction(yi)
        for xj in points:
            if xj != xi:
                term *= Fraction(x - xj, xi - xj)
        total += term
    assert total.denominator == 1
    return int(total)


@pytest.fixture(scope="module")
def counts():
    counts = {}
    for width in (*FIT_WIDTHS, CHECK_WIDTH):
        model = _paper_model(width)
        parts = breakdown(model)
        assert sum(parts.values()) == trainable(model)
        counts[width] = parts
    return counts


def test_paper_breakdown(counts):
    names = list(counts[FIT_WIDTHS[0]])
    paper = {}
    for name in names:
        points = {w: counts[w][name] for w in FIT_WIDTHS}
        # The quadratic through 3 widths predicts the 4th exactly.
        assert _interpolate(points, CHECK_WIDTH) == counts[CHECK_WIDTH][name]
        paper[name] = _interpolate(points, PAPER_WIDTH)
    d, vocab, experts = PAPER_WIDTH, 8192, 240
    # Hand-computed checks of the closed-form parts.
    assert paper["modality symbol"] == 3 * vocab * d
    assert paper["command token embedding"] == 32 * d
    for name in ("encoder", "decoder"):
        assert paper[f"{name} MoE experts"] == experts * 2 * d * d
        assert paper[f"{name} MoE gating"] == 2 * d * experts
    total = sum(paper.values())
    print(f"\nmultimodel_paper.gin parameters (d = {d}, 8k vocabulary):")
    for name, value in sorted(paper.items(), key=lambda kv: -kv[1]):
        print(f"  {name:32s} {value:>15,d} {100 * value / total:6.2f}%")
    print(f"  {'total':32s} {total:>15,d}")
    assert total == 2_529_982_596
