"""Properties of the int8 quantizers: qai8dx (dynamic per row), qsi8cx (per channel), qai8 (static)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from kleidiref.quant import (
    choose_qai8_params,
    dequantize_qai8,
    dequantize_qai8dx,
    dequantize_qsi8cx,
    qai8dx_params,
    quantize_qai8,
    quantize_qai8dx,
    quantize_qsi8cx,
    requantization_scale,
)

F32 = np.float32
_TINY = 2.0**-100
_finite = st.one_of(st.just(0.0), st.floats(_TINY, 1e4, width=32), st.floats(-1e4, -_TINY, width=32))


def _rows(max_rows: int = 6, max_k: int = 40) -> st.SearchStrategy[NDArray[np.float32]]:
    shapes = st.tuples(st.integers(1, max_rows), st.integers(1, max_k))
    return hnp.arrays(F32, shapes, elements=_finite)


def _with_kind(rows: NDArray[np.float32], kind: str) -> NDArray[np.float32]:
    """Special rows: all-zero, constant, all-negative, one outlier."""
    x = rows.copy()
    if kind == "zero":
        x[0] = 0
    elif kind == "constant":
        x[0] = x[0, 0]
    elif kind == "negative":
        x[0] = -np.abs(x[0]) - F32(1)
    elif kind == "outlier":
        x[0, -1] = F32(3e6)
    return x  # type: ignore[no-any-return]


KINDS = st.sampled_from(["plain", "zero", "constant", "negative", "outlier"])


# ------------------------------------------------------------------------------ qai8dx


@settings(max_examples=150, deadline=None)
@given(x=_rows(), kind=KINDS)
def test_qai8dx_properties(x: NDArray[np.float32], kind: str) -> None:
    x = _with_kind(x, kind)
    q, dq, zp = quantize_qai8dx(x)
    assert q.dtype == np.int8 and np.all((zp >= -128) & (zp <= 127))
    # The range of codes always contains 0, and 0 is exactly representable (code zp).
    lo = (-128.0 - zp) * dq.astype(np.float64)
    hi = (127.0 - zp) * dq.astype(np.float64)
    assert np.all(lo <= 0) and np.all(hi >= 0)
    xz = x.copy()
    xz[:, 0] = 0
    qz, dqz, zpz = quantize_qai8dx(xz)
    assert np.all(qz[:, 0] == zpz)
    assert np.all(dequantize_qai8dx(qz, dqz, zpz)[:, 0] == 0)
    # Inside the representable range the error is at most half a step (plus float rounding).
    deq = dequantize_qai8dx(q, dq, zp)
    x64 = x.astype(np.float64)
    inside = (x64 >= lo[:, None]) & (x64 <= hi[:, None])
    step = dq.astype(np.float64)[:, None]
    err = np.abs(x64 - deq)
    assert np.all(err[inside] <= (0.5 * step * (1 + 2**-18) + np.abs(x64) * 2**-21)[inside])
    # Idempotence: quantizing the dequantized row again gives the same codes where in range.
    if kind == "plain":
        q2, _, _ = quantize_qai8dx(deq.astype(F32))
        assert np.max(np.abs(q2.astype(int) - q.astype(int))) <= 1


@settings(max_examples=60, deadline=None)
@given(x=_rows(), data=st.data())
def test_qai8dx_row_and_column_order_invariance(x: NDArray[np.float32], data: st.DataObject) -> None:
    rp = data.draw(st.permutations(range(x.shape[0])))
    cp = data.draw(st.permutations(range(x.shape[1])))
    q, dq, zp = quantize_qai8dx(x)
    q2, dq2, zp2 = quantize_qai8dx(np.ascontiguousarray(x[rp][:, cp]))
    assert np.array_equal(q[rp][:, cp], q2) and np.array_equal(dq[rp], dq2) and np.array_equal(zp[rp], zp2)


def test_qai8dx_special_rows() -> None:
    x = np.array([[0.0] * 5, [2.0] * 5, [-3.0] * 5], F32)
    q, dq, zp = quantize_qai8dx(x)
    assert zp.tolist() == [127, -128, 127] and dq[0] == 1
    assert q[0].tolist() == [127] * 5 and q[1].tolist() == [127] * 5 and q[2].tolist() == [-128] * 5


def test_qai8dx_tiny_row_overflows_scale() -> None:
    """255 / (rmax - rmin) overflows to Inf on a row of subnormals: x * Inf is +-Inf (FCVTAS
    saturates; on the NEON path -Inf narrows to -32768 and the int16 zero-point add wraps it
    to 127) or, for x = 0, NaN (FCVTAS gives 0: the code is zp)."""
    x = np.array([[1e-40, 0.0, -1e-40, 2e-40, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], F32)
    q, dq, zp = quantize_qai8dx(x)
    assert np.isinf(qai8dx_params(x)[0][0]) and dq[0] == 0 and zp[0] == -128
    assert q[0].tolist() == [127, -128, 127, 127] + [-128] * 7


def test_qai8dx_ties_away_from_zero() -> None:
    # Rows with max 255 / min -255 give scale0 = 1: x * scale0 = n + 0.5 exactly.
    x = np.array([[255.0, 0.0, 2.5, 3.5, 0.5], [-255.0, 0.0, -2.5, -3.5, -0.5]], F32)
    q, dq, zp = quantize_qai8dx(x)
    assert dq.tolist() == [1.0, 1.0] and zp.tolist() == [-128, 127]
    assert (q[0, 2:].astype(int) - zp[0]).tolist() == [3, 4, 1]  # RNA: 2.5 -> 3, 3.5 -> 4, 0.5 -> 1
    assert (q[1, 2:].astype(int) - zp[1]).tolist() == [-3, -4, -1]


# ------------------------------------------------------------------------------ qsi8cx


@settings(max_examples=150, deadline=None)
@given(w=_rows(), kind=KINDS)
def test_qsi8cx_properties(w: NDArray[np.float32], kind: str) -> None:
    w = _with_kind(w, kind)
    q, scale = quantize_qsi8cx(w)
    assert q.dtype == np.int8 and np.all(np.abs(q.astype(int)) <= 127)
    deq = dequantize_qsi8cx(q, scale)
    s64 = scale.astype(np.float64)[:, None]
    err = np.abs(w.astype(np.float64) - deq)
    assert np.all(err <= 0.5 * s64 * (1 + 2**-18) + np.abs(w) * 2**-21)
    assert np.all(deq[w == 0] == 0)  # zero is exactly representable
    # Symmetric range [-127 s, 127 s] contains every weight (up to rounding of s).
    assert np.all(np.abs(w) <= 127 * s64 * (1 + 2**-20))
    if kind == "zero":
        assert scale[0] == 0 and np.all(q[0] == 0)
    # Each nonzero channel reaches +-127 at its largest magnitude.
    nz = scale > 0
    assert np.all(np.max(np.abs(q[nz].astype(int)), axis=1) == 127)


@settings(max_examples=40, deadline=None)
@given(w=_rows(), data=st.data())
def test_qsi8cx_order_invariance(w: NDArray[np.float32], data: st.DataObject) -> None:
    rp = data.draw(st.permutations(range(w.shape[0])))
    cp = data.draw(st.permutations(range(w.shape[1])))
    q, s = quantize_qsi8cx(w)
    q2, s2 = quantize_qsi8cx(np.ascontiguousarray(w[rp][:, cp]))
    assert np.array_equal(q[rp][:, cp], q2) and np.array_equal(s[rp], s2)


def test_qsi8cx_ties_to_even_and_errors() -> None:
    w = np.array([[127.0, 2.5, 3.5, -2.5, -0.5, 0.5]], F32)  # scale 1, inverse 1
    q, s = quantize_qsi8cx(w)
    assert s.tolist() == [1.0] and q.tolist() == [[127, 2, 4, -2, 0, 0]]
    with pytest.raises(TypeError):
        quantize_qsi8cx(w.astype(np.float64))
    with pytest.raises(ValueError, match="finite"):
        quantize_qsi8cx(np.array([[np.nan]], F32))
    with pytest.raises(ValueError, match="subnormal"):
        quantize_qsi8cx(np.array([[1e-37]], F32))


# ------------------------------------------------------------------------------ qai8 (static)


@settings(max_examples=150, deadline=None)
@given(
    lo=st.floats(-1e3, 0, width=32),
    hi=st.floats(0, 1e3, width=32),
    x=hnp.arrays(F32, st.integers(1, 50), elements=_finite),
)
def test_qai8_properties(lo: float, hi: float, x: NDArray[np.float32]) -> None:
    s, zp = choose_qai8_params(lo, hi)
    assert s > 0 and -128 <= zp <= 127
    rlo, rhi = (-128 - zp) * float(s), (127 - zp) * float(s)
    assert rlo <= 0 <= rhi  # range contains 0
    assert quantize_qai8(np.zeros(3, F32), float(s), zp).tolist() == [zp] * 3  # zero exactly representable
    assert np.all(dequantize_qai8(np.array([zp], np.int8), float(s), zp) == 0)
    x = np.clip(x, F32(rlo), F32(rhi)).astype(F32)
    q = quantize_qai8(x, float(s), zp)
    err = np.abs(x.astype(np.float64) - dequantize_qai8(q, float(s), zp).astype(np.float64))
    assert np.all(err <= 0.5 * float(s) * (1 + 2**-18) + np.abs(x) * 2**-21)
    assert np.array_equal(quantize_qai8(dequantize_qai8(q, float(s), zp), float(s), zp), q)  # idempotent


def test_qai8_ties_to_even_and_nan() -> None:
    x = np.array([2.5, 3.5, -2.5, np.nan, 1e9, -1e9], F32)
    assert quantize_qai8(x, 1.0, 0).tolist() == [2, 4, -2, -128, 127, -128]
    assert quantize_qai8(np.array([2.5], F32), 1.0, 1).tolist() == [4]  # 3.5 -> 4 after + zp
    with pytest.raises(ValueError, match="zero point"):
        quantize_qai8(x, 1.0, 128)
    with pytest.raises(ValueError, match="scale"):
        quantize_qai8(x, 0.0, 0)
    with pytest.raises(TypeError):
        quantize_qai8(x.astype(np.float64), 1.0, 0)


@settings(max_examples=100, deadline=None)
@given(
    s_in=st.floats(2.0**-20, 10, width=32),
    s_out=st.floats(2.0**-20, 10, width=32),
    sw=hnp.arrays(F32, st.integers(1, 8), elements=st.floats(2.0**-20, 10, width=32)),
)
def test_requantization_scale_rounds_twice(s_in: float, s_out: float, sw: NDArray[np.float32]) -> None:
    ref = ((F32(s_in) * sw).astype(F32) / F32(s_out)).astype(F32)
    assume(np.all(ref < 256))
    assert np.array_equal(requantization_scale(s_in, sw, s_out), ref)


def test_requantization_scale_limit() -> None:
    with pytest.raises(ValueError, match="init_requantization_scale"):
        requantization_scale(16.0, np.array([16.0], F32), 1.0)
    with pytest.raises(ValueError, match=">= 256"):
        requantization_scale(1.0, np.array([1.0, 300.0], F32), 1.0)
    # An infinite channel scale is refused earlier, as xnn_define_channelwise_quantized_tensor_value does.
    with pytest.raises(ValueError, match="finite, > 0 and normal"):
        requantization_scale(1.0, np.array([1.0, np.inf], F32), 1.0)
    with pytest.raises(TypeError):
        requantization_scale(1.0, np.array([1.0]), 1.0)


@settings(max_examples=150, deadline=None)
@given(x=_rows(max_k=70), kind=KINDS, kbl=st.sampled_from([4, 8]))
def test_qai8dx_fast_path_matches_literal(x: NDArray[np.float32], kind: str, kbl: int) -> None:
    """The finite-input fast path of quantize_qai8dx equals the literal NEON/scalar emulation."""
    from kleidiref.quant.qai8dx import _quantize_literal

    x = _with_kind(x, kind)
    got = quantize_qai8dx(x, k_block_len=kbl)
    want = _quantize_literal(x, k_block_len=kbl)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and np.array_equal(g, w)  # type: ignore[arg-type,attr-defined]
