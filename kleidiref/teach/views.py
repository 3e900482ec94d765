"""The text views the CLI prints: layout maps, ``where`` answers and the SVL side-by-side table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._buffers import roundup
from ..conv import conv_geometry, indirection_conv2d
from .explain import format_trace, provenance
from .kernels import grammar, operands, resolve_kernel
from .layout_map import element_offsets, format_map, summarize, token, where_offset
from .picture import trace_svg
from .render import layout_svg, trace_html
from .trace import Trace, random_problem, trace, trace_file

__all__ = [
    "indirection_text",
    "layout_picture",
    "layout_text",
    "svl_table",
    "trace_page",
    "trace_picture",
    "trace_text",
    "where",
    "why_text",
]


def layout_text(
    name: str, *, svl: int, m: int, n: int, k: int, bl: int = 32, colour: bool = False, max_lines: int = 200
) -> str:
    """The name grammar at ``svl``, then the packed LHS and RHS maps of an m x n x k problem."""
    exact, kernel = resolve_kernel(name, svl)
    ops = operands(kernel, exact, m, n, k, bl)
    parts = ["\n".join(grammar(kernel, exact, ops)), ""]
    for op in ops:
        parts += [format_map(op, kernel.vlb, colour=colour, max_lines=max_lines), ""]
    return "\n".join(parts).rstrip() + "\n"


def layout_picture(
    name: str, *, svl: int, m: int, n: int, k: int, bl: int = 32, fmt: str = "svg", max_lines: int = 64
) -> str:
    """The packed LHS and RHS as an SVG picture (``fmt="html"``: the SVG in a page)."""
    exact, kernel = resolve_kernel(name, svl)
    ops = operands(kernel, exact, m, n, k, bl)
    title = f"{exact} at SVL {svl}: m {m}, n {n}, k {k} (one row = one vector register)"
    svg = layout_svg(ops, kernel.vlb, title, max_lines=max_lines)
    return svg if fmt == "svg" else _page(exact, svg)


def _where_answer(
    exact: str,
    ops: list[Any],
    offsets: tuple[int | None, int | None],
    elements: tuple[tuple[int, int] | None, tuple[int, int] | None],
) -> tuple[list[str], dict[str, set[int]]]:
    """The answer lines and, per role, the byte offsets they name."""
    out: list[str] = []
    hits: dict[str, set[int]] = {"LHS": set(), "RHS": set()}
    for op, off in zip(ops, offsets, strict=True):
        if off is None:
            continue
        if op.layout is None:
            raise ValueError(f"{exact}: the {op.role} is not packed ({op.note})")
        out.append(f"{op.role} byte {off} (0x{off:x}) of {op.fmt}: {where_offset(op.layout, off)}")
        hits[op.role].add(off)
    for op, el in zip(ops, elements, strict=True):
        if el is None:
            continue
        if op.layout is None:
            raise ValueError(f"{exact}: the {op.role} is not packed ({op.note})")
        found = element_offsets(op.layout, el[0], el[1])
        what = f"({'m' if op.role == 'LHS' else 'n'} {el[0]}, k {el[1]})"
        if not found:
            out.append(f"{op.role} element {what}: not in the packed buffer of this problem")
        for r in found:
            out.append(
                f"{op.role} element {what} of {op.fmt}: bytes {r.offset}..{r.offset + r.size - 1} ({token(r.info)})"
            )
            hits[op.role].update(range(r.offset, r.offset + r.size))
    return out, hits


def where(
    name: str,
    *,
    svl: int,
    m: int,
    n: int,
    k: int,
    bl: int = 32,
    lhs_offset: int | None = None,
    rhs_offset: int | None = None,
    element: tuple[int, int] | None = None,
    rhs_element: tuple[int, int] | None = None,
    fmt: str = "text",
) -> str:
    """Byte -> element (``lhs_offset`` / ``rhs_offset``) or element -> bytes (``element`` = (m, k)
    of the LHS, ``rhs_element`` = (n, k) of the RHS), one line each; ``fmt`` ``svg`` / ``html``:
    the layout picture with those bytes outlined and the answer under the title."""
    exact, kernel = resolve_kernel(name, svl)
    ops = operands(kernel, exact, m, n, k, bl)
    out, hits = _where_answer(exact, ops, (lhs_offset, rhs_offset), (element, rhs_element))
    if fmt == "text":
        return "\n".join(out)
    lines = max((h // kernel.vlb for hs in hits.values() for h in hs), default=0) + 2
    title = f"{exact} at SVL {svl}: m {m}, n {n}, k {k} (one row = one vector register)"
    svg = layout_svg(ops, kernel.vlb, title, max_lines=max(64, lines), hits=hits, notes=out)
    return svg if fmt == "svg" else _page(exact, svg)


def _page(title: str, svg: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head><body>\n{svg}</body></html>\n'
    )


def _byte_of(layout: Any, index: int, k: int) -> str:
    found = element_offsets(layout, index, k) if layout is not None else []
    return str(found[0].offset) if found else "-"


def svl_table(name: str, svls: Sequence[int], *, m: int, n: int, k: int, bl: int = 32) -> str:
    """The same problem at several SVLs: mr/nr, tiles, packed sizes, padding bytes, and where one
    LHS and one RHS element (row/column 1, k 1) sit: what the SVL moves."""
    i, kk = min(1, m - 1), min(1, k - 1)
    head = f"{'SVL':>5} {'mr':>4} {'nr':>4} {'kr':>3} {'m_step':>6} {'n_step':>6} {'tiles':>5} "
    head += (
        f"{'LHS bytes':>10} {'pad':>8} {'RHS bytes':>10} {'pad':>8} {f'r{i}k{kk}@':>8} {f'n{min(1, n - 1)}k{kk}@':>8}"
    )
    lines = [f"{name}, m {m} n {n} k {k}", head]
    for s in svls:
        exact, kernel = resolve_kernel(name, s)
        ops = operands(kernel, exact, m, n, k, bl)
        r = summarize(kernel, ops, m, n)
        lines.append(
            f"{r.svl:>5} {r.mr:>4} {r.nr:>4} {r.kr:>3} {r.m_step:>6} {r.n_step:>6} {r.tiles:>5} "
            f"{r.lhs_bytes:>10} {r.lhs_padding:>8} {r.rhs_bytes:>10} {r.rhs_padding:>8} "
            f"{_byte_of(ops[0].layout, i, kk):>8} {_byte_of(ops[1].layout, min(1, n - 1), kk):>8}"
        )
    return "\n".join(lines)


def _traced(name: str, svl: int, m: int, n: int, k: int, seed: int, inputs: str | None, bl: int = 32) -> Trace:
    if inputs is not None:
        t, _ = trace_file(inputs, None if name == "-" else name, max_steps=512)
        return t
    _, kernel = resolve_kernel(name, svl)
    if kernel.tile_params().m_step == 1 and m != 1:
        raise ValueError(f"{kernel.name} is a GEMV: it runs m = 1 only (give --m 1)")
    lhs, rhs, params = random_problem(kernel, m, n, k, seed, bl=bl)
    return trace(kernel, lhs, rhs, m, n, k, params, max_steps=512, bl=bl)


def _layouts(t: Trace) -> tuple[Any, Any]:
    """The packed LHS (None: the GEMV's raw row) and RHS layout objects of a trace's problem."""
    kk: Any = t.kernel
    lhs_layout = kk.lhs_layout(t.m, t.k) if t.kernel.lhs_packed else None
    rhs_layout = kk.rhs_layout(t.n, t.k, t.bl) if t.blockwise else kk.rhs_layout(t.n, t.k)
    return lhs_layout, rhs_layout


def trace_text(
    name: str,
    *,
    svl: int,
    m: int,
    n: int,
    k: int,
    seed: int = 0,
    inputs: str | None = None,
    rows: int = 4,
    cols: int = 6,
    hexa: bool = False,
    bl: int = 32,
) -> str:
    """The k loop of ``name`` on a golden file's operands (``inputs``) or on seeded random ones."""
    return format_trace(_traced(name, svl, m, n, k, seed, inputs, bl), rows=rows, cols=cols, hexa=hexa) + "\n"


def why_text(
    name: str,
    *,
    svl: int,
    m: int,
    n: int,
    k: int,
    i: int,
    j: int,
    seed: int = 0,
    inputs: str | None = None,
    bl: int = 32,
) -> str:
    """Where output C[i, j] came from (see :func:`~kleidiref.teach.explain.provenance`)."""
    t = _traced(name, svl, m, n, k, seed, inputs, bl)
    lhs_layout, rhs_layout = _layouts(t)
    return "\n".join(provenance(t, i, j, lhs_layout=lhs_layout, rhs_layout=rhs_layout)) + "\n"


def trace_page(
    name: str, *, svl: int, m: int, n: int, k: int, seed: int = 0, inputs: str | None = None, bl: int = 32
) -> str:
    """The trace as one self-contained HTML file (:func:`~kleidiref.teach.render.trace_html`)."""
    t = _traced(name, svl, m, n, k, seed, inputs, bl)
    lhs_layout, rhs_layout = _layouts(t)
    return trace_html(t, lhs_layout=lhs_layout, rhs_layout=rhs_layout)


def trace_picture(
    name: str,
    *,
    svl: int,
    m: int,
    n: int,
    k: int,
    seed: int = 0,
    inputs: str | None = None,
    bl: int = 32,
    element: tuple[int, int] | None = None,
) -> str:
    """The trace as one SVG strip (:func:`~kleidiref.teach.picture.trace_svg`); ``element``
    outlines that output in every panel."""
    t = _traced(name, svl, m, n, k, seed, inputs, bl)
    if element is not None and not (0 <= element[0] < t.m and 0 <= element[1] < t.n):
        raise ValueError(f"element {element} is outside the {t.m} x {t.n} output")
    return trace_svg(t, mark=element)


def indirection_text(
    name: str,
    *,
    svl: int,
    h: int,
    w: int,
    cin: int,
    kh: int,
    kw: int,
    padding: tuple[int, int, int, int] = (1, 1, 1, 1),
) -> str:
    """IGEMM: which input pixel each packed LHS row reads per kernel tap (``kleidiref.conv``'s
    indirection buffer, tiled by the kernel's m_step), and how the packed k decodes into
    (tap, channel): ``k = tap * roundup(cin, kr) + channel``."""
    exact, kernel = resolve_kernel(name, svl)
    p = kernel.tile_params()
    geom = conv_geometry(h, w, kh, kw, padding=padding)
    ind = indirection_conv2d(geom, p.m_step).reshape(-1, geom.ks, p.m_step)  # [m tile][tap][row]
    kc = roundup(cin, p.kr)
    lines = [
        f"{exact} at SVL {svl}: {h}x{w}x{cin} input, {kh}x{kw} kernel, padding (top, right, bottom, left) {padding}",
        f"  GEMM view: M = {geom.m} output pixels, K = {geom.ks} taps x roundup({cin}, kr {p.kr}) = {geom.ks * kc}",
        f"  packed k = tap * {kc} + channel (channels {cin}..{kc - 1} of a tap, if any, are the packer's zero padding)",
        f"  indirection (m tile 0, rows 0..{min(p.m_step, geom.m) - 1}): input pixel per tap, '-' = XNNPACK's "
        "padding buffer (zeros; the input zero point for pqs8)",
        ("    row  " + " ".join(f"t{t:<3}" for t in range(geom.ks))).rstrip(),
    ]
    for i in range(min(p.m_step, geom.m)):
        cells = ["-" if v < 0 else str(v) for v in ind[0, :, i]]
        lines.append((f"    {i:>3}  " + " ".join(f"{c:<4}" for c in cells)).rstrip())
    return "\n".join(lines) + "\n"
