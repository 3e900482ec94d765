"""Per-variant error model: the integer stages exact, a proven bound for every float stage.

Notation: ``u = 2**-24`` (binary32 unit roundoff), ``γ(n) = n·u / (1 - n·u)``, ``u16 = 2**-11``.
Each rounding of a binary32 operation adds at most ``u·|result|`` plus ``2**-150`` (half the
subnormal spacing; ``FLT_MIN`` when FPCR.FZ flushes). ``S`` is the sum of the magnitudes of the
exact terms of an element. The bound is on ``|out - exact|`` where ``exact`` is the element's
value in exact arithmetic on the *quantized* operands (the integer stage is exact), then clamped:

================== ===================================================================================
pf32               ``γ(K)·S``: K fused multiply-adds, one rounding each, from the bias
pf16               ``e = γ(P+1)·S`` with ``P = ceil(K/2)`` f16 pairs (two roundings per pair;
                   ``γ(K)`` for the SME1 GEMV, one rounding per k), then RN16:
                   ``e + u16·(|x| + e) + 2**-25``
qp8_f32_qc8w       ``p = dq·scale·I`` (``I`` the exact int32 accumulator): MOPA ``γ(3)|p| + u(|x| + γ(3)|p|)``
                   (RN32(I), RN32(dq·scale), FMUL, FADD); GEMV ``γ(2)|p| + u(|x| + γ(2)|p|)`` (fused FMLA)
qp8_f32_qb4w       ``E = γ(nb+1)·(Σ|isum·d| + |zp|·Σ|w·d|) + |zp|·γ(K/4)·Σ|w·d|`` (the block chain and the
                   packer's f32 row sums), then ``dq·E + u·dq(|F| + E)`` and the bias add (MOPA) or the
                   fused FMLA (GEMV)
pqs8_qc8w          ``1/2 + γ(2)·|I·scale|`` output codes (RN32(I), FMUL, then FRINTN)
================== ===================================================================================

``exact`` is evaluated in float64 (integer parts exactly); its evaluation error,
``(K+8)·2**-52·S``, is added to the bound, so ``|out - exact| <= bound`` is a theorem, not an
estimate. Two kernels that share the integer stage but round their float stages differently
(fused vs unfused, another summation order inside the same error model) differ by at most
``2·bound``. Overflow to infinity and NaN inputs are outside the model (bound = inf there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import bf16_to_f32, rn16
from ._problem import Problem

__all__ = ["model"]

F64 = np.float64
U = 2.0**-24
U16 = 2.0**-11
FLT_MIN = 2.0**-126


def _gamma(n: Any) -> Any:
    n = np.asarray(n, dtype=F64)
    return n * U / (1 - n * U)


def _bias64(p: Problem) -> NDArray[np.float64]:
    return np.zeros(p.n) if p.bias is None else p.bias.astype(F64)


def _clamp(x: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.float64]:
    return np.minimum(np.maximum(x, lo), hi)


def _float_model(p: Problem) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    fz = p.target.flush_to_zero
    a, w, b = p.lhs.astype(F64), p.rhs.astype(F64), _bias64(p)
    k = p.k
    with np.errstate(all="ignore"):
        x = a @ w.T + b
        s = np.abs(a) @ np.abs(w).T + np.abs(b)
    eta = FLT_MIN if fz else 2.0**-150
    if p.variant == "pf32_gemm":
        e = _gamma(k) * s + (k + 1) * eta
        lo, hi = float(np.float32(p.clamp_min)), float(np.float32(p.clamp_max))
        limit = float(np.finfo(np.float32).max)
    else:
        steps = k if p.kernel.endswith("_sme_mla") else (k + 1) // 2 + 1
        e_acc = _gamma(steps) * s + (k + 1) * eta
        e = e_acc + U16 * (np.abs(x) + e_acc) + (2.0**-14 if fz else 2.0**-25)
        lo = float(rn16(np.float32(p.clamp_min)))
        hi = float(rn16(np.float32(p.clamp_max)))
        limit = 65504.0
    if fz:  # flushed subnormal inputs drop their products
        lim = FLT_MIN if p.variant == "pf32_gemm" else 2.0**-14

        def tiny(v: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.where((v != 0) & (np.abs(v) < lim), np.abs(v), 0.0)

        e = e + tiny(a) @ np.abs(w).T + np.abs(a) @ tiny(w).T
    e = e + (k + 8) * 2.0**-52 * s
    e = np.where(np.isfinite(x) & (np.abs(x) + e < limit), e, np.inf)
    return _clamp(x, lo, hi), e


def _qp8_model(p: Problem) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from ..quant.qai8dx import quantize_qai8dx

    tp = p.tiles()
    gemv = p.is_gemv()  # qc8w GEMV: fused epilogue
    q, dq, zp = quantize_qai8dx(np.ascontiguousarray(p.lhs), k_block_len=tp.kr // tp.sr)
    q64, dq64, zp64 = q.astype(F64), dq.astype(F64)[:, None], zp.astype(F64)[:, None]
    b = _bias64(p)
    fz = p.target.flush_to_zero
    eta = FLT_MIN if fz else 2.0**-150
    if p.variant == "qp8_f32_qc8w_gemm":
        w = p.rhs.astype(F64)
        i_acc = q64 @ w.T - zp64 * w.sum(axis=1)[None, :]  # exact integers
        pr = dq64 * p.scale.astype(F64)[None, :] * i_acc  # type: ignore[union-attr]
        x = pr + b
        g = _gamma(2 if gemv else 3)
        # sc = RN32(dq * scale[n]) may itself be subnormal (tiny rows) or flushed (FZ): its absolute
        # error eta is then multiplied by |f| = |i_acc|, not by a rounding unit.
        e = g * np.abs(pr) + U * (np.abs(x) + g * np.abs(pr)) + 4 * eta + (1 + g) * eta * np.abs(i_acc)
        s = np.abs(pr) + np.abs(b)
    else:
        bl = int(p.bl)  # type: ignore[arg-type]
        nb = p.k // bl
        d = bf16_to_f32(p.scales_bf16).astype(F64)  # type: ignore[arg-type]
        w = p.rhs.astype(F64)
        t_abs = np.zeros((p.m, p.n))
        t = np.zeros((p.m, p.n))
        for qb in range(nb):
            sl = slice(qb * bl, (qb + 1) * bl)
            isum = q64[:, sl] @ w[:, sl].T  # exact integers
            t += isum * d[None, :, qb]
            t_abs += np.abs(isum) * d[None, :, qb]
        dfull = np.repeat(d, bl, axis=1)
        r_ideal = (w * dfull).sum(axis=1)
        r_abs = (np.abs(w) * dfull).sum(axis=1)
        g_r = _gamma(max(p.k // 4, 1))
        f = t - zp64 * r_ideal[None, :]
        e1 = (
            _gamma(nb + 1) * (t_abs + np.abs(zp64) * r_abs[None, :] * (1 + g_r))
            + np.abs(zp64) * g_r * r_abs[None, :]
            + (nb + 2) * eta
        )
        x = dq64 * f + b
        if getattr(p.kernel_obj(), "kind", "") == "sme2_dot":  # fused FMLA into the bias
            e = dq64 * e1 + U * (np.abs(x) + dq64 * e1) + eta
        else:
            e_y1 = dq64 * e1 + U * dq64 * (np.abs(f) + e1) + eta
            e = e_y1 + U * (np.abs(x) + e_y1) + eta
        s = dq64 * (t_abs + np.abs(zp64) * r_abs[None, :]) + np.abs(b)
    e = e + (p.k + 8) * 2.0**-52 * s
    lo, hi = float(np.float32(p.clamp_min)), float(np.float32(p.clamp_max))
    e = np.where(np.isfinite(x) & (np.abs(x) + e < float(np.finfo(np.float32).max)), e, np.inf)
    return _clamp(x, lo, hi), e


def _pqs8_model(p: Problem) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a = p.lhs.astype(F64) - p.input_zero_point
    i_acc = a @ p.rhs.astype(F64).T + (0.0 if p.bias is None else p.bias.astype(F64)[None, :])
    pr = i_acc * p.requant_scale.astype(F64)[None, :]  # type: ignore[union-attr]
    x = pr + p.output_zero_point
    e = 0.5 + _gamma(2) * np.abs(pr) + (p.k + 8) * 2.0**-52 * np.abs(pr)
    return _clamp(x, p.output_min, p.output_max), e


def model(p: Problem) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(exact, bound)`` float64 arrays [M, N] for the problem's kernel."""
    with np.errstate(all="ignore"):  # overflow only makes a bound inf (outside the model)
        if p.variant in ("pf32_gemm", "pf16_gemm"):
            return _float_model(p)
        if p.variant == "pqs8_qc8w_gemm":
            return _pqs8_model(p)
        return _qp8_model(p)
