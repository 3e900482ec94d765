"""``f32_qc8w`` / ``f32_qc4w`` (ARM64) and the x86-64 f16 GEMM/IGEMM fallbacks against scalar references.

The references round exact rationals (``fractions.Fraction``) by hand, track the IEEE sign of an
exact zero, and apply FZ (tiny before rounding -> signed zero) themselves: no package helper is
used, so a shared bug cannot hide. Results are compared bit for bit (any NaN matches any NaN).
"""

from __future__ import annotations

import math
from fractions import Fraction as Fr
from typing import Any

import numpy as np
import pytest
from _exact import FMT, rnd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kleidiref.fallbacks.f16_x86 import F16_X86_KERNELS, X86Kernel, f16_x86_gemm, f16_x86_igemm, f16_x86_ukernel
from kleidiref.fallbacks.f32_qcw import f32_qc4w_gemm, f32_qc8w_gemm, f32_qcw_ukernel, qc4w_unpack

SET = settings(max_examples=25, deadline=None)
F32, F16 = np.float32, np.float16
INF = math.inf
ALL_X86: tuple[X86Kernel, ...] = ("avx2", "avx512skx", "avx512fp16", "avx2_f16acc")


# ---- scalar IEEE reference ---------------------------------------------------------------------


def rnd_x86(x: Fr, fz: bool, neg_zero: bool = False) -> float:
    """binary32 RNE under MXCSR FTZ: flush when the value rounded with an unbounded exponent is tiny."""
    if fz and x != 0:
        e = abs(x).numerator.bit_length() - abs(x).denominator.bit_length()
        if Fr(2) ** e > abs(x):
            e -= 1
        q = Fr(2) ** (e - 23)  # 24-bit significand, exponent not clamped
        i = math.floor(abs(x) / q)
        r = abs(x) / q - i
        if r > Fr(1, 2) or (r == Fr(1, 2) and i % 2 == 1):
            i += 1
        if i * q < Fr(2) ** -126:
            return -0.0 if x < 0 else 0.0
    return rnd(x, "f32", False, neg_zero)


def xfma(a: float, b: float, c: float, fz: bool) -> float:
    """x86 VFMADD under FTZ|DAZ (DAZ: the same operand flush as FZ)."""
    a, b, c = rd(a, "f32", fz), rd(b, "f32", fz), rd(c, "f32", fz)
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    p_neg = (math.copysign(1.0, a) * math.copysign(1.0, b)) < 0
    neg_zero = (a == 0 or b == 0) and c == 0 and p_neg and math.copysign(1.0, c) < 0
    return rnd_x86(Fr(a) * Fr(b) + Fr(c), fz, neg_zero)


def rd(v: float, fmt: str, fz: bool) -> float:
    """An operand as read under FZ (subnormal -> signed zero)."""
    if fz and v != 0 and math.isfinite(v) and abs(v) < 2.0 ** FMT[fmt][1]:
        return math.copysign(0.0, v)
    return v


def rfma(a: float, b: float, c: float, fmt: str, fz: bool) -> float:
    """``RN(a*b + c)`` with one rounding, IEEE zero signs, FZ on operands and result."""
    a, b, c = rd(a, fmt, fz), rd(b, fmt, fz), rd(c, fmt, fz)
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c  # inf/NaN cases: float64 gets them right (no overflow possible here)
    p_neg = (math.copysign(1.0, a) * math.copysign(1.0, b)) < 0
    p_zero = a == 0 or b == 0
    neg_zero = p_zero and c == 0 and p_neg and math.copysign(1.0, c) < 0
    return rnd(Fr(a) * Fr(b) + Fr(c), fmt, fz, neg_zero)


def radd(x: float, y: float, fmt: str, fz: bool) -> float:
    return rfma(1.0, x, y, fmt, fz)


def rmul(x: float, y: float, fmt: str, fz: bool) -> float:
    return rfma(x, y, -0.0, fmt, fz)


def arm_max(x: float, y: float) -> float:
    """NEON FMAX: NaN propagates, -0 < +0."""
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == y == 0:
        return x if math.copysign(1.0, x) > 0 else y
    return max(x, y)


def arm_min(x: float, y: float) -> float:
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == y == 0:
        return x if math.copysign(1.0, x) < 0 else y
    return min(x, y)


def x86_max(x: float, y: float) -> float:
    """MAXPS/MAXPH: ``x > y ? x : y``."""
    return x if x > y else y


def x86_min(x: float, y: float) -> float:
    return x if x < y else y


def as_fmt(v: float, fmt: str) -> float:
    """A bound (a Python float) converted to ``fmt`` (RNE)."""
    return v if not math.isfinite(v) else rnd(Fr(v), fmt, False, math.copysign(1.0, v) < 0)


