"""An XNNGraph as plain JSON-able data, in the layout of ExecuTorch's serializer debug dump.

``backends/xnnpack/serialization/xnnpack_graph_serialize.py`` (``convert_to_flatbuffer``) logs the graph
it writes as JSON: the dataclasses of ``xnnpack_graph_schema.py`` with unions as ``*_union_type`` plus
``*_union`` and datatypes as ``XNNDatatype`` integers. :func:`graph_to_dict` rebuilds that layout from
a decoded graph, so a decoded ``.pte`` can be compared with such a dump field by field.
"""

from __future__ import annotations

from typing import Any

from .xnngraph import QuantParams, XnnGraph, XnnNode, XnnValue

__all__ = ["graph_to_dict", "node_to_dict", "value_to_dict"]


def _quant_to_dict(q: QuantParams) -> dict[str, Any]:
    if q.kind == "PerTensorQuant":
        return {"scale": q.inline_scale[0], "zero_point": q.zero_point}
    if q.kind == "PerTokenDynamicQuant":
        return {"num_nonbatch_dims": q.num_nonbatch_dims}
    d: dict[str, Any] = {
        "scale": list(q.inline_scale),
        "channel_dim": q.channel_dim,
        "scale_buffer_idx": q.scale_buffer_idx,
        "num_scales": q.num_scales,
    }
    if q.kind == "PerChannelGroupQuant":
        d["group_size"] = q.group_size
        d["scale_bf16"] = None if q.inline_scale_bf16 is None else list(q.inline_scale_bf16)
    return d


def value_to_dict(v: XnnValue) -> dict[str, Any]:
    """One ``XValue`` as the dump shows it."""
    tensor = {
        "datatype": v.datatype,
        "num_dims": v.num_dims,
        "dims": list(v.dims),
        "constant_buffer_idx": v.constant_buffer_idx,
        "external_id": v.external_id,
        "flags": v.flags,
        "id_out": v.id_out,
    }
    if v.quant is None:
        return {"xvalue_union_type": "XNNTensorValue", "xvalue_union": tensor}
    union = {"tensor_value": tensor, "quant_params_type": v.quant.kind, "quant_params": _quant_to_dict(v.quant)}
    return {"xvalue_union_type": "XNNQuantizedTensorValue", "xvalue_union": union}


def node_to_dict(n: XnnNode) -> dict[str, Any]:
    """One ``XNode`` as the dump shows it."""
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in n.fields.items()}
    omm = None
    if n.output_min_max is not None:
        omm = {"output_min": n.output_min_max[0], "output_max": n.output_min_max[1]}
    return {"xnode_union_type": n.type, "xnode_union": fields, "debug_handle": n.debug_handle, "output_min_max": omm}


def graph_to_dict(g: XnnGraph) -> dict[str, Any]:
    """The whole graph as the dump shows it (constant bytes are not part of the dump)."""
    return {
        "version": g.version,
        "xnodes": [node_to_dict(n) for n in g.nodes],
        "xvalues": [value_to_dict(v) for v in g.values],
        "num_externs": g.num_externs,
        "input_ids": list(g.input_ids),
        "output_ids": list(g.output_ids),
        "constant_data": [{"offset": o, "size": s, "named_key": k} for o, s, k in g.constant_data],
    }
