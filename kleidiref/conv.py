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

**Deconvolution** (``xnn_create_deconvolution2d_nhwc_*``, src/operators/deconvolution-nhwc.c): the
output size is ``doz(s*(H-1) + adjustment + (K-1)*d + 1, pad_before + pad_after)``
(:func:`deconv_output_size`); output pixel oy reads input row ``(oy + top - ky*dh) / sh`` where that
division is exact and in range, else the zero buffer. XNNPACK runs it one of two ways, and
:func:`deconv_pieces` describes each as ordinary convolutions of gathered inputs (:class:`DeconvPiece`):

* ``subconv2d`` (strided, undilated, stride <= kernel): one IGEMM per subkernel (offset_y, offset_x),
  ``xnn_indirection_init_subconv2d``: the output pixels ``oy = y0 + sh*j`` with ``(oy + top) % sh ==
  offset_y`` read only the taps ``ky = offset_y, offset_y + sh, ...`` (ascending; likewise x), in the
  order ``xnn_pack_*_deconv_goki_w`` packs them; the other taps are never multiplied.
* ``igemm``: ``xnn_indirection_init_deconv2d``: every output pixel reads all KH*KW taps (row-major),
  a tap that falls between input pixels or outside reads the zero buffer.

Either way, output ``j`` and tap ``t`` read input ``A - (j' + t)`` for a constant A, with
``j' = n - 1 - j`` counted from the end: a convolution (stride 1) of the input read backwards, whose
output comes out reversed. The kernels compute each output pixel independently, so that
convolution gives the same bits as XNNPACK's tiles; its padding and the positions between input
pixels are filled with the zero buffer's value (+0.0, or the input zero point).
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
    "DeconvGeometry",
    "DeconvPiece",
    "Padding",
    "PaddingLike",
    "as_padding",
    "as_pair",
    "conv_channels",
    "conv_geometry",
    "conv_output_size",
    "deconv_geometry",
    "deconv_output_size",
    "deconv_pieces",
    "gather_piece",
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


# ---- deconvolution ------------------------------------------------------------------------------


def deconv_output_size(size: int, kernel: int, stride: int, dilation: int, adjustment: int, pads: int) -> int:
    """A deconvolution output size, ``xnn_compute_deconvolution_output_dimension`` (src/operator-utils.c):
    ``doz(stride * (size - 1) + adjustment + (kernel - 1) * dilation + 1, pads)`` (0 when the padding
    eats the whole output)."""
    return max(stride * (size - 1) + adjustment + (kernel - 1) * dilation + 1 - pads, 0)


@dataclasses.dataclass(frozen=True)
class DeconvGeometry:
    """A 2-D deconvolution's spatial shape, as ``xnn_reshape_deconvolution2d_nhwc_*`` computes it.

    ``sh``/``sw`` are the upsampling (XNNPACK's deconvolution stride); padding in XNNPACK's order;
    ``adj_h``/``adj_w`` the adjustment (extra output rows/columns, each < its stride). Make one with
    :func:`deconv_geometry` (which checks it).
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
    adj_h: int
    adj_w: int
    hout: int
    wout: int

    @property
    def padding(self) -> Padding:
        return Padding(self.top, self.right, self.bottom, self.left)

    @property
    def upsampling(self) -> tuple[int, int]:
        return self.sh, self.sw

    @property
    def dilation(self) -> tuple[int, int]:
        return self.dh, self.dw

    @property
    def adjustment(self) -> tuple[int, int]:
        return self.adj_h, self.adj_w

    @property
    def subconv_eligible(self) -> bool:
        """The geometric half of ``is_subconv2d`` (deconvolution-nhwc.c): strided, undilated, stride <= kernel.

        (XNNPACK also needs no ``XNN_FLAG_INLINE_LHS_PACKING``: the dispatcher's part.)"""
        return max(self.sh, self.sw) > 1 and max(self.dh, self.dw) == 1 and self.sh <= self.kh and self.sw <= self.kw


def deconv_geometry(
    h: int,
    w: int,
    kh: int,
    kw: int,
    *,
    upsampling: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    padding: PaddingLike = NO_PADDING,
    adjustment: Sequence[int] = (0, 0),
) -> DeconvGeometry:
    """Output size of a deconvolution, with XNNPACK's define/create/reshape checks as ``ValueError``.

    ``upsampling``/``dilation`` >= 1 ("upsampling/dilation dimensions must be non-zero",
    xnn_define_deconvolution_2d); H, W >= 1 ("input dimensions must be non-zero"); ``adjustment``
    (height, width) >= 0 and smaller than the upsampling ("height adjustment must be smaller than
    height stride", xnn_reshape_deconvolution2d_nhwc). Note: where the padding leaves no output
    (XNNPACK's ``doz`` gives 0 rows and the operator writes nothing), kleidiref refuses.
    """
    h, w = check_count("input height", h, minimum=1), check_count("input width", w, minimum=1)
    kh, kw = check_count("kernel height", kh, minimum=1), check_count("kernel width", kw, minimum=1)
    sh, sw = as_pair("upsampling", upsampling)
    dh, dw = as_pair("dilation", dilation)
    ah, aw = as_pair("adjustment", adjustment, minimum=0)
    if ah >= sh or aw >= sw:
        raise ValueError(
            f"adjustment {(ah, aw)} must be smaller than the upsampling {(sh, sw)} in each dimension "
            "(xnn_reshape_deconvolution2d_nhwc: height/width adjustment must be smaller than height/width stride)"
        )
    top, right, bottom, left = as_padding(padding)
    hout = deconv_output_size(h, kh, sh, dh, ah, top + bottom)
    wout = deconv_output_size(w, kw, sw, dw, aw, left + right)
    if hout < 1 or wout < 1:
        raise ValueError(
            f"the padding ({top}, {right}, {bottom}, {left}) leaves no output ({hout}x{wout}): "
            "xnn_compute_deconvolution_output_dimension gives doz(...) = 0; kleidiref refuses an empty output"
        )
    return DeconvGeometry(h, w, kh, kw, sh, sw, dh, dw, top, right, bottom, left, ah, aw, hout, wout)


@dataclasses.dataclass(frozen=True)
class DeconvPiece:
    """One convolution of a deconvolution (see the module docstring), on an input :func:`gather_piece` makes.

    The convolution has stride 1, no padding, dilation ``dilation`` and the filter taps
    ``taps_y`` x ``taps_x`` (kernel rows/columns, in the order the IGEMM reads them). Its input row
    ``q`` is the deconvolution input's row ``rows[q]`` (-1: the zero buffer), likewise ``cols``;
    its output row ``j`` is the deconvolution output's row ``out_rows[j]``, likewise ``out_cols``.
    """

    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    taps_y: tuple[int, ...]
    taps_x: tuple[int, ...]
    dilation: tuple[int, int]
    out_rows: NDArray[np.int64]
    out_cols: NDArray[np.int64]


def _read_back(a: int, step: int, n: int, size: int) -> NDArray[np.int64]:
    """Input index of positions q < n that read ``(a - q) / step`` (exact and in [0, size)), else -1."""
    y = a - np.arange(n, dtype=np.int64)
    ok = (y >= 0) & (y % step == 0) & (y // step < size)
    return np.where(ok, y // step, -1)


def _subconv_axis(
    size: int, out: int, kernel: int, stride: int, pad: int, offset: int
) -> tuple[tuple[int, ...], NDArray[np.int64], NDArray[np.int64]]:
    """One axis of subkernel ``offset`` (xnn_indirection_init_subconv2d): (taps, input map, output positions)."""
    start = (offset - pad % stride) % stride  # subtract_modulo(offset, pad % stride, stride)
    outs = np.arange(start, out, stride, dtype=np.int64)
    taps = tuple(range(offset, kernel, stride))
    # output start + stride*j, tap offset + stride*t reads input base + j - t (base >= 0, exact)
    base = (start + pad - offset) // stride
    n = len(outs)
    return taps, _read_back(base + n - 1, 1, n + len(taps) - 1, size), outs[::-1]


def deconv_pieces(geom: DeconvGeometry, *, subconv: bool) -> tuple[DeconvPiece, ...]:
    """The convolutions a deconvolution runs as: one per subkernel (``subconv``, in XNNPACK's
    offset_y-major order; an empty one, with no output pixel, is left out) or one over all taps."""
    if not subconv:
        ny, nx = geom.hout + (geom.kh - 1) * geom.dh, geom.wout + (geom.kw - 1) * geom.dw
        return (
            DeconvPiece(
                rows=_read_back(geom.hout - 1 + geom.top, geom.sh, ny, geom.h),
                cols=_read_back(geom.wout - 1 + geom.left, geom.sw, nx, geom.w),
                taps_y=tuple(range(geom.kh)),
                taps_x=tuple(range(geom.kw)),
                dilation=geom.dilation,
                out_rows=np.arange(geom.hout, dtype=np.int64)[::-1],
                out_cols=np.arange(geom.wout, dtype=np.int64)[::-1],
            ),
        )
    if not geom.subconv_eligible:
        raise ValueError("subconv2d needs a strided, undilated deconvolution with stride <= kernel (is_subconv2d)")
    pieces = []
    for oy in range(geom.sh):
        ty, rows, out_rows = _subconv_axis(geom.h, geom.hout, geom.kh, geom.sh, geom.top, oy)
        for ox in range(geom.sw):
            tx, cols, out_cols = _subconv_axis(geom.w, geom.wout, geom.kw, geom.sw, geom.left, ox)
            if len(out_rows) and len(out_cols):
                pieces.append(DeconvPiece(rows, cols, ty, tx, (1, 1), out_rows, out_cols))
    return tuple(pieces)


def gather_piece(x: NDArray[Any], piece: DeconvPiece, pad_value: float | NDArray[Any] = 0) -> NDArray[Any]:
    """The NHWC input of a :class:`DeconvPiece`'s convolution: ``x``'s pixels, the zero buffer's
    ``pad_value`` (a scalar, or one value per image ``[N]``) where the piece reads no pixel."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError("gather_piece needs an NHWC numpy array [N, H, W, C]")
    n, h, w, c = x.shape
    ext = np.empty((n, h + 1, w + 1, c), dtype=x.dtype)
    ext[:, :h, :w] = x
    pad = np.asarray(pad_value, dtype=x.dtype)
    fill = pad.reshape(n, 1, 1) if pad.ndim == 1 else pad
    ext[:, h, :, :] = fill
    ext[:, :, w, :] = fill
    rows = np.where(piece.rows < 0, h, piece.rows)
    cols = np.where(piece.cols < 0, w, piece.cols)
    return np.ascontiguousarray(ext[:, rows][:, :, cols])
