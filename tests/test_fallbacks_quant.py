"""The 4-bit / fp16-output / qu8 generic fallbacks and the qp8_f32_qc4w KleidiAI emulation against
independent per-element references of their documented steps.

References use exact rationals (``fractions.Fraction``) and a hand-written round-to-nearest-even
into binary32/binary16 (FZ/FZ16: tiny -> signed 0), not the package's helpers.
"""

from __future__ import annotations

import math
from fractions import Fraction as Fr
from typing import Any

import numpy as np
import pytest
from _exact import clamp, rd, rnd, same
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kleidiref import fallbacks as F
from kleidiref.fallbacks.qd8_f16 import f16_output
from kleidiref.fallbacks.qu8 import rndnu_params
from kleidiref.numerics import f32_to_bf16_rne
from kleidiref.quant.qai8dx import quantize_qai8dx
from kleidiref.quant.qd8 import quantize_qd8
from kleidiref.quant.qd8_f16 import quantize_qd8_f16
from kleidiref.targets import APPLE_M4, GENERIC_SME1
from kleidiref.testing.strategies import channel_scales, int4_weights
from kleidiref.variants import VARIANTS
from kleidiref.variants import qp8_f32_qc4w_gemm as Q4

SET = settings(max_examples=30, deadline=None)
F32, F16 = np.float32, np.float16
SME2_MOPA8 = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa"
SME2_GEMV8 = "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot"
SME1_MOPA8 = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa"
SME1_GEMV8 = "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot"
NEON8 = "kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm"
dims = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 40))


def f32s(shape: Any, lim: float = 10.0) -> Any:
    return hnp.arrays(F32, shape, elements=st.floats(-lim, lim, width=32, allow_subnormal=True))


# ---- qd8_f32_qc4w ---------------------------------------------------------------------------------


@SET
@given(data=st.data(), mnk=dims, fz=st.booleans())
def test_qd8_f32_qc4w_matches_documented_steps(data: Any, mnk: tuple[int, int, int], fz: bool) -> None:
    m, n, k = mnk
    x = data.draw(f32s((m, k)))
    w = data.draw(int4_weights(shape=(n, k)))
    ws = data.draw(channel_scales(n=n, min_value=2.0**-10, max_value=1.0))
    b = data.draw(f32s((n,)))
    q, a, zp = quantize_qd8(x)
    out = F.qd8_f32_qc4w_gemm(q, a, zp, w, ws, b, clamp_min=-20.0, clamp_max=20.0, fz=fz)
    for i in range(m):
        for j in range(n):
            # acc16 = -16*sum(w)*zp + sum(q * 16w); SCVTF #4 -> RN32(acc16 / 16); FMUL a; FMA ws, b
            acc16 = -16 * sum(int(v) for v in w[j]) * int(zp[i]) + sum(
                int(q[i, t]) * 16 * int(w[j, t]) for t in range(k)
            )
            f = rnd(Fr(acc16, 16), "f32", fz)
            t_ = rnd(rd(f, "f32", fz) * rd(a[i], "f32", fz), "f32", fz)
            y = rnd(rd(t_, "f32", fz) * rd(ws[j], "f32", fz) + rd(b[j], "f32", fz), "f32", fz)
            assert float(out[i, j]) == clamp(y, -20.0, 20.0)


def test_qd8_f32_qc4w_equals_the_qc8w_epilogue_without_wraparound() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 70)).astype(F32)
    w = rng.integers(-8, 8, (9, 70)).astype(np.int8)
    ws = rng.uniform(0.01, 0.1, 9).astype(F32)
    q, a, zp = quantize_qd8(x)
    same(F.qd8_f32_qc4w_gemm(q, a, zp, w, ws), F.qd8_f32_qc8w_gemm(q, a, zp, w, ws))


def test_qd8_f32_qc4w_rejects_bad_weights() -> None:
    q, a, zp = quantize_qd8(np.ones((1, 4), F32))
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        F.qd8_f32_qc4w_gemm(q, a, zp, np.full((1, 4), 9, np.int8), np.ones(1, F32))
    with pytest.raises(TypeError, match="int8"):
        F.qd8_f32_qc4w_gemm(q, a, zp, np.ones((1, 4), np.uint8), np.ones(1, F32))
    with pytest.raises(ValueError, match="K mismatch"):
        F.qd8_f32_qc4w_gemm(q, a, zp, np.ones((1, 5), np.int8), np.ones(1, F32))


# ---- qp8_f32_qc4w (KleidiAI, outside the five variants) -------------------------------------------


