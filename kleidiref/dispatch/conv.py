"""Convolution: the conv -> FC rewrite, the conv packed-LHS rule, the config and the micro-kernel type.

Mirrors ``xnn_define_convolution_2d`` (src/subgraph/convolution-2d.c: datatype checks, the 1x1
rewrite to fully connected at L1382-1397), the convolution operator tables of
src/operators/convolution-nhwc.c, ``select_microkernel_type`` (convolution-nhwc.c L563-589:
vmulcaddc, then dwconv, else IGEMM) and ``xnn_get_heuristic_mr_igemm`` (src/operator-utils.c).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..configs import DWCONV, KAI_CONFIGS, X86_DWCONV_TILES, f16_x86_choice, kai_choice
from ..conv import conv_output_size
from ..fallbacks.dwconv import dwconv_x86_ukernel
from .case import ConvParams, Node
from .cpu import Hw, fz_reason, generic_table, why_no_sme, x86_f16_reasons, x86_name
from .decision import Decision, Microkernel, NodeRejected
from .gemm import decide_fc, float_fallbacks
from .rules import check_conv_combo, check_conv_define_datatypes, check_qs8_scale

__all__ = ["decide_conv", "decide_deconv"]


def _heuristic_mr(m: int, max_mr: int, nr: int, available: Sequence[int]) -> int:
    """``xnn_get_heuristic_mr_igemm`` (src/operator-utils.c L130-157)."""
    if m <= max_mr and m in available:
        return m
    best, best_cost = max_mr, None
    for mr in sorted(available):
        cost = -(-m // mr) * (3 * (mr + nr) + mr * nr)
        if best_cost is None or cost <= best_cost:
            best, best_cost = mr, cost
    return best


def _conv_out(h: int, pad: int, kk: int, dil: int, s: int) -> int:
    return max(0, conv_output_size(h + pad, kk, dil, s))


@dataclasses.dataclass(frozen=True)
class _Shape:
    """A checked convolution: NHWC input, [O, kh, kw, I/groups] filter, output size."""

    c: ConvParams
    x: tuple[int, ...]
    cin: int
    cout: int
    gic: int
    goc: int
    hout: int
    wout: int

    @property
    def taps(self) -> int:
        return self.c.kernel[0] * self.c.kernel[1]

    @property
    def depthwise(self) -> bool:
        return self.gic == 1 and self.goc == 1

    @property
    def unit(self) -> bool:
        """Stride 1 and no padding."""
        return self.c.stride == (1, 1) and self.c.padding == (0, 0, 0, 0)


def _check_filter(node: Node, c: ConvParams, why: list[str]) -> tuple[int, int, int, int]:
    """``(cin, cout, gic, goc)`` of a 4-D NHWC input and [O, kh, kw, I/groups] filter."""
    x, f = node.input.shape, node.filter.shape
    if len(x) != 4:
        raise NodeRejected(f"convolution input must be NHWC (4-D), got {list(x)}", why)
    if len(f) != 4:
        raise NodeRejected(f"convolution filter must be [O, kh, kw, I/groups] (4-D), got {list(f)}", why)
    kh, kw = c.kernel
    if (f[1], f[2]) != (kh, kw):
        raise NodeRejected(f"filter spatial dims {f[1]}x{f[2]} do not match kernel {kh}x{kw}", why)
    g = c.groups
    cin, cout = x[3], f[0]
    if cin % g or cout % g:
        raise NodeRejected(f"groups = {g} must divide input channels {cin} and output channels {cout}", why)
    gic, goc = cin // g, cout // g
    if f[3] != gic:
        raise NodeRejected(f"filter's last dim must be I/groups = {gic}, got {f[3]}", why)
    return cin, cout, gic, goc


def _conv_shape(node: Node, why: list[str]) -> _Shape:
    c = node.convolution
    assert c is not None
    cin, cout, gic, goc = _check_filter(node, c, why)
    x = node.input.shape
    kh, kw = c.kernel
    sh, sw = c.stride
    pt, pr, pb, pl = c.padding
    hout = _conv_out(x[1], pt + pb, kh, c.dilation[0], sh)
    wout = _conv_out(x[2], pl + pr, kw, c.dilation[1], sw)
    out = node.output.shape
    if out and tuple(out) != (x[0], hout, wout, cout):
        raise NodeRejected(
            f"output shape must be {[x[0], hout, wout, cout]} for these parameters, got {list(out)}", why
        )
    if node.bias is not None and node.bias.shape not in ((cout,), ()):
        raise NodeRejected(f"bias must have shape [{cout}], got {list(node.bias.shape)}", why)
    return _Shape(c, tuple(x), cin, cout, gic, goc, hout, wout)


def _rewrite_to_fc(hw: Hw, node: Node, s: _Shape, why: list[str]) -> Decision:
    """The 1x1 convolution XNNPACK defines as a fully-connected node (convolution-2d.c L1382-1397)."""
    why.append(
        "conv -> FC rewrite: groups 1, 1x1 kernel, stride 1, no padding and Cin + Cout > 2, so "
        "xnn_define_convolution_2d defines a fully-connected node (filter [O,1,1,I] read as [O,I], "
        "flags 0" + ("; qdint8 input re-quantized per pixel row" if node.input.dtype == "qdint8" else "") + ")"
    )
    x = s.x
    fc = Node(
        op="fully_connected",
        input=dataclasses.replace(node.input, shape=(x[0] * x[1] * x[2], s.cin)),
        filter=dataclasses.replace(node.filter, shape=(s.cout, s.cin)),
        output=dataclasses.replace(node.output, shape=(x[0] * x[1] * x[2], s.cout)),
        bias=node.bias,
        flags=(),
    )
    return decide_fc(hw, fc, why, rewritten=True)


def _why_not_fc(c: ConvParams, gic: int, goc: int) -> str:
    fails = []
    if c.groups != 1:
        fails.append(f"groups = {c.groups}")
    if c.kernel != (1, 1):
        fails.append(f"kernel {c.kernel[0]}x{c.kernel[1]}")
    if c.stride != (1, 1):
        fails.append(f"stride {c.stride}")
    if c.padding != (0, 0, 0, 0):
        fails.append("padding")
    if c.groups == 1 and c.kernel == (1, 1) and gic + goc <= 2:
        fails.append("Cin + Cout <= 2")
    return "no conv -> FC rewrite (" + ", ".join(fails) + "): the convolution operator runs"


def _conv_packed(hw: Hw, in_dt: str, k_dt: str, why: list[str]) -> str | None:
    """The packed-LHS pass for convolutions (a qint8 filter qualifies too; never qdint8)."""
    lvl = hw.sme_level
    if in_dt == "qint8" and lvl is not None:
        why.append(
            f"packed-LHS pass (conv): qint8 input, {k_dt} filter, qint8 output, pqs8_qc8w available "
            f"({lvl.upper()}) -> pqint8 (the conv rule accepts a per-tensor qint8 filter too)"
        )
        return "pqint8"
    if in_dt == "fp32" and lvl is not None:
        why.append(f"packed-LHS pass (conv): fp32 input/output, {k_dt} filter, pf32 available ({lvl.upper()}) -> pfp32")
        return "pfp32"
    if in_dt == "fp16" and lvl is not None:
        why.append(
            f"packed-LHS pass (conv): fp16 input/output, {k_dt} filter (the conv rule accepts an fp32 "
            f"filter), pf16 available ({lvl.upper()}) -> pfp16"
        )
        return "pfp16"
    if in_dt == "qdint8":
        why.append("a dynamically quantized convolution never gets a packed type (no qp8 for conv): qd8 IGEMM")
    elif in_dt == "quint8":
        why.append(
            "quint8 convolution: XNNPACK's generic qu8 operator (never KleidiAI), rndnu requantization "
            "(xnn_init_qu8_conv_minmax_rndnu_neon_params)"
        )
    elif in_dt in ("qint8", "fp32", "fp16"):
        why.append(
            "no packed type: "
            + why_no_sme(hw, {"qint8": "pqs8_qc8w_gemm", "fp32": "pf32_gemm", "fp16": "pf16_gemm"}[in_dt])
        )
    return None


@dataclasses.dataclass
class _ConvConfig:
    """The convolution operator: config, variant, kernel family and operator name."""

    cfg: str
    variant: str | None
    fam: str
    opname: str


def _conv_config(node: Node, in_dt: str, k_dt: str, out_dt: str, packed: str | None, why: list[str]) -> _ConvConfig:
    """The convolution-nhwc.c operator for the (rewritten) datatypes."""
    cout = node.filter.shape[0]
    if out_dt == "fp32" and in_dt == "fp32":
        if packed == "pfp32":
            return _ConvConfig("pf32_gemm", "pf32_gemm", "f32", "PF32")
        return _ConvConfig("f32_igemm", None, "f32", "F32")
    if in_dt == "qdint8" and out_dt == "fp16":
        # convolution-2d.c accepts qdint8 x qcint8 -> fp16 and creates it with
        # xnn_create_convolution2d_nhwc_qd8_f16_qc8w (the qd8_f16_qc8w IGEMM config).
        why.append("fp16-output dynamically quantized convolution: qd8_f16_qc8w IGEMM (never a packed type)")
        return _ConvConfig("qd8_f16_qc8w_igemm", None, "qd8", "QD8, F16, QC8W")
    if out_dt == "fp16":
        if packed == "pfp16":
            return _ConvConfig("pf16_gemm", "pf16_gemm", "f16", "PF16")
        return _ConvConfig("f16_gemm", None, "f16", "F16")
    if in_dt == "quint8":
        check_qs8_scale(node, cout, why, kind="qu8")
        return _ConvConfig("qu8_gemm", None, "qu8", "QU8")
    if in_dt == "qdint8":
        why.append(
            "dynamic quantization per image (num_nonbatch_dims = 3 from ExecuTorch) by XNNPACK's qd8 "
            "convert; padding reads the image's zero point"
        )
        return _ConvConfig("qd8_f32_qc8w_gemm", None, "qd8", "QD8, F32, QC8W")
    if packed == "pqint8":
        choice = _ConvConfig("pqs8_qc8w_gemm", "pqs8_qc8w_gemm", "qs8", "PQS8, QS8, QC8W")
    else:
        choice = _ConvConfig("qs8_qc8w_gemm", None, "qs8", "QS8" if k_dt == "qint8" else "QC8")
    check_qs8_scale(node, cout, why)
    return choice


def _igemm_kernel(hw: Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    """(kernel, xnn_kernel, mr, nr) of the IGEMM: SME configs the full mr, else the mr heuristic."""
    if cfg in KAI_CONFIGS:
        c = kai_choice(cfg, hw.t, m, igemm=True)
        assert c is not None
        why.append(
            f"SME configs register only igemm[mr-1]: the {c.branch.upper()} MOPA kernel runs with the full mr "
            f"= {c.mr} on an LHS packed per tile (x32/x16/x8_igemm_pack_lh), K' = taps x channels"
        )
        return c.kernel, c.xnn_kernel, c.mr, c.nr
    if cfg == "f16_gemm" and not hw.arm64:
        big, nr = f16_x86_choice(2, igemm=True, isa=hw.x86_isa)[2:]
        mr = _heuristic_mr(m, big, nr, (1, big))
        xnn = f16_x86_choice(mr, igemm=True, isa=hw.x86_isa)[1]
        why.append(f"IGEMM mr heuristic (xnn_get_heuristic_mr_igemm) for {m} output pixels: mr = {mr} -> {xnn}")
        why += x86_f16_reasons(hw)
        return xnn, xnn, mr, nr
    tbl = generic_table(hw, cfg)
    assert tbl is not None
    kernels = tbl.igemm
    mr = _heuristic_mr(m, tbl.mr, tbl.nr, sorted(kernels))
    if not hw.arm64:
        name = x86_name(cfg)
        return name, name, mr, tbl.nr
    why.append(f"IGEMM mr heuristic (xnn_get_heuristic_mr_igemm) for {m} output pixels: mr = {mr} -> {kernels[mr]}")
    return kernels[mr], kernels[mr], mr, tbl.nr


@dataclasses.dataclass
class _Kernel:
    """The micro-kernel a convolution runs."""

    microkernel: Microkernel
    cfg: str
    variant: str | None
    kernel: str
    xnn: str
    mr: int
    nr: int
    dwconv_tile: int | None = None


def _dwconv_tile(hw: Hw, fam: str, taps: int) -> int | None:
    """The smallest unipass dwconv tile >= taps of the family's dwconv config, if any."""
    if not hw.arm64:
        return min((t for t in X86_DWCONV_TILES.get(fam, ()) if t >= taps), default=None)
    if fam == "f16" and not hw.t.fp16_arith:
        return None
    tiles = DWCONV.get(fam, {})
    return min((t for t in tiles if t >= taps), default=None)


