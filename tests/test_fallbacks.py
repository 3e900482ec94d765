"""Each generic XNNPACK fallback against an independent, slow, scalar reference of its documented steps.

The references below use exact rational arithmetic (``fractions.Fraction``) and a hand-written
round-to-nearest-even into binary32/binary16 (with FZ/FZ16 flushing), not the package's helpers,
so a shared bug cannot hide. Values are compared as numbers (``-0 == +0``; NaN cannot occur with
the drawn inputs).
"""

from __future__ import annotations

from fractions import Fraction as Fr
from typing import Any

import numpy as np
import pytest
from _exact import clamp, radd, rfma, rmul, rnd, same
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kleidiref import fallbacks as F
from kleidiref.numerics import bf16_to_f32, f32_to_bf16_rne
from kleidiref.quant.qd8 import dequantize_qd8, qd8_params, quantize_qd8
from kleidiref.testing.strategies import block_scales_bf16, channel_scales, int4_weights, int8_weights

SET = settings(max_examples=30, deadline=None)
F32, F16 = np.float32, np.float16


def f32s(shape: Any, lim: float = 1e3) -> Any:
    return hnp.arrays(F32, shape, elements=st.floats(-lim, lim, width=32, allow_subnormal=True))


def f16s(shape: Any, lim: float = 8.0) -> Any:
    return hnp.arrays(F16, shape, elements=st.floats(-lim, lim, width=16, allow_subnormal=True))


dims = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 11))


# ---- f32 GEMM -------------------------------------------------------------------------------------


@SET
@given(data=st.data(), mnk=dims, fz=st.booleans())
def test_f32_gemm_ld128_sequential_fma(data: Any, mnk: tuple[int, int, int], fz: bool) -> None:
    m, n, k = mnk
    a, w, b = data.draw(f32s((m, k))), data.draw(f32s((n, k))), data.draw(f32s((n,)))
    lo, hi = -5e5, 5e5
    ref = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            acc = float(b[j])
            for kk in range(k):
                acc = rfma(a[i, kk], w[j, kk], acc, "f32", fz)
            ref[i, j] = clamp(acc, lo, hi)
    same(F.f32_gemm(a, w, b, clamp_min=lo, clamp_max=hi, fz=fz, kernel="ld128"), ref)


@SET
@given(data=st.data(), n=st.integers(1, 4), k=st.integers(1, 14), fz=st.booleans())
def test_f32_gemm_acc4_apple(data: Any, n: int, k: int, fz: bool) -> None:
    a, w, b = data.draw(f32s((1, k))), data.draw(f32s((n, k))), data.draw(f32s((n,)))
    ref = np.empty((1, n))
    g = k // 4
    for j in range(n):
        acc = [float(b[j]), 0.0, 0.0, 0.0]
        for i in range(g):
            for t in range(4):
                acc[t] = rfma(a[0, 4 * i + t], w[j, 4 * i + t], acc[t], "f32", fz)
        if g:
            acc[0], acc[1] = radd(acc[0], acc[2], "f32", fz), radd(acc[1], acc[3], "f32", fz)
        if k % 4 >= 2:
            acc[0] = rfma(a[0, 4 * g], w[j, 4 * g], acc[0], "f32", fz)
            acc[1] = rfma(a[0, 4 * g + 1], w[j, 4 * g + 1], acc[1], "f32", fz)
        if k % 2:
            acc[0] = rfma(a[0, k - 1], w[j, k - 1], acc[0], "f32", fz)
        ref[0, j] = radd(acc[0], acc[1], "f32", fz)
    same(F.f32_gemm(a, w, b, fz=fz, kernel="acc4"), ref)


@SET
@given(data=st.data(), mnk=dims, fz=st.booleans())
def test_f32_gemm_nr2_lanes(data: Any, mnk: tuple[int, int, int], fz: bool) -> None:
    m, n, k = mnk
    a, w, b = data.draw(f32s((m, k))), data.draw(f32s((n, k))), data.draw(f32s((n,)))
    g = k // 4
    ref = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            lanes = [float(b[j]), 0.0, 0.0, 0.0]
            for gi in range(g):
                for t in range(4):
                    lanes[t] = rfma(a[i, 4 * gi + t], w[j, 4 * gi + t], lanes[t], "f32", fz)
            acc = radd(radd(lanes[0], lanes[1], "f32", fz), radd(lanes[2], lanes[3], "f32", fz), "f32", fz)
            for kk in range(4 * g, k):
                acc = rfma(a[i, kk], w[j, kk], acc, "f32", fz)
            ref[i, j] = acc
    same(F.f32_gemm(a, w, b, fz=fz, kernel="nr2"), ref)


