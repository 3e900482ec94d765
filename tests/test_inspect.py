"""kleidiref inspect: predicted XNNPACK operator names against the ones ETDump recorded on real runs.

Observed names: ``.sidecar.json`` ``x86_operator_names`` (x86-64), ``.sme2.json`` (the ExecuTorch runtime with
XNNPACK + KleidiAI on an emulated SME2 CPU, SVL 512) and ``.nosme.json`` (the same CPU with SME off: QEMU
``-cpu max,sme=off`` keeps I8MM, DotProd and FP16, i.e. ``neon-i8mm``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import pytest

import kleidiref
from kleidiref import dispatch
from kleidiref.cli import main
from kleidiref.dispatch.hardware import X86_CPUS, prefers_qdu8
from kleidiref.inspection import (
    compare_operator_names,
    inspect,
    observed_operator_names,
    resolve_cpu,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pte"
PROGRAMS = sorted(FIXTURES.glob("*.pte"))
SHARED = Path(os.environ.get("KLEIDIREF_SHARED_PTE", "/work/shared/pte")) / "programs"

#: The CPU the x86 observations were made on, as XNNPACK saw it: the QDU8 names for qb4w weights need the
#: qdu8_f32_qb4w config, which gemm-config.c enables only with AVX512-VNNI.
X86_OBSERVED = "x86-avx512-vnni"


def _observations(pte_path: Path) -> dict[str, dict[str, object]]:
    base = pte_path.with_suffix("")
    side = json.loads(base.with_suffix(".sidecar.json").read_text())
    obs: dict[str, dict[str, object]] = {X86_OBSERVED: side, "sme2": json.loads(Path(f"{base}.sme2.json").read_text())}
    nosme = Path(f"{base}.nosme.json")
    if nosme.exists():
        obs["neon-i8mm"] = json.loads(nosme.read_text())
    return obs


def _differences(pte_path: Path) -> list[str]:
    obs = _observations(pte_path)
    r = inspect(pte_path, list(obs), svl=512)
    diffs: list[str] = []
    for cpu, o in obs.items():
        predicted = r.operator_names(cpu)
        if o.get("status", "ok") != "ok":
            # The runtime refused the program (xnn_status_unsupported_hardware): inspect must refuse a node.
            if None not in predicted:
                diffs.append(f"{cpu}: the run failed ({o.get('error')}) but every node is predicted to run")
            continue
        diffs += [f"{cpu}: {d}" for d in compare_operator_names(predicted, observed_operator_names(o))]
    return diffs


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_operator_names_match_the_observed_ones(path: Path) -> None:
    assert _differences(path) == []


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared program corpus is not on this machine")
def test_operator_names_match_on_every_shared_program() -> None:
    programs = sorted(SHARED.glob("*.pte"))
    assert programs
    bad = {p.stem: d for p in programs if (d := _differences(p))}
    assert bad == {}


def test_refused_sme2_node_says_why() -> None:
    r = inspect(FIXTURES / "linear_k64_n32__fp16_ao_8da4w_g32.pte", ["sme2", "neon-i8mm", "x86-avx2"])
    (node,) = r.gemm_nodes
    d = node.decisions["sme2"]
    assert d.operator_name is None and d.refused is not None
    assert "xnn_status_unsupported_hardware" in d.refused and "qd8_f16_qb4w" in d.refused
    assert node.decisions["neon-i8mm"].operator_name == "Fully Connected (NC, QD8, F32, QB4W) GEMM"
    assert node.decisions["x86-avx2"].operator_name == "Fully Connected (NC, QD8, F32, QB4W) GEMM"


def test_x86_without_vnni_keeps_qd8_except_qc4w() -> None:
    avx2 = X86_CPUS["x86-avx2"]
    assert not prefers_qdu8("fp32", "fully_connected", "qcint8", avx2)[0]
    assert not prefers_qdu8("fp32", "fully_connected", "qbint4", avx2)[0]
    # qdu8_f32_qc4w has an AVX2 entry, qd8_f32_qc4w only SSE2 (or AMX): qdu8 outranks it.
    assert prefers_qdu8("fp32", "fully_connected", "qcint4", avx2)[0]
    vnni = X86_CPUS["x86-avx512-vnni"]
    assert prefers_qdu8("fp32", "convolution_2d", "qcint8", vnni)[0]
    assert not prefers_qdu8("fp16", "fully_connected", "qbint4", vnni)[0]  # no fp16 qb4w pair upstream
    r = inspect(FIXTURES / "linear_k64_n32__pt2e_dyn_pc4.pte", "x86-avx2")
    assert r.operator_names("x86-avx2") == ["Fully Connected (NC, QDU8, F32, QC4W) GEMM"]


def _conv_node(op: str, x: tuple[int, ...], w: tuple[int, ...], y: tuple[int, ...], **conv: object) -> dispatch.Node:
    return dispatch.Node(
        op,
        dispatch.TensorSpec("fp32", x),
        dispatch.TensorSpec("fp32", w, static=True),
        dispatch.TensorSpec("fp32", y),
        None,
        (),
        dispatch.ConvParams(**conv),  # type: ignore[arg-type]
    )


def test_depthwise_never_gets_a_packed_type() -> None:
    sme2 = resolve_cpu("sme2").target
    # 7x7 depthwise: no dwconv tile >= 49 taps on ARM64 (25 is the largest): IGEMM, generic F32, never PF32.
    n = _conv_node("depthwise_convolution_2d", (1, 9, 9, 8), (8, 7, 7, 1), (1, 3, 3, 8), kernel=(7, 7), groups=8)
    d = dispatch.decide(n, sme2)
    assert (d.operator_name, d.variant) == ("Convolution (NHWC, F32) IGEMM", None)
    # Depth multiplier 2: two output channels per group, so no dwconv: IGEMM, still generic.
    n = _conv_node("depthwise_convolution_2d", (1, 6, 6, 8), (16, 3, 3, 1), (1, 4, 4, 16), kernel=(3, 3), groups=8)
    d = dispatch.decide(n, sme2)
    assert (d.operator_name, d.variant) == ("Convolution (NHWC, F32) IGEMM", None)
    # The same shape as a grouped convolution node gets PF32 (the packed-LHS pass visits convolutions).
    n = _conv_node("convolution_2d", (1, 6, 6, 8), (16, 3, 3, 1), (1, 4, 4, 16), kernel=(3, 3), groups=8)
    assert dispatch.decide(n, sme2).operator_name == "Convolution (NHWC, PF32) IGEMM"


def test_deconvolution_microkernel_types() -> None:
    sme2 = resolve_cpu("sme2").target
    n = _conv_node("deconvolution_2d", (1, 4, 4, 8), (8, 3, 3, 8), (1, 6, 6, 8), kernel=(3, 3))
    d = dispatch.decide(n, sme2)
    assert d.operator_name == "Deconvolution (NHWC, F32) IGEMM"  # stride 1: no subconv2d
    n = _conv_node("deconvolution_2d", (1, 4, 4, 8), (8, 2, 2, 8), (1, 8, 8, 8), kernel=(2, 2), stride=(2, 2))
    assert dispatch.decide(n, sme2).operator_name == "Deconvolution (NHWC, F32) Subconv2D"


def test_json_schema_and_python_api() -> None:
    r = kleidiref.inspect(FIXTURES / "conv3x3_p1_c16_o24__pt2e_static_pc.pte", cpu=["sme2", "x86-avx2"])
    obj = r.to_json()
    assert set(obj) == {"program", "cpus", "nodes", "non_delegated"}
    gemm = [n for n in obj["nodes"] if n["gemm_like"]]
    (node,) = gemm
    assert node["node_type"] == "XNNConv2d" and isinstance(node["debug_handle"], int)
    assert set(node["decisions"]) == {"sme2", "x86-avx2"}
    d = node["decisions"]["sme2"]
    assert set(d) == {"variant", "config", "kernel", "operator_name", "reasons", "refused"}
    assert (d["variant"], d["operator_name"]) == ("pqs8_qc8w_gemm", "Convolution (NHWC, PQS8, QS8, QC8W) IGEMM")
    assert node["decisions"]["x86-avx2"]["variant"] is None
    assert all("decisions" not in n for n in obj["nodes"] if not n["gemm_like"])
    json.dumps(obj)


def test_cli_json_table_and_etdump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = FIXTURES / "linear_k64_n32__pt2e_dyn_pc8.pte"
    assert main(["inspect", str(prog), "--cpu", "sme2", "--cpu", "neon-dotprod", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    (node,) = [n for n in obj["nodes"] if n["gemm_like"]]
    assert node["decisions"]["sme2"]["variant"] == "qp8_f32_qc8w_gemm"
    assert main(["inspect", str(prog), "--cpu", "sme2", "--no-reasons"]) == 0
    assert "Fully Connected (NC, QP8, F32, QC8W) GEMM" in capsys.readouterr().out
    names = tmp_path / "names.txt"
    names.write_text("Fully Connected (NC, QD8, F32, QC8W) GEMM #1\n")
    assert main(["inspect", str(prog), "--cpu", "sme2", "--etdump", str(names), "--no-reasons"]) == 1
    assert "predicted Fully Connected (NC, QP8, F32, QC8W) GEMM" in capsys.readouterr().err
    assert main(["inspect", str(prog), "--cpu", "sme2", "--etdump", str(prog.with_suffix(".sme2.json"))]) == 0
    assert main(["inspect", str(tmp_path / "missing.pte")]) == 2
    assert main(["inspect", str(prog), "--cpu", "pentium"]) == 2


def test_custom_cpu_json(tmp_path: Path) -> None:
    cpu = tmp_path / "a55.json"
    target = {"arch": "arm64", "kleidiai": True, "sme2": False, "sme": False, "i8mm": False, "dotprod": True}
    cpu.write_text(json.dumps({**target, "fp16_arith": True}))
    r = inspect(FIXTURES / "linear_k64_n32__pt2e_dyn_pc4.pte", str(cpu))
    assert r.cpus == ("a55",)
    assert r.operator_names("a55") == ["Fully Connected (NC, QP8, F32, QC4W) GEMM"]
    cpu.write_text(json.dumps({**target, "arch": "x86_64", "kleidiai": False, "dotprod": False, "fp16_arith": False,
                               "x86_flags": sorted(X86_CPUS["x86-avx512-vnni"])}))  # fmt: skip
    r = inspect(FIXTURES / "linear_k64_n32__pt2e_dyn_pc8.pte", str(cpu))
    assert r.operator_names("a55") == ["Fully Connected (NC, QDU8, F32, QC8W) GEMM"]
    with pytest.raises(ValueError, match="x86_flags"):
        cpu.write_text(json.dumps({**target, "fp16_arith": True, "x86_flags": ["avx9"]}))
        inspect(FIXTURES / "linear_k64_n32__pt2e_dyn_pc8.pte", str(cpu))


def test_qd8_f16_qc8w_convolution_runs_its_igemm_fallback() -> None:
    import numpy as np

    from kleidiref import fallbacks as F
    from kleidiref.conv import conv_geometry, im2col
    from kleidiref.ops import QuantParams
    from kleidiref.quant.qd8_f16 import quantize_qd8_f16

    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 5, 5, 8)).astype(np.float16)
    w = rng.integers(-127, 128, (6, 3, 3, 8)).astype(np.int8)
    ws = rng.uniform(0.001, 0.02, 6).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    kernels: set[str] = set()
    for name in ("sme2", "neon-dotprod", "x86-avx2"):
        t = resolve_cpu(name).target
        r = kleidiref.convolution_2d(
            x, w, bias, padding=(1, 1, 1, 1), filter_quant=QuantParams(ws), dynamic=True, target=t
        )
        assert r.decision.operator_name == "Convolution (NHWC, QD8, F16, QC8W) IGEMM"
        assert r.emulation.startswith("fallback:qd8_f16_qc8w_igemm")
        # The IGEMM equals the GEMM over the im2col rows (padding reads each image's zero point).
        # x86-64 quantizes fp16 in binary32 (quantize_qd8_f16 x86=True; measured on ExecuTorch's x86 output)
        q, a, zp = quantize_qd8_f16(x.reshape(2, -1), fz=t.flush_to_zero, x86=t.arch == "x86_64")
        geo = conv_geometry(5, 5, 3, 3, padding=(1, 1, 1, 1))
        rows = im2col(q.reshape(x.shape), geo, pad_value=zp.astype(np.int8))
        per = rows.shape[0] // 2
        kern: Literal["c", "asm_ld128"] = "asm_ld128" if r.decision.kernel.endswith("_ld128") else "c"
        kernels.add(kern)
        ref = F.qd8_f16_qc8w_gemm(
            rows, np.repeat(a, per), np.repeat(zp, per), w.reshape(6, -1), ws, bias, kernel=kern, fz=t.flush_to_zero
        )
        assert np.array_equal(r.output.reshape(-1, 6).view(np.uint16), ref.view(np.uint16)), name
    assert kernels == {"c", "asm_ld128"}
