"""Run an XNNPACK node as XNNPACK would on a target: dispatch, then the chosen kernel's numerics.

``fully_connected``, ``convolution_2d`` and ``batch_matrix_multiply`` take numpy arrays plus
quantization parameters and a :class:`~kleidiref.targets.Target`, call :func:`kleidiref.dispatch.decide`
and compute the output through

* the KleidiAI variant module (:mod:`kleidiref.variants`) when the decision names one of the five
  variants (``pf32_gemm``, ``pf16_gemm``, ``pqs8_qc8w_gemm``, ``qp8_f32_qc8w_gemm``,
  ``qp8_f32_qb4w_gemm``), running exactly the kernel the decision names;
* the generic kernels of :mod:`kleidiref.fallbacks` otherwise: XNNPACK's ARM64 kernels, the
  weight-only ``f32_qc8w`` / ``f32_qc4w`` kernels (ARM64 and x86-64) and, on an x86_64 target, the
  AVX2 ``f16_f32acc`` kernels of the f16 config (an x86_64 Target is taken to be AVX2 + FMA3).

The result is an :class:`OpResult` (``output``, ``decision``, ``emulation``) that also unpacks as
``out, decision = fully_connected(...)``.

Datatypes are inferred from the arrays: float32 -> ``fp32``, float16 -> ``fp16``, ml_dtypes
bfloat16 -> ``bf16``; int8 activations with ``input_quant`` -> ``qint8``; ``dynamic=True`` makes a
float input ``qdint8`` (dynamically quantized, as ExecuTorch's dynamic recipes serialize it);
int8 filters are ``qcint8`` with a per-channel scale array, ``qint8`` with a scalar scale,
``qbint4`` (signed codes in [-8, 7]) when ``filter_quant.block_size`` is set, and ``qcint4``
(signed codes in [-8, 7], per-channel scales) with ``filter_quant.bits == 4``.

Every float path honours ``target.flush_to_zero`` (FPCR.FZ/FZ16, on by default as XNNPACK's
threadpool sets it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Literal

import ml_dtypes
import numpy as np
from numpy.typing import NDArray

from . import fallbacks as F
from .dispatch import ConvParams, Decision, Node, Platform, TensorSpec, decide, f16_x86_choice, f32_qcw_choice
from .numerics import f32_to_bf16_rne, rn16
from .quant.qd8 import quantize_qd8
from .quant.qd8_f16 import quantize_qd8_f16
from .targets import Target, get_target

__all__ = ["OpResult", "QuantParams", "batch_matrix_multiply", "convolution_2d", "fully_connected"]

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


@dataclasses.dataclass(frozen=True)
class OpResult:
    """The output XNNPACK would produce, the dispatch decision, and how it was emulated."""

    output: NDArray[Any]
    decision: Decision
    #: ``variant:<module>``, ``kleidiai:qp8_f32_qc4w_gemm`` (the KleidiAI path outside the five
    #: variants) or ``fallback:<function>(kernel)``; notes for approximations.
    emulation: str

    def __iter__(self) -> Iterator[Any]:
        yield self.output
        yield self.decision


def _variant(name: str) -> Any:
    from .variants import VARIANTS

    mod = VARIANTS.get(name)
    if mod is None or not hasattr(mod, "gemm"):
        raise NotImplementedError(
            f"the decision selects the KleidiAI variant {name}, which kleidiref does not emulate yet "
            f"(kleidiref.variants.{name} is missing)"
        )
    return mod


def _ukernel_known(name: str) -> bool:
    from .kernel import UKERNELS

    return name in UKERNELS


def _not_emulated(d: Decision, what: str) -> NotImplementedError:
    return NotImplementedError(f"{d.config} ({d.kernel}) is not emulated by kleidiref yet: {what}")


def _act_dtype(x: NDArray[Any], quant: QuantParams | None, dynamic: bool) -> str:
    if x.dtype == F32:
        return "qdint8" if dynamic else "fp32"
    if x.dtype == F16:
        return "qdint8" if dynamic else "fp16"
    if x.dtype == BF16:
        if dynamic:
            raise ValueError("dynamic quantization takes float32 or float16 activations")
        return "bf16"
    if x.dtype == np.int8:
        if quant is None:
            raise ValueError("int8 activations need input_quant=QuantParams(scale, zero_point) (qint8)")
        return "qint8"
    if x.dtype == np.uint8:
        if quant is None:
            raise ValueError("uint8 activations need input_quant=QuantParams(scale, zero_point) (quint8)")
        return "quint8"
    raise TypeError(f"activations must be float32, float16, bfloat16, int8 or uint8, got {x.dtype}")


def _filter_dtype(w: NDArray[Any], quant: QuantParams | None) -> str:
    if w.dtype == F32:
        return "fp32"
    if w.dtype == F16:
        return "fp16"
    if w.dtype == BF16:
        return "bf16"
    if w.dtype == np.int8:
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
    if w.dtype == np.uint8:
        # Note: uint8 filters are quint8 (per-tensor scale and zero point), the only uint8 kind.
        if quant is None or np.ndim(quant.scale) != 0:
            raise ValueError("uint8 (quint8) filters need filter_quant=QuantParams(scalar scale, zero_point)")
        return "quint8"
    raise TypeError(f"filters must be float32, float16, bfloat16, int8 or uint8, got {w.dtype}")


def _out_dtype(in_dt: str, x: NDArray[Any]) -> str:
    if in_dt == "qdint8":
        return "fp16" if x.dtype == F16 else "fp32"
    return {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "qint8": "qint8", "quint8": "quint8"}[in_dt]


def _bias_spec(b: NDArray[Any] | None) -> TensorSpec | None:
    if b is None:
        return None
    dt = {np.dtype(F32): "fp32", np.dtype(F16): "fp16", np.dtype(np.int32): "qcint32", BF16: "bf16"}.get(b.dtype)
    if dt is None:
        raise TypeError(f"bias must be float32, float16, bfloat16 or int32, got {b.dtype}")
    return TensorSpec(dt, tuple(b.shape), static=True)


def _scale_tuple(q: QuantParams | None) -> float | tuple[float, ...] | None:
    if q is None:
        return None
    s = np.asarray(q.scale)
    if s.dtype == np.uint16:  # bf16 bits
        return tuple(float(v) for v in np.asarray(s.astype(np.uint32) << 16).view(F32).reshape(-1))
    return float(s) if s.ndim == 0 else tuple(float(v) for v in s.reshape(-1))


def _quantize_bound(v: float, scale: float, zp: int) -> int:
    """``xnn_qs8_quantize``: ``(int8) lrintf(clamp(v / s + zp, -128, 127))``."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        t = np.float32(np.float32(v) / np.float32(scale)) + np.float32(zp)
    return int(np.rint(np.clip(t, -128, 127)))


