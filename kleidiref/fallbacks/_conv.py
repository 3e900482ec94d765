"""XNNPACK's convolution indirection, as data: per output pixel, the input row of every tap.

``xnn_indirection_init_conv2d`` (src/indirection.c ~L53-80) lists, for each output pixel, one
pointer per tap (ky, kx) in row-major order; a tap that falls into the padding points to a
zero buffer (or, for dynamically quantized inputs, a buffer filled with the image's zero point;
for static qs8, the input zero point). The IGEMM kernels read taps in that order and the
channels of a tap in increasing order, so ``k' = tap * group_input_channels + c``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ConvGeometry", "conv_geometry", "gather_taps", "grouped_conv"]


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one NHWC convolution."""

    batch: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    kh: int
    kw: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, right, bottom, left
    groups: int
    gic: int
    goc: int


def conv_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    *,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int, int, int],
    groups: int,
) -> ConvGeometry:
    """Validate shapes (input NHWC, filter [O, kh, kw, I/groups]) and derive the output size."""
    if len(x_shape) != 4:
        raise ValueError(f"convolution input must be NHWC (4-D), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"convolution filter must be [O, kh, kw, I/groups] (4-D), got shape {w_shape}")
    if groups < 1 or x_shape[3] % groups or w_shape[0] % groups:
        raise ValueError(f"groups = {groups} must divide input channels {x_shape[3]} and output channels {w_shape[0]}")
    gic, goc = x_shape[3] // groups, w_shape[0] // groups
    if w_shape[3] != gic:
        raise ValueError(f"filter's last dim must be I/groups = {gic}, got {w_shape[3]}")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError("stride and dilation must be >= 1 and padding >= 0")
    kh, kw = w_shape[1], w_shape[2]
    pt, pr, pb, pl = padding
    out_h = (x_shape[1] + pt + pb - ((kh - 1) * dilation[0] + 1)) // stride[0] + 1
    out_w = (x_shape[2] + pl + pr - ((kw - 1) * dilation[1] + 1)) // stride[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError("the padded input is smaller than the dilated kernel: empty output")
    return ConvGeometry(
        x_shape[0], x_shape[1], x_shape[2], out_h, out_w, kh, kw, stride, dilation, padding, groups, gic, goc
    )


def gather_taps(x: NDArray[Any], geo: ConvGeometry, pad_value: NDArray[Any] | Any) -> NDArray[Any]:
    """``[batch*out_h*out_w, groups, kh*kw, gic]``: the values every IGEMM row reads, tap-major.

    ``pad_value`` is a scalar or a per-image array ``[batch]`` (dynamic quantization zero points).
    """
    pt, _, _, pl = geo.padding
    pad = np.asarray(pad_value, dtype=x.dtype)
    out = np.empty((geo.batch, geo.out_h, geo.out_w, geo.kh * geo.kw, geo.groups * geo.gic), dtype=x.dtype)
    per_image = pad.reshape(-1)[:, None, None, None] if pad.ndim == 1 else pad
    oy = np.arange(geo.out_h) * geo.stride[0] - pt
    ox = np.arange(geo.out_w) * geo.stride[1] - pl
    for ky in range(geo.kh):
        iy = oy + ky * geo.dilation[0]
        vy = (iy >= 0) & (iy < geo.in_h)
        for kx in range(geo.kw):
            ix = ox + kx * geo.dilation[1]
            vx = (ix >= 0) & (ix < geo.in_w)
            vals = x[:, np.clip(iy, 0, geo.in_h - 1)][:, :, np.clip(ix, 0, geo.in_w - 1)]
            valid = (vy[:, None] & vx[None, :])[None, :, :, None]
            out[:, :, :, ky * geo.kw + kx] = np.where(valid, vals, per_image)
    m = geo.batch * geo.out_h * geo.out_w
    res: NDArray[Any] = out.reshape(m, geo.kh * geo.kw, geo.groups, geo.gic).transpose(0, 2, 1, 3)
    return res


def grouped_conv(
    x: NDArray[Any],
    w: NDArray[Any],
    geo: ConvGeometry,
    pad_value: NDArray[Any] | Any,
    out_dtype: Any,
    gemm: Callable[[NDArray[Any], NDArray[Any], slice], NDArray[Any]],
) -> NDArray[Any]:
    """An IGEMM convolution as one GEMM per group: ``[N, Ho, Wo, O]``.

    ``gemm(rows, wg, cols)`` gets the group's im2col rows [M, kh*kw*gic] (tap-major, see
    :func:`gather_taps`), its filters [goc, kh*kw*gic] and the output channels ``cols`` it fills
    (to slice per-channel bias, scales); it returns [M, goc].
    """
    taps = gather_taps(x, geo, pad_value)
    m, cout = taps.shape[0], w.shape[0]
    out = np.empty((m, cout), dtype=out_dtype)
    for g in range(geo.groups):
        cols = slice(g * geo.goc, (g + 1) * geo.goc)
        out[:, cols] = gemm(taps[:, g].reshape(m, -1), w[cols].reshape(geo.goc, -1), cols)
    return out.reshape(geo.batch, geo.out_h, geo.out_w, cout)
