"""What every node emulation shares: stored quantization as :class:`kleidiref.ops.QuantParams`, the output
clamp, the bias, the deferred dynamic quantization, and XNNPACK's own refusals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ... import pte
from ...ops import OpResult, PreparedOp, QuantParams
from ...targets import Target

__all__ = [
    "Dynamic",
    "NodeHandler",
    "NodePreparer",
    "NodeRun",
    "RefusedByXnnpack",
    "activation",
    "bias",
    "bind_prepared",
    "check_supported",
    "clamp_kwargs",
    "handler_of",
    "out_quant",
    "quant_params",
]

_INT4 = ("qcint4", "qbint4")

#: A node emulation: (target, graph, node, values so far) -> (output, what ran, named after its XNNPACK kernel).
NodeHandler = Callable[[Target, pte.XnnGraph, pte.XnnNode, Mapping[int, Any]], tuple[Any, str]]
#: A prepared node: (values so far) -> (output, what ran), its weights packed once.
NodeRun = Callable[[Mapping[int, Any]], tuple[Any, str]]
#: A node preparer: (target, graph, node, values so far) -> the prepared node. The runner keeps it per node and
#: activation shape and dtype and calls it on every run; the values give the activation's shape and dtype only.
NodePreparer = Callable[[Target, pte.XnnGraph, pte.XnnNode, Mapping[int, Any]], NodeRun]


def bind_prepared(op: PreparedOp, input_id: int) -> NodeRun:
    """A prepared op as a node run: the activation (or the float values a dynamic convert left for the op to
    quantize) read from the values of ``input_id``; the output and what ran out."""

    def run(vals: Mapping[int, Any]) -> tuple[Any, str]:
        x = vals[input_id]
        r = op(x.x if isinstance(x, Dynamic) else x)
        return r.output, r.emulation

    return run


def handler_of(preparer: NodePreparer) -> NodeHandler:
    """The one-shot handler of a preparer: prepare, then call once."""

    def handler(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
        return preparer(t, graph, node, vals)(vals)

    handler.__name__ = preparer.__name__.removeprefix("prepare_")
    return handler


class RefusedByXnnpack(RuntimeError):
    """XNNPACK itself fails on this CPU (the message gives the status and why); the program does not run."""


def check_supported(r: OpResult | PreparedOp, node: pte.XnnNode) -> None:
    """Raise :class:`RefusedByXnnpack` where XNNPACK never enables the decision's config (``Decision.unsupported``)."""
    why = r.decision.unsupported
    if why is not None:
        raise RefusedByXnnpack(f"{node.type} (node {node.index}): {why}")


@dataclass(frozen=True)
class Dynamic:
    """A float activation an ``XNNConvert`` marked for dynamic quantization (done by its GEMM consumer)."""

    x: NDArray[Any]


def quant_params(v: pte.XnnValue) -> QuantParams | None:
    """A stored value's quantization as :class:`kleidiref.ops.QuantParams`."""
    q = v.quant
    if q is None or q.kind == "PerTokenDynamicQuant" or q.scale is None:
        return None
    bits = 4 if v.datatype_name in _INT4 else 8
    zp = 8 if bits == 4 else q.zero_point
    if q.kind == "PerChannelGroupQuant":
        scale = np.ascontiguousarray(q.scale).view(np.uint16)  # bf16 bits, [N, K / group]
        return QuantParams(scale, zp, block_size=q.group_size, bits=bits)
    s = np.asarray(q.scale, dtype=np.float32)
    return QuantParams(float(s) if s.ndim == 0 else s.reshape(-1), zp, bits=bits)


def clamp_kwargs(node: pte.XnnNode) -> dict[str, Any]:
    """The node's output clamp as :mod:`kleidiref.ops` keywords (none stored: unbounded)."""
    lo, hi = node.output_min_max if node.output_min_max is not None else (-np.inf, np.inf)
    return {"output_min": float(lo), "output_max": float(hi)}


def activation(x: Any, v: pte.XnnValue) -> tuple[NDArray[Any], dict[str, Any]]:
    """A GEMM's activation operand: the float values to quantize dynamically, or a static int8 tensor."""
    if isinstance(x, Dynamic):
        return x.x, {"dynamic": True}
    if v.datatype_name in ("qint8", "quint8"):
        return x, {"input_quant": quant_params(v)}
    return x, {}


def out_quant(v: pte.XnnValue) -> dict[str, Any]:
    """A quantized output's parameters as :mod:`kleidiref.ops` keywords."""
    return {"output_quant": quant_params(v)} if v.datatype_name in ("qint8", "quint8") else {}


def bias(graph: pte.XnnGraph, f: Mapping[str, Any]) -> NDArray[Any] | None:
    """The node's stored bias, or None."""
    bid = f.get("bias_id", pte.INVALID_ID)
    return None if bid == pte.INVALID_ID else graph.value(bid).data
