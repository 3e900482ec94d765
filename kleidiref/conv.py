"""The one 2-D convolution geometry: output size, padding order, indirection buffer, im2col.

Every convolution in kleidiref (the KleidiAI IGEMM path in :mod:`kleidiref.variants.igemm`, the
generic XNNPACK kernels in :mod:`kleidiref.fallbacks`, the decisions of :mod:`kleidiref.dispatch`
and the ops) takes its geometry from here.

**Padding order.** Padding is always ``(top, right, bottom, left)``, XNNPACK's order
(``xnn_define_convolution_2d(..., input_padding_top, input_padding_right, input_padding_bottom,
input_padding_left, ...)``, and ``xnn_create_convolution2d_nhwc_*`` likewise). A plain 4-tuple is
read in that order; :class:`Padding` names the four sides, so ``Padding(top=1, right=0, bottom=1,
left=2)`` cannot be misread. Only ``top`` and ``left`` move the addresses; ``bottom`` and
``right`` only enter the output size.

**Output size** (``xnn_compute_convolution_output_dimension``, src/operator-utils.c)::

    hout = (top + H + bottom - ((KH - 1) * dh + 1)) // sh + 1          (likewise wout)

**Channels and groups.** Group g reads input channels ``g*gic .. (g+1)*gic - 1`` and writes
output channels ``g*goc ..`` (``gic = Cin / groups``, ``goc = Cout / groups``; OHWI filters
``[Cout, KH, KW, gic]``, groups major).

**Indirection buffer** (``xnn_indirection_init_conv2d``, src/indirection.c): per tile of ``mr``
output pixels and per tap (ky, kx) in row-major order, ``mr`` pointers to the input pixel each
output pixel reads, or to a padding buffer; rows past M repeat the last pixel. The IGEMM kernels
read the taps in that order and a tap's channels in increasing order, so the K index of input
channel i of tap c is ``c * kc + i``: :func:`im2col` is that matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._buffers import check_count, roundup

__all__ = [
    "NO_PADDING",
    "ConvGeometry",
    "Padding",
    "PaddingLike",
    "as_padding",
    "as_pair",
    "conv_channels",
    "conv_geometry",
    "conv_output_size",
    "im2col",
    "indirection_conv2d",
]


class Padding(NamedTuple):
    """Explicit convolution padding in XNNPACK's order: top, right, bottom, left (each >= 0)."""

    top: int
    right: int
    bottom: int
    left: int


#: A :class:`Padding`, or any 4 integers in the same order (top, right, bottom, left).
PaddingLike = Padding | Sequence[int] | NDArray[np.integer[Any]]

#: No padding.
NO_PADDING = Padding(0, 0, 0, 0)


def as_pair(name: str, value: object, minimum: int = 1) -> tuple[int, int]:
    """A (height, width) pair of integers >= ``minimum`` (stride, dilation), or an error."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (height, width) of integers, got {value!r}")
    a, b = value
    if type(a) is int and type(b) is int and a >= minimum and b >= minimum:
        return a, b  # the common case, without the per-element checks' cost
    a, b = (check_count(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(value))
    return a, b


def as_padding(value: object) -> Padding:
    """``value`` as a :class:`Padding`: 4 integers >= 0 in XNNPACK's order (top, right, bottom, left)."""
    if isinstance(value, Padding) and all(type(v) is int and v >= 0 for v in value):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise TypeError(f"padding must be 4 integers (top, right, bottom, left), got {value!r}")
    if all(type(v) is int and v >= 0 for v in value):
        return Padding(*value)
    return Padding(*(check_count(f"padding {side}", v) for side, v in zip(Padding._fields, value, strict=True)))


def conv_output_size(padded: int, kernel: int, dilation: int, stride: int) -> int:
    """Output pixels along one axis of a padded input of ``padded`` pixels: ``(padded - ((kernel -
    1) * dilation + 1)) // stride + 1``, which is < 1 when the dilated kernel does not fit.

    Note: XNNPACK's ``xnn_compute_convolution_output_dimension`` clamps the difference at 0
    (``doz``) and so reports 1 pixel there; its reshape refuses such a convolution anyway, and so
    does :func:`conv_geometry`.
    """
    return (padded - ((kernel - 1) * dilation + 1)) // stride + 1


