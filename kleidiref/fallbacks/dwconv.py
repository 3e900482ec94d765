"""Generic XNNPACK depthwise convolution (``dwconv`` micro-kernels): 1 input, 1 output channel per group.

**Which kernel.** ``find_dwconv_ukernel`` (src/operators/convolution-nhwc.c) picks the unipass kernel with
the smallest primary tile ``T >= kh*kw`` from the family's dwconv config (src/configs/dwconv-config.c; no
multipass kernel is configured at the pin, so more than 25 taps run the IGEMM). ARM64: f32
``xnn_f32_dwconv_minmax_ukernel_{3p8c,4p8c,9p8c}__neonfma`` / ``25p8c__neonfma_acc2``; f16
``xnn_f16_dwconv_minmax_ukernel_{3p16c,4p16c,9p16c}__neonfp16arith`` / ``25p8c__neonfp16arith_acc2``.
x86-64: f32 ``xnn_f32_dwconv_minmax_ukernel_{3,4,9,25}p16c__avx512f`` (AVX512F) or ``__fma3`` (same steps,
no acc2 at 25); f16 ``xnn_f16_dwconv_minmax_ukernel_{3p16c,4p16c,9p16c}__fma3`` / ``25p8c__fma3_acc2``.

**Which values.** Tap ``t`` of output pixel (y, x) is the pointer ``buf[y*step_height + x*kh*step_width + t]``
of the indirection buffer (:func:`dwconv_indirection`, ``xnn_indirection_init_dwconv2d``, src/indirection.c),
whose window is **column-first**: ``t = kx*kh + ky``; the filter is packed in the same order
(``xnn_pack_f32_dwconv_hwg_w``, src/reference/packing.cc, ``advance_x_y``) with zero weights for the spare
taps ``kh*kw .. T-1``. Those spare taps still execute and read the *next* pixels' pointers (the last pixel's
repeat its own last tap), so ``0 * x`` of a neighbour enters the sum: an Inf or NaN next door makes a NaN,
and the sign of a zero result can depend on a neighbour. Padding taps read the zero buffer (+0).

**The steps**, per channel c (``x_t``, ``w_t`` as above; ``b`` the bias, +0 when absent)::

    ARM64 f32 (FPCR.FZ) / f16 (FZ16), T in 3, 4, 9:       acc = b; acc = fma(x_t, w_t, acc)   t = 0 .. T-1
    ARM64 25p8c acc2:   A = fma(x_0, w_0, b); B = RN(x_1 * w_1) (FMUL)
                        A = fma(x_t, w_t, A) t even >= 2;  B = fma(x_t, w_t, B) t odd >= 3;  acc = RN(A + B)
    clamp ARM64:        FMIN(FMAX(acc, min), max)                       (NaN propagates)
    x86 f32, every T:   acc = b; acc = VFMADD(x_t, w_t, acc)  t = 0 .. T-1  (MXCSR FTZ|DAZ)
                        y = MINPS(max, MAXPS(min, acc))                 (bound first: NaN propagates)
    x86 f16 (F16C + FMA3, fp16 emulated in f32), T in 3, 4, 9:
                        acc = f32(b); acc = f32(RN16(VFMADD(f32(x_t), f32(w_t), acc)))   RN32 then RN16
    x86 f16 25p8c_acc2: A, B as ARM64 with each step RN16(RN32(.)), B = RN16(MULPS), acc = RN16(ADDPS(A, B))
                        y = RN16(MINPS(MAXPS(acc, min), max))           (NaN becomes min)

    qs8_qc8w 3p16c / 9p16c / 25p16c (fp32 requantization): acc = bias_q[c] + sum_t (x_t - zx) * w_t,
        then :func:`kleidiref.fallbacks.qs8_qc8w.qs8_requantize_fp32` (integer: tap order irrelevant)

Note: a Cortex-A55 (``hardware_config->uarch``) takes
``xnn_f32_dwconv_minmax_ukernel_9p4c__asm_aarch64_neonfma_cortex_a55`` for 9 taps, whose FMLA chain from the
bias is the same sequence of steps; kleidiref names the ``9p8c`` kernel.

(src/f32-dwconv/gen/f32-dwconv-9p8c-minmax-neonfma.c, f32-dwconv-25p8c-minmax-neonfma-acc2.c,
f32-dwconv-9p16c-minmax-avx512f.c, f16-dwconv-9p16c-minmax-neonfp16arith.c, f16-dwconv-9p16c-minmax-fma3.c,
f16-dwconv-25p8c-minmax-fma3-acc2.c.)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..conv import ConvGeometry
from ..numerics import Clamp, clamp, fadd16, fadd32, fma16, fma32, fma32_x86, fmul16, fmul32, rn16
from ._conv import GroupedConv, gather_taps, grouped_geometry
from .qs8_qc8w import qs8_requantize_fp32

__all__ = ["DWCONV_TILES", "dwconv", "dwconv_indirection", "dwconv_qs8", "dwconv_tile", "dwconv_x86_ukernel"]

F32, F16 = np.float32, np.float16
Arch = Literal["arm64", "x86_64"]

#: Primary tiles per family (dwconv-config.c; ARM64 and x86-64 configure the same tiles, qu8 aside).
DWCONV_TILES: dict[str, tuple[int, ...]] = {"f32": (3, 4, 9, 25), "f16": (3, 4, 9, 25), "qs8": (3, 9, 25)}


def dwconv_tile(family: str, taps: int) -> int:
    """Smallest primary tile >= ``taps``; ValueError if none (XNNPACK then runs the IGEMM instead)."""
    tiles = [t for t in DWCONV_TILES[family] if t >= taps]
    if not tiles:
        raise ValueError(f"no {family} dwconv kernel has a primary tile >= {taps} taps (XNNPACK uses IGEMM)")
    return min(tiles)


def dwconv_x86_ukernel(family: str, tile: int, *, avx512f: bool = False) -> str:
    """The x86-64 ukernel of ``init_{f32,f16}_dwconv_config`` for a primary tile (f16: FMA3 only)."""
    if family == "f32":
        return f"xnn_f32_dwconv_minmax_ukernel_{tile}p16c__{'avx512f' if avx512f else 'fma3'}"
    if family == "f16":
        return (
            "xnn_f16_dwconv_minmax_ukernel_25p8c__fma3_acc2"
            if tile == 25
            else f"xnn_f16_dwconv_minmax_ukernel_{tile}p16c__fma3"
        )
    raise ValueError(f"no x86-64 dwconv ukernel name for family {family!r}")


def dwconv_indirection(g: ConvGeometry, tile: int) -> NDArray[np.intp]:
    """``[out_h*out_w, tile]``: the input pixel (``iy*W + ix``, or -1 for the zero buffer) each tap reads.

    ``xnn_indirection_init_dwconv2d`` (src/indirection.c) with ``step_width`` / ``step_height`` of
    ``reshape_dwconv`` (convolution-nhwc.c), then the kernel's walk: pixel (y, x) reads ``tile`` consecutive
    pointers from ``y*step_height + x*kh*step_width``, so the spare taps read the next pixels' pointers and
    the last pixel's the repeated last pointer of the buffer.
    """
    if g.hout == 0 or g.wout == 0:
        return np.zeros((0, tile), dtype=np.intp)
    kh, kw, ks = g.kh, g.kw, g.kh * g.kw
    step_w = min(g.sw, kw) if g.dw == 1 else kw
    step_h = ks + (g.wout - 1) * step_w * kh
    buf = np.full(g.hout * step_h + (tile - ks), -1, dtype=np.intp)
    oy, ky, ox, kx = np.meshgrid(
        np.arange(g.hout), np.arange(kh), np.arange(g.wout), np.arange(kw), indexing="ij", sparse=True
    )
    iy = oy * g.sh + ky * g.dh - g.top
    ix = ox * g.sw + kx * g.dw - g.left
    valid = (iy >= 0) & (iy < g.h) & (ix >= 0) & (ix < g.w)
    # Note: windows of neighbouring pixels overlap when stride < kernel width (step_width = stride); the
    # overlapping entries name the same input pixel, so the order of these writes does not matter.
    buf[oy * step_h + (ox * step_w + kx) * kh + ky] = np.where(valid, iy * g.w + ix, -1)
    buf[g.hout * step_h :] = buf[g.hout * step_h - 1]
    base = (np.arange(g.hout)[:, None] * step_h + np.arange(g.wout)[None, :] * (kh * step_w)).reshape(-1)
    ptr: NDArray[np.intp] = buf[base[:, None] + np.arange(tile)[None, :]]
    return ptr


def _check_depthwise(x: NDArray[Any], w: NDArray[Any], kwargs: dict[str, Any]) -> GroupedConv:
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"x must be NHWC and w [C*mult, kh, kw, 1]; got {x.shape}, {w.shape}")
    c = x.shape[3]
    if w.shape[0] != c or w.shape[3] != 1:
        raise ValueError(
            f"a depthwise dwconv kernel needs w of shape [{c}, kh, kw, 1] (groups = channels), got {w.shape}"
        )
    return grouped_geometry(x.shape, w.shape, groups=c, **kwargs)


def _packed_taps(x: NDArray[Any], w: NDArray[Any], geo: GroupedConv, tile: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """``(xt [N*P, T, C], wt [T, C])``: the values each tap reads and the packed filter (column-first)."""
    n, h, wd, c = x.shape
    ptr = dwconv_indirection(geo.geom, tile)  # [P, T]
    img = np.concatenate([x.reshape(n, h * wd, c), np.zeros((n, 1, c), x.dtype)], axis=1)  # row h*w: zero buffer
    xt = img[:, np.where(ptr < 0, h * wd, ptr)].reshape(-1, tile, c)
    ks = geo.kh * geo.kw
    # Note: taps column-first (x outer, y inner), the order of xnn_indirection_init_dwconv2d and of
    # xnn_pack_*_dwconv_hwg_w (advance_x_y), not the row-major order of the IGEMM's xnn_indirection_init_conv2d:
    # summed row-first, the fixtures' 3x3 depthwise outputs were up to 2048 (fp32) / 5120 (fp16) ULP off the
    # observed ones; column-first reproduces them bit for bit. Then tile - ks zero weights.
    wt = np.zeros((tile, c), w.dtype)
    wt[:ks] = w[:, :, :, 0].transpose(2, 1, 0).reshape(ks, c)
    return xt, wt


def _acc_arm(xt: NDArray[Any], wt: NDArray[Any], b: NDArray[Any], tile: int, fz: bool) -> NDArray[Any]:
    """The NEON FMLA chain (one accumulator, or two for the 25-tap ``acc2`` kernels), FPCR.FZ/FZ16."""
    f32 = xt.dtype == F32
    fma, fmul, fadd = (fma32, fmul32, fadd32) if f32 else (fma16, fmul16, fadd16)
    if tile != 25:
        acc = np.broadcast_to(b, xt[:, 0].shape)
        for t in range(tile):
            acc = fma(xt[:, t], wt[t], acc, fz=fz)
        return acc
    big_a = fma(xt[:, 0], wt[0], b, fz=fz)
    big_b = fmul(xt[:, 1], wt[1], fz=fz)
    for t in range(2, tile):
        if t % 2 == 0:
            big_a = fma(xt[:, t], wt[t], big_a, fz=fz)
        else:
            big_b = fma(xt[:, t], wt[t], big_b, fz=fz)
    return fadd(big_a, big_b, fz=fz)


def _acc_x86_f32(xt: NDArray[Any], wt: NDArray[Any], b: NDArray[Any], tile: int, fz: bool) -> NDArray[Any]:
    """``VFMADD231PS`` chain from the bias, one accumulator at every tile (MXCSR FTZ|DAZ when ``fz``)."""
    acc = np.broadcast_to(b, xt[:, 0].shape)
    for t in range(tile):
        acc = fma32_x86(xt[:, t], wt[t], acc, ftz_daz=fz)
    return acc


def _acc_x86_f16(xt: NDArray[Any], wt: NDArray[Any], b: NDArray[Any], tile: int) -> NDArray[Any]:
    """F16C + FMA3: fp16 widened exactly (VCVTPH2PS), each step ``RN16(RN32(.))`` (VCVTPS2PH after it).

    Note: MXCSR FTZ|DAZ change no bit here: the f32 operands are fp16 values (no f32 subnormal, even as
    products) and VCVTPH2PS / VCVTPS2PH read and write fp16 subnormals exactly.
    """
    x32, w32 = xt.astype(F32), wt.astype(F32)

    def step(a: NDArray[Any], k: NDArray[Any], c: Any) -> NDArray[Any]:
        return rn16(fma32_x86(a, k, c)).astype(F32)

    if tile != 25:
        acc = np.broadcast_to(b.astype(F32), x32[:, 0].shape)
        for t in range(tile):
            acc = step(x32[:, t], w32[t], acc)
        return acc
    big_a = step(x32[:, 0], w32[0], b.astype(F32))
    big_b = step(x32[:, 1], w32[1], F32(-0.0))  # _mm256_mul_ps = VFMADD with -0
    for t in range(2, tile):
        if t % 2 == 0:
            big_a = step(x32[:, t], w32[t], big_a)
        else:
            big_b = step(x32[:, t], w32[t], big_b)
    return step(F32(1), big_a, big_b)  # _mm256_add_ps = VFMADD by 1


def dwconv(
    x: NDArray[Any],
    w: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    arch: Arch = "arm64",
) -> NDArray[Any]:
    """Float depthwise conv (f32 or f16 by ``x.dtype``): ``x`` [N,H,W,C], ``w`` [C,kh,kw,1], ``bias`` [C].

    ``arch`` picks the ARM64 (NEON, FPCR.FZ/FZ16 = ``fz``) or the x86-64 kernels (``fz``: MXCSR FTZ|DAZ).
    """
    dt = np.asarray(x).dtype
    if dt not in (F32, F16) or np.asarray(w).dtype != dt:
        raise TypeError("dwconv takes float32 or float16 x and w of the same dtype")
    if arch not in ("arm64", "x86_64"):
        raise ValueError(f"arch must be 'arm64' or 'x86_64', got {arch!r}")
    geo = _check_depthwise(x, w, dict(stride=stride, dilation=dilation, padding=padding))
    c = x.shape[3]
    b = np.zeros(c, dt) if bias is None else np.asarray(bias)
    if b.dtype != dt or b.shape != (c,):
        raise TypeError(f"bias must be {dt} of shape ({c},)")
    tile = dwconv_tile("f32" if dt == F32 else "f16", geo.kh * geo.kw)
    xt, wt = _packed_taps(np.asarray(x), np.asarray(w), geo, tile)
    # xnn_init_{f32,f16}_minmax_scalar_params: the bounds in the kernel's type.
    lo, hi = np.float32(clamp_min).astype(dt), np.float32(clamp_max).astype(dt)
    if arch == "arm64":
        acc = _acc_arm(xt, wt, b, tile, fz)
        out = clamp(np.asarray(acc, dtype=dt), lo, hi, Clamp.FMAX_FMIN, fz=fz)
    elif dt == F32:
        out = clamp(_acc_x86_f32(xt, wt, b, tile, fz), lo, hi, Clamp.X86_BOUND_MAX_MIN, fz=fz)
    else:
        acc = clamp(_acc_x86_f16(xt, wt, b, tile), F32(lo), F32(hi), Clamp.X86_MAX_MIN)
        out = rn16(acc)
    return np.asarray(out, dtype=dt).reshape(geo.batch, geo.out_h, geo.out_w, c)


def dwconv_qs8(
    x: NDArray[np.int8],
    w: NDArray[np.int8],
    bias: NDArray[np.int32] | None,
    *,
    zx: int,
    s: NDArray[np.float32],
    zy: int,
    ymin: int = -128,
    ymax: int = 127,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> NDArray[np.int8]:
    """``xnn_qs8_qc8w_dwconv_minmax_fp32_ukernel_*``: exact int32 sum, fp32 requantization per channel.

    The spare taps' ``(x - zx) * 0`` add nothing and integer sums do not depend on order, so the real taps
    in any order give the kernel's sum.
    """
    if np.asarray(x).dtype != np.int8 or np.asarray(w).dtype != np.int8:
        raise TypeError("dwconv_qs8 takes int8 x and w")
    geo = _check_depthwise(x, w, dict(stride=stride, dilation=dilation, padding=padding))
    c = x.shape[3]
    taps = gather_taps(x, geo, np.int8(zx))[:, :, :, 0]  # [M, C, kh*kw]
    wt = w.reshape(c, -1)
    dwconv_tile("qs8", wt.shape[1])
    b = np.zeros(c, np.int64) if bias is None else np.asarray(bias).astype(np.int64)
    acc = b[None, :] + ((taps.astype(np.int64) - zx) * wt.astype(np.int64)[None]).sum(axis=2)
    out = qs8_requantize_fp32(acc, np.asarray(s, np.float32).reshape(c), zy, ymin, ymax)
    return out.reshape(geo.batch, geo.out_h, geo.out_w, c)