def same(got: np.ndarray, ref: Any) -> None:
    """Bit equality (sign of zero included); any NaN matches any NaN."""
    r = np.asarray(ref, dtype=np.float64)
    g = got.astype(np.float64)
    assert g.shape == r.shape
    nan = np.isnan(r)
    assert np.array_equal(np.isnan(g), nan), (g, r)
    assert np.array_equal(g[~nan], r[~nan]), (g, r)
    assert np.array_equal(np.signbit(g[~nan]), np.signbit(r[~nan])), (g, r)


def f32s(shape: Any, lim: float = 1e3) -> Any:
    return hnp.arrays(F32, shape, elements=st.floats(-lim, lim, width=32, allow_subnormal=True))


def f16s(shape: Any, lim: float = 8.0) -> Any:
    return hnp.arrays(F16, shape, elements=st.floats(-lim, lim, width=16, allow_subnormal=True))


def scales(n: int) -> Any:
    return hnp.arrays(F32, (n,), elements=st.floats(2.0**-20, 4.0, width=32))


bounds = st.sampled_from([(-INF, INF), (-50.0, 50.0), (0.0, 1.0), (-1e-30, 1e-30)])


# ---- f32_qc8w / f32_qc4w -------------------------------------------------------------------------


def ref_qcw(
    a: np.ndarray, wv: np.ndarray, s: np.ndarray, b: np.ndarray, lo: float, hi: float, fz: bool, kernel: str
) -> np.ndarray:
    """Per element: the kernel's accumulation order, FMUL by the scale, then the clamp."""
    m, k = a.shape
    n = wv.shape[0]
    out = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            w = [float(v) for v in wv[j]]
            x = [float(v) for v in a[i]]
            if kernel == "acc4":
                acc = [float(b[j]), 0.0, 0.0, 0.0]
                g = k // 4
                for t in range(4 * g):
                    acc[t % 4] = rfma(x[t], w[t], acc[t % 4], "f32", fz)
                if g:
                    acc[0], acc[1] = radd(acc[0], acc[2], "f32", fz), radd(acc[1], acc[3], "f32", fz)
                if k % 4 >= 2:
                    acc[0] = rfma(x[4 * g], w[4 * g], acc[0], "f32", fz)
                    acc[1] = rfma(x[4 * g + 1], w[4 * g + 1], acc[1], "f32", fz)
                if k % 2:
                    acc[0] = rfma(x[k - 1], w[k - 1], acc[0], "f32", fz)
                v = radd(acc[0], acc[1], "f32", fz)
            else:
                v = float(b[j])
                for t in range(k):
                    v = rfma(x[t], w[t], v, "f32", fz)
            v = rmul(v, float(s[j]), "f32", fz)
            flo, fhi = (rd(as_fmt(v, "f32"), "f32", fz) for v in (lo, hi))
            if kernel == "qc4w":  # vminq(max) first, then vmaxq(min)
                out[i, j] = arm_max(arm_min(v, fhi), flo)
            else:
                out[i, j] = arm_min(arm_max(v, flo), fhi)
    return out


@SET
@given(
    data=st.data(),
    m=st.integers(1, 3),
    n=st.integers(1, 9),
    k=st.integers(1, 11),
    fz=st.booleans(),
    lohi=bounds,
)
def test_f32_qc8w_ld128(data: Any, m: int, n: int, k: int, fz: bool, lohi: tuple[float, float]) -> None:
    a, b = data.draw(f32s((m, k))), data.draw(f32s((n,)))
    w = data.draw(hnp.arrays(np.int8, (n, k)))
    s = data.draw(scales(n))
    got = f32_qc8w_gemm(a, w, s, b, clamp_min=lohi[0], clamp_max=lohi[1], fz=fz, kernel="ld128")
    same(got, ref_qcw(a, w, s, b, *lohi, fz, "ld128"))


@SET
@given(data=st.data(), n=st.integers(1, 9), k=st.integers(1, 14), fz=st.booleans(), lohi=bounds)
def test_f32_qc8w_acc4(data: Any, n: int, k: int, fz: bool, lohi: tuple[float, float]) -> None:
    a, b = data.draw(f32s((1, k))), data.draw(f32s((n,)))
    w = data.draw(hnp.arrays(np.int8, (n, k)))
    s = data.draw(scales(n))
    got = f32_qc8w_gemm(a, w, s, b, clamp_min=lohi[0], clamp_max=lohi[1], fz=fz, kernel="acc4")
    same(got, ref_qcw(a, w, s, b, *lohi, fz, "acc4"))