def _igemm(hw: Hw, s: _Shape, cc: _ConvConfig, why: list[str]) -> _Kernel:
    if s.depthwise:
        why.append(
            f"depthwise shape but no dwconv kernel for {s.taps} taps"
            + (" (qd8 has no dwconv kernel)" if cc.fam == "qd8" else "")
            + ": IGEMM"
        )
    kernel, xnn, mr, nr = _igemm_kernel(hw, cc.cfg, s.hout * s.wout, why)
    k = _Kernel("igemm", cc.cfg, cc.variant, kernel, xnn, mr, nr)
    nr2 = generic_table(hw, "f32_gemm_nr2")
    if cc.cfg == "f32_igemm" and hw.arm64 and s.goc < 8 and nr2 is not None:
        k = _Kernel("igemm", "f32_gemm_nr2", None, nr2.igemm[4], nr2.igemm[4], 4, 2)
        why.append(f"group output channels {s.goc} < f32_igemm nr 8: the f32_gemm_nr2 config's 4x2 IGEMM replaces it")
    if cc.cfg == "pf16_gemm" and hw.t.svl_bits == 128:
        why.append(
            "upstream hazard: at SVL 128 XNNPACK packs pf16 conv weights with nr = 16 while the "
            "kernel reads nr = 8; kleidiref emulates the kernel-consistent layout"
        )
    return k