def _wrap(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


@SET
@given(
    data=st.data(),
    mnk=dims,
    fz=st.booleans(),
    name=st.sampled_from(sorted(Q4.KERNELS)),
)
def test_qp8_f32_qc4w_kernels_match_documented_steps(data: Any, mnk: tuple[int, int, int], fz: bool, name: str) -> None:
    m, n, k = mnk
    kern = Q4.KERNELS[name]
    x = data.draw(f32s((m, k)))
    w = data.draw(int4_weights(shape=(n, k)))
    ws = data.draw(channel_scales(n=n, min_value=2.0**-10, max_value=1.0))
    b = data.draw(f32s((n,)))
    out = Q4.gemm(
        x, w, ws, bias=b, clamp_min=-20.0, clamp_max=20.0, target=APPLE_M4.replace(flush_to_zero=fz), kernel=name
    )
    q, dq, zp = quantize_qai8dx(x, k_block_len=kern.kr // kern.sr)
    mul = 16 if kern.x16 else 1
    for j in range(n):
        rsum = _wrap(mul * sum(int(v) for v in w[j]))
        s = float(F32(ws[j]) * F32(0.0625)) if kern.x16 else float(ws[j])
        for i in range(m):
            acc = _wrap(sum(int(q[i, t]) * mul * int(w[j, t]) for t in range(k)))
            acc = _wrap(acc + -int(zp[i]) * rsum)
            f = rnd(Fr(acc), "f32", fz)
            sc = rnd(rd(dq[i], "f32", fz) * rd(s, "f32", fz), "f32", fz)
            if kern.fused:  # FMLA: one rounding
                y = rnd(rd(sc, "f32", fz) * rd(f, "f32", fz) + rd(b[j], "f32", fz), "f32", fz)
            else:  # FMUL then FADD
                y = rnd(
                    rd(rnd(rd(f, "f32", fz) * rd(sc, "f32", fz), "f32", fz), "f32", fz) + rd(b[j], "f32", fz), "f32", fz
                )
            assert float(out[i, j]) == clamp(y, -20.0, 20.0), (i, j)


def test_qp8_f32_qc4w_equals_the_qc8w_kernels_with_the_same_epilogue() -> None:
    # Without wraparound or subnormal scales, 16x nibbles with scale / 16 give the qc8w bits.
    q8 = VARIANTS["qp8_f32_qc8w_gemm"]
    pairs = {
        "kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa": SME2_MOPA8,
        "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot": SME2_GEMV8,
        "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa": SME1_MOPA8,
        "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot": SME1_GEMV8,
        "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm": NEON8,
        "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod": NEON8,
    }
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 70)).astype(F32)
    w = rng.integers(-8, 8, (9, 70)).astype(np.int8)
    ws = rng.uniform(0.01, 0.1, 9).astype(F32)
    b = rng.standard_normal(9).astype(F32)
    for k4, k8 in pairs.items():
        got = Q4.gemm(x, w, ws, bias=b, clamp_min=-1.0, clamp_max=1.0, target=APPLE_M4, kernel=k4)
        ref = q8.gemm(x, w, ws, bias=b, clamp_min=-1.0, clamp_max=1.0, target=APPLE_M4, kernel=k8)
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32), err_msg=k4)


def test_qp8_f32_qc4w_selection_and_errors() -> None:
    assert Q4.select_kernel(APPLE_M4, 1).name.endswith("1x4vl_sme2_sdot")
    assert Q4.select_kernel(GENERIC_SME1, 7).name.endswith("1vlx4vl_sme_mopa")
    assert Q4.xnn_kernel_name(APPLE_M4.replace(svl_bits=128), 7) == (
        "xnn_qp8_f32_qc4w_gemm_minmax_ukernel_4x16c4__neonsme2",
        4,
        16,
    )
    with pytest.raises(ValueError, match="NULL"):
        Q4.select_kernel(APPLE_M4.replace(kleidiai=False), 2)
    x, s = np.ones((2, 8), F32), np.ones(3, F32)
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        Q4.gemm(x, np.full((3, 8), 8, np.int8), s, target=APPLE_M4)
    with pytest.raises(ValueError, match="not a qp8_f32_qc4w"):
        Q4.gemm(x, np.ones((3, 8), np.int8), s, target=APPLE_M4, kernel="nope")
    with pytest.raises(TypeError, match="scale"):
        Q4.gemm(x, np.ones((3, 8), np.int8), np.ones(2, F32), target=APPLE_M4)
    t = Q4.gemm(x, np.ones((8, 3), np.int8), s, transpose_rhs=True, target=APPLE_M4)
    np.testing.assert_array_equal(t, Q4.gemm(x, np.ones((3, 8), np.int8), s, target=APPLE_M4))


