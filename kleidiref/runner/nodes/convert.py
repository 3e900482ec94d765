"""``XNNConvert``: dynamic quantization deferred to the GEMM consumer, and XNNPACK's static int8 converts
(``xnn_f32_qs8_vcvt``, ``xnn_qs8_f32_vcvt``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import pte
from ...quant import dequantize_qai8, quantize_qai8_vcvt
from ...targets import Target
from .common import Dynamic, quant_params

__all__ = ["convert_node"]


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
    q = quant_params(dst if kinds[1] == "qint8" else src)
    if kinds == ("fp32", "qint8") and q is not None:
        return quantize_qai8_vcvt(x, q.scale, q.zero_point, t.arch == "x86_64"), "xnn_f32_qs8_vcvt"
    if kinds == ("qint8", "fp32") and q is not None:
        return dequantize_qai8(x, q.scale, q.zero_point), "xnn_qs8_f32_vcvt (dequantize_qai8)"
    raise NotImplementedError(f"XNNConvert {kinds[0]} -> {kinds[1]} is not emulated yet")
