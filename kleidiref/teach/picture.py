"""The trace as a static picture: one SVG strip of panels, one per recorded k step.

Each panel is the accumulator after that step as a heat map (red positive, blue negative, on one
scale for all the accumulator panels; grey NaN), each cell framed in its ZA tile's (or
accumulator vector's) colour, thick where the step changed it; beside it the step's operands:
the LHS columns it read (one narrow column per k, left) and the RHS rows (one short row per k,
top), each on its own scale. The last panel is the output, on its own scale. Every number comes
from the :class:`~kleidiref.teach.trace.Trace` (the kernels' own stages); each cell's exact value
and bits are its tooltip.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .explain import operand_values, value_text
from .trace import Trace, instruction, za_position

__all__ = ["trace_svg"]

_CELL = 14
_OP = 5  # pixels per k of an operand strip
_TILE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def _colour(v: float, vmax: float) -> str:
    """Diverging heat colour of ``v`` on [-vmax, vmax] (NaN grey, infinities saturated)."""
    if math.isnan(v):
        return "#999999"
    t = 1.0 if math.isinf(v) else min(1.0, abs(v) / vmax) if vmax > 0 else 0.0
    fade = round(255 * (1.0 - 0.85 * t))
    return f"#ff{fade:02x}{fade:02x}" if v > 0 else f"#{fade:02x}{fade:02x}ff" if v < 0 else "#ffffff"


def _vmax(arrays: list[NDArray[Any]]) -> float:
    vals = np.concatenate([np.asarray(a, np.float64).reshape(-1) for a in arrays])
    finite = np.abs(vals[np.isfinite(vals)])
    return float(finite.max()) if finite.size else 1.0


def _shown_steps(t: Trace, max_panels: int) -> list[int]:
    """Indices into ``t.recorded``: all of them, or an even spread keeping the first and last."""
    n = len(t.recorded)
    if n <= max_panels:
        return list(range(n))
    picks = np.linspace(0, n - 1, max_panels).round().astype(int)
    return sorted(set(int(p) for p in picks))


class _Strip:
    """Panels laid out left to right, ``per_line`` to a line."""

    def __init__(self, t: Trace, rows: int, cols: int, kshow: int, per_line: int) -> None:
        self.t, self.rows, self.cols, self.kshow, self.per_line = t, rows, cols, kshow, per_line
        self.pw = 20 + kshow * _OP + 6 + cols * _CELL + 16
        self.ph = 34 + kshow * _OP + 6 + rows * _CELL + 10
        self.parts: list[str] = []

    def origin(self, index: int, y0: int) -> tuple[int, int]:
        line, col = divmod(index, self.per_line)
        return 8 + col * self.pw, y0 + line * self.ph

    def panel(
        self,
        index: int,
        y0: int,
        title: str,
        grid: NDArray[Any],
        scales: tuple[float, float, float],
        extra: dict[str, Any],
    ) -> None:
        x, y = self.origin(index, y0)
        t, kshow = self.t, self.kshow
        self.parts.append(f'<g class="panel" data-step="{extra.get("step", "out")}">')
        self.parts.append(f'<text x="{x}" y="{y + 12}" font-weight="bold">{html.escape(title)}</text>')
        gx, gy = x + 20 + kshow * _OP + 6, y + 34 + kshow * _OP + 6
        ops = extra.get("ops")
        if ops is not None:
            self._operands(ops, x + 20, y + 34, gx, gy, (scales[1], scales[2]))
        prev = extra.get("prev")
        for i in range(self.rows):
            for j in range(self.cols):
                v = grid[i, j]
                tile = za_position(t.kernel, i, j).tile % len(_TILE)
                changed = prev is not None and not _same(prev[i, j], v)
                width = 2.5 if changed else 1
                stroke = f' stroke="{_TILE[tile]}" stroke-width="{width}"'
                mark = extra.get("mark")
                if mark == (i, j):
                    stroke = ' stroke="#ffd700" stroke-width="3"'
                tip = f"C[{i}, {j}] {value_text(v)}; {za_position(t.kernel, i, j).text}"
                sums = extra.get("sums")
                if sums is not None:
                    tip += f"; this block's int32 sum in ZA: {value_text(sums[i, j])}"
                tip = html.escape(tip)
                self.parts.append(
                    f'<rect class="cell{" changed" if changed else ""}" x="{gx + j * _CELL}" y="{gy + i * _CELL}" '
                    f'width="{_CELL - 1}" height="{_CELL - 1}" fill="{_colour(float(v), scales[0])}"{stroke}>'
                    f"<title>{tip}</title></rect>"
                )
        self.parts.append("</g>")

    def _operands(
        self,
        ops: tuple[NDArray[Any], NDArray[Any], int, int],
        x: int,
        y: int,
        gx: int,
        gy: int,
        vmax: tuple[float, float],
    ) -> None:
        a, w, k0, k1 = ops
        for kk in range(k0, min(k1, k0 + self.kshow)):
            c = kk - k0
            for i in range(self.rows):
                v = float(a[i, kk]) if kk < a.shape[1] else 0.0
                tip = html.escape(f"LHS (m {i}, k {kk}) = {v:g}")
                self.parts.append(
                    f'<rect class="lhs" x="{x + c * _OP}" y="{gy + i * _CELL}" width="{_OP - 1}" height="{_CELL - 1}" '
                    f'fill="{_colour(v, vmax[0])}" stroke="#d62728" stroke-width="0.5"><title>{tip}</title></rect>'
                )
            for j in range(self.cols):
                v = float(w[kk, j]) if kk < w.shape[0] else 0.0
                tip = html.escape(f"RHS (k {kk}, n {j}) = {v:g}")
                self.parts.append(
                    f'<rect class="rhs" x="{gx + j * _CELL}" y="{y + c * _OP}" width="{_CELL - 1}" height="{_OP - 1}" '
                    f'fill="{_colour(v, vmax[1])}" stroke="#d62728" stroke-width="0.5"><title>{tip}</title></rect>'
                )
        if k1 > k0:
            label = f"k {k0}..{k1 - 1}" + (f" (first {self.kshow} shown)" if k1 - k0 > self.kshow else "")
            self.parts.append(f'<text x="{x}" y="{y - 4}" font-size="9" fill="#d62728">{html.escape(label)}</text>')


def _same(a: Any, b: Any) -> bool:
    return bool(np.asarray(a).tobytes() == np.asarray(b).tobytes())


def _head(t: Trace) -> list[str]:
    unit = "quant block" if t.blockwise else "k step"
    return [
        f"{t.kernel.name} at SVL {t.kernel.svl}: m {t.m}, n {t.n}, k {t.k}; {t.steps} {unit}s of {t.kstep} k",
        f"each {unit}: {instruction(t.kernel)}",
        "then: " + "; ".join(t.epilogue),
        "heat: red > 0 > blue (one scale for the accumulators, one for the output; grey NaN); frame colour: "
        "ZA tile / accumulator vector, thick: changed by this step; red-framed strips: the LHS columns "
        "(left) and RHS rows (top) the step read",
    ]


def trace_svg(
    t: Trace, *, rows: int = 8, cols: int = 12, max_panels: int = 12, mark: tuple[int, int] | None = None
) -> str:
    """The trace as one SVG: a panel per shown step (the first ``rows`` x ``cols`` accumulators)
    and the output; ``mark`` = (i, j) outlines that output in every panel (``why --format svg``)."""
    rows, cols = min(rows, t.m), min(cols, t.n)
    a, w = operand_values(t)
    kshow = min(t.kstep, 8)
    strip = _Strip(t, rows, cols, kshow, per_line=4)
    head = _head(t)
    y0 = 8 + 16 * len(head) + 8
    shown = _shown_steps(t, max_panels)
    grids = [t.states[i][:rows, :cols] for i in shown]
    # One scale for the accumulator panels, one for the output, one per operand strip.
    vmax, omax = _vmax(grids), _vmax([t.out[:rows, :cols]])
    amax = _vmax([a[:rows]]) if a.size else 1.0
    wmax = _vmax([w[:, :cols]]) if w.size else 1.0
    for p, idx in enumerate(shown):
        s = t.recorded[idx]
        k0, k1 = (s - 1) * t.kstep, min(s * t.kstep, t.k)
        title = "init" if s == 0 else (f"after block {s - 1}" if t.blockwise else f"after step {s}")
        prev = t.states[idx - 1][:rows, :cols] if idx > 0 else None
        extra: dict[str, Any] = {"step": s, "prev": prev, "mark": mark}
        if s > 0:
            extra["ops"] = (a, w, k0, k1)
            if t.block_sums is not None:
                extra["sums"] = t.block_sums[idx]
        strip.panel(p, y0, title, grids[p], (vmax, amax, wmax), extra)
    out = t.out[:rows, :cols]
    strip.panel(len(shown), y0, "output (= run_matmul)", out, (omax, amax, wmax), {"mark": mark})
    lines = math.ceil((len(shown) + 1) / strip.per_line)
    width = max(8 + strip.per_line * strip.pw, round(6.7 * max(len(h) for h in head)) + 16)
    height = y0 + lines * strip.ph + 8
    text = [f'<text x="8" y="{20 + 16 * i}">{html.escape(h)}</text>' for i, h in enumerate(head)]
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
        f'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        *text,
        *strip.parts,
        "</svg>",
    ]
    return "\n".join(svg) + "\n"
