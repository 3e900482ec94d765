"""One test per dispatch rule of spec/dispatch.md (§3-§5), including the rejections."""

from __future__ import annotations

from typing import Any

import pytest

from kleidiref.dispatch import (
    CaseError,
    ConvParams,
    Decision,
    Node,
    NodeRejected,
    TensorSpec,
    decide,
    explain_case,
    parse_case,
)
from kleidiref.targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, Target

SME2 = APPLE_M4
SME1 = GENERIC_SME1
NO_KAI = Target(kleidiai=False)
X86 = Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)
DOT_ONLY = Target(sme2=False, sme=False, i8mm=False, dotprod=True)
BARE_ARM = Target(sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)


def T(dtype: str, shape: tuple[int, ...], **kw: Any) -> TensorSpec:
    return TensorSpec(dtype, shape, **kw)


def fc(
    in_dt: str = "fp32",
    k_dt: str = "fp32",
    out_dt: str = "fp32",
    m: int = 4,
    n: int = 32,
    k: int = 64,
    *,
    bias: str | None = "fp32",
    flags: tuple[str, ...] = (),
    **fkw: Any,
) -> Node:
    fshape = (k, n) if "transpose_weights" in flags else (n, k)
    return Node(
        op="fully_connected",
        input=T(in_dt, (m, k)),
        filter=T(k_dt, fshape, static=True, **fkw),
        output=T(out_dt, (m, n)),
        bias=None if bias is None else T(bias, (n,)),
        flags=flags,
    )


