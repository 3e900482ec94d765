"""Runtime shapes of an XNNGraph's values, propagated from its inputs through its nodes.

The dims an ``XNNTensorValue`` stores are not always those at run time: XNNPACK recomputes every
internal value's shape in ``xnn_reshape_runtime`` from the external inputs (each operator's reshape
function in ``src/subgraph/*.c``). A case seen in ExecuTorch exports: a dynamically quantized
convolution's ``qdint8`` value, made by a Convert after the NCHW->NHWC StaticTranspose, keeps the NCHW
dims. :func:`runtime_shapes` redoes the propagation with XNNPACK's output-size formulas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..conv import conv_output_size, deconv_output_size
from .flatbuffer import PteError
from .program import Program
from .xnngraph import XnnGraph, XnnNode, XnnValue

__all__ = ["deconv_output_size", "program_shapes", "runtime_shapes"]

Shape = tuple[int, ...]


def _out(size: int, kernel: int, stride: int, dilation: int, pad_before: int, pad_after: int) -> int:
    """One convolution or pooling output size (:func:`kleidiref.conv.conv_output_size` of the padded input)."""
    return max(0, conv_output_size(size + pad_before + pad_after, kernel, dilation, stride))


def _broadcast(a: Shape, b: Shape) -> Shape:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            raise ValueError(f"shapes {a} and {b} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def _fc(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    w = s(f["filter_id"])
    # XNN_FLAG_TRANSPOSE_WEIGHTS (1): the filter is [K, N] instead of [N, K].
    n = w[1] if f["flags"] & 1 else w[0]
    return (*s(f["input1_id"])[:-1], n)


def _conv(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    n, h, w, _ = s(f["input1_id"])
    oh = _out(
        h,
        f["kernel_height"],
        f["subsampling_height"],
        f["dilation_height"],
        f["padding_top"],
        f["padding_bottom"],
    )
    ow = _out(w, f["kernel_width"], f["subsampling_width"], f["dilation_width"], f["padding_left"], f["padding_right"])
    return (n, oh, ow, f["groups"] * f["group_output_channels"])


def _deconv(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    n, h, w, _ = s(f["input1_id"])
    oh = deconv_output_size(
        h,
        f["kernel_height"],
        f["subsampling_height"],
        f["dilation_height"],
        f["adjustment_height"],
        f["padding_top"] + f["padding_bottom"],
    )
    ow = deconv_output_size(
        w,
        f["kernel_width"],
        f["subsampling_width"],
        f["dilation_width"],
        f["adjustment_width"],
        f["padding_left"] + f["padding_right"],
    )
    return (n, oh, ow, f["groups"] * f["group_output_channels"])


def _bmm(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    a, b = s(f["input1_id"]), s(f["input2_id"])
    # XNN_FLAG_TRANSPOSE_B (1): the second input is [..., N, K].
    n = b[-2] if f["flags"] & 1 else b[-1]
    return (*_broadcast(a[:-2], b[:-2]), a[-2], n)


def _pool(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    n, h, w, c = s(f["input_id"])
    oh = _out(h, f["pooling_height"], f["stride_height"], f["dilation_height"], f["padding_top"], f["padding_bottom"])
    ow = _out(w, f["pooling_width"], f["stride_width"], f["dilation_width"], f["padding_left"], f["padding_right"])
    return (n, oh, ow, c)


def _argmax_pool(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    n, h, w, c = s(f["input_id"])
    ph, pw = f["pooling_height"], f["pooling_width"]  # the stride is the pooling size
    oh = _out(h, ph, ph, 1, f["padding_top"], f["padding_bottom"])
    return (n, oh, _out(w, pw, pw, 1, f["padding_left"], f["padding_right"]), c)


def _reshape(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    # Note: a zero in new_shape is inferred from the element count (XNNPACK test/static-reshape.cc sets
    # at most one dimension to zero); the stored dims never carry -1.
    src = s(f["input_id"])
    new = list(f["new_shape"])
    total = 1
    for d in src:
        total *= d
    if new.count(0) == 1:
        known = 1
        for d in new:
            known *= d or 1
        new[new.index(0)] = total // known if known else 0
    return tuple(new)


def _transpose(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    src = s(f["input_id"])
    perm = f["perm"]
    if sorted(perm) != list(range(len(src))):
        raise ValueError(f"perm {perm} is not a permutation of {len(src)} dims")
    return tuple(src[p] for p in perm)


def _pad(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    src = s(f["input_id"])
    return tuple(d + a + b for d, a, b in zip(src, f["pre_paddings"], f["post_paddings"], strict=True))


def _slice(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    src = s(f["input_id"])
    # A zero size means "to the end" (XNNPACK src/subgraph/static-slice.c).
    return tuple(n or d - o for d, o, n in zip(src, f["offsets"], f["sizes"], strict=True))


def _concat(node: XnnNode, s: Callable[[int], Shape]) -> Shape:
    shapes = [s(i) for i in node.inputs]
    axis = node.fields["axis"]
    first = shapes[0]
    return (*first[:axis], sum(sh[axis] for sh in shapes), *first[axis + 1 :])


def _sdpa(f: Mapping[str, Any], s: Callable[[int], Shape]) -> Shape:
    return (*s(f["query_id"])[:-1], s(f["value_id"])[-1])


_RULES: dict[str, Callable[[Mapping[str, Any], Callable[[int], Shape]], Shape]] = {
    "XNNFullyConnected": _fc,
    "XNNConv2d": _conv,
    "XNNDepthwiseConv2d": _conv,
    "XNNConvTranspose2d": _deconv,
    "XNNBatchMatrixMultiply": _bmm,
    "XNNAvgPooling2d": _pool,
    "XNNMaxPooling2d": _pool,
    "XNNArgMaxPooling2d": _argmax_pool,
    "XNNStaticReshape": _reshape,
    "XNNStaticTranspose": _transpose,
    "XNNStaticConstantPad": _pad,
    "XNNStaticSlice": _slice,
    "XNNScaledDotProductAttention": _sdpa,
    "XNNGlobalAvgPooling2d": lambda f, s: (s(f["input_id"])[0], 1, 1, s(f["input_id"])[-1]),
    "XNNStaticResizeBilinear2D": lambda f, s: (
        s(f["input_id"])[0],
        f["new_height"],
        f["new_width"],
        s(f["input_id"])[-1],
    ),
    "XNNPReLU": lambda f, s: s(f["input1_id"]),
}
_ELEMENTWISE2 = frozenset({"XNNAdd", "XNNDiv", "XNNMinimum", "XNNMaximum", "XNNMultiply", "XNNSubtract"})


def _node_shape(node: XnnNode, s: Callable[[int], Shape]) -> Shape | None:
    f = node.fields
    if node.type in _RULES:
        return _RULES[node.type](f, s)
    if node.type.startswith("XNNConcatenate"):
        return _concat(node, s)
    if node.type in _ELEMENTWISE2:
        return _broadcast(s(f["input1_id"]), s(f["input2_id"]))
    if "input_id" in f:  # unary nodes (_XNNNode1x1, ELU, LeakyReLU): the input's shape
        return s(f["input_id"])
    return None


def runtime_shapes(
    graph: XnnGraph,
    input_shapes: Sequence[Sequence[int]] | Mapping[int, Sequence[int]] | None = None,
) -> tuple[Shape, ...]:
    """Each value's shape at run time (indexed by value id).

    ``input_shapes`` gives the external inputs' shapes, in ``graph.input_ids`` order (for a delegate that
    takes the whole model, the program's input order) or as ``{value_id: shape}``; missing ones keep
    their stored dims. Values no node produces (inputs, constants) keep their stored dims; each node's
    outputs get XNNPACK's computed shape (nodes of kinds without a rule keep the stored dims).
    Raises :class:`~kleidiref.pte.PteError` when the graph's shapes are inconsistent.
    """
    shapes = [tuple(v.dims) for v in graph.values]
    if input_shapes is not None:
        if isinstance(input_shapes, Mapping):
            given = input_shapes
        elif len(input_shapes) != len(graph.input_ids):
            raise ValueError(f"{len(input_shapes)} input shapes for a graph of {len(graph.input_ids)} inputs")
        else:
            given = dict(zip(graph.input_ids, input_shapes, strict=True))
        for vid, shape in given.items():
            graph.value(vid)
            shapes[vid] = tuple(int(d) for d in shape)
    for node in graph.nodes:
        try:
            out = _node_shape(node, lambda i: shapes[i])
        except (IndexError, KeyError, ValueError, ZeroDivisionError) as exc:
            raise PteError(f"XNNGraph.xnodes[{node.index}] ({node.type}): cannot propagate shapes: {exc}") from exc
        if out is not None:
            for o in node.outputs[:1]:
                shapes[o] = out
            if node.type == "XNNArgMaxPooling2d":
                shapes[node.fields["output_index_id"]] = out
    return tuple(shapes)


def program_shapes(
    program: Program,
    input_shapes: Sequence[Sequence[int]] | None = None,
    plan: str = "forward",
) -> dict[int, tuple[Shape, ...]]:
    """Runtime shapes of every XNNPACK delegate of a plan, from the program's input shapes.

    Returns ``{delegate index: runtime_shapes(graph)}``. ``input_shapes`` are the plan's inputs in order
    (default: the sizes stored in the program). A delegate call's argument ``e`` feeds the graph value whose
    ``external_id`` is ``e`` (``backends/xnnpack/runtime/XNNExecutor.cpp`` ``prepare_args``); delegates are
    followed in call order, so one delegate's outputs give the next one's inputs. An argument no delegate or
    program input gives a shape to keeps the sizes stored in the program.
    """
    p = program.plan(plan)
    known: dict[int, Shape] = {}
    if input_shapes is not None:
        if len(input_shapes) != len(p.inputs):
            raise ValueError(f"{len(input_shapes)} input shapes for a plan of {len(p.inputs)} inputs")
        known = {e: tuple(int(d) for d in s) for e, s in zip(p.inputs, input_shapes, strict=True)}
    out: dict[int, tuple[Shape, ...]] = {}
    for call in p.instructions:
        if call.kind != "DelegateCall" or p.delegates[call.index].graph is None:
            continue
        graph = p.delegates[call.index].graph
        assert graph is not None

        def evalue(v: XnnValue, args: tuple[int, ...] = call.args) -> int:
            if not 0 <= v.external_id < len(args) or not 0 <= args[v.external_id] < len(p.values):
                raise PteError(f"XNNGraph value {v.id}: external id {v.external_id} names no delegate argument")
            return args[v.external_id]

        given = {}
        for v in graph.values:
            if v.is_external_input:
                e = evalue(v)
                given[v.id] = known.get(e, p.values[e].sizes or v.dims)
        shapes = runtime_shapes(graph, given)
        for v in graph.values:
            if v.is_external_output:
                known[evalue(v)] = shapes[v.id]
        out[call.index] = shapes
    return out
