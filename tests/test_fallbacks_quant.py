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
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kleidiref import fallbacks as F
from kleidiref.quant.qd8 import quantize_qd8
from kleidiref.testing.strategies import channel_scales, int4_weights

SET = settings(max_examples=30, deadline=None)
F32, F16 = np.float32, np.float16
FMT = {"f32": (24, -126, 127), "f16": (11, -14, 15)}
dims = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 40))


def rnd(x: Fr, fmt: str, fz: bool) -> float:
    """Round an exact rational to the nearest ``fmt`` value, ties to even; FZ: tiny -> signed 0."""
    p, emin, emax = FMT[fmt]
    if x == 0:
        return 0.0
    sign = -1.0 if x < 0 else 1.0
    ax = abs(x)
    if fz and ax < Fr(2) ** emin:
        return sign * 0.0
    e = ax.numerator.bit_length() - ax.denominator.bit_length()
    if Fr(2) ** e > ax:
        e -= 1
    e = max(e, emin)
    q = Fr(2) ** (e - p + 1)
    i = math.floor(ax / q)
    r = ax / q - i
    if r > Fr(1, 2) or (r == Fr(1, 2) and i % 2 == 1):
        i += 1
    v = i * q
    return sign * math.inf if v >= Fr(2) ** (emax + 1) else sign * float(v)


def rd(v: Any, fmt: str, fz: bool) -> Fr:
    f = float(v)
    return Fr(0) if fz and f != 0 and abs(f) < 2.0 ** FMT[fmt][1] else Fr(f)


def clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def same(got: np.ndarray, ref: Any) -> None:
    np.testing.assert_array_equal(got.astype(np.float64), np.asarray(ref, dtype=np.float64))


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
        F.qd8_f32_qc4w_gemm(q, a, zp, np.ones((1, 4), np.uint8), np.ones(1, F32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="K mismatch"):
        F.qd8_f32_qc4w_gemm(q, a, zp, np.ones((1, 5), np.int8), np.ones(1, F32))
