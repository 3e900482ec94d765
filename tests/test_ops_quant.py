"""Op-level runs of the 4-bit per-channel, fp16-output dynamic-quant and qu8 configs."""

from __future__ import annotations

import numpy as np
import pytest
from _exact import eq

from kleidiref import fallbacks as F
from kleidiref.dispatch import NodeRejected
from kleidiref.numerics import f32_to_bf16_rne
from kleidiref.ops import QuantParams, convolution_2d, fully_connected
from kleidiref.ops.registry import RUNNERS
from kleidiref.quant.qd8 import quantize_qd8
from kleidiref.quant.qd8_f16 import quantize_qd8_f16
from kleidiref.targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, Target
from kleidiref.variants import qp8_f32_qc4w_gemm as qc4w

F32, F16 = np.float32, np.float16
NO_KAI = Target(kleidiai=False)
rng = np.random.default_rng(7)


X = rng.standard_normal((3, 40)).astype(F32)
W4 = rng.integers(-8, 8, (12, 40)).astype(np.int8)
S4 = rng.uniform(0.01, 0.1, 12).astype(F32)
B = rng.standard_normal(12).astype(F32)
Q4 = QuantParams(S4, 8, bits=4)


# ---- qd8_f32_qc4w ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "kernel"),
    [
        (NO_KAI, "xnn_qd8_f32_qc4w_gemm_minmax_ukernel_4x16c8__neoni8mm"),
        (NO_KAI.replace(i8mm=False), "xnn_qd8_f32_qc4w_gemm_minmax_ukernel_4x16c4__neondot"),
        (NO_KAI.replace(i8mm=False, dotprod=False), "xnn_qd8_f32_qc4w_gemm_minmax_ukernel_6x16__neon_mlal_lane"),
    ],
)
def test_fc_qd8_f32_qc4w_runs_the_generic_kernel(t: Target, kernel: str) -> None:
    r = fully_connected(X, W4, B, dynamic=True, filter_quant=Q4, output_min=-3.0, output_max=3.0, target=t)
    d = r.decision
    assert d.config == "qd8_f32_qc4w_gemm" and d.variant is None and d.kernel == kernel
    assert r.emulation == "fallback:qd8_f32_qc4w_gemm" and d.operator == "Fully Connected (NC, QD8, F32, QC4W)"
    q, a, zp = quantize_qd8(X, fz=t.flush_to_zero)
    eq(r.output, F.qd8_f32_qc4w_gemm(q, a, zp, W4, S4, B, clamp_min=-3.0, clamp_max=3.0, fz=t.flush_to_zero))
    one = fully_connected(X[:1], W4, B, dynamic=True, filter_quant=Q4, target=t)
    assert one.decision.mr == 1 and "_1x16" in one.decision.kernel


def test_fc_qcint4_api_checks() -> None:
    with pytest.raises(ValueError, match="scale array"):
        fully_connected(X, W4, dynamic=True, filter_quant=QuantParams(0.1, 8, bits=4), target=NO_KAI)
    with pytest.raises(ValueError, match="bits"):
        fully_connected(X, W4, dynamic=True, filter_quant=QuantParams(S4, 8, bits=2), target=NO_KAI)
    with pytest.raises(NodeRejected, match="zero point"):
        fully_connected(X, W4, dynamic=True, filter_quant=QuantParams(S4, 3, bits=4), target=NO_KAI)
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        fully_connected(X, W4 * 2, dynamic=True, filter_quant=Q4, target=NO_KAI)


def test_fc_qcint4_zero_point_0_and_8_compute_the_same() -> None:
    r8 = fully_connected(X, W4, B, dynamic=True, filter_quant=Q4, target=NO_KAI)
    r0 = fully_connected(X, W4, B, dynamic=True, filter_quant=QuantParams(S4, 0, bits=4), target=NO_KAI)
    eq(r8.output, r0.output)


# ---- qp8_f32_qc4w -----------------------------------------------------------------------------------

QP8_TARGETS = [
    APPLE_M4,
    APPLE_M4.replace(svl_bits=128),
    GENERIC_SME1,
    NEON_ONLY,
    NEON_ONLY.replace(i8mm=False),
]


