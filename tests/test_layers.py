"""The package layering (issue 16, docs/extending.md): base -> math -> models/rewards/suites -> losses ->
training/eval -> recipes/report -> toy -> cli. Every import, including those inside functions and
``importlib.import_module("...")`` calls, goes to the same or a lower layer, same-layer packages never import each
other both ways, and importing a layer in a fresh interpreter loads nothing above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS: list[tuple[str, ...]] = [
    ("rtdmd_bench", "registry", "config", "io", "hf", "seeds", "stats", "parallel", "weights", "imaging",
     "tv_shim", "tiny_tokenizers", "published"),          # 0 base
    ("flow", "sampling"),                                  # 1 math
    ("models", "rewards", "suites"),                       # 2 components
    ("losses", "testing"),                                 # 3 losses (and the tiny-weight writer of 2)
    ("training", "eval"),                                  # 4
    ("trainers", "report"),                                # 5 recipes, reporting
    ("toy", "bench"),                                      # 6 (bench: GPU stand-in, GPU benchmark)
    ("cli", "__main__"),                                   # 7
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "rtdmd_bench":
        return None
    return "rtdmd_bench" if len(parts) == 1 or parts[1] == "__version__" else parts[1]


def _sources() -> dict[str, Path]:
    """Unit-qualified module name -> file for every module of the package (trainers/ is rtdmd_bench.trainers)."""
    out = {}
    for base, pkg in ((REPO / "rtdmd_bench", "rtdmd_bench"), (REPO / "trainers", "rtdmd_bench.trainers")):
        for f in base.rglob("*.py"):
            rel = f.relative_to(base).with_suffix("").parts
            out[".".join((pkg, *rel)).removesuffix(".__init__")] = f
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, node.lineno)] + [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.args[0].value, node.lineno))
    return found


def _edges() -> list[tuple[str, str, str]]:
    edges = []
    for module, path in _sources().items():
        src = _unit(module)
        for target, line in _imports(path):
            dst = _unit(target)
            if dst and dst != src and dst in LAYER and not target.startswith(f"rtdmd_bench.{src}."):
                edges.append((src, dst, f"{path.relative_to(REPO)}:{line} imports {target}"))
    return edges


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _sources()}
    assert units <= set(LAYER), f"assign a layer in tests/test_layers.py to {sorted(units - set(LAYER))}"


def test_no_import_goes_up_a_layer():
    up = [where for src, dst, where in _edges() if LAYER[dst] > LAYER[src]]
    assert not up, "imports of a higher layer:\n" + "\n".join(up)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for src, dst, _ in _edges():
        graph.setdefault(src, set()).add(dst)
    both = sorted({tuple(sorted((a, b))) for a, bs in graph.items() for b in bs if a in graph.get(b, set())})
    assert not both, f"packages importing each other: {both}"


@pytest.mark.parametrize("layer", range(len(LAYERS) - 1))
def test_fresh_import_loads_nothing_above(layer):
    mods = [f"rtdmd_bench.{u}" if u != "rtdmd_bench" else u for u in LAYERS[layer] if u != "__main__"]
    code = ("import importlib, json, sys\n"
            f"for m in {mods!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    import json

    loaded = {_unit(m) for m in json.loads(out.stdout)} - {None}
    above = sorted(u for u in loaded if LAYER.get(u, -1) > layer)
    assert not above, f"importing layer {layer} {LAYERS[layer]} loads {above}"


def test_extending_guide_points_at_real_tests():
    """docs/extending.md links each step to the test that enforces it: the files and named tests must exist."""
    import re

    text = (REPO / "docs" / "extending.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(\.\./(tests/[\w/]+\.py)\)", text)
    assert len(links) >= 8
    for rel in links:
        assert (REPO / rel).is_file(), rel
    for rel, names in re.findall(r"\]\(\.\./(tests/[\w/]+\.py)\)\s+`?((?:test_\w+`?,?\s*)+)", text):
        for name in re.findall(r"test_\w+", names):
            assert f"def {name}(" in (REPO / rel).read_text(encoding="utf-8"), (rel, name)
    for module in re.findall(r"`(rtdmd_bench/[\w/]+\.py)`", text):
        assert (REPO / module).is_file(), module