def conv(
    in_dt: str = "fp32",
    k_dt: str = "fp32",
    out_dt: str = "fp32",
    *,
    cin: int = 32,
    cout: int = 16,
    kh: int = 3,
    kw: int = 3,
    stride: int = 1,
    pad: int = 1,
    groups: int = 1,
    hw: int = 8,
    **fkw: Any,
) -> Node:
    ho = (hw + 2 * pad - kh) // stride + 1
    wo = (hw + 2 * pad - kw) // stride + 1
    return Node(
        op="convolution_2d",
        input=T(in_dt, (1, hw, hw, cin)),
        filter=T(k_dt, (cout, kh, kw, cin // groups), static=True, **fkw),
        output=T(out_dt, (1, ho, wo, cout)),
        convolution=ConvParams(kernel=(kh, kw), stride=(stride, stride), padding=(pad, pad, pad, pad), groups=groups),
    )


def bmm(dt: str = "fp32", bdt: str | None = None, out: str | None = None, m: int = 4, *, tb: bool = False) -> Node:
    b_shape = (2, 8, 64) if tb else (2, 64, 8)
    return Node(
        op="batch_matrix_multiply",
        input=T(dt, (2, m, 64)),
        filter=T(bdt or dt, b_shape),
        output=T(out or dt, (2, m, 8)),
        flags=("transpose_b",) if tb else (),
    )


def has(d: Decision | NodeRejected, text: str) -> bool:
    return any(text in r for r in d.reasons)


# ---- §3.1 pf32 and the SME2 -> SME branch order ------------------------------------------------


def test_pf32_fc_sme2_mopa_and_gemv() -> None:
    d = decide(fc(), SME2)
    assert (d.variant, d.config, d.microkernel) == ("pf32_gemm", "pf32_gemm", "gemm")
    assert d.kernel == "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"
    assert d.xnn_kernel == "xnn_pf32_gemm_minmax_ukernel_32x32__neonsme2"
    g = decide(fc(m=1), SME2)
    assert g.kernel == "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla" and g.mr == 1
    assert g.xnn_kernel == "xnn_pf32_gemm_minmax_ukernel_1x32__neonsme2"


def test_pf32_sme1_branch() -> None:
    assert decide(fc(), SME1).kernel == "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa"
    assert decide(fc(m=1), SME1).kernel == "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla"


@pytest.mark.parametrize("svl,tile", [(128, 8), (256, 16), (512, 32), (1024, 64), (2048, 128)])
def test_sme_xnn_names_scale_with_svl(svl: int, tile: int) -> None:
    d = decide(fc(), SME2.replace(svl_bits=svl))
    assert d.xnn_kernel == f"xnn_pf32_gemm_minmax_ukernel_{tile}x{tile}__neonsme2"
    assert (d.mr, d.nr) == (tile, tile)
    q = decide(fc("qdint8", "qcint8", bias="fp32"), SME2.replace(svl_bits=svl))
    assert q.xnn_kernel == f"xnn_qp8_f32_qc8w_gemm_minmax_ukernel_{tile // 2}x{tile * 2}c4__neonsme2"


def test_pf32_needs_kleidiai_and_arm64() -> None:
    for t in (NO_KAI, X86, NEON_ONLY):
        d = decide(fc(), t)
        assert d.variant is None and d.config == "f32_gemm"
    assert has(decide(fc(), NO_KAI), "without KleidiAI")
    assert has(decide(fc(), NEON_ONLY), "neither SME2 nor SME")


def test_pf32_with_fp16_weights_and_transposed_weights() -> None:
    d = decide(fc(k_dt="fp16"), SME2)
    assert d.variant == "pf32_gemm" and has(d, "converts the weights to fp32")
    assert decide(fc(flags=("transpose_weights",)), SME2).variant == "pf32_gemm"


def test_f32_gemm_m1_and_mr() -> None:
    d = decide(fc(m=1), NEON_ONLY)
    assert d.kernel == "xnn_f32_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_2" and d.mr == 1
    d = decide(fc(m=100), NEON_ONLY)
    assert d.kernel.endswith("7x8__asm_aarch64_neonfma_ld128_2") and d.mr == 7


def test_apple_platform_f32_acc4() -> None:
    d = decide(fc(m=1), NEON_ONLY, platform="apple")
    assert d.kernel == "xnn_f32_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4"
    assert decide(fc(m=9), NEON_ONLY, platform="apple").mr == 6


@pytest.mark.parametrize(
    "n,nr2",
    [
        (1, True),
        (2, True),
        (7, True),
        (8, False),
        (9, True),
        (64, False),
        (36, True),
        (130, True),
        (1026, False),
    ],
)
def test_f32_nr2_switch(n: int, nr2: bool) -> None:
    # xnn_use_nr2: nr > N, or over(2) < over(8) and over(8) * 100 > N.
    d = decide(fc(n=n), NEON_ONLY)
    assert (d.config == "f32_gemm_nr2") == nr2
    if nr2:
        assert d.kernel == "xnn_f32_gemm_minmax_ukernel_4x2__asm_aarch64_neonfma_ld128" and d.mr == 4


# ---- §3.2 pf16 and the fp16 fallbacks --------------------------------------------------------


def test_pf16_fc_and_names() -> None:
    d = decide(fc("fp16", "fp16", "fp16", bias="fp16"), SME2)
    assert d.variant == "pf16_gemm" and d.kernel == "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa"
    assert d.xnn_kernel == "xnn_pf16_gemm_minmax_ukernel_32x32c2__neonsme2"
    g = decide(fc("fp16", "fp16", "fp16", m=1), SME1)
    assert g.kernel == "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla"
    # the name carries the kernel tile; the config nr is max(kernel nr, 16) at SVL 128
    d128 = decide(fc("fp16", "fp16", "fp16"), SME2.replace(svl_bits=128))
    assert d128.xnn_kernel.endswith("8x8c2__neonsme2") and (d128.mr, d128.nr) == (8, 16)


def test_fp16_fc_with_fp32_filter_is_generic() -> None:
    d = decide(fc("fp16", "fp32", "fp16"), SME2)
    assert d.variant is None and d.config == "f16_gemm" and has(d, "pf16 needs an fp16 filter")


def test_fp16_1x1_conv_becomes_generic_fc() -> None:
    d = decide(conv("fp16", "fp32", "fp16", kh=1, kw=1, pad=0), SME2)
    assert d.rewritten_to_fc and d.op == "fully_connected"
    assert (
        d.variant is None
        and d.config == "f16_gemm"
        and has(d, "this 1x1 convolution was serialized with an fp32 filter")
    )


def test_fp16_3x3_conv_with_fp32_filter_is_pf16() -> None:
    d = decide(conv("fp16", "fp32", "fp16"), SME2)
    assert (d.variant, d.microkernel, d.config) == ("pf16_gemm", "igemm", "pf16_gemm")
    assert d.xnn_kernel == "xnn_pf16_f16_igemm_minmax_fp16_ukernel_32x32c2__neonsme2"


def test_f16_gemm_m1_vs_6row() -> None:
    one = decide(fc("fp16", "fp16", "fp16", m=1), NEON_ONLY)
    six = decide(fc("fp16", "fp16", "fp16", m=3), NEON_ONLY)
    assert one.kernel == "xnn_f16_gemm_minmax_ukernel_1x16__asm_aarch64_neonfp16arith_ld64" and one.mr == 1
    assert six.kernel == "xnn_f16_gemm_minmax_ukernel_6x16__asm_aarch64_neonfp16arith_cortex_a75" and six.mr == 6


def test_fp16_without_fp16_arith_falls_back_to_fp32() -> None:
    d = decide(fc("fp16", "fp16", "fp16"), BARE_ARM)
    assert d.config == "f32_gemm" and d.variant is None and has(d, "rewrites it to fp32")


@pytest.mark.parametrize(
    ("m", "mr", "name"),
    [
        (1, 1, "xnn_f16_f32acc_gemm_minmax_ukernel_1x16__avx2_broadcast"),
        (3, 4, "xnn_f16_f32acc_gemm_minmax_ukernel_4x16__avx2_broadcast"),
        (9, 4, "xnn_f16_f32acc_gemm_minmax_ukernel_4x16__avx2_broadcast"),
    ],
)
def test_x86_f16_fc_and_bmm_name_the_avx2_f32acc_kernels(m: int, mr: int, name: str) -> None:
    for node in (fc("fp16", "fp16", "fp16", m=m), bmm("fp16", m=m)):
        d = decide(node, X86)
        assert (d.config, d.variant, d.microkernel) == ("f16_gemm", None, "gemm")
        assert d.kernel == d.xnn_kernel == name and (d.mr, d.nr) == (mr, 16)
        assert has(d, "ISA level avx2") and has(d, "unsupported_hardware") and has(d, "daf152873a")


def test_x86_f16_conv_igemm_heuristic_names_the_avx2_f32acc_kernels() -> None:
    d = decide(conv("fp16", "fp16", "fp16"), X86)  # 8x8 output pixels
    assert (d.config, d.microkernel) == ("f16_gemm", "igemm")
    assert d.kernel == "xnn_f16_f32acc_igemm_minmax_ukernel_4x16__avx2_broadcast" and (d.mr, d.nr) == (4, 16)
    assert has(d, "ISA level avx2")
    one = decide(conv("fp16", "fp16", "fp16", hw=3, pad=0), X86)  # a single output pixel
    assert one.kernel == "xnn_f16_f32acc_igemm_minmax_ukernel_1x16__avx2_broadcast" and one.mr == 1
    fc1 = decide(conv("fp16", "fp16", "fp16", kh=1, kw=1, pad=0), X86)
    assert fc1.rewritten_to_fc and fc1.kernel == "xnn_f16_f32acc_gemm_minmax_ukernel_4x16__avx2_broadcast"


@pytest.mark.parametrize(
    ("t", "platform", "m", "k_dt", "name", "mr", "nr"),
    [
        (SME2, "linux", 1, "qcint8", "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4", 1, 8),
        (SME2, "apple", 1, "qcint8", "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128", 1, 8),
        (NO_KAI, "linux", 4, "qcint8", "xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128", 6, 8),
        (BARE_ARM, "apple", 7, "qcint8", "xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128", 6, 8),
        (SME2, "linux", 1, "qcint4", "xnn_f32_qc4w_gemm_minmax_ukernel_1x8__aarch64_neonfma_lane_ld128", 1, 8),
        (SME2, "apple", 4, "qcint4", "xnn_f32_qc4w_gemm_minmax_ukernel_6x8__aarch64_neonfma_lane_ld128", 6, 8),
        (X86, "linux", 1, "qcint8", "xnn_f32_qc8w_gemm_minmax_ukernel_1x16__avx2_broadcast", 1, 16),
        (X86, "linux", 4, "qcint8", "xnn_f32_qc8w_gemm_minmax_ukernel_5x16__avx2_broadcast", 5, 16),
        (X86, "linux", 4, "qcint4", "xnn_f32_qc4w_gemm_minmax_ukernel_3x16__avx2_broadcast", 3, 16),
    ],
)
def test_weight_only_fc_names_exact_kernels(
    t: Target, platform: Any, m: int, k_dt: str, name: str, mr: int, nr: int
) -> None:
    d = decide(fc("fp32", k_dt, "fp32", m=m), t, platform=platform)
    cfg = "f32_qc8w_gemm" if k_dt == "qcint8" else "f32_qc4w_gemm"
    assert (d.config, d.variant, d.input_datatype) == (cfg, None, "fp32")
    assert d.kernel == d.xnn_kernel == name and (d.mr, d.nr) == (mr, nr)
    assert has(d, "the bias is scaled too") and not has(d, "not emulated")
    assert has(d, "ISA level avx2") == (t.arch == "x86_64")
    nobias = decide(fc("fp32", k_dt, "fp32", m=m, bias=None), t, platform=platform)
    assert not has(nobias, "bias is scaled")


def test_bf16_runs_f32_gemm() -> None:
    d = decide(fc("bf16", "bf16", "bf16"), SME2)
    assert d.config == "f32_gemm" and d.variant is None and has(d, "bf16")


# ---- §3.3 pqs8 --------------------------------------------------------------------------------


def test_pqs8_fc_per_channel() -> None:
    d = decide(fc("qint8", "qcint8", "qint8", bias="qcint32"), SME2)
    assert (
        d.variant == "pqs8_qc8w_gemm"
        and d.kernel == "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa"
    )
    g = decide(fc("qint8", "qcint8", "qint8", m=1), SME2)
    assert g.kernel == "kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot"


def test_pqs8_sme1_has_no_gemv() -> None:
    d = decide(fc("qint8", "qcint8", "qint8", m=1), SME1)
    assert d.kernel == "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa" and d.mr == 32
    assert has(d, "no 1-row kernel")


def test_per_tensor_fc_is_generic_but_per_tensor_conv_is_pqs8() -> None:
    d = decide(fc("qint8", "qint8", "qint8", bias="qint32"), SME2)
    assert d.variant is None and d.config == "qs8_qc8w_gemm" and has(d, "per-channel")
    c = decide(conv("qint8", "qint8", "qint8"), SME2)
    assert c.variant == "pqs8_qc8w_gemm" and c.microkernel == "igemm"


def test_qs8_generic_kernels_by_isa() -> None:
    assert decide(fc("qint8", "qcint8", "qint8"), NEON_ONLY).kernel.endswith("4x16c8__neoni8mm")
    assert decide(fc("qint8", "qcint8", "qint8"), DOT_ONLY).kernel.endswith("4x16c4__asm_aarch64_neondot_ld128")
    assert decide(fc("qint8", "qcint8", "qint8"), BARE_ARM).kernel.endswith("2x8c8__asm_aarch64_neon_mlal")


def test_qs8_requantization_scale_rejected() -> None:
    node = fc("qint8", "qcint8", "qint8")
    ok = Node(
        op=node.op,
        input=T("qint8", (4, 64), scale=0.5),
        filter=T("qcint8", (32, 64), scale=(1.0,) * 32),
        output=T("qint8", (4, 32), scale=0.01),
    )
    assert decide(ok, SME2).variant == "pqs8_qc8w_gemm"
    bad = Node(
        op=node.op,
        input=T("qint8", (4, 64), scale=4.0),
        filter=T("qcint8", (32, 64), scale=(1.0,) * 32),
        output=T("qint8", (4, 32), scale=0.01),
    )
    with pytest.raises(NodeRejected, match=">= 256"):
        decide(bad, SME2)


# ---- §3.4 / §4.7 qp8 qc8w: SME2 -> SME -> i8mm -> dotprod -> qd8 --------------------------------


@pytest.mark.parametrize(
    "t,kernel",
    [
        (SME2, "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa"),
        (SME1, "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa"),
        (NEON_ONLY, "kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm"),
        (DOT_ONLY, "kai_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod"),
    ],
)
def test_qp8_qc8w_branch_order(t: Target, kernel: str) -> None:
    d = decide(fc("qdint8", "qcint8"), t)
    assert d.variant == "qp8_f32_qc8w_gemm" and d.kernel == kernel and d.input_datatype == "qpint8"


def test_qp8_qc8w_gemv() -> None:
    assert decide(fc("qdint8", "qcint8", m=1), SME2).kernel.endswith("1x4vl_sme2_dot")
    assert decide(fc("qdint8", "qcint8", m=1), DOT_ONLY).kernel == (
        "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod"
    )


def test_qd8_qc8w_without_kleidiai_or_dotprod() -> None:
    for t in (NO_KAI, BARE_ARM, X86):
        d = decide(fc("qdint8", "qcint8"), t)
        assert d.config == "qd8_f32_qc8w_gemm" and d.variant is None
    assert decide(fc("qdint8", "qcint8"), BARE_ARM).kernel.endswith("2x8c2s4__neon_mlal")


def test_fp16_output_dynamic_fc_never_qp8() -> None:
    d = decide(fc("qdint8", "qcint8", "fp16"), SME2)
    assert d.variant is None and d.config == "qd8_f16_qc8w_gemm" and has(d, "fp16 output")


def test_qc4w_is_the_qp8_f32_qc4w_gemm_variant() -> None:
    d = decide(fc("qdint8", "qcint4", zero_point=8), SME2)
    assert d.config == d.variant == "qp8_f32_qc4w_gemm" and d.input_datatype == "qpint8"


# ---- §3.5 qb4w ----------------------------------------------------------------------------------


def test_qb4w_has_no_sme_branch() -> None:
    d = decide(fc("qdint8", "qbint4", zero_point=8, block_size=32), SME2)
    assert (
        d.variant == "qp8_f32_qb4w_gemm" and d.kernel == "kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm"
    )
    g = decide(fc("qdint8", "qbint4", m=1, zero_point=8, block_size=32), DOT_ONLY)
    assert g.kernel == "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod"
    # SME without I8MM/DotProd: no qb4w KleidiAI path
    d = decide(fc("qdint8", "qbint4", zero_point=8, block_size=32), Target(i8mm=False, dotprod=False))
    assert d.config == "qd8_f32_qb4w_gemm" and d.variant is None


def test_fp16_qb4w_on_sme_is_flagged_unsupported_by_decide() -> None:
    """qd8_f16_qb4w is never enabled (xnn_status_unsupported_hardware): decide says so where it is chosen."""
    node = fc("qdint8", "qbint4", "fp16", zero_point=8, block_size=32, bias="fp16")
    d = decide(node, SME2)
    assert d.config == "qd8_f16_qb4w_gemm" and d.unsupported is not None
    assert "xnn_status_unsupported_hardware" in d.unsupported and "REFUSED" in d.describe()
    assert d.to_json()["unsupported"] == d.unsupported
    ok = decide(node, DOT_ONLY)  # no pf16 config: rewritten to fp32, runs qd8_f32_qb4w
    assert ok.config == "qd8_f32_qb4w_gemm" and ok.unsupported is None and "REFUSED" not in ok.describe()


def test_qb4w_zero_point_0_uses_qd8() -> None:
    d = decide(fc("qdint8", "qbint4", zero_point=0, block_size=32), SME2)
    assert d.config == "qd8_f32_qb4w_gemm" and has(d, "zero point 8")


@pytest.mark.parametrize(
    "bs,k,match",
    [
        (16, 64, "multiple of 32"),
        (48, 96, "multiple of 32"),
        (64, 96, "does not divide"),
        (None, 64, "needs a block_size"),
    ],
)
def test_qb4w_block_size_rejected(bs: int | None, k: int, match: str) -> None:
    with pytest.raises(NodeRejected, match=match):
        decide(fc("qdint8", "qbint4", k=k, zero_point=8, block_size=bs), SME2)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), 1e-40])
