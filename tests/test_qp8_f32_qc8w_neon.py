"""XNNPACK's NEON qp8_f32_qc8w kernels (i8mm and dotprod branches): from source, no golden vectors.

Each kernel is checked against an independent formula (int64 accumulation through float64 BLAS,
then the epilogue steps in the order of the KleidiAI source), for tiling invariance through the
offset functions, for XNNPACK's branch order, and through ``ops.fully_connected``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref.kai.pack import kai_lhs_quant_pack_qai8dxp_f32
from kleidiref.ops import QuantParams, fully_connected
from kleidiref.quant.qai8dx import quantize_qai8dx
from kleidiref.targets import Target
from kleidiref.testing.strategies import GemmProblem, gemm_problems
from kleidiref.variants import qp8_f32_qc8w_gemm as q

F32 = np.float32
I8MM = Target(sme2=False, sme=False, i8mm=True, dotprod=True, flush_to_zero=False, name="neon-i8mm")
DOT = Target(sme2=False, sme=False, i8mm=False, dotprod=True, flush_to_zero=False, name="neon-dotprod")
NEON_KERNELS: list[type[Any]] = [q.NEON_I8MM, q.NEON_I8MM_GEMV, q.NEON_DOT, q.NEON_DOT_GEMV]
#: (mr, nr, kr, m_step, n_step) read from the KleidiAI sources.
TILES = {
    q.NEON_I8MM: (4, 4, 8, 16, 4),
    q.NEON_I8MM_GEMV: (1, 4, 8, 1, 4),
    q.NEON_DOT: (4, 4, 4, 16, 4),
    q.NEON_DOT_GEMV: (1, 4, 4, 1, 4),
}


def bits(a: NDArray[Any]) -> NDArray[np.int32]:
    return np.ascontiguousarray(a, dtype=F32).view(np.int32)


def formula(
    x: NDArray[np.float32],
    w: NDArray[np.int8],
    scale: NDArray[np.float32],
    bias: NDArray[np.float32] | None,
    lo: float,
    hi: float,
) -> NDArray[np.float32]:
    """The NEON epilogue written out (FPCR.FZ clear); no step is fused, so no fma32 appears."""
    codes, dq, zp = quantize_qai8dx(x)  # the packer's codes; finite inputs, any k_block_len
    acc = np.rint(codes.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64)  # exact, |acc| < 2**53
    rsum = w.astype(np.int64).sum(axis=1)  # lhs_zero_point 1; |rsum| < 2**31: no wrap here
    acc = acc + (-zp.astype(np.int64))[:, None] * rsum[None, :]  # MLA
    acc = (acc + 2**31) % 2**32 - 2**31  # int32 wrap
    sc = (scale[None, :] * dq[:, None]).astype(F32)  # FMUL scale * dq
    f = acc.astype(F32)  # SCVTF
    with np.errstate(over="ignore", invalid="ignore"):
        y = (f * sc).astype(F32)  # FMUL
        b = np.zeros(w.shape[0], F32) if bias is None else bias
        y = (y + b[None, :]).astype(F32)  # FADD
    # FMAX then FMIN, NaN propagates; -0 < +0 (numpy's maximum/minimum may return either zero)
    t = np.maximum(y, F32(lo))
    t = np.where((y == 0) & (F32(lo) == 0), np.where(np.signbit(y) & np.signbit(F32(lo)), F32(-0.0), F32(0.0)), t)
    out: NDArray[np.float32] = np.minimum(t, F32(hi)).astype(F32)
    zeros = (t == 0) & (F32(hi) == 0)
    out[zeros] = np.where(np.signbit(t[zeros]) | np.signbit(F32(hi)), F32(-0.0), F32(0.0))
    return out


def run_kernel(
    cls: type[Any],
    x: NDArray[np.float32],
    w: NDArray[np.int8],
    scale: NDArray[np.float32],
    bias: NDArray[np.float32] | None,
    lo: float,
    hi: float,
) -> NDArray[np.float32]:
    """Pack both operands with the kernel's mr/nr/kr and call run_matmul once."""
    kern = cls()
    p = kern.tile_params()
    m, k = x.shape
    n = w.shape[0]
    lhs = kai_lhs_quant_pack_qai8dxp_f32().pack(x, mr=p.mr, kr=p.kr, sr=p.sr)
    rhs = q.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon().pack(w, scale, bias, nr=p.nr, kr=p.kr)
    dst = np.full((m, n), np.nan, F32)
    kern.run_matmul(m, n, k, lhs, rhs, dst, n * 4, 4, lo, hi)
    return dst


