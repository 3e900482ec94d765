"""XNNPACK ``f16_gemm`` config on x86-64: fp16 GEMM / IGEMM kernels (gemm-config.c, x86 branch).

``init_f16_gemm_config`` picks, first match wins (same at XNNPACK HEAD and the ExecuTorch pin
92a7ad501b; the AVX2 entry has been f32-accumulating since daf152873a, April 2024):

* ``avx512fp16``: ``xnn_f16_{gemm,igemm}_minmax_ukernel_{1x32,8x32}__avx512fp16_broadcast`` (mr 8, nr 32)
* ``avx512skx``: ``xnn_f16_f32acc_{gemm,igemm}_minmax_ukernel_{1x32,4x32}__avx512skx_broadcast`` (4, 32)
* ``avx2``: ``xnn_f16_f32acc_{gemm,igemm}_minmax_ukernel_{1x16,4x16}__avx2_broadcast`` (4, 16)

No AVX2 (and no AVX-512): the config stays empty and ``xnn_init_f16_gemm_config`` returns NULL,
so creating an f16 FC fails with ``xnn_status_unsupported_hardware`` (fully-connected-nc.c).
Every kernel keeps one accumulator per output and walks k in order, so M changes no bits.

``avx2`` / ``avx512skx`` (f32 accumulation; src/f16-f32acc-gemm/gen/…-avx2-broadcast.c,
src/f16-f32acc-igemm/gen/…; templates src/f16-gemm/avx2-broadcast.c.in, avx512skx-broadcast.c.in)::

    acc = f32(bias[n])                              VCVTPH2PS: exact
    acc = fma32(f32(a[m,k]), f32(w[n,k]), acc)      k = 0 .. K-1, VFMADD (one rounding)
    acc = MAXPS(acc, f32(min)); acc = MINPS(acc, f32(max))
    y   = RN16(acc)                                 VCVTPS2PH, imm _MM_FROUND_TO_NEAREST_INT

``avx512fp16`` (fp16 accumulation; src/f16-gemm/gen/f16-gemm-*-avx512fp16-broadcast.c)::

    acc = bias[n];  acc = fma16(a[m,k], w[n,k], acc)   VFMADD…PH: RN16(a*b + acc), one rounding
    y = MINPH(max, MAXPH(min, acc))

``avx2_f16acc`` - ``xnn_f16_gemm_minmax_ukernel_{1x16,4x16}__avx2_broadcast``
(src/f16-gemm/gen/f16-gemm-1x16-minmax-avx2-broadcast.c, gemm only): no config selects it any
more; kept for reference. fp16 emulated with f32 FMA and a round per step::

    acc = f32(RN16(fma32(f32(a), f32(w), acc)))     double rounding: RN32, then RN16
    then the f32 clamp and RN16 as ``avx2``.

x86 MAXPS/MINPS (and MAXPH/MINPH) return the *second* operand unless the first is strictly
greater / smaller: a NaN or a zero of either sign compares false. So the f32acc kernels turn a
NaN accumulator into ``min`` (the bounds are never NaN: XNNPACK rejects them), and ``avx512fp16``
(bound first) lets the NaN through. Bounds are fp16 (``F16(F32(bound))``, RNE, as XNNPACK's
``xnn_init_f16_minmax_scalar_params`` receives them); ``bias`` is fp16 (an fp32 static bias is
rounded to fp16 at creation, :func:`kleidiref.numerics.rn16`).

# Note: ``fz`` (MXCSR FTZ|DAZ, which pthreadpool sets on x86 too,) changes no
# bit here, so it is accepted and ignored. VCVTPH2PS ignores DAZ and VCVTPS2PH ignores FTZ (Intel
# SDM: fp16 subnormals are read and written exactly); AVX512-FP16 arithmetic does not consult
# DAZ/FTZ; and every f32 accumulator is a multiple of 2**-48 (products of fp16 values, whose ulp
# is >= 2**-24), so none is ever an f32 subnormal.
# Note: NaN outputs of ``avx512fp16`` are the default NaN 0x7E00; x86 would give 0xFE00 (the
# "indefinite") for an invalid operation, or the quieted input NaN. Payloads are not modelled.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .._engine import fma32_chain
from ..numerics import Clamp, clamp, fma32, rn16
from ._common import as_f16, fma16_chain
from ._conv import grouped_conv, grouped_geometry

__all__ = ["F16_X86_KERNELS", "X86Kernel", "f16_x86_gemm", "f16_x86_igemm", "f16_x86_ukernel"]

F16, F32 = np.float16, np.float32
X86Kernel = Literal["avx2", "avx512skx", "avx512fp16", "avx2_f16acc"]

#: ``kernel=`` values and the XNNPACK ukernels they model.
F16_X86_KERNELS: dict[str, str] = {
    "avx2": "xnn_f16_f32acc_{gemm,igemm}_minmax_ukernel_{1x16,4x16}__avx2_broadcast",
    "avx512skx": "xnn_f16_f32acc_{gemm,igemm}_minmax_ukernel_{1x32,4x32}__avx512skx_broadcast",
    "avx512fp16": "xnn_f16_{gemm,igemm}_minmax_ukernel_{1x32,8x32}__avx512fp16_broadcast",
    "avx2_f16acc": "xnn_f16_gemm_minmax_ukernel_{1x16,4x16}__avx2_broadcast (selected by no config)",
}
_TILES = {"avx2": (4, 16, "f16_f32acc", "avx2"), "avx512skx": (4, 32, "f16_f32acc", "avx512skx"),
          "avx512fp16": (8, 32, "f16", "avx512fp16")}  # fmt: skip


def f16_x86_ukernel(
    m: int, *, igemm: bool = False, avx512fp16: bool = False, avx512skx: bool = False
) -> tuple[str, str, int, int]:
    """``(kernel=, exact XNNPACK ukernel, mr, nr)`` of the x86-64 ``f16_gemm`` config (AVX2 assumed).

    ``m`` is the kernel's row count choice input: 1 runs the 1-row kernel (FC/BMM with M == 1,
    or a conv for which XNNPACK's heuristic picked mr = 1), anything larger the config's mr.
    """
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    key = "avx512fp16" if avx512fp16 else "avx512skx" if avx512skx else "avx2"
    mr, nr, fam, isa = _TILES[key]
    rows = 1 if m == 1 else mr
    op = "igemm" if igemm else "gemm"
    return key, f"xnn_{fam}_{op}_minmax_ukernel_{rows}x{nr}__{isa}_broadcast", rows, nr


def _bounds(clamp_min: float, clamp_max: float) -> tuple[np.float16, np.float16]:
    lo, hi = F16(F32(clamp_min)), F16(F32(clamp_max))
    # XNNPACK's f16 operators reject NaN bounds and min >= max after rounding to fp16.
    if not (lo < hi):
        raise ValueError(f"clamp bounds as fp16 must satisfy min < max (no NaN), got {lo}, {hi}")
    return lo, hi


def _check_kernel(kernel: str, igemm: bool) -> None:
    if kernel not in F16_X86_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(F16_X86_KERNELS)}, got {kernel!r}")
    if igemm and kernel == "avx2_f16acc":
        raise ValueError("avx2_f16acc has no IGEMM kernel in XNNPACK (src/f16-igemm has avx512fp16 only)")


def _bias(bias: NDArray[np.float16] | None, n: int) -> NDArray[np.float16]:
    b = np.zeros(n, F16) if bias is None else as_f16("bias", bias, ndim=1)
    if b.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), got {b.shape}")
    return b


def _run(
    rows: NDArray[np.float16],
    wt: NDArray[np.float16],
    acc0: NDArray[np.float16],
    lo: np.float16,
    hi: np.float16,
    kernel: str,
) -> NDArray[np.float16]:
    """One GEMM ``rows`` [M, K] x ``wt`` [K, N] from the fp16 bias rows ``acc0`` [M, N]."""
    if kernel == "avx512fp16":
        acc16 = fma16_chain(acc0, rows, wt, fz=False)
        out16: NDArray[np.float16] = clamp(acc16, lo, hi, Clamp.X86_BOUND_MAX_MIN)  # MINPH(max, MAXPH(min, acc))
        return out16
    a32, w32 = rows.astype(F32), wt.astype(F32)
    acc = np.array(acc0, dtype=F32)
    if kernel == "avx2_f16acc":
        for k in range(a32.shape[1]):
            acc = rn16(fma32(a32[:, k : k + 1], w32[k : k + 1, :], acc)).astype(F32)
    else:
        acc = fma32_chain(acc, a32, w32, fz=False)
    acc = clamp(acc, F32(lo), F32(hi), Clamp.X86_MAX_MIN)
    return rn16(acc.astype(F32))


def f16_x86_gemm(
    a: NDArray[np.float16],
    w: NDArray[np.float16],
    bias: NDArray[np.float16] | None = None,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: X86Kernel = "avx2",
) -> NDArray[np.float16]:
    """``[M, N]`` float16 output of the x86-64 f16 GEMM ``kernel`` for ``a`` [M, K], ``w`` [N, K].

    ``bias`` [N] float16 or None (zeros). ``fz`` is accepted for symmetry and has no effect.
    """
    del fz  # no effect on x86 (module docstring)
    a = as_f16("a", a, ndim=2)
    w = as_f16("w", w, ndim=2)
    _check_kernel(kernel, igemm=False)
    m, k = a.shape
    n = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"K mismatch: a is {a.shape}, w is {w.shape} ([N, K])")
    if k < 1:
        raise ValueError("K must be >= 1")
    lo, hi = _bounds(clamp_min, clamp_max)
    b = _bias(bias, n)
    return _run(a, np.ascontiguousarray(w.T), np.broadcast_to(b, (m, n)), lo, hi, kernel)


def f16_x86_igemm(
    x: NDArray[np.float16],
    w: NDArray[np.float16],
    bias: NDArray[np.float16] | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: Literal["avx2", "avx512skx", "avx512fp16"] = "avx2",
) -> NDArray[np.float16]:
    """NHWC f16 convolution ``x`` [N,H,W,C] * ``w`` [O,kh,kw,C/groups] -> [N,Ho,Wo,O] (x86-64 IGEMM).

    Taps (ky, kx) row-major, channels ascending within a tap, one sequential chain over
    ``k' = tap * gic + c``; a tap in the padding reads XNNPACK's zero buffer (+0.0).
    Padding is [top, right, bottom, left]. ``fz`` has no effect.
    """
    del fz
    x = as_f16("x", x, ndim=4)
    w = as_f16("w", w, ndim=4)
    _check_kernel(kernel, igemm=True)
    geo = grouped_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    lo, hi = _bounds(clamp_min, clamp_max)
    cout = w.shape[0]
    b = _bias(bias, cout)

    def gemm(rows: NDArray[np.float16], wg: NDArray[np.float16], cols: slice) -> NDArray[np.float16]:
        acc0 = np.broadcast_to(b[cols], (rows.shape[0], geo.goc))
        return _run(np.ascontiguousarray(rows), np.ascontiguousarray(wg.T), acc0, lo, hi, kernel)

    return grouped_conv(x, w, geo, F16(0.0), F16, gemm)
