"""Hypothesis strategies for kernel tests, in the style of :mod:`hypothesis.extra.numpy`.

Every strategy takes keyword-only arguments, validates them eagerly (raising
:class:`hypothesis.errors.InvalidArgument` with a fix-it message) and returns a typed
``SearchStrategy``. Shapes straddle the kernels' blocking (mr/nr/kr/sr, m_step/n_step, the
K padding to 32 of the qai8dx formats, qb4w block lengths); values include the rows that break
dynamic quantization (outliers, constant, all-zero, all-negative rows) and extreme int8/int4
codes and scales. Large arrays stay fast with ``fill=`` (see :func:`hypothesis.extra.numpy.arrays`):
only a few elements are drawn individually, the rest take the fill value.

This module imports hypothesis (a test-time dependency); :mod:`kleidiref` itself does not.

Long module: one strategy per kind of operand, and the hard-value catalogues each draws from,
side by side so a reader sees what every draw can provoke.

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
from numpy.typing import NDArray

try:
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
    from hypothesis.extra import numpy as hnp
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "kleidiref.testing.strategies needs hypothesis, a test-time dependency: "
        "pip install 'kleidiref[test]' (or pip install hypothesis)"
    ) from _exc

from ..kai.interface import MatmulKernel
from ..targets import SUPPORTED_SVLS, Target
from ._problem import VARIANT_NAMES, kernels_of

__all__ = [
    "CI_PROFILE",
    "EXPLORE_PROFILE",
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


def _dim(edges: set[int], lo: int, hi: int, *, one: bool = False) -> SearchStrategy[int]:
    near = sorted(v for v in edges if lo <= v <= hi)
    plain = st.integers(lo, hi)
    parts: list[SearchStrategy[int]] = []
    if one and lo <= 1 <= hi:
        # M = 1 is the batch-1 (decoding) path, a kernel of its own (the GEMV): a quarter of draws.
        parts.append(st.just(1))
    if near:
        parts.append(st.sampled_from(near))
    return st.one_of(*parts, plain) if parts else plain


@st.composite
def _qb4_shape(
    draw: st.DrawFn, m_s: SearchStrategy[int], n_s: SearchStrategy[int], fitting: tuple[int, ...], mk: int
) -> Shape:
    bl = draw(st.sampled_from(fitting))
    nb = draw(st.integers(1, mk // bl))
    return Shape(draw(m_s), draw(n_s), bl * nb, bl)


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

    A quarter of the draws have M = 1 (the GEMV kernels XNNPACK runs for batch-1 decoding); about
    half the rest pick each dimension next to a tile boundary of one of the variant's kernels
    (mr, m_step and 2 m_step, nr, n_step, kr, kr/sr, each minus one, itself, plus one: M just
    above a tile; K = 31, 32, 33 for the qai8dx/qsi8cx padding to 32 and 2 kr + 1); the rest are
    uniform. ``qp8_f32_qb4w_gemm`` shapes have ``K = bl * nb`` with ``bl`` from ``block_lengths``
    (multiples of 32, as XNNPACK requires), so K is at, or a multiple of, the block length.

    Targets: a port whose tile-edge predicates, K padding or M = 1 dispatch is wrong.

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
    m_s, n_s = _dim(em, 1, mm, one=True), _dim(en, 1, mn)
    if v != "qp8_f32_qb4w_gemm":
        return st.builds(Shape, m_s, n_s, _dim(ek, 1, mk))
    bls = [int(b) for b in block_lengths]
    if not bls or any(b < 32 or b % 32 for b in bls):
        raise InvalidArgument(
            f"block_lengths={tuple(block_lengths)!r} must be non-empty multiples of 32 "
            "(XNN_MIN_BLOCKSIZE = 32 and the packers' bl % 32 == 0)"
        )
    fitting = tuple(b for b in bls if b <= mk)
    if not fitting:
        raise InvalidArgument(f"max_k={mk} is below every block length {bls}; raise max_k to at least {min(bls)}")
    return _qb4_shape(m_s, n_s, fitting, mk)


# ------------------------------------------------------------------------------------------------
# Values
# ------------------------------------------------------------------------------------------------


def _outlier_row(draw: st.DrawFn, a: NDArray[Any], r: int, mag: float) -> None:
    j = draw(st.integers(0, a.shape[1] - 1))
    a[r, j] = a.dtype.type(draw(st.sampled_from([-1.0, 1.0])) * mag * draw(st.sampled_from([16, 256, 4096])))


def _constant_row(draw: st.DrawFn, a: NDArray[Any], r: int, mag: float, elems: SearchStrategy[float]) -> None:
    c = draw(elems)
    a[r, :] = c if c != 0 else mag / 2  # no filter: a zero constant would be a zero row


def _negative_row(a: NDArray[Any], r: int, mag: float) -> None:
    a[r, :] = -np.abs(a[r, :])
    a[r, a[r, :] == 0] = a.dtype.type(-mag / 2)


def _tie_row(draw: st.DrawFn, a: NDArray[Any], r: int, mag: float) -> None:
    """A row whose qai8dx products x * scale0 are exact ties n + 0.5.

    The row's range is ``rmax - rmin = 255 * 2**e`` (an element at each end), so
    ``scale0 = 255 / (rmax - rmin) = 2**-e`` exactly and every other element ``(j + 0.5) * 2**e``
    scales to ``j + 0.5``: ties-to-even and ties-away codes differ on every even ``j``.
    """
    cols = a.shape[1]
    e_hi = math.floor(math.log2(mag / 255))
    e = draw(st.integers(e_hi - 6, e_hi))
    c = draw(st.integers(0, 255)) if cols >= 3 else 0
    js = draw(hnp.arrays(np.int16, (cols,), elements=st.integers(-c, 254 - c)))
    row = (js.astype(np.float64) + 0.5) * 2.0**e
    p1 = draw(st.integers(0, cols - 1))
    row[p1] = (255 - c) * 2.0**e
    if c:
        row[(p1 + 1 + draw(st.integers(0, cols - 2))) % cols] = -c * 2.0**e
    a[r, :] = row


def _nonfinite_row(draw: st.DrawFn, a: NDArray[Any], r: int) -> None:
    a[r, draw(st.integers(0, a.shape[1] - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))


def _subnormal_row(a: NDArray[Any], r: int) -> None:
    """Scale the row into the subnormal range of its type (what FPCR.FZ / FZ16 flush)."""
    shift = -140 if a.dtype == np.float32 else -20
    a[r, :] = (a[r, :].astype(np.float64) * 2.0**shift).astype(a.dtype)


@st.composite
def _activation_array(
    draw: st.DrawFn,
    base: SearchStrategy[NDArray[Any]],
    kinds: tuple[str, ...],
    mag: float,
    elems: SearchStrategy[float],
) -> NDArray[Any]:
    a: NDArray[Any] = draw(base).copy()
    rows, cols = a.shape
    if len(kinds) == 1 or cols == 0:
        return a
    # Note: "plain" is listed three times (30-75 % plain rows) and first, so rows shrink to plain.
    for r, kind in enumerate(draw(st.lists(st.sampled_from(kinds), min_size=rows, max_size=rows))):
        if kind == "outlier":
            _outlier_row(draw, a, r, mag)
        elif kind == "constant":
            _constant_row(draw, a, r, mag, elems)
        elif kind == "zero":
            a[r, :] = 0
        elif kind == "negative":
            _negative_row(a, r, mag)
        elif kind == "tie":
            _tie_row(draw, a, r, mag)
        elif kind == "nonfinite":
            _nonfinite_row(draw, a, r)
        elif kind == "subnormal":
            _subnormal_row(a, r)
    return a


def activations(
    *,
    shape: tuple[int, int],
    dtype: Any = np.float32,
    max_magnitude: float | None = None,
    outliers: bool = False,
    constant_rows: bool = False,
    zero_rows: bool = False,
    negative_rows: bool = False,
    tie_rows: bool = False,
    nonfinite: bool = False,
    subnormal_rows: bool = False,
    fill: SearchStrategy[Any] | None = None,
) -> SearchStrategy[NDArray[Any]]:
    """Float activations [rows, K] with the rows that stress per-row dynamic quantization.

    Elements are normal or zero, in ``[-max_magnitude, max_magnitude]`` (default 16 for
    float32, 4 for float16, so f16 sums stay finite). Each enabled row kind may replace a row,
    each aimed at a bug that ports really have:

    * ``outliers``: one element 2**4 to 2**12 times larger (the other codes collapse; a port
      that clips or uses a symmetric scale loses them differently).
    * ``constant_rows`` (scale = 255/c, zp = -128) and ``zero_rows`` (scale 1, zp 127: the
      ``-zp * rsum`` correction must cancel the row sums exactly): zero points at both ends.
    * ``negative_rows``: every element < 0, zp = 127.
    * ``tie_rows``: ``x * scale0`` lands exactly on ``n + 0.5`` for most elements (the row's range
      is ``255 * 2**e``): a quantizer rounding ties to even (``vcvtnq`` / ``rintf`` / XNNPACK's
      qd8) instead of KleidiAI's ties-away (``vcvtaq_s32_f32`` / ``roundf``) gets other codes.
    * ``nonfinite``: one NaN or +-Inf (a NaN output meets the clamp: SME2 FCLAMP gives clamp_min,
      FMIN/FMAX propagate the NaN; an Inf quantizer range gives a zero scale).
    * ``subnormal_rows``: the row scaled into the subnormal range (2**-140 for f32, 2**-20 for
      f16): under FPCR.FZ / FZ16 these inputs and products read as zero; a port that ignores FZ
      (or flushes without it) keeps them. A row of float32 subnormals also overflows the
      quantizer's ``255 / (rmax - rmin)`` to Inf.

    ``fill`` is passed to :func:`hypothesis.extra.numpy.arrays`; give e.g. ``fill=st.just(0.5)``
    for large K.

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
        "tie": _check_bool("tie_rows", tie_rows),
        "nonfinite": _check_bool("nonfinite", nonfinite),
        "subnormal": _check_bool("subnormal_rows", subnormal_rows),
    }
    if flags["tie"] and mag < 255 * 2.0**-20:
        raise InvalidArgument(f"max_magnitude={mag} is too small for tie_rows; use at least {255 * 2.0**-20:g}")
    fill_s = _check_fill(fill)
    elems = st.floats(
        -mag, mag, width=32 if dt == np.float32 else 16, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )
    enabled = tuple(k for k, on in flags.items() if on)
    kinds = ("plain", *enabled, "plain", "plain") if enabled else ("plain",)
    return _activation_array(hnp.arrays(dt, (rows, cols), elements=elems, fill=fill_s), kinds, mag, elems)


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
    # The float32 values inside [lo, hi]: no filter (a filter discarded draws).
    lo32 = float(np.float32(lo)) if float(np.float32(lo)) >= lo else float(np.nextafter(np.float32(lo), np.inf))
    hi32 = float(np.float32(hi)) if float(np.float32(hi)) <= hi else float(np.nextafter(np.float32(hi), -np.inf))
    if lo32 > hi32:
        raise InvalidArgument(f"no float32 value lies in [{lo}, {hi}]; widen the range")
    elems = st.one_of(st.sampled_from([lo32, hi32]), st.floats(lo32, hi32, width=32, allow_subnormal=False))
    return hnp.arrays(np.float32, (cnt,), elements=elems)


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
    # The ends themselves are drawn often: a row mixing tiny and huge blocks.
    exps: SearchStrategy[int] = (
        st.sampled_from([lo, hi])
        if _check_bool("extreme_ranges", extreme_ranges)
        else st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi))
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


