"""Exact rational oracles shared by the fallback tests: IEEE round-to-nearest-even of a
``Fraction`` into binary32 / binary16 (with FZ as Arm defines it: tininess before rounding),
operand reads through the input flush, and the single-rounding operations built on them; and
``eq``, the bitwise comparison the op-level tests use."""

from __future__ import annotations

import math
from fractions import Fraction as Fr
from typing import Any

import numpy as np

#: (significand bits, minimum normal exponent, maximum exponent)
FMT = {"f32": (24, -126, 127), "f16": (11, -14, 15)}


def rnd(x: Fr, fmt: str, fz: bool, neg_zero: bool = False) -> float:
    """RNE of the exact ``x`` into ``fmt``; an exact zero gets the sign ``neg_zero``; FZ: tiny -> +-0."""
    p, emin, emax = FMT[fmt]
    if x == 0:
        return -0.0 if neg_zero else 0.0
    sign = -1.0 if x < 0 else 1.0
    ax = abs(x)
    if fz and ax < Fr(2) ** emin:
        return sign * 0.0
    e = ax.numerator.bit_length() - ax.denominator.bit_length()
    if Fr(2) ** e > ax:
        e -= 1
    q = Fr(2) ** (max(e, emin) - p + 1)
    i = math.floor(ax / q)
    r = ax / q - i
    if r > Fr(1, 2) or (r == Fr(1, 2) and i % 2 == 1):
        i += 1
    v = i * q
    return sign * math.inf if v >= Fr(2) ** (emax + 1) else sign * float(v)


def rd(v: Any, fmt: str, fz: bool) -> Fr:
    """Read an operand (FZ/FZ16 input flush) as an exact rational."""
    f = float(v)
    return Fr(0) if fz and f != 0 and abs(f) < 2.0 ** FMT[fmt][1] else Fr(f)


def rfma(a: Any, b: Any, c: Any, fmt: str, fz: bool) -> float:
    return rnd(rd(a, fmt, fz) * rd(b, fmt, fz) + rd(c, fmt, fz), fmt, fz)


def radd(a: Any, b: Any, fmt: str, fz: bool) -> float:
    return rnd(rd(a, fmt, fz) + rd(b, fmt, fz), fmt, fz)


def rmul(a: Any, b: Any, fmt: str, fz: bool) -> float:
    return rnd(rd(a, fmt, fz) * rd(b, fmt, fz), fmt, fz)


def clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def same(got: np.ndarray, ref: Any) -> None:
    np.testing.assert_array_equal(got.astype(np.float64), np.asarray(ref, dtype=np.float64))


def eq(a: np.ndarray, b: np.ndarray) -> None:
    """Same dtype, shape and bytes (NaN payloads and signed zeros included)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