def _dwconv_kernel(hw: Hw, fam: str, cfg: str, tile: int) -> str:
    if hw.arm64:
        return DWCONV[fam][tile]
    if fam in ("f32", "f16"):
        # Note: the __fma3 names whatever x86_isa; AVX512F machines run the __avx512f f32 kernels, whose
        # steps (bias first, one VFMADD chain, MINPS(max, MAXPS(min, acc))) are the __fma3 ones.
        return dwconv_x86_ukernel(fam, tile)
    return x86_name(cfg)


def _microkernel(hw: Hw, s: _Shape, cc: _ConvConfig, why: list[str]) -> _Kernel:
    """``select_microkernel_type`` (convolution-nhwc.c L563-589): vmulcaddc, dwconv, else IGEMM.

    Note: vmulcaddc never runs at the pin: ``init_vmuladdc_params_{f32,f16}`` (convolution-nhwc.c) read the
    vmulcaddc config into a local and never store it in ``context->vmulcaddc_config``, which stays NULL,
    so a 1x1 depthwise convolution runs the dwconv kernel with the 3-tap primary tile.
    """
    fam = cc.fam
    tile = _dwconv_tile(hw, fam, s.taps)
    if s.depthwise and tile is not None:
        cfg = {"qs8": "qs8_qc8w_dwconv", "qu8": "qu8_dwconv"}.get(fam, f"{fam}_dwconv")
        kernel = _dwconv_kernel(hw, fam, cfg, tile)
        if s.taps == 1 and s.unit and fam in ("f32", "f16"):
            why.append(
                "depthwise-like 1x1 (stride 1, no padding): select_microkernel_type would take vmulcaddc, but "
                "context->vmulcaddc_config is never set (init_vmuladdc_params_* keep the config in a local), "
                "so the dwconv kernel runs"
            )
        why.append(
            f"depthwise shape (1 input and 1 output channel per group): the generic dwconv kernel with the "
            f"smallest primary tile ({tile}) >= {s.taps} taps runs ({kernel}), not a KleidiAI kernel"
            + (f"; its {tile - s.taps} spare taps read the next pixels with zero weights" if tile > s.taps else "")
        )
        return _Kernel("dwconv", cfg, None, kernel, kernel, 1, 0, tile)
    return _igemm(hw, s, cc, why)