@SET
@given(
    data=st.data(),
    m=st.integers(1, 3),
    n=st.integers(1, 9),
    k=st.integers(1, 11),
    fz=st.booleans(),
    zp=st.sampled_from([0, 8]),
    signed=st.booleans(),
    lohi=bounds,
)
def test_f32_qc4w(
    data: Any, m: int, n: int, k: int, fz: bool, zp: int, signed: bool, lohi: tuple[float, float]
) -> None:
    a, b = data.draw(f32s((m, k))), data.draw(f32s((n,)))
    s = data.draw(scales(n))
    if signed:
        zp = 8
        w = data.draw(hnp.arrays(np.int8, (n, k), elements=st.integers(-8, 7)))
        wv = w.astype(np.int64)
    else:
        w = data.draw(hnp.arrays(np.uint8, (n, k), elements=st.integers(0, 15)))
        wv = w.astype(np.int64) - zp
    got = f32_qc4w_gemm(a, w, s, b, kernel_zero_point=zp, clamp_min=lohi[0], clamp_max=lohi[1], fz=fz)
    same(got, ref_qcw(a, wv, s, b, *lohi, fz, "qc4w"))


def test_qc8w_bias_is_scaled_too() -> None:
    # (bias + sum) * scale, as XNNPACK's kernels and testers compute it.
    a = np.array([[1.0, 2.0]], F32)
    w = np.array([[3, -1]], np.int8)
    s = np.array([0.5], F32)
    b = np.array([10.0], F32)
    for kern in ("ld128", "acc4"):
        assert f32_qc8w_gemm(a, w, s, b, kernel=kern)[0, 0] == F32(5.5)  # (10 + 3 - 2) * 0.5
    assert f32_qc4w_gemm(a, np.array([[11, 7]], np.uint8), s, b)[0, 0] == F32(5.5)


def test_qc8w_negative_zero_acc4_vs_ld128() -> None:
    # bias -0, products -0: the single chain keeps -0; acc4's final FADD with B = +0 gives +0.
    a = np.zeros((1, 3), F32)
    w = np.full((1, 3), -5, np.int8)
    s = np.ones(1, F32)
    b = np.array([-0.0], F32)
    assert np.signbit(f32_qc8w_gemm(a, w, s, b, kernel="ld128")[0, 0])
    assert not np.signbit(f32_qc8w_gemm(a, w, s, b, kernel="acc4")[0, 0])


def test_qcw_nan_inf_and_clamp() -> None:
    s = np.ones(3, F32)
    w = np.array([[1], [-1], [0]], np.int8)
    for kern in ("ld128", "acc4"):
        # NaN activation -> default NaN through the clamp (FMAX/FMIN propagate it).
        y = f32_qc8w_gemm(np.array([[np.nan]], F32), w, s, clamp_min=-1.0, clamp_max=1.0, kernel=kern)
        assert np.all(np.isnan(y)) and np.all(y.view(np.uint32) == 0x7FC00000)
        # inf * 1, inf * -1, inf * 0 (= NaN), then the clamp.
        y = f32_qc8w_gemm(np.array([[np.inf]], F32), w, s, clamp_min=-1.0, clamp_max=1.0, kernel=kern)
        assert y[0, 0] == 1.0 and y[0, 1] == -1.0 and np.isnan(y[0, 2])
    y4 = f32_qc4w_gemm(np.array([[np.inf]], F32), np.array([[9], [7], [8]], np.uint8), s)
    assert y4[0, 0] == np.inf and y4[0, 1] == -np.inf and np.isnan(y4[0, 2])


def test_qcw_fz_subnormals() -> None:
    sub = F32(1e-40)  # binary32 subnormal
    a = np.array([[sub, 1.0]], F32)
    w = np.array([[1, 0]], np.int8)
    s = np.ones(1, F32)
    assert f32_qc8w_gemm(a, w, s, fz=False)[0, 0] == sub
    assert f32_qc8w_gemm(a, w, s, fz=True)[0, 0] == 0.0
    # A normal sum times the scale underflows: FMUL's tiny result is flushed, sign kept.
    a2 = np.array([[-(2.0**-120)]], F32)
    s2 = np.array([2.0**-10], F32)
    y = f32_qc8w_gemm(a2, np.array([[1]], np.int8), s2, fz=True)
    assert y[0, 0] == 0.0 and np.signbit(y[0, 0])
    assert f32_qc4w_gemm(a2, np.array([[9]], np.uint8), s2, fz=False)[0, 0] == F32(-(2.0**-130))