# ---- qd8 from fp16 and the qd8_f16 GEMMs ----------------------------------------------------------


def f16s(shape: Any, lim: float = 60.0) -> Any:
    return hnp.arrays(F16, shape, elements=st.floats(-lim, lim, width=16, allow_subnormal=True))


def ref_qd8_f16_row(x: np.ndarray, fz: bool) -> tuple[list[int], float, int]:
    """xnn_f16_qd8_asymmetric_quantization_params + the NEON fp16 convert, element by element."""
    xs = [0.0 if fz and v != 0 and abs(float(v)) < 2.0**-14 else float(v) for v in x]
    rmin, rmax = min(0.0, min(xs)), max(0.0, max(xs))
    s = 1.0 if rmin == rmax else rnd(Fr(255) / Fr(rnd(Fr(rmax) - Fr(rmin), "f32", False)), "f32", False)
    dmin, dmax = rnd(Fr(rmin) * Fr(s), "f32", False), rnd(Fr(rmax) * Fr(s), "f32", False)
    lo = rnd(Fr(-128) + Fr(dmin), "f32", False)
    hi = rnd(Fr(127) + Fr(dmax), "f32", False)
    zpf = (
        rnd(Fr(-128) - Fr(dmin), "f32", False)
        if rnd(Fr(lo) + Fr(hi), "f32", False) > 0
        else rnd(Fr(127) - Fr(dmax), "f32", False)
    )
    zp = int(np.rint(min(max(zpf, -128.0), 127.0)))
    a = rnd(Fr(1) / Fr(s), "f32", False)
    s16 = rnd(Fr(s), "f16", False)
    q = []
    for v in xs:
        if math.isinf(s16):  # RN16(s) overflowed: 0 * inf = NaN -> 0, else +-inf saturates
            r = 0 if v == 0 else int(math.copysign(32767, v) if v > 0 else -32768)
        else:
            p = rnd(Fr(v) * Fr(s16), "f16", fz)
            r = max(-32768, min(32767, round(p)))  # Python round: ties to even
        q.append(max(-128, min(127, max(-32768, min(32767, r + zp)))))
    return q, a, zp


@SET
@given(data=st.data(), m=st.integers(1, 3), k=st.integers(1, 24), fz=st.booleans())
def test_quantize_qd8_f16_matches_documented_steps(data: Any, m: int, k: int, fz: bool) -> None:
    x = data.draw(f16s((m, k)))
    q, a, zp = quantize_qd8_f16(x, fz=fz)
    for i in range(m):
        rq, ra, rzp = ref_qd8_f16_row(x[i], fz)
        assert q[i].tolist() == rq and float(a[i]) == ra and int(zp[i]) == rzp


def test_quantize_qd8_f16_zero_row_and_tiny_range() -> None:
    q, a, zp = quantize_qd8_f16(np.zeros((1, 4), F16))
    assert q.tolist() == [[127] * 4] and a.tolist() == [1.0] and zp.tolist() == [127]
    tiny = np.array([[0.0, 2.0**-20]], F16)  # s = 255 / 2**-20 overflows fp16: the convert saturates
    q, _, zp = quantize_qd8_f16(tiny)
    assert zp.tolist() == [-128] and q.tolist() == [[-128, 127]]


def _f16_out(y: float, lo: float, hi: float, fz: bool) -> float:
    """FCVTN (RNE, no flush), then fp16 FMAX / FMIN with FZ16 operand flush."""
    y16 = rnd(Fr(y), "f16", False) if math.isfinite(y) else y
    if fz and y16 != 0 and abs(y16) < 2.0**-14:
        y16 = math.copysign(0.0, y16)
    return clamp(y16, float(F16(lo)), float(F16(hi)))


