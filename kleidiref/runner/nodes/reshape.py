"""Copies: ``XNNStaticReshape`` and ``XNNStaticSlice``, exact (no arithmetic).

XNNPACK ``92a7ad501b``: ``xnn_define_static_reshape`` (``src/subgraph/copy.c``) runs the ``Static Reshape (NC)``
copy operator (``xnn_xx_copy`` / a no-op when in place); ``xnn_define_static_slice`` (``src/subgraph/static-
slice.c``) runs ``xnn_create_slice_nd_x{8,16,32}`` (``src/operators/slice-nd.c``), a strided copy. Neither
touches the values, so both are the same on every CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import pte
from ...targets import Target
from .common import Dynamic

__all__ = ["static_reshape_node", "static_slice_node"]


def _input(node: pte.XnnNode, vals: Mapping[int, Any]) -> Any:
    x = vals[node.fields["input_id"]]
    if isinstance(x, Dynamic):
        raise NotImplementedError(f"{node.type} (node {node.index}) of a dynamically quantized (qdint8) value")
    return np.asarray(x)


def static_reshape_node(
    _t: Target, _graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> tuple[Any, str]:
    x = _input(node, vals)
    shape = [int(d) for d in node.fields["new_shape"]][: int(node.fields["num_dims"])]
    # xnn_define_static_reshape: a 0 dimension is inferred from the others (at most one).
    if shape.count(0) > 1:
        raise ValueError(f"XNNStaticReshape (node {node.index}): more than one inferred (0) dimension in {shape}")
    known = int(np.prod([d for d in shape if d != 0], dtype=np.int64))
    if 0 in shape:
        if known == 0 or x.size % known:
            raise ValueError(f"XNNStaticReshape (node {node.index}): {x.shape} does not fit {shape}")
        shape[shape.index(0)] = x.size // known
    elif known != x.size:
        raise ValueError(f"XNNStaticReshape (node {node.index}): {x.shape} ({x.size} elements) into {shape}")
    return np.ascontiguousarray(x.reshape(shape)), "Static Reshape (NC): xnn_xx_copy, exact"


def static_slice_node(_t: Target, _graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    x = _input(node, vals)
    f = node.fields
    n = int(f["num_dims"])
    offsets, sizes = [int(v) for v in f["offsets"]][:n], [int(v) for v in f["sizes"]][:n]
    if n != x.ndim or len(offsets) != n or len(sizes) != n:
        raise ValueError(
            f"XNNStaticSlice (node {node.index}): {n} dims, offsets {offsets}, sizes {sizes}, input {x.shape}"
        )
    index = []
    for d, (o, s, dim) in enumerate(zip(offsets, sizes, x.shape, strict=True)):
        if s == 0:  # reshape_slice_nd (slice-nd.c) then skips the operator: the output is never written
            raise NotImplementedError(f"XNNStaticSlice (node {node.index}): a size of 0 (XNNPACK skips the copy)")
        end = o + s
        if not 0 <= o < end <= dim:  # reshape_slice_nd's checks
            raise ValueError(f"XNNStaticSlice (node {node.index}): dim {d}: offset {o} size {s} outside {dim}")
        index.append(slice(o, end))
    bits = 8 * x.dtype.itemsize
    return np.ascontiguousarray(x[tuple(index)]), f"xnn_create_slice_nd_x{bits} (slice-nd.c): exact copy"