def _quantize_bound_u8(v: float, scale: float, zp: int) -> int:
    """``xnn_qu8_quantize``: ``(uint8) lrintf(fminf(fmaxf(v / s + zp, 0), 255))``."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        t = np.float32(np.float32(v) / np.float32(scale)) + np.float32(zp)
    return int(np.rint(np.clip(t, 0, 255)))


def _qu8_params(
    xq: QuantParams | None, wq: QuantParams | None, yq: QuantParams | None, lo: float, hi: float
) -> dict[str, Any]:
    if xq is None or wq is None or yq is None:
        raise ValueError("quint8 operators need input_quant, filter_quant and output_quant")
    return dict(
        zx=xq.zero_point,
        zw=wq.zero_point,
        scale=F.qu8_requantization_scale(float(xq.scale), float(wq.scale), float(yq.scale)),
        zy=yq.zero_point,
        ymin=_quantize_bound_u8(lo, float(yq.scale), yq.zero_point),
        ymax=_quantize_bound_u8(hi, float(yq.scale), yq.zero_point),
    )


# --------------------------------------------------------------------------------------------
# GEMM core (FC, rewritten 1x1 conv, BMM per batch)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Gemm:
    x: NDArray[Any]  # [M, K]
    w: NDArray[Any]  # [N, K]
    bias: NDArray[Any] | None
    x_quant: QuantParams | None
    w_quant: QuantParams | None
    y_quant: QuantParams | None
    lo: float
    hi: float


def _to_f32(a: NDArray[Any]) -> NDArray[np.float32]:
    return np.asarray(a).astype(F32)


def _f16_of(a: NDArray[Any]) -> NDArray[np.float16]:
    """fp32 static weights/biases of an fp16 node: converted with RNE at creation."""
    if a.dtype == F16:
        return a
    return rn16(np.asarray(a, dtype=F32))


def _qb4w_kr(t: Target) -> int:
    return 8 if t.i8mm else 4 if t.dotprod else 1


def _x86_f16_kernel(d: Decision) -> str:
    """The ``kernel=`` of :mod:`kleidiref.fallbacks.f16_x86` for the x86-64 f16 kernel ``d`` names."""
    key, name, _, _ = f16_x86_choice(d.mr, igemm=d.microkernel == "igemm")
    if name != d.kernel:  # one chooser for both: a mismatch is a kleidiref bug
        raise AssertionError(f"x86 f16 kernel {name} differs from the decision's {d.kernel}")
    return key


def _run_gemm(d: Decision, g: _Gemm, t: Target) -> tuple[NDArray[Any], str]:
    fz = t.flush_to_zero
    cfg = d.config
    x, w, b = g.x, g.w, g.bias
    if cfg == "pf32_gemm":
        mod = _variant("pf32_gemm")
        out = mod.gemm(
            _to_f32(x),
            _to_f32(w),
            bias=None if b is None else _to_f32(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            target=t,
            kernel=d.kernel,
        )
        return out, "variant:pf32_gemm"
    if cfg == "pf16_gemm":
        mod = _variant("pf16_gemm")
        out = mod.gemm(
            x,
            _f16_of(w),
            bias=None if b is None else _f16_of(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            target=t,
            kernel=d.kernel,
        )
        return out, "variant:pf16_gemm"
    if cfg == "pqs8_qc8w_gemm":
        mod = _variant("pqs8_qc8w_gemm")
        xq, wq, yq = g.x_quant, g.w_quant, g.y_quant
        assert xq is not None and wq is not None and yq is not None
        s = F.qs8_requantization_scale(float(xq.scale), np.asarray(wq.scale, F32), float(yq.scale), w.shape[0])
        out = mod.gemm(
            x,
            w,
            input_zero_point=xq.zero_point,
            requant_scale=s,
            bias=b,
            output_zero_point=yq.zero_point,
            output_min=_quantize_bound(g.lo, float(yq.scale), yq.zero_point),
            output_max=_quantize_bound(g.hi, float(yq.scale), yq.zero_point),
            target=t,
            kernel=d.kernel,
        )
        return out, "variant:pqs8_qc8w_gemm"
    if cfg == "qp8_f32_qc8w_gemm":
        if not _ukernel_known(d.kernel):
            raise _not_emulated(d, "kleidiref has no emulation of this qp8_f32_qc8w kernel")
        mod = _variant("qp8_f32_qc8w_gemm")
        assert g.w_quant is not None
        out = mod.gemm(
            _to_f32(x),
            w,
            np.asarray(g.w_quant.scale, F32),
            bias=None if b is None else _to_f32(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            target=t,
            kernel=d.kernel,
        )
        return out, "variant:qp8_f32_qc8w_gemm"
    if cfg == "qp8_f32_qb4w_gemm":
        mod = _variant("qp8_f32_qb4w_gemm")
        assert g.w_quant is not None and g.w_quant.block_size is not None
        out = mod.gemm(
            _to_f32(x),
            w,
            np.asarray(g.w_quant.scale, np.uint16),
            bl=g.w_quant.block_size,
            bias=None if b is None else _to_f32(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            target=t,
            kernel=d.kernel,
        )
        return out, "variant:qp8_f32_qb4w_gemm"
    if cfg == "qp8_f32_qc4w_gemm":
        # Not one of the five variants: the private module emulates its KleidiAI kernels.
        from .variants import _qp8_f32_qc4w as qc4w

        assert g.w_quant is not None
        out = qc4w.gemm(
            _to_f32(x),
            w,
            np.asarray(g.w_quant.scale, F32),
            bias=None if b is None else _to_f32(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            target=t,
            kernel=d.kernel,
        )
        return out, "kleidiai:qp8_f32_qc4w_gemm"
    if cfg in ("f32_gemm", "f32_gemm_nr2"):
        kernel: Literal["ld128", "acc4", "nr2"] = (
            "nr2" if cfg == "f32_gemm_nr2" else "acc4" if "acc4" in d.xnn_kernel else "ld128"
        )
        out = F.f32_gemm(
            _to_f32(x),
            _to_f32(w),
            None if b is None else _to_f32(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            fz=fz,
            kernel=kernel,
        )
        return out, f"fallback:f32_gemm({kernel})"
    if cfg in ("f32_qc8w_gemm", "f32_qc4w_gemm"):
        return _run_f32_qcw(d, g, t)
    if cfg == "f16_gemm" and t.arch == "x86_64":
        kx = _x86_f16_kernel(d)
        opts: dict[str, Any] = dict(clamp_min=g.lo, clamp_max=g.hi, fz=fz, kernel=kx)
        out = F.f16_x86_gemm(x, _f16_of(w), None if b is None else _f16_of(b), **opts)
        return out, f"fallback:f16_x86_gemm({kx})"
    if cfg == "f16_gemm":
        k16: Literal["1x16", "6x16"] = "1x16" if d.mr == 1 else "6x16"
        out = F.f16_gemm(
            x,
            _f16_of(w),
            None if b is None else _f16_of(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            fz=fz,
            kernel=k16,
        )
        return out, f"fallback:f16_gemm({k16})"
    if cfg in ("qd8_f32_qc8w_gemm", "qd8_f32_qc4w_gemm"):
        assert g.w_quant is not None
        q, a, zp = quantize_qd8(_to_f32(x), fz=fz)
        qcw = F.qd8_f32_qc8w_gemm if cfg == "qd8_f32_qc8w_gemm" else F.qd8_f32_qc4w_gemm
        out = qcw(
            q,
            a,
            zp,
            w,
            np.asarray(g.w_quant.scale, F32),
            None if b is None else _to_f32(b),
            clamp_min=g.lo,
            clamp_max=g.hi,
            fz=fz,
        )
        return out, f"fallback:{cfg}"
    if cfg == "qd8_f32_qb4w_gemm":
        wq = g.w_quant
        assert wq is not None and wq.block_size is not None
        q, a, zp = quantize_qd8(_to_f32(x), fz=fz)
        kr = _qb4w_kr(t)
        out = F.qd8_f32_qb4w_gemm(
            q,
            a,
            zp,
            w,
            np.asarray(wq.scale, np.uint16),
            wq.block_size,
            None if b is None else _to_f32(b),
            kr=kr,
            clamp_min=g.lo,
            clamp_max=g.hi,
            fz=fz,
        )
        return out, f"fallback:qd8_f32_qb4w_gemm(kr={kr})"
    if cfg in ("qd8_f16_qc8w_gemm", "qd8_f16_qc4w_gemm", "qd8_f16_qb4w_gemm"):
        return _run_qd8_f16(d, g, t)
    if cfg == "qu8_gemm":
        rq = "rndnu" if t.arch == "arm64" else "fp32"  # x86-64 qu8 kernels requantize in fp32
        out = F.qu8_gemm(x, w, b, **_qu8_params(g.x_quant, g.w_quant, g.y_quant, g.lo, g.hi), requant=rq)
        return out, f"fallback:qu8_gemm({rq})"
    if cfg == "qs8_qc8w_gemm":
        xq, wq, yq = g.x_quant, g.w_quant, g.y_quant
        assert xq is not None and wq is not None and yq is not None
        s = F.qs8_requantization_scale(float(xq.scale), np.asarray(wq.scale, F32), float(yq.scale), w.shape[0])
        out = F.qs8_qc8w_gemm(
            x,
            w,
            b,
            zx=xq.zero_point,
            s=s,
            zy=yq.zero_point,
            ymin=_quantize_bound(g.lo, float(yq.scale), yq.zero_point),
            ymax=_quantize_bound(g.hi, float(yq.scale), yq.zero_point),
        )
        return out, "fallback:qs8_qc8w_gemm"
    raise _not_emulated(d, "no emulated kernel for this config")


def _run_f32_qcw(d: Decision, g: _Gemm, t: Target) -> tuple[NDArray[Any], str]:
    """Weight-only f32_qc8w / f32_qc4w: fp32 activations, int weights, bias first, scale last."""
    kq, name, _, _ = f32_qcw_choice(d.config, d.m, t, d.platform)
    if name != d.kernel:  # one chooser for both: a mismatch is a kleidiref bug
        raise AssertionError(f"f32_qcw kernel {name} differs from the decision's {d.kernel}")
    wq = g.w_quant
    assert wq is not None
    scale = np.asarray(wq.scale, F32)
    # Note: the bias goes in exactly as the node has it; XNNPACK packs it raw and scales the whole
    # accumulator, so y = (bias + sum a*w) * scale (the decision's reasons say so).
    b = None if g.bias is None else _to_f32(g.bias)
    opts: dict[str, Any] = dict(clamp_min=g.lo, clamp_max=g.hi, fz=t.flush_to_zero, kernel=kq)
    if d.config == "f32_qc8w_gemm":
        out = F.f32_qc8w_gemm(_to_f32(g.x), g.w, scale, b, **opts)
    else:
        # Note: an ops qcint4 filter holds the logical values (nibble - zero point) as int8, which
        # the fallback reads as codes - 8: kernel_zero_point 8 whatever the node's zero point.
        out = F.f32_qc4w_gemm(_to_f32(g.x), g.w, scale, b, kernel_zero_point=8, **opts)
    return out, f"fallback:{d.config}({kq})"


def _run_qd8_f16(d: Decision, g: _Gemm, t: Target) -> tuple[NDArray[Any], str]:
    """qd8_f16_*: fp16 rows quantized by the fp16 qd8 quantizer, binary32 epilogue, one RN16."""
    fz = t.flush_to_zero
    wq = g.w_quant
    assert wq is not None
    q, a, zp = quantize_qd8_f16(np.asarray(g.x, dtype=F16), fz=fz)
    # Note: the qd8_f16 operators take an f32 bias (ExecuTorch serializes it fp32); an fp16 bias
    # array is widened exactly.
    b = None if g.bias is None else _to_f32(g.bias)
    clamp: dict[str, Any] = dict(clamp_min=g.lo, clamp_max=g.hi, fz=fz)
    if d.config == "qd8_f16_qc8w_gemm":
        kern: Literal["c", "asm_ld128"] = "asm_ld128" if d.kernel.endswith("_ld128") else "c"
        out = F.qd8_f16_qc8w_gemm(q, a, zp, g.w, np.asarray(wq.scale, F32), b, kernel=kern, **clamp)
        return out, f"fallback:qd8_f16_qc8w_gemm({kern})"
    if d.config == "qd8_f16_qc4w_gemm":
        out = F.qd8_f16_qc4w_gemm(q, a, zp, g.w, np.asarray(wq.scale, F32), b, **clamp)
        return out, "fallback:qd8_f16_qc4w_gemm"
    assert wq.block_size is not None
    kr = _qb4w_kr(t)
    out = F.qd8_f16_qb4w_gemm(q, a, zp, g.w, np.asarray(wq.scale, np.uint16), wq.block_size, b, kr=kr, **clamp)
    return out, f"fallback:qd8_f16_qb4w_gemm(kr={kr})"


def _float_io(
    d: Decision, in_dt: str, x: NDArray[Any], w: NDArray[Any], b: NDArray[Any] | None
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any] | None, str | None]:
    """fp16 / bf16 nodes that XNNPACK rewrote to fp32: convert in, and say how to convert out."""
    if d.config in ("f32_gemm", "f32_gemm_nr2", "f32_igemm", "f32_dwconv", "f32_vmulcaddc") and in_dt in (
        "fp16",
        "bf16",
    ):
        return _to_f32(x), _to_f32(w), None if b is None else _to_f32(b), in_dt
    return x, w, b, None


def _convert_out(out: NDArray[Any], back: str | None) -> NDArray[Any]:
    if back == "fp16":
        return rn16(out)
    if back == "bf16":
        return f32_to_bf16_rne(out).view(BF16)
    return out


def _target(target: Target | None) -> Target:
    t = get_target() if target is None else target
    if not isinstance(t, Target):
        raise TypeError(f"target must be a Target, got {type(t).__name__}")
    return t


def _arr(name: str, x: object) -> NDArray[Any]:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    return x


# --------------------------------------------------------------------------------------------
# Public ops
# --------------------------------------------------------------------------------------------


def fully_connected(
    input: NDArray[Any],
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    transpose_weights: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> OpResult:
    """``XNNFullyConnected``: ``input`` [..., K] x ``filter`` [N, K] ([K, N] with ``transpose_weights``)."""
    t = _target(target)
    x, w = _arr("input", input), _arr("filter", filter)
    b = None if bias is None else _arr("bias", bias)
    in_dt = _act_dtype(x, input_quant, dynamic)
    k_dt = _filter_dtype(w, filter_quant)
    out_dt = _out_dtype(in_dt, x)
    if out_dt in ("qint8", "quint8") and output_quant is None:
        raise ValueError(f"a {out_dt} fully-connected node needs output_quant=QuantParams(scale, zero_point)")
    n = w.shape[1] if transpose_weights and w.ndim == 2 else w.shape[0]
    node = Node(
        op="fully_connected",
        input=TensorSpec(in_dt, tuple(x.shape), scale=_scale_tuple(input_quant)),
        filter=TensorSpec(
            k_dt,
            tuple(w.shape),
            static=True,
            zero_point=None
            if filter_quant is None
            else (filter_quant.zero_point if k_dt in ("qbint4", "qcint4") else None),
            block_size=None if filter_quant is None else filter_quant.block_size,
            scale=_scale_tuple(filter_quant),
        ),
        output=TensorSpec(out_dt, (*x.shape[:-1], n), scale=_scale_tuple(output_quant)),
        bias=_bias_spec(b),
        flags=("transpose_weights",) if transpose_weights else (),
    )
    d = decide(node, t, platform=platform)
    w2 = np.ascontiguousarray(w.T) if transpose_weights else w
    return _fc_run(d, in_dt, x, w2, b, input_quant, filter_quant, output_quant, output_min, output_max, t)


def _fc_run(
    d: Decision,
    in_dt: str,
    x: NDArray[Any],
    w: NDArray[Any],
    b: NDArray[Any] | None,
    xq: QuantParams | None,
    wq: QuantParams | None,
    yq: QuantParams | None,
    lo: float,
    hi: float,
    t: Target,
) -> OpResult:
    k = x.shape[-1]
    x2 = x.reshape(-1, k)
    x2, w, b, back = _float_io(d, in_dt, x2, w, b)
    if in_dt == "qdint8" and x.dtype == F16 and d.config.startswith("qd8_f32_"):
        # XNNPACK's fp16 fallback rewrote this fp16-output node to fp32 (no pf16 config): fp16 ->
        # fp32 convert in (exact), f32 qd8 GEMM, fp32 -> fp16 convert out (RNE).
        back = "fp16"
    out, how = _run_gemm(d, _Gemm(x2, w, b, xq, wq, yq, lo, hi), t)
    out = _convert_out(out, back)
    if back == "fp16" and in_dt == "qdint8":
        how += " + fp16 converts (cvt_to_fp32 rewrite)"
    return OpResult(out.reshape(*x.shape[:-1], w.shape[0]), d, how)


def convolution_2d(
    input: NDArray[Any],
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> OpResult:
    """``XNNConv2d``: ``input`` NHWC, ``filter`` [O, kh, kw, C/groups]; padding [top, right, bottom, left].

    A 1x1 convolution that XNNPACK rewrites to a fully-connected node runs through the FC path
    (a dynamically quantized input is then quantized per pixel row). ``dynamic=True`` quantizes
    per image otherwise (ExecuTorch's ``num_nonbatch_dims = 3``).
    """
    t = _target(target)
    x, w = _arr("input", input), _arr("filter", filter)
    b = None if bias is None else _arr("bias", bias)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"input must be NHWC and filter [O, kh, kw, C/groups]; got {x.shape}, {w.shape}")
    in_dt = _act_dtype(x, input_quant, dynamic)
    k_dt = _filter_dtype(w, filter_quant)
    if k_dt == "qbint4":
        raise ValueError("4-bit block-wise filters are fully-connected only")
    out_dt = _out_dtype(in_dt, x)
    if out_dt in ("qint8", "quint8") and output_quant is None:
        raise ValueError(f"a {out_dt} convolution needs output_quant=QuantParams(scale, zero_point)")
    conv = ConvParams(
        kernel=(w.shape[1], w.shape[2]),
        stride=(int(stride[0]), int(stride[1])),
        dilation=(int(dilation[0]), int(dilation[1])),
        padding=(int(padding[0]), int(padding[1]), int(padding[2]), int(padding[3])),
        groups=groups,
    )
    pt, pr, pb, pl = padding
    ho = (x.shape[1] + pt + pb - ((w.shape[1] - 1) * dilation[0] + 1)) // stride[0] + 1
    wo = (x.shape[2] + pl + pr - ((w.shape[2] - 1) * dilation[1] + 1)) // stride[1] + 1
    node = Node(
        op="convolution_2d",
        input=TensorSpec(in_dt, tuple(x.shape), scale=_scale_tuple(input_quant)),
        filter=TensorSpec(k_dt, tuple(w.shape), static=True, scale=_scale_tuple(filter_quant)),
        output=TensorSpec(out_dt, (x.shape[0], ho, wo, w.shape[0]), scale=_scale_tuple(output_quant)),
        bias=_bias_spec(b),
        convolution=conv,
    )
    d = decide(node, t, platform=platform)
    if d.rewritten_to_fc:
        r = _fc_run(
            d,
            in_dt,
            x,
            w.reshape(w.shape[0], -1),
            b,
            input_quant,
            filter_quant,
            output_quant,
            output_min,
            output_max,
            t,
        )
        return OpResult(r.output.reshape(x.shape[0], x.shape[1], x.shape[2], w.shape[0]), d, r.emulation)
    x_, w_, b_, back = _float_io(d, in_dt, x, w, b)
    out, how = _run_conv(d, x_, w_, b_, conv, input_quant, filter_quant, output_quant, output_min, output_max, t)
    return OpResult(_convert_out(out, back), d, how)


def _run_conv(
    d: Decision,
    x: NDArray[Any],
    w: NDArray[Any],
    b: NDArray[Any] | None,
    c: ConvParams,
    xq: QuantParams | None,
    wq: QuantParams | None,
    yq: QuantParams | None,
    lo: float,
    hi: float,
    t: Target,
) -> tuple[NDArray[Any], str]:
    fz = t.flush_to_zero
    geo: dict[str, Any] = dict(stride=c.stride, dilation=c.dilation, padding=c.padding)
    cfg = d.config
    float16 = x.dtype == F16
    if d.microkernel == "vmulcaddc":
        wv = (_f16_of(w) if float16 else _to_f32(w)).reshape(-1)
        bv = None if b is None else (_f16_of(b) if float16 else _to_f32(b))
        return F.vmulcaddc(x, wv, bv, clamp_min=lo, clamp_max=hi, fz=fz), f"fallback:vmulcaddc({cfg})"
    if cfg in ("qu8_gemm", "qu8_dwconv"):
        # IGEMM and DWConv give the same bits (integer sums, then the same rndnu requantization).
        rq = "rndnu" if t.arch == "arm64" else "fp32"  # x86-64 qu8 kernels requantize in fp32
        out8 = F.qu8_igemm(x, w, b, **_qu8_params(xq, wq, yq, lo, hi), groups=c.groups, requant=rq, **geo)
        return out8, f"fallback:qu8_igemm({d.microkernel}, {rq})"
    if d.microkernel == "dwconv":
        if cfg == "qs8_qc8w_dwconv":
            s, zx, zy, ymin, ymax = _qs8_params(xq, wq, yq, w.shape[0], lo, hi)
            return F.dwconv_qs8(x, w, b, zx=zx, s=s, zy=zy, ymin=ymin, ymax=ymax, **geo), "fallback:dwconv_qs8"
        wv = _f16_of(w) if float16 else _to_f32(w)
        bv = None if b is None else (_f16_of(b) if float16 else _to_f32(b))
        return F.dwconv(x, wv, bv, clamp_min=lo, clamp_max=hi, fz=fz, **geo), f"fallback:dwconv({cfg})"
    geo["groups"] = c.groups
    note = ""
    if d.variant is not None:
        # Note: KleidiAI's IGEMM path lives in kleidiref.variants.igemm (another module); it runs
        # grouped convolutions as XNNPACK does (the same IGEMM once per group). Without that module
        # the generic kernel of the same datatype computes the result and OpResult.emulation says so.
        from .variants import VARIANTS

        mod = VARIANTS.get("igemm")
        if mod is not None and hasattr(mod, "conv2d"):
            return _run_kai_igemm(mod, d, x, w, b, c, xq, wq, yq, lo, hi, t), f"variant:igemm({d.variant})"
        why = "kleidiref.variants.igemm absent"
        note = (
            f" [KleidiAI IGEMM {d.kernel} not emulated ({why}): generic kernel used; may differ from the SME "
            "kernel in the sign of zero, NaN and accumulation order]"
        )
        cfg = {"pf32_gemm": "f32_igemm", "pf16_gemm": "f16_gemm", "pqs8_qc8w_gemm": "qs8_qc8w_gemm"}[cfg]
    if cfg in ("f32_igemm", "f32_gemm_nr2"):
        k32: Literal["ld128", "acc2"] = (
            "acc2" if (d.mr == 1 or cfg == "f32_gemm_nr2") and d.variant is None else "ld128"
        )
        out = F.f32_igemm(
            _to_f32(x),
            _to_f32(w),
            None if b is None else _to_f32(b),
            clamp_min=lo,
            clamp_max=hi,
            fz=fz,
            kernel=k32,
            **geo,
        )
        return out, f"fallback:f32_igemm({k32}){note}"
    if cfg == "f16_gemm" and t.arch == "x86_64":
        kx = _x86_f16_kernel(d)
        opts: dict[str, Any] = dict(clamp_min=lo, clamp_max=hi, fz=fz, kernel=kx, **geo)
        out16 = F.f16_x86_igemm(x, _f16_of(w), None if b is None else _f16_of(b), **opts)
        return out16, f"fallback:f16_x86_igemm({kx})"
    if cfg == "f16_gemm":
        kh16: Literal["1x16", "6x16"] = "1x16" if d.mr == 1 and d.variant is None else "6x16"
        out16 = F.f16_igemm(
            x,
            _f16_of(w),
            None if b is None else _f16_of(b),
            clamp_min=lo,
            clamp_max=hi,
            fz=fz,
            kernel=kh16,
            **geo,
        )
        return out16, f"fallback:f16_igemm({kh16}){note}"
    if cfg == "qd8_f32_qc8w_gemm":
        assert wq is not None
        q, a, zp = quantize_qd8(_to_f32(x).reshape(x.shape[0], -1), fz=fz)
        out = F.qd8_f32_qc8w_igemm(
            q.reshape(x.shape),
            a,
            zp,
            w,
            np.asarray(wq.scale, F32),
            None if b is None else _to_f32(b),
            clamp_min=lo,
            clamp_max=hi,
            fz=fz,
            **geo,
        )
        return out, "fallback:qd8_f32_qc8w_igemm (qd8 per image)"
    if cfg == "qs8_qc8w_gemm":
        s, zx, zy, ymin, ymax = _qs8_params(xq, wq, yq, w.shape[0], lo, hi)
        return F.qs8_qc8w_igemm(
            x, w, b, zx=zx, s=s, zy=zy, ymin=ymin, ymax=ymax, **geo
        ), f"fallback:qs8_qc8w_igemm{note}"
    raise _not_emulated(d, "no emulated convolution kernel for this config")


def _run_kai_igemm(
    mod: Any,
    d: Decision,
    x: NDArray[Any],
    w: NDArray[Any],
    b: NDArray[Any] | None,
    c: ConvParams,
    xq: QuantParams | None,
    wq: QuantParams | None,
    yq: QuantParams | None,
    lo: float,
    hi: float,
    t: Target,
) -> NDArray[Any]:
    """``variants.igemm.conv2d`` for the decision's variant."""
    kw: dict[str, Any] = dict(stride=c.stride, dilation=c.dilation, padding=c.padding, groups=c.groups, target=t)
    out: Any
    if d.variant == "pqs8_qc8w":
        s, zx, zy, ymin, ymax = _qs8_params(xq, wq, yq, w.shape[0], lo, hi)
        out = mod.conv2d(
            x,
            w,
            b,
            variant="pqs8",
            input_zero_point=zx,
            requant_scale=s,
            output_zero_point=zy,
            output_min=ymin,
            output_max=ymax,
            **kw,
        )
    elif d.variant == "pf16":
        out = mod.conv2d(
            x, _f16_of(w), None if b is None else _f16_of(b), variant="pf16", clamp_min=lo, clamp_max=hi, **kw
        )
    else:
        out = mod.conv2d(
            _to_f32(x),
            _to_f32(w),
            None if b is None else _to_f32(b),
            variant="pf32",
            clamp_min=lo,
            clamp_max=hi,
            **kw,
        )
    return np.asarray(out)


def _qs8_params(
    xq: QuantParams | None, wq: QuantParams | None, yq: QuantParams | None, n: int, lo: float, hi: float
) -> tuple[NDArray[np.float32], int, int, int, int]:
    if xq is None or wq is None or yq is None:
        raise ValueError("qint8 operators need input_quant, filter_quant and output_quant")
    s = F.qs8_requantization_scale(float(xq.scale), np.asarray(wq.scale, F32), float(yq.scale), n)
    return (
        s,
        xq.zero_point,
        yq.zero_point,
        _quantize_bound(lo, float(yq.scale), yq.zero_point),
        _quantize_bound(hi, float(yq.scale), yq.zero_point),
    )


def batch_matrix_multiply(
    input1: NDArray[Any],
    input2: NDArray[Any],
    *,
    transpose_b: bool = False,
    input1_quant: QuantParams | None = None,
    input2_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    static_b: bool = False,
    target: Target | None = None,
    platform: Platform = "linux",
) -> OpResult:
    """``XNNBatchMatrixMultiply``: ``input1`` [..., M, K] x ``input2`` [..., K, N] ([..., N, K] with
    ``transpose_b``); batch dimensions broadcast; no bias, no clamp."""
    t = _target(target)
    a, bm = _arr("input1", input1), _arr("input2", input2)
    if a.ndim < 2 or bm.ndim < 2:
        raise ValueError(f"inputs must have rank >= 2, got {a.shape} and {bm.shape}")
    in_dt = _act_dtype(a, input1_quant, dynamic)
    k_dt = _filter_dtype(bm, input2_quant)
    out_dt = _out_dtype(in_dt, a)
    n = bm.shape[-2] if transpose_b else bm.shape[-1]
    batch = (
        np.broadcast_shapes(a.shape[:-2], bm.shape[:-2])
        if a.shape[-1] == (bm.shape[-1] if transpose_b else bm.shape[-2])
        else a.shape[:-2]
    )
    node = Node(
        op="batch_matrix_multiply",
        input=TensorSpec(in_dt, tuple(a.shape), scale=_scale_tuple(input1_quant)),
        filter=TensorSpec(k_dt, tuple(bm.shape), static=static_b, scale=_scale_tuple(input2_quant)),
        output=TensorSpec(out_dt, (*batch, a.shape[-2], n), scale=_scale_tuple(output_quant)),
        flags=("transpose_b",) if transpose_b else (),
    )
    d = decide(node, t, platform=platform)
    aa = np.broadcast_to(a, (*batch, *a.shape[-2:]))
    bb = np.broadcast_to(bm, (*batch, *bm.shape[-2:]))
    outs = []
    how = ""
    wq = input2_quant
    for idx in np.ndindex(*batch):
        w = bb[idx] if transpose_b else bb[idx].T  # [N, K]
        x2, w2, _, back = _float_io(d, in_dt, aa[idx], np.ascontiguousarray(w), None)
        if d.config == "qs8_qc8w_gemm" and wq is not None and np.ndim(wq.scale) == 0:
            wq = dataclasses.replace(wq, scale=np.full(w.shape[0], wq.scale, F32))
        out, how = _run_gemm(d, _Gemm(x2, w2, None, input1_quant, wq, output_quant, -np.inf, np.inf), t)
        outs.append(_convert_out(out, back))
    res = np.stack(outs).reshape(*batch, a.shape[-2], n) if outs else np.zeros((*batch, a.shape[-2], n))
    return OpResult(res, d, how)
