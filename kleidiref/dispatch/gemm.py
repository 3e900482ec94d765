"""Fully connected and batch matrix multiply: the packed-LHS pass, the config, the GEMM kernel.

Mirrors ``xnn_subgraph_optimize_packed_lhs`` (src/subgraph.c L3954-4266), the fp16 / bf16 -> fp32
rewrites (src/subgraph/rewrites/cvt_to_fp32.cc), the operator tables of
src/operators/fully-connected-nc.c and batch-matrix-multiply-nc.c, ``xnn_use_nr2``
(src/microkernel-utils.c) and the M == 1 rule (``gemm[0]`` when the config has one).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from ..configs import KAI_CONFIGS, f16_x86_choice, f32_qcw_choice, kai_choice
from .case import Node, an, bname
from .cpu import (
    Hw,
    fz_reason,
    generic_table,
    why_no_neon_kai,
    why_no_sme,
    x86_f16_reasons,
    x86_level_reason,
    x86_name,
)
from .decision import Decision, NodeRejected
from .rules import check_fc_datatypes, check_qb4w, check_qs8_scale, check_zero_points

__all__ = ["decide_bmm", "decide_fc", "float_fallbacks", "gemm_kernel"]


def _prod(xs: Sequence[int]) -> int:
    return math.prod(xs) if xs else 1


def _use_nr2(nr: int, nr2: int, n: int) -> bool:
    """``xnn_use_nr2`` (src/microkernel-utils.c L157-171)."""

    def over(x: int) -> int:
        return (x - n % x) % x

    return nr > n or (over(nr2) < over(nr) and over(nr) * 100 > n)


# ---- the packed-LHS pass (xnn_subgraph_optimize_packed_lhs) --------------------------------------


def _packed_fp16(hw: Hw, node: Node, k_dt: str, out_dt: str, why: list[str]) -> str | None:
    lvl = hw.sme_level
    if out_dt == "fp16" and k_dt == "fp16":
        if lvl is not None:
            why.append(
                f"packed-LHS pass: fp16 input, fp16 {bname(node)} and fp16 output with the pf16 config "
                f"available ({lvl.upper()} + KleidiAI) -> input packed as pfp16"
            )
            return "pfp16"
        why.append("pf16_gemm not taken: " + why_no_sme(hw, "pf16_gemm"))
    elif out_dt == "fp16":
        from_conv = any(r.startswith("conv -> FC rewrite") for r in why)
        why.append(
            f"pf16 needs an fp16 {bname(node)}; "
            + (
                f"this 1x1 convolution was serialized with {an(k_dt)} filter (ExecuTorch keeps "
                "conv filters fp32 in fp16 models) and became a fully-connected node"
                if from_conv
                else f"this node has {an(k_dt)} {bname(node)}"
            )
            + ", so the packed-LHS pass leaves it unpacked (generic f16 FC)"
        )
    return None


def _packed_fp32(hw: Hw, node: Node, k_dt: str, out_dt: str, why: list[str]) -> str | None:
    lvl = hw.sme_level
    if out_dt == "fp32" and k_dt in ("fp32", "fp16"):
        if lvl is not None:
            why.append(
                f"packed-LHS pass: fp32 input, {k_dt} {bname(node)}, fp32 output with the pf32 config "
                f"available ({lvl.upper()} + KleidiAI) -> input packed as pfp32"
            )
            return "pfp32"
        why.append("pf32_gemm not taken: " + why_no_sme(hw, "pf32_gemm"))
    return None


def _packed_qint8(hw: Hw, node: Node, k_dt: str, out_dt: str, why: list[str]) -> str | None:
    lvl = hw.sme_level
    bmm = node.op == "batch_matrix_multiply"
    if out_dt == "qint8" and k_dt == "qcint8" and not bmm:
        if lvl is not None:
            why.append(
                "packed-LHS pass: qint8 input, per-channel qcint8 filter, qint8 output with "
                "the pqs8_qc8w "
                f"config available ({lvl.upper()} + KleidiAI) -> input packed as pqint8"
            )
            return "pqint8"
        why.append("pqs8_qc8w_gemm not taken: " + why_no_sme(hw, "pqs8_qc8w_gemm"))
    elif out_dt == "qint8" and k_dt == "qint8" and not bmm:
        why.append(
            "pqs8_qc8w needs a per-channel (qcint8) filter for a fully-connected node; this filter is "
            "per-tensor qint8 (PT2E static per-tensor), so it runs the generic qs8 kernel — quantize "
            "the weights per channel to reach pqs8"
        )
    return None


def _packed_qb4w(hw: Hw, node: Node, why: list[str]) -> str | None:
    zp = 8 if node.filter.zero_point is None else node.filter.zero_point
    if zp != 8:
        why.append(f"qp8_f32_qb4w needs kernel zero point 8; this qbint4 filter has zero point {zp} -> qd8")
        return None
    lvl4 = hw.qb4w_level
    if lvl4 is None:
        why.append("qp8_f32_qb4w_gemm not taken: " + why_no_neon_kai(hw, "qp8_f32_qb4w_gemm", qb4w=True))
        return None
    why.append(
        f"packed-LHS pass: qdint8 input, qbint4 filter (zero point 8), fp32 output with the "
        f"qp8_f32_qb4w config available (KleidiAI NEON, {lvl4} branch; this config has no SME "
        "branch) -> qpint8 (KleidiAI per-row quantizer)"
    )
    return "qpint8"


def _packed_qdint8(hw: Hw, node: Node, k_dt: str, out_dt: str, why: list[str]) -> str | None:
    if out_dt == "fp16":
        why.append(
            "dynamically quantized node with fp16 output: no qp8 config at the ExecuTorch pin (XNNPACK "
            "HEAD adds qp8_f16_qc8w, SME2 only) -> stays qdint8"
        )
        return None
    if out_dt != "fp32":
        return None
    if k_dt == "qbint4":
        return _packed_qb4w(hw, node, why)
    if k_dt not in ("qcint8", "qcint4"):
        return None
    cfg = "qp8_f32_qc8w_gemm" if k_dt == "qcint8" else "qp8_f32_qc4w_gemm"
    lvl8 = hw.qp8_level
    if lvl8 is None:
        why.append(f"{cfg} not taken: " + why_no_neon_kai(hw, cfg, qb4w=False))
        return None
    why.append(
        f"packed-LHS pass: qdint8 input, {k_dt} filter, fp32 output with the {cfg} config available "
        f"({lvl8} branch of SME2 -> SME -> i8mm -> dotprod) -> qpint8 (KleidiAI per-row quantizer)"
    )
    return "qpint8"


_PACKED: dict[str, Callable[[Hw, Node, str, str, list[str]], str | None]] = {
    "fp16": _packed_fp16,
    "fp32": _packed_fp32,
    "qint8": _packed_qint8,
    "qdint8": _packed_qdint8,
}


def _packed_fc(hw: Hw, node: Node, in_dt: str, k_dt: str, out_dt: str, why: list[str]) -> str | None:
    """The packed-LHS pass for FC/BMM nodes: the packed input datatype, or None."""
    rule = _PACKED.get(in_dt)
    return None if rule is None else rule(hw, node, k_dt, out_dt, why)


def float_fallbacks(
    hw: Hw, in_dt: str, k_dt: str, out_dt: str, packed: str | None, why: list[str]
) -> tuple[str, str, str]:
    """fp16 -> fp32 (no pf16 and no f16_gemm) and bf16 -> fp32 rewrites, after the packed-LHS pass."""
    if in_dt == "fp16" and out_dt == "fp16" and packed != "pfp16":
        if hw.f16_gemm:
            return in_dt, k_dt, out_dt
        why.append(
            "fp16 node without pf16 and without f16_gemm ("
            + ("the target has no FP16 arithmetic" if hw.arm64 else f"x86 ISA level {hw.x86_isa} is below AVX2")
            + "): XNNPACK "
            "rewrites it to fp32 with converts around it (cvt_to_fp32); the packed-LHS pass already ran, so "
            "it gets the generic f32 kernel, not pf32"
        )
        return "fp32", "fp32", "fp32"
    if "bf16" in (in_dt, out_dt, k_dt) and in_dt in ("bf16", "fp32") and out_dt in ("bf16", "fp32"):
        why.append(
            "bf16 node: XNNPACK rewrites bf16 nodes to fp32 with converts after the packed-LHS pass, so it "
            "runs the generic f32 kernel (no KleidiAI variant)"
        )
        return "fp32", "fp32", "fp32"
    return in_dt, k_dt, out_dt


# ---- the GEMM micro-kernel ----------------------------------------------------------------------


_GEMV_WHY = {
    "qp8_f32_qc8w_gemm": "M == 1: the 1-row qp8gemm[0] kernel (LHS still quantized and packed with mr = 1)",
    "qp8_f32_qb4w_gemm": "M == 1: the 1-row qp8gemm_bl[0] kernel",
    "qp8_f32_qc4w_gemm": "M == 1: the 1-row qp8gemm[0] kernel",
}


def _kai_gemm_kernel(hw: Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    """(kernel, xnn_kernel, mr, nr) of a KleidiAI config (:func:`kleidiref.configs.kai_choice`)."""
    c = kai_choice(cfg, hw.t, m)
    assert c is not None
    lvl = c.branch
    if cfg in ("qp8_f32_qc8w_gemm", "qp8_f32_qb4w_gemm", "qp8_f32_qc4w_gemm"):
        many = "qp8gemm_bl[mr-1]" if cfg == "qp8_f32_qb4w_gemm" else "qp8gemm[mr-1]"
        head = _GEMV_WHY[cfg] if c.kind == "gemv" else f"M = {m} > 1: the {many} kernel"
        why.append(head + f"; {lvl} branch: XNNPACK ukernel {c.xnn_kernel}")
        return c.kernel, c.xnn_kernel, c.mr, c.nr
    if c.no_gemv:
        why.append(
            "M == 1 but the SME1 pqs8 config registers no 1-row kernel: the MOPA kernel runs on a packed single-row LHS"
        )
    elif c.kind == "gemv":
        why.append("M == 1: the 1-row kernel runs on the unpacked LHS row (gemm[0]; gemv_noop, no LHS packing)")
    else:
        why.append(f"M = {m} > 1: the {lvl.upper()} MOPA kernel on an LHS packed by the KleidiAI SME packer")
    why.append(
        f"{lvl.upper()} branch taken "
        + ("(SME2 is preferred over SME)" if lvl == "sme2" else "(no SME2 on the target)")
        + f": XNNPACK ukernel {c.xnn_kernel}"
        + f" (tile numbers for SVL {hw.t.svl_bits})"
    )
    return c.kernel, c.xnn_kernel, c.mr, c.nr


def _weight_only_kernel(hw: Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    """The f32_qc8w / f32_qc4w kernel (:func:`kleidiref.configs.f32_qcw_choice`)."""
    gemv = m == 1
    _, xnn, mr, nr = f32_qcw_choice(cfg, m, hw.t, hw.platform)
    if gemv:
        why.append(f"M == 1: the 1-row kernel runs ({xnn})")
    else:
        why.append(f"M = {m} > 1: mr = config mr = {mr} ({xnn})")
    if not hw.arm64:
        why.append(x86_level_reason(hw))
    elif cfg == "f32_qc8w_gemm" and gemv:
        why.append(
            "iOS/macOS build: the 1x8 ld128 kernel (no acc4 variant)"
            if hw.platform == "apple"
            else "Linux/Android build: the 1x8 ld128_acc4 kernel (four partial sums)"
        )
    return xnn, xnn, mr, nr


def _x86_f16_kernel(hw: Hw, m: int, why: list[str]) -> tuple[str, str, int, int]:
    _, xnn, mr, nr = f16_x86_choice(m, igemm=False, isa=hw.x86_isa)
    why.append(
        ("M == 1: the 1-row kernel" if m == 1 else f"M = {m} > 1: mr = config mr = {mr}")
        + f" of the x86-64 f16_gemm config: {xnn}"
    )
    why += x86_f16_reasons(hw)
    return xnn, xnn, mr, nr


def _generic_kernel(hw: Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    """A generic config's GEMM kernel: ``gemm[0]`` for M == 1 when registered, else the config mr."""
    gemv = m == 1
    tbl = generic_table(hw, cfg)
    if tbl is None:
        name = f"xnn_{cfg} (no ARM64 ukernel table in kleidiref)"
        return name, name, 0, 0
    kernels = tbl.gemm
    mr = 1 if gemv and 1 in kernels else tbl.mr
    if gemv and 1 in kernels:
        why.append(f"M == 1: gemm[0] exists, so the 1-row kernel {kernels[1]} runs")
    elif gemv:
        why.append(f"M == 1 but {cfg} registers no 1-row kernel: mr = {mr}")
    else:
        why.append(f"M = {m} > 1: mr = config mr = {mr} (no heuristic for fully connected)")
    if not hw.arm64:
        name = x86_name(cfg)
        why.append(
            "x86-64: the config's kernels are ISA-specific (SSE/AVX/AVX-512); kleidiref uses the ARM64 "
            "kernel shapes and accumulation order of the same config"
        )
        return name, name, mr, tbl.nr
    return kernels[mr], kernels[mr], mr, tbl.nr