def _bounds(p: GemmProblem) -> tuple[float, float]:
    return float(p.inputs.get("clamp_min", -np.inf)), float(p.inputs.get("clamp_max", np.inf))


def test_tile_params_from_source() -> None:
    for cls, (mr, nr, kr, ms, ns) in TILES.items():
        for svl in (128, 512):
            p = cls(svl).tile_params()
            assert (p.mr, p.nr, p.kr, p.sr, p.m_step, p.n_step) == (mr, nr, kr, 1, ms, ns)
            assert cls.isa == "neon" and cls.variant == "qp8_f32_qc8w_gemm"


@settings(max_examples=60, deadline=None)
@given(
    p=gemm_problems("qp8_f32_qc8w_gemm", target=I8MM, max_m=20, max_n=13, max_k=80), which=st.sampled_from(NEON_KERNELS)
)
def test_kernel_matches_formula(p: GemmProblem, which: type[Any]) -> None:
    x, w, s, b = p.inputs["lhs"], p.inputs["rhs"], p.inputs["scale"], p.inputs.get("bias")
    lo, hi = _bounds(p)
    x = x[:1] if which.gemv else x
    np.testing.assert_array_equal(bits(run_kernel(which, x, w, s, b, lo, hi)), bits(formula(x, w, s, b, lo, hi)))


def test_wraparound_and_nan_clamp() -> None:
    # Extreme codes push acc + (-zp) * rsum past int32; NaN bias propagates through FMAX/FMIN.
    k = 70_000  # (q - zp) * w = 255 * 127 per element: |acc| > 2**31 (checked below)
    x = np.ones((5, k), F32)
    x[1] = -1.0
    x[2, ::3] = 0.5
    w = np.full((6, k), 127, np.int8)
    w[1] = -127
    s = np.full(6, 2.0**-10, F32)
    b = np.array([0, 1, np.nan, -1, 2, 3], F32)
    codes, _, zp = quantize_qai8dx(x)
    exact = (codes.astype(np.float64) - zp[:, None]) @ w.astype(np.float64).T
    assert np.abs(exact).max() > 2**31
    for cls in NEON_KERNELS:
        xx = x[:1] if cls.gemv else x
        got = run_kernel(cls, xx, w, s, b, -5.0, 5.0)
        np.testing.assert_array_equal(bits(got), bits(formula(xx, w, s, b, -5.0, 5.0)))
        assert np.isnan(got[:, 2]).all()


@pytest.mark.parametrize("cls", NEON_KERNELS, ids=lambda c: c.name[30:])
def test_tiling_invariance(cls: type[Any]) -> None:
    rng = np.random.default_rng(7)
    m = 1 if cls.gemv else 37
    n, k = 11, 45
    x = rng.standard_normal((m, k)).astype(F32)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    s = rng.uniform(0.001, 0.1, n).astype(F32)
    b = rng.standard_normal(n).astype(F32)
    kern = cls()
    p = kern.tile_params()
    lhs = kai_lhs_quant_pack_qai8dxp_f32().pack(x, mr=p.mr, kr=p.kr, sr=p.sr)
    rhs = q.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon().pack(w, s, b, nr=p.nr, kr=p.kr)
    stride = (n + 3) * 4
    dst = np.full((m, n + 3), -7.5, F32)
    d8 = dst.reshape(-1).view(np.uint8)
    for m0 in range(0, m, p.m_step):
        for n0 in range(0, n, p.n_step):
            kern.run_matmul(
                min(p.m_step, m - m0),
                min(p.n_step, n - n0),
                k,
                lhs[kern.get_lhs_packed_offset(m0, k) :],
                rhs[kern.get_rhs_packed_offset(n0, k) :],
                d8[kern.get_dst_offset(m0, n0, stride) :],
                stride,
                4,
                -1.5,
                2.0,
            )
    whole = run_kernel(cls, x, w, s, b, -1.5, 2.0)
    np.testing.assert_array_equal(bits(dst[:, :n]), bits(whole))
    assert (dst[:, n:] == F32(-7.5)).all()
    np.testing.assert_array_equal(bits(whole), bits(formula(x, w, s, b, -1.5, 2.0)))


