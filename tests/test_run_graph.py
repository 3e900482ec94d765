"""The graph around the GEMMs: XNNPACK's glue nodes and the portable kernels between delegates, against the
outputs the real ExecuTorch runtime gave on this x86-64 machine (tests/fixtures/pte/graph, made by its
``make_graph_fixtures.py``; AVX-512 with VNNI and FP16).

The x86 machine that observed these runs has AVX512-FP16, so XNNPACK's f16 GEMMs there are the fp16-accumulating
``__avx512fp16_broadcast`` kernels; the runner's named x86 CPUs have no AVX512-FP16 (their f16 GEMMs accumulate in
f32), so the fp16 programs match only with that GEMM kernel chosen: :func:`_avx512fp16_gemms` does it, and
:data:`DIFFERENCES` records what the named CPU gives without it (measured). Arm CPUs have no observation for
these programs: they must run, and the nodes' Arm kernels are named in each node module.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from kleidiref.runner.nodes.elementwise import float_clamp
from kleidiref.runner.nodes.pooling import rdsum_mean_f32
from kleidiref.runner.portable import SUPPORTED_PORTABLE_OPS, run_kernel_call

GRAPH = Path(__file__).parent / "fixtures" / "pte" / "graph"
PROGRAMS = sorted(p.stem for p in GRAPH.glob("*.pte"))
X86 = "x86-avx512-vnni"
ARM_CPUS = ("sme2", "sme", "neon-i8mm", "neon-dotprod")
#: Programs with a node the runner refuses: (exception, a word of its message).
REFUSED: dict[str, tuple[type[Exception], str]] = {
    "cnn_gap__pt2e_static_pc": (NotImplementedError, "qint8"),
    "mlp_act__pt2e_static_pc": (NotImplementedError, "qint8"),
}
#: Max ULP distance of the named x86 CPU (f16 GEMMs accumulating in f32) from the AVX512-FP16 observation.
DIFFERENCES = {"cnn_gap__fp16": 1, "mlp_act__fp16": 1528, "mixed_f16__fp32": 131072}


def _io(name: str) -> tuple[list[NDArray[Any]], list[NDArray[Any]]]:
    with np.load(GRAPH / f"{name}.io.npz") as z:
        ins = [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]
        outs = [z[f"output_{i}"] for i in range(sum(k.startswith("output_") for k in z.files))]
    return ins, outs


@pytest.fixture
def _avx512fp16_gemms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """XNNPACK's x86 f16 GEMM/IGEMM kernels of an AVX512-FP16 CPU (the machine the fixtures were observed on)."""
    import kleidiref.ops.conv_runners as conv_runners
    import kleidiref.ops.gemm_runners as gemm_runners

    monkeypatch.setattr(gemm_runners, "x86_f16_kernel", lambda _d: "avx512fp16")
    monkeypatch.setattr(conv_runners, "x86_f16_kernel", lambda _d: "avx512fp16")
    yield


@pytest.mark.usefixtures("_avx512fp16_gemms")
@pytest.mark.parametrize("name", [p for p in PROGRAMS if p not in REFUSED])
def test_matches_observed_x86_outputs(name: str) -> None:
    ins, expected = _io(name)
    got = Runner(GRAPH / f"{name}.pte", X86).run(ins).outputs
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert max_ulp_distance(g, e) == 0


@pytest.mark.parametrize("name", [p for p in PROGRAMS if p not in REFUSED])
def test_named_x86_cpu_differs_only_in_f16_gemms(name: str) -> None:
    ins, expected = _io(name)
    got = Runner(GRAPH / f"{name}.pte", X86).run(ins).outputs
    assert max(max_ulp_distance(g, e) for g, e in zip(got, expected, strict=True)) == DIFFERENCES.get(name, 0)


@pytest.mark.parametrize("cpu", ARM_CPUS)
@pytest.mark.parametrize("name", [p for p in PROGRAMS if p not in REFUSED])
def test_runs_on_arm(name: str, cpu: str) -> None:
    ins, expected = _io(name)
    got = Runner(GRAPH / f"{name}.pte", cpu, 512).run(ins).outputs
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape and np.isfinite(g).all()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name: str) -> None:
    exc, word = REFUSED[name]
    with pytest.raises(exc, match=word):
        Runner(GRAPH / f"{name}.pte", X86)(_io(name)[0])


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
