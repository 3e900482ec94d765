"""``XNNConvert``: dynamic quantization deferred to the GEMM consumer, XNNPACK's static int8 converts
(``xnn_f32_qs8_vcvt``, ``xnn_qs8_f32_vcvt``) and the float16 <-> float32 converts.

fp16 <-> fp32 (XNNPACK ``92a7ad501b``, ``src/configs/unary-elementwise-config.c``: ``xnn_f16_f32_vcvt`` /
``xnn_f32_f16_vcvt``, ``__neonfp16_u16`` on Arm64 (``vcvt_f32_f16``, ``vcvt_f16_f32``),
``__avx512skx`` / ``__f16c`` on x86 (``_mm512_cvtph_ps``, ``_mm256_cvtps_ph(., _MM_FROUND_TO_NEAREST_INT)``)):
widening is exact; narrowing rounds to nearest even, overflows to infinity. A NaN keeps its sign and the top
payload bits and is quieted (Arm FPConvertNaN; x86 converts an SNaN to a QNaN the same way). Note: neither
conversion flushes under FPCR.FZ16 or MXCSR FTZ/DAZ (Arm's FPUnpackCV/FPRoundCV ignore FZ16; F16C's
conversions ignore DAZ/FTZ); an f32 subnormal narrows to a signed zero whether flushed or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ... import pte
from ...numerics import rn16
from ...quant import dequantize_qai8, quantize_qai8_vcvt
from ...targets import Target
from .common import Dynamic, quant_params

__all__ = ["convert_node", "f16_to_f32", "f32_to_f16"]


def f32_to_f16(x: NDArray[np.float32]) -> NDArray[np.float16]:
    """``xnn_f32_f16_vcvt``: RNE, overflow to infinity, a NaN quieted with its top 9 payload bits kept."""
    y = rn16(x)
    nan = np.isnan(x)
    if nan.any():
        b = np.ascontiguousarray(x).view(np.uint32)[nan]
        bits = ((b >> 16) & 0x8000) | 0x7E00 | ((b >> 13) & 0x1FF)
        y.view(np.uint16)[nan] = bits.astype(np.uint16)
    return y


def f16_to_f32(x: NDArray[np.float16]) -> NDArray[np.float32]:
    """``xnn_f16_f32_vcvt``: exact; a NaN quieted with its payload kept (shifted up by 13 bits)."""
    y = np.asarray(x, dtype=np.float32)
    nan = np.isnan(x)
    if nan.any():
        b = np.ascontiguousarray(x).view(np.uint16)[nan].astype(np.uint32)
        y.view(np.uint32)[nan] = ((b & 0x8000) << 16) | 0x7FC00000 | ((b & 0x3FF) << 13)
    return y


def convert_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    src, dst = graph.value(f["input_id"]), graph.value(f["output_id"])
    x = vals[f["input_id"]]
    kinds = (src.datatype_name, dst.datatype_name)
    if kinds in (("fp32", "qdint8"), ("fp16", "qdint8")):
        return Dynamic(x), (
            f"{kinds[0]} -> qdint8: quantized by the consumer as XNNPACK decides it "
            "(xnn_f32_qd8 / xnn_f16_qd8 / qdu8 on x86, or KleidiAI's qai8dx LHS packer for qp8)"
        )
    if kinds == ("fp32", "fp16"):
        return f32_to_f16(x), "xnn_f32_f16_vcvt (" + (
            "__neonfp16_u16" if t.arch != "x86_64" else "__avx512skx_u16 / __f16c_u16"
        ) + ")"
    if kinds == ("fp16", "fp32"):
        return f16_to_f32(x), "xnn_f16_f32_vcvt (" + (
            "__neonfp16_u16" if t.arch != "x86_64" else "__avx512skx_u16 / __f16c_u16"
        ) + ")"
    q = quant_params(dst if kinds[1] == "qint8" else src)
    if kinds == ("fp32", "qint8") and q is not None:
        return quantize_qai8_vcvt(x, q.scale, q.zero_point, t.arch == "x86_64"), "xnn_f32_qs8_vcvt"
    if kinds == ("qint8", "fp32") and q is not None:
        return dequantize_qai8(x, q.scale, q.zero_point), "xnn_qs8_f32_vcvt (dequantize_qai8)"
    raise NotImplementedError(f"XNNConvert {kinds[0]} -> {kinds[1]} is not emulated yet")