_DEPTHWISE_WHY = (
    "depthwise node (xnn_define_depthwise_convolution_2d): the packed-LHS pass "
    "(xnn_subgraph_optimize_packed_lhs, src/subgraph.c) visits only fully-connected, batch-matmul, "
    "convolution and deconvolution nodes, so it never gets a packed type; "
    "src/subgraph/depthwise-convolution-2d.c creates a generic convolution operator "
    "(XNN_FLAG_DEPTHWISE_CONVOLUTION): dwconv, vmulcaddc or IGEMM by select_microkernel_type"
)


def decide_conv(hw: Hw, node: Node, why: list[str]) -> Decision:
    """The decision for a ``convolution_2d`` node (rewritten to FC when XNNPACK does)."""
    s = _conv_shape(node, why)
    check_conv_define_datatypes(node, why)
    c = s.c
    if node.op == "convolution_2d" and c.groups == 1 and s.taps == 1 and s.unit and s.gic + s.goc > 2:
        return _rewrite_to_fc(hw, node, s, why)
    why.append(_why_not_fc(c, s.gic, s.goc))
    check_conv_combo(node.input.dtype, node.filter.dtype, node.output.dtype, why)
    if node.op == "depthwise_convolution_2d":
        why.append(_DEPTHWISE_WHY)
        packed = None
    else:
        packed = _conv_packed(hw, node.input.dtype, node.filter.dtype, why)
    in_dt, k_dt, out_dt = float_fallbacks(hw, node.input.dtype, node.filter.dtype, node.output.dtype, packed, why)
    if in_dt == "fp32" and node.input.dtype in ("fp16", "bf16"):
        packed = None
    cc = _conv_config(node, in_dt, k_dt, out_dt, packed, why)
    why += fz_reason(hw, out_dt in ("fp32", "fp16"))
    k = _microkernel(hw, s, cc, why)
    if k.variant is None:
        why.append("result: a generic XNNPACK kernel runs (none of the KleidiAI variants)")
    else:
        why.append(f"result: KleidiAI variant {k.variant} runs ({k.kernel}) through XNNPACK's IGEMM wrapper {k.xnn}")
    return Decision(
        variant=k.variant,
        config=k.cfg,
        microkernel=k.microkernel,
        kernel=k.kernel,
        reasons=tuple(why),
        xnn_kernel=k.xnn,
        operator=f"Convolution (NHWC, {cc.opname})",
        op=node.op,
        m=s.x[0] * s.hout * s.wout,
        mr=k.mr,
        nr=k.nr,
        input_datatype=packed or in_dt,
        rewritten_to_fc=False,
        flush_to_zero=hw.t.flush_to_zero,
        dwconv_tile=k.dwconv_tile,
        platform=hw.platform,
    )


