"""Op-level entry points: dispatch, then the variant or the fallback the decision names."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from _exact import eq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kleidiref import fallbacks as F
from kleidiref.dispatch import NodeRejected
from kleidiref.numerics import f32_to_bf16_rne, rn16
from kleidiref.ops import OpResult, QuantParams, batch_matrix_multiply, convolution_2d, fully_connected
from kleidiref.ops.operands import Call
from kleidiref.ops.registry import RUNNERS, run
from kleidiref.quant.qd8 import quantize_qd8
from kleidiref.targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, Target
from kleidiref.testing import assert_matches
from kleidiref.testing.strategies import GemmProblem, gemm_problems
from kleidiref.variants import VARIANTS

NO_KAI = Target(kleidiai=False)
NO_FP16 = Target(sme2=False, sme=False, fp16_arith=False)
X86 = Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)
F32, F16 = np.float32, np.float16
rng = np.random.default_rng(1234)


def randn(*shape: int, dtype: Any = F32) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


X, W, B = randn(3, 40), randn(24, 40), randn(24)


# ---- fully connected ---------------------------------------------------------------------------


def test_fc_pf32_routes_to_the_variant_kernel() -> None:
    r = fully_connected(X, W, B, target=APPLE_M4)
    out, d = r
    assert isinstance(r, OpResult) and d.variant == "pf32_gemm" and r.emulation == "variant:pf32_gemm"
    eq(out, VARIANTS["pf32_gemm"].gemm(X, W, bias=B, target=APPLE_M4, kernel=d.kernel))
    r1 = fully_connected(X[:1], W, B, target=GENERIC_SME1)
    assert r1.decision.kernel.endswith("1x8vl_sme_mla")
    eq(
        r1.output,
        VARIANTS["pf32_gemm"].gemm(X[:1], W, bias=B, target=GENERIC_SME1, kernel=r1.decision.kernel),
    )


def test_fc_transposed_weights_and_leading_dims() -> None:
    x3 = randn(2, 3, 40)
    r = fully_connected(x3, np.ascontiguousarray(W.T), B, transpose_weights=True, target=APPLE_M4)
    assert r.output.shape == (2, 3, 24)
    eq(r.output.reshape(6, 24), fully_connected(x3.reshape(6, 40), W, B, target=APPLE_M4).output)


def test_fc_generic_f32_kernels() -> None:
    r = fully_connected(X, W, B, target=NEON_ONLY)
    assert r.decision.config == "f32_gemm" and r.emulation == "fallback:f32_gemm(ld128)"
    eq(r.output, F.f32_gemm(X, W, B, kernel="ld128"))
    a = fully_connected(X[:1], W, B, target=NEON_ONLY, platform="apple")
    assert a.emulation == "fallback:f32_gemm(acc4)"
    eq(a.output, F.f32_gemm(X[:1], W, B, kernel="acc4"))
    n2 = fully_connected(X, W[:3], B[:3], target=NEON_ONLY)
    assert n2.decision.config == "f32_gemm_nr2"
    eq(n2.output, F.f32_gemm(X, W[:3], B[:3], kernel="nr2"))


def test_fc_flush_to_zero_is_a_target_setting() -> None:
    x = np.full((1, 4), 1e-40, F32)
    w = np.ones((2, 4), F32)
    on = fully_connected(x, w, target=NEON_ONLY).output
    off = fully_connected(x, w, target=NEON_ONLY.replace(flush_to_zero=False)).output
    assert np.all(on == 0) and np.all(off > 0)
    on_sme = fully_connected(x, w, target=APPLE_M4).output
    assert np.all(on_sme == 0)


def test_fc_fp16_paths() -> None:
    x16, w16, b16 = X.astype(F16), W.astype(F16), B.astype(F16)
    r = fully_connected(x16, w16, b16, target=APPLE_M4)
    assert r.decision.variant == "pf16_gemm"
    eq(r.output, VARIANTS["pf16_gemm"].gemm(x16, w16, bias=b16, target=APPLE_M4, kernel=r.decision.kernel))
    g = fully_connected(x16, W, B, target=APPLE_M4)  # fp32 filter: generic f16 FC, weights converted RNE
    assert g.decision.config == "f16_gemm" and g.emulation == "fallback:f16_gemm(6x16)"
    eq(g.output, F.f16_gemm(x16, rn16(W), rn16(B), kernel="6x16"))
    one = fully_connected(x16[:1], w16, b16, target=NEON_ONLY)
    eq(one.output, F.f16_gemm(x16[:1], w16, b16, kernel="1x16"))


def test_fc_fp16_without_fp16_arith_runs_fp32_with_converts() -> None:
    x16, w16 = X.astype(F16), W.astype(F16)
    r = fully_connected(x16, w16, None, target=NO_FP16)
    assert r.decision.config == "f32_gemm" and r.output.dtype == F16
    eq(r.output, rn16(F.f32_gemm(x16.astype(F32), w16.astype(F32))))


def test_fc_bf16_runs_fp32() -> None:
    bf = np.dtype(ml_dtypes.bfloat16)
    r = fully_connected(X.astype(bf), W.astype(bf), None, target=APPLE_M4)
    assert r.decision.config == "f32_gemm" and r.output.dtype == bf
    ref = f32_to_bf16_rne(F.f32_gemm(X.astype(bf).astype(F32), W.astype(bf).astype(F32))).view(bf)
    eq(r.output, ref)


def test_x86_f16_runs_the_avx2_f32acc_kernels() -> None:
    x16, w16, b16 = X.astype(F16), W.astype(F16), B.astype(F16)
    r = fully_connected(x16, w16, b16, output_min=-2.0, output_max=3.0, target=X86)
    d = r.decision
    assert d.config == "f16_gemm" and d.kernel == "xnn_f16_f32acc_gemm_minmax_ukernel_4x16__avx2_broadcast"
    assert (d.mr, d.nr) == (4, 16) and r.emulation == "fallback:f16_x86_gemm(avx2)" and r.output.dtype == F16
    eq(r.output, F.f16_x86_gemm(x16, w16, b16, clamp_min=-2.0, clamp_max=3.0, kernel="avx2"))
    one = fully_connected(x16[:1], W, B, target=X86)  # fp32 static filter / bias: RNE to fp16 at creation
    assert one.decision.kernel == "xnn_f16_f32acc_gemm_minmax_ukernel_1x16__avx2_broadcast"
    eq(one.output, F.f16_x86_gemm(x16[:1], rn16(W), rn16(B), kernel="avx2"))
    a, bm = randn(2, 3, 40).astype(F16), randn(2, 40, 5).astype(F16)
    mm = batch_matrix_multiply(a, bm, target=X86)
    assert mm.emulation == "fallback:f16_x86_gemm(avx2)" and mm.decision.kernel == d.kernel
    eq(mm.output, np.stack([F.f16_x86_gemm(a[i], np.ascontiguousarray(bm[i].T)) for i in range(2)]))


def test_x86_f16_convolutions() -> None:
    xc16, wc = XC.astype(F16), randn(6, 3, 3, 4)
    geo: dict[str, Any] = dict(padding=(1, 0, 2, 1), stride=(2, 1))
    c = convolution_2d(xc16, wc, None, groups=2, target=X86, **geo)
    d = c.decision
    assert d.microkernel == "igemm" and d.kernel == "xnn_f16_f32acc_igemm_minmax_ukernel_4x16__avx2_broadcast"
    assert c.emulation == "fallback:f16_x86_igemm(avx2)"
    eq(c.output, F.f16_x86_igemm(xc16, rn16(wc), None, groups=2, kernel="avx2", **geo))
    w1 = randn(4, 1, 1, 8).astype(F16)
    one = convolution_2d(xc16, w1, None, target=X86)
    assert one.decision.rewritten_to_fc and one.emulation == "fallback:f16_x86_gemm(avx2)"
    eq(one.output.reshape(-1, 4), F.f16_x86_gemm(xc16.reshape(-1, 8), w1.reshape(4, 8)))


WQ = rng.integers(-127, 128, (24, 40)).astype(np.int8)
WS = rng.uniform(0.001, 0.05, 24).astype(F32)


def test_fc_dynamic_qc8w() -> None:
    r = fully_connected(X, WQ, B, dynamic=True, filter_quant=QuantParams(WS), target=APPLE_M4)
    assert r.decision.variant == "qp8_f32_qc8w_gemm"
    eq(
        r.output,
        VARIANTS["qp8_f32_qc8w_gemm"].gemm(X, WQ, WS, bias=B, target=APPLE_M4, kernel=r.decision.kernel),
    )
    g = fully_connected(X, WQ, B, dynamic=True, filter_quant=QuantParams(WS), target=NO_KAI)
    q, a, zp = quantize_qd8(X, fz=True)
    eq(g.output, F.qd8_f32_qc8w_gemm(q, a, zp, WQ, WS, B))
    n = fully_connected(X, WQ, B, dynamic=True, filter_quant=QuantParams(WS), target=NEON_ONLY)
    assert n.decision.kernel.endswith("_neon_i8mm")
    eq(n.output, VARIANTS["qp8_f32_qc8w_gemm"].gemm(X, WQ, WS, bias=B, target=NEON_ONLY))


def test_fc_dynamic_qb4w() -> None:
    w4 = rng.integers(-8, 8, (24, 64)).astype(np.int8)
    sc = f32_to_bf16_rne(rng.uniform(0.01, 0.1, (24, 2)).astype(F32))
    x = randn(2, 64)
    r = fully_connected(x, w4, B, dynamic=True, filter_quant=QuantParams(sc, 8, 32), target=APPLE_M4)
    assert r.decision.variant == "qp8_f32_qb4w_gemm" and "neon_i8mm" in r.decision.kernel
    eq(
        r.output,
        VARIANTS["qp8_f32_qb4w_gemm"].gemm(x, w4, sc, bl=32, bias=B, target=APPLE_M4, kernel=r.decision.kernel),
    )
    g = fully_connected(x, w4, B, dynamic=True, filter_quant=QuantParams(sc, 0, 32), target=APPLE_M4)
    q, a, zp = quantize_qd8(x, fz=True)
    assert g.decision.config == "qd8_f32_qb4w_gemm"
    eq(g.output, F.qd8_f32_qb4w_gemm(q, a, zp, w4, sc, 32, B, kr=8))
    with pytest.raises(NodeRejected, match="block size"):
        fully_connected(
            x,
            w4,
            B,
            dynamic=True,
            filter_quant=QuantParams(f32_to_bf16_rne(np.ones((24, 4), F32)), 8, 16),
            target=APPLE_M4,
        )


def test_fc_qs8_pqs8_equals_generic_fp32_requantization() -> None:
    xq = rng.integers(-128, 128, (5, 40)).astype(np.int8)
    bq = rng.integers(-5000, 5000, 24).astype(np.int32)
    kw: dict[str, Any] = dict(
        input_quant=QuantParams(0.05, 3),
        filter_quant=QuantParams(WS),
        output_quant=QuantParams(0.4, -7),
        output_min=-20.0,
        output_max=30.0,
    )
    sme = fully_connected(xq, WQ, bq, target=APPLE_M4, **kw)
    gen = fully_connected(xq, WQ, bq, target=NEON_ONLY, **kw)
    assert sme.decision.variant == "pqs8_qc8w_gemm" and gen.decision.config == "qs8_qc8w_gemm"
    eq(sme.output, gen.output)  # upstream tests pqs8 for exact equality with xnn_qs8_requantize_fp32
    per_tensor = fully_connected(xq, WQ, bq, target=APPLE_M4, **{**kw, "filter_quant": QuantParams(0.01)})
    assert per_tensor.decision.variant is None
    with pytest.raises(NodeRejected, match=">= 256"):
        fully_connected(xq, WQ, bq, target=APPLE_M4, **{**kw, "output_quant": QuantParams(1e-6, 0)})


# ---- convolution ---------------------------------------------------------------------------------

XC = randn(2, 6, 5, 8)


def test_conv_1x1_runs_through_fc() -> None:
    w = randn(16, 1, 1, 8)
    r = convolution_2d(XC, w, None, target=APPLE_M4)
    assert r.decision.rewritten_to_fc and r.decision.variant == "pf32_gemm"
    eq(
        r.output.reshape(-1, 16),
        fully_connected(XC.reshape(-1, 8), w.reshape(16, 8), None, target=APPLE_M4).output,
    )


def test_conv_igemm_generic_and_kleidiai() -> None:
    w = randn(4, 3, 3, 8)
    b = randn(4)
    g = convolution_2d(XC, w, b, padding=(1, 1, 1, 1), target=NEON_ONLY)
    assert g.decision.config == "f32_gemm_nr2" and g.decision.microkernel == "igemm"
    eq(g.output, F.f32_igemm(XC, w, b, padding=(1, 1, 1, 1), kernel="acc2"))
    w8 = randn(32, 3, 3, 4)
    g2 = convolution_2d(XC, w8, None, padding=(1, 1, 1, 1), groups=2, target=NEON_ONLY)
    assert g2.decision.config == "f32_igemm"
    eq(g2.output, F.f32_igemm(XC, w8, None, padding=(1, 1, 1, 1), groups=2, kernel="ld128"))
    k = convolution_2d(XC, w, b, padding=(1, 1, 1, 1), target=APPLE_M4)
    assert k.decision.variant == "pf32_gemm" and k.decision.microkernel == "igemm"
    assert k.emulation == "variant:igemm(pf32_gemm)"
    np.testing.assert_allclose(k.output, g.output, rtol=1e-5, atol=1e-5)


def test_conv_depthwise_and_vmulcaddc() -> None:
    w = randn(8, 3, 3, 1)
    r = convolution_2d(XC, w, None, padding=(1, 1, 1, 1), groups=8, target=APPLE_M4)
    assert r.decision.microkernel == "dwconv" and r.decision.variant is None
    eq(r.output, F.dwconv(XC, w, None, padding=(1, 1, 1, 1)))
    s = randn(8, 1, 1, 1)
    v = convolution_2d(XC, s, randn(8) * 0, groups=8, target=APPLE_M4)
    assert v.decision.microkernel == "dwconv" and v.decision.dwconv_tile == 3  # never vmulcaddc at the pin
    eq(v.output, F.dwconv(XC, s, np.zeros(8, F32)))
    h = convolution_2d(XC.astype(F16), randn(8, 5, 5, 1), None, padding=(2, 2, 2, 2), groups=8, target=APPLE_M4)
    assert h.decision.config == "f16_dwconv" and h.output.dtype == F16


def test_conv_fp16_3x3_and_1x1() -> None:
    x16 = XC.astype(F16)
    w = randn(4, 3, 3, 8)  # ExecuTorch serializes fp32 conv filters in fp16 models
    r = convolution_2d(x16, w, None, padding=(1, 1, 1, 1), target=APPLE_M4)
    assert r.decision.variant == "pf16_gemm" and r.output.dtype == F16
    one = convolution_2d(x16, randn(4, 1, 1, 8), None, target=APPLE_M4)
    assert one.decision.variant is None and one.decision.config == "f16_gemm" and one.decision.rewritten_to_fc


def test_conv_dynamic_quant_per_image() -> None:
    wq = rng.integers(-127, 128, (4, 3, 3, 8)).astype(np.int8)
    ws = np.full(4, 0.02, F32)
    r = convolution_2d(XC, wq, None, padding=(1, 1, 1, 1), dynamic=True, filter_quant=QuantParams(ws), target=APPLE_M4)
    assert r.decision.config == "qd8_f32_qc8w_gemm" and r.decision.variant is None
    q, a, zp = quantize_qd8(XC.reshape(2, -1), fz=True)
    eq(r.output, F.qd8_f32_qc8w_igemm(q.reshape(XC.shape), a, zp, wq, ws, None, padding=(1, 1, 1, 1)))
    one = convolution_2d(XC, wq[:, :1, :1], None, dynamic=True, filter_quant=QuantParams(ws), target=APPLE_M4)
    assert one.decision.variant == "qp8_f32_qc8w_gemm"


def test_conv_qs8() -> None:
    xq = rng.integers(-128, 128, (1, 5, 5, 8)).astype(np.int8)
    wq = rng.integers(-127, 128, (4, 3, 3, 8)).astype(np.int8)
    kw: dict[str, Any] = dict(
        input_quant=QuantParams(0.05, 1),
        filter_quant=QuantParams(0.01),
        output_quant=QuantParams(0.3, 2),
        padding=(1, 1, 1, 1),
    )
    sme = convolution_2d(xq, wq, None, target=APPLE_M4, **kw)
    gen = convolution_2d(xq, wq, None, target=NEON_ONLY, **kw)
    assert sme.decision.variant == "pqs8_qc8w_gemm" and gen.decision.variant is None
    eq(sme.output, gen.output)
    dw = convolution_2d(
        xq,
        rng.integers(-127, 128, (8, 3, 3, 1)).astype(np.int8),
        None,
        groups=8,
        target=APPLE_M4,
        **{**kw, "filter_quant": QuantParams(np.full(8, 0.01, F32))},
    )
    assert dw.decision.config == "qs8_qc8w_dwconv"


# ---- batch matrix multiply ----------------------------------------------------------------------------


def test_bmm_routes_and_broadcasts() -> None:
    a, b = randn(2, 3, 16), randn(1, 16, 5)
    r = batch_matrix_multiply(a, b, target=APPLE_M4)
    assert r.decision.variant == "pf32_gemm" and r.output.shape == (2, 3, 5)
    for i in range(2):
        eq(
            r.output[i],
            VARIANTS["pf32_gemm"].gemm(a[i], np.ascontiguousarray(b[0].T), target=APPLE_M4, kernel=r.decision.kernel),
        )
    t = batch_matrix_multiply(a, np.ascontiguousarray(np.swapaxes(b, 1, 2)), transpose_b=True, target=APPLE_M4)
    eq(t.output, r.output)
    g = batch_matrix_multiply(a, b, target=NEON_ONLY)
    eq(g.output, np.stack([F.f32_gemm(a[i], np.ascontiguousarray(b[0].T)) for i in range(2)]))
    h = batch_matrix_multiply(a.astype(F16), b.astype(F16), target=APPLE_M4)
    assert h.decision.variant == "pf16_gemm" and h.output.dtype == F16


def test_bmm_quantized() -> None:
    a = randn(2, 3, 16)
    bq = rng.integers(-127, 128, (2, 16, 5)).astype(np.int8)
    r = batch_matrix_multiply(a, bq, dynamic=True, input2_quant=QuantParams(np.full(5, 0.1, F32)), target=NO_KAI)
    assert r.decision.config == "qd8_f32_qc8w_gemm" and r.output.shape == (2, 3, 5)
    s = batch_matrix_multiply(
        rng.integers(-128, 128, (2, 3, 16)).astype(np.int8),
        bq,
        input1_quant=QuantParams(0.1),
        input2_quant=QuantParams(0.1),
        output_quant=QuantParams(2.0),
        target=APPLE_M4,
    )
    assert s.decision.variant is None and s.output.dtype == np.int8


# ---- every combination of the decision table runs ----------------------------------------------------

TARGETS = [APPLE_M4, GENERIC_SME1, NEON_ONLY, NO_KAI, NO_FP16, X86, APPLE_M4.replace(svl_bits=128)]


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: f"{t.arch}-sme2{t.sme2}-sme{t.sme}-kai{t.kleidiai}-{t.svl_bits}")
def test_every_recipe_runs_or_says_why(t: Target) -> None:
    x, w, b = randn(2, 32), randn(8, 32), randn(8)
    q8 = rng.integers(-127, 128, (8, 32)).astype(np.int8)
    w4 = rng.integers(-8, 8, (8, 32)).astype(np.int8)
    sc = f32_to_bf16_rne(np.full((8, 1), 0.05, F32))
    xq = rng.integers(-128, 128, (2, 32)).astype(np.int8)
    cases: list[Callable[[], OpResult]] = [
        lambda: fully_connected(x, w, b, target=t),
        lambda: fully_connected(x.astype(F16), w.astype(F16), b.astype(F16), target=t),
        lambda: fully_connected(x, q8, b, dynamic=True, filter_quant=QuantParams(np.full(8, 0.01, F32)), target=t),
        lambda: fully_connected(x, w4, b, dynamic=True, filter_quant=QuantParams(sc, 8, 32), target=t),
        lambda: fully_connected(
            xq,
            q8,
            None,
            input_quant=QuantParams(0.1, 0),
            filter_quant=QuantParams(np.full(8, 0.01, F32)),
            output_quant=QuantParams(0.5, 0),
            target=t,
        ),
        lambda: convolution_2d(XC, randn(4, 3, 3, 8), None, padding=(1, 1, 1, 1), target=t),
        lambda: convolution_2d(XC.astype(F16), randn(4, 3, 3, 8), None, padding=(1, 1, 1, 1), target=t),
        lambda: batch_matrix_multiply(randn(2, 3, 8), randn(2, 8, 4), target=t),
        lambda: batch_matrix_multiply(randn(2, 3, 8).astype(F16), randn(2, 8, 4).astype(F16), target=t),
        lambda: fully_connected(x, q8, b, filter_quant=QuantParams(np.full(8, 0.01, F32)), target=t),
        lambda: fully_connected(x, w4, b, filter_quant=QuantParams(np.full(8, 0.05, F32), 8, bits=4), target=t),
        lambda: convolution_2d(XC, randn(8, 3, 3, 4), None, padding=(1, 1, 1, 1), groups=2, target=t),
    ]
    for case in cases:
        r = case()  # every combination is emulated: no NotImplementedError on any target model
        assert r.output.size > 0 and r.decision.reasons
        assert "not emulated" not in r.emulation and "not modelled" not in r.decision.kernel
        if r.decision.variant is not None:
            assert t.arch == "arm64" and t.kleidiai


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="numpy array"):
        fully_connected([[1.0]], W)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_quant"):
        fully_connected(np.zeros((1, 40), np.int8), WQ, filter_quant=QuantParams(WS))
    with pytest.raises(TypeError, match="activations"):
        fully_connected(np.zeros((1, 40), np.float64), W)
    with pytest.raises(NodeRejected, match="does not match"):
        fully_connected(X, randn(24, 41), target=APPLE_M4)


def test_the_registry_keys_on_config_and_names_an_unknown_one() -> None:
    """Which emulation runs is RUNNERS[(microkernel, config)]; a missing key names the config."""
    d = fully_connected(X, W, B, target=APPLE_M4).decision
    assert RUNNERS[(d.microkernel, d.config)] is RUNNERS[("gemm", "pf32_gemm")]
    odd = dataclasses.replace(d, config="f64_gemm", variant="pf64")
    with pytest.raises(NotImplementedError, match=r"f64_gemm .* not emulated by kleidiref"):
        run(Call(odd, APPLE_M4, X, W, B, None, None, None, -np.inf, np.inf))
    # The variant spelling plays no part: the same config with another variant label runs the same.
    relabelled = dataclasses.replace(d, variant="pf32_gemm")
    out, how = run(Call(relabelled, APPLE_M4, X, W, B, None, None, None, -np.inf, np.inf))
    assert how == "variant:pf32_gemm"
    eq(out, fully_connected(X, W, B, target=APPLE_M4).output)


def test_conv_kleidiai_igemm_routes_to_the_igemm_module() -> None:
    mod = VARIANTS["igemm"]
    w, b = randn(4, 3, 3, 8), randn(4)
    pads = (1, 0, 2, 1)  # top, right, bottom, left (XNNPACK's define order)
    r = convolution_2d(XC, w, b, padding=pads, target=APPLE_M4)
    assert r.emulation == "variant:igemm(pf32_gemm)"
    eq(r.output, mod.conv2d(XC, w, b, variant="pf32", padding=pads, target=APPLE_M4))
    h = convolution_2d(XC.astype(F16), w, None, padding=pads, target=GENERIC_SME1)
    assert h.emulation == "variant:igemm(pf16_gemm)" and h.output.dtype == F16
    xq = rng.integers(-128, 128, (1, 5, 5, 8)).astype(np.int8)
    wq = rng.integers(-127, 128, (4, 3, 3, 8)).astype(np.int8)
    kw: dict[str, Any] = dict(
        input_quant=QuantParams(0.05, 1),
        filter_quant=QuantParams(np.full(4, 0.01, F32)),
        output_quant=QuantParams(0.3, 2),
        padding=pads,
    )
    sme = convolution_2d(xq, wq, None, target=APPLE_M4, **kw)
    assert sme.emulation == "variant:igemm(pqs8_qc8w_gemm)"
    eq(sme.output, convolution_2d(xq, wq, None, target=NEON_ONLY, **kw).output)  # pqs8 == exact fp32 requant
    grouped = convolution_2d(XC, randn(32, 3, 3, 4), None, padding=pads, groups=2, target=APPLE_M4)
    assert grouped.decision.variant == "pf32_gemm" and grouped.emulation == "variant:igemm(pf32_gemm)"


GROUPED_CASES = ["pf32", "pf16", "pf16-fp32-filter", "pqs8_qc8w"]


def _grouped_case(kind: str, groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    cin, cout = 4 * groups, 3 * groups
    x, w, b = randn(2, 6, 5, cin), randn(cout, 3, 3, 4), randn(cout)
    if kind == "pf32":
        return x, w, b, {}
    if kind.startswith("pf16"):
        return x.astype(F16), (w if kind.endswith("fp32-filter") else w.astype(F16)), b.astype(F16), {}
    xq = rng.integers(-128, 128, x.shape).astype(np.int8)
    wq = rng.integers(-127, 128, w.shape).astype(np.int8)
    bq = rng.integers(-5000, 5000, cout).astype(np.int32)
    q: dict[str, Any] = dict(
        input_quant=QuantParams(0.05, -3),
        filter_quant=QuantParams(rng.uniform(0.002, 0.02, cout).astype(F32)),
        output_quant=QuantParams(0.4, 5),
    )
    return xq, wq, bq, q


def _slice_quant(q: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    if "filter_quant" not in q:
        return q
    return {**q, "filter_quant": QuantParams(q["filter_quant"].scale[lo:hi])}


@pytest.mark.parametrize(
    "t", [APPLE_M4, GENERIC_SME1, APPLE_M4.replace(svl_bits=128)], ids=lambda t: f"{t.name}-{t.svl_bits}"
)
@pytest.mark.parametrize("groups", [2, 3])
@pytest.mark.parametrize("kind", GROUPED_CASES)
def test_grouped_kleidiai_conv_is_per_group_ungrouped_convs(kind: str, groups: int, t: Target) -> None:
    """A grouped conv on the KleidiAI IGEMM = the per-group ungrouped convs, concatenated, bitwise."""
    x, w, b, q = _grouped_case(kind, groups)
    geo: dict[str, Any] = dict(padding=(1, 0, 2, 1), stride=(1, 2), output_min=-3.0, output_max=3.0)
    r = convolution_2d(x, w, b, groups=groups, target=t, **geo, **q)
    d = r.decision
    variant = kind.split("-")[0] + "_gemm"
    assert d.variant == variant and d.microkernel == "igemm" and r.emulation == f"variant:igemm({variant})"
    assert "not emulated" not in r.emulation
    gi, go = x.shape[3] // groups, w.shape[0] // groups
    parts = []
    for g in range(groups):
        sl = slice(g * go, (g + 1) * go)
        p = convolution_2d(
            np.ascontiguousarray(x[..., g * gi : (g + 1) * gi]),
            w[sl],
            b[sl],  # type: ignore[index]
            target=t,
            **geo,
            **_slice_quant(q, g * go, (g + 1) * go),
        )
        assert p.decision.variant == variant and p.decision.kernel == d.kernel
        parts.append(p.output)
    eq(r.output, np.concatenate(parts, axis=-1))


# ---- fully connected against kleidiref.testing on drawn problems ------------------------------


_FC_SET = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fc_from_problem(p: GemmProblem) -> OpResult:
    i = p.inputs
    clamp = {"output_min": i.get("clamp_min", -np.inf), "output_max": i.get("clamp_max", np.inf)}
    if p.variant == "pf32_gemm":
        return fully_connected(i["lhs"], i["rhs"], i.get("bias"), target=p.target, **clamp)
    if p.variant == "qp8_f32_qc8w_gemm":
        return fully_connected(
            i["lhs"],
            i["rhs"],
            i.get("bias"),
            dynamic=True,
            filter_quant=QuantParams(i["scale"]),
            target=p.target,
            **clamp,
        )
    return fully_connected(
        i["lhs"],
        i["rhs"],
        i.get("bias"),
        dynamic=True,
        filter_quant=QuantParams(i["scales_bf16"], 8, i["bl"]),
        target=p.target,
        **clamp,
    )


@_FC_SET
@given(
    st.sampled_from(["pf32_gemm", "qp8_f32_qc8w_gemm", "qp8_f32_qb4w_gemm"]).flatmap(
        lambda v: gemm_problems(v, max_m=6, max_n=24, max_k=64)
    )
)
def test_fc_equals_variant_on_drawn_problems(p: GemmProblem) -> None:
    """XNNFullyConnected on SME2/SME1 targets computes what the selected KleidiAI kernel computes."""
    r = _fc_from_problem(p)
    assert r.emulation == f"variant:{p.variant}"
    assert_matches(r.output, kernel=r.decision.kernel, **p.kwargs())
