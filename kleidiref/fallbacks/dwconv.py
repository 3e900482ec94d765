"""Generic XNNPACK depthwise convolution (``dwconv`` micro-kernels): 1 input, 1 output channel per group.

XNNPACK picks the unipass kernel with the smallest primary tile ``T >= kh*kw`` (``find_dwconv_ukernel``,
src/operators/convolution-nhwc.c); taps ``kh*kw .. T-1`` read the zero buffer with zero weights,
so they still execute. ARM64 kernels (src/configs/dwconv-config.c), per channel c::

    f32  3p8c / 4p8c / 9p8c__neonfma:   acc = bias[c]; acc = fma32(x_t, w_t, acc)  t = 0 .. T-1
    f32  25p8c__neonfma_acc2:            A = fma32(x0, w0, bias[c]); B = RN32(x1 * w1)   (FMUL)
                                         t even >= 2: A = fma32(x_t, w_t, A); t odd >= 3: B = fma32(...)
                                         acc = A + B
    f16  3p16c / 4p16c / 9p16c, 25p8c_acc2: the same in fp16 (FMLA/FMUL/FADD .8h)
    clamp: FMIN(FMAX(acc, min), max)
    qs8_qc8w 3p16c / 9p16c / 25p16c (fp32 requantization): acc = bias_q[c] + sum_t (x_t - zx) * w_t,
         then :func:`kleidiref.fallbacks.qs8_qc8w.qs8_requantize_fp32` (integer: tap order irrelevant)

Taps are (ky, kx) row-major (``xnn_indirection_init_conv2d``). FPCR.FZ/FZ16 as XNNPACK sets them.
(src/f32-dwconv/gen/f32-dwconv-25p8c-minmax-neonfma-acc2.c, f16-dwconv-25p8c-minmax-neonfp16arith-acc2.c)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fadd16, fadd32, fma16, fma32, fmul16, fmul32
from ._conv import gather_taps, grouped_geometry
from .qs8_qc8w import qs8_requantize_fp32

__all__ = ["DWCONV_TILES", "dwconv", "dwconv_qs8", "dwconv_tile"]

#: ARM64 primary tiles per family (dwconv-config.c).
DWCONV_TILES: dict[str, tuple[int, ...]] = {"f32": (3, 4, 9, 25), "f16": (3, 4, 9, 25), "qs8": (3, 9, 25)}


def dwconv_tile(family: str, taps: int) -> int:
    """Smallest primary tile >= ``taps``; ValueError if none (XNNPACK then runs the IGEMM instead)."""
    tiles = [t for t in DWCONV_TILES[family] if t >= taps]
    if not tiles:
        raise ValueError(f"no {family} dwconv kernel has a primary tile >= {taps} taps (XNNPACK uses IGEMM)")
    return min(tiles)


def _depthwise_taps(x: NDArray[Any], w: NDArray[Any], kwargs: dict[str, Any], pad: Any) -> tuple[Any, ...]:
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"x must be NHWC and w [C*mult, kh, kw, 1]; got {x.shape}, {w.shape}")
    c = x.shape[3]
    if w.shape[0] != c or w.shape[3] != 1:
        raise ValueError(
            f"a depthwise dwconv kernel needs w of shape [{c}, kh, kw, 1] (groups = channels), got {w.shape}"
        )
    geo = grouped_geometry(x.shape, w.shape, groups=c, **kwargs)
    taps = gather_taps(x, geo, pad)[:, :, :, 0]  # [M, C, T]
    wt = w.reshape(c, -1)  # [C, T]
    return geo, taps, wt


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
) -> NDArray[Any]:
    """Float depthwise conv (f32 or f16 by ``x.dtype``): ``x`` [N,H,W,C], ``w`` [C,kh,kw,1], ``bias`` [C]."""
    dt = np.asarray(x).dtype
    if dt not in (np.float32, np.float16) or np.asarray(w).dtype != dt:
        raise TypeError("dwconv takes float32 or float16 x and w of the same dtype")
    fam = "f32" if dt == np.float32 else "f16"
    geo, taps, wt = _depthwise_taps(x, w, dict(stride=stride, dilation=dilation, padding=padding), dt.type(0))
    c = x.shape[3]
    b = np.zeros(c, dt) if bias is None else np.asarray(bias)
    if b.dtype != dt or b.shape != (c,):
        raise TypeError(f"bias must be {dt} of shape ({c},)")
    t_real = wt.shape[1]
    tile = dwconv_tile(fam, t_real)
    m = taps.shape[0]
    pad_n = tile - t_real
    xt = np.concatenate([taps, np.zeros((m, c, pad_n), dt)], axis=2)
    wtt = np.concatenate([wt, np.zeros((c, pad_n), dt)], axis=1)
    fma = fma32 if fam == "f32" else fma16
    fmul = fmul32 if fam == "f32" else fmul16
    fadd = fadd32 if fam == "f32" else fadd16
    if tile == 25:  # acc2
        big_a = fma(xt[:, :, 0], wtt[None, :, 0], b[None, :], fz=fz)
        big_b = fmul(xt[:, :, 1], wtt[None, :, 1], fz=fz)
        for t in range(2, tile):
            if t % 2 == 0:
                big_a = fma(xt[:, :, t], wtt[None, :, t], big_a, fz=fz)
            else:
                big_b = fma(xt[:, :, t], wtt[None, :, t], big_b, fz=fz)
        acc = fadd(big_a, big_b, fz=fz)
    else:
        acc = np.broadcast_to(b[None, :], (m, c))
        for t in range(tile):
            acc = fma(xt[:, :, t], wtt[None, :, t], acc, fz=fz)
    lo = np.float32(clamp_min).astype(dt)
    hi = np.float32(clamp_max).astype(dt)
    out = clamp(np.asarray(acc, dtype=dt), lo, hi, Clamp.FMAX_FMIN, fz=fz)
    return out.reshape(geo.batch, geo.out_h, geo.out_w, c)


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
    """``xnn_qs8_qc8w_dwconv_minmax_fp32_ukernel_*``: exact int32 sum, fp32 requantization per channel."""
    if np.asarray(x).dtype != np.int8 or np.asarray(w).dtype != np.int8:
        raise TypeError("dwconv_qs8 takes int8 x and w")
    geo, taps, wt = _depthwise_taps(x, w, dict(stride=stride, dilation=dilation, padding=padding), np.int8(zx))
    c = x.shape[3]
    dwconv_tile("qs8", wt.shape[1])
    b = np.zeros(c, np.int64) if bias is None else np.asarray(bias).astype(np.int64)
    acc = b[None, :] + ((taps.astype(np.int64) - zx) * wt.astype(np.int64)[None]).sum(axis=2)
    out = qs8_requantize_fp32(acc, np.asarray(s, np.float32).reshape(c), zy, ymin, ymax)
    return out.reshape(geo.batch, geo.out_h, geo.out_w, c)
