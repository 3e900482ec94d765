"""The GEMM-shaped nodes (``XNNFullyConnected``, ``XNNConv2d``, ``XNNBatchMatrixMultiply``,
``XNNDepthwiseConv2d``): :mod:`kleidiref.ops` with the node's stored weights, bias, quantization, flags and
output clamp, i.e. the dispatcher's decision for the CPU, then the KleidiAI variant or the emulated generic
XNNPACK kernel (``OpResult.emulation`` names it).

Each is a preparer (:data:`~kleidiref.runner.nodes.common.NodePreparer`): the ops' prepared form, the decision
taken and the weights packed once for the activation's shape and dtype, as XNNPACK creates the operator once
per runtime; the runner keeps what it returns and calls it on every run. The handler is prepare-then-call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import pte
from ...ops import (
    batch_matrix_multiply,
    prepare_batch_matrix_multiply,
    prepare_convolution_2d,
    prepare_fully_connected,
)
from ...targets import Target
from .common import (
    NodeRun,
    activation,
    bias,
    bind_prepared,
    check_supported,
    clamp_kwargs,
    handler_of,
    out_quant,
    quant_params,
)

__all__ = [
    "batch_matrix_multiply_node",
    "convolution_2d_node",
    "depthwise_convolution_2d_node",
    "fully_connected_node",
    "prepare_batch_matrix_multiply_node",
    "prepare_convolution_2d_node",
    "prepare_depthwise_convolution_2d_node",
    "prepare_fully_connected_node",
]

_FLAG_TRANSPOSE = 1  # XNN_FLAG_TRANSPOSE_WEIGHTS (FC) / XNN_FLAG_TRANSPOSE_B (BMM)


def prepare_fully_connected_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> NodeRun:
    f = node.fields
    x, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    w = graph.value(f["filter_id"])
    op = prepare_fully_connected(
        vals[f["filter_id"]],
        bias(graph, f),
        input_shape=x.shape,
        input_dtype=x.dtype,
        filter_quant=quant_params(w),
        transpose_weights=bool(f["flags"] & _FLAG_TRANSPOSE),
        target=t,
        **kw,
        **out_quant(graph.value(f["output_id"])),
        **clamp_kwargs(node),
    )
    check_supported(op, node)
    return bind_prepared(op, f["input1_id"])


def _conv_geometry(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "stride": (f["subsampling_height"], f["subsampling_width"]),
        "dilation": (f["dilation_height"], f["dilation_width"]),
        "padding": (f["padding_top"], f["padding_right"], f["padding_bottom"], f["padding_left"]),
        "groups": f["groups"],
    }


def prepare_convolution_2d_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> NodeRun:
    f = node.fields
    x, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    op = prepare_convolution_2d(
        vals[f["filter_id"]],
        bias(graph, f),
        input_shape=x.shape,
        input_dtype=x.dtype,
        **_conv_geometry(f),
        filter_quant=quant_params(graph.value(f["filter_id"])),
        target=t,
        **kw,
        **out_quant(graph.value(f["output_id"])),
        **clamp_kwargs(node),
    )
    return bind_prepared(op, f["input1_id"])


def _bmm_kwargs(graph: pte.XnnGraph, f: Mapping[str, Any], vals: Mapping[int, Any]) -> tuple[Any, dict[str, Any]]:
    a, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    b = graph.value(f["input2_id"])
    if "input_quant" in kw:
        kw = {"input1_quant": kw["input_quant"], "input2_quant": quant_params(b)}
    kw.update(
        transpose_b=bool(f["flags"] & _FLAG_TRANSPOSE),
        static_b=b.is_constant,
        **out_quant(graph.value(f["output_id"])),
    )
    return a, kw


def prepare_batch_matrix_multiply_node(
    t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> NodeRun:
    """A constant second input is packed once; a computed one is read on each run (nothing to prepare)."""
    f = node.fields
    a, kw = _bmm_kwargs(graph, f, vals)
    if kw["static_b"]:
        op = prepare_batch_matrix_multiply(
            vals[f["input2_id"]], input1_shape=a.shape, input1_dtype=a.dtype, target=t, **kw
        )
        return bind_prepared(op, f["input1_id"])

    def run(vals_: Mapping[int, Any]) -> tuple[Any, str]:
        a_, kw_ = _bmm_kwargs(graph, f, vals_)
        r = batch_matrix_multiply(a_, vals_[f["input2_id"]], target=t, **kw_)
        return r.output, r.emulation

    return run


def prepare_depthwise_convolution_2d_node(
    t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> NodeRun:
    """``XNNDepthwiseConv2d`` as the grouped convolution it is (groups = channels): the generic dwconv kernel
    (fp32, fp16 or static qint8; :mod:`kleidiref.fallbacks.dwconv` says which XNNPACK kernel and steps)."""
    f = node.fields
    x, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    w = np.ascontiguousarray(np.transpose(vals[f["filter_id"]], (3, 1, 2, 0)))  # [1,kh,kw,C*m] -> [C*m,kh,kw,1]
    op = prepare_convolution_2d(
        w,
        bias(graph, f),
        input_shape=x.shape,
        input_dtype=x.dtype,
        **_conv_geometry(f),
        filter_quant=quant_params(graph.value(f["filter_id"])),
        target=t,
        **kw,
        **out_quant(graph.value(f["output_id"])),
        **clamp_kwargs(node),
    )
    return bind_prepared(op, f["input1_id"])


fully_connected_node = handler_of(prepare_fully_connected_node)
convolution_2d_node = handler_of(prepare_convolution_2d_node)
batch_matrix_multiply_node = handler_of(prepare_batch_matrix_multiply_node)
depthwise_convolution_2d_node = handler_of(prepare_depthwise_convolution_2d_node)
