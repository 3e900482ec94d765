"""The public ops: build the XNNPACK node from numpy arrays, decide, run the registered adapter.

Shapes, datatypes and quantization come in; :func:`kleidiref.dispatch.decide` names the config
and kernel; :func:`kleidiref.ops.registry.prepare` packs the weights; the prepared adapter computes
the output; an fp32 result of an fp16 / bf16 node (XNNPACK's fp32 rewrite) is converted back to the
node's type here.

Each op has a prepared form, as XNNPACK creates an operator once and runs it many times:
``prepare_fully_connected(filter, bias, input_shape=..., input_dtype=..., ...)`` takes the decision and
packs the weights once and returns a :class:`PreparedOp` to call on each activation of that shape and
dtype. The one-shot ops are prepare-then-call (one code path, the same bits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..conv import conv_channels, conv_output_size, deconv_geometry
from ..dispatch import ConvParams, Decision, Node, Platform, TensorSpec, decide
from ..targets import Target, resolve_target
from ..validate import check_alloc, check_bool, check_output_range
from .deconv_runners import DeconvCall
from .operands import (
    Call,
    QuantParams,
    act_dtype,
    bias_spec,
    check_array,
    check_quant,
    filter_dtype,
    out_dtype,
    scale_tuple,
    to_out_dtype,
)
from .registry import Prepared, prepare, run_deconvolution

__all__ = [
    "OpResult",
    "PreparedOp",
    "batch_matrix_multiply",
    "convolution_2d",
    "deconvolution_2d",
    "fully_connected",
    "prepare_batch_matrix_multiply",
    "prepare_convolution_2d",
    "prepare_deconvolution_2d",
    "prepare_fully_connected",
]


@dataclasses.dataclass(frozen=True)
class OpResult:
    """The output XNNPACK would produce, the dispatch decision, and how it was emulated."""

    output: NDArray[Any]
    decision: Decision
    #: ``variant:<module>`` or ``fallback:<function>(kernel)``; notes for approximations.
    emulation: str

    def __iter__(self) -> Iterator[Any]:
        yield self.output
        yield self.decision


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedOp:
    """An op prepared once for one input shape and dtype: the decision taken, the weights packed.

    ``prepared(x)`` gives the :class:`OpResult` the one-shot op gives for ``x`` (bit for bit; the
    one-shot op is this, prepared for one call). Nothing in it changes after construction (the
    packed weights are immutable bytes; their decodings are cached on first use, and two threads
    computing one at the same time store the same value), so it may be called from several threads.
    """

    decision: Decision
    input_shape: tuple[int, ...]
    input_dtype: np.dtype[Any]
    #: The prepared computation on a checked activation.
    bound: Callable[[NDArray[Any]], OpResult] = dataclasses.field(repr=False)

    def __call__(self, input: NDArray[Any]) -> OpResult:
        x = check_array("input", input)
        if x.shape != self.input_shape or x.dtype != self.input_dtype:
            raise ValueError(
                f"this op was prepared for input {self.input_dtype}{list(self.input_shape)}, "
                f"got {x.dtype}{list(x.shape)} (prepare it again for another shape or dtype)"
            )
        return self.bound(x)


def _input_spec(shape: Sequence[int], dtype: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """A prepared op's input shape and dtype, checked."""
    if not isinstance(shape, (tuple, list)) or any(
        isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0 for v in shape
    ):
        raise TypeError(f"input_shape must be a tuple of ints >= 0, got {shape!r}")
    return tuple(int(v) for v in shape), np.dtype(dtype)


def _placeholder(shape: tuple[int, ...], dt: np.dtype[Any]) -> NDArray[Any]:
    """A zero-row stand-in for the activation in a preparer's call (preparers never read it)."""
    return np.empty((0, *shape[1:]), dt)