def test_qb4w_bad_scale_rejected(bad: float) -> None:
    scales = (1.0,) * 63 + (bad,)
    with pytest.raises(NodeRejected, match="finite, normal and > 0"):
        decide(fc("qdint8", "qbint4", zero_point=8, block_size=32, scale=scales), SME2)


def test_4bit_zero_point_rejected() -> None:
    with pytest.raises(NodeRejected, match="zero point 0"):
        decide(fc("qdint8", "qbint4", zero_point=3, block_size=32), SME2)
    with pytest.raises(NodeRejected, match="zero point"):
        decide(fc("qdint8", "qcint4", zero_point=1), SME2)


# ---- §4.2 conv -> FC rewrite and §4.5 micro-kernel types --------------------------------------


def test_conv_1x1_rewrite_reaches_every_fc_variant() -> None:
    assert decide(conv(kh=1, kw=1, pad=0), SME2).variant == "pf32_gemm"
    d = decide(conv("qdint8", "qcint8", "fp32", kh=1, kw=1, pad=0), SME2)
    assert d.rewritten_to_fc and d.variant == "qp8_f32_qc8w_gemm" and d.m == 64
    assert decide(conv("qint8", "qcint8", "qint8", kh=1, kw=1, pad=0), SME2).variant == "pqs8_qc8w_gemm"
    # per-tensor 1x1 conv -> FC with a qint8 kernel -> generic
    assert decide(conv("qint8", "qint8", "qint8", kh=1, kw=1, pad=0), SME2).variant is None