@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """A 2-D convolution's spatial shape, as ``xnn_reshape_convolution2d_nhwc_*`` computes it.

    ``M = hout * wout`` output pixels, ``ks = KH * KW`` taps; padding in XNNPACK's order.
    Make one with :func:`conv_geometry` (which checks it).
    """

    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    top: int
    right: int
    bottom: int
    left: int
    hout: int
    wout: int

    @property
    def m(self) -> int:
        """Output pixels per image (the GEMM M)."""
        return self.hout * self.wout

    @property
    def ks(self) -> int:
        """Kernel taps (``k_chunk_count``)."""
        return self.kh * self.kw

    @property
    def stride(self) -> tuple[int, int]:
        return self.sh, self.sw

    @property
    def dilation(self) -> tuple[int, int]:
        return self.dh, self.dw

    @property
    def padding(self) -> Padding:
        return Padding(self.top, self.right, self.bottom, self.left)


def conv_geometry(
    h: int,
    w: int,
    kh: int,
    kw: int,
    *,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    padding: PaddingLike = NO_PADDING,
) -> ConvGeometry:
    """Output size of a convolution, with XNNPACK's create/reshape checks as ``ValueError``.

    ``stride``/``dilation`` are (height, width) >= 1 ("subsampling/dilation dimensions must be
    non-zero"); ``padding`` is (top, right, bottom, left) >= 0 (a :class:`Padding` or 4 integers
    in that order; ``uint32_t`` in XNNPACK); H, W >= 1 ("input dimensions must be non-zero"); the
    padded input must hold the dilated kernel ("the padded input ... is smaller than the effective
    kernel": XNNPACK refuses it rather than produce a phantom output pixel).
    """
    h, w = check_count("input height", h, minimum=1), check_count("input width", w, minimum=1)
    kh, kw = check_count("kernel height", kh, minimum=1), check_count("kernel width", kw, minimum=1)
    sh, sw = as_pair("stride", stride)
    dh, dw = as_pair("dilation", dilation)
    top, right, bottom, left = as_padding(padding)
    ph, pw = top + h + bottom, left + w + right
    hout, wout = conv_output_size(ph, kh, dh, sh), conv_output_size(pw, kw, dw, sw)
    if hout < 1 or wout < 1:
        eff_h, eff_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        raise ValueError(
            f"the padded input ({ph}x{pw}) is smaller than the effective (dilated) kernel "
            f"({eff_h}x{eff_w}): xnn_reshape_convolution2d_nhwc refuses it (xnn_status_invalid_parameter); "
            "the output would be empty"
        )
    return ConvGeometry(h, w, kh, kw, sh, sw, dh, dw, top, right, bottom, left, hout, wout)


def conv_channels(cin: int, cout: int, filter_cin: int, groups: int) -> tuple[int, int]:
    """XNNPACK's channel checks; returns (group_input_channels, group_output_channels).

    ``cin`` is the input's channel count, ``filter_cin`` the OHWI filter's last dimension.
    """
    if cin < 1 or cout < 1:
        raise ValueError(
            f"input channels ({cin}) and output channels ({cout}) must be non-zero "
            "(xnn_create_convolution2d_nhwc: number of channels must be non-zero)"
        )
    if cin % groups:
        raise ValueError(
            f"input channels ({cin}) must be divisible by groups ({groups}): each group reads "
            "group_input_channels = Cin / groups channels"
        )
    if cout % groups:
        raise ValueError(
            f"output channels ({cout}) must be divisible by groups ({groups}): each group writes "
            "group_output_channels = Cout / groups channels"
        )
    if filter_cin != cin // groups:
        raise ValueError(
            f"channel mismatch: the input has {cin} channels in {groups} group(s), so the OHWI filter "
            f"needs Cin / groups = {cin // groups} (group_input_channels), got {filter_cin}"
        )
    return cin // groups, cout // groups


