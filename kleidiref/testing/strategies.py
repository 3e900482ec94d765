"""Hypothesis strategies for kernel tests, in the style of :mod:`hypothesis.extra.numpy`.

Every strategy takes keyword-only arguments, validates them eagerly (raising
:class:`hypothesis.errors.InvalidArgument` with a fix-it message) and returns a typed
``SearchStrategy``. Shapes straddle the kernels' blocking (mr/nr/kr/sr, m_step/n_step, the
K padding to 32 of the qai8dx formats, qb4w block lengths); values include the rows that break
dynamic quantization (outliers, constant, all-zero, all-negative rows) and extreme int8/int4
codes and scales. Large arrays stay fast with ``fill=`` (see :func:`hypothesis.extra.numpy.arrays`):
only a few elements are drawn individually, the rest take the fill value.

This module imports hypothesis (a test-time dependency); :mod:`kleidiref` itself does not.

Example::

    >>> from hypothesis import given
    >>> from kleidiref.testing import assert_matches
    >>> from kleidiref.testing.strategies import gemm_problems
    >>> @given(gemm_problems("qp8_f32_qc8w_gemm", max_k=96))
    ... def test_my_kernel(problem):
    ...     out = problem.reference()            # replace with your kernel's output
    ...     assert_matches(out, **problem.kwargs())
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from ..kai.interface import MatmulKernel
from ..targets import SUPPORTED_SVLS, Target
from ._problem import VARIANT_NAMES, kernels_of

__all__ = [
    "GemmProblem",
    "Shape",
    "activations",
    "block_scales_bf16",
    "channel_scales",
    "gemm_problems",
    "int4_weights",
    "int8_weights",
    "problem_shapes",
    "svls",
    "targets",
]

SearchStrategy = st.SearchStrategy


# ------------------------------------------------------------------------------------------------
# Validation helpers
# ------------------------------------------------------------------------------------------------


def _check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument(f"{name}={value!r} must be an int")
    v = int(value)
    if minimum is not None and v < minimum:
        raise InvalidArgument(f"{name}={v} must be >= {minimum}")
    return v


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be True or False")
    return value


def _check_variant(variant: object) -> str:
    if variant not in VARIANT_NAMES:
        raise InvalidArgument(f"variant={variant!r} is not known; pass one of {', '.join(VARIANT_NAMES)}")
    return str(variant)


def _check_svl(name: str, value: object) -> int:
    v = _check_int(name, value)
    if v not in SUPPORTED_SVLS:
        raise InvalidArgument(f"{name}={v} is not an SME vector length; use one of {SUPPORTED_SVLS} (bits)")
    return v


def _check_shape(shape: object) -> tuple[int, int]:
    if (
        not isinstance(shape, tuple)
        or len(shape) != 2
        or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidArgument(f"shape={shape!r} must be a tuple (rows, cols) of non-negative ints, e.g. shape=(4, 64)")
    return int(shape[0]), int(shape[1])


def _check_fill(fill: object) -> SearchStrategy[Any] | None:
    if fill is not None and not isinstance(fill, SearchStrategy):
        raise InvalidArgument(f"fill={fill!r} must be a strategy (e.g. st.just(0.0)) or None")
    return fill


def _check_float(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidArgument(f"{name}={value!r} must be a real number")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidArgument(f"{name}={v} must be finite")
    if positive and v <= 0:
        raise InvalidArgument(f"{name}={v} must be > 0")
    return v


# ------------------------------------------------------------------------------------------------
# SVLs and targets
# ------------------------------------------------------------------------------------------------


def svls(*, min_svl: int = 128, max_svl: int = 2048) -> SearchStrategy[int]:
    """Streaming vector lengths in bits, powers of two in ``[min_svl, max_svl]``.

    Shrinks towards ``min_svl`` (the smallest tiles, the most tile edges per problem).

    Example::

        >>> svls(max_svl=512).example() in (128, 256, 512)
        True
    """
    lo, hi = _check_svl("min_svl", min_svl), _check_svl("max_svl", max_svl)
    if lo > hi:
        raise InvalidArgument(f"min_svl={lo} > max_svl={hi}; swap them")
    return st.sampled_from([s for s in SUPPORTED_SVLS if lo <= s <= hi])


def targets(
    *,
    svl: int | SearchStrategy[int] | None = None,
    sme2: bool | None = True,
    flush_to_zero: bool | None = None,
    i8mm: bool | None = None,
) -> SearchStrategy[Target]:
    """SME :class:`~kleidiref.targets.Target` CPUs: SVL, SME2 or SME1 only, FPCR.FZ, FEAT_I8MM.

    ``None`` for a flag draws it; ``svl`` is a fixed SVL, a strategy, or None (:func:`svls`).
    ``sme2=False`` gives SME1-only targets (XNNPACK's ``_sme_`` kernel branch: NaN-propagating
    clamps); ``i8mm`` picks the qb4w NEON branch.

    Example::

        >>> t = targets(svl=256, sme2=False, flush_to_zero=False).example()
        >>> (t.svl_bits, t.sme2, t.sme, t.flush_to_zero)
        (256, False, True, False)
    """
    if svl is None:
        svl_s: SearchStrategy[int] = svls()
    elif isinstance(svl, SearchStrategy):
        svl_s = svl
    else:
        svl_s = st.just(_check_svl("svl", svl))
    flags = {}
    for name, val in (("sme2", sme2), ("flush_to_zero", flush_to_zero), ("i8mm", i8mm)):
        if val is not None and not isinstance(val, bool):
            raise InvalidArgument(f"{name}={val!r} must be True, False or None (draw it)")
        flags[name] = st.booleans() if val is None else st.just(val)

    def build(s: int, two: bool, fz: bool, mm: bool) -> Target:
        return Target(
            svl_bits=s, sme2=two, sme=True, flush_to_zero=fz, i8mm=mm, name=f"{'sme2' if two else 'sme1'}-{s}"
        )

    return st.builds(build, svl_s, flags["sme2"], flags["flush_to_zero"], flags["i8mm"])


# ------------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Shape:
    """An M x N x K problem (``bl`` is the qb4w block length, None for the other variants)."""

    m: int
    n: int
    k: int
    bl: int | None = None


def _edges(variant: str, svl: int) -> tuple[set[int], set[int], set[int]]:
    ms: set[int] = {1, 2}
    ns: set[int] = {1, 2}
    ks: set[int] = {1, 2, 31, 32, 33}
    for cls in kernels_of(variant):
        kern = cls(svl)
        assert isinstance(kern, MatmulKernel)
        tp = kern.tile_params()
        for v in (tp.mr, tp.m_step, 2 * tp.m_step):
            ms.update((v - 1, v, v + 1))
        for v in (tp.nr, tp.n_step):
            ns.update((v - 1, v, v + 1))
        for v in (tp.kr, tp.kr // max(tp.sr, 1)):
            ks.update((v - 1, v, v + 1, 2 * v + 1))
    return {v for v in ms if v >= 1}, {v for v in ns if v >= 1}, {v for v in ks if v >= 1}


def _dim(edges: set[int], lo: int, hi: int) -> SearchStrategy[int]:
    near = sorted(v for v in edges if lo <= v <= hi)
    plain = st.integers(lo, hi)
    return st.one_of(st.sampled_from(near), plain) if near else plain


def problem_shapes(
    variant: str,
    *,
    svl: int = 512,
    max_m: int = 40,
    max_n: int = 80,
    max_k: int = 96,
    block_lengths: Sequence[int] = (32, 64, 128),
) -> SearchStrategy[Shape]:
    """Problem shapes for ``variant`` at ``svl`` that straddle its kernels' blocking.

    Half the draws pick each dimension next to a tile boundary of one of the variant's kernels
    (mr, m_step, nr, n_step, kr, kr/sr, each minus one, itself, plus one; K = 31, 32, 33 for the
    qai8dx/qsi8cx padding to 32); the rest are uniform. ``qp8_f32_qb4w_gemm`` shapes have
    ``K = bl * nb`` with ``bl`` from ``block_lengths`` (multiples of 32, as XNNPACK requires).

    Example::

        >>> s = problem_shapes("pf32_gemm", svl=128, max_m=20).example()
        >>> 1 <= s.m <= 20 and s.bl is None
        True
    """
    v = _check_variant(variant)
    svl_ = _check_svl("svl", svl)
    mm, mn = _check_int("max_m", max_m, minimum=1), _check_int("max_n", max_n, minimum=1)
    mk = _check_int("max_k", max_k, minimum=1)
    em, en, ek = _edges(v, svl_)
    m_s, n_s = _dim(em, 1, mm), _dim(en, 1, mn)
    if v != "qp8_f32_qb4w_gemm":
        return st.builds(Shape, m_s, n_s, _dim(ek, 1, mk))
    bls = [int(b) for b in block_lengths]
    if not bls or any(b < 32 or b % 32 for b in bls):
        raise InvalidArgument(
            f"block_lengths={tuple(block_lengths)!r} must be non-empty multiples of 32 "
            "(XNN_MIN_BLOCKSIZE = 32 and the packers' bl % 32 == 0)"
        )
    fitting = [b for b in bls if b <= mk]
    if not fitting:
        raise InvalidArgument(f"max_k={mk} is below every block length {bls}; raise max_k to at least {min(bls)}")

    @st.composite
    def qb4(draw: st.DrawFn) -> Shape:
        bl = draw(st.sampled_from(fitting))
        nb = draw(st.integers(1, mk // bl))
        return Shape(draw(m_s), draw(n_s), bl * nb, bl)

    return qb4()


# ------------------------------------------------------------------------------------------------
# Values
# ------------------------------------------------------------------------------------------------


def activations(
    *,
    shape: tuple[int, int],
    dtype: Any = np.float32,
    max_magnitude: float | None = None,
    outliers: bool = False,
    constant_rows: bool = False,
    zero_rows: bool = False,
    negative_rows: bool = False,
    fill: SearchStrategy[Any] | None = None,
) -> SearchStrategy[NDArray[Any]]:
    """Float activations [rows, K] with the rows that stress per-row dynamic quantization.

    Elements are finite, normal or zero, in ``[-max_magnitude, max_magnitude]`` (default 16 for
    float32, 4 for float16, so f16 sums stay finite). Each enabled row kind may replace a row:
    ``outliers`` (one element 2**4 to 2**12 times larger: the other codes collapse), ``constant_rows``
    (scale = 255/c, zp = -128), ``zero_rows`` (scale 1, zp 127: the correction must cancel),
    ``negative_rows`` (every element < 0: zp = 127). ``fill`` is passed to
    :func:`hypothesis.extra.numpy.arrays`; give e.g. ``fill=st.just(0.5)`` for large K.

    Example::

        >>> a = activations(shape=(3, 40), zero_rows=True).example()
        >>> a.shape, a.dtype
        ((3, 40), dtype('float32'))
    """
    rows, cols = _check_shape(shape)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise InvalidArgument(f"dtype={dt} is not an activation type; use np.float32 (pf32, qp8) or np.float16 (pf16)")
    mag = (
        (16.0 if dt == np.float32 else 4.0)
        if max_magnitude is None
        else _check_float("max_magnitude", max_magnitude, positive=True)
    )
    top = float(np.finfo(dt).max)
    if mag * 4096 > top:
        raise InvalidArgument(f"max_magnitude={mag} leaves no room for outliers in {dt}; use at most {top / 4096:g}")
    flags = {
        "outlier": _check_bool("outliers", outliers),
        "constant": _check_bool("constant_rows", constant_rows),
        "zero": _check_bool("zero_rows", zero_rows),
        "negative": _check_bool("negative_rows", negative_rows),
    }
    fill_s = _check_fill(fill)
    elems = st.floats(
        -mag, mag, width=32 if dt == np.float32 else 16, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )
    kinds = ["plain"] + [k for k, on in flags.items() if on]

    @st.composite
    def build(draw: st.DrawFn) -> NDArray[Any]:
        a: NDArray[Any] = draw(hnp.arrays(dt, (rows, cols), elements=elems, fill=fill_s)).copy()
        if len(kinds) == 1 or cols == 0:
            return a
        for r, kind in enumerate(draw(st.lists(st.sampled_from(kinds), min_size=rows, max_size=rows))):
            if kind == "outlier":
                j = draw(st.integers(0, cols - 1))
                a[r, j] = dt.type(draw(st.sampled_from([-1.0, 1.0])) * mag * draw(st.sampled_from([16, 256, 4096])))
            elif kind == "constant":
                a[r, :] = draw(elems.filter(lambda x: x != 0))
            elif kind == "zero":
                a[r, :] = 0
            elif kind == "negative":
                a[r, :] = -np.abs(a[r, :])
                a[r, a[r, :] == 0] = dt.type(-mag / 2)
        return a

    return build()


def int8_weights(
    *,
    shape: tuple[int, int],
    min_value: int = -127,
    max_value: int = 127,
    extreme_codes: bool = True,
    fill: SearchStrategy[Any] | None = None,
) -> SearchStrategy[NDArray[np.int8]]:
    """int8 weights (or pqs8 activations) in ``[min_value, max_value]``.

    With ``extreme_codes`` half the drawn elements are ``min_value``, ``max_value`` or 0, which
    pushes the int32 sums and the row sums to their extremes. XNNPACK's qc8w weights are
    symmetric (``-127..127``, the default); pass ``min_value=-128`` for raw int8 data.

    Example::

        >>> w = int8_weights(shape=(4, 33)).example()
        >>> w.dtype, int(w.min()) >= -127
        (dtype('int8'), True)
    """
    rows, cols = _check_shape(shape)
    lo, hi = _check_int("min_value", min_value), _check_int("max_value", max_value)
    if not -128 <= lo <= hi <= 127:
        raise InvalidArgument(f"need -128 <= min_value <= max_value <= 127, got [{lo}, {hi}]")
    elems: SearchStrategy[int] = st.integers(lo, hi)
    if _check_bool("extreme_codes", extreme_codes):
        elems = st.one_of(st.sampled_from(sorted({lo, hi, min(max(0, lo), hi)})), elems)
    return hnp.arrays(np.int8, (rows, cols), elements=elems, fill=_check_fill(fill))


def int4_weights(
    *,
    shape: tuple[int, int],
    extreme_codes: bool = True,
    unsigned: bool = False,
    fill: SearchStrategy[Any] | None = None,
) -> SearchStrategy[NDArray[Any]]:
    """4-bit weight codes [N, K]: int8 values in ``[-8, 7]`` (or uint8 ``[0, 15]``, zero point 8).

    With ``extreme_codes`` half the drawn elements are -8, 7 or 0 (0, 15, 8 unsigned): all -8 and 7
    maximise |isum| per block. Pack XNNPACK's nibble pairs with
    :func:`kleidiref.quant.qb4.pack_nibbles`.

    Example::

        >>> c = int4_weights(shape=(2, 64)).example()
        >>> bool(((c >= -8) & (c <= 7)).all())
        True
    """
    rows, cols = _check_shape(shape)
    uns = _check_bool("unsigned", unsigned)
    lo, hi, mid = (0, 15, 8) if uns else (-8, 7, 0)
    elems: SearchStrategy[int] = st.integers(lo, hi)
    if _check_bool("extreme_codes", extreme_codes):
        elems = st.one_of(st.sampled_from([lo, hi, mid]), elems)
    return hnp.arrays(np.uint8 if uns else np.int8, (rows, cols), elements=elems, fill=_check_fill(fill))


def channel_scales(
    *,
    n: int,
    min_value: float = 2.0**-12,
    max_value: float = 2.0**2,
    dtype: Any = np.float32,
) -> SearchStrategy[NDArray[np.float32]]:
    """Positive, normal per-channel scales [n] in ``[min_value, max_value]`` (float32).

    The bounds themselves are drawn often (extreme ranges across channels). Scales must be
    normal and positive: XNNPACK refuses others, and a subnormal scale meets FPCR.FZ.

    Example::

        >>> s = channel_scales(n=5, min_value=0.5, max_value=2.0).example()
        >>> bool(((s >= 0.5) & (s <= 2.0)).all())
        True
    """
    cnt = _check_int("n", n, minimum=0)
    lo = _check_float("min_value", min_value, positive=True)
    hi = _check_float("max_value", max_value, positive=True)
    if np.dtype(dtype) != np.dtype(np.float32):
        raise InvalidArgument(f"dtype={dtype!r}: per-channel scales are float32 in every variant here")
    if lo < float(np.finfo(np.float32).tiny):
        raise InvalidArgument(f"min_value={lo} is subnormal in float32; use at least {np.finfo(np.float32).tiny}")
    if lo > hi:
        raise InvalidArgument(f"min_value={lo} > max_value={hi}; swap them")
    if hi > float(np.finfo(np.float32).max):
        raise InvalidArgument(f"max_value={hi} overflows float32")
    elems = st.one_of(
        st.sampled_from([np.float32(lo), np.float32(hi)]), st.floats(lo, hi, width=32, allow_subnormal=False)
    )
    return hnp.arrays(np.float32, (cnt,), elements=elems.filter(lambda x: lo <= x <= hi))


def block_scales_bf16(
    *,
    n: int,
    num_blocks: int,
    min_exponent: int = -12,
    max_exponent: int = 2,
    extreme_ranges: bool = False,
) -> SearchStrategy[NDArray[np.uint16]]:
    """bf16 block scales [n, num_blocks] as uint16 bit patterns: positive, normal, exactly bf16.

    A value is ``(1 + f/128) * 2**e`` with ``e`` in ``[min_exponent, max_exponent]`` (-126..127)
    and a 7-bit fraction ``f``; every one is exact in bf16 and converts exactly to f32
    (``bits << 16``). ``extreme_ranges=True`` draws only ``min_exponent`` and ``max_exponent``,
    so one row mixes tiny and huge blocks (what exposes rsum rounding-order differences).

    Example::

        >>> from kleidiref.numerics import bf16_to_f32
        >>> s = block_scales_bf16(n=3, num_blocks=2).example()
        >>> s.dtype, bool((bf16_to_f32(s) > 0).all())
        (dtype('uint16'), True)
    """
    rows = _check_int("n", n, minimum=0)
    cols = _check_int("num_blocks", num_blocks, minimum=0)
    lo, hi = _check_int("min_exponent", min_exponent), _check_int("max_exponent", max_exponent)
    if not -126 <= lo <= hi <= 127:
        raise InvalidArgument(f"need -126 <= min_exponent <= max_exponent <= 127 (normal bf16), got [{lo}, {hi}]")
    exps: SearchStrategy[int] = (
        st.sampled_from([lo, hi]) if _check_bool("extreme_ranges", extreme_ranges) else st.integers(lo, hi)
    )
    bits = st.builds(lambda e, f: ((e + 127) << 7) | f, exps, st.integers(0, 127))
    return hnp.arrays(np.uint16, (rows, cols), elements=bits)


# ------------------------------------------------------------------------------------------------
# Whole problems
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GemmProblem:
    """A drawn GEMM: variant, target and the ``gemm`` inputs; see :meth:`kwargs`, :meth:`reference`."""

    variant: str
    target: Target
    inputs: dict[str, Any]

    @property
    def shape(self) -> Shape:
        m, k = self.inputs["lhs"].shape
        return Shape(m, self.inputs["rhs"].shape[0], k, self.inputs.get("bl"))

    def kwargs(self) -> dict[str, Any]:
        """Keywords for :func:`kleidiref.testing.assert_matches` / ``reference`` / ``error_bound``."""
        return {"variant": self.variant, "target": self.target, **self.inputs}

    def reference(self, kernel: str | None = None) -> NDArray[Any]:
        """kleidiref's output (the kernel XNNPACK selects unless ``kernel`` names one)."""
        from . import reference

        return reference(**self.kwargs(), kernel=kernel)

    def __repr__(self) -> str:
        s = self.shape
        return (
            f"GemmProblem({self.variant}, M={s.m}, N={s.n}, K={s.k}{f', bl={s.bl}' if s.bl else ''}, "
            f"SVL {self.target.svl_bits}, {'SME2' if self.target.sme2 else 'SME1'}, "
            f"FZ {'on' if self.target.flush_to_zero else 'off'})"
        )


