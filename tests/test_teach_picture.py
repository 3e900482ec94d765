"""The trace as an SVG strip (kleidiref trace --format svg): well-formed XML, drawn from the
trace's own states (so it changes with the data), for every kind of kernel."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from kleidiref import cli
from kleidiref.golden import bundled_golden_dir
from kleidiref.teach import resolve_kernel
from kleidiref.teach.picture import trace_svg
from kleidiref.teach.trace import random_problem, trace, trace_file

NS = "{http://www.w3.org/2000/svg}"


def _svg(name: str, seed: int, *, m: int = 3, n: int = 5, k: int = 6, bl: int = 32) -> str:
    _, kern = resolve_kernel(name, 128)
    if kern.tile_params().m_step == 1:
        m = 1
    lhs, rhs, params = random_problem(kern, m, n, k, seed, bl=bl)
    return trace_svg(trace(kern, lhs, rhs, m, n, k, params, bl=bl))


def _cells(svg: str, step: str) -> list[str]:
    root = ET.fromstring(svg)
    panel = next(g for g in root.iter(f"{NS}g") if g.get("data-step") == step)
    return [r.get("fill", "") for r in panel.iter(f"{NS}rect") if (r.get("class") or "").startswith("cell")]


@pytest.mark.parametrize(
    ("name", "k"),
    [
        ("pf32_gemm", 6),
        ("pf16_gemm", 6),
        ("pqs8_qc8w_gemm", 9),
        ("qp8_f32_qc8w_gemm", 9),
        ("qp8_f32_qc4w_gemm", 9),
        ("qp8_f32_qb4w_gemm", 96),
        ("kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla", 4),
        ("kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm", 20),
    ],
)
def test_svg_parses_and_has_a_panel_per_step(name: str, k: int) -> None:
    svg = _svg(name, 1, k=k)
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    panels = [g.get("data-step") for g in root.iter(f"{NS}g")]
    _, kern = resolve_kernel(name, 128)
    steps = k // 32 if "qb4w" in name else -(-k // kern.get_kr())
    assert panels == [*map(str, range(steps + 1)), "out"]
    assert any((r.get("class") or "") == "lhs" for r in root.iter(f"{NS}rect"))


def test_svg_follows_the_data() -> None:
    """Another seed draws other colours; within one trace, the panels differ step by step and
    the cells a step changed are outlined."""
    a, b = _svg("pf32_gemm", 1), _svg("pf32_gemm", 2)
    assert a != b and _cells(a, "3") != _cells(b, "3")
    assert _cells(a, "1") != _cells(a, "2")
    root = ET.fromstring(a)
    step2 = next(g for g in root.iter(f"{NS}g") if g.get("data-step") == "2")
    changed = [r for r in step2.iter(f"{NS}rect") if (r.get("class") or "") == "cell changed"]
    assert changed and all(r.get("stroke-width") == "2.5" for r in changed)


def test_svg_of_a_golden_file_and_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    path = bundled_golden_dir() / "pf16_gemm_fz__m7_n13_k5_subnormal_products__svl1024.npz"
    t, want = trace_file(path)
    svg = trace_svg(t)
    assert np.array_equal(t.out.view(np.uint16), want.view(np.uint16))
    assert "C[0, 0]" in svg and "output (= run_matmul)" in svg
    assert cli.main(["trace", "pf32_gemm", "--svl", "256", "--k", "4", "--format", "svg"]) == 0
    out = capsys.readouterr().out
    assert ET.fromstring(out).tag == f"{NS}svg"
    assert cli.main(["why", "qp8_f32_qb4w_gemm", "--k", "64", "--element", "1,2", "--format", "svg"]) == 0
    out = capsys.readouterr().out
    assert ET.fromstring(out) is not None and 'stroke="#ffd700"' in out


def test_long_traces_are_sampled() -> None:
    _, kern = resolve_kernel("pf32_gemm", 128)
    lhs, rhs, params = random_problem(kern, 2, 2, 40, 0)
    root = ET.fromstring(trace_svg(trace(kern, lhs, rhs, 2, 2, 40, params), max_panels=6))
    steps = [g.get("data-step") for g in root.iter(f"{NS}g")]
    assert steps[0] == "0" and steps[-2] == "40" and steps[-1] == "out" and len(steps) == 7


def test_where_svg_outlines_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    """The outlined runs are exactly the bytes the text answer names (other element: other runs)."""
    import re

    from kleidiref.teach import where

    def hit_bytes(svg: str) -> set[int]:
        out: set[int] = set()
        for r in ET.fromstring(svg).iter(f"{NS}rect"):
            if r.get("class") == "hit":
                title = r.find(f"{NS}title")
                assert title is not None and title.text is not None
                lo, hi = re.match(r"byte (\d+)\.\.(\d+)", title.text).groups()  # type: ignore[union-attr]
                out |= set(range(int(lo), int(hi) + 1))
        return out

    for el in ((1, 2), (2, 3)):
        kw = {"svl": 128, "m": 3, "n": 5, "k": 4, "element": el}
        text = where("pf32_gemm", **kw)  # type: ignore[arg-type]
        named = {b for lo, hi in re.findall(r"bytes (\d+)\.\.(\d+)", text) for b in range(int(lo), int(hi) + 1)}
        svg = where("pf32_gemm", **kw, fmt="svg")  # type: ignore[arg-type]
        assert named and hit_bytes(svg) == named and text.splitlines()[0] in svg
    assert cli.main(["where", "qp8_f32_qc4w_gemm", "--svl", "256", "--rhs-element", "3,5", "--format", "html"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!DOCTYPE html>") and 'class="hit"' in out
