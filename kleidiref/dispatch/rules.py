"""Definition- and creation-time checks: what XNNPACK refuses (:class:`NodeRejected`), never a fallback.

Datatype combinations (``xnn_define_fully_connected`` / ``xnn_define_convolution_2d`` /
``xnn_define_batch_matrix_multiply``), 4-bit zero points, qb4w block sizes and scales
(``check_block_size``, src/operators/fully-connected-nc.c) and the qs8 requantization scale.
"""

from __future__ import annotations

import numpy as np

from ..numerics import bf16_to_f32, f32_to_bf16_rne
from .case import Node, an, bname
from .decision import NodeRejected

__all__ = [
    "check_conv_combo",
    "check_conv_define_datatypes",
    "check_fc_datatypes",
    "check_qb4w",
    "check_qs8_scale",
    "check_quant_params",
    "check_zero_points",
]


#: Zero-point range of each per-tensor quantized datatype (``xnn_define_quantized_tensor_value``).
_ZP_RANGE = {"qint8": (-128, 127), "quint8": (0, 255), "qint32": (0, 0)}
_CHANNELWISE = ("qcint8", "qcint4", "qcint32")
_TINY = float(np.finfo(np.float32).tiny)


def _channels(node: Node) -> int | None:
    """The filter's channel count (the dimension its per-channel scales run along), if the rank allows."""
    shape, flags = node.filter.shape, node.flags
    if len(shape) < 2:
        return None
    if node.op == "batch_matrix_multiply":
        return shape[-2] if "transpose_b" in flags else shape[-1]
    if node.op == "fully_connected" and "transpose_weights" in flags:
        return shape[1]
    return shape[0]


def _check_scale_values(where: str, dtype: str, scale: float | tuple[float, ...], why: list[str]) -> None:
    values = scale if isinstance(scale, tuple) else (scale,)
    with np.errstate(over="ignore"):
        s = np.asarray(values, dtype=np.float64).astype(np.float32)
    bad = ~(np.isfinite(s) & (s >= np.float32(_TINY)))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise NodeRejected(
            f"{where} scale #{i} = {values[i]!r} is rejected at definition: a {dtype} scale must be finite, "
            "normal and > 0 (xnn_define_quantized_tensor_value / xnn_define_channelwise_quantized_tensor_value / "
            "xnn_define_blockwise_quantized_tensor_value: scale <= 0 or !isnormal(scale))",
            why,
        )