def test_qc4w_nibble_extremes() -> None:
    a = np.array([[1.0, 1.0]], F32)
    s = np.ones(2, F32)
    codes = np.array([[0, 0], [15, 15]], np.uint8)
    same(f32_qc4w_gemm(a, codes, s, kernel_zero_point=8), [[-16.0, 14.0]])
    same(f32_qc4w_gemm(a, codes, s, kernel_zero_point=0), [[0.0, 30.0]])
    same(f32_qc4w_gemm(a, np.array([[-8, -8], [7, 7]], np.int8), s), [[-16.0, 14.0]])


def test_qc4w_unpack() -> None:
    packed = np.array([[0x21, 0x0F], [0xF0, 0x07]], np.uint8)
    assert qc4w_unpack(packed, 3).tolist() == [[1, 2, 15], [0, 15, 7]]
    assert qc4w_unpack(packed[:, :1], 2).tolist() == [[1, 2], [0, 15]]
    with pytest.raises(ValueError, match="high nibble"):
        qc4w_unpack(np.array([[0x12, 0x10]], np.uint8), 3)
    with pytest.raises(ValueError, match="bytes per row"):
        qc4w_unpack(packed, 5)
    with pytest.raises(TypeError):
        qc4w_unpack(packed.astype(np.int8), 3)


def test_qcw_ukernel_names() -> None:
    assert f32_qcw_ukernel("f32_qc8w_gemm", 1) == (
        "acc4", "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4", 1, 8)  # fmt: skip
    assert f32_qcw_ukernel("f32_qc8w_gemm", 1, apple=True)[1].endswith("1x8__asm_aarch64_neonfma_ld128")
    assert f32_qcw_ukernel("f32_qc8w_gemm", 5) == (
        "ld128", "xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128", 6, 8)  # fmt: skip
    assert f32_qcw_ukernel("f32_qc4w_gemm", 2)[1] == "xnn_f32_qc4w_gemm_minmax_ukernel_6x8__aarch64_neonfma_lane_ld128"
    assert f32_qcw_ukernel("f32_qc8w_gemm", 3, x86="avx2") == (
        "x86_fma", "xnn_f32_qc8w_gemm_minmax_ukernel_5x16__avx2_broadcast", 5, 16)  # fmt: skip
    assert f32_qcw_ukernel("f32_qc4w_gemm", 3, x86="avx512skx")[1:] == (
        "xnn_f32_qc4w_gemm_minmax_ukernel_7x32__avx512skx_broadcast", 7, 32)  # fmt: skip
    assert f32_qcw_ukernel("f32_qc4w_gemm", 3, x86="fma3")[1] == "xnn_f32_qc4w_gemm_minmax_ukernel_3x16__fma3_broadcast"
    assert f32_qcw_ukernel("f32_qc8w_gemm", 1, x86="sse41") == (
        "x86_sse41", "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__sse41_dup", 1, 8)  # fmt: skip
    assert f32_qcw_ukernel("f32_qc8w_gemm", 1, x86="avx")[0] == "x86_avx"
    with pytest.raises(ValueError):
        f32_qcw_ukernel("f32_qc8w_gemm", 1, x86="neon")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        f32_qcw_ukernel("f32_gemm", 1)
    with pytest.raises(ValueError):
        f32_qcw_ukernel("f32_qc4w_gemm", 0)


def test_qcw_rejects_bad_input() -> None:
    a = np.ones((2, 3), F32)
    w = np.ones((4, 3), np.int8)
    s = np.ones(4, F32)
    with pytest.raises(TypeError, match="int8"):
        f32_qc8w_gemm(a, w.astype(np.int16), s)
    with pytest.raises(TypeError, match="float32"):
        f32_qc8w_gemm(a.astype(np.float64), w, s)
    with pytest.raises(ValueError, match="K mismatch"):
        f32_qc8w_gemm(a, np.ones((4, 2), np.int8), s)
    with pytest.raises(ValueError, match="scale must have shape"):
        f32_qc8w_gemm(a, w, np.ones(3, F32))
    for bad in (0.0, -1.0, 1e-40, np.nan, np.inf):
        with pytest.raises(ValueError, match="normal and > 0"):
            f32_qc8w_gemm(a, w, np.full(4, bad, F32))
    with pytest.raises(ValueError, match="bias must have shape"):
        f32_qc8w_gemm(a, w, s, np.ones(3, F32))
    with pytest.raises(ValueError, match="clamp_min must be < clamp_max"):
        f32_qc8w_gemm(a, w, s, clamp_min=1.0, clamp_max=1.0)
    with pytest.raises(ValueError, match="clamp_min must be < clamp_max"):
        f32_qc8w_gemm(a, w, s, clamp_min=np.nan)
    with pytest.raises(ValueError, match="one row"):
        f32_qc8w_gemm(a, w, s, kernel="acc4")
    with pytest.raises(ValueError, match="kernel must be one of"):
        f32_qc8w_gemm(a, w, s, kernel="ld64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kernel_zero_point"):
        f32_qc4w_gemm(a, w.astype(np.uint8), s, kernel_zero_point=1)
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        f32_qc4w_gemm(a, np.full((4, 3), 16, np.uint8), s)
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        f32_qc4w_gemm(a, np.full((4, 3), 8, np.int8), s)
    with pytest.raises(ValueError, match="must be 8"):
        f32_qc4w_gemm(a, w, s, kernel_zero_point=0)
    with pytest.raises(TypeError, match="nibble codes"):
        f32_qc4w_gemm(a, w.astype(np.int32), s)
    with pytest.raises(ValueError, match="kernel must be one of"):
        f32_qc4w_gemm(a, w, s, kernel="ld128")  # type: ignore[arg-type]