# ---- f32 IGEMM ----------------------------------------------------------------------------------


def ref_conv_rows(x: np.ndarray, kh: int, kw: int, pad: int, stride: int, pad_value: Any) -> list[list[list[Any]]]:
    """Per output pixel, per tap, the gic-vector it reads (padding -> pad_value); independent loops."""
    nb, h, wd, c = x.shape
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    rows = []
    for b_ in range(nb):
        for oy in range(ho):
            for ox in range(wo):
                taps = []
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
                        if 0 <= iy < h and 0 <= ix < wd:
                            taps.append(list(x[b_, iy, ix]))
                        else:
                            taps.append([pad_value(b_)] * c)
                rows.append(taps)
    return rows


conv_shapes = st.tuples(
    st.integers(1, 2),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from([1, 2, 3]),
    st.integers(0, 1),
    st.integers(1, 2),
)


@SET
@given(data=st.data(), shp=conv_shapes, fz=st.booleans(), kernel=st.sampled_from(["ld128", "acc2"]))
def test_f32_igemm(data: Any, shp: tuple[int, ...], fz: bool, kernel: str) -> None:
    nb, hw, cin, cout, kk, pad, stride = shp
    x = data.draw(f32s((nb, hw + 2, hw + 2, cin)))
    w = data.draw(f32s((cout, kk, kk, cin)))
    b = data.draw(f32s((cout,)))
    out = F.f32_igemm(x, w, b, stride=(stride, stride), padding=(pad,) * 4, fz=fz, kernel=kernel)  # type: ignore[arg-type]
    rows = ref_conv_rows(x, kk, kk, pad, stride, lambda _b: 0.0)
    ref = np.empty((len(rows), cout))
    for r, taps in enumerate(rows):
        for o in range(cout):
            acc = [float(b[o]), 0.0]
            for t, vec in enumerate(taps):
                for p, v in enumerate(vec):
                    slot = 0 if kernel == "ld128" else p % 2
                    acc[slot] = rfma(v, w[o].reshape(-1, cin)[t, p], acc[slot], "f32", fz)
            ref[r, o] = acc[0] if kernel == "ld128" else radd(acc[0], acc[1], "f32", fz)
    same(out.reshape(-1, cout), ref)


# ---- f16 ---------------------------------------------------------------------------------------------


@SET
@given(data=st.data(), n=st.integers(1, 4), k=st.integers(1, 13), m=st.integers(1, 3), fz=st.booleans())
def test_f16_gemm_kernels(data: Any, n: int, k: int, m: int, fz: bool) -> None:
    a, w, b = data.draw(f16s((m, k))), data.draw(f16s((n, k))), data.draw(f16s((n,)))
    for kernel in ("1x16", "6x16"):
        rows = 1 if kernel == "1x16" else m
        ref = np.empty((rows, n))
        g = k // 4
        for i in range(rows):
            for j in range(n):
                if kernel == "6x16":
                    acc = float(b[j])
                    for kk in range(k):
                        acc = rfma(a[i, kk], w[j, kk], acc, "f16", fz)
                    ref[i, j] = acc
                    continue
                s = [float(b[j]), 0.0, 0.0, 0.0]
                for gi in range(g):
                    for t in range(4):
                        s[t] = rfma(a[i, 4 * gi + t], w[j, 4 * gi + t], s[t], "f16", fz)
                if k % 4 >= 2:
                    s[0] = rfma(a[i, 4 * g], w[j, 4 * g], s[0], "f16", fz)
                    s[1] = rfma(a[i, 4 * g + 1], w[j, 4 * g + 1], s[1], "f16", fz)
                if k % 2:
                    s[0] = rfma(a[i, k - 1], w[j, k - 1], s[0], "f16", fz)
                ref[i, j] = radd(radd(s[0], s[1], "f16", fz), radd(s[2], s[3], "f16", fz), "f16", fz)
        same(F.f16_gemm(a[:rows], w, b, fz=fz, kernel=kernel), ref)