def _check_scale_count(node: Node, why: list[str]) -> None:
    """How many scales each kind of tensor carries: one, one per channel, one per block."""
    f, n = node.filter, _channels(node)
    for role in ("input", "output"):
        spec = getattr(node, role)
        if spec.dtype in _ZP_RANGE and isinstance(spec.scale, tuple) and len(spec.scale) != 1:
            raise NodeRejected(
                f"{an(spec.dtype)} {role} is quantized per tensor: one scale, got {len(spec.scale)}", why
            )
    if not isinstance(f.scale, tuple) or len(f.scale) == 1 or n is None:
        return
    want = n
    if f.dtype == "qbint4" and f.block_size and len(f.shape) == 2:
        k = f.shape[0] if "transpose_weights" in node.flags else f.shape[1]
        want = n * (k // f.block_size) if f.block_size > 0 and k % f.block_size == 0 else len(f.scale)
    elif f.dtype not in _CHANNELWISE:
        want = 1
    if len(f.scale) != want:
        raise NodeRejected(
            f"{bname(node)} ({f.dtype}) has {len(f.scale)} scales, expected {want} "
            f"({'one per block: N * K / block_size' if f.dtype == 'qbint4' else 'one per output channel'}; "
            "xnn_define_channelwise/blockwise_quantized_tensor_value)",
            why,
        )


def check_quant_params(node: Node, why: list[str]) -> None:
    """What XNNPACK's tensor definitions refuse, before any operator rule: scales finite, > 0 and
    normal; zero points inside the datatype; as many scales as channels (or blocks)."""
    for role in ("input", "filter", "output", "bias"):
        spec = getattr(node, role)
        if spec is None:
            continue
        if spec.scale is not None:
            _check_scale_values(role if role != "filter" else bname(node), spec.dtype, spec.scale, why)
        lohi = _ZP_RANGE.get(spec.dtype)
        if lohi is not None and spec.zero_point is not None and not lohi[0] <= spec.zero_point <= lohi[1]:
            raise NodeRejected(
                f"{role} zero point {spec.zero_point} is outside the {spec.dtype} range [{lohi[0]}, {lohi[1]}] "
                "(xnn_define_quantized_tensor_value: xnn_status_invalid_parameter)",
                why,
            )
        if spec.dtype == "qcint8" and spec.zero_point not in (None, 0):
            raise NodeRejected(
                f"{role} zero point {spec.zero_point}: qcint8 is symmetric (zero point 0; "
                "xnn_define_channelwise_quantized_tensor_value has none)",
                why,
            )
    _check_scale_count(node, why)


def check_zero_points(node: Node, why: list[str]) -> None:
    f = node.filter
    if f.dtype in ("qbint4", "qcint4"):
        zp = 8 if f.zero_point is None else f.zero_point
        if zp not in (0, 8):
            raise NodeRejected(
                f"xnn_define_fully_connected rejects a {f.dtype} filter with zero point {zp}: 4-bit "
                "filters must "
                "have zero point 0 (signed nibbles) or 8 (unsigned nibbles, what ExecuTorch serializes)",
                why,
            )


def check_qb4w(node: Node, k: int, why: list[str]) -> None:
    """``check_block_size`` (fully-connected-nc.c L597-637): XNN_MIN_BLOCKSIZE = 32."""
    f = node.filter
    bs = f.block_size
    if bs is None:
        raise NodeRejected("a qbint4 filter needs a block_size (xnn_define_blockwise_quantized_tensor_value)", why)
    if bs < 32 or bs % 32:
        raise NodeRejected(
            f"qb4w block size {bs} is rejected at creation: it must be a multiple of 32 and >= 32 "
            "(XNN_MIN_BLOCKSIZE; check_block_size in fully-connected-nc.c); re-quantize with group "
            "size 32, 64, 128 ...",
            why,
        )
    if k % bs:
        raise NodeRejected(
            f"qb4w block size {bs} does not divide K = {k}: XNNPACK requires K % block_size == 0 at creation",
            why,
        )
    if f.scale is not None:
        scales = np.atleast_1d(np.asarray(f.scale, dtype=np.float32))
        b = bf16_to_f32(f32_to_bf16_rne(scales))
        bad = ~np.isfinite(b) | (b <= 0) | (np.abs(b) < np.float32(np.finfo(np.float32).tiny))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise NodeRejected(
                f"qb4w block scale #{i} = {float(b[i])!r} (as bf16) is rejected at creation: every "
                "bf16 block scale "
                "must be finite, normal and > 0 (check_block_size)",
                why,
            )


def check_qs8_scale(node: Node, n: int, why: list[str], *, kind: str = "qs8") -> None:
    """Requantization scale ``fl(fl(sx*sw[n]) / sy) < 256`` (fully-connected-nc.c L934-985)."""
    sx, sw, sy = node.input.scale, node.filter.scale, node.output.scale
    if sx is None or sw is None or sy is None:
        return
    if isinstance(sx, tuple) or isinstance(sy, tuple):
        raise NodeRejected("qint8 input and output scales are per-tensor (one number each)", why)
    w = (
        np.broadcast_to(np.asarray(sw, dtype=np.float32), (n,))
        if np.ndim(sw) == 0 or len(np.atleast_1d(sw)) == 1
        else np.asarray(sw, dtype=np.float32)
    )
    if w.shape != (n,):
        raise NodeRejected(f"per-channel filter scales: expected {n} values, got {w.shape[0]}", why)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = (np.float32(sx) * w) / np.float32(sy)
    bad = ~(s < np.float32(256.0))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise NodeRejected(
            f"requantization scale input_scale*filter_scale[{i}]/output_scale = {float(s[i])!r} is "
            f">= 256: XNNPACK "
            f"rejects the {kind} operator at creation (xnn_status_unsupported_parameter); use a larger "
            "output scale",
            why,
        )


def check_fc_datatypes(in_dt: str, k_dt: str, out_dt: str, op: str, why: list[str]) -> None:
    ok = {
        ("fp32", "fp32", "fp32"),
        ("fp32", "fp16", "fp32"),
        ("fp16", "fp16", "fp16"),
        ("fp16", "fp32", "fp16"),
        ("bf16", "bf16", "bf16"),
        ("bf16", "bf16", "fp32"),
        ("bf16", "fp32", "bf16"),
        ("bf16", "fp32", "fp32"),
        ("qdint8", "qcint8", "fp32"),
        ("qdint8", "qbint4", "fp32"),
        ("qdint8", "qcint4", "fp32"),
        ("qdint8", "qcint8", "fp16"),
        ("qdint8", "qbint4", "fp16"),
        ("qdint8", "qcint4", "fp16"),
        ("fp32", "qcint8", "fp32"),
        ("fp32", "qcint4", "fp32"),
        ("qint8", "qcint8", "qint8"),
        ("qint8", "qint8", "qint8"),
        ("quint8", "quint8", "quint8"),
    }
    if op == "batch_matrix_multiply":
        ok = {
            ("fp32", "fp32", "fp32"),
            ("fp16", "fp16", "fp16"),
            ("qdint8", "qcint8", "fp32"),
            ("fp32", "qcint8", "fp32"),
            ("qint8", "qint8", "qint8"),
            ("bf16", "bf16", "bf16"),
        }
    if (in_dt, k_dt, out_dt) not in ok:
        what = "batch matrix multiply" if op == "batch_matrix_multiply" else "fully connected"
        raise NodeRejected(
            f"XNNPACK has no {what} operator for input {in_dt}, "
            f"{'input2' if op == 'batch_matrix_multiply' else 'filter'} {k_dt}, output {out_dt} "
            "(xnn_define / create fails with xnn_status_invalid_parameter)",
            why,
        )


#: What ``xnn_define_convolution_2d`` accepts per role, before the conv -> FC rewrite
#: (src/subgraph/convolution-2d.c ~L1160-1320).
_CONV_DEFINE = (
    ("input", ("fp32", "fp16", "qint8", "quint8", "qdint8")),
    ("filter", ("fp32", "fp16", "qint8", "qcint8", "quint8")),
    ("output", ("fp32", "fp16", "qint8", "quint8")),
)


def check_conv_define_datatypes(node: Node, why: list[str]) -> None:
    """``xnn_define_convolution_2d`` checks the datatypes *before* the conv -> FC rewrite."""
    for role, allowed in _CONV_DEFINE:
        spec = getattr(node, role)
        if spec.dtype not in allowed:
            extra = (
                " (4-bit weights are fully-connected only: ExecuTorch exports such a convolution, but it fails at load)"
                if spec.dtype in ("qcint4", "qbint4")
                else ""
            )
            raise NodeRejected(
                f"xnn_define_convolution_2d rejects {an(spec.dtype)} {role} (accepted: {', '.join(allowed)})" + extra,
                why,
            )


#: The convolution operators XNNPACK has (convolution-nhwc.c ``xnn_create_convolution2d_nhwc_*``).
_CONV_COMBOS = {
    ("fp32", "fp32", "fp32"),
    ("fp32", "fp16", "fp32"),
    ("fp16", "fp16", "fp16"),
    ("fp16", "fp32", "fp16"),
    ("qdint8", "qcint8", "fp32"),
    ("qdint8", "qcint8", "fp16"),  # xnn_create_convolution2d_nhwc_qd8_f16_qc8w (convolution-2d.c)
    ("qint8", "qint8", "qint8"),
    ("quint8", "quint8", "quint8"),
    ("qint8", "qcint8", "qint8"),
}


def check_conv_combo(in_dt: str, k_dt: str, out_dt: str, why: list[str]) -> None:
    """A convolution (not rewritten to FC) needs an operator for its datatypes."""
    if (in_dt, k_dt, out_dt) in _CONV_COMBOS:
        return
    extra = (
        (
            " (dynamic-quant convolution with 4-bit weights: ExecuTorch exports it, but XNNPACK "
            "has no qd8 x "
            "qc4w/qb4w convolution)"
        )
        if in_dt == "qdint8"
        else ""
    )
    raise NodeRejected(
        f"XNNPACK has no convolution operator for input {in_dt}, filter {k_dt}, output {out_dt}" + extra,
        why,
    )
