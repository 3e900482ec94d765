"""Packed-buffer maps and the byte <-> element questions, read off the layouts' own ``describe``.

Every byte of a packed buffer is asked what it holds (:meth:`describe` of the kernel's layout
object, the same method :mod:`kleidiref.testing` names differing bytes with); consecutive bytes
holding the same thing form one :class:`Run` (an element, a nibble pair, a scale ...). The text
map prints the runs of each packed block, one vector register (SVL / 8 bytes) per line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from ..kai.interface import MatmulKernel
from ..kai.layouts import ByteInfo
from .kernels import Operand

__all__ = [
    "Run",
    "Summary",
    "block_bytes",
    "element_offsets",
    "format_map",
    "runs",
    "summarize",
    "token",
    "where_offset",
]


@dataclasses.dataclass(frozen=True)
class Run:
    """Bytes ``offset .. offset + size - 1`` holding one thing (``info``)."""

    offset: int
    size: int
    info: ByteInfo


def _key(b: ByteInfo) -> tuple[Any, ...]:
    return (b.field, b.row, b.col, b.k, b.nibbles, b.block, b.padding)


def runs(layout: Any) -> Iterator[Run]:
    """The runs of a packed buffer, in byte order."""
    size = layout.size()
    start, first = 0, None
    for off in range(size):
        info = layout.describe(off)
        if first is None:
            start, first = off, info
        elif _key(info) != _key(first):
            yield Run(start, off - start, first)
            start, first = off, info
    if first is not None:
        yield Run(start, size - start, first)


def block_bytes(layout: Any) -> int:
    """Bytes of one packed block (mr rows or nr columns with their extra fields)."""
    stride = getattr(layout, "stride", None)
    return int(stride) if stride is not None else int(layout.offset(layout.mr))


def token(info: ByteInfo) -> str:
    """A short name of what a run holds: ``r3k5`` (LHS row 3, k 5), ``n2k0|16`` (nibble pair), ``b7`` ..."""
    who = info.row if info.row is not None else info.col
    if info.field == "data":
        lead = f"r{info.row}" if info.row is not None else f"n{info.col}"
        ks = f"k{info.nibbles[0]}|{info.nibbles[1]}" if info.nibbles else f"k{info.k}"
        tok = lead + ks
    else:
        short = {"bias": "b", "scale": "s", "row-sum": "rs", "zero-point": "zp"}[info.field]
        tok = f"{short}{who}" + (f"q{info.block}" if info.block is not None else "")
    return tok + ("*" if info.padding else "")


_COLOUR = {"bias": "33", "scale": "36", "row-sum": "32", "zero-point": "35"}


def _paint(tok: str, info: ByteInfo, colour: bool) -> str:
    if not colour:
        return tok
    code = "2" if info.padding else _COLOUR.get(info.field, "")
    return f"\x1b[{code}m{tok}\x1b[0m" if code else tok


def _lines(op: Operand, line_bytes: int, colour: bool) -> Iterator[str]:
    per_block = block_bytes(op.layout)
    cur: list[str] = []
    line_start, field, block = 0, "", -1
    for r in runs(op.layout):
        b = r.offset // per_block
        new_line = b != block or r.info.field != field or r.offset - line_start >= line_bytes
        if new_line and cur:
            yield f"  +0x{line_start:06x}  " + " ".join(cur)
            cur = []
        if b != block:
            yield f" block {b} (bytes 0x{b * per_block:x}..0x{(b + 1) * per_block - 1:x})"
            block = b
        if not cur:
            line_start, field = r.offset, r.info.field
        cur.append(_paint(token(r.info), r.info, colour) + (f"[{r.size}B]" if r.info.field != "data" else ""))
    if cur:
        yield f"  +0x{line_start:06x}  " + " ".join(cur)


def format_map(op: Operand, line_bytes: int, *, colour: bool = False, max_lines: int = 200) -> str:
    """The text map of one operand: its blocks, one line per vector register of bytes."""
    if op.layout is None:
        return f"{op.role} {op.fmt}: {op.note}"
    lay = op.layout
    head = f"{op.role} {op.fmt}: {type(lay).__name__}, {lay.size()} bytes, blocks of {block_bytes(lay)} bytes"
    legend = "  (rRkK: LHS row R, k K; nNkK: RHS column N; kA|B: low|high nibble; b bias, s scale, "
    legend += "rs row sum, zp -zero point, qB quant block; * padding; [nB] bytes)"
    out = [head, legend]
    for i, line in enumerate(_lines(op, line_bytes, colour)):
        if i >= max_lines:
            out.append("  ... (more lines: raise --max-lines, or ask `where` about a byte)")
            break
        out.append(line)
    return "\n".join(out)


def where_offset(layout: Any, offset: int) -> ByteInfo:
    """What byte ``offset`` holds (``describe``), with a bounds check."""
    if not 0 <= offset < layout.size():
        raise ValueError(f"offset {offset} is outside the packed buffer (size {layout.size()} bytes)")
    info: ByteInfo = layout.describe(offset)
    return info


def element_offsets(layout: Any, index: int, k: int) -> list[Run]:
    """The runs holding data element (row or column ``index``, ``k``): its bytes (a nibble: its byte)."""
    found = []
    for r in runs(layout):
        i = r.info
        if i.field != "data" or index not in (i.row, i.col):
            continue
        if i.k == k or (i.nibbles is not None and k in i.nibbles):
            found.append(r)
    return found


@dataclasses.dataclass(frozen=True)
class Summary:
    """One kernel's blocking of one problem at one SVL."""

    svl: int
    mr: int
    nr: int
    kr: int
    m_step: int
    n_step: int
    tiles: int
    lhs_bytes: int
    lhs_padding: int
    rhs_bytes: int
    rhs_padding: int


def _padding(layout: Any) -> tuple[int, int]:
    if layout is None:
        return 0, 0
    return layout.size(), sum(r.size for r in runs(layout) if r.info.padding)


def summarize(kernel: MatmulKernel, ops: list[Operand], m: int, n: int) -> Summary:
    """Tile count (m_step x n_step blocks), packed sizes and their padding bytes."""
    p = kernel.tile_params()
    lhs, lpad = _padding(ops[0].layout)
    rhs, rpad = _padding(ops[1].layout)
    tiles = math.ceil(m / p.m_step) * math.ceil(n / p.n_step)
    return Summary(kernel.svl, p.mr, p.nr, p.kr, p.m_step, p.n_step, tiles, lhs, lpad, rhs, rpad)
