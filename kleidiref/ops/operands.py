"""The operands of an op: datatypes inferred from numpy arrays, quantization parameters, float I/O.

Everything here is about what the caller passed and what XNNPACK derives from it at operator
creation (requantization scales, quantized clamp bounds, fp32 static weights rounded to fp16);
nothing here picks or runs a kernel (:mod:`kleidiref.ops.registry` does).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_dtypes
import numpy as np
from numpy.typing import NDArray

from .. import fallbacks as F
from ..dispatch import ConvParams, Decision, TensorSpec
from ..numerics import bf16_to_f32, f32_to_bf16_rne, rn16
from ..quant.qai8 import quantize_qai8
from ..targets import Target
from ..validate import check_alloc

__all__ = [
    "BF16",
    "F16",
    "F32",
    "Call",
    "Qs8Requant",
    "QuantParams",
    "act_dtype",
    "bias_spec",
    "check_array",
    "check_quant",
    "f16_of",
    "filter_dtype",
    "opt_f16",
    "opt_f32",
    "out_dtype",
    "qs8_requant",
    "qu8_requant",
    "quantize_bound_s8",
    "quantize_bound_u8",
    "scale_tuple",
    "to_f32",
    "to_out_dtype",
]

F32, F16 = np.float32, np.float16
BF16 = np.dtype(ml_dtypes.bfloat16)


@dataclasses.dataclass(frozen=True)
class QuantParams:
    """Quantization of one tensor.

    ``scale``: a float (per tensor) or a float32 array (per output channel); for a ``qbint4``
    filter, bf16 bit patterns (uint16) of shape [N, K / block_size]. ``zero_point``: the tensor's
    zero point (activations), or the serialized kernel zero point of a 4-bit filter (8 or 0).
    ``bits``: 4 marks an int8 filter array as 4-bit (``qcint4`` per channel; ``qbint4`` when
    ``block_size`` is set).
    """

    scale: Any
    zero_point: int = 0
    block_size: int | None = None
    # Note: 4-bit filters are passed as int8 arrays of the logical signed values in [-8, 7]
    # (nibble minus the kernel zero point), as for qbint4; ``bits = 4`` says so because an int8
    # array alone cannot tell qcint4 from qcint8. The nibble byte layout never enters.
    bits: int = 8

    def __post_init__(self) -> None:
        s = np.asarray(self.scale) if isinstance(self.scale, (int, float, np.number, np.ndarray)) else None
        if isinstance(self.scale, (bool, np.bool_)) or s is None or s.dtype.kind not in "fiu":
            raise TypeError(f"QuantParams.scale must be a number or a numeric array, got {type(self.scale).__name__}")
        for name in ("zero_point", "bits"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"QuantParams.{name} must be an int, got {type(v).__name__}")
        bs = self.block_size
        if bs is not None and (isinstance(bs, (bool, np.bool_)) or not isinstance(bs, (int, np.integer))):
            raise TypeError(f"QuantParams.block_size must be an int or None, got {type(bs).__name__}")
        if self.bits not in (4, 8):
            raise ValueError(f"QuantParams.bits must be 4 or 8, got {self.bits}")


def check_quant(name: str, q: object) -> QuantParams | None:
    """A quantization argument: None or a :class:`QuantParams`."""
    if q is not None and not isinstance(q, QuantParams):
        raise TypeError(f"{name} must be a QuantParams or None, got {type(q).__name__}")
    return q


@dataclasses.dataclass(frozen=True)
class Call:
    """One kernel call: the decision, the target and the operands as the op hands them over.

    ``x`` / ``w`` are [M, K] / [N, K] for a GEMM (FC, rewritten 1x1 conv, one BMM batch), NHWC /
    [O, kh, kw, C/groups] for a convolution (``conv`` set). ``lo`` / ``hi``: the node's float clamp.
    """

    decision: Decision
    target: Target
    x: NDArray[Any]
    w: NDArray[Any]
    bias: NDArray[Any] | None
    x_quant: QuantParams | None
    w_quant: QuantParams | None
    y_quant: QuantParams | None
    lo: float
    hi: float
    conv: ConvParams | None = None

    @property
    def fz(self) -> bool:
        return self.target.flush_to_zero

    def clamp(self) -> dict[str, Any]:
        """The float clamp and FPCR.FZ keywords of the generic float kernels."""
        return dict(clamp_min=self.lo, clamp_max=self.hi, fz=self.target.flush_to_zero)

    def geometry(self, *, groups: bool = True) -> dict[str, Any]:
        """``stride``, ``dilation``, ``padding`` (top, right, bottom, left) and ``groups`` keywords."""
        c = self.conv
        if c is None:
            raise AssertionError("a convolution kernel was called without convolution parameters")
        geo: dict[str, Any] = dict(stride=c.stride, dilation=c.dilation, padding=c.padding)
        if groups:
            geo["groups"] = c.groups
        return geo

    def w_scale(self) -> NDArray[Any]:
        """The filter scale as the kernels read it: bf16 bits (uint16) for qbint4, else float32."""
        wq = self.w_quant
        if wq is None:
            raise ValueError("a quantized filter needs filter_quant=QuantParams(scale, ...)")
        return np.asarray(wq.scale, np.uint16 if wq.block_size is not None else F32)

    def block_size(self) -> int:
        wq = self.w_quant
        if wq is None or wq.block_size is None:
            raise ValueError("a qbint4 filter needs filter_quant=QuantParams(scale, zero_point, block_size)")
        return wq.block_size


def _dtype_of(x: NDArray[Any] | np.dtype[Any]) -> np.dtype[Any]:
    return x if isinstance(x, np.dtype) else x.dtype


def act_dtype(x: NDArray[Any] | np.dtype[Any], quant: QuantParams | None, dynamic: bool) -> str:
    """The XNNPACK datatype of an activation array or dtype (``qdint8`` when ``dynamic``)."""
    dt = _dtype_of(x)
    if dt in (F32, F16):
        return "qdint8" if dynamic else ("fp32" if dt == F32 else "fp16")
    if dt == BF16:
        if dynamic:
            raise ValueError("dynamic quantization takes float32 or float16 activations")
        return "bf16"
    if dt in (np.int8, np.uint8):
        kind = "qint8" if dt == np.int8 else "quint8"
        if quant is None:
            raise ValueError(f"{dt} activations need input_quant=QuantParams(scale, zero_point) ({kind})")
        return kind
    raise TypeError(f"activations must be float32, float16, bfloat16, int8 or uint8, got {dt}")


def _int8_filter_dtype(quant: QuantParams | None) -> str:
    if quant is None:
        raise ValueError("int8 filters need filter_quant=QuantParams(scale, ...)")
    if quant.bits not in (4, 8):
        raise ValueError(f"filter_quant.bits must be 8 or 4, got {quant.bits}")
    if quant.block_size is not None:
        return "qbint4"
    if quant.bits == 4:
        if np.ndim(quant.scale) != 1:
            raise ValueError(
                "a 4-bit per-channel (qcint4) filter needs a float32 scale array [N] "
                "(xnn_define_channelwise_quantized_tensor_value_v2); set block_size for qbint4"
            )
        return "qcint4"
    return "qint8" if np.ndim(quant.scale) == 0 else "qcint8"


def filter_dtype(w: NDArray[Any], quant: QuantParams | None) -> str:
    """The XNNPACK datatype of a filter (or BMM second input) array."""
    floats = {np.dtype(F32): "fp32", np.dtype(F16): "fp16", BF16: "bf16"}
    if w.dtype in floats:
        return floats[w.dtype]
    if w.dtype == np.int8:
        return _int8_filter_dtype(quant)
    if w.dtype == np.uint8:
        # Note: uint8 filters are quint8 (per-tensor scale and zero point), the only uint8 kind.
        if quant is None or np.ndim(quant.scale) != 0:
            raise ValueError("uint8 (quint8) filters need filter_quant=QuantParams(scalar scale, zero_point)")
        return "quint8"
    raise TypeError(f"filters must be float32, float16, bfloat16, int8 or uint8, got {w.dtype}")


def out_dtype(in_dt: str, x: NDArray[Any] | np.dtype[Any]) -> str:
    """The node's output datatype: the input's (a dynamically quantized input: its float type)."""
    if in_dt == "qdint8":
        return "fp16" if _dtype_of(x) == F16 else "fp32"
    return in_dt


def bias_spec(b: NDArray[Any] | None) -> TensorSpec | None:
    if b is None:
        return None
    dt = {np.dtype(F32): "fp32", np.dtype(F16): "fp16", np.dtype(np.int32): "qcint32", BF16: "bf16"}.get(b.dtype)
    if dt is None:
        raise TypeError(f"bias must be float32, float16, bfloat16 or int32, got {b.dtype}")
    return TensorSpec(dt, tuple(b.shape), static=True)


def scale_tuple(q: QuantParams | None) -> float | tuple[float, ...] | None:
    """The scale as :class:`~kleidiref.dispatch.TensorSpec` takes it (bf16 bits widened to float)."""
    if q is None:
        return None
    s = np.asarray(q.scale)
    # The node holds Python floats (about 32 bytes each): sized before they are made.
    check_alloc(f"quantization scales {s.shape}", (s.shape, np.float64), factor=4)
    if s.dtype == np.uint16:  # bf16 bits
        return tuple(float(v) for v in bf16_to_f32(s).reshape(-1))
    return float(s) if s.ndim == 0 else tuple(float(v) for v in s.reshape(-1))


def quantize_bound_s8(v: float, scale: float, zp: int) -> int:
    """An output bound as its int8 code: ``xnn_qs8_quantize``, i.e. :func:`kleidiref.quant.qai8.quantize_qai8`."""
    return int(quantize_qai8(np.array([v], np.float32), scale, zp)[0])


def quantize_bound_u8(v: float, scale: float, zp: int) -> int:
    """``xnn_qu8_quantize``: ``(uint8) lrintf(fminf(fmaxf(v / s + zp, 0), 255))``."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        t = np.float32(np.float32(v) / np.float32(scale)) + np.float32(zp)
    return int(np.rint(np.clip(t, 0, 255)))