@pytest.mark.parametrize("t", QP8_TARGETS, ids=lambda t: f"sme2{t.sme2}-sme{t.sme}-i8mm{t.i8mm}-{t.svl_bits}")
@pytest.mark.parametrize("m", [1, 3])
def test_fc_qp8_f32_qc4w_runs_the_kleidiai_kernel(t: Target, m: int) -> None:
    r = fully_connected(X[:m], W4, B, dynamic=True, filter_quant=Q4, output_min=-2.0, output_max=2.0, target=t)
    d = r.decision
    assert d.config == d.variant == "qp8_f32_qc4w_gemm" and d.input_datatype == "qpint8"
    assert r.emulation == "variant:qp8_f32_qc4w_gemm"
    kern = qc4w.select_kernel(t, m)
    assert d.kernel == kern.name and (d.xnn_kernel, d.mr, d.nr) == qc4w.xnn_kernel_name(t, m)
    assert d.reasons[-1] == f"result: KleidiAI variant qp8_f32_qc4w_gemm runs ({kern.name})"
    eq(r.output, qc4w.gemm(X[:m], W4, S4, bias=B, clamp_min=-2.0, clamp_max=2.0, target=t, kernel=d.kernel))
    tr = fully_connected(
        X[:m],
        np.ascontiguousarray(W4.T),
        B,
        dynamic=True,
        filter_quant=Q4,
        transpose_weights=True,
        output_min=-2.0,
        output_max=2.0,
        target=t,
    )
    eq(tr.output, r.output)
    assert any("ignores XNN_FLAG_TRANSPOSE_WEIGHTS" in s for s in tr.decision.reasons) == (t.sme2 is True)


# ---- fp16-output dynamic FC (qd8_f16_*, or qd8_f32_* after XNNPACK's fp16 -> fp32 rewrite) --------

X16 = rng.standard_normal((3, 64)).astype(F16)
W8 = rng.integers(-127, 128, (12, 64)).astype(np.int8)
W4B = rng.integers(-8, 8, (12, 64)).astype(np.int8)
S8 = rng.uniform(0.001, 0.02, 12).astype(F32)
SB = f32_to_bf16_rne(rng.uniform(0.01, 0.1, (12, 2)).astype(F32))
F16_CASES = [
    ("qc8w", W8, QuantParams(S8)),
    ("qc4w", W4B, QuantParams(S8, 8, bits=4)),
    ("qb4w", W4B, QuantParams(SB, 8, 32)),
]


def _ref_f16(kind: str, w: np.ndarray, fq: QuantParams, t: Target, kernel: str, m: int) -> np.ndarray:
    fz = t.flush_to_zero
    x = X16[:m]
    kw: dict[str, object] = dict(clamp_min=-4.0, clamp_max=4.0, fz=fz)
    if "qd8_f16" in kernel:
        q, a, zp = quantize_qd8_f16(x, fz=fz)
        if kind == "qc8w":
            k = "asm_ld128" if kernel.endswith("_ld128") else "c"
            return F.qd8_f16_qc8w_gemm(q, a, zp, w, fq.scale, B, kernel=k, **kw)  # type: ignore[arg-type]
        if kind == "qc4w":
            return F.qd8_f16_qc4w_gemm(q, a, zp, w, fq.scale, B, **kw)  # type: ignore[arg-type]
        kr = 8 if t.i8mm else 4
        return F.qd8_f16_qb4w_gemm(q, a, zp, w, fq.scale, 32, B, kr=kr, **kw)  # type: ignore[arg-type]
    q, a, zp = quantize_qd8(x.astype(F32), fz=fz)
    if kind == "qc8w":
        y = F.qd8_f32_qc8w_gemm(q, a, zp, w, fq.scale, B, **kw)  # type: ignore[arg-type]
    elif kind == "qc4w":
        y = F.qd8_f32_qc4w_gemm(q, a, zp, w, fq.scale, B, **kw)  # type: ignore[arg-type]
    else:
        y = F.qd8_f32_qb4w_gemm(q, a, zp, w, fq.scale, 32, B, kr=8 if t.i8mm else 4, **kw)  # type: ignore[arg-type]
    return y.astype(F16)