_ZERO_POINTS: SearchStrategy[int] = st.one_of(st.sampled_from([-128, 127, 0]), st.integers(-128, 127))

# (2**30 + 1) = 13325 * 80581 and (2**30 - 1) = 21483 * 49981: float32 pairs whose product
# 2**-24 * (1 +- 2**-30) added to 1 (or 1 + 2**-23) rounds in float64 onto a binary32 midpoint.
_MIDPOINT_PAIRS = ((1.0, 13325.0, 80581.0), (1.0 + 2.0**-23, 21483.0, 49981.0))


def _plant_absorb(
    draw: st.DrawFn, lhs: NDArray[Any], rhs: NDArray[Any], bias: NDArray[Any] | None, i: int, j: int
) -> None:
    """One output whose value depends on the accumulation order and on where the bias enters.

    Sums ``1 + 2**-11 + 2**-24 + 2**-24``: KleidiAI's order (bias first, k ascending, one
    rounding per FMA, or per f16 pair for FDOT/FMOPA-widening) absorbs each ``2**-24``
    (a tie to even), any other order (k reversed, bias added last, per-k instead of per-pair
    f16 rounding) keeps ``2**-23``; for pf16 the difference sits on an f16 midpoint, so it
    survives the final RN16.
    """
    sign = draw(st.sampled_from([1.0, -1.0])) * 2.0 ** draw(st.integers(0, 3))
    t = 2.0**-12
    # Note: the bias-first form tells bias-last ports apart; f16 per-pair vs per-k needs the k-only form.
    if bias is not None and lhs.dtype == np.float32 and draw(st.booleans()):
        bias[j] = sign
        a, w = [2.0**-11, t, t], [1.0, t, t]
    else:
        a, w = [1.0, 2.0**-11, t, t], [1.0, 1.0, t, t]
        if bias is not None:
            bias[j] = 0
    if lhs.shape[1] >= len(a):
        lhs[i, : len(a)] = np.multiply(a, sign)
        rhs[j, : len(w)] = w


