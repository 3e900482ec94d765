"""The GEMM-shaped nodes (``XNNFullyConnected``, ``XNNConv2d``, ``XNNBatchMatrixMultiply``,
``XNNDepthwiseConv2d``): :mod:`kleidiref.ops` with the node's stored weights, bias, quantization, flags and
output clamp, i.e. the dispatcher's decision for the CPU, then the KleidiAI variant or the emulated generic
XNNPACK kernel (``OpResult.emulation`` names it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import pte
from ...ops import OpResult, batch_matrix_multiply, convolution_2d, fully_connected
from ...targets import Target
from .common import activation, bias, check_supported, clamp_kwargs, out_quant, quant_params

__all__ = ["batch_matrix_multiply_node", "convolution_2d_node", "depthwise_convolution_2d_node", "fully_connected_node"]

_FLAG_TRANSPOSE = 1  # XNN_FLAG_TRANSPOSE_WEIGHTS (FC) / XNN_FLAG_TRANSPOSE_B (BMM)


def fully_connected_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    x, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    w = graph.value(f["filter_id"])
    r: OpResult = fully_connected(
        x,
        vals[f["filter_id"]],
        bias(graph, f),
        filter_quant=quant_params(w),
        transpose_weights=bool(f["flags"] & _FLAG_TRANSPOSE),
        target=t,
        **kw,
        **out_quant(graph.value(f["output_id"])),
        **clamp_kwargs(node),
    )
    check_supported(r, node)
    return r.output, r.emulation


def convolution_2d_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    x, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    r: OpResult = convolution_2d(
        x,
        vals[f["filter_id"]],
        bias(graph, f),
        stride=(f["subsampling_height"], f["subsampling_width"]),
        dilation=(f["dilation_height"], f["dilation_width"]),
        padding=(f["padding_top"], f["padding_right"], f["padding_bottom"], f["padding_left"]),
        groups=f["groups"],
        filter_quant=quant_params(graph.value(f["filter_id"])),
        target=t,
        **kw,
        **out_quant(graph.value(f["output_id"])),
        **clamp_kwargs(node),
    )
    return r.output, r.emulation


def batch_matrix_multiply_node(
    t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> tuple[Any, str]:
    f = node.fields
    a, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    b = graph.value(f["input2_id"])
    if "input_quant" in kw:
        kw = {"input1_quant": kw["input_quant"], "input2_quant": quant_params(b)}
    r: OpResult = batch_matrix_multiply(
        a,
        vals[f["input2_id"]],
        transpose_b=bool(f["flags"] & _FLAG_TRANSPOSE),
        static_b=b.is_constant,
        target=t,
        **kw,
        **out_quant(graph.value(f["output_id"])),
    )
    return r.output, r.emulation


def depthwise_convolution_2d_node(
    t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> tuple[Any, str]:
    """``XNNDepthwiseConv2d`` as the grouped convolution it is (groups = channels): the generic dwconv kernel.

    Only the static int8 (qs8) one (bit-exact on the fixtures): kleidiref's f32/f16 dwconv is 2048 / 5120 ULP
    off the observed outputs (docs/run.md), so a float depthwise node is refused rather than approximated.
    """
    f = node.fields
    src = graph.value(f["input1_id"])
    if src.datatype_name != "qint8":
        raise NotImplementedError(
            f"XNNDepthwiseConv2d with {src.datatype_name} input is not emulated yet (kleidiref's f32/f16 dwconv "
            "does not match XNNPACK's bit for bit; docs/run.md)"
        )
    w = np.ascontiguousarray(np.transpose(vals[f["filter_id"]], (3, 1, 2, 0)))  # [1,kh,kw,C*m] -> [C*m,kh,kw,1]
    r: OpResult = convolution_2d(
        vals[f["input1_id"]],
        w,
        bias(graph, f),
        stride=(f["subsampling_height"], f["subsampling_width"]),
        dilation=(f["dilation_height"], f["dilation_width"]),
        padding=(f["padding_top"], f["padding_right"], f["padding_bottom"], f["padding_left"]),
        groups=f["groups"],
        input_quant=quant_params(src),
        filter_quant=quant_params(graph.value(f["filter_id"])),
        target=t,
        **out_quant(graph.value(f["output_id"])),
        **clamp_kwargs(node),
    )
    return r.output, r.emulation