@pytest.mark.parametrize(("kind", "w", "fq"), F16_CASES, ids=[c[0] for c in F16_CASES])
@pytest.mark.parametrize(
    "t", [APPLE_M4, APPLE_M4.replace(i8mm=False), GENERIC_SME1, NEON_ONLY, NO_KAI], ids=lambda t: t.name
)
@pytest.mark.parametrize("m", [1, 3])
def test_fc_fp16_output_dynamic(kind: str, w: np.ndarray, fq: QuantParams, t: Target, m: int) -> None:
    r = fully_connected(X16[:m], w, B, dynamic=True, filter_quant=fq, output_min=-4.0, output_max=4.0, target=t)
    d = r.decision
    assert r.output.dtype == F16 and r.output.shape == (m, 12) and d.variant is None
    pf16 = t.kleidiai and (t.sme2 or t.sme)
    assert d.config == (f"qd8_f16_{kind}_gemm" if pf16 else f"qd8_f32_{kind}_gemm")
    prefix = f"xnn_qd8_{'f16' if pf16 else 'f32'}_{kind}_gemm_minmax_ukernel_"
    assert d.kernel.startswith(prefix + ("1x" if m == 1 else ""))
    assert r.emulation.startswith(f"fallback:{d.config}") and (pf16 or "cvt_to_fp32" in r.emulation)
    eq(r.output, _ref_f16(kind, w, fq, t, d.kernel, m))


# ---- quint8 (qu8) -------------------------------------------------------------------------------------

XU = rng.integers(0, 256, (3, 40)).astype(np.uint8)
WU = rng.integers(0, 256, (7, 40)).astype(np.uint8)
BU = rng.integers(-1000, 1000, 7).astype(np.int32)
QU = dict(input_quant=QuantParams(0.05, 128), filter_quant=QuantParams(0.01, 120), output_quant=QuantParams(0.3, 100))
X86 = Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)


@pytest.mark.parametrize("t", [APPLE_M4, NEON_ONLY, X86], ids=lambda t: t.name)
def test_fc_qu8(t: Target) -> None:
    r = fully_connected(XU, WU, BU, output_min=-5.0, output_max=20.0, target=t, **QU)  # type: ignore[arg-type]
    d = r.decision
    rq = "rndnu" if t.arch == "arm64" else "fp32"
    assert d.config == "qu8_gemm" and d.variant is None and d.operator == "Fully Connected (NC, QU8)"
    assert r.emulation == f"fallback:qu8_gemm({rq})" and r.output.dtype == np.uint8
    if t.arch == "arm64":
        assert d.kernel == "xnn_qu8_gemm_minmax_rndnu_ukernel_4x16__asm_aarch64_neon_mlal_lane_cortex_a75"
    s = F.qu8_requantization_scale(0.05, 0.01, 0.3)
    lo, hi = round(-5.0 / 0.3 + 100), round(20.0 / 0.3 + 100)
    eq(r.output, F.qu8_gemm(XU, WU, BU, zx=128, zw=120, scale=s, zy=100, ymin=lo, ymax=hi, requant=rq))
    one = fully_connected(XU[:1], WU, BU, target=t, **QU)  # type: ignore[arg-type]
    assert one.decision.mr == 1


