"""``XNNConvTranspose2d``: :func:`kleidiref.ops.prepare_deconvolution_2d` with the node's stored filter, bias,
quantization and output clamp (``subsampling_*`` are the upsampling, ``adjustment_*`` the extra output).

The filter is stored [O, kh, kw, I/groups] (``xnn_define_deconvolution_2d``'s layout, as ExecuTorch's
XNNPACK serializer writes it), the layout :func:`~kleidiref.ops.deconvolution_2d` takes. Like the GEMM-shaped
nodes it is a preparer (the decision taken once per activation shape and dtype); the handler is
prepare-then-call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import pte
from ...ops import prepare_deconvolution_2d
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

__all__ = ["deconvolution_2d_node", "prepare_deconvolution_2d_node"]


def prepare_deconvolution_2d_node(
    t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> NodeRun:
    f = node.fields
    x, kw = activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    op = prepare_deconvolution_2d(
        vals[f["filter_id"]],
        bias(graph, f),
        input_shape=x.shape,
        input_dtype=x.dtype,
        padding=(f["padding_top"], f["padding_right"], f["padding_bottom"], f["padding_left"]),
        adjustment=(f["adjustment_height"], f["adjustment_width"]),
        upsampling=(f["subsampling_height"], f["subsampling_width"]),
        dilation=(f["dilation_height"], f["dilation_width"]),
        groups=f["groups"],
        filter_quant=quant_params(graph.value(f["filter_id"])),
        target=t,
        **kw,
        **out_quant(graph.value(f["output_id"])),
        **clamp_kwargs(node),
    )
    check_supported(op, node)
    return bind_prepared(op, f["input1_id"])


deconvolution_2d_node = handler_of(prepare_deconvolution_2d_node)
