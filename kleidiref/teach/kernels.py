"""Which kernel a teaching view shows, and the packed operands it reads, from the registry's own objects.

A view names either an exact KleidiAI ukernel (``kai_matmul_clamp_...``, ``kai_imatmul_clamp_...``)
or an XNNPACK variant module (``pf32_gemm``, ``pf32_igemm`` ...): a variant means its SME2 MOPA
kernel (what XNNPACK's SME2 branch runs for M > 1). The operands are the kernel's own
``lhs_layout`` / ``rhs_layout`` objects (:mod:`kleidiref.kai.layouts`), never a copy.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..kai.interface import BlockwiseKernel, MatmulKernel
from ..kai.registry import UKERNELS, list_ukernels

__all__ = ["Operand", "grammar", "operands", "resolve_kernel", "teachable_kernels", "teachable_variants"]

#: The variant modules the views know (every one whose kernels kleidiref emulates).
_VARIANTS = (
    "pf32_gemm",
    "pf16_gemm",
    "qp8_f32_qc8w_gemm",
    "qp8_f32_qc4w_gemm",
    "pqs8_qc8w_gemm",
    "qp8_f32_qb4w_gemm",
    "pf32_igemm",
    "pf16_igemm",
    "pqs8_qc8w_igemm",
)


def teachable_variants() -> tuple[str, ...]:
    """The variant names :func:`resolve_kernel` accepts."""
    return _VARIANTS


def teachable_kernels() -> list[str]:
    """Every registered matmul / imatmul kernel name (what the views accept besides a variant)."""
    return sorted(n for n, c in UKERNELS.items() if _matmul_class(c) is not None)


def _matmul_class(cls: type[Any]) -> type[MatmulKernel] | None:
    """The matmul class computing ``cls``'s bits: itself, or an imatmul kernel's ``matmul``."""
    if isinstance(cls, type) and issubclass(cls, MatmulKernel):
        return cls
    mm = getattr(cls, "matmul", None)
    return mm if isinstance(mm, type) and issubclass(mm, MatmulKernel) else None


def _default_kernel(variant: str) -> str:
    names = [n for n in list_ukernels(variant) if _matmul_class(UKERNELS[n]) is not None]
    best = [n for n in names if "_sme2_mopa" in n] or [n for n in names if "mopa" in n] or names
    if not best:
        raise ValueError(f"{variant}: no kernel with a packed-buffer interface (teachable: {', '.join(_VARIANTS)})")
    return best[0]


def resolve_kernel(name: str, svl: int, *, fz: bool = False) -> tuple[str, MatmulKernel]:
    """``(exact ukernel name, the matmul kernel object at svl)`` for a ukernel or variant name.

    An imatmul (IGEMM) kernel resolves to the matmul kernel it runs (``matmul`` of its class):
    ``kai_run_imatmul`` is that kernel's loop with ``K = k_chunk_count * roundup(k_chunk_length, kr)``.
    """
    exact = name if name in UKERNELS else _default_kernel(name) if name in _VARIANTS else None
    if exact is None:
        raise ValueError(f"unknown kernel or variant {name!r} (variants: {', '.join(_VARIANTS)})")
    cls = _matmul_class(UKERNELS[exact])
    if cls is None:
        raise ValueError(f"{exact} is not a matmul kernel with packed operands")
    return exact, cls(svl, fz=fz)


@dataclasses.dataclass(frozen=True)
class Operand:
    """One operand buffer of a kernel: its role, packed-format name and layout object (None: unpacked)."""

    role: str
    fmt: str
    layout: Any
    note: str = ""


def _format_tokens(name: str) -> list[str]:
    """The packed-format tokens of a kernel name, LHS then RHS (``f32p2vlx1``, ``qsi4c32p4vlx4`` ...)."""
    body = re.sub(r"^kai_i?matmul_clamp_[a-z0-9]+_", "", name)
    return body.split("_")[:2]


def operands(kernel: MatmulKernel, name: str, m: int, n: int, k: int, bl: int = 32) -> list[Operand]:
    """The LHS and RHS of an m x n x k problem as ``kernel`` reads them."""
    lhs_tok, rhs_tok = _format_tokens(name)
    lhs_layout = getattr(kernel, "lhs_layout", None)
    if kernel.lhs_packed and lhs_layout is not None:
        lhs = Operand("LHS", lhs_tok, lhs_layout(m, k))
    else:
        lhs = Operand("LHS", lhs_tok, None, f"unpacked row of {k} elements (the GEMV reads A directly)")
    rhs_layout = kernel.rhs_layout  # type: ignore[attr-defined]
    rhs = Operand("RHS", rhs_tok, rhs_layout(n, k, bl) if isinstance(kernel, BlockwiseKernel) else rhs_layout(n, k))
    return [lhs, rhs]


_TOKEN = re.compile(r"^(?P<elem>[a-z]+\d+[a-z0-9]*?)p(?P<sb>sb)?(?P<tile>\d*(?:vl)?)x(?P<kr>\d+)(?P<rest>.*)$")


def _explain_token(tok: str, count: int, what: str, kr: int, svl: int) -> str:
    """One format token in words; ``count`` and ``kr`` come from the layout object."""
    m = _TOKEN.match(tok)
    if m is None:
        return f"{tok}: {count} {what} per block (kr {kr})"
    tile = m["tile"] or "1"
    unit = ""
    if "vl" in tile:
        mult = int(tile.replace("vl", "") or 1)
        unit = f" ({tile} = {mult} x VL = {count} at SVL {svl})"
    extra = {"b": "a bias row leads each block", "biasf32": "an f32 bias row leads each block"}
    rest = f"; {extra.get(m['rest'], m['rest'])}" if m["rest"] else ""
    sb = "; 'sb': scale and bias per column" if m["sb"] else ""
    if int(m["kr"]) != kr:
        sb += f" (the name's x{m['kr']} is not the kernel's kr = {kr}: the map follows kr)"
    return (
        f"{tok}: element {m['elem']}, packed (p) in blocks of {count} {what}{unit}"
        f" x {m['kr']} consecutive k{rest}{sb}: {count} x {kr} elements per k step of the block"
    )


def grammar(kernel: MatmulKernel, name: str, ops: list[Operand]) -> list[str]:
    """How the kernel name's tokens decode at the kernel's SVL, with numbers from its objects."""
    p = kernel.tile_params()
    out = [
        f"{name} at SVL {kernel.svl} (VL = {kernel.vls} x 32-bit, {kernel.vlh} x 16-bit, {kernel.vlb} x 8-bit lanes)"
    ]
    for op in ops:
        lay = op.layout
        if lay is None:
            out.append(f"  {op.role} {op.fmt}: {op.note}")
            continue
        count = int(getattr(lay, "mr", 0) or getattr(lay, "nr", 0))
        what = "rows (mr)" if hasattr(lay, "mr") else "columns (nr)"
        out.append(f"  {op.role} " + _explain_token(op.fmt, count, what, getattr(lay, "kr", p.kr), kernel.svl))
    tiles = re.findall(r"_(\d+(?:vl)?x\d+(?:vl)?(?:x\d+)?)_(?:sme|neon)", name)
    tile = tiles[0] if tiles else "(not in the name)"
    out.append(
        f"  tile {tile}: m_step {p.m_step} x n_step {p.n_step} outputs per call of the inner loop "
        f"(mr {p.mr}, nr {p.nr}, kr {p.kr}, sr {p.sr})"
    )
    return out