def _run_in_node_type(kernel: Prepared, c: Call, in_dt: str, out_dt: str) -> tuple[NDArray[Any], str]:
    """The prepared adapter's output, in the node's output type."""
    out, how = kernel(c)
    res = to_out_dtype(out, out_dt)
    if in_dt == "qdint8" and res.dtype != out.dtype:
        # XNNPACK's fp16 fallback rewrote this fp16-output node to fp32 (no pf16 config): fp16 ->
        # fp32 convert in (exact), f32 qd8 GEMM, fp32 -> fp16 convert out (RNE).
        how += " + fp16 converts (cvt_to_fp32 rewrite)"
    return res, how


def _check_out_quant(out_dt: str, output_quant: QuantParams | None, what: str) -> None:
    if out_dt in ("qint8", "quint8") and output_quant is None:
        raise ValueError(f"a {out_dt} {what} needs output_quant=QuantParams(scale, zero_point)")


def _zp_of(q: QuantParams | None) -> int | None:
    """An activation's zero point as the node's tensor definition carries it (checked there)."""
    if q is None:
        return None
    if isinstance(q.zero_point, (bool, np.bool_)) or not isinstance(q.zero_point, (int, np.integer)):
        raise TypeError(f"zero_point must be an int, got {type(q.zero_point).__name__}")
    return int(q.zero_point)


def _check_node_size(node: Node) -> None:
    """Refuse a node whose run would allocate above the memory limit (:mod:`kleidiref.limits`):
    the output and the kernels' temporaries (a few float32/int32 copies of it), the packed and
    decoded weights, and for a convolution the gathered input patches (one per output pixel)."""
    out = tuple(node.output.shape)
    parts: list[tuple[tuple[int, ...], Any]] = [(out, np.float64), (out, np.float64)]
    parts.append(((3, *node.filter.shape), np.float32))
    if node.convolution is not None:
        kh, kw = node.convolution.kernel
        parts.append(((*out[:-1], kh * kw, int(node.input.shape[-1])), np.float32))
    check_alloc(f"{node.op} with output {out}", *parts)


def _filter_spec(k_dt: str, w: NDArray[Any], quant: QuantParams | None) -> TensorSpec:
    zp = quant.zero_point if quant is not None and k_dt in ("qbint4", "qcint4") else None
    block = None if quant is None else quant.block_size
    return TensorSpec(k_dt, tuple(w.shape), static=True, zero_point=zp, block_size=block, scale=scale_tuple(quant))