def test_conv_qu8_igemm_dwconv_and_1x1() -> None:
    xc = rng.integers(0, 256, (1, 6, 6, 8)).astype(np.uint8)
    cases = [
        (rng.integers(0, 256, (4, 3, 3, 8)).astype(np.uint8), 1, (1, 1, 1, 1), "igemm"),
        (rng.integers(0, 256, (8, 3, 3, 1)).astype(np.uint8), 8, (1, 1, 1, 1), "dwconv"),
        (rng.integers(0, 256, (8, 5, 5, 1)).astype(np.uint8), 8, (2, 2, 2, 2), "dwconv"),
        (rng.integers(0, 256, (4, 1, 1, 8)).astype(np.uint8), 1, (0, 0, 0, 0), "gemm"),
    ]
    s = F.qu8_requantization_scale(0.05, 0.01, 0.3)
    for w, g, pad, mk in cases:
        r = convolution_2d(xc, w, None, padding=pad, groups=g, target=APPLE_M4, **QU)  # type: ignore[arg-type]
        d = r.decision
        assert d.microkernel == mk and d.variant is None and "qu8" in d.kernel and r.output.dtype == np.uint8
        ref = F.qu8_igemm(xc, w, None, zx=128, zw=120, scale=s, zy=100, padding=pad, groups=g)
        eq(r.output, ref)
    assert (
        "25p8c"
        in convolution_2d(xc, cases[2][0], None, padding=(2, 2, 2, 2), groups=8, target=APPLE_M4, **QU).decision.kernel  # type: ignore[arg-type]
    )


def test_qu8_api_checks() -> None:
    with pytest.raises(ValueError, match="input_quant"):
        fully_connected(XU, WU, filter_quant=QuantParams(0.01, 120), target=APPLE_M4)
    with pytest.raises(ValueError, match="quint8"):
        fully_connected(
            XU,
            WU,
            input_quant=QuantParams(0.05, 128),
            filter_quant=QuantParams(np.ones(7, F32), 1),
            output_quant=QuantParams(0.3, 100),
            target=APPLE_M4,
        )
    with pytest.raises(NodeRejected, match="qu8 operator"):
        fully_connected(
            XU,
            WU,
            input_quant=QuantParams(10.0, 128),
            filter_quant=QuantParams(10.0, 120),
            output_quant=QuantParams(0.1, 100),
            target=APPLE_M4,
        )


# ---- every fully-connected datatype combination of the decision table runs -------------------------

ALL_TARGETS = [
    APPLE_M4,
    GENERIC_SME1,
    NEON_ONLY,
    NEON_ONLY.replace(i8mm=False),
    NO_KAI,
    X86,
    Target(sme2=False, sme=False, fp16_arith=False),
]


def _fc_case(in_dt: str, k_dt: str, out_dt: str) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    import ml_dtypes

    k, n = 64, 12
    fl = {"fp32": F32, "fp16": F16, "bf16": np.dtype(ml_dtypes.bfloat16)}
    kw: dict[str, object] = {}
    if in_dt == "qdint8":
        x = rng.standard_normal((3, k)).astype(F16 if out_dt == "fp16" else F32)
        kw["dynamic"] = True
    elif in_dt in ("qint8", "quint8"):
        lo_, dt_ = (0, np.uint8) if in_dt == "quint8" else (-128, np.int8)
        x = rng.integers(lo_, 128, (3, k)).astype(dt_)
        kw["input_quant"] = QuantParams(0.05, 3)
        kw["output_quant"] = QuantParams(0.5, 1)
    else:
        x = rng.standard_normal((3, k)).astype(fl[in_dt])
    if k_dt in fl:
        w = rng.standard_normal((n, k)).astype(fl[k_dt])
    elif k_dt == "quint8":
        w, kw["filter_quant"] = rng.integers(0, 256, (n, k)).astype(np.uint8), QuantParams(0.01, 128)
    elif k_dt == "qint8":
        w, kw["filter_quant"] = rng.integers(-127, 128, (n, k)).astype(np.int8), QuantParams(0.01)
    elif k_dt == "qcint8":
        w, kw["filter_quant"] = rng.integers(-127, 128, (n, k)).astype(np.int8), QuantParams(np.full(n, 0.01, F32))
    elif k_dt == "qcint4":
        w, kw["filter_quant"] = W4B, QuantParams(np.full(n, 0.05, F32), 8, bits=4)
    else:
        w, kw["filter_quant"] = W4B, QuantParams(SB, 8, 32)
    return x, w, kw


