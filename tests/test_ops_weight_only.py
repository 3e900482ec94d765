"""Op-level runs of the weight-only f32_qc8w / f32_qc4w fully-connected configs (fp32 in, int weights)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _exact import eq

from kleidiref import fallbacks as F
from kleidiref.dispatch import Node, Platform, TensorSpec, decide, f32_qcw_choice
from kleidiref.ops import QuantParams, batch_matrix_multiply, fully_connected
from kleidiref.targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, Target

F32 = np.float32
NO_KAI = Target(kleidiai=False)
X86 = Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False, name="x86")
rng = np.random.default_rng(11)


X = rng.standard_normal((5, 40)).astype(F32)
W8 = rng.integers(-127, 128, (12, 40)).astype(np.int8)
W4 = rng.integers(-8, 8, (12, 40)).astype(np.int8)
S = rng.uniform(0.005, 0.05, 12).astype(F32)
B = rng.standard_normal(12).astype(F32)
CLAMP: dict[str, Any] = dict(output_min=-1.5, output_max=2.0)

ARM_NAMES = {
    ("f32_qc8w_gemm", 1, "linux"): "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4",
    ("f32_qc8w_gemm", 1, "apple"): "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128",
    ("f32_qc8w_gemm", 5, "linux"): "xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128",
    ("f32_qc8w_gemm", 5, "apple"): "xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128",
    ("f32_qc4w_gemm", 1, "linux"): "xnn_f32_qc4w_gemm_minmax_ukernel_1x8__aarch64_neonfma_lane_ld128",
    ("f32_qc4w_gemm", 1, "apple"): "xnn_f32_qc4w_gemm_minmax_ukernel_1x8__aarch64_neonfma_lane_ld128",
    ("f32_qc4w_gemm", 5, "linux"): "xnn_f32_qc4w_gemm_minmax_ukernel_6x8__aarch64_neonfma_lane_ld128",
    ("f32_qc4w_gemm", 5, "apple"): "xnn_f32_qc4w_gemm_minmax_ukernel_6x8__aarch64_neonfma_lane_ld128",
}
X86_NAMES = {
    ("f32_qc8w_gemm", 1): ("xnn_f32_qc8w_gemm_minmax_ukernel_1x16__avx2_broadcast", 1),
    ("f32_qc8w_gemm", 5): ("xnn_f32_qc8w_gemm_minmax_ukernel_5x16__avx2_broadcast", 5),
    ("f32_qc4w_gemm", 1): ("xnn_f32_qc4w_gemm_minmax_ukernel_1x16__avx2_broadcast", 1),
    ("f32_qc4w_gemm", 5): ("xnn_f32_qc4w_gemm_minmax_ukernel_3x16__avx2_broadcast", 3),
}


def _ref(cfg: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, kernel: str, t: Target) -> np.ndarray:
    kw: dict[str, Any] = dict(clamp_min=-1.5, clamp_max=2.0, fz=t.flush_to_zero, kernel=kernel)
    if cfg == "f32_qc8w_gemm":
        return F.f32_qc8w_gemm(x, w, S, b, **kw)
    codes = (w.astype(np.int16) + 8).astype(np.uint8)  # XNNPACK's nibbles, zero point 8
    return F.f32_qc4w_gemm(x, codes, S, b, kernel_zero_point=8, **kw)


@pytest.mark.parametrize("platform", ["linux", "apple"])
@pytest.mark.parametrize("m", [1, 5])
@pytest.mark.parametrize("cfg", ["f32_qc8w_gemm", "f32_qc4w_gemm"])
@pytest.mark.parametrize(
    "t", [APPLE_M4, GENERIC_SME1, NEON_ONLY, NO_KAI, NO_KAI.replace(flush_to_zero=False), X86], ids=lambda t: t.name
)
def test_weight_only_fc_runs_the_named_kernel(t: Target, cfg: str, m: int, platform: Platform) -> None:
    w, fq = (W8, QuantParams(S)) if cfg == "f32_qc8w_gemm" else (W4, QuantParams(S, 8, bits=4))
    r = fully_connected(X[:m], w, B, filter_quant=fq, target=t, platform=platform, **CLAMP)
    d = r.decision
    assert d.config == cfg and d.variant is None and d.microkernel == "gemm" and d.input_datatype == "fp32"
    assert d.operator == "Fully Connected (NC, F32, " + ("QC8W)" if cfg == "f32_qc8w_gemm" else "QC4W)")
    if t.arch == "arm64":
        assert d.kernel == d.xnn_kernel == ARM_NAMES[(cfg, m, platform)]
        assert (d.mr, d.nr) == (1 if m == 1 else 6, 8)
    else:
        name, mr = X86_NAMES[(cfg, m)]
        assert d.kernel == name and (d.mr, d.nr) == (mr, 16)
        assert any("ISA level avx2" in why for why in d.reasons)
    kern, name, mr, nr = f32_qcw_choice(cfg, m, t, platform)  # the chooser ops and dispatch share
    assert (name, mr, nr) == (d.kernel, d.mr, d.nr)
    assert r.emulation == f"fallback:{cfg}({kern})" and r.output.dtype == F32
    eq(r.output, _ref(cfg, X[:m], w, B, kern, t))


def test_the_bias_is_scaled_with_the_accumulator() -> None:
    """XNNPACK packs the bias raw: y = (bias + sum a*w) * scale (every value exact here)."""
    x = np.ones((2, 4), F32)
    w = np.array([[1, 2, 3, 4], [-1, -1, -1, -1]], np.int8)
    s, b = np.array([0.5, 0.25], F32), np.array([2.0, 8.0], F32)
    for fq, ww in ((QuantParams(s), w), (QuantParams(s, 8, bits=4), w)):
        r = fully_connected(x, ww, b, filter_quant=fq, target=APPLE_M4)
        np.testing.assert_array_equal(r.output, np.array([[6.0, 1.0], [6.0, 1.0]], F32))  # not 5 + 2, -1 + 8
        assert any("the bias is scaled too" in why for why in r.decision.reasons)
    none = fully_connected(x, w, None, filter_quant=QuantParams(s), target=APPLE_M4)
    np.testing.assert_array_equal(none.output[0], np.array([5.0, -1.0], F32))
    assert not any("bias is scaled" in why for why in none.decision.reasons)


def test_qc4w_zero_point_is_a_serialization_detail() -> None:
    a = fully_connected(X, W4, B, filter_quant=QuantParams(S, 8, bits=4), target=NEON_ONLY)
    b = fully_connected(X, W4, B, filter_quant=QuantParams(S, 0, bits=4), target=NEON_ONLY)
    eq(a.output, b.output)


def test_weight_only_fc_leading_dims_transpose_and_bmm() -> None:
    x3 = X.reshape(1, 5, 40)
    r = fully_connected(
        x3, np.ascontiguousarray(W8.T), B, filter_quant=QuantParams(S), transpose_weights=True, target=APPLE_M4
    )
    assert r.output.shape == (1, 5, 12)
    eq(r.output.reshape(5, 12), fully_connected(X, W8, B, filter_quant=QuantParams(S), target=APPLE_M4).output)
    bm = batch_matrix_multiply(
        np.stack([X, -X]), np.ascontiguousarray(W8.T), input2_quant=QuantParams(S), static_b=True, target=APPLE_M4
    )
    d = bm.decision
    assert d.config == "f32_qc8w_gemm" and d.kernel == ARM_NAMES[("f32_qc8w_gemm", 5, "linux")]
    assert bm.emulation == "fallback:f32_qc8w_gemm(ld128)" and bm.output.shape == (2, 5, 12)
    eq(bm.output[1], F.f32_qc8w_gemm(-X, W8, S, kernel="ld128"))


def test_weight_only_scale_checks_of_xnnpack() -> None:
    with pytest.raises(ValueError, match="scale"):
        fully_connected(X, W8, B, filter_quant=QuantParams(np.zeros(12, F32)), target=APPLE_M4)
    with pytest.raises(ValueError, match="scale array"):
        fully_connected(X, W4, B, filter_quant=QuantParams(0.1, 8, bits=4), target=APPLE_M4)


def test_dispatch_names_weight_only_kernels_without_ops() -> None:
    node = Node(
        op="fully_connected",
        input=TensorSpec("fp32", (1, 40)),
        filter=TensorSpec("qcint4", (12, 40), static=True, zero_point=8),
        output=TensorSpec("fp32", (1, 12)),
    )
    d = decide(node, APPLE_M4)
    assert d.kernel == ARM_NAMES[("f32_qc4w_gemm", 1, "linux")] and (d.mr, d.nr) == (1, 8)
    assert "not modelled" not in d.kernel and "not emulated" not in " ".join(d.reasons)


@pytest.mark.parametrize("t", [APPLE_M4, X86], ids=lambda t: t.name)
def test_empty_batch_runs(t: Target) -> None:
    """M = 0 (XNNPACK skips the run): an empty output, and the decision names the config's mr kernel."""
    x0 = np.zeros((0, 40), F32)
    for w, fq in ((W8, QuantParams(S)), (W4, QuantParams(S, 8, bits=4))):
        r = fully_connected(x0, w, B, filter_quant=fq, target=t)
        assert r.output.shape == (0, 12) and r.decision.mr > 1
    h = fully_connected(x0.astype(np.float16), W8.astype(np.float16), target=t)
    assert h.output.shape == (0, 12) and h.output.dtype == np.float16