def _plant_midpoint(
    draw: st.DrawFn, lhs: NDArray[Any], rhs: NDArray[Any], bias: NDArray[Any] | None, i: int, j: int
) -> None:
    """``acc + a*b`` whose float64 value is a binary32 midpoint but whose exact value is not.

    A port emulating FMA as ``float32(float64(a) * b + acc)`` rounds twice and lands on the
    other neighbour; FMOPA/FMLA round once.
    """
    if lhs.shape[1] < 2:
        return
    base, fa, fb = draw(st.sampled_from(_MIDPOINT_PAIRS))
    sign = draw(st.sampled_from([1.0, -1.0])) * 2.0 ** draw(st.integers(-3, 3))
    if bias is not None:
        bias[j] = 0
    lhs[i, 0], rhs[j, 0] = sign * base, 1.0
    lhs[i, 1], rhs[j, 1] = sign * fa * 2.0**-27, fb * 2.0**-27


def _plant_float(
    draw: st.DrawFn, v: str, lhs: NDArray[Any], rhs: NDArray[Any] | None, bias: NDArray[Any] | None
) -> bool:
    """Plant one hard output (row i, column j) in a float problem; True when it needs a clamp."""
    kind = draw(st.sampled_from(("none", "nan", "absorb", "midpoint", "subnormal")))
    m, k = lhs.shape
    if kind == "none" or k == 0:
        return False
    i = draw(st.integers(0, m - 1))
    if kind == "nan":  # a NaN output meets the clamp: FCLAMP -> clamp_min, FMIN/FMAX -> NaN
        if rhs is None and bias is not None:
            # qai8dx drops NaN activations (fmaxf/fminf ranges, FCVTAS(NaN) = 0): the bias carries it.
            bias[draw(st.integers(0, bias.shape[0] - 1))] = np.nan
        else:
            lhs[i, draw(st.integers(0, k - 1))] = np.nan
        return True
    if rhs is None:  # the quantized variants: only the NaN plant applies
        return False
    j = draw(st.integers(0, rhs.shape[0] - 1))
    lhs[i, :] = 0
    if kind == "absorb":
        _plant_absorb(draw, lhs, rhs, bias, i, j)
    elif kind == "midpoint" and v == "pf32_gemm":
        _plant_midpoint(draw, lhs, rhs, bias, i, j)
    elif kind == "subnormal":  # FZ / FZ16 flush this input and the output; without FZ it stays
        lhs[i, 0], rhs[j, 0] = (2.0**-140, 1.0) if v == "pf32_gemm" else (2.0**-20, 1.0)
        if bias is not None:
            bias[j] = 0
    return False