def gemm_problems(
    variant: str,
    *,
    target: Target | SearchStrategy[Target] | None = None,
    max_m: int = 24,
    max_n: int = 48,
    max_k: int = 96,
    clamp: bool = True,
    bias: bool = True,
    hard_rows: bool = True,
    fill: SearchStrategy[Any] | None = None,
) -> SearchStrategy[GemmProblem]:
    """Whole GEMM problems for ``variant``: a target, a shape from :func:`problem_shapes`, inputs.

    ``target`` is fixed, a strategy, or None (:func:`targets` with FZ drawn). ``clamp`` draws
    finite clamp bounds (or output bounds for pqs8) half of the time; ``bias`` includes a bias;
    ``hard_rows`` mixes the outlier/constant/zero/negative rows of :func:`activations` into
    float activations. The inputs fit XNNPACK's contract (pqs8 requantization scales < 256,
    qb4w ``K % bl == 0``, positive normal scales).

    Example::

        >>> p = gemm_problems("pqs8_qc8w_gemm", max_m=4, max_n=8, max_k=8).example()
        >>> p.reference().dtype
        dtype('int8')
    """
    v = _check_variant(variant)
    tgt: SearchStrategy[Target]
    if target is None:
        tgt = targets(sme2=None)
    elif isinstance(target, Target):
        tgt = st.just(target)
    elif isinstance(target, SearchStrategy):
        tgt = target
    else:
        raise InvalidArgument(f"target={target!r} must be a kleidiref Target, a strategy of them, or None")
    mm, mn = _check_int("max_m", max_m, minimum=1), _check_int("max_n", max_n, minimum=1)
    mk = _check_int("max_k", max_k, minimum=32 if v == "qp8_f32_qb4w_gemm" else 1)
    use_clamp, use_bias = _check_bool("clamp", clamp), _check_bool("bias", bias)
    hard = _check_bool("hard_rows", hard_rows)
    fill_s = _check_fill(fill)

    @st.composite
    def build(draw: st.DrawFn) -> GemmProblem:
        t = draw(tgt)
        # A NEON target has no SVL; its kernels' blocking does not depend on one.
        s = draw(problem_shapes(v, svl=t.svl_bits or 512, max_m=mm, max_n=mn, max_k=mk))
        inputs: dict[str, Any] = {}
        if v == "pqs8_qc8w_gemm":
            inputs["lhs"] = draw(int8_weights(shape=(s.m, s.k), min_value=-128, fill=fill_s))
            inputs["rhs"] = draw(int8_weights(shape=(s.n, s.k), fill=fill_s))
            inputs["input_zero_point"] = draw(st.integers(-128, 127))
            inputs["requant_scale"] = draw(channel_scales(n=s.n, min_value=2.0**-14, max_value=2.0**-6))
            if use_bias:
                inputs["bias"] = draw(hnp.arrays(np.int32, (s.n,), elements=st.integers(-(2**16), 2**16)))
            inputs["output_zero_point"] = draw(st.integers(-128, 127))
            if use_clamp and draw(st.booleans()):
                lo = draw(st.integers(-128, 127))
                inputs["output_min"], inputs["output_max"] = lo, draw(st.integers(lo, 127))
            return GemmProblem(v, t, inputs)
        dt = np.float16 if v == "pf16_gemm" else np.float32
        inputs["lhs"] = draw(
            activations(
                shape=(s.m, s.k),
                dtype=dt,
                outliers=hard,
                constant_rows=hard,
                zero_rows=hard,
                negative_rows=hard,
                fill=fill_s,
            )
        )
        if v in ("pf32_gemm", "pf16_gemm"):
            inputs["rhs"] = draw(activations(shape=(s.n, s.k), dtype=dt, fill=fill_s))
        elif v == "qp8_f32_qc8w_gemm":
            inputs["rhs"] = draw(int8_weights(shape=(s.n, s.k), fill=fill_s))
            inputs["scale"] = draw(channel_scales(n=s.n))
        else:
            inputs["rhs"] = draw(int4_weights(shape=(s.n, s.k), fill=fill_s))
            inputs["scales_bf16"] = draw(block_scales_bf16(n=s.n, num_blocks=s.k // int(s.bl or 32)))
            inputs["bl"] = s.bl
        if use_bias:
            inputs["bias"] = draw(activations(shape=(1, s.n), dtype=dt))[0]
        if use_clamp and draw(st.booleans()):
            a = draw(st.floats(-64, 64, width=16, allow_nan=False))
            b = draw(st.floats(-64, 64, width=16, allow_nan=False))
            inputs["clamp_min"], inputs["clamp_max"] = float(min(a, b)), float(max(a, b))
        return GemmProblem(v, t, inputs)

    return build()