def gemm_kernel(hw: Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    """(kernel, xnn_kernel, mr, nr) for a GEMM config, with the M == 1 rule (gemm[0] when it exists)."""
    if cfg in KAI_CONFIGS:
        return _kai_gemm_kernel(hw, cfg, m, why)
    if cfg in ("f32_qc8w_gemm", "f32_qc4w_gemm"):
        return _weight_only_kernel(hw, cfg, m, why)
    if cfg == "f16_gemm" and not hw.arm64:
        return _x86_f16_kernel(hw, m, why)
    return _generic_kernel(hw, cfg, m, why)


_OPNAME = {
    "f32_gemm": "F32",
    "f32_gemm_nr2": "F32",
    "pf32_gemm": "PF32",
    "f16_gemm": "F16",
    "pf16_gemm": "PF16",
    "qd8_f32_qc8w_gemm": "QD8, F32, QC8W",
    "qp8_f32_qc8w_gemm": "QP8, F32, QC8W",
    "qd8_f32_qb4w_gemm": "QD8, F32, QB4W",
    "qp8_f32_qb4w_gemm": "QP8, F32, QB4W",
    "qd8_f32_qc4w_gemm": "QD8, F32, QC4W",
    "qp8_f32_qc4w_gemm": "QP8, F32, QC4W",
    "qs8_qc8w_gemm": "QS8, QC8W",
    "pqs8_qc8w_gemm": "PQS8, QC8W",
    "f32_qc8w_gemm": "F32, QC8W",
    "f32_qc4w_gemm": "F32, QC4W",
    "qd8_f16_qc8w_gemm": "QD8, F16, QC8W",
    "qd8_f16_qb4w_gemm": "QD8, F16, QB4W",
    "qd8_f16_qc4w_gemm": "QD8, F16, QC4W",
    "qu8_gemm": "QU8",
}


# ---- the config (operator tables of fully-connected-nc.c / batch-matrix-multiply-nc.c) ----------


@dataclasses.dataclass
class _Gemm:
    """The node being decided, after the packed-LHS pass and the float rewrites."""

    hw: Hw
    node: Node
    op: str
    in_dt: str
    k_dt: str
    out_dt: str
    packed: str | None
    n: int
    k: int
    why: list[str]


#: (config, variant or None, operator-name override or None).
_Config = tuple[str, "str | None", "str | None"]
_QD8_F32 = {"qcint8": "qd8_f32_qc8w_gemm", "qbint4": "qd8_f32_qb4w_gemm", "qcint4": "qd8_f32_qc4w_gemm"}
_QD8_F16 = {"qcint8": "qd8_f16_qc8w_gemm", "qbint4": "qd8_f16_qb4w_gemm", "qcint4": "qd8_f16_qc4w_gemm"}
_QP8 = {"qcint8": "qp8_f32_qc8w_gemm", "qbint4": "qp8_f32_qb4w_gemm", "qcint4": "qp8_f32_qc4w_gemm"}


def _config_f32(g: _Gemm) -> _Config:
    if g.packed == "pfp32":
        if g.k_dt == "fp16":
            g.why.append(
                "fp16 weights with fp32 activations: the operator converts the weights to fp32 at "
                "creation (…_pf32_f16), then pf32"
            )
        return "pf32_gemm", "pf32_gemm", None
    if g.op == "fully_connected" and g.hw.arm64 and _use_nr2(8, 2, g.n):
        g.why.append(
            f"N = {g.n}: xnn_use_nr2(nr=8, nr2=2, N) is true, so the f32_gemm_nr2 config (4x2 kernel) replaces f32_gemm"
        )
        return "f32_gemm_nr2", None, None
    return "f32_gemm", None, None


def _config_qd8_f16_as_f32(g: _Gemm) -> _Config:
    # cvt_to_fp32.cc (GetOpActionFp16): an FC with XNN_FLAG_INLINE_LHS_PACKING (every qdint8
    # FC under ExecuTorch) stays fp16 only if the pf16 config is valid; otherwise it is
    # rewritten to fp32 after the packed-LHS pass, so qd8 (never qp8) with converts around it.
    if g.k_dt == "qbint4":
        check_qb4w(g.node, g.k, g.why)
    cfg = _QD8_F32[g.k_dt]
    g.why.append(
        "fp16-output dynamically quantized FC without the pf16 config ("
        + why_no_sme(g.hw, "pf16_gemm")
        + "): XNNPACK's fp16 fallback (cvt_to_fp32) rewrites it to fp32 after the packed-LHS pass: "
        "the fp16 input is converted to fp32 (exact), quantized by XNNPACK's f32 qd8 quantizer, "
        f"run by {cfg} and the fp32 output converted to fp16 (RNE)"
    )
    return cfg, None, None


def _config_f16_out(g: _Gemm) -> _Config:
    if g.in_dt == "qdint8":
        if g.k_dt == "qbint4":
            check_qb4w(g.node, g.k, g.why)
        cfg = _QD8_F16[g.k_dt]
        g.why.append(
            "the pf16 config is valid, so XNNPACK's fp16 fallback keeps this fp16-output node: "
            f"{cfg} (fp16 activations quantized by the fp16 qd8 quantizer, binary32 epilogue, one "
            "conversion to fp16)"
        )
        return cfg, None, None
    bias = g.node.bias
    if bias is not None and bias.dtype == "fp32":
        note = "fp32 bias on an fp16 node: converted to fp16 (RNE) at creation (XNN_FLAG_FP32_STATIC_BIASES)"
    else:
        note = None
    if g.packed == "pfp16":
        choice: _Config = ("pf16_gemm", "pf16_gemm", None)
    else:
        choice = ("f16_gemm", None, None)
        if g.k_dt == "fp32":
            g.why.append(
                "fp32 static filter on an fp16 node: converted to fp16 at creation "
                "(XNN_FLAG_FP32_STATIC_WEIGHTS), generic f16 kernel"
            )
    if note is not None:
        g.why.append(note)
    return choice


def _config_qd8(g: _Gemm) -> _Config:
    if g.k_dt == "qbint4":
        check_qb4w(g.node, g.k, g.why)
    if g.packed == "qpint8":
        cfg = _QP8[g.k_dt]
        return cfg, cfg, None
    if not g.hw.arm64:
        g.why.append(
            "x86-64: XNNPACK prefers qdu8 (unsigned, zero point + 128) configs on "
            "AVX-VNNI/AVX512-VNNI "
            "machines; kleidiref reports and emulates the signed qd8 path"
        )
    g.why.append("XNNPACK's own per-row dynamic quantization (qd8, ties to even) feeds the generic kernel")
    return _QD8_F32[g.k_dt], None, None


def _config_qu8(g: _Gemm) -> _Config:
    check_qs8_scale(g.node, g.n, g.why, kind="qu8")
    g.why.append(
        "quint8 node: XNNPACK's generic qu8 operator (never KleidiAI; ExecuTorch does not serialize "
        "quint8 here), rndnu requantization (xnn_init_qu8_conv_minmax_rndnu_neon_params)"
    )
    return "qu8_gemm", None, None


def _config_weight_only(g: _Gemm) -> _Config:
    cfg = "f32_qc8w_gemm" if g.k_dt == "qcint8" else "f32_qc4w_gemm"
    g.why.append(f"fp32 activations with {g.k_dt} weights: weight-only quantized operator ({cfg}), never packed")
    if g.node.bias is not None:
        # Note: emulated as XNNPACK computes it, not as the node's math reads.
        g.why.append(
            "bias: XNNPACK packs the fp32 bias raw and multiplies the whole accumulator by the "
            "per-channel scale, so the output is (bias + sum a*w) * scale - the bias is scaled too "
            "(XNNPACK's own subgraph test disables the bias for F32QC8W/F32QC4W); kleidiref passes "
            "the bias exactly as the node has it"
        )
    return cfg, None, None


def _config_qs8(g: _Gemm) -> _Config:
    packed = g.packed == "pqint8"
    cfg = "pqs8_qc8w_gemm" if packed else "qs8_qc8w_gemm"
    if g.op == "fully_connected":
        check_qs8_scale(g.node, g.n, g.why)
    override = None
    if g.k_dt == "qint8":
        g.why.append("per-tensor qint8 filter: the qs8 operator broadcasts the scale and uses the qs8_qc8w config")
        override = "QS8"
    return cfg, (cfg if packed else None), override


def _choose_config(g: _Gemm) -> _Config:
    """The XNNPACK config for the node's (rewritten) datatypes and packed type."""
    if g.out_dt == "fp32" and g.in_dt == "fp32" and g.k_dt in ("fp32", "fp16"):
        return _config_f32(g)
    if g.out_dt == "fp16" and g.in_dt == "qdint8" and g.hw.sme_level is None:
        return _config_qd8_f16_as_f32(g)
    if g.out_dt == "fp16":
        return _config_f16_out(g)
    if g.in_dt == "qdint8":
        return _config_qd8(g)
    if g.in_dt == "quint8":
        return _config_qu8(g)
    if g.in_dt == "fp32" and g.k_dt in ("qcint8", "qcint4"):
        return _config_weight_only(g)
    return _config_qs8(g)  # qint8


def _result_reasons(hw: Hw, node: Node, cfg: str, variant: str | None, kernel: str, why: list[str]) -> None:
    if cfg == "qp8_f32_qc4w_gemm" and hw.qp8_level == "sme2" and "transpose_weights" in node.flags:
        # Note: inferred from source, not run: kleidiref computes the transposed product.
        why.append(
            "upstream hazard: the SME2 qc4w weight packer (xnn_pack_kai_qs4_weights_and_biases_sme) "
            "always calls the nxk KleidiAI packer and ignores XNN_FLAG_TRANSPOSE_WEIGHTS, so XNNPACK "
            "would read a [K, N] filter as [N, K]"
        )
    if variant is None:
        why.append("result: a generic XNNPACK kernel runs (none of the KleidiAI variants)")
    else:
        why.append(f"result: KleidiAI variant {variant} runs ({kernel})")


def _decide_gemm_like(hw: Hw, node: Node, m: int, n: int, k: int, why: list[str], *, rewritten: bool) -> Decision:
    in_dt, k_dt, out_dt = node.input.dtype, node.filter.dtype, node.output.dtype
    op = "batch_matrix_multiply" if node.op == "batch_matrix_multiply" else "fully_connected"
    check_fc_datatypes(in_dt, k_dt, out_dt, op, why)
    check_zero_points(node, why)
    packed = _packed_fc(hw, node, in_dt, k_dt, out_dt, why)
    in_dt, k_dt, out_dt = float_fallbacks(hw, in_dt, k_dt, out_dt, packed, why)
    cfg, variant, opname_override = _choose_config(_Gemm(hw, node, op, in_dt, k_dt, out_dt, packed, n, k, why))
    why += fz_reason(hw, out_dt in ("fp32", "fp16"))
    kernel, xnn, mr, nr = gemm_kernel(hw, cfg, m, why)
    _result_reasons(hw, node, cfg, variant, kernel, why)
    kind = "Batch Matrix Multiply (NC, " if op == "batch_matrix_multiply" else "Fully Connected (NC, "
    opname = kind + (opname_override or _OPNAME.get(cfg, cfg.upper())) + ")"
    return Decision(
        variant=variant,
        config=cfg,
        microkernel="gemm",
        kernel=kernel,
        reasons=tuple(why),
        xnn_kernel=xnn,
        operator=opname,
        op=op,
        m=m,
        mr=mr,
        nr=nr,
        input_datatype=packed or in_dt,
        rewritten_to_fc=rewritten,
        flush_to_zero=hw.t.flush_to_zero,
        platform=hw.platform,
    )


def _fc_dims(node: Node, why: list[str]) -> tuple[int, int, int]:
    f = node.filter
    if len(f.shape) != 2:
        raise NodeRejected(
            f"a fully-connected filter is 2-D ([N, K], or [K, N] with transpose_weights); got {f.shape}", why
        )
    if len(node.input.shape) < 1:
        raise NodeRejected("a fully-connected input needs at least one dimension ([.., K])", why)
    transpose = "transpose_weights" in node.flags
    n, kf = (f.shape[1], f.shape[0]) if transpose else f.shape
    k = node.input.shape[-1]
    if kf != k:
        raise NodeRejected(
            f"input K = {k} does not match the filter's K = {kf} (filter {f.shape}, transpose_weights={transpose})",
            why,
        )
    m = _prod(node.input.shape[:-1])
    if node.bias is not None and node.bias.shape not in ((n,), ()):
        raise NodeRejected(f"bias must have shape [{n}], got {list(node.bias.shape)}", why)
    out = node.output.shape
    if out and out[-1] != n:
        raise NodeRejected(f"output's last dimension must be N = {n}, got {list(out)}", why)
    return m, n, k


def decide_fc(hw: Hw, node: Node, why: list[str], *, rewritten: bool = False) -> Decision:
    m, n, k = _fc_dims(node, why)
    why.append(f"fully connected: M = {m} (product of the input's leading dims), N = {n}, K = {k}")
    return _decide_gemm_like(hw, node, m, n, k, why, rewritten=rewritten)


def decide_bmm(hw: Hw, node: Node, why: list[str]) -> Decision:
    a, b = node.input.shape, node.filter.shape
    if len(a) < 2 or len(b) < 2:
        raise NodeRejected(f"batch matrix multiply needs inputs of rank >= 2, got {list(a)} and {list(b)}", why)
    m, k = a[-2], a[-1]
    tb = "transpose_b" in node.flags or "transpose_weights" in node.flags
    kb, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if kb != k:
        raise NodeRejected(f"input1 K = {k} does not match input2's K = {kb} (transpose_b={tb})", why)
    try:
        np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    except ValueError:
        raise NodeRejected(f"batch dimensions {list(a[:-2])} and {list(b[:-2])} do not broadcast", why) from None
    why.append(
        f"batch matrix multiply: M = {m}, N = {n}, K = {k} per batch; B "
        f"{'static (packed once)' if node.filter.static else 'dynamic (packed on every run)'}; "
        "static/dynamic B and transpose flags do not change the config"
    )
    return _decide_gemm_like(hw, node, m, n, k, why, rewritten=False)