def _pqs8_scales(draw: st.DrawFn, acc: NDArray[np.int64]) -> tuple[NDArray[np.float32], str]:
    """Requantization scales: mostly fitted so outputs do not all saturate (rounding is exercised)."""
    n = acc.shape[1]
    mode = draw(st.sampled_from(("fit", "pow2", "wide")))
    if mode == "wide":  # XNNPACK-typical small scales: most outputs saturate at the int8 rails
        return draw(channel_scales(n=n, min_value=2.0**-14, max_value=2.0**-6)), mode
    amax = np.maximum(np.abs(acc).max(axis=0, initial=0), 1).astype(np.float64)
    if mode == "pow2":  # exact powers of two: acc * scale can be an exact .5 tie
        e = np.clip(np.ceil(np.log2(amax / 64.0)), -7, 30)
        return (2.0**-e).astype(np.float32), mode
    f = draw(hnp.arrays(np.float64, (n,), elements=st.floats(0.25, 1.0)))
    return np.maximum(100.0 / amax * f, 2.0**-30).astype(np.float32), mode


def _pqs8_inputs(
    draw: st.DrawFn, s: Shape, use_bias: bool, use_clamp: bool, fill_s: SearchStrategy[Any] | None
) -> dict[str, Any]:
    lhs = draw(int8_weights(shape=(s.m, s.k), min_value=-128, fill=fill_s))
    rhs = draw(int8_weights(shape=(s.n, s.k), fill=fill_s))
    izp = draw(_ZERO_POINTS)
    bias = draw(hnp.arrays(np.int32, (s.n,), elements=st.integers(-(2**16), 2**16))) if use_bias else None
    acc = (lhs.astype(np.int64) - izp) @ rhs.astype(np.int64).T + (0 if bias is None else bias.astype(np.int64))
    scale, mode = _pqs8_scales(draw, acc)
    if mode == "pow2" and bias is not None and s.m and s.n:
        # Plant an exact tie acc * scale = n + 0.5 (FRINTN vs ties-away rounding differs).
        i, j = draw(st.integers(0, s.m - 1)), draw(st.integers(0, s.n - 1))
        sh = -int(np.log2(scale[j]))
        if sh >= 1:
            target = (2 * draw(st.integers(-40, 40)) + 1) * 2 ** (sh - 1)
            bias[j] = np.int32(np.clip(int(bias[j]) + target - int(acc[i, j]), -(2**31), 2**31 - 1))
    inputs: dict[str, Any] = {"lhs": lhs, "rhs": rhs, "input_zero_point": izp, "requant_scale": scale}
    if bias is not None:
        inputs["bias"] = bias
    inputs["output_zero_point"] = draw(_ZERO_POINTS)
    if use_clamp and draw(st.booleans()):
        lo = draw(st.integers(-128, 127))
        inputs["output_min"], inputs["output_max"] = lo, draw(st.integers(lo, 127))
    return inputs


