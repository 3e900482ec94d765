"""``XNNStaticTranspose``: ``xnn_x{8,16,32}_transposec`` (XNNPACK ``src/operators/transpose-nd.c``), an exact
copy in the permuted order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import pte
from ...targets import Target
from .common import Dynamic

__all__ = ["static_transpose_node"]


def static_transpose_node(
    _t: Target, _graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> tuple[Any, str]:
    x = vals[node.fields["input_id"]]
    if isinstance(x, Dynamic):
        raise NotImplementedError("XNNStaticTranspose of a dynamically quantized (qdint8) value")
    perm = tuple(node.fields["perm"])[: x.ndim]
    bits = 8 * x.dtype.itemsize
    return np.ascontiguousarray(np.transpose(x, perm)), f"xnn_x{bits}_transposec (transpose-nd.c): exact copy"
