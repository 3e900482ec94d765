"""The x86-64 ISA level of a :class:`Target` (``x86_isa``): validation, CASE JSON, the kernels it selects
(XNNPACK ``init_f16_gemm_config`` / ``init_f32_qc{8,4}w_gemm_config`` x86 entries, dispatch and ops agreeing), the
named CPUs' levels from their XNNPACK arch flags, and ``x86-avx512-fp16`` (the machine of the graph fixtures)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _exact import eq

from kleidiref import cli
from kleidiref import fallbacks as F
from kleidiref.configs import f16_x86_choice, f32_qcw_choice
from kleidiref.dispatch import CaseError, Node, TensorSpec, decide, target_from_json
from kleidiref.dispatch.hardware import X86_CPUS, prefers_qdu8, x86_isa_of
from kleidiref.inspection import CPU_NAMES, inspect, observed_operator_names, resolve_cpu
from kleidiref.ops import QuantParams, convolution_2d, fully_connected
from kleidiref.ops.gemm_runners import X86F16Kernel
from kleidiref.runner import Runner, max_ulp_distance
from kleidiref.targets import APPLE_M4, X86_ISA_LEVELS, Target, X86IsaLevel

F16, F32 = np.float16, np.float32
X86 = Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)
GRAPH = Path(__file__).parent / "fixtures" / "pte" / "graph"
rng = np.random.default_rng(7)
X = rng.standard_normal((5, 40)).astype(F32)
W = rng.standard_normal((12, 40)).astype(F32)
B = rng.standard_normal(12).astype(F32)


def at(level: X86IsaLevel) -> Target:
    return X86.replace(x86_isa=level, name=level)


def fc16(m: int) -> Node:
    return Node(
        op="fully_connected",
        input=TensorSpec("fp16", (m, 40)),
        filter=TensorSpec("fp16", (12, 40), static=True),
        output=TensorSpec("fp16", (m, 12)),
    )


# ---- Target.x86_isa -------------------------------------------------------------------------------


def test_default_level_is_avx2_on_x86_and_none_on_arm() -> None:
    assert X86.x86_isa == "avx2" and APPLE_M4.x86_isa is None
    assert "x86_isa='avx2'" in repr(X86) and "x86_isa" not in repr(APPLE_M4)
    assert X86.replace(x86_isa="sse41").x86_isa == "sse41" and X86.replace(x86_isa=None).x86_isa == "avx2"
    assert X86_ISA_LEVELS == ("avx512fp16", "avx512skx", "avx2", "fma3", "avx", "sse41")


@pytest.mark.parametrize("bad", ["avx512", "AVX2", "sse2", 2, True])
def test_unknown_levels_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="x86_isa must be one of avx512fp16, avx512skx, avx2, fma3, avx, sse41"):
        X86.replace(x86_isa=bad)


def test_arm64_has_no_x86_level() -> None:
    with pytest.raises(ValueError, match="only an x86_64 target has an x86 ISA level"):
        Target(x86_isa="avx2")


def _case_target(t: Target) -> dict[str, Any]:
    obj = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
    return {k: v for k, v in obj.items() if v is not None}


@pytest.mark.parametrize("level", X86_ISA_LEVELS)
def test_case_json_round_trip(level: X86IsaLevel) -> None:
    t = at(level)
    back, platform = target_from_json(json.loads(json.dumps(_case_target(t))))
    assert back == t and platform == "linux"
    arm, _ = target_from_json(_case_target(APPLE_M4))
    assert arm == APPLE_M4
    plain = _case_target(X86)
    del plain["x86_isa"]
    assert target_from_json(plain)[0].x86_isa == "avx2"  # optional key


def test_case_json_errors() -> None:
    with pytest.raises(CaseError, match="target: x86_isa must be one of"):
        target_from_json({**_case_target(X86), "x86_isa": "avx10"})
    with pytest.raises(CaseError, match="only an x86_64 target"):
        target_from_json({**_case_target(APPLE_M4), "x86_isa": "avx2"})


# ---- the kernels each level selects ---------------------------------------------------------------

F16_KERNELS: dict[str, tuple[X86F16Kernel, str, int, int]] = {
    "avx512fp16": ("avx512fp16", "xnn_f16_gemm_minmax_ukernel_8x32__avx512fp16_broadcast", 8, 32),
    "avx512skx": ("avx512skx", "xnn_f16_f32acc_gemm_minmax_ukernel_4x32__avx512skx_broadcast", 4, 32),
    "avx2": ("avx2", "xnn_f16_f32acc_gemm_minmax_ukernel_4x16__avx2_broadcast", 4, 16),
}


@pytest.mark.parametrize("level", list(F16_KERNELS))
def test_f16_fc_runs_the_level_s_f16_gemm_entry(level: X86IsaLevel) -> None:
    key, name, mr, nr = F16_KERNELS[level]
    t = at(level)
    d = decide(fc16(5), t)
    assert (d.config, d.kernel, d.mr, d.nr) == ("f16_gemm", name, mr, nr)
    assert f16_x86_choice(5, igemm=False, isa=level) == (key, name, mr, nr)
    assert any(f"ISA level {level}" in r for r in d.reasons)
    x16, w16 = X.astype(F16), W.astype(F16)
    r = fully_connected(x16, w16, B.astype(F16), output_min=-2.0, output_max=3.0, target=t)
    assert r.decision.kernel == d.kernel
    assert r.emulation == f"fallback:f16_x86_gemm({key})"
    eq(r.output, F.f16_x86_gemm(x16, w16, B.astype(F16), clamp_min=-2.0, clamp_max=3.0, kernel=key))
    one = decide(fc16(1), t)
    assert one.mr == 1 and one.kernel == name.replace(f"_{mr}x{nr}_", f"_1x{nr}_")


@pytest.mark.parametrize("level", list(F16_KERNELS))
def test_f16_conv_runs_the_level_s_igemm(level: X86IsaLevel) -> None:
    key, name, _, _ = F16_KERNELS[level]
    xc, wc = rng.standard_normal((1, 6, 6, 4)).astype(F16), rng.standard_normal((8, 3, 3, 4)).astype(F16)
    c = convolution_2d(xc, wc, None, padding=(1, 1, 1, 1), target=at(level))
    assert c.decision.microkernel == "igemm" and c.decision.kernel == name.replace("_gemm_", "_igemm_")
    assert c.emulation == f"fallback:f16_x86_igemm({key})"
    eq(c.output, F.f16_x86_igemm(xc, wc, None, padding=(1, 1, 1, 1), kernel=key))


def test_the_two_f16_accumulations_differ() -> None:
    """The level matters: fp16 accumulation (AVX512-FP16) rounds every step, the f32acc kernels once."""
    x16, w16 = X.astype(F16), W.astype(F16)
    a = fully_connected(x16, w16, None, target=at("avx512fp16")).output
    b = fully_connected(x16, w16, None, target=at("avx512skx")).output
    assert max_ulp_distance(a, b) > 0
    eq(b, fully_connected(x16, w16, None, target=at("avx2")).output)


@pytest.mark.parametrize("level", ["fma3", "avx", "sse41"])
def test_below_avx2_fp16_nodes_become_fp32(level: X86IsaLevel) -> None:
    """No f16_gemm config below AVX2 (xnn_init_f16_gemm_config returns NULL): cvt_to_fp32 rewrites the node."""
    d = decide(fc16(5), at(level))
    assert d.config == "f32_gemm" and any(f"x86 ISA level {level} is below AVX2" in r for r in d.reasons)
    with pytest.raises(ValueError, match="f16_gemm config needs AVX2, AVX512SKX or AVX512-FP16"):
        f16_x86_choice(5, igemm=False, isa=level)
    x16, w16 = X.astype(F16), W.astype(F16)
    if level == "fma3":  # the __fma3 f32 kernels, as on AVX2 CPUs
        r = fully_connected(x16, w16, None, target=at(level))
        assert r.output.dtype == F16
        eq(r.output, fully_connected(x16, w16, None, target=X86.replace(x86_isa="avx2")).output)
    else:  # XNNPACK's AVX / SSE f32 kernels round products separately: not emulated
        with pytest.raises(NotImplementedError, match=f"x86 ISA level {level}"):
            fully_connected(x16, w16, None, target=at(level))


QCW = {
    "avx512fp16": ("x86_fma", "7x32__avx512skx_broadcast", "7x32__avx512skx_broadcast"),
    "avx512skx": ("x86_fma", "7x32__avx512skx_broadcast", "7x32__avx512skx_broadcast"),
    "avx2": ("x86_fma", "5x16__avx2_broadcast", "3x16__avx2_broadcast"),
    "fma3": ("x86_fma", "5x16__fma3_broadcast", "3x16__fma3_broadcast"),
    "avx": ("x86_avx", "5x16__avx_broadcast", "3x16__avx_broadcast"),
    "sse41": ("x86_sse41", "4x8__sse41_dup", "4x8__sse41_dup"),
}


@pytest.mark.parametrize("level", X86_ISA_LEVELS)
@pytest.mark.parametrize("bits", [8, 4])
def test_weight_only_fc_per_level(level: X86IsaLevel, bits: int) -> None:
    key, tile8, tile4 = QCW[level]
    cfg = f"f32_qc{bits}w_gemm"
    t = at(level)
    w = rng.integers(-8 if bits == 4 else -127, 8 if bits == 4 else 128, (12, 40)).astype(np.int8)
    s = rng.uniform(0.005, 0.05, 12).astype(F32)
    fq = QuantParams(s) if bits == 8 else QuantParams(s, 8, bits=4)
    r = fully_connected(X, w, B, filter_quant=fq, target=t)
    name = f"xnn_{cfg.removesuffix('_gemm')}_gemm_minmax_ukernel_{tile8 if bits == 8 else tile4}"
    assert r.decision.kernel == name and f32_qcw_choice(cfg, 5, t, "linux")[:2] == (key, name)
    assert r.emulation == f"fallback:{cfg}({key})"
    kw: dict[str, Any] = dict(clamp_min=-np.inf, clamp_max=np.inf, fz=True, kernel=key)
    if bits == 8:
        ref = F.f32_qc8w_gemm(X, w, s, B, **kw)
    else:
        ref = F.f32_qc4w_gemm(X, (w.astype(np.int16) + 8).astype(np.uint8), s, B, kernel_zero_point=8, **kw)
    eq(r.output, ref)


def test_below_avx2_other_configs_are_refused_not_guessed() -> None:
    xq = rng.integers(-128, 128, (1, 6, 6, 4)).astype(np.int8)
    w = rng.integers(-127, 128, (8, 3, 3, 4)).astype(np.int8)
    kw: dict[str, Any] = dict(
        input_quant=QuantParams(0.05, 3),
        filter_quant=QuantParams(np.full(8, 0.01, F32)),
        output_quant=QuantParams(0.2, -1),
        padding=(1, 1, 1, 1),
    )
    assert convolution_2d(xq, w, None, target=at("avx2"), **kw).output.dtype == np.int8
    with pytest.raises(NotImplementedError, match="x86 ISA level fma3"):
        convolution_2d(xq, w, None, target=at("fma3"), **kw)


# ---- named CPUs -----------------------------------------------------------------------------------


def test_named_cpus_take_their_level_from_their_flags() -> None:
    assert {n: resolve_cpu(n).target.x86_isa for n in CPU_NAMES if n.startswith("x86")} == {
        "x86-avx2": "avx2",
        "x86-avx512-vnni": "avx512skx",
        "x86-avx512-fp16": "avx512fp16",
    }
    assert all(resolve_cpu(n).target.x86_isa == x86_isa_of(X86_CPUS[n]) for n in X86_CPUS)
    with pytest.raises(ValueError, match=r"SSE4\.1 at least"):
        x86_isa_of(frozenset({"sse", "sse2"}))


def test_x86_avx512_fp16_has_no_amx_because_qdu8_was_observed() -> None:
    """With XNNPACK's avx512amx flag the qd8_f32_qc8w config (AMX entry) would outrank qdu8_f32_qc8w: QD8."""
    fp16 = X86_CPUS["x86-avx512-fp16"]
    assert "avx512amx" not in fp16 and prefers_qdu8("fp32", "fully_connected", "qcint8", fp16)[0]
    assert not prefers_qdu8("fp32", "fully_connected", "qcint8", fp16 | {"avx512amx"})[0]


