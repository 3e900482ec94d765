"""docs/sme-tiling.md's pictures and listings are what docs/make_sme_tiling_figures.py writes today."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sme_tiling_figures", DOCS / "make_sme_tiling_figures.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_figures_are_up_to_date() -> None:
    figures = _script().figures()
    stale = [n for n, text in figures.items() if (DOCS / "sme-tiling" / n).read_text(encoding="utf-8") != text]
    assert not stale, f"regenerate with: PYTHONPATH=. python docs/make_sme_tiling_figures.py ({stale})"
    on_disk = {p.name for p in (DOCS / "sme-tiling").iterdir()}
    assert on_disk == set(figures), "docs/sme-tiling/ holds files the script does not write"


def test_tutorial_links_resolve() -> None:
    text = (DOCS / "sme-tiling.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\((sme-tiling/[^)]+)\)", text))
    assert links and all((DOCS / link).exists() for link in links)
    assert links == {f"sme-tiling/{n}" for n in _script().figures()}, "every figure is shown or linked once"
    assert "spec" not in text.lower().replace("specific", "")