def ref_x86_qcw(
    a: np.ndarray, wv: np.ndarray, s: np.ndarray, b: np.ndarray, lo: float, hi: float, fz: bool, kernel: str
) -> np.ndarray:
    m, k = a.shape
    n = wv.shape[0]
    out = np.empty((m, n))
    flo, fhi = (rd(as_fmt(v, "f32"), "f32", fz) for v in (lo, hi))
    for i in range(m):
        for j in range(n):
            v = float(b[j])
            for t in range(k):
                x, w = float(a[i, t]), float(wv[j, t])
                if kernel == "x86_fma":
                    v = xfma(x, w, v, fz)
                else:
                    v = xfma(1.0, v, xfma(x, w, -0.0, fz), fz)
            v = xfma(v, float(s[j]), -0.0, fz)
            if kernel == "x86_sse41":
                out[i, j] = x86_max(x86_min(v, fhi), flo)
            else:
                out[i, j] = x86_min(fhi, x86_max(flo, v))
    return out


X86_QCW = ["x86_fma", "x86_avx", "x86_sse41"]


@SET
@given(
    data=st.data(),
    m=st.integers(1, 3),
    n=st.integers(1, 9),
    k=st.integers(1, 9),
    fz=st.booleans(),
    kernel=st.sampled_from(X86_QCW),
    lim=st.sampled_from([1e3, 2.0**-120]),
    four_bit=st.booleans(),
    lohi=bounds,
)
def test_f32_qcw_x86(
    data: Any, m: int, n: int, k: int, fz: bool, kernel: Any, lim: float, four_bit: bool, lohi: tuple[float, float]
) -> None:
    a, b = data.draw(f32s((m, k), lim)), data.draw(f32s((n,), lim))
    s = data.draw(scales(n))
    if four_bit:
        w = data.draw(hnp.arrays(np.uint8, (n, k), elements=st.integers(0, 15)))
        got = f32_qc4w_gemm(a, w, s, b, clamp_min=lohi[0], clamp_max=lohi[1], fz=fz, kernel=kernel)
        wv = w.astype(np.int64) - 8
    else:
        w = data.draw(hnp.arrays(np.int8, (n, k)))
        got = f32_qc8w_gemm(a, w, s, b, clamp_min=lohi[0], clamp_max=lohi[1], fz=fz, kernel=kernel)
        wv = w.astype(np.int64)
    same(got, ref_x86_qcw(a, wv, s, b, *lohi, fz, kernel))


def test_ftz_after_rounding_x86_vs_before_rounding_arm() -> None:
    # (1 - 2**-23) * FLT_MIN * (1 + 2**-23) = FLT_MIN * (1 - 2**-46): tiny before rounding (Arm FZ
    # flushes it), FLT_MIN after rounding (x86 FTZ keeps it).
    a = np.array([[1.0 - 2.0**-23]], F32)
    w = np.array([[1]], np.int8)
    s = np.array([2.0**-126 * (1.0 + 2.0**-23)], F32)
    flt_min = np.finfo(F32).tiny
    assert f32_qc8w_gemm(a, w, s, fz=True, kernel="ld128")[0, 0] == 0.0
    for kern in X86_QCW:
        assert f32_qc8w_gemm(a, w, s, fz=True, kernel=kern)[0, 0] == flt_min  # type: ignore[arg-type]
        assert f32_qc4w_gemm(a, np.array([[9]], np.uint8), s, fz=True, kernel=kern)[0, 0] == flt_min  # type: ignore[arg-type]
    assert f32_qc8w_gemm(a, w, s, fz=False, kernel="ld128")[0, 0] == flt_min