def test_cpu_file_level_and_flags(tmp_path: Path) -> None:
    base = _case_target(X86)
    del base["x86_isa"]
    f = tmp_path / "spr.json"
    f.write_text(json.dumps({**base, "x86_flags": sorted(X86_CPUS["x86-avx512-fp16"])}))
    assert resolve_cpu(str(f)).target.x86_isa == "avx512fp16"
    f.write_text(json.dumps({**base, "x86_isa": "avx2", "x86_flags": sorted(X86_CPUS["x86-avx512-vnni"])}))
    with pytest.raises(ValueError, match="x86_isa 'avx2' but the x86_flags reach 'avx512skx'"):
        resolve_cpu(str(f))
    f.write_text(json.dumps({**base, "x86_isa": "avx512skx"}))
    spec = resolve_cpu(str(f))
    assert spec.target.x86_isa == "avx512skx" and spec.x86_flags is not None and "avx512skx" in spec.x86_flags


def test_run_and_inspect_the_new_cpu(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pte = GRAPH / "mlp_act__fp16.pte"
    out = tmp_path / "o.npz"
    assert cli.main(["run", str(pte), "--cpu", "x86-avx512-fp16", "--out", str(out), "--trace"]) == 0
    assert "f16_x86_gemm(avx512fp16)" in capsys.readouterr().out
    with np.load(out) as got, np.load(pte.with_suffix(".io.npz")) as seen:
        assert max_ulp_distance(got["output_0"], seen["output_0"]) == 0
    with np.load(pte.with_suffix(".io.npz")) as z:
        r = Runner(pte, "x86-avx512-vnni").run([z["input_0"]])
        assert max_ulp_distance(r.outputs[0], z["output_0"]) > 0  # f32 accumulation: not this machine
    sidecar = json.loads(pte.with_name("mlp_act__fp16.sidecar.json").read_text())
    names = inspect(pte, "x86-avx512-fp16").operator_names("x86-avx512-fp16")
    assert names == observed_operator_names(sidecar) == ["Fully Connected (NC, F16) GEMM"] * 2
    assert cli.main(["inspect", str(pte), "--cpu", "x86-avx512-fp16", "--json"]) == 0
    assert "xnn_f16_gemm_minmax_ukernel_8x32__avx512fp16_broadcast" in capsys.readouterr().out
