"""Definition- and creation-time checks: what XNNPACK refuses (:class:`NodeRejected`), never a fallback.

Datatype combinations (``xnn_define_fully_connected`` / ``xnn_define_convolution_2d`` /
``xnn_define_batch_matrix_multiply``), 4-bit zero points, qb4w block sizes and scales
(``check_block_size``, src/operators/fully-connected-nc.c) and the qs8 requantization scale.
"""

from __future__ import annotations

import numpy as np

from ..numerics import bf16_to_f32, f32_to_bf16_rne
from .case import Node, an
from .decision import NodeRejected

__all__ = [
    "check_conv_combo",
    "check_conv_define_datatypes",
    "check_fc_datatypes",
    "check_qb4w",
    "check_qs8_scale",
    "check_zero_points",
]


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