def test_x86_qcw_clamp_nan_and_zero() -> None:
    s = np.ones(1, F32)
    nan = np.array([[np.nan]], F32)
    w = np.array([[1]], np.int8)
    # Bound-first MAXPS/MINPS let the NaN through; SSE4.1's accumulator-first order turns it into max.
    assert np.isnan(f32_qc8w_gemm(nan, w, s, clamp_min=-1.0, clamp_max=1.0, kernel="x86_fma")[0, 0])
    assert np.isnan(f32_qc8w_gemm(nan, w, s, clamp_min=-1.0, clamp_max=1.0, kernel="x86_avx")[0, 0])
    assert f32_qc8w_gemm(nan, w, s, clamp_min=-1.0, clamp_max=1.0, kernel="x86_sse41")[0, 0] == 1.0
    # y = -0 with min = +0: MAXPS(+0, -0) keeps -0; SSE4.1's MAXPS(-0, +0) gives +0; Arm FMAX gives +0.
    z, wn, bn = np.zeros((1, 1), F32), np.array([[-1]], np.int8), np.array([-0.0], F32)
    assert np.signbit(f32_qc8w_gemm(z, wn, s, bn, clamp_min=0.0, clamp_max=1.0, kernel="x86_fma")[0, 0])
    assert not np.signbit(f32_qc8w_gemm(z, wn, s, bn, clamp_min=0.0, clamp_max=1.0, kernel="x86_sse41")[0, 0])
    assert not np.signbit(f32_qc8w_gemm(z, wn, s, bn, clamp_min=0.0, clamp_max=1.0, kernel="ld128")[0, 0])


def test_x86_mul_add_rounds_twice() -> None:
    # bias 1, a*w = 1 + 2**-23 + ... : MULPS rounds the product first, FMA does not.
    a = np.array([[1.0 + 2.0**-23]], F32)
    w = np.array([[3]], np.int8)  # 3 + 3 * 2**-23: RN32 drops 2**-23 (ulp 2**-22 at 3)
    b = np.array([-3.0], F32)
    s = np.ones(1, F32)
    assert f32_qc8w_gemm(a, w, s, b, kernel="x86_fma")[0, 0] == F32(3 * 2.0**-23)
    assert f32_qc8w_gemm(a, w, s, b, kernel="x86_avx")[0, 0] == F32(4 * 2.0**-23)


# ---- x86-64 f16 -----------------------------------------------------------------------------------


def ref_x86_chain(xs: list[float], ws: list[float], bias: float, lo: float, hi: float, kernel: str) -> float:
    """One output of an x86 f16 kernel from its (activation, weight) sequence."""
    lo16, hi16 = as_fmt(as_fmt(lo, "f32"), "f16"), as_fmt(as_fmt(hi, "f32"), "f16")
    acc = bias
    for x, w in zip(xs, ws, strict=True):
        if kernel == "avx512fp16":
            acc = rfma(x, w, acc, "f16", False)
        elif kernel == "avx2_f16acc":
            v = rfma(x, w, acc, "f32", False)
            acc = v if not math.isfinite(v) else rnd(Fr(v), "f16", False, math.copysign(1.0, v) < 0)
        else:
            acc = rfma(x, w, acc, "f32", False)
    if kernel == "avx512fp16":
        return x86_min(hi16, x86_max(lo16, acc))
    v = x86_min(x86_max(acc, lo16), hi16)
    return v if not math.isfinite(v) else rnd(Fr(v), "f16", False, math.copysign(1.0, v) < 0)


f16_bounds = st.sampled_from([(-INF, INF), (-3.0, 3.0), (0.0, 65504.0), (-1e-6, 1e-6)])


@SET
@given(
    data=st.data(),
    m=st.integers(1, 3),
    n=st.integers(1, 9),
    k=st.integers(1, 11),
    kernel=st.sampled_from(sorted(F16_X86_KERNELS)),
    lohi=f16_bounds,
    fz=st.booleans(),
)
def test_f16_x86_gemm(data: Any, m: int, n: int, k: int, kernel: Any, lohi: tuple[float, float], fz: bool) -> None:
    a, w, b = data.draw(f16s((m, k))), data.draw(f16s((n, k))), data.draw(f16s((n,)))
    ref = [
        [ref_x86_chain([float(v) for v in a[i]], [float(v) for v in w[j]], float(b[j]), *lohi, kernel)
         for j in range(n)]
        for i in range(m)
    ]  # fmt: skip
    same(f16_x86_gemm(a, w, b, clamp_min=lohi[0], clamp_max=lohi[1], fz=fz, kernel=kernel), ref)