@SET
@given(data=st.data(), cin=st.integers(1, 6), fz=st.booleans())
def test_f16_igemm_1x16_groups_per_tap(data: Any, cin: int, fz: bool) -> None:
    x = data.draw(f16s((1, 1, 2, cin)))  # one output pixel with a 1x2 kernel: two taps
    w = data.draw(f16s((2, 1, 2, cin)))
    out = F.f16_igemm(x, w, None, fz=fz, kernel="1x16")
    for o in range(2):
        s = [0.0, 0.0, 0.0, 0.0]
        for t in range(2):
            g = cin // 4
            vals = [(x[0, 0, t, c], w[o, 0, t, c]) for c in range(cin)]
            for gi in range(g):
                for j in range(4):
                    s[j] = rfma(*vals[4 * gi + j], s[j], "f16", fz)
            if cin % 4 >= 2:
                s[0] = rfma(*vals[4 * g], s[0], "f16", fz)
                s[1] = rfma(*vals[4 * g + 1], s[1], "f16", fz)
            if cin % 2:
                s[0] = rfma(*vals[cin - 1], s[0], "f16", fz)
        ref = radd(radd(s[0], s[1], "f16", fz), radd(s[2], s[3], "f16", fz), "f16", fz)
        assert float(out[0, 0, 0, o]) == ref


def test_f16_fz16_flushes_subnormal_results() -> None:
    a = np.array([[2.0**-8]], F16)
    w = np.array([[2.0**-8]], F16)  # product 2**-16: a binary16 subnormal
    assert float(F.f16_gemm(a, w, fz=False, kernel="6x16")[0, 0]) == 2.0**-16
    assert float(F.f16_gemm(a, w, fz=True, kernel="6x16")[0, 0]) == 0.0


def test_f32_fz_flushes_subnormal_inputs() -> None:
    a = np.array([[1e-40]], F32)
    w = np.array([[1.0]], F32)
    assert F.f32_gemm(a, w, fz=False)[0, 0] == F32(1e-40)
    assert F.f32_gemm(a, w, fz=True)[0, 0] == 0.0


# ---- qd8 quantization ------------------------------------------------------------------------------


def ref_qd8(row: np.ndarray) -> tuple[list[int], float, int]:
    f = F32
    mn, mx = f(min(row.tolist())), f(max(row.tolist()))
    rmin, rmax = min(f(0), mn), max(f(0), mx)
    s = f(1) if rmin == rmax else f(f(255) / f(rmax - rmin))
    dmin, dmax = f(rmin * s), f(rmax * s)
    zpf = f(f(-128) - dmin) if f(f(f(-128) + dmin) + f(f(127) + dmax)) > 0 else f(f(127) - dmax)
    zp = round(float(min(max(zpf, f(-128)), f(127))))  # Python round: ties to even
    q = [int(min(max(round(float(f(v * s))), -128 - zp), 127 - zp) + zp) for v in row]
    return q, float(f(f(1) / s)), zp


@SET
@given(
    x=hnp.arrays(
        F32,
        st.tuples(st.integers(1, 3), st.integers(1, 20)),
        elements=st.floats(-100, 100, width=32).filter(lambda v: v == 0 or abs(v) > 1e-30),
    )
)
def test_qd8_matches_formula(x: np.ndarray) -> None:
    q, a, zp = quantize_qd8(x)
    for r in range(x.shape[0]):
        rq, ra, rzp = ref_qd8(x[r])
        assert q[r].tolist() == rq and float(a[r]) == ra and int(zp[r]) == rzp
    # dequantized values are within half a step (plus rounding slack) of the input
    err = np.abs(dequantize_qd8(q, a, zp) - x)
    assert np.all(err <= a[:, None].astype(np.float64) * 0.5001 + 1e-30)


def test_qd8_ties_to_even_and_special_rows() -> None:
    x = np.array([[0.0, 0.0, 0.0], [0.5, 1.5, 255.0]], F32)  # s = 1 for the second row: ties 0.5, 1.5
    s, a, zp = qd8_params(x)
    assert float(s[0]) == 1.0 and int(zp[0]) == 127 and float(a[0]) == 1.0
    q, _, zp = quantize_qd8(x)
    assert q[0].tolist() == [127, 127, 127]
    assert int(zp[1]) == -128 and q[1].tolist() == [-128, -126, 127]  # 0.5 -> 0, 1.5 -> 2 (even)


def test_qd8_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        quantize_qd8(np.zeros((2, 2), np.float64))
    with pytest.raises(ValueError):
        quantize_qd8(np.zeros((2, 0), F32))


# ---- qd8_f32_qc8w --------------------------------------------------------------------------------