def test_select_kernel_branch_order() -> None:
    def t(**kw: bool) -> Target:
        return Target(**{"sme2": False, "sme": False, "i8mm": False, "dotprod": False, **kw})  # type: ignore[arg-type]

    assert q.select_kernel(t(sme2=True, sme=True, i8mm=True, dotprod=True), 4) is q.SME2_MOPA
    assert q.select_kernel(t(sme=True, i8mm=True, dotprod=True), 1) is q.SME1_GEMV
    assert q.select_kernel(t(i8mm=True, dotprod=True), 4) is q.NEON_I8MM
    assert q.select_kernel(t(i8mm=True, dotprod=True), 1) is q.NEON_I8MM_GEMV
    assert q.select_kernel(t(i8mm=True), 2) is q.NEON_I8MM
    assert q.select_kernel(t(dotprod=True), 16) is q.NEON_DOT
    assert q.select_kernel(t(dotprod=True), 1) is q.NEON_DOT_GEMV
    for bad in (t(), t(i8mm=True, dotprod=True).replace(kleidiai=False)):
        with pytest.raises(ValueError, match="no SME"):
            q.select_kernel(bad, 2)


@pytest.mark.parametrize("target", [I8MM, DOT, I8MM.replace(flush_to_zero=True)], ids=["i8mm", "dot", "fz"])
def test_gemm_and_fully_connected_on_neon(target: Target) -> None:
    rng = np.random.default_rng(3)
    n, k = 10, 50
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    s = rng.uniform(0.001, 0.05, n).astype(F32)
    b = rng.standard_normal(n).astype(F32)
    for m in (1, 6, 19):
        x = rng.standard_normal((m, k)).astype(F32)
        cls = q.select_kernel(target, m)
        direct = run_kernel(cls, x, w, s, b, -np.inf, np.inf) if not target.flush_to_zero else None
        g = q.gemm(x, w, s, bias=b, target=target)
        slow = q.gemm_packed(x, q.pack_weights(w, s, bias=b, target=target), target=target, fast=False)
        np.testing.assert_array_equal(bits(g), bits(slow))
        if direct is not None:
            np.testing.assert_array_equal(bits(g), bits(direct))
        r = fully_connected(x, w, b, dynamic=True, filter_quant=QuantParams(s), target=target)
        assert r.decision.kernel == cls.name and r.decision.variant == "qp8_f32_qc8w_gemm"
        assert "variant:qp8_f32_qc8w_gemm" in r.emulation
        np.testing.assert_array_equal(bits(r.output), bits(g))


def test_packed_weights_family_mismatch_and_n0() -> None:
    w = np.ones((4, 32), np.int8)
    s = np.ones(4, F32)
    pw = q.pack_weights(w, s, target=DOT)
    assert (pw.nr, pw.kr) == (4, 4)
    assert (q.pack_weights(w, s, target=I8MM).kr, q.pack_weights(w, s, target=Target()).kr) == (8, 4)
    with pytest.raises(ValueError, match="kr 4"):
        q.gemm_packed(np.ones((2, 32), F32), pw, target=I8MM)
    with pytest.raises(ValueError, match="n == 0"):
        q.NEON_DOT().run_matmul(
            1, 0, 32, np.zeros(4096, np.uint8), np.zeros(4096, np.uint8), np.zeros(4, F32), 16, 4, -1.0, 1.0
        )
    q.NEON_DOT().run_matmul(
        0, 4, 32, np.zeros(0, np.uint8), np.zeros(4096, np.uint8), np.zeros(0, F32), 16, 4, -1.0, 1.0
    )