@SET
@given(
    data=st.data(),
    hw=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    khw=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    groups=st.integers(1, 2),
    gic=st.integers(1, 3),
    goc=st.integers(1, 3),
    pad=st.tuples(*[st.integers(0, 1)] * 4),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    kernel=st.sampled_from(["avx2", "avx512skx", "avx512fp16"]),
)
def test_f16_x86_igemm(
    data: Any,
    hw: tuple[int, int],
    khw: tuple[int, int],
    groups: int,
    gic: int,
    goc: int,
    pad: tuple[int, int, int, int],
    stride: tuple[int, int],
    dil: tuple[int, int],
    kernel: Any,
) -> None:
    (h, wd), (kh, kw) = hw, khw
    pt, pr, pb, pl = pad
    ho = (h + pt + pb - ((kh - 1) * dil[0] + 1)) // stride[0] + 1
    wo = (wd + pl + pr - ((kw - 1) * dil[1] + 1)) // stride[1] + 1
    if ho < 1 or wo < 1:
        return
    x = data.draw(f16s((2, h, wd, groups * gic)))
    wt = data.draw(f16s((groups * goc, kh, kw, gic)))
    b = data.draw(f16s((groups * goc,)))
    got = f16_x86_igemm(x, wt, b, stride=stride, dilation=dil, padding=pad, groups=groups, kernel=kernel)
    ref = np.empty((2, ho, wo, groups * goc))
    for bi in range(2):
        for oy in range(ho):
            for ox in range(wo):
                for o in range(groups * goc):
                    g = o // goc
                    xs, ws = [], []
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * stride[0] - pt + ky * dil[0]
                            ix = ox * stride[1] - pl + kx * dil[1]
                            inside = 0 <= iy < h and 0 <= ix < wd
                            for c in range(gic):
                                xs.append(float(x[bi, iy, ix, g * gic + c]) if inside else 0.0)
                                ws.append(float(wt[o, ky, kx, c]))
                    ref[bi, oy, ox, o] = ref_x86_chain(xs, ws, float(b[o]), -INF, INF, kernel)
    same(got, ref)


def test_f16_x86_nan_and_zero_sign_clamp() -> None:
    a = np.array([[np.inf]], F16)
    w = np.array([[1.0], [-1.0], [0.0]], F16)
    b = np.array([-np.inf, 0.0, 0.0], F16)
    # inf + -inf and inf * 0 are NaN: MAXPS(NaN, min) -> min in the f32acc kernels.
    for kern in ("avx2", "avx512skx", "avx2_f16acc"):
        y = f16_x86_gemm(a, w, b, clamp_min=-2.0, clamp_max=2.0, kernel=kern)
        same(y, [[-2.0, -2.0, -2.0]])
        same(f16_x86_gemm(a, w, b, kernel=kern), [[-np.inf, -np.inf, -np.inf]])
    y = f16_x86_gemm(a, w, b, clamp_min=-2.0, clamp_max=2.0, kernel="avx512fp16")
    assert np.isnan(y[0, 0]) and y[0, 1] == -2.0 and np.isnan(y[0, 2])
    # acc = -0: MAXPS(-0, +0) returns the bound (+0); MAXPH(+0, -0) returns the accumulator (-0).
    z = np.zeros((1, 1), F16)
    wn, bn = np.array([[-1.0]], F16), np.array([-0.0], F16)
    assert not np.signbit(f16_x86_gemm(z, wn, bn, clamp_min=0.0, clamp_max=1.0, kernel="avx2")[0, 0])
    assert np.signbit(f16_x86_gemm(z, wn, bn, clamp_min=0.0, clamp_max=1.0, kernel="avx512fp16")[0, 0])
    assert np.signbit(f16_x86_gemm(z, wn, bn, kernel="avx2")[0, 0])


def test_f16_x86_fz_has_no_effect_and_subnormals_survive() -> None:
    tiny = F16(2.0**-24)  # smallest fp16 subnormal
    a = np.array([[tiny, tiny]], F16)
    w = np.array([[1.0, 2.0]], F16)
    for kern in ALL_X86:
        on = f16_x86_gemm(a, w, fz=True, kernel=kern)
        off = f16_x86_gemm(a, w, fz=False, kernel=kern)
        same(on, off)
        assert on[0, 0] == F16(3 * 2.0**-24)


def test_f16_x86_accumulations_differ() -> None:
    # 2048 + 1 + 1: f32 accumulation keeps 2050; fp16 accumulation loses each +1 (ulp 2 at 2048).
    a = np.array([[1.0, 1.0, 1.0]], F16)
    w = np.array([[2048.0, 1.0, 1.0]], F16)
    assert f16_x86_gemm(a, w, kernel="avx2")[0, 0] == 2050.0
    assert f16_x86_gemm(a, w, kernel="avx512fp16")[0, 0] == 2048.0
    assert f16_x86_gemm(a, w, kernel="avx2_f16acc")[0, 0] == 2048.0