# ---- deconvolution (ConvTranspose2d) ------------------------------------------------------------

#: Deconvolution operators (src/subgraph/deconvolution-2d.c datatype validation, create_deconvolution_operator):
#: (input, filter, output) -> (config, ETDump operator name from src/xnnpack/operator-type-defs.inc).
_DECONV_OPS: dict[tuple[str, str, str], tuple[str, str]] = {
    ("fp32", "fp32", "fp32"): ("f32_igemm", "Deconvolution (NHWC, F32)"),
    ("fp16", "fp16", "fp16"): ("f16_gemm", "Deconvolution (NHWC, F16)"),
    ("fp16", "fp32", "fp16"): ("f16_gemm", "Deconvolution (NHWC, F16)"),
    ("qdint8", "qcint8", "fp32"): ("qd8_f32_qc8w_gemm", "Deconvolution (NHWC, QD8, F32, QC8W)"),
    ("qint8", "qint8", "qint8"): ("qs8_qc8w_gemm", "Deconvolution (NHWC, QS8)"),
    # Note: upstream spells this operator type "NC", not "NHWC" (operator-type-defs.inc); ETDump shows it so.
    ("qint8", "qcint8", "qint8"): ("qs8_qc8w_gemm", "Deconvolution (NC, QS8, QC8W)"),
    ("quint8", "quint8", "quint8"): ("qu8_gemm", "Deconvolution (NHWC, QU8)"),
}


def _is_subconv2d(c: ConvParams, packed: bool) -> bool:
    """``is_subconv2d`` (src/operators/deconvolution-nhwc.c): strided, undilated, stride <= kernel, not packed."""
    return (
        max(c.stride) > 1
        and max(c.dilation) == 1
        and c.stride[0] <= c.kernel[0]
        and c.stride[1] <= c.kernel[1]
        and not packed
    )


def _deconv_packed(hw: Hw, in_dt: str, k_dt: str, out_dt: str, why: list[str]) -> bool:
    """The packed-LHS pass for deconvolution (src/subgraph.c, xnn_node_type_deconvolution_2d case)."""
    lvl = hw.sme_level
    if in_dt == "qint8" and out_dt == "qint8" and k_dt in ("qcint8", "qint8") and lvl is not None:
        why.append(
            f"packed-LHS pass (deconv): qint8 input/output, {k_dt} filter, pqs8_qc8w available ({lvl.upper()}) "
            "-> pqint8 with XNN_FLAG_INLINE_LHS_PACKING (per-tensor filters too): "
            "xnn_create_deconvolution2d_nhwc_pqs8_qs8_qc8w"
        )
        return True
    if in_dt == "fp32" and lvl is not None:
        why.append(
            "packed-LHS pass (deconv): the node is marked pfp32 but without XNN_FLAG_INLINE_LHS_PACKING "
            "(set for convolutions only), and deconvolution-2d.c creates the generic f32 operator"
        )
    return False