@SET
@given(data=st.data(), mnk=dims, fz=st.booleans(), kernel=st.sampled_from(["c", "asm_ld128"]))
def test_qd8_f16_qc8w_matches_documented_steps(data: Any, mnk: tuple[int, int, int], fz: bool, kernel: str) -> None:
    m, n, k = mnk
    x = data.draw(f16s((m, k)))
    w = data.draw(hnp.arrays(np.int8, (n, k), elements=st.integers(-127, 127)))
    ws = data.draw(channel_scales(n=n, min_value=2.0**-12, max_value=0.5))
    b = data.draw(f32s((n,)))
    q, a, zp = quantize_qd8_f16(x, fz=fz)
    out = F.qd8_f16_qc8w_gemm(
        q,
        a,
        zp,
        w,
        ws,
        b,
        kernel=kernel,  # type: ignore[arg-type]
        clamp_min=-30.0,
        clamp_max=30.0,
        fz=fz,
    )
    assert out.dtype == F16
    for i in range(m):
        for j in range(n):
            acc = sum(int(q[i, t]) * int(w[j, t]) for t in range(k)) - int(zp[i]) * sum(int(v) for v in w[j])
            f = rnd(Fr(acc), "f32", fz)
            if kernel == "c":  # fma(RN32(f * a), ws, b)
                t_ = rnd(Fr(f) * rd(a[i], "f32", fz), "f32", fz)
                y = rnd(rd(t_, "f32", fz) * rd(ws[j], "f32", fz) + rd(b[j], "f32", fz), "f32", fz)
            else:  # RN32(RN32(f * RN32(ws * a)) + b)
                sc = rnd(rd(ws[j], "f32", fz) * rd(a[i], "f32", fz), "f32", fz)
                y = rnd(rd(rnd(Fr(f) * rd(sc, "f32", fz), "f32", fz), "f32", fz) + rd(b[j], "f32", fz), "f32", fz)
            assert float(out[i, j]) == _f16_out(y, -30.0, 30.0, fz), (i, j)


@SET
@given(data=st.data(), mnk=dims, fz=st.booleans())
def test_qd8_f16_qc4w_and_qb4w_are_the_f32_kernels_then_one_rn16(
    data: Any, mnk: tuple[int, int, int], fz: bool
) -> None:
    m, n, _ = mnk
    k = 64
    x = data.draw(f16s((m, k)))
    w = data.draw(int4_weights(shape=(n, k)))
    ws = data.draw(channel_scales(n=n, min_value=2.0**-10, max_value=1.0))
    b = data.draw(f32s((n,)))
    q, a, zp = quantize_qd8_f16(x, fz=fz)
    y4 = F.qd8_f32_qc4w_gemm(q, a, zp, w, ws, b, fz=fz)
    out4 = F.qd8_f16_qc4w_gemm(q, a, zp, w, ws, b, clamp_min=-6.0, clamp_max=6.5, fz=fz)
    same(out4, [[_f16_out(float(v), -6.0, 6.5, fz) for v in row] for row in y4])
    sc = f32_to_bf16_rne(data.draw(hnp.arrays(F32, (n, 2), elements=st.floats(2.0**-8, 1.0, width=32))))
    yb = F.qd8_f32_qb4w_gemm(q, a, zp, w, sc, 32, b, kr=4, fz=fz)
    outb = F.qd8_f16_qb4w_gemm(q, a, zp, w, sc, 32, b, kr=4, clamp_min=-6.0, clamp_max=6.5, fz=fz)
    same(outb, [[_f16_out(float(v), -6.0, 6.5, fz) for v in row] for row in yb])


def test_qd8_f16_output_conversion_does_not_flush_but_the_clamp_does() -> None:
    y = np.array([[2.0**-20, -(2.0**-20), 1e6]], F32)
    same(f16_output(y, -np.inf, np.inf, fz=False), [[float(F16(2.0**-20)), -float(F16(2.0**-20)), np.inf]])
    z = f16_output(y, -np.inf, np.inf, fz=True)
    assert z[0, 0] == 0 and np.signbit(z[0, 1]) and z[0, 2] == np.inf


# ---- qu8 (rndnu on ARM64, fp32 on x86-64) -----------------------------------------------------------


def _ref_qu8(acc: int, s: float, zy: int, lo: int, hi: int, requant: str) -> int:
    if requant == "rndnu":  # xnn_qu8_requantize_rndnu: round half up of acc * s, exactly
        r = math.floor(Fr(acc) * Fr(s) + Fr(1, 2))
    else:  # RNE of RN32(float(acc) * s)
        r = round(rnd(Fr(rnd(Fr(acc), "f32", False)) * Fr(s), "f32", False))
    return min(max(max(0, min(255, r + zy)), lo), hi)