def test_f16_x86_double_rounding_avx2_f16acc() -> None:
    # 1 + a*w is 70 * 2**-31 below the fp16 midpoint 1 + 3 * 2**-11: RN32 lands on the midpoint
    # and RN16 then ties to even (up, 1 + 2**-9); one rounding (fused fp16 FMA) gives 1 + 2**-10.
    a = np.array([[1718 * 2.0**-21]], F16)
    w = np.array([[1831 * 2.0**-10]], F16)
    b = np.array([1.0], F16)
    assert f16_x86_gemm(a, w, b, kernel="avx2_f16acc")[0, 0] == 1.0 + 2.0**-9
    assert f16_x86_gemm(a, w, b, kernel="avx512fp16")[0, 0] == 1.0 + 2.0**-10
    assert f16_x86_gemm(a, w, b, kernel="avx2")[0, 0] == 1.0 + 2.0**-9  # f32 sum, one RN16 at the end


def test_f16_x86_ukernel_names() -> None:
    assert f16_x86_ukernel(1) == ("avx2", "xnn_f16_f32acc_gemm_minmax_ukernel_1x16__avx2_broadcast", 1, 16)
    assert f16_x86_ukernel(9, igemm=True)[1:] == ("xnn_f16_f32acc_igemm_minmax_ukernel_4x16__avx2_broadcast", 4, 16)
    assert f16_x86_ukernel(2, avx512skx=True)[1] == "xnn_f16_f32acc_gemm_minmax_ukernel_4x32__avx512skx_broadcast"
    assert f16_x86_ukernel(2, avx512fp16=True, avx512skx=True) == (
        "avx512fp16", "xnn_f16_gemm_minmax_ukernel_8x32__avx512fp16_broadcast", 8, 32)  # fmt: skip
    with pytest.raises(ValueError):
        f16_x86_ukernel(0)


def test_f16_x86_rejects_bad_input() -> None:
    a = np.ones((2, 3), F16)
    w = np.ones((4, 3), F16)
    with pytest.raises(TypeError, match="float16"):
        f16_x86_gemm(a.astype(F32), w)
    with pytest.raises(ValueError, match="K mismatch"):
        f16_x86_gemm(a, np.ones((4, 2), F16))
    with pytest.raises(ValueError, match="bias must have shape"):
        f16_x86_gemm(a, w, np.ones(3, F16))
    with pytest.raises(ValueError, match="kernel must be one of"):
        f16_x86_gemm(a, w, kernel="sse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min < max"):
        f16_x86_gemm(a, w, clamp_min=1.0, clamp_max=1.0001)  # equal after rounding to fp16
    with pytest.raises(ValueError, match="IGEMM"):
        f16_x86_igemm(np.ones((1, 2, 2, 3), F16), np.ones((4, 1, 1, 3), F16), kernel="avx2_f16acc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="groups"):
        f16_x86_igemm(np.ones((1, 2, 2, 3), F16), np.ones((4, 1, 1, 3), F16), groups=2)


def test_kernel_tables_match_literals() -> None:
    assert set(ALL_X86) == set(F16_X86_KERNELS)


@pytest.mark.slow
def test_large_k_against_reference() -> None:
    # Long chains hit the fast paths of fma32_chain / fma16_chain (blocked k, threads).
    rng = np.random.default_rng(7)
    m, n, k = 7, 17, 257
    a = rng.uniform(-4, 4, (m, k)).astype(F32)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    s = rng.uniform(0.001, 0.1, n).astype(F32)
    b = rng.uniform(-10, 10, n).astype(F32)
    same(f32_qc8w_gemm(a, w, s, b), ref_qcw(a, w, s, b, -INF, INF, True, "ld128"))
    same(f32_qc8w_gemm(a[:1], w, s, b, kernel="acc4"), ref_qcw(a[:1], w, s, b, -INF, INF, True, "acc4"))
    a16 = rng.uniform(-2, 2, (m, k)).astype(F16)
    w16 = rng.uniform(-2, 2, (n, k)).astype(F16)
    b16 = rng.uniform(-2, 2, n).astype(F16)
    for kern in ALL_X86:
        ref = [
            [ref_x86_chain([float(v) for v in a16[i]], [float(v) for v in w16[j]], float(b16[j]), -INF, INF, kern)
             for j in range(n)]
            for i in range(m)
        ]  # fmt: skip
        same(f16_x86_gemm(a16, w16, b16, kernel=kern), ref)
