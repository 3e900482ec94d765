"""Deconvolution adapters: a decided ``deconvolution_2d`` node as the IGEMM calls XNNPACK makes.

XNNPACK runs a deconvolution through its IGEMM micro-kernels, either once per subkernel
(``subconv2d``: ``xnn_compute_subconv2d`` on ``xnn_indirection_init_subconv2d``'s buffer) or once
over all taps (``igemm``: ``xnn_indirection_init_deconv2d``, taps between input pixels read the zero
buffer). :func:`kleidiref.conv.deconv_pieces` describes each as an ordinary stride-1 convolution of a
gathered input; every piece then runs through the convolution adapter of the same config
(:mod:`kleidiref.ops.conv_runners`), with the decision's IGEMM kernel and mr. The zero buffer holds
+0.0 (floats), the input zero point (qs8, qu8, pqs8: ``input_padding_byte``) or the image's zero
point (qd8: ``xnn_compute_dq_zero_buffer_subconv`` / ``_igemm``), so the gathered input holds the
same values there. Which adapter runs for which (microkernel, config) is
:data:`kleidiref.ops.registry.DECONV_RUNNERS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import fallbacks as F
from ..conv import DeconvGeometry, deconv_pieces, gather_piece
from ..dispatch import ConvParams
from ..quant.qd8 import quantize_qd8
from . import conv_runners as C
from .gemm_runners import Result
from .operands import Call, opt_f32, to_f32

__all__ = [
    "DeconvCall",
    "run_deconv_f16",
    "run_deconv_f32",
    "run_deconv_pqs8",
    "run_deconv_qd8_f32_qc8w",
    "run_deconv_qs8_qc8w",
    "run_deconv_qu8",
]


@dataclasses.dataclass(frozen=True)
class DeconvCall(Call):
    """A deconvolution's kernel call: ``x`` NHWC, ``w`` [O, kh, kw, I/groups]; ``conv`` holds the kernel,
    the upsampling (as ``stride``), dilation, padding and groups, ``geom`` the checked geometry."""

    geom: DeconvGeometry | None = None


def _by_pieces(c: Call, x: NDArray[Any], pad: Any, piece_adapter: Callable[[Call], Result]) -> Result:
    """Run every piece of the deconvolution through ``piece_adapter`` and assemble the output."""
    if not isinstance(c, DeconvCall) or c.geom is None or c.conv is None:
        raise AssertionError("a deconvolution adapter was called without the deconvolution geometry")
    geom, sub = c.geom, c.decision.microkernel == "subconv2d"
    d = dataclasses.replace(c.decision, microkernel="igemm")  # each piece is an IGEMM ukernel call
    pieces = deconv_pieces(geom, subconv=sub)
    out: NDArray[Any] | None = None
    how = ""
    for p in pieces:
        w = np.ascontiguousarray(c.w[:, list(p.taps_y)][:, :, list(p.taps_x)])
        conv = ConvParams(kernel=(len(p.taps_y), len(p.taps_x)), dilation=p.dilation, groups=c.conv.groups)
        xp = gather_piece(x, p, pad)
        pc = Call(d, c.target, xp, w, c.bias, c.x_quant, c.w_quant, c.y_quant, c.lo, c.hi, conv)
        r, how = piece_adapter(pc)
        if out is None:
            out = np.empty((x.shape[0], geom.hout, geom.wout, c.w.shape[0]), dtype=r.dtype)
        out[:, p.out_rows[:, None], p.out_cols[None, :]] = r
    assert out is not None  # a checked geometry has at least one output pixel, so one piece
    where = (
        f"per subconvolution ({len(pieces)} subkernels, xnn_compute_subconv2d)"
        if sub
        else "on the deconvolution indirection (xnn_indirection_init_deconv2d)"
    )
    return out, f"{how} {where}"


def run_deconv_f32(c: Call) -> Result:
    return _by_pieces(c, c.x, c.x.dtype.type(0), C.run_f32_igemm)


def run_deconv_f16(c: Call) -> Result:
    return _by_pieces(c, c.x, c.x.dtype.type(0), C.run_f16_igemm)


def _zx(c: Call) -> int:
    if c.x_quant is None:
        raise ValueError("quantized deconvolutions need input_quant=QuantParams(scale, zero_point)")
    return c.x_quant.zero_point


def run_deconv_qs8_qc8w(c: Call) -> Result:
    return _by_pieces(c, c.x, _zx(c), C.run_qs8_qc8w_igemm)


def run_deconv_qu8(c: Call) -> Result:
    return _by_pieces(c, c.x, _zx(c), C.run_qu8_conv)


def run_deconv_pqs8(c: Call) -> Result:
    return _by_pieces(c, c.x, _zx(c), C.run_kai_igemm_pqs8)


def run_deconv_qd8_f32_qc8w(c: Call) -> Result:
    """The float input quantized per image (ExecuTorch's ``num_nonbatch_dims = 3``) before the split: the
    pieces read its codes, and the image's zero point where XNNPACK reads the per-image zero buffer."""
    x = c.x
    q, a, zp = quantize_qd8(to_f32(x).reshape(x.shape[0], -1), fz=c.fz)
    bias, ws = opt_f32(c.bias), c.w_scale()

    def piece(pc: Call) -> Result:
        out = F.qd8_f32_qc8w_igemm(pc.x, a, zp, pc.w, ws, bias, **pc.clamp(), **pc.geometry())
        return out, "fallback:qd8_f32_qc8w_igemm (qd8 per image)"

    return _by_pieces(c, q.reshape(x.shape), zp.astype(np.int8), piece)