def indirection_conv2d(geom: ConvGeometry, mr: int) -> NDArray[np.int32]:
    """``xnn_indirection_init_conv2d`` with ``output_tile_size = mr``, as pixel indices.

    Returns ``roundup(M, mr) * ks`` entries; entry ``t*ks*mr + (ky*KW + kx)*mr + i`` is for output
    row ``p = min(t*mr + i, M - 1)`` (rows past M repeat the last pixel) and tap (ky, kx)::

        iy = oy*sh + ky*dh - top,  ix = ox*sw + kx*dw - left     (oy, ox) = divmod(p, Wout)
        entry = iy*W + ix   if 0 <= iy < H and 0 <= ix < W,   else -1 (the padding buffer)

    In XNNPACK the entries are pointers ``input + (iy*W + ix) * input_pixel_stride`` and the
    padding entry is ``zero_buffer`` (size_t arithmetic: a negative iy wraps and fails ``< H``).
    """
    mr = check_count("mr", mr, minimum=1)
    m, ks = geom.m, geom.ks
    mp = roundup(m, mr)
    p = np.minimum(np.arange(mp, dtype=np.int64), m - 1)
    oy, ox = p // geom.wout, p % geom.wout
    iy = oy[:, None] * geom.sh + np.arange(geom.kh, dtype=np.int64)[None, :] * geom.dh - geom.top  # [mp, KH]
    ix = ox[:, None] * geom.sw + np.arange(geom.kw, dtype=np.int64)[None, :] * geom.dw - geom.left  # [mp, KW]
    ok = ((iy >= 0) & (iy < geom.h))[:, :, None] & ((ix >= 0) & (ix < geom.w))[:, None, :]
    idx = np.where(ok, iy[:, :, None] * geom.w + ix[:, None, :], -1)  # [mp, KH, KW]
    tiles = idx.reshape(mp // mr, mr, ks).transpose(0, 2, 1)  # [m_tile][ks][mr]
    return np.ascontiguousarray(tiles).reshape(-1).astype(np.int32)


def im2col(
    x: NDArray[Any], geom: ConvGeometry, pad_value: float | NDArray[Any] = 0, *, kc_pad_to: int = 1
) -> NDArray[Any]:
    """The im2col matrix ``[N*M, ks*Kc]`` of an NHWC input: ``A[m][c*Kc + i] = x[pixel][i]``.

    Padding taps read ``pad_value`` (the padding buffer: a scalar, or one value per image
    ``[N]``, as for per-image dynamically quantized inputs); channels ``kc <= i < Kc =
    roundup(kc, kc_pad_to)`` are 0 (the imatmul packers' per-chunk padding). With ``kc_pad_to =
    1`` this is the plain im2col GEMM operand; with the kernel's kr it is exactly the K order the
    IGEMM kernel sees. Built from :func:`indirection_conv2d` with ``mr = 1``; XNNPACK never
    materialises it.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError("im2col needs an NHWC numpy array [N, H, W, C]")
    n, h, w, kc = x.shape
    if (h, w) != (geom.h, geom.w):
        raise ValueError(f"input is {h}x{w}, the geometry says {geom.h}x{geom.w}")
    ind = indirection_conv2d(geom, 1).reshape(geom.m, geom.ks)  # mr = 1: one row per output pixel
    kcp = roundup(kc, check_count("kc_pad_to", kc_pad_to, minimum=1))
    flat = np.empty((n, h * w + 1, kcp), dtype=x.dtype)
    flat[:, : h * w, :kc] = x.reshape(n, h * w, kc)
    if np.ndim(pad_value) == 1:
        flat[:, h * w, :kc] = np.asarray(pad_value, dtype=x.dtype).reshape(n, 1)
    else:
        flat[:, h * w, :kc] = pad_value
    flat[:, :, kc:] = 0
    rows = np.where(ind < 0, h * w, ind)
    return flat[:, rows, :].reshape(n * geom.m, geom.ks * kcp)