def _float_inputs(
    draw: st.DrawFn, v: str, s: Shape, use_bias: bool, use_clamp: bool, hard: bool, fill_s: SearchStrategy[Any] | None
) -> dict[str, Any]:
    dt = np.float16 if v == "pf16_gemm" else np.float32
    rows = {
        "outliers": hard,
        "constant_rows": hard,
        "zero_rows": hard,
        "negative_rows": hard,
        "tie_rows": hard and v != "pf16_gemm",
        "nonfinite": hard,
        "subnormal_rows": hard,
    }
    inputs: dict[str, Any] = {"lhs": draw(activations(shape=(s.m, s.k), dtype=dt, fill=fill_s, **rows))}
    if v in ("pf32_gemm", "pf16_gemm"):
        inputs["rhs"] = draw(activations(shape=(s.n, s.k), dtype=dt, fill=fill_s, subnormal_rows=hard))
    elif v == "qp8_f32_qc8w_gemm":
        inputs["rhs"] = draw(int8_weights(shape=(s.n, s.k), fill=fill_s))
        inputs["scale"] = draw(channel_scales(n=s.n))
    else:
        inputs["rhs"] = draw(int4_weights(shape=(s.n, s.k), fill=fill_s))
        lo_e = draw(st.sampled_from([-12, -30])) if hard else -12  # bf16 scales below 2**-14 too
        inputs["scales_bf16"] = draw(block_scales_bf16(n=s.n, num_blocks=s.k // int(s.bl or 32), min_exponent=lo_e))
        inputs["bl"] = s.bl
    if use_bias:
        inputs["bias"] = draw(activations(shape=(1, s.n), dtype=dt))[0]
    need_clamp = False
    if hard and s.m and s.n:
        rhs = inputs["rhs"] if v in ("pf32_gemm", "pf16_gemm") else None
        need_clamp = _plant_float(draw, v, inputs["lhs"], rhs, inputs.get("bias"))
    if use_clamp and (need_clamp or draw(st.booleans())):
        a = draw(st.floats(-64, 64, width=16, allow_nan=False))
        b = draw(st.floats(-64, 64, width=16, allow_nan=False))
        if a == b and dt == np.float16:
            b = a + 1.0  # xnn_create_fully_connected_nc_f16 needs rounded min < rounded max
        inputs["clamp_min"], inputs["clamp_max"] = float(min(a, b)), float(max(a, b))
    return inputs


@st.composite
def _gemm_problem(
    draw: st.DrawFn,
    v: str,
    tgt: SearchStrategy[Target],
    dims: tuple[int, int, int],
    flags: tuple[bool, bool, bool],
    fill_s: SearchStrategy[Any] | None,
) -> GemmProblem:
    t = draw(tgt)
    # A NEON target has no SVL; its kernels' blocking does not depend on one.
    s = draw(problem_shapes(v, svl=t.svl_bits or 512, max_m=dims[0], max_n=dims[1], max_k=dims[2]))
    use_clamp, use_bias, hard = flags
    if v == "pqs8_qc8w_gemm":
        return GemmProblem(v, t, _pqs8_inputs(draw, s, use_bias, use_clamp, fill_s))
    return GemmProblem(v, t, _float_inputs(draw, v, s, use_bias, use_clamp, hard, fill_s))


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

    ``target`` is fixed, a strategy, or None (:func:`targets`: SME2 or SME1, FZ on or off).
    ``clamp`` draws finite clamp bounds (or output bounds for pqs8) half of the time (always
    when a NaN is planted); ``bias`` includes a bias. The inputs fit XNNPACK's contract (pqs8
    requantization scales < 256, qb4w ``K % bl == 0``, positive normal scales).

    With ``hard_rows`` (the default) the draws mix in the inputs that expose the bugs kernel
    ports really have; each is described where it is made:

    * float activations: every row kind of :func:`activations` (qai8dx ``.5`` ties, NaN/Inf,
      subnormal rows, outliers, constant/zero/negative rows: zero points at both ends);
    * pf32/pf16: one planted output per problem (``_plant_float``): an order-sensitive sum
      (k order, bias first, pf16 pair rounding), an FMA whose float64 sum is a binary32
      midpoint (double rounding), a subnormal input (FZ / FZ16), or a NaN against the clamp;
    * qb4w: bf16 block scales down to 2**-30 (below the f16 normal range);
    * pqs8 (always): input and output zero points at -128, 127 and 0 often; requantization
      scales fitted to the accumulators so most outputs do not saturate, powers of two with a
      planted exact ``.5`` tie (FRINTN vs ties-away), or XNNPACK-typical small scales.

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
    flags = (_check_bool("clamp", clamp), _check_bool("bias", bias), _check_bool("hard_rows", hard_rows))
    return _gemm_problem(v, tgt, (mm, mn, mk), flags, _check_fill(fill))


# ------------------------------------------------------------------------------------------------
# Settings profiles
# ------------------------------------------------------------------------------------------------

#: CI: reproducible (derandomized, no example database), bounded (100 examples, no deadline),
#: and no explain phase (it re-runs a failing test many times to annotate lines).
CI_PROFILE = "kleidiref-ci"
#: Exploring: 2000 examples per test, random, with the example database.
EXPLORE_PROFILE = "kleidiref-explore"

settings.register_profile(
    CI_PROFILE,
    derandomize=True,
    database=None,
    max_examples=100,
    deadline=None,
    print_blob=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    EXPLORE_PROFILE,
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