def _deconv_kernel(hw: Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    if cfg == "f16_gemm" and not hw.arm64:
        return _igemm_kernel(hw, cfg, m, why)
    if not hw.arm64 or generic_table(hw, cfg) is None:
        name = x86_name(cfg) if not hw.arm64 else f"{cfg} IGEMM ukernel (not named by kleidiref)"
        return name, name, 0, 0
    return _igemm_kernel(hw, cfg, m, why)


def _deconv_nr2(hw: Hw, cfg: str, goc: int, why: list[str]) -> str:
    """``setup_variant_and_gemm_config`` (deconvolution-nhwc.c): an f32 deconvolution with fewer group output
    channels than the f32_igemm nr takes the f32_gemm_nr2 config (ARM64: its 4x2 IGEMM)."""
    tbl, nr2 = generic_table(hw, "f32_igemm"), generic_table(hw, "f32_gemm_nr2")
    if cfg == "f32_igemm" and hw.arm64 and tbl is not None and nr2 is not None and goc < tbl.nr:
        why.append(f"group output channels {goc} < f32_igemm nr {tbl.nr}: the f32_gemm_nr2 config replaces it")
        return "f32_gemm_nr2"
    return cfg


def _deconv_mr_m(node: Node, sub: bool, why: list[str]) -> int:
    """The M the IGEMM mr heuristic sees: the output pixels per image (reshape_igemm_path), or, for
    subconv2d, the batch size (reshape_subconv2d_path passes batch_size to xnn_get_heuristic_mr_igemm)."""
    out = node.output.shape
    if len(out) != 4:
        return 0
    if sub:
        why.append(
            f"subconv2d: reshape_subconv2d_path picks mr with xnn_get_heuristic_mr_igemm(batch_size = {out[0]}), "
            "not the output pixels"
        )
        return out[0]
    return out[1] * out[2]


def decide_deconv(hw: Hw, node: Node, why: list[str]) -> Decision:
    """The decision for a ``deconvolution_2d`` (ConvTranspose2d) node; ``convolution.stride`` is the upsampling."""
    c = node.convolution
    assert c is not None
    dts = (node.input.dtype, node.filter.dtype, node.output.dtype)
    if dts not in _DECONV_OPS:
        raise NodeRejected(
            f"XNNPACK has no deconvolution operator for input {dts[0]}, filter {dts[1]}, output {dts[2]}", why
        )
    packed = _deconv_packed(hw, *dts, why)
    in_dt, k_dt, out_dt = float_fallbacks(hw, *dts, None, why)
    cfg, opname = _DECONV_OPS[(in_dt, k_dt, out_dt)]
    variant: str | None = None
    if packed:
        cfg, variant, opname = "pqs8_qc8w_gemm", "pqs8_qc8w_gemm", "Deconvolution (NHWC, PQS8, QS8, QC8W)"
    elif in_dt in ("qint8", "quint8"):
        check_qs8_scale(node, node.filter.shape[0], why, kind="qs8" if in_dt == "qint8" else "qu8")
    out = node.output.shape
    m = out[0] * out[1] * out[2] if len(out) == 4 else 0
    sub = _is_subconv2d(c, packed)
    why.append(
        "subconv2d: stride > 1, no dilation, stride <= kernel and no inline LHS packing (is_subconv2d)"
        if sub
        else "IGEMM: every output pixel reads all taps, the zero buffer where a tap falls between input "
        "pixels or outside (xnn_indirection_init_deconv2d; is_subconv2d does not hold)"
    )
    cfg = _deconv_nr2(hw, cfg, node.filter.shape[0] // c.groups if node.filter.shape else 0, why)
    m_heur = _deconv_mr_m(node, sub, why)
    if cfg in KAI_CONFIGS:
        kernel, xnn, mr, nr = _igemm_kernel(hw, cfg, m_heur, why)
    else:
        kernel, xnn, mr, nr = _deconv_kernel(hw, cfg, m_heur, why)
    why += fz_reason(hw, out_dt in ("fp32", "fp16"))
    return Decision(
        variant=variant,
        config=cfg,
        microkernel="subconv2d" if sub else "igemm",
        kernel=kernel,
        reasons=tuple(why),
        xnn_kernel=xnn,
        operator=opname,
        op="deconvolution_2d",
        m=m,
        mr=mr,
        nr=nr,
        input_datatype="pqint8" if packed else in_dt,
        rewritten_to_fc=False,
        flush_to_zero=hw.t.flush_to_zero,
        platform=hw.platform,
    )