@dataclasses.dataclass(frozen=True)
class Qs8Requant:
    """A qs8 node's fp32 requantization: per-channel scale, zero points, quantized clamp."""

    scale: NDArray[np.float32]
    zx: int
    zy: int
    ymin: int
    ymax: int


def qs8_requant(c: Call) -> Qs8Requant:
    """XNNPACK's qs8 requantization parameters for the filter's N output channels."""
    xq, wq, yq = c.x_quant, c.w_quant, c.y_quant
    if xq is None or wq is None or yq is None:
        raise ValueError("qint8 operators need input_quant, filter_quant and output_quant")
    s = F.qs8_requantization_scale(float(xq.scale), np.asarray(wq.scale, F32), float(yq.scale), c.w.shape[0])
    ys, zy = float(yq.scale), yq.zero_point
    return Qs8Requant(s, xq.zero_point, zy, quantize_bound_s8(c.lo, ys, zy), quantize_bound_s8(c.hi, ys, zy))


def qu8_requant(c: Call) -> dict[str, Any]:
    """The qu8 kernels' zero points, requantization scale and clamp, as their keywords."""
    xq, wq, yq = c.x_quant, c.w_quant, c.y_quant
    if xq is None or wq is None or yq is None:
        raise ValueError("quint8 operators need input_quant, filter_quant and output_quant")
    return dict(
        zx=xq.zero_point,
        zw=wq.zero_point,
        scale=F.qu8_requantization_scale(float(xq.scale), float(wq.scale), float(yq.scale)),
        zy=yq.zero_point,
        ymin=quantize_bound_u8(c.lo, float(yq.scale), yq.zero_point),
        ymax=quantize_bound_u8(c.hi, float(yq.scale), yq.zero_point),
    )


def to_f32(a: NDArray[Any]) -> NDArray[np.float32]:
    """fp16 / bf16 / fp32 to fp32 (exact)."""
    return np.asarray(a).astype(F32)


def opt_f32(a: NDArray[Any] | None) -> NDArray[np.float32] | None:
    return None if a is None else to_f32(a)


def f16_of(a: NDArray[Any]) -> NDArray[np.float16]:
    """fp32 static weights/biases of an fp16 node: converted with RNE at creation."""
    if a.dtype == F16:
        return a
    return rn16(np.asarray(a, dtype=F32))


def opt_f16(a: NDArray[Any] | None) -> NDArray[np.float16] | None:
    return None if a is None else f16_of(a)


def to_out_dtype(out: NDArray[Any], out_dt: str) -> NDArray[Any]:
    """An fp32 result of an fp16 / bf16 node to the node's type (XNNPACK's convert after the rewrite)."""
    if out.dtype != F32 or out_dt not in ("fp16", "bf16"):
        return out
    return rn16(out) if out_dt == "fp16" else f32_to_bf16_rne(out).view(BF16)


def check_array(name: str, x: object) -> NDArray[Any]:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    return x