def prepare_fully_connected(
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    input_shape: Sequence[int],
    input_dtype: Any = np.float32,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    transpose_weights: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> PreparedOp:
    """:func:`fully_connected` prepared once for inputs of ``input_shape`` and ``input_dtype``."""
    t = resolve_target(target)
    check_output_range(output_min, output_max, op="xnn_define_fully_connected")
    transpose_weights = check_bool("transpose_weights", transpose_weights)
    shape, dt = _input_spec(input_shape, input_dtype)
    w = check_array("filter", filter)
    b = None if bias is None else check_array("bias", bias)
    input_quant, filter_quant = check_quant("input_quant", input_quant), check_quant("filter_quant", filter_quant)
    output_quant = check_quant("output_quant", output_quant)
    in_dt = act_dtype(dt, input_quant, check_bool("dynamic", dynamic))
    k_dt = filter_dtype(w, filter_quant)
    out_dt = out_dtype(in_dt, dt)
    _check_out_quant(out_dt, output_quant, "fully-connected node")
    n = w.shape[1] if transpose_weights and w.ndim == 2 else w.shape[0]
    node = Node(
        op="fully_connected",
        input=TensorSpec(in_dt, shape, scale=scale_tuple(input_quant), zero_point=_zp_of(input_quant)),
        filter=_filter_spec(k_dt, w, filter_quant),
        output=TensorSpec(out_dt, (*shape[:-1], n), scale=scale_tuple(output_quant), zero_point=_zp_of(output_quant)),
        bias=bias_spec(b),
        flags=("transpose_weights",) if transpose_weights else (),
    )
    _check_node_size(node)
    d = decide(node, t, platform=platform)
    w2 = np.ascontiguousarray(w.T) if transpose_weights else w
    k = shape[-1]
    tmpl = Call(d, t, _placeholder((1, k), dt), w2, b, input_quant, filter_quant, output_quant, output_min, output_max)
    kernel = prepare(tmpl)

    def bound(x: NDArray[Any]) -> OpResult:
        out, how = _run_in_node_type(kernel, dataclasses.replace(tmpl, x=x.reshape(-1, k)), in_dt, out_dt)
        return OpResult(out.reshape(*shape[:-1], w2.shape[0]), d, how)

    return PreparedOp(d, shape, dt, bound)


def fully_connected(
    input: NDArray[Any],
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    transpose_weights: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> OpResult:
    """``XNNFullyConnected``: ``input`` [..., K] x ``filter`` [N, K] ([K, N] with ``transpose_weights``)."""
    x = check_array("input", input)
    return prepare_fully_connected(
        filter,
        bias,
        input_shape=x.shape,
        input_dtype=x.dtype,
        input_quant=input_quant,
        filter_quant=filter_quant,
        output_quant=output_quant,
        dynamic=dynamic,
        transpose_weights=transpose_weights,
        output_min=output_min,
        output_max=output_max,
        target=target,
        platform=platform,
    )(x)


def _ints(name: str, v: object, n: int, lo: int) -> tuple[int, ...]:
    """``n`` ints >= ``lo`` (a stride, dilation or padding argument)."""
    if not isinstance(v, (tuple, list)) or len(v) != n:
        raise TypeError(f"{name} must be a tuple of {n} ints, got {v!r}")
    if any(isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) for x in v):
        raise TypeError(f"{name} must be a tuple of {n} ints, got {v!r}")
    if any(int(x) < lo for x in v):
        raise ValueError(f"{name} values must be >= {lo}, got {v!r}")
    return tuple(int(x) for x in v)


def _conv_params(
    w: NDArray[Any],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int, int, int],
    groups: int,
) -> ConvParams:
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be an int >= 1, got {groups!r}")
    s, d, p = _ints("stride", stride, 2, 1), _ints("dilation", dilation, 2, 1), _ints("padding", padding, 4, 0)
    return ConvParams(
        kernel=(w.shape[1], w.shape[2]),
        stride=(s[0], s[1]),
        dilation=(d[0], d[1]),
        padding=(p[0], p[1], p[2], p[3]),
        groups=int(groups),
    )


def _conv_out_hw(shape: tuple[int, ...], c: ConvParams) -> tuple[int, int]:
    pt, pr, pb, pl = c.padding
    ho = conv_output_size(shape[1] + pt + pb, c.kernel[0], c.dilation[0], c.stride[0])
    wo = conv_output_size(shape[2] + pl + pr, c.kernel[1], c.dilation[1], c.stride[1])
    return ho, wo


