"""The graph around the GEMMs: XNNPACK's glue nodes and the portable kernels between delegates, against the
outputs the real ExecuTorch runtime gave on this x86-64 machine (tests/fixtures/pte/graph, made by its
``make_graph_fixtures.py``; AVX-512 with VNNI and FP16).

The x86 machine that observed these runs (a Sapphire Rapids Xeon) has AVX512-FP16, so XNNPACK's f16 GEMMs there are
the fp16-accumulating ``__avx512fp16_broadcast`` kernels: the named CPU ``x86-avx512-fp16`` (``Target.x86_isa``
``"avx512fp16"``). :data:`DIFFERENCES` records what ``x86-avx512-vnni`` (AVX512SKX: f16 GEMMs accumulating in f32)
gives instead (measured). Arm CPUs have no observation for these programs: they must run, and the nodes' Arm
kernels are named in each node module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref import pte
from kleidiref.numerics import Clamp
from kleidiref.runner import Runner, cpu_target, max_ulp_distance
from kleidiref.runner.nodes.convert import f16_to_f32, f32_to_f16
from kleidiref.runner.nodes.elementwise import float_clamp, qs8_add, qs8_add_params
from kleidiref.runner.nodes.pooling import qs8_mean, rdsum_mean_f32
from kleidiref.runner.portable import SUPPORTED_PORTABLE_OPS, run_kernel_call

GRAPH = Path(__file__).parent / "fixtures" / "pte" / "graph"
PROGRAMS = sorted(p.stem for p in GRAPH.glob("*.pte"))
X86 = "x86-avx512-fp16"
#: An x86 CPU without AVX512-FP16 (its f16 GEMMs accumulate in f32).
X86_F32ACC = "x86-avx512-vnni"
ARM_CPUS = ("sme2", "sme", "neon-i8mm", "neon-dotprod")
#: Max ULP distance of ``X86_F32ACC`` from the AVX512-FP16 observation.
DIFFERENCES = {"cnn_gap__fp16": 1, "cnn_gap_c40__fp16": 3, "mlp_act__fp16": 1528, "mixed_f16__fp32": 131072}


def _io(name: str) -> tuple[list[NDArray[Any]], list[NDArray[Any]]]:
    with np.load(GRAPH / f"{name}.io.npz") as z:
        ins = [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]
        outs = [z[f"output_{i}"] for i in range(sum(k.startswith("output_") for k in z.files))]
    return ins, outs


@pytest.mark.parametrize("name", PROGRAMS)
def test_matches_observed_x86_outputs(name: str) -> None:
    ins, expected = _io(name)
    got = Runner(GRAPH / f"{name}.pte", X86).run(ins).outputs
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert max_ulp_distance(g, e) == 0


@pytest.mark.parametrize("name", PROGRAMS)
def test_f32_accumulating_x86_cpu_differs_only_in_f16_gemms(name: str) -> None:
    ins, expected = _io(name)
    got = Runner(GRAPH / f"{name}.pte", X86_F32ACC).run(ins).outputs
    assert max(max_ulp_distance(g, e) for g, e in zip(got, expected, strict=True)) == DIFFERENCES.get(name, 0)


@pytest.mark.parametrize("cpu", ARM_CPUS)
@pytest.mark.parametrize("name", PROGRAMS)
def test_runs_on_arm(name: str, cpu: str) -> None:
    ins, expected = _io(name)
    got = Runner(GRAPH / f"{name}.pte", cpu, 512).run(ins).outputs
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert np.array_equal(np.isfinite(g), np.isfinite(e)) and np.array_equal(np.isnan(g), np.isnan(e))


def test_quantized_nodes_name_their_kernels() -> None:
    ins, _ = _io("mlp_act__pt2e_static_pc")
    trace = Runner(GRAPH / "mlp_act__pt2e_static_pc.pte", "sme2").run(ins).trace
    assert trace[4].node_type == "XNNAdd" and trace[4].dtype == "int8"
    assert "xnn_qs8_vadd_minmax (__neon_ld64_u32)" in trace[4].emulation and "xnn_s8_vclamp" in trace[4].emulation
    ins, _ = _io("conv_gap__pt2e_static_pc")
    trace = Runner(GRAPH / "conv_gap__pt2e_static_pc.pte", X86).run(ins).trace
    assert trace[3].node_type == "XNNGlobalAvgPooling2d" and "xnn_qs8_rdsum" in trace[3].emulation


_I8 = st.integers(-128, 127)
_SCALE = st.floats(2.0**-8, 4.0, allow_subnormal=False, width=32)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_I8, _I8), min_size=1, max_size=40), _SCALE, _SCALE, _SCALE, _I8, _I8, _I8)
def test_qs8_add_arm_form_equals_xnnpack_scalar_form(
    ab: list[tuple[int, int]], sa: float, sb: float, so: float, za: int, zb: int, zo: int
) -> None:
    """The Arm form (zero points first, rounding shift, saturating narrowings) gives the integers of
    ``src/qs8-vadd/scalar.c.in``: ``asr(bias + a m_a + b m_b, shift) + zp``, clamped to int8."""
    ratios = (np.float32(sa) / np.float32(so), np.float32(sb) / np.float32(so))
    if not all(2.0**-10 <= r < 2.0**8 for r in ratios):
        with pytest.raises(ValueError, match="xnn_init_qs8_add_minmax_scalar_params"):
            qs8_add_params(sa, sb, so)
        return
    a = np.array([p[0] for p in ab], np.int8)
    b = np.array([p[1] for p in ab], np.int8)
    ma, mb, shift = qs8_add_params(sa, sb, so)
    assert 12 <= shift <= 30 and max(abs(ma), abs(mb)) >= 2**20
    bias = (1 << (shift - 1)) - ma * za - mb * zb
    want = np.clip(((bias + a.astype(np.int64) * ma + b.astype(np.int64) * mb) >> shift) + zo, -128, 127)
    assert qs8_add(a, b, (sa, za), (sb, zb), (so, zo)).tolist() == want.tolist()


def test_qs8_mean_contraction_matters_at_rounding_boundaries() -> None:
    """Arm's fused ``float(sum) * scale + zp'`` (clang contracts it) and x86's two roundings agree almost
    always (2 in 1.28M random outputs differ) and by one code when they do; this is one of the two found."""
    col = [-60, -97, -28, 123, -6, -117, -14, -62, 22, -111, -44, -88, 26, -14, 78, 49, -82, -86, -84, 37]
    rows = np.array(col, np.int8).reshape(1, -1, 1)
    qi, qo = (float(np.float32(0.09964868426322937)), 109), (float(np.float32(0.06907293200492859)), 111)
    fused, plain = qs8_mean(rows, qi, qo, fused=True), qs8_mean(rows, qi, qo, fused=False)
    assert abs(int(fused[0, 0]) - int(plain[0, 0])) == 1
    rng = np.random.default_rng(1)
    many = rng.integers(-128, 128, (1, 9, 4096)).astype(np.int8)
    assert np.array_equal(qs8_mean(many, qi, qo, fused=True), qs8_mean(many, qi, qo, fused=False))


def test_trace_names_the_kernels() -> None:
    ins, _ = _io("mlp_act__fp32")
    arm = [t.emulation for t in Runner(GRAPH / "mlp_act__fp32.pte", "sme2").run(ins).trace]
    x86 = [t.emulation for t in Runner(GRAPH / "mlp_act__fp32.pte", X86).run(ins).trace]
    assert arm[0] == "xnn_f32_vclamp_ukernel__neon_u16" and "avx512f" in x86[0]
    assert "xnn_f32_vadd" in arm[2] and "then Clamp" in arm[2]
    ins, _ = _io("cnn_gap__fp32")
    trace = Runner(GRAPH / "cnn_gap__fp32.pte", "sme2").run(ins).trace
    assert [t.node_type for t in trace][2:5] == ["XNNGlobalAvgPooling2d", "XNNStaticTranspose", "XNNStaticReshape"]
    assert "rdsum" in trace[2].emulation and trace[2].shape == (1, 1, 1, 8)


def test_plan_has_kernel_calls_between_delegates() -> None:
    plan = pte.load(GRAPH / "expand_linear__fp32.pte").plan()
    assert [i.kind for i in plan.instructions] == ["DelegateCall", "KernelCall", "KernelCall", "DelegateCall"]
    assert plan.non_delegated_ops == ("aten::unsqueeze_copy.out", "aten::expand_copy.out")
    assert set(plan.non_delegated_ops) <= set(SUPPORTED_PORTABLE_OPS)
    assert plan.int_list(8) == (2, 3, 16)  # expand_copy's size: boxed Int EValues


def test_trace_shows_portable_kernel_calls() -> None:
    ins, _ = _io("expand_linear__fp32")
    res = Runner(GRAPH / "expand_linear__fp32.pte", "sme2").run(ins, keep_node_outputs=True)
    calls = [t for t in res.trace if t.delegate == -1]
    assert [(t.index, t.node_type, t.shape) for t in calls] == [
        (1, "aten::unsqueeze_copy.out", (2, 1, 16)),
        (2, "aten::expand_copy.out", (2, 3, 16)),
    ]
    assert "op_expand_copy.cpp" in calls[1].emulation and calls[1].output is not None
    first = res.trace[0].output
    assert first is not None and np.array_equal(calls[1].output[:, 2], first)


def test_half_conversion_nan_payloads_follow_the_cpu() -> None:
    """``c10::Half(float)``: x86-64 drops a NaN's payload (observed: ``f16_roundtrip__fp32``), AArch64's FCVT keeps
    its top bits (Arm ARM FPConvertNaN)."""
    ins, expected = _io("f16_roundtrip__fp32")
    x86 = Runner(GRAPH / "f16_roundtrip__fp32.pte", X86)(ins)
    arm = Runner(GRAPH / "f16_roundtrip__fp32.pte", "sme2")(ins)
    nan = np.isnan(expected[0])
    assert nan.sum() >= 4 and (expected[0].view(np.uint16)[nan] & 0x7FFF == 0x7E00).all()
    assert np.array_equal(x86[0].view(np.uint16), expected[0].view(np.uint16))
    assert np.array_equal(arm[0].view(np.uint16)[~nan], expected[0].view(np.uint16)[~nan])
    payload = ins[0].view(np.uint32)[nan] >> 13 & 0x1FF
    assert np.array_equal(arm[0].view(np.uint16)[nan] & 0x1FF, payload) and payload.any()


def test_unsupported_portable_op_is_refused() -> None:
    plan = pte.load(GRAPH / "expand_linear__fp32.pte").plan()
    bogus = pte.Instruction("KernelCall", 0, (1, 3, 2, 2), "aten::cumsum.out")
    with pytest.raises(NotImplementedError, match=r"aten::cumsum\.out"):
        run_kernel_call(plan, bogus, {}, x86=True)


def test_rdsum_sums_rows_in_order_then_scales() -> None:
    """Row order matters in f32: 1e8 + 1 + ... - 1e8; XNNPACK adds each row to the running sum from +0."""
    col = np.array([1e8, 1, 1, 1, -1e8, 3, 0.5, 4, 2], np.float32)
    rows = col.reshape(1, -1, 1)
    acc = np.float32(0)
    for v in col:
        acc = np.float32(acc + v)
    want = np.float32(acc * (np.float32(1) / np.float32(col.size)))
    assert rdsum_mean_f32(rows, fz=True)[0, 0] == want
    assert want != np.float32(np.sum(col, dtype=np.float64) / col.size)


def test_clamp_nan_rules_differ_by_kernel() -> None:
    x = np.array([np.nan, -3, 0.5, 3], np.float32)
    arm, _ = float_clamp(cpu_target("sme2"), x, -1, 2)
    x86, _ = float_clamp(cpu_target(X86), x, -1, 2)
    assert np.isnan(arm[0]) and np.isnan(x86[0])  # vmaxq_f32 and _mm512_max_ps(vmin, x) both keep the NaN
    x16, how = float_clamp(cpu_target(X86), x.astype(np.float16), -1, 2)
    assert x16[0] == -1 and "f16c" in how  # _mm256_max_ps(x, vmin): a NaN x gives vmin
    assert arm[1:].tolist() == x86[1:].tolist() == [-1, 0.5, 2]
    assert Clamp.X86_MAX_MIN.value == "x86_max_min"


def test_clamp_flushes_subnormals_where_the_cpu_does() -> None:
    tiny = np.array([1e-40], np.float32)
    assert float_clamp(cpu_target("sme2"), tiny, -1, 2)[0][0] == 0  # FPCR.FZ
    t16 = np.array([1e-6], np.float16)  # an fp16 subnormal
    assert float_clamp(cpu_target("sme2"), t16, -1, 2)[0][0] == 0  # FPCR.FZ16
    assert float_clamp(cpu_target(X86), t16, -1, 2)[0][0] == t16[0]  # F16C ignores DAZ


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_f32_to_f16_rounds_to_nearest_even_and_keeps_nan_payloads(bits: int) -> None:
    x = np.array([bits], np.uint32).view(np.float32)
    y = f32_to_f16(x)
    if np.isnan(x[0]):
        hb = int(y.view(np.uint16)[0])
        assert hb & 0x7E00 == 0x7E00 and hb >> 15 == bits >> 31 and hb & 0x1FF == (bits >> 13) & 0x1FF
    else:
        with np.errstate(over="ignore"):
            assert y.view(np.uint16)[0] == x.astype(np.float16).view(np.uint16)[0]
    back = f16_to_f32(y)
    if not np.isnan(y[0]):
        assert back[0] == y[0].astype(np.float32) or (np.isinf(back[0]) and np.isinf(y[0]))