@pytest.mark.parametrize("kw", [dict(stride=2, pad=0), dict(pad=1), dict(groups=2)])
def test_conv_1x1_without_rewrite(kw: dict[str, Any]) -> None:
    d = decide(conv(kh=1, kw=1, **{"pad": 0, **kw}), SME2)
    assert not d.rewritten_to_fc and d.microkernel == "igemm" and d.variant == "pf32_gemm"
    assert has(d, "no conv -> FC rewrite")


def test_conv_cin_plus_cout_le_2_is_3_tap_dwconv() -> None:
    # vmulcaddc never runs at the pin (convolution-nhwc.c never stores the vmulcaddc config): 3-tap dwconv
    d = decide(conv(cin=1, cout=1, kh=1, kw=1, pad=0), SME2)
    assert not d.rewritten_to_fc and d.microkernel == "dwconv" and d.variant is None
    assert d.kernel == "xnn_f32_dwconv_minmax_ukernel_3p8c__neonfma" and d.dwconv_tile == 3


@pytest.mark.parametrize("k,tile", [(1, 3), (2, 4), (3, 9), (5, 25)])
def test_depthwise_runs_generic_dwconv(k: int, tile: int) -> None:
    d = decide(conv(cin=16, cout=16, groups=16, kh=k, kw=k, pad=k // 2), SME2)
    if k == 1:
        d = decide(conv(cin=16, cout=16, groups=16, kh=1, kw=2, pad=0), SME2)
        tile = 3
    assert d.microkernel == "dwconv" and d.variant is None and d.dwconv_tile == tile
    assert d.config == "f32_dwconv"


def test_depthwise_too_big_or_qd8_runs_igemm() -> None:
    d = decide(conv(cin=16, cout=16, groups=16, kh=7, kw=7, pad=3), SME2)
    assert d.microkernel == "igemm" and d.variant == "pf32_gemm"
    q = decide(conv("qdint8", "qcint8", "fp32", cin=16, cout=16, groups=16), SME2)
    assert q.microkernel == "igemm" and q.config == "qd8_f32_qc8w_gemm"
    s = decide(conv("qint8", "qcint8", "qint8", cin=16, cout=16, groups=16, kh=2, kw=2, pad=0), SME2)
    assert s.microkernel == "dwconv" and s.dwconv_tile == 9 and s.config == "qs8_qc8w_dwconv"


def test_dynamic_quant_conv_never_qp8() -> None:
    d = decide(conv("qdint8", "qcint8", "fp32"), SME2)
    assert d.variant is None and d.config == "qd8_f32_qc8w_gemm" and d.microkernel == "igemm"
    assert d.kernel == "xnn_qd8_f32_qc8w_igemm_minmax_ukernel_4x16c8__neoni8mm"


def test_conv_igemm_generic_heuristic_and_nr2() -> None:
    d = decide(conv(hw=1, kh=1, kw=1, pad=0, stride=2), NEON_ONLY)  # one output pixel
    assert d.kernel == "xnn_f32_igemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld64"
    d = decide(conv(cout=32), NEON_ONLY)  # 64 pixels
    assert d.mr == 6
    d = decide(conv(cout=4), NEON_ONLY)
    assert d.config == "f32_gemm_nr2" and d.nr == 2


def test_pf16_conv_svl128_hazard() -> None:
    d = decide(conv("fp16", "fp16", "fp16"), SME2.replace(svl_bits=128))
    assert has(d, "upstream hazard")


def test_conv_rejections() -> None:
    with pytest.raises(NodeRejected, match="rejects a qbint4 filter"):
        decide(conv("qdint8", "qbint4", "fp32", block_size=32), SME2)
    with pytest.raises(NodeRejected, match="no convolution operator"):
        decide(conv("fp32", "qcint8", "fp32"), SME2)
    with pytest.raises(NodeRejected, match="groups"):
        decide(
            Node(
                op="convolution_2d",
                input=T("fp32", (1, 8, 8, 30)),
                filter=T("fp32", (16, 3, 3, 7)),
                output=T("fp32", (1, 8, 8, 16)),
                convolution=ConvParams(kernel=(3, 3), padding=(1, 1, 1, 1), groups=4),
            ),
            SME2,
        )


# ---- §4.6 BMM -----------------------------------------------------------------------------------


def test_bmm_tables() -> None:
    assert decide(bmm(), SME2).variant == "pf32_gemm"
    assert decide(bmm(tb=True), SME2).variant == "pf32_gemm"
    assert decide(bmm("fp16"), SME2).variant == "pf16_gemm"
    assert decide(bmm(), NEON_ONLY).config == "f32_gemm"
    q = decide(bmm("qdint8", "qcint8", "fp32"), SME2)
    assert q.variant == "qp8_f32_qc8w_gemm"
    s = decide(bmm("qint8"), SME2)
    assert s.variant is None and s.config == "qs8_qc8w_gemm"


def test_bmm_k_mismatch_rejected() -> None:
    bad = Node(
        op="batch_matrix_multiply",
        input=T("fp32", (2, 4, 64)),
        filter=T("fp32", (2, 63, 8)),
        output=T("fp32", (2, 4, 8)),
    )
    with pytest.raises(NodeRejected, match="K"):
        decide(bad, SME2)


def test_unsupported_fc_combination_rejected() -> None:
    with pytest.raises(NodeRejected, match="no fully connected operator"):
        decide(fc("fp32", "qint8", "fp32"), SME2)
    with pytest.raises(NodeRejected, match="does not match"):
        decide(
            Node(
                op="fully_connected",
                input=T("fp32", (4, 64)),
                filter=T("fp32", (32, 60)),
                output=T("fp32", (4, 32)),
            ),
            SME2,
        )


# ---- §8 flush-to-zero ---------------------------------------------------------------------------


def test_flush_to_zero_reasons() -> None:
    assert decide(fc(), SME2).flush_to_zero and has(decide(fc(), SME2), "FPCR.FZ/FZ16 set")
    off = decide(fc(), SME2.replace(flush_to_zero=False))
    assert not off.flush_to_zero and has(off, "flush-to-zero off")
    assert not has(decide(fc("qint8", "qcint8", "qint8"), SME2), "flush-to-zero")


# ---- CASE parsing -------------------------------------------------------------------------------

TARGET = {
    "arch": "arm64",
    "kleidiai": True,
    "sme2": True,
    "sme": True,
    "i8mm": True,
    "dotprod": True,
    "fp16_arith": True,
    "svl_bits": 512,
}
NODE: dict[str, Any] = {
    "op": "fully_connected",
    "input": {"dtype": "fp32", "shape": [4, 64]},
    "filter": {"dtype": "fp32", "shape": [32, 64], "static": True},
    "bias": None,
    "output": {"dtype": "fp32", "shape": [4, 32]},
    "flags": [],
}


def test_parse_case_roundtrip() -> None:
    node, t, platform = parse_case({"target": TARGET, "node": NODE})
    assert node.filter.static and t.svl_bits == 512 and platform == "linux"
    d = explain_case({"target": TARGET, "node": NODE})
    assert isinstance(d, Decision) and set(d.to_json()) == {
        "variant",
        "config",
        "microkernel",
        "kernel",
        "reasons",
        "unsupported",
    }


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda c: c["node"]["input"].update(dtype="float32"), "not an XNNPACK datatype"),
        (lambda c: c["node"].update(op="conv"), "node.op"),
        (lambda c: c["target"].pop("svl_bits"), "missing"),
        (lambda c: c["target"].update(svl_bits=384), "SVL 384"),
        (lambda c: c["target"].update(sme=False), "implies FEAT_SME"),
        (lambda c: c["node"].update(flags=["bogus"]), "unknown flag"),
        (lambda c: c["node"]["filter"].update(shape=[32, "64"]), "shape"),
        (lambda c: c["node"].pop("filter"), "needs 'filter'"),
        (lambda c: c["node"].update(op="convolution_2d"), "convolution"),
    ],
)
def test_parse_case_errors(mutate: Any, match: str) -> None:
    import copy

    case = copy.deepcopy({"target": TARGET, "node": NODE})
    mutate(case)
    with pytest.raises(CaseError, match=match):
        parse_case(case)