def prepare_convolution_2d(
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    input_shape: Sequence[int],
    input_dtype: Any = np.float32,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> PreparedOp:
    """:func:`convolution_2d` prepared once for NHWC inputs of ``input_shape`` and ``input_dtype``."""
    t = resolve_target(target)
    check_output_range(output_min, output_max, op="xnn_define_convolution_2d")
    shape, dt = _input_spec(input_shape, input_dtype)
    w = check_array("filter", filter)
    b = None if bias is None else check_array("bias", bias)
    if len(shape) != 4 or w.ndim != 4:
        raise ValueError(f"input must be NHWC and filter [O, kh, kw, C/groups]; got {shape}, {w.shape}")
    input_quant, filter_quant = check_quant("input_quant", input_quant), check_quant("filter_quant", filter_quant)
    output_quant = check_quant("output_quant", output_quant)
    in_dt = act_dtype(dt, input_quant, check_bool("dynamic", dynamic))
    k_dt = filter_dtype(w, filter_quant)
    if k_dt == "qbint4":
        raise ValueError("4-bit block-wise filters are fully-connected only")
    out_dt = out_dtype(in_dt, dt)
    _check_out_quant(out_dt, output_quant, "convolution")
    conv = _conv_params(w, stride, dilation, padding, groups)
    node = Node(
        op="convolution_2d",
        input=TensorSpec(in_dt, shape, scale=scale_tuple(input_quant), zero_point=_zp_of(input_quant)),
        filter=TensorSpec(k_dt, tuple(w.shape), static=True, scale=scale_tuple(filter_quant)),
        output=TensorSpec(
            out_dt,
            (shape[0], *_conv_out_hw(shape, conv), w.shape[0]),
            scale=scale_tuple(output_quant),
            zero_point=_zp_of(output_quant),
        ),
        bias=bias_spec(b),
        convolution=conv,
    )
    _check_node_size(node)
    d = decide(node, t, platform=platform)
    quants = (input_quant, filter_quant, output_quant)
    if d.rewritten_to_fc:
        c = shape[-1]
        w2 = w.reshape(w.shape[0], -1)
        tmpl = Call(d, t, _placeholder((1, c), dt), w2, b, *quants, output_min, output_max)
        fc_kernel = prepare(tmpl)

        def bound_fc(x: NDArray[Any]) -> OpResult:
            out, how = _run_in_node_type(fc_kernel, dataclasses.replace(tmpl, x=x.reshape(-1, c)), in_dt, out_dt)
            return OpResult(out.reshape(*shape[:3], w.shape[0]), d, how)

        return PreparedOp(d, shape, dt, bound_fc)
    ctmpl = Call(d, t, _placeholder(shape, dt), w, b, *quants, output_min, output_max, conv)
    kernel = prepare(ctmpl)

    def bound(x: NDArray[Any]) -> OpResult:
        out, how = _run_in_node_type(kernel, dataclasses.replace(ctmpl, x=x), in_dt, out_dt)
        return OpResult(out, d, how)

    return PreparedOp(d, shape, dt, bound)


def convolution_2d(
    input: NDArray[Any],
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> OpResult:
    """``XNNConv2d``: ``input`` NHWC, ``filter`` [O, kh, kw, C/groups]; padding [top, right, bottom, left].

    A 1x1 convolution that XNNPACK rewrites to a fully-connected node runs through the FC path
    (a dynamically quantized input is then quantized per pixel row). ``dynamic=True`` quantizes
    per image otherwise (ExecuTorch's ``num_nonbatch_dims = 3``).
    """
    x = check_array("input", input)
    return prepare_convolution_2d(
        filter,
        bias,
        input_shape=x.shape,
        input_dtype=x.dtype,
        stride=stride,
        dilation=dilation,
        padding=padding,
        groups=groups,
        input_quant=input_quant,
        filter_quant=filter_quant,
        output_quant=output_quant,
        dynamic=dynamic,
        output_min=output_min,
        output_max=output_max,
        target=target,
        platform=platform,
    )(x)


def prepare_deconvolution_2d(
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    input_shape: Sequence[int],
    input_dtype: Any = np.float32,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    adjustment: tuple[int, int] = (0, 0),
    upsampling: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> PreparedOp:
    """:func:`deconvolution_2d` prepared once (checks and decision) for NHWC inputs of ``input_shape`` and
    ``input_dtype``."""
    t = resolve_target(target)
    check_output_range(output_min, output_max, op="xnn_define_deconvolution_2d")
    shape, dt = _input_spec(input_shape, input_dtype)
    w = check_array("filter", filter)
    b = None if bias is None else check_array("bias", bias)
    if len(shape) != 4 or w.ndim != 4:
        raise ValueError(f"input must be NHWC and filter [O, kh, kw, C/groups]; got {shape}, {w.shape}")
    input_quant, filter_quant = check_quant("input_quant", input_quant), check_quant("filter_quant", filter_quant)
    output_quant = check_quant("output_quant", output_quant)
    in_dt = act_dtype(dt, input_quant, check_bool("dynamic", dynamic))
    k_dt = filter_dtype(w, filter_quant)
    if k_dt in ("qbint4", "qcint4"):
        raise ValueError(f"xnn_define_deconvolution_2d takes no 4-bit ({k_dt}) filter: unsupported Value datatype")
    out_dt = out_dtype(in_dt, dt)
    _check_out_quant(out_dt, output_quant, "deconvolution")
    conv = _conv_params(w, upsampling, dilation, padding, groups)
    adj = _ints("adjustment", adjustment, 2, 0)
    conv_channels(shape[3], w.shape[0], w.shape[3], conv.groups)
    geom = deconv_geometry(
        shape[1], shape[2], w.shape[1], w.shape[2],
        upsampling=conv.stride, dilation=conv.dilation, padding=conv.padding, adjustment=adj,
    )  # fmt: skip
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape ({w.shape[0]},) (one per output channel), got {b.shape}")
    node = Node(
        op="deconvolution_2d",
        input=TensorSpec(in_dt, shape, scale=scale_tuple(input_quant), zero_point=_zp_of(input_quant)),
        filter=TensorSpec(k_dt, tuple(w.shape), static=True, scale=scale_tuple(filter_quant)),
        output=TensorSpec(
            out_dt,
            (shape[0], geom.hout, geom.wout, w.shape[0]),
            scale=scale_tuple(output_quant),
            zero_point=_zp_of(output_quant),
        ),
        bias=bias_spec(b),
        convolution=conv,
    )
    _check_node_size(node)
    d = decide(node, t, platform=platform)
    quants = (input_quant, filter_quant, output_quant)
    tmpl = DeconvCall(d, t, _placeholder(shape, dt), w, b, *quants, output_min, output_max, conv, geom)

    def bound(x: NDArray[Any]) -> OpResult:
        out, how = run_deconvolution(dataclasses.replace(tmpl, x=x))
        return OpResult(to_out_dtype(out, out_dt), d, how)

    return PreparedOp(d, shape, dt, bound)


def deconvolution_2d(
    input: NDArray[Any],
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    adjustment: tuple[int, int] = (0, 0),
    upsampling: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    input_quant: QuantParams | None = None,
    filter_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    output_min: float = -np.inf,
    output_max: float = np.inf,
    target: Target | None = None,
    platform: Platform = "linux",
) -> OpResult:
    """``XNNConvTranspose2d`` (``xnn_define_deconvolution_2d``): ``input`` NHWC, ``filter`` [O, kh, kw, C/groups].

    ``padding`` is (top, right, bottom, left), XNNPACK's order; ``upsampling`` is the (height, width)
    stride of the transposed convolution; ``adjustment`` adds output rows/columns (each < its
    upsampling). The output is [N, Ho, Wo, O] with ``Ho = doz(sh*(H-1) + adj_h + (kh-1)*dh + 1, top +
    bottom)`` (likewise Wo). ``dynamic=True`` quantizes the input per image (``num_nonbatch_dims = 3``).
    XNNPACK runs it per subkernel (``subconv2d``) or over all taps (IGEMM); ``OpResult.emulation``
    names the IGEMM kernel and which.
    """
    x = check_array("input", input)
    return prepare_deconvolution_2d(
        filter,
        bias,
        input_shape=x.shape,
        input_dtype=x.dtype,
        padding=padding,
        adjustment=adjustment,
        upsampling=upsampling,
        dilation=dilation,
        groups=groups,
        input_quant=input_quant,
        filter_quant=filter_quant,
        output_quant=output_quant,
        dynamic=dynamic,
        output_min=output_min,
        output_max=output_max,
        target=target,
        platform=platform,
    )(x)


def _bmm_batch(a: tuple[int, ...], bm: NDArray[Any], transpose_b: bool) -> tuple[int, ...]:
    """The broadcast batch dimensions (the first input's when K does not match: dispatch says why)."""
    k_b = bm.shape[-1] if transpose_b else bm.shape[-2]
    if a[-1] != k_b:
        return tuple(a[:-2])
    return tuple(np.broadcast_shapes(a[:-2], bm.shape[:-2]))


def prepare_batch_matrix_multiply(
    input2: NDArray[Any],
    *,
    input1_shape: Sequence[int],
    input1_dtype: Any = np.float32,
    transpose_b: bool = False,
    input1_quant: QuantParams | None = None,
    input2_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    static_b: bool = False,
    target: Target | None = None,
    platform: Platform = "linux",
) -> PreparedOp:
    """:func:`batch_matrix_multiply` prepared once for ``input2`` (the weights, packed per batch) and first
    inputs of ``input1_shape`` and ``input1_dtype``; the prepared op takes ``input1``."""
    t = resolve_target(target)
    transpose_b, static_b = check_bool("transpose_b", transpose_b), check_bool("static_b", static_b)
    shape, dt = _input_spec(input1_shape, input1_dtype)
    bm = check_array("input2", input2)
    if len(shape) < 2 or bm.ndim < 2:
        raise ValueError(f"inputs must have rank >= 2, got {shape} and {bm.shape}")
    input1_quant, input2_quant = check_quant("input1_quant", input1_quant), check_quant("input2_quant", input2_quant)
    output_quant = check_quant("output_quant", output_quant)
    in_dt = act_dtype(dt, input1_quant, check_bool("dynamic", dynamic))
    k_dt = filter_dtype(bm, input2_quant)
    out_dt = out_dtype(in_dt, dt)
    n = bm.shape[-2] if transpose_b else bm.shape[-1]
    batch = _bmm_batch(shape, bm, transpose_b)
    node = Node(
        op="batch_matrix_multiply",
        input=TensorSpec(in_dt, shape, scale=scale_tuple(input1_quant), zero_point=_zp_of(input1_quant)),
        filter=TensorSpec(k_dt, tuple(bm.shape), static=static_b, scale=scale_tuple(input2_quant)),
        output=TensorSpec(
            out_dt, (*batch, shape[-2], n), scale=scale_tuple(output_quant), zero_point=_zp_of(output_quant)
        ),
        flags=("transpose_b",) if transpose_b else (),
    )
    _check_node_size(node)
    d = decide(node, t, platform=platform)
    bb = np.broadcast_to(bm, (*batch, *bm.shape[-2:]))
    quants = (input1_quant, input2_quant, output_quant)
    prepared: list[tuple[Call, Prepared]] = []
    for idx in np.ndindex(*batch):
        w = np.ascontiguousarray(bb[idx] if transpose_b else bb[idx].T)  # [N, K]
        tmpl = Call(d, t, _placeholder(shape[-2:], dt), w, None, *quants, -np.inf, np.inf)
        prepared.append((tmpl, prepare(tmpl)))

    def bound(a: NDArray[Any]) -> OpResult:
        aa = np.broadcast_to(a, (*batch, *shape[-2:]))
        outs = []
        how = ""
        for idx, (tmpl, kernel) in zip(np.ndindex(*batch), prepared, strict=True):
            out, how = _run_in_node_type(kernel, dataclasses.replace(tmpl, x=aa[idx]), in_dt, out_dt)
            outs.append(out)
        res = np.stack(outs).reshape(*batch, shape[-2], n) if outs else np.zeros((*batch, shape[-2], n))
        return OpResult(res, d, how)

    return PreparedOp(d, shape, dt, bound)


def batch_matrix_multiply(
    input1: NDArray[Any],
    input2: NDArray[Any],
    *,
    transpose_b: bool = False,
    input1_quant: QuantParams | None = None,
    input2_quant: QuantParams | None = None,
    output_quant: QuantParams | None = None,
    dynamic: bool = False,
    static_b: bool = False,
    target: Target | None = None,
    platform: Platform = "linux",
) -> OpResult:
    """``XNNBatchMatrixMultiply``: ``input1`` [..., M, K] x ``input2`` [..., K, N] ([..., N, K] with
    ``transpose_b``); batch dimensions broadcast; no bias, no clamp."""
    a = check_array("input1", input1)
    return prepare_batch_matrix_multiply(
        input2,
        input1_shape=a.shape,
        input1_dtype=a.dtype,
        transpose_b=transpose_b,
        input1_quant=input1_quant,
        input2_quant=input2_quant,
        output_quant=output_quant,
        dynamic=dynamic,
        static_b=static_b,
        target=target,
        platform=platform,
    )(a)