FC_COMBOS = [
    ("fp32", "fp32", "fp32"),
    ("fp32", "fp16", "fp32"),
    ("fp16", "fp16", "fp16"),
    ("bf16", "bf16", "bf16"),
    ("qdint8", "qcint8", "fp32"),
    ("qdint8", "qbint4", "fp32"),
    ("qdint8", "qcint4", "fp32"),
    ("qdint8", "qcint8", "fp16"),
    ("qdint8", "qbint4", "fp16"),
    ("qdint8", "qcint4", "fp16"),
    ("qint8", "qcint8", "qint8"),
    ("qint8", "qint8", "qint8"),
    ("quint8", "quint8", "quint8"),
    ("fp32", "qcint8", "fp32"),
    ("fp32", "qcint4", "fp32"),
]


@pytest.mark.parametrize("combo", FC_COMBOS, ids=["/".join(c) for c in FC_COMBOS])
def test_every_quantized_fc_combination_runs(combo: tuple[str, str, str]) -> None:
    for t in ALL_TARGETS:
        x, w, kw = _fc_case(*combo)
        r = fully_connected(x, w, target=t, **kw)  # type: ignore[arg-type]  # never NotImplementedError
        assert r.output.shape == (3, 12) and r.decision.reasons, (combo, t.name)
        assert "not emulated" not in r.emulation and "not modelled" not in r.decision.kernel
        assert r.decision.mr > 0 and r.decision.nr > 0, (combo, t.name)


def _conv_cases() -> list[tuple[np.ndarray, np.ndarray, dict[str, object]]]:
    x = rng.standard_normal((1, 5, 5, 8)).astype(F32)
    xq = rng.integers(-128, 128, x.shape).astype(np.int8)
    xu = rng.integers(0, 256, x.shape).astype(np.uint8)
    s8 = QuantParams(np.full(8, 0.01, F32))
    q8: dict[str, object] = dict(input_quant=QuantParams(0.05, 1), output_quant=QuantParams(0.3, 2))
    qu: dict[str, object] = dict(
        input_quant=QuantParams(0.05, 128), filter_quant=QuantParams(0.01, 120), output_quant=QuantParams(0.3, 100)
    )
    w3, dw, one = (
        rng.standard_normal((8, 3, 3, 8)),
        rng.standard_normal((8, 3, 3, 1)),
        rng.standard_normal((8, 1, 1, 1)),
    )
    i3, idw = rng.integers(-127, 128, w3.shape).astype(np.int8), rng.integers(-127, 128, dw.shape).astype(np.int8)
    u3, udw = rng.integers(0, 256, w3.shape).astype(np.uint8), rng.integers(0, 256, dw.shape).astype(np.uint8)
    cases: list[tuple[np.ndarray, np.ndarray, dict[str, object]]] = []
    for dt in (F32, F16):
        cases += [(x.astype(dt), w3.astype(dt), {}), (x.astype(dt), dw.astype(dt), {"groups": 8})]
        cases += [(x.astype(dt), one.astype(dt), {"groups": 8, "padding": (0, 0, 0, 0)})]
    cases += [
        (x, w3[:2].astype(F32), {}),  # N = 2: the nr2 config on NEON
        (x, i3, {"dynamic": True, "filter_quant": s8}),
        (x.astype(F16), i3, {"dynamic": True, "filter_quant": s8}),  # qd8_f16_qc8w IGEMM
        (xq, i3, {**q8, "filter_quant": s8}),
        (xq, idw, {**q8, "filter_quant": s8, "groups": 8}),
        (xu, u3, qu),
        (xu, udw, {**qu, "groups": 8}),
    ]
    return cases


def test_every_registered_runner_is_reached() -> None:
    """The registry has no dead entry: each (microkernel, config) key is what some node decides."""
    seen = set()
    for t in ALL_TARGETS:
        for combo in FC_COMBOS:
            x, w, kw = _fc_case(*combo)
            for m in (1, 3):
                d = fully_connected(x[:m], w, target=t, **kw).decision  # type: ignore[arg-type]
                seen.add((d.microkernel, d.config))
        for x, w, kw in _conv_cases():
            r = convolution_2d(x, w, None, target=t, **{"padding": (1, 1, 1, 1), **kw})  # type: ignore[arg-type]
            seen.add((r.decision.microkernel, r.decision.config))
    assert seen == set(RUNNERS)
