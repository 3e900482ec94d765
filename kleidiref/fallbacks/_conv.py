"""The generic XNNPACK IGEMM convolutions as one GEMM per group on the im2col matrix.

The geometry (output size, padding in XNNPACK's order top, right, bottom, left, channel and
group checks) and the im2col matrix are :mod:`kleidiref.conv`'s. A tap that falls into the
padding reads a zero buffer (or, for dynamically quantized inputs, a buffer filled with the
image's zero point; for static qs8/qu8, the input zero point). The IGEMM kernels read taps in
``xnn_indirection_init_conv2d``'s order and the channels of a tap in increasing order, so
``k' = tap * group_input_channels + c``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..conv import ConvGeometry, PaddingLike, conv_channels, conv_geometry, im2col

__all__ = ["GroupedConv", "gather_taps", "grouped_conv", "grouped_geometry"]


@dataclass(frozen=True)
class GroupedConv:
    """One NHWC convolution of a batch: its :class:`~kleidiref.conv.ConvGeometry` and channels."""

    geom: ConvGeometry
    batch: int
    groups: int
    gic: int
    goc: int

    @property
    def out_h(self) -> int:
        return self.geom.hout

    @property
    def out_w(self) -> int:
        return self.geom.wout

    @property
    def kh(self) -> int:
        return self.geom.kh

    @property
    def kw(self) -> int:
        return self.geom.kw


def grouped_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    *,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: PaddingLike,
    groups: int,
) -> GroupedConv:
    """Validate shapes (input NHWC, filter [O, kh, kw, I/groups]) and derive the output size."""
    if len(x_shape) != 4:
        raise ValueError(f"convolution input must be NHWC (4-D), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ValueError(f"convolution filter must be [O, kh, kw, I/groups] (4-D), got shape {w_shape}")
    if groups < 1:
        raise ValueError(f"groups = {groups} must be >= 1")
    gic, goc = conv_channels(x_shape[3], w_shape[0], w_shape[3], groups)
    geom = conv_geometry(
        x_shape[1], x_shape[2], w_shape[1], w_shape[2], stride=stride, dilation=dilation, padding=padding
    )
    return GroupedConv(geom, x_shape[0], groups, gic, goc)


def gather_taps(x: NDArray[Any], geo: GroupedConv, pad_value: NDArray[Any] | Any) -> NDArray[Any]:
    """``[batch*out_h*out_w, groups, kh*kw, gic]``: the values every IGEMM row reads, tap-major.

    ``pad_value`` is a scalar or a per-image array ``[batch]`` (dynamic quantization zero points).
    """
    a = im2col(x, geo.geom, pad_value)  # [M, ks * groups * gic]
    res: NDArray[Any] = a.reshape(a.shape[0], geo.geom.ks, geo.groups, geo.gic).transpose(0, 2, 1, 3)
    return res


def grouped_conv(
    x: NDArray[Any],
    w: NDArray[Any],
    geo: GroupedConv,
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
