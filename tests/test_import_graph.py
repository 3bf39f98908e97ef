"""The import direction of STYLE.md section 1, checked on the source.

Every module under t2t_multimodel/, problems/ and programs/ is parsed with
`ast` (nothing is imported) and each of its imports, at module level or
inside a function, is an arrow to the module it names. Each module has a
layer, and an arrow may only point to the same layer or one below:

    0  bottom: t2t_multimodel.{errors, atomic_write, data, metrics, configs}
    1  t2t_multimodel.layers
    2  t2t_multimodel.modalities
    3  t2t_multimodel.models
    4  t2t_multimodel.{training, decoding, export, t2t_compat, serving}
    5  problems
    6  programs

So the library never imports `problems` or `programs`, `problems` never
imports `programs`, and data/ and metrics/ import no model code. The other
direction holds too: the model code (layers, modalities, models) never
imports data/, since features reach it as tensors. Besides,
the library never imports `gin` or `absl.flags` (its entry points take plain
arguments; the programs own gin and the flags), no module imports a module
by a constant string with `importlib.import_module`, and there is no import
cycle between modules.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("t2t_multimodel", "problems", "programs")

# Module name prefixes and their layers; the longest matching prefix wins.
LAYERS = {
    "t2t_multimodel": 0,  # the package's own __init__
    "t2t_multimodel.errors": 0,
    "t2t_multimodel.atomic_write": 0,
    "t2t_multimodel.data": 0,
    "t2t_multimodel.metrics": 0,
    "t2t_multimodel.configs": 0,
    "t2t_multimodel.layers": 1,
    "t2t_multimodel.modalities": 2,
    "t2t_multimodel.models": 3,
    "t2t_multimodel.training": 4,
    "t2t_multimodel.decoding": 4,
    "t2t_multimodel.export": 4,
    "t2t_multimodel.t2t_compat": 4,
    "t2t_multimodel.serving": 4,
    "problems": 5,
    "programs": 6,
}
LIBRARY_FORBIDDEN = ("gin", "absl.flags")
MODEL_CODE = (
    "t2t_multimodel.layers",
    "t2t_multimodel.modalities",
    "t2t_multimodel.models",
)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[_module_name(path)] = path
    return modules


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, pathlib.Path()).name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module of a `from ... import` (relative ones too)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if _is_package(module) else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, int]]:
    """`(imported module, line)` of every import of `module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                # `from pkg import mod` names the module pkg.mod when it is one.
                full = f"{source}.{alias.name}"
                known = full in MODULES or full in LIBRARY_FORBIDDEN
                found.append((full if known else source, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((f"<string> {node.args[0].value}", node.lineno))
    return found


def _layer(name: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _internal(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def test_every_module_has_a_layer():
    unplaced = [name for name in MODULES if _layer(name) is None]
    assert not unplaced, f"add these to LAYERS: {unplaced}"
    # The table names real packages and modules (no stale entries).
    stale = [p for p in LAYERS if p not in MODULES]
    assert not stale, f"LAYERS names no module: {stale}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    layer = _layer(module)
    is_library = module.split(".")[0] == "t2t_multimodel"
    is_model_code = _under(module, MODEL_CODE)
    bad = []
    for target, line in _imports(module, MODULES[module]):
        where = f"{MODULES[module].relative_to(ROOT)}:{line}"
        if target.startswith("<string>"):
            bad.append(f"{where} imports by string: {target[9:]}")
        elif is_library and _under(target, LIBRARY_FORBIDDEN):
            bad.append(f"{where} imports {target} (library code)")
        elif is_model_code and _under(target, ("t2t_multimodel.data",)):
            bad.append(f"{where} imports {target} (model code)")
        elif _internal(target) and _layer(target) > layer:
            bad.append(
                f"{where} imports {target} (layer {_layer(target)}) from "
                f"layer {layer}"
            )
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {
        module: sorted(
            {t for t, _ in _imports(module, path) if t in MODULES} - {module}
        )
        for module, path in MODULES.items()
    }
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            cycle = stack[stack.index(module) :] + [module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in graph[module]:
            visit(target, stack + [module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_the_checker_sees_an_upward_import(tmp_path):
    """`_imports` and `_layer` flag what the rules forbid."""
    source = tmp_path / "m.py"
    source.write_text(
        "import gin\n"
        "from absl import flags\n"
        "from t2t_multimodel.models import multimodel\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('t2t_multimodel.models.build')\n"
    )
    targets = [t for t, _ in _imports("t2t_multimodel.data.m", source)]
    assert "gin" in targets and "absl.flags" in targets
    assert "t2t_multimodel.models.multimodel" in targets
    assert "<string> t2t_multimodel.models.build" in targets
    assert _layer("t2t_multimodel.models.multimodel") == 3
    assert _layer("t2t_multimodel.data.features") == 0
