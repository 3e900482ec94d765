"""XNNPACK's named edge families for one kernel, as seeded problems.

XNNPACK's generated GEMM tests (test/<kernel>.cc from the ``gemm-microkernel-tester`` YAMLs,
``tools/generate-gemm-test.py``) name each shape family after the blocking it straddles:
``k_eq_kblock``, ``k_lt_kblock``, ``k_gt_kblock``, ``k_div_kblock``, ``n_gt_nr``, ``n_div_nr``,
``strided_cn`` (a dst row stride > n), ``m_lt_mr``/subtile runs, ``qmin`` and ``qmax``. Here each
family is one seeded problem built for the kernel's own tiles at the chosen SVL.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..kai.interface import BlockwiseKernel, MatmulKernel
from ..kai.registry import UKERNELS
from ..targets import Target
from ..testing import Problem

__all__ = ["EDGE_FAMILIES", "EdgeCase", "edge_case", "k_block"]

#: Family name -> what it exercises.
EDGE_FAMILIES: dict[str, str] = {
    "k_eq_kblock": "K equal to the kernel's k block",
    "k_lt_kblock": "K below the k block (padding inside one block)",
    "k_gt_kblock": "K above the k block (a ragged last block)",
    "k_div_kblock": "K a multiple (3x) of the k block",
    "n_gt_nr": "N = nr + 1 (a ragged last column block)",
    "n_div_nr": "N = 2 nr",
    "m_eq_1": "M = 1 (XNNPACK's decode/batch-1 call)",
    "m_gt_mr": "M = mr + 1 (a ragged last row block; M = 2 row by row for a 1-row kernel)",
    "strided_c": "dst row stride > N (bytes past N must stay untouched)",
    "subtile": "every m_step x n_step portion at the offsets the kernel reports",
    "qmin": "output lower bound inside the output range",
    "qmax": "output upper bound inside the output range",
}


@dataclasses.dataclass(frozen=True)
class EdgeCase:
    problem: Problem
    pad: int = 0
    tiles: str = "whole"


def k_block(kern: MatmulKernel, variant: str) -> int:
    """The k block the families straddle: 32 for the qai8dx LHS formats (K padded to 32),
    ``bl`` granularity 32 for qb4w, else kr (XNNPACK's ``k-block`` of the kernel)."""
    if variant in ("qp8_f32_qc8w_gemm", "qp8_f32_qb4w_gemm"):
        return 32
    return kern.get_kr()


def _inputs(variant: str, m: int, n: int, k: int, bl: int | None, rng: np.random.Generator) -> dict[str, Any]:
    if variant == "pqs8_qc8w_gemm":
        scale = (rng.uniform(20.0, 80.0, n) / (16384.0 * np.sqrt(k))).astype(np.float32)
        return {
            "lhs": rng.integers(-128, 128, (m, k)).astype(np.int8),
            "rhs": rng.integers(-128, 128, (n, k)).astype(np.int8),
            "bias": rng.integers(-5000, 5000, n).astype(np.int32),
            "requant_scale": scale,
            "input_zero_point": int(rng.integers(-20, 20)),
            "output_zero_point": int(rng.integers(-20, 20)),
        }
    dt = np.float16 if variant == "pf16_gemm" else np.float32
    out: dict[str, Any] = {"lhs": rng.standard_normal((m, k)).astype(dt), "bias": rng.standard_normal(n).astype(dt)}
    if variant in ("pf32_gemm", "pf16_gemm"):
        out["rhs"] = rng.standard_normal((n, k)).astype(dt)
    elif variant == "qp8_f32_qc8w_gemm":
        out["rhs"] = rng.integers(-128, 128, (n, k)).astype(np.int8)
        out["scale"] = rng.uniform(0.001, 0.01, n).astype(np.float32)
    else:
        from ..quant import qb4

        b = int(bl or 32)
        out["rhs"] = rng.integers(-8, 8, (n, k)).astype(np.int8)
        out["scales_bf16"] = qb4.f32_scales_to_bf16(rng.uniform(0.005, 0.05, (n, k // b)).astype(np.float32))
        out["bl"] = b
    return out


def _shape(name: str, kern: MatmulKernel, kb: int, qb4w: bool) -> tuple[int, int, int, int | None] | str:
    """(m, n, k, bl) of a family, or why it does not apply to this kernel."""
    tp = kern.tile_params()
    m = 1 if tp.m_step == 1 else min(tp.mr, 5)
    n = tp.nr
    ks = {"k_eq_kblock": kb, "k_lt_kblock": kb - 1, "k_gt_kblock": kb + 1, "k_div_kblock": 3 * kb}
    if name in ks:
        if qb4w and name in ("k_lt_kblock", "k_gt_kblock"):
            return "qb4w needs K % bl == 0 (XNNPACK check_block_size): no K off the block"
        if ks[name] < 1:
            return f"the k block of {kern.name} is {kb}: no K below it"
        return m, n, ks[name], kb if qb4w else None
    k = 2 * kb + (0 if qb4w else 3)
    shapes = {
        "n_gt_nr": (m, tp.nr + 1),
        "n_div_nr": (m, 2 * tp.nr),
        "m_eq_1": (1, n),
        "m_gt_mr": (tp.mr + 1, n),
        "subtile": (2 * tp.m_step + 3, 2 * tp.n_step + 5),
    }
    mm, nn = shapes.get(name, (m, n))
    if tp.m_step == 1 and name == "m_gt_mr":
        mm = 2  # a 1-row kernel: XNNPACK calls it row by row
    return mm, nn, k, kb if qb4w else None


def _bounds(p: Problem, name: str) -> Problem:
    """``p`` with a lower (qmin) or upper (qmax) output bound at a third of its output range."""
    out = np.sort(p.run().reshape(-1))
    out = out[~np.isnan(out.astype(np.float64))] if out.dtype.kind == "f" else out
    lo, hi = out[len(out) // 3], out[(2 * len(out)) // 3]
    if p.variant == "pqs8_qc8w_gemm":
        return p.with_(output_min=int(lo)) if name == "qmin" else p.with_(output_max=int(hi))
    return p.with_(clamp_min=float(lo)) if name == "qmin" else p.with_(clamp_max=float(hi))


def edge_case(kernel: str, family: str, svl: int, fz: bool = False) -> EdgeCase | str:
    """The ``family`` problem for ``kernel`` at ``svl`` (seeded by the names), or why it does not apply."""
    cls = UKERNELS[kernel]
    kern: Any = cls(svl)
    assert isinstance(kern, MatmulKernel)
    qb4w = isinstance(kern, BlockwiseKernel)
    shape = _shape(family, kern, k_block(kern, cls.variant), qb4w)
    if isinstance(shape, str):
        return shape
    m, n, k, bl = shape
    seed = sum(map(ord, kernel + family)) + svl
    inputs = _inputs(cls.variant, m, n, k, bl, np.random.default_rng(seed))
    p = Problem.build(variant=cls.variant, target=Target(svl_bits=svl, flush_to_zero=fz), kernel=kernel, **inputs)
    if family in ("qmin", "qmax"):
        p = _bounds(p, family)
    return EdgeCase(p, pad=3 if family == "strided_c" else 0, tiles="steps" if family == "subtile" else "whole")