def test_explain_case_returns_rejection() -> None:
    node = dict(
        NODE,
        input={"dtype": "qdint8", "shape": [1, 64]},
        filter={"dtype": "qbint4", "shape": [32, 64], "zero_point": 8, "block_size": 16},
        output={"dtype": "fp32", "shape": [1, 32]},
    )
    r = explain_case({"target": TARGET, "node": node})
    assert isinstance(r, NodeRejected) and "block size" in str(r)


# ---- spec §5.1: the ExecuTorch recipe table, "SME2 + KleidiAI" column ------------------------------

RECIPES: list[tuple[str, Node, str | None, str]] = [
    ("fp32 linear", fc(), "pf32_gemm", "gemm"),
    (
        "fp32 linear, non-static weights",
        Node(
            op="fully_connected",
            input=T("fp32", (4, 64)),
            filter=T("fp32", (32, 64), static=False),
            output=T("fp32", (4, 32)),
        ),
        "pf32_gemm",
        "gemm",
    ),
    ("fp32 x @ W", fc(flags=("transpose_weights",), bias=None), "pf32_gemm", "gemm"),
    ("fp32 conv 1x1", conv(kh=1, kw=1, pad=0), "pf32_gemm", "gemm"),
    ("fp32 conv 3x3", conv(), "pf32_gemm", "igemm"),
    ("fp32 depthwise 3x3", conv(cin=32, cout=32, groups=32), None, "dwconv"),
    ("fp32 bmm", bmm(), "pf32_gemm", "gemm"),
    ("fp16 linear", fc("fp16", "fp16", "fp16", bias="fp16"), "pf16_gemm", "gemm"),
    ("fp16 conv 3x3 (fp32 W)", conv("fp16", "fp32", "fp16"), "pf16_gemm", "igemm"),
    ("fp16 conv 1x1 (fp32 W)", conv("fp16", "fp32", "fp16", kh=1, kw=1, pad=0), None, "gemm"),
    ("fp16 bmm", bmm("fp16"), "pf16_gemm", "gemm"),
    ("bf16 linear", fc("bf16", "bf16", "bf16", bias="fp32"), None, "gemm"),
    ("static per-channel linear", fc("qint8", "qcint8", "qint8", bias="qcint32"), "pqs8_qc8w_gemm", "gemm"),
    ("static per-channel conv 3x3", conv("qint8", "qcint8", "qint8"), "pqs8_qc8w_gemm", "igemm"),
    ("static per-channel conv 1x1", conv("qint8", "qcint8", "qint8", kh=1, kw=1, pad=0), "pqs8_qc8w_gemm", "gemm"),
    ("static per-tensor linear", fc("qint8", "qint8", "qint8", bias="qint32"), None, "gemm"),
    ("static per-tensor conv 3x3", conv("qint8", "qint8", "qint8"), "pqs8_qc8w_gemm", "igemm"),
    ("static per-tensor conv 1x1", conv("qint8", "qint8", "qint8", kh=1, kw=1, pad=0), None, "gemm"),
    ("dynamic per-channel linear", fc("qdint8", "qcint8"), "qp8_f32_qc8w_gemm", "gemm"),
    ("dynamic per-channel conv 3x3", conv("qdint8", "qcint8", "fp32"), None, "igemm"),
    (
        "dynamic per-channel conv 1x1",
        conv("qdint8", "qcint8", "fp32", kh=1, kw=1, pad=0),
        "qp8_f32_qc8w_gemm",
        "gemm",
    ),
    ("dynamic qc4w linear", fc("qdint8", "qcint4", zero_point=8), "qp8_f32_qc4w_gemm", "gemm"),
    ("8da4w PerGroup(32)", fc("qdint8", "qbint4", zero_point=8, block_size=32), "qp8_f32_qb4w_gemm", "gemm"),
    ("8da4w PerAxis (gs = K)", fc("qdint8", "qbint4", zero_point=8, block_size=64), "qp8_f32_qb4w_gemm", "gemm"),
    ("8da8w PerAxis", fc("qdint8", "qcint8"), "qp8_f32_qc8w_gemm", "gemm"),
    ("fp16 model + dynamic linear", fc("qdint8", "qcint8", "fp16"), None, "gemm"),
]


