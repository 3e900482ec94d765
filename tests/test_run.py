"""``kleidiref run`` against reality: the real ExecuTorch runtime's outputs on SME2 (SVL 512), SME off and x86-64.

Every fixture program whose nodes the runner emulates must reproduce the observed outputs bit for bit; the others
are refused for a reason listed in :data:`KNOWN` (the same table as docs/run.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from kleidiref import Runner, cli, run
from kleidiref.quant import quantize_qai8_vcvt
from kleidiref.runner import RefusedByXnnpack, cpu_target, max_ulp_distance

FIXTURES = Path(__file__).parent / "fixtures" / "pte"
PROGRAMS = sorted(p.stem for p in FIXTURES.glob("*.pte"))
#: CPU name -> the file holding that CPU's observed outputs.
REFERENCES = {"sme2": "sme2.npz", "neon-i8mm": "nosme.npz", "x86-avx2": "io.npz"}

#: Programs the runner refuses, with the exception and a word of its message (docs/run.md says why).
KNOWN: dict[tuple[str, str], tuple[type[Exception], str]] = {
    ("linear_k64_n32__fp16_ao_8da4w_g32", "sme2"): (RefusedByXnnpack, "xnn_status_unsupported_hardware"),
}
#: Known residual differences (max ULP distance, measured; docs/run.md says why): none today.
DIFFERENCES: dict[tuple[str, str], int] = {}


def _inputs(name: str) -> list[NDArray[Any]]:
    with np.load(FIXTURES / f"{name}.io.npz") as z:
        return [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]


def _expected(name: str, cpu: str) -> list[NDArray[Any]] | None:
    path = FIXTURES / f"{name}.{REFERENCES[cpu]}"
    if not path.exists():
        return None
    with np.load(path) as z:
        n = sum(k.startswith("output_") for k in z.files)
        return [z[f"output_{i}"] for i in range(n)] or None


#: (program, CPU) pairs with an observation (or a known refusal): 41 x86, 41 sme2, 14 SME-off.
OBSERVED = [
    (name, cpu)
    for name in PROGRAMS
    for cpu in REFERENCES
    if (name, cpu) in KNOWN or (FIXTURES / f"{name}.{REFERENCES[cpu]}").exists()
]


def test_observations() -> None:
    count = {cpu: sum(1 for _, c in OBSERVED if c == cpu) for cpu in REFERENCES}
    assert count == {"sme2": 41, "neon-i8mm": 14, "x86-avx2": 41}


@pytest.mark.parametrize(("name", "cpu"), OBSERVED)
def test_matches_observed_outputs(name: str, cpu: str) -> None:
    if (name, cpu) in KNOWN:
        exc, word = KNOWN[name, cpu]
        with pytest.raises(exc, match=word):
            run(FIXTURES / f"{name}.pte", _inputs(name), cpu=cpu, svl=512)
        return
    expected = _expected(name, cpu)
    assert expected is not None
    got = run(FIXTURES / f"{name}.pte", _inputs(name), cpu=cpu, svl=512)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert max_ulp_distance(g, e) == DIFFERENCES.get((name, cpu), 0)


@pytest.mark.parametrize("cpu", ["sme", "neon-i8mm", "neon-dotprod", "x86-avx512-vnni", "x86-avx512-fp16"])
@pytest.mark.parametrize("name", PROGRAMS)
def test_every_program_runs_on_every_cpu(name: str, cpu: str) -> None:
    """Where nothing was observed, the program still runs end to end, in the observed dtypes and shapes
    (the SME-only refusal of the fp16 8da4w program is XNNPACK's, on SME as on SME2)."""
    if (name, "sme2") in KNOWN and cpu == "sme":
        with pytest.raises(KNOWN[name, "sme2"][0]):
            run(FIXTURES / f"{name}.pte", _inputs(name), cpu=cpu, svl=512)
        return
    expected = _expected(name, "x86-avx2")
    assert expected is not None
    got = run(FIXTURES / f"{name}.pte", _inputs(name), cpu=cpu, svl=256)
    assert [(g.dtype, g.shape) for g in got] == [(e.dtype, e.shape) for e in expected]


@pytest.mark.parametrize("cpu", ["neon-i8mm", "sme"])
@pytest.mark.parametrize("name", [p for p in PROGRAMS if p.startswith("convT_")])
def test_deconvolution_runs_without_observation(name: str, cpu: str) -> None:
    """No observed outputs on these CPUs: the programs run, in the observed dtype and shape, through the
    path the dispatcher names (pqs8 on SME: the KleidiAI imatmul over all taps; else per subkernel)."""
    expected = _expected(name, "sme2")
    assert expected is not None
    r = Runner(FIXTURES / f"{name}.pte", cpu, 512).run(_inputs(name))
    assert [(o.dtype, o.shape) for o in r.outputs] == [(e.dtype, e.shape) for e in expected]
    how = next(t.emulation for t in r.trace if t.node_type == "XNNConvTranspose2d")
    kai = cpu == "sme" and "static" in name
    assert ("variant:igemm(pqs8_qc8w_gemm)" in how) == kai
    assert ("xnn_indirection_init_deconv2d" if kai else "xnn_compute_subconv2d") in how


def test_unsupported_hardware_is_sme_only() -> None:
    """XNNPACK's qd8_f16_qb4w config is never valid; only SME keeps the fp16 node, so only SME refuses it."""
    name = "linear_k64_n32__fp16_ao_8da4w_g32"
    with pytest.raises(RefusedByXnnpack, match="init_qd8_f16_qb4w_gemm_config"):
        run(FIXTURES / f"{name}.pte", _inputs(name), cpu="sme", svl=512)
    assert run(FIXTURES / f"{name}.pte", _inputs(name), cpu="neon-dotprod")[0].dtype == np.float16


def test_runner_is_reusable_and_traces() -> None:
    name = "conv3x3_p1_c16_o24__pt2e_static_pt"
    r = Runner(FIXTURES / f"{name}.pte", "sme2", 512)
    first = r.run(_inputs(name))
    assert np.array_equal(r(_inputs(name))[0], first.outputs[0])
    assert [t.node_type for t in first.trace] == [
        "XNNConvert",
        "XNNStaticTranspose",
        "XNNConv2d",
        "XNNStaticTranspose",
        "XNNConvert",
    ]
    assert first.trace[0].emulation == "xnn_f32_qs8_vcvt"
    assert "pqs8_qc8w" in first.trace[2].emulation
    assert first.trace[2].shape == (1, 8, 8, 24)


def test_dynamic_convert_defers_to_the_consumer() -> None:
    name = "linear_k64_n32__pt2e_dyn_pc8"
    sme = Runner(FIXTURES / f"{name}.pte", "sme2").run(_inputs(name)).trace
    x86 = Runner(FIXTURES / f"{name}.pte", "x86-avx2").run(_inputs(name)).trace
    assert "qp8_f32_qc8w" in sme[1].emulation
    assert "qd8_f32_qc8w" in x86[1].emulation


def test_quantize_vcvt_qs8() -> None:
    x = np.array([0.5, 1.5, -0.5, 2.5, 1e30, -1e30, np.inf, -np.inf, np.nan], np.float32)
    arm = quantize_qai8_vcvt(x, 1.0, 3, x86=False)
    assert arm.tolist() == [3, 5, 3, 5, 127, -128, 127, -128, 3]  # ties to even, saturation, NaN -> zp
    assert quantize_qai8_vcvt(x, 1.0, 3, x86=True)[-1] == -128
    # the reciprocal is rounded first: x * RN32(1/s), not x / s
    s = np.float32(0.1)
    v = np.arange(-12.8, 12.7, 0.0013, dtype=np.float32)
    ref = np.clip(np.rint((v * (np.float32(1) / s)).astype(np.float32)) + 0, -128, 127)
    assert np.array_equal(quantize_qai8_vcvt(v, float(s), 0, x86=False), ref.astype(np.int8))


def test_cpu_names() -> None:
    assert cpu_target("x86-avx512-vnni").arch == "x86_64"
    assert cpu_target("sme2", 256).svl_bits == 256
    assert cpu_target("neon-i8mm").svl_bits is None
    assert cpu_target("x86-avx2").arch == "x86_64"
    with pytest.raises(ValueError, match="unknown CPU"):
        cpu_target("pentium")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "bmm_b2_m4_k64_n8__fp32"
    pte = FIXTURES / f"{name}.pte"
    out = tmp_path / "out.npz"
    ref = FIXTURES / f"{name}.sme2.npz"
    assert (
        cli.main(
            ["run", str(pte), "--cpu", "sme2", "--svl", "512", "--out", str(out), "--trace", "--compare", str(ref)]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "XNNBatchMatrixMultiply" in text and '"max_ulp": [0]' in text
    with np.load(out) as z, np.load(ref) as e:
        assert np.array_equal(z["output_0"], e["output_0"])
    assert cli.main(["run", str(FIXTURES / "linear_k64_n32__fp16_ao_8da4w_g32.pte"), "--cpu", "sme2"]) == 2
    assert "xnn_status_unsupported_hardware" in capsys.readouterr().out


def test_keep_node_outputs_gives_each_node_its_value() -> None:
    """The last node's kept output is the program's output; by default nothing is kept."""
    path = FIXTURES / "linear_k64_n32__fp32.pte"
    with np.load(path.with_suffix(".io.npz")) as z:
        x = z["input_0"]
    r = Runner(path, "sme2")
    kept = r.run([x], keep_node_outputs=True)
    assert all(t.output is not None and t.output.shape == t.shape for t in kept.trace)
    last = kept.trace[-1].output
    assert last is not None and np.array_equal(last, kept.outputs[0])
    assert all(t.output is None and t.seconds > 0 for t in r.run([x]).trace)