@SET
@given(
    data=st.data(),
    mnk=dims,
    zs=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    s=st.floats(2.0**-20, 255.0, width=32),
    requant=st.sampled_from(["rndnu", "fp32"]),
)
def test_qu8_gemm_requantization(
    data: Any, mnk: tuple[int, int, int], zs: tuple[int, int, int], s: float, requant: str
) -> None:
    m, n, k = mnk
    zx, zw, zy = zs
    x = data.draw(hnp.arrays(np.uint8, (m, k)))
    w = data.draw(hnp.arrays(np.uint8, (n, k)))
    b = data.draw(hnp.arrays(np.int32, (n,), elements=st.integers(-(2**20), 2**20)))
    out = F.qu8_gemm(x, w, b, zx=zx, zw=zw, scale=s, zy=zy, ymin=3, ymax=250, requant=requant)
    for i in range(m):
        for j in range(n):
            acc = int(b[j]) + sum((int(x[i, t]) - zx) * (int(w[j, t]) - zw) for t in range(k))
            assert int(out[i, j]) == _ref_qu8(acc, s, zy, 3, 250, requant), (i, j, acc)


def test_qu8_rndnu_params_and_limits() -> None:
    assert rndnu_params(1.0) == (2, 0x40000000, 1)  # shift -1: post 1, left pre-shift 2
    assert rndnu_params(2.0**-10) == (0, 0x40000000, 9)
    with pytest.raises(ValueError, match=">= 256"):
        F.qu8_requantization_scale(1.0, 1.0, 1.0 / 512)
    with pytest.raises(ValueError, match="2\\*\\*-32"):
        rndnu_params(2.0**-40)
    # a huge accumulator saturates in the pre-shift (scale >= 0.5) and still clamps to 255
    assert F.qu8_requantize_rndnu(np.array([2**31 - 1]), 100.0, 0).tolist() == [255]
    assert F.qu8_requantize_rndnu(np.array([-(2**31)]), 100.0, 255).tolist() == [0]
    with pytest.raises(ValueError, match="zero point"):
        F.qu8_gemm(np.zeros((1, 2), np.uint8), np.zeros((1, 2), np.uint8), None, zx=300, zw=0, scale=1.0, zy=0)


def test_qu8_igemm_padding_reads_the_input_zero_point() -> None:
    x = np.full((1, 1, 1, 1), 7, np.uint8)
    w = np.full((1, 3, 3, 1), 200, np.uint8)
    out = F.qu8_igemm(x, w, None, zx=7, zw=100, scale=0.5, zy=9, padding=(1, 1, 1, 1))
    assert out.tolist() == [[[[9]]]]  # every tap: (7 - 7) * (200 - 100) = 0


def test_qp8_f32_qc4w_packed_scale_over_16_meets_fz() -> None:
    # scale * 0.0625 (the qs4cxs1s0 packers) makes 2**-124 subnormal: FPCR.FZ reads it as 0 in the
    # SME1/NEON kernels, while the SME2 packer keeps the scale as given.
    x = np.array([[1e30, -2e30, 3e30, 5e29]], F32)  # dq ~ 2**93: dq * 2**-124 is normal
    w = np.array([[7, -8, 3, 1]], np.int8)
    s = np.array([2.0**-124], F32)
    b = np.array([0.0], F32)
    fz, nofz = APPLE_M4, APPLE_M4.replace(flush_to_zero=False)
    neon = "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod"
    sme2 = "kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa"
    assert Q4.gemm(x, w, s, bias=b, target=fz, kernel=neon)[0, 0] == 0.0
    assert Q4.gemm(x, w, s, bias=b, target=nofz, kernel=neon)[0, 0] != 0.0
    assert Q4.gemm(x, w, s, bias=b, target=fz, kernel=sme2)[0, 0] != 0.0
    big = np.array([2.0**-100], F32)
    y4 = Q4.gemm(x, w, big, bias=b, target=fz, kernel=neon)
    np.testing.assert_array_equal(y4, Q4.gemm(x, w, big, bias=b, target=fz, kernel=sme2))


def test_qp8_f32_qc4w_kernels_are_registered_ukernels() -> None:
    from kleidiref import get_ukernel, list_ukernels

    # The kernels, and the LHS quantizer-packer every qp8 variant runs (XNNPACK's packq).
    assert list_ukernels("qp8_f32_qc4w_gemm") == sorted([*Q4.KERNELS, "kai_lhs_quant_pack_qai8dxp_f32"])
    for name, cls in Q4.KERNELS.items():
        k = get_ukernel(name, 256)
        assert type(k) is cls and getattr(Q4, name) is cls and k.variant == "qp8_f32_qc4w_gemm"
        assert cls.isa == (cls.branch if cls.branch in ("sme2", "sme") else "neon")
