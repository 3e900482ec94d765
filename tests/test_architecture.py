"""The package's shape, checked so it cannot drift (docs/architecture.md).

* every module imports only from its own layer or below (the layer table below is the one in
  docs/architecture.md), and the top-level groups form no cycle;
* no private name (``_x``) is imported from another module of the package;
* no module is longer than about 800 lines unless its docstring says why (a ``Long module:`` line).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "kleidiref"

#: Layer of each top-level group of the package, lowest first. A group may import groups of
#: its own layer or below.
LAYERS: dict[str, int] = {
    # 0: foundations: memory limit, byte buffers, targets (CPU, SVL), the named numeric steps
    "limits": 0,
    "validate": 0,
    "_buffers": 0,
    "targets": 0,
    "numerics": 0,
    # 1: quantization schemes, the vectorized K-loop engine, convolution geometry
    "quant": 1,
    "_engine": 1,
    "conv": 1,
    # 2: the KleidiAI mirror (kai/) and XNNPACK's generic kernels (fallbacks/)
    "kai": 2,
    "fallbacks": 2,
    # 3: XNNPACK's gemm-config choices as data
    "configs": 3,
    # 4: the friendly per-variant API
    "variants": 4,
    # 5: which config and kernel runs a node, and why
    "dispatch": 5,
    # 6: running a node; the golden-vector harness
    "ops": 6,
    "golden": 6,
    # 7: tools built on everything below
    "testing": 7,
    "conformance": 8,
    "pte": 7,
    "teach": 7,
    "inspection": 8,
    "runner": 8,
    "sweep": 8,
    "kernel": 7,  # compatibility alias of kai's interface and registry
    # 9: entry points
    "cli": 9,
    "__main__": 9,
    "__init__": 9,
}

#: Imports that go up a layer on purpose, with the reason.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module(p: Path) -> str:
    parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(p: Path) -> list[tuple[str, str]]:
    """(imported module, imported name) for every ``from kleidiref... import`` in the file."""
    mod = _module(p)
    pkg = mod if p.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "kleidiref" or target.startswith("kleidiref."):
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    is_module = (PKG.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (
                        PKG.parent / Path(*sub.split("."))
                    ).is_dir()
                    out.append((sub, "") if is_module else (target, alias.name))
        elif isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names if a.name.startswith("kleidiref")]
    return out


FILES = sorted(PKG.rglob("*.py"))


def test_every_group_has_a_layer() -> None:
    groups = {_group(_module(p)) for p in FILES}
    assert groups <= set(LAYERS), f"add {sorted(groups - set(LAYERS))} to LAYERS and docs/architecture.md"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_go_down(path: Path) -> None:
    me = _group(_module(path))
    for target, _ in _imports(path):
        other = _group(target)
        if other == me or (me, other) in EXCEPTIONS:
            continue
        assert LAYERS.get(other, 99) <= LAYERS.get(me, -1), (
            f"{_module(path)} (layer {LAYERS.get(me)}) imports {target} (layer {LAYERS.get(other)})"
        )


def test_groups_form_no_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for p in FILES:
        me = _group(_module(p))
        for target, _ in _imports(p):
            other = _group(target)
            if other != me and (me, other) not in EXCEPTIONS:
                edges[me].add(other)
    state: dict[str, int] = {}

    def visit(g: str, path: list[str]) -> None:
        state[g] = 1
        for h in sorted(edges[g]):
            assert state.get(h) != 1, f"import cycle: {' -> '.join([*path, g, h])}"
            if h not in state:
                visit(h, [*path, g])
        state[g] = 2

    for g in sorted(edges):
        if g not in state:
            visit(g, [])


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_private_name_crosses_modules(path: Path) -> None:
    mine = _module(path)
    for target, name in _imports(path):
        if name.startswith("_") and not name.startswith("__") and target != mine:
            pytest.fail(f"{mine} imports the private name {name} from {target}")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_long_modules_say_why(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count("\n") > 800:
        doc = ast.get_docstring(ast.parse(text)) or ""
        assert "Long module:" in doc, f"{path.name}: over 800 lines; split it or say why in its docstring"