@SET
@given(data=st.data(), mnk=dims, fz=st.booleans())
def test_qd8_f32_qc8w_epilogue(data: Any, mnk: tuple[int, int, int], fz: bool) -> None:
    m, n, k = mnk
    x = data.draw(f32s((m, k), 10.0))
    w = data.draw(int8_weights(shape=(n, k)))
    ws = data.draw(channel_scales(n=n, min_value=0.0009765625, max_value=1.0))
    b = data.draw(f32s((n,), 10.0))
    q, a, zp = quantize_qd8(x)
    out = F.qd8_f32_qc8w_gemm(q, a, zp, w, ws, b, clamp_min=-50.0, clamp_max=50.0, fz=fz)
    ref = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            acc = sum(int(q[i, t]) * int(w[j, t]) for t in range(k)) - int(zp[i]) * sum(int(v) for v in w[j])
            t_ = rmul(float(F32(acc)), a[i], "f32", fz)
            ref[i, j] = clamp(rfma(t_, ws[j], b[j], "f32", fz), -50.0, 50.0)
    same(out, ref)


def test_qd8_f32_qc8w_igemm_padding_reads_zero_point() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 3, 2)).astype(F32)
    q, a, zp = quantize_qd8(x.reshape(2, -1))
    q = q.reshape(x.shape)
    w = rng.integers(-127, 128, (3, 3, 3, 2)).astype(np.int8)
    ws = np.full(3, 0.01, F32)
    out = F.qd8_f32_qc8w_igemm(q, a, zp, w, ws, None, padding=(1, 1, 1, 1), fz=False)
    deq = (q.astype(np.float64) - zp[:, None, None, None]) * a[:, None, None, None]
    xp = np.pad(deq, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = (
        np.einsum(
            "nhwc,ohwc->no",
            np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
            .transpose(0, 1, 2, 4, 5, 3)
            .reshape(2, 9, 3, 3, 2)[:, 4],
            w.astype(np.float64),
        )
        * 0.01
    )
    np.testing.assert_allclose(out[:, 1, 1], ref, rtol=1e-5, atol=1e-6)


# ---- qs8_qc8w ---------------------------------------------------------------------------------------


@SET
@given(data=st.data(), mnk=dims, zx=st.integers(-128, 127), zy=st.integers(-128, 127))
def test_qs8_qc8w_fp32_requantization(data: Any, mnk: tuple[int, int, int], zx: int, zy: int) -> None:
    m, n, k = mnk
    x = data.draw(int8_weights(shape=(m, k), min_value=-128))
    w = data.draw(int8_weights(shape=(n, k)))
    bias = data.draw(hnp.arrays(np.int32, (n,), elements=st.integers(-(2**20), 2**20)))
    sw = data.draw(hnp.arrays(F32, (n,), elements=st.floats(0.0001220703125, 0.0625, width=32)))
    s = F.qs8_requantization_scale(0.05, sw, 0.1, n)
    out = F.qs8_qc8w_gemm(x, w, bias, zx=zx, s=s, zy=zy, ymin=-120, ymax=125)
    for j in range(n):
        assert s[j] == F32(F32(F32(0.05) * sw[j]) / F32(0.1))
    for i in range(m):
        for j in range(n):
            acc = int(bias[j]) + sum((int(x[i, t]) - zx) * int(w[j, t]) for t in range(k))
            f = F32(F32(acc) * s[j])
            y = min(max(round(float(f)), -128 - zy), 127 - zy) + zy
            assert int(out[i, j]) == min(max(y, -120), 125)


def test_qs8_scale_limit_and_igemm_padding() -> None:
    with pytest.raises(ValueError, match=">= 256"):
        F.qs8_requantization_scale(1.0, np.array([1.0], F32), 1e-3, 1)
    x = np.full((1, 1, 1, 1), 5, np.int8)
    w = np.ones((1, 3, 3, 1), np.int8)
    out = F.qs8_qc8w_igemm(x, w, None, zx=5, s=np.array([1.0], F32), zy=0, padding=(1, 1, 1, 1))
    assert int(out[0, 0, 0, 0]) == 0  # padding reads zx: every tap contributes (5 - 5) * 1


# ---- qd8_f32_qb4w -----------------------------------------------------------------------------------


@SET
@given(
    data=st.data(),
    m=st.integers(1, 3),
    n=st.integers(1, 3),
    nb=st.integers(1, 3),
    kr=st.sampled_from([1, 4, 8]),
    fz=st.booleans(),
)
def test_qd8_f32_qb4w(data: Any, m: int, n: int, nb: int, kr: int, fz: bool) -> None:
    bl = 32
    k = bl * nb
    x = data.draw(f32s((m, k), 10.0))
    w = data.draw(int4_weights(shape=(n, k)))
    sc = data.draw(block_scales_bf16(n=n, num_blocks=nb, min_exponent=-10, max_exponent=1))
    b = data.draw(f32s((n,), 10.0))
    q, a, zp = quantize_qd8(x)
    out = F.qd8_f32_qb4w_gemm(q, a, zp, w, sc, bl, b, kr=kr, fz=fz)
    scale = bf16_to_f32(sc)
    for j in range(n):
        ksum = 0.0
        for c0 in range(0, k, 2 * kr):
            chunk = sum(int(v) for v in w[j, c0 : c0 + 2 * kr])
            ksum = rnd(Fr(ksum) - Fr(rnd(Fr(chunk) * Fr(float(scale[j, c0 // bl])), "f32", False)), "f32", False)
        for i in range(m):
            y = rmul(ksum, float(zp[i]), "f32", fz)
            for jb in range(nb):
                s16 = float(bf16_to_f32(f32_to_bf16_rne(np.array([scale[j, jb] / F32(16)], F32)))[0])
                isum = sum(int(q[i, t]) * 16 * int(w[j, t]) for t in range(jb * bl, (jb + 1) * bl))
                y = rfma(float(F32(isum)), s16, y, "f32", fz)
            y = rmul(y, a[i], "f32", fz)
            assert float(out[i, j]) == radd(y, b[j], "f32", fz)


def test_qb4w_rejects_bad_shapes() -> None:
    w = np.zeros((2, 64), np.int8)
    with pytest.raises(ValueError, match="divide"):
        F.qb4w_ksum(w, np.zeros((2, 2), np.uint16), 48, kr=4)
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        F.qb4w_ksum(np.full((2, 64), 9, np.int8), np.zeros((2, 2), np.uint16), 32, kr=4)


# ---- dwconv / vmulcaddc ----------------------------------------------------------------------------


# The float dwconv (column-first taps, spare taps reading neighbours) is tested in tests/test_dwconv.py.


def test_dwconv_qs8_and_tiles() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 4, 4, 3)).astype(np.int8)
    w = rng.integers(-127, 128, (3, 3, 3, 1)).astype(np.int8)
    s = np.full(3, 0.01, F32)
    out = F.dwconv_qs8(x, w, None, zx=2, s=s, zy=1, padding=(1, 1, 1, 1))
    ref = F.qs8_qc8w_igemm(x, w, None, zx=2, s=s, zy=1, padding=(1, 1, 1, 1), groups=3)
    np.testing.assert_array_equal(out, ref)
    assert F.dwconv_tile("qs8", 4) == 9 and F.dwconv_tile("f32", 4) == 4
    with pytest.raises(ValueError, match="IGEMM"):
        F.dwconv_tile("f32", 49)


@SET
@given(data=st.data(), c=st.integers(1, 5), fz=st.booleans())
def test_vmulcaddc(data: Any, c: int, fz: bool) -> None:
    x, sc, b = data.draw(f32s((2, 3, c))), data.draw(f32s((c,))), data.draw(f32s((c,)))
    out = F.vmulcaddc(x, sc, b, clamp_min=-1e5, clamp_max=1e5, fz=fz)
    for idx in np.ndindex(x.shape):
        assert float(out[idx]) == clamp(rfma(x[idx], sc[idx[-1]], b[idx[-1]], "f32", fz), -1e5, 1e5)


def test_fallbacks_reject_bad_input() -> None:
    with pytest.raises(TypeError, match="float32"):
        F.f32_gemm(np.zeros((1, 2)), np.zeros((1, 2), F32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="K mismatch"):
        F.f32_gemm(np.zeros((1, 2), F32), np.zeros((1, 3), F32))
    with pytest.raises(ValueError, match="one row"):
        F.f32_gemm(np.zeros((2, 2), F32), np.zeros((1, 2), F32), kernel="acc4")
    with pytest.raises(ValueError, match="kernel"):
        F.f16_gemm(np.zeros((1, 2), F16), np.zeros((1, 2), F16), kernel="4x4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="groups"):
        F.f32_igemm(np.zeros((1, 3, 3, 3), F32), np.zeros((2, 1, 1, 3), F32), groups=2)
