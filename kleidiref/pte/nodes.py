"""GEMM-like XNNGraph nodes as the dispatcher's node descriptions (:class:`kleidiref.dispatch.Node`).

For each ``XNNFullyConnected``, ``XNNConv2d``, ``XNNDepthwiseConv2d``, ``XNNConvTranspose2d`` and
``XNNBatchMatrixMultiply`` of a program, :func:`gemm_nodes` gives the node's datatypes, runtime shapes,
quantization (zero points, block sizes, scales from the weights), flags and convolution parameters in the
dispatcher's terms, plus what produces its input (the packed-LHS pass of XNNPACK looks at it). Nodes the
dispatcher cannot describe keep ``node = None`` and say why in ``unsupported``.

How the runtime defines each node is ``backends/xnnpack/runtime/XNNCompiler.cpp`` (``defineFullyConnectedNode``,
``defineConv2dNode``, ``defineDepthwiseConv2dNode``, ``defineConvTranspose2dNode``,
``defineBatchMatrixMultiplyNode``); value quantization is ``defineTensor`` there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..dispatch import CaseError, ConvParams, Node, TensorSpec
from .program import Program
from .shapes import program_shapes
from .xnngraph import INVALID_ID, XnnGraph, XnnNode, XnnValue

__all__ = ["GEMM_NODE_TYPES", "GemmNode", "gemm_nodes", "tensor_spec", "to_dispatch_node"]

#: XNNGraph node kinds that run a GEMM-like XNNPACK operator.
GEMM_NODE_TYPES: tuple[str, ...] = (
    "XNNFullyConnected",
    "XNNConv2d",
    "XNNDepthwiseConv2d",
    "XNNConvTranspose2d",
    "XNNBatchMatrixMultiply",
)
#: XNNGraph convolution kinds -> the dispatcher's node kind.
_CONV_OPS = {
    "XNNConv2d": "convolution_2d",
    "XNNDepthwiseConv2d": "depthwise_convolution_2d",
    "XNNConvTranspose2d": "deconvolution_2d",
}
_FLAG_TRANSPOSE = 1  # XNN_FLAG_TRANSPOSE_WEIGHTS (FC) and XNN_FLAG_TRANSPOSE_B (BMM) share the bit
_INT4 = ("qcint4", "qbint4")


@dataclass(frozen=True)
class GemmNode:
    """One GEMM-like node of a program and its dispatcher description.

    ``input_producer`` is the node type that writes the node's first input (None for a graph input);
    ``producer_input_datatype`` is, for an ``XNNConvert`` producer, the datatype it converts from.
    ``node`` is None when the dispatcher has no node kind for it (``unsupported`` says why); ``caveat``
    says where the description is only the closest the dispatcher's node kinds allow.
    """

    delegate_index: int
    node_index: int
    node_type: str
    debug_handle: int
    input_producer: str | None
    producer_input_datatype: str | None
    node: Node | None
    unsupported: str | None = None
    caveat: str | None = None


def tensor_spec(value: XnnValue, shape: Sequence[int]) -> TensorSpec:
    """A value as the dispatcher's :class:`TensorSpec` (datatype, runtime shape, quantization, scales).

    Zero points follow ``XNNCompiler.cpp`` ``defineTensor``: per-tensor ones as stored, 8 for the 4-bit
    ``qcint4`` / ``qbint4`` filters, none otherwise. Blockwise scales are the stored bf16 values.
    """
    q = value.quant
    zero_point: int | None = 8 if value.datatype_name in _INT4 else None
    block_size: int | None = None
    scale: float | tuple[float, ...] | None = None
    if q is not None:
        if q.kind == "PerTensorQuant":
            zero_point = q.zero_point
        if q.kind == "PerChannelGroupQuant":
            block_size = q.group_size
        if q.scale is not None:
            s = np.asarray(q.scale, dtype=np.float32)
            scale = float(s) if s.ndim == 0 else tuple(float(x) for x in s.reshape(-1))
    return TensorSpec(
        dtype=value.datatype_name,
        shape=tuple(int(d) for d in shape),
        static=value.is_constant,
        zero_point=zero_point,
        block_size=block_size,
        scale=scale,
    )


def _conv_params(f: Mapping[str, int]) -> ConvParams:
    return ConvParams(
        kernel=(f["kernel_height"], f["kernel_width"]),
        stride=(f["subsampling_height"], f["subsampling_width"]),
        dilation=(f["dilation_height"], f["dilation_width"]),
        padding=(f["padding_top"], f["padding_right"], f["padding_bottom"], f["padding_left"]),
        groups=f["groups"],
    )


def to_dispatch_node(graph: XnnGraph, node: XnnNode, shapes: Sequence[Sequence[int]]) -> Node:
    """The dispatcher's description of one GEMM-like node (``shapes``: :func:`runtime_shapes`).

    Raises ``ValueError`` (the dispatcher's ``CaseError``) for a node it cannot describe.
    """
    f = node.fields

    def spec(value_id: int) -> TensorSpec:
        return tensor_spec(graph.value(value_id), shapes[value_id])

    bias = None if f.get("bias_id", INVALID_ID) == INVALID_ID else spec(f["bias_id"])
    if node.type == "XNNFullyConnected":
        flags = ("transpose_weights",) if f["flags"] & _FLAG_TRANSPOSE else ()
        return Node("fully_connected", spec(f["input1_id"]), spec(f["filter_id"]), spec(f["output_id"]), bias, flags)
    if node.type == "XNNBatchMatrixMultiply":
        flags = ("transpose_b",) if f["flags"] & _FLAG_TRANSPOSE else ()
        return Node(
            "batch_matrix_multiply", spec(f["input1_id"]), spec(f["input2_id"]), spec(f["output_id"]), None, flags
        )
    if node.type in _CONV_OPS:
        filt = spec(f["filter_id"])
        # Note: a depthwise filter is stored [1, kh, kw, C * multiplier] (XNNPACK's depthwise layout); the
        # node description uses the convolution layout [groups * group_output_channels, kh, kw, group_input_channels]
        # for every convolution kind (a deconvolution's subsampling is its stride, its adjustment is in the
        # output shape).
        shape = (
            f["groups"] * f["group_output_channels"],
            f["kernel_height"],
            f["kernel_width"],
            f["group_input_channels"],
        )
        filt = TensorSpec(filt.dtype, shape, filt.static, filt.zero_point, filt.block_size, filt.scale)
        op = _CONV_OPS[node.type]
        return Node(op, spec(f["input1_id"]), filt, spec(f["output_id"]), bias, (), _conv_params(f))
    raise CaseError(f"{node.type} is not described by the dispatcher's node kinds")


def _producer(graph: XnnGraph, node: XnnNode) -> tuple[str | None, str | None]:
    prod = graph.producer(node.inputs[0]) if node.inputs else None
    if prod is None:
        return None, None
    src = graph.value(prod.inputs[0]).datatype_name if prod.type == "XNNConvert" and prod.inputs else None
    return prod.type, src


def gemm_nodes(
    program: Program,
    input_shapes: Sequence[Sequence[int]] | None = None,
    plan: str = "forward",
) -> tuple[GemmNode, ...]:
    """Every GEMM-like node of every XNNPACK delegate of a plan, in delegate then node order.

    ``input_shapes`` are the plan's input shapes (default: as stored; see :func:`program_shapes`).
    """
    out: list[GemmNode] = []
    p = program.plan(plan)
    for k, shapes in sorted(program_shapes(program, input_shapes, plan).items()):
        graph = p.delegates[k].graph
        assert graph is not None
        for node in graph.nodes:
            if node.type not in GEMM_NODE_TYPES:
                continue
            producer, src = _producer(graph, node)
            try:
                desc: Node | None = to_dispatch_node(graph, node, shapes)
                why = None
            except CaseError as exc:
                desc, why = None, str(exc)
            out.append(GemmNode(k, node.index, node.type, node.debug_handle, producer, src, desc, why))
    return tuple(out)
