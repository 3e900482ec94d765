"""The XNNPACK node emulations ``kleidiref run`` executes, one module per node family, and their registry.

To emulate a new node type: write its handler (:data:`~kleidiref.runner.nodes.common.NodeHandler`) in the
module of its family (or a new one), naming the XNNPACK kernel it mirrors in the string it returns, and add
it to :data:`HANDLERS` (a node with weights: a :data:`~kleidiref.runner.nodes.common.NodePreparer` in
:data:`PREPARERS` too, its handler ``handler_of(preparer)``).
A node type missing here is refused by the runner before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from .common import NodeHandler, NodePreparer
from .convert import convert_node
from .deconvolution import deconvolution_2d_node, prepare_deconvolution_2d_node
from .elementwise import add_node, clamp_node
from .gemm import (
    batch_matrix_multiply_node,
    convolution_2d_node,
    depthwise_convolution_2d_node,
    fully_connected_node,
    prepare_batch_matrix_multiply_node,
    prepare_convolution_2d_node,
    prepare_depthwise_convolution_2d_node,
    prepare_fully_connected_node,
)
from .pooling import global_avg_pooling_2d_node
from .reshape import static_reshape_node, static_slice_node
from .transpose import static_transpose_node

__all__ = ["HANDLERS", "PREPARERS", "SUPPORTED_NODE_TYPES"]

#: XNNGraph node type -> its emulation.
HANDLERS: Mapping[str, NodeHandler] = {
    "XNNFullyConnected": fully_connected_node,
    "XNNConv2d": convolution_2d_node,
    "XNNBatchMatrixMultiply": batch_matrix_multiply_node,
    "XNNDepthwiseConv2d": depthwise_convolution_2d_node,
    "XNNStaticTranspose": static_transpose_node,
    "XNNConvert": convert_node,
    "XNNClamp": clamp_node,
    "XNNAdd": add_node,
    "XNNGlobalAvgPooling2d": global_avg_pooling_2d_node,
    "XNNStaticReshape": static_reshape_node,
    "XNNStaticSlice": static_slice_node,
    "XNNConvTranspose2d": deconvolution_2d_node,
}

#: Node types whose weights are packed once per runner (the GEMM-shaped ones): the runner keeps the prepared
#: node per (delegate, node, activation shape and dtype) and runs it on every call; the others run their handler.
PREPARERS: Mapping[str, NodePreparer] = {
    "XNNFullyConnected": prepare_fully_connected_node,
    "XNNConv2d": prepare_convolution_2d_node,
    "XNNBatchMatrixMultiply": prepare_batch_matrix_multiply_node,
    "XNNDepthwiseConv2d": prepare_depthwise_convolution_2d_node,
    "XNNConvTranspose2d": prepare_deconvolution_2d_node,
}

#: XNNGraph node types the runner executes.
SUPPORTED_NODE_TYPES: tuple[str, ...] = tuple(HANDLERS)