@pytest.mark.parametrize("name,node,variant,mk", RECIPES, ids=[r[0] for r in RECIPES])
def test_executorch_recipe_table(name: str, node: Node, variant: str | None, mk: str) -> None:
    d = decide(node, SME2)
    assert (d.variant, d.microkernel) == (variant, mk), name


def test_qc4w_conv_is_rejected_even_as_1x1() -> None:
    # spec §5.1: "exports, fails at load (no qd8 x qc4w conv)": the define-time datatype check
    # runs before the conv -> FC rewrite.
    for kk, pad in ((3, 1), (1, 0)):
        with pytest.raises(NodeRejected, match="4-bit"):
            decide(conv("qdint8", "qcint4", "fp32", kh=kk, kw=kk, pad=pad, zero_point=8), SME2)
    with pytest.raises(NodeRejected, match="rejects a bf16 input"):
        decide(conv("bf16", "fp32", "fp32"), SME2)


@pytest.mark.parametrize("svl", [None, 0, "omit"])
def test_target_without_sme_takes_no_svl(svl: Any) -> None:
    tgt: dict[str, Any] = {
        "arch": "arm64",
        "kleidiai": True,
        "sme2": False,
        "sme": False,
        "i8mm": True,
        "dotprod": True,
        "fp16_arith": True,
    }
    if svl != "omit":
        tgt["svl_bits"] = svl
    obj = {
        "target": tgt,
        "node": {
            "op": "fully_connected",
            "input": {"dtype": "fp32", "shape": [4, 64]},
            "filter": {"dtype": "fp32", "shape": [32, 64], "static": True},
            "output": {"dtype": "fp32", "shape": [4, 32]},
        },
    }
    d = explain_case(obj)
    assert isinstance(d, Decision) and d.config == "f32_gemm"
    assert "SVL" not in d.describe() and d.reasons[0] == "arm64 target with I8MM, DotProd, FP16; built with KleidiAI"
    sme = dict(tgt, sme=True)
    sme.pop("svl_bits", None)
    with pytest.raises(CaseError, match="svl_bits"):
        parse_case(dict(obj, target=sme))
