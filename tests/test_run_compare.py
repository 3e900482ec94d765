"""The first diverging node: two runs compared node by node (two CPUs, or a run and per-node reference values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from kleidiref import cli
from kleidiref.runner import NodeDiff, Runner, compare_runs, compare_to_reference, first_divergence, node_outputs
from kleidiref.runner.compare import diff_arrays, max_ulp_distance

FIXTURES = Path(__file__).parent / "fixtures" / "pte"


def _inputs(name: str) -> list[NDArray[Any]]:
    with np.load(FIXTURES / f"{name}.io.npz") as z:
        return [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]


def _run(name: str, cpu: str) -> Any:
    return Runner(FIXTURES / f"{name}.pte", cpu, 512 if cpu.startswith("sme") else None).run(
        _inputs(name), keep_node_outputs=True
    )


def test_fp16_linear_sme2_vs_neon_diverges_at_the_gemm() -> None:
    """pf16 (SME2) and the NEON f16 GEMM round differently: docs/run.md's 214 ULP, found at the FC node."""
    name = "linear_k64_n32__fp16"
    a, b = _run(name, "sme2"), _run(name, "neon-i8mm")
    diffs = compare_runs(a, b)
    first = first_divergence(diffs)
    assert first is not None
    assert (first.delegate, first.index, first.node_type) == (0, 0, "XNNFullyConnected")
    assert first.emulation_a == "variant:pf16_gemm" and first.emulation_b.startswith("fallback:f16_gemm")
    out_a, out_b = a.outputs[0], b.outputs[0]
    assert first.max_ulp == max_ulp_distance(out_a, out_b) == 214
    exact = int(np.count_nonzero(out_a.view(np.uint16) != out_b.view(np.uint16)))
    assert first.differing == exact and 0 < exact <= first.size == out_a.size


def test_divergence_propagates_through_later_nodes() -> None:
    """conv fp16: the transpose in front agrees, the convolution diverges, the transpose after it still differs."""
    name = "conv3x3_p1_c16_o24__fp16"
    diffs = compare_runs(_run(name, "sme2"), _run(name, "neon-i8mm"))
    assert [d.node_type for d in diffs] == ["XNNStaticTranspose", "XNNConv2d", "XNNStaticTranspose"]
    assert [d.differs for d in diffs] == [False, True, True]
    first = first_divergence(diffs)
    assert first is diffs[1]
    assert diffs[2].max_ulp == diffs[1].max_ulp > 0 and diffs[2].differing == diffs[1].differing


def test_identical_runs_have_no_divergence() -> None:
    name = "linear_k64_n32__fp32"
    diffs = compare_runs(_run(name, "sme2"), _run(name, "x86-avx2"))
    assert diffs and first_divergence(diffs) is None and all(d.max_ulp == 0 for d in diffs)


def test_reference_file_of_node_outputs() -> None:
    """--dump-nodes' keys round-trip: the other CPU's node outputs as a reference give compare_runs' answer."""
    name = "conv3x3_p1_c16_o24__fp16"
    a, b = _run(name, "sme2"), _run(name, "neon-i8mm")
    ref = node_outputs(b)
    assert sorted(ref) == ["d0_n0", "d0_n1", "d0_n2"]
    got = compare_to_reference(a, ref)
    want = compare_runs(a, b)
    assert [(d.index, d.max_ulp, d.differing) for d in got] == [(d.index, d.max_ulp, d.differing) for d in want]
    # A partial reference compares what it has; a key for a node the run lacks is an error.
    assert [d.index for d in compare_to_reference(a, {"d0_n1": ref["d0_n1"]})] == [1]
    with pytest.raises(ValueError, match="d0_n9"):
        compare_to_reference(a, {"d0_n9": ref["d0_n1"]})


def test_runs_without_node_outputs_are_refused() -> None:
    name = "linear_k64_n32__fp32"
    r = Runner(FIXTURES / f"{name}.pte", "sme2", 512)
    plain = r.run(_inputs(name))
    with pytest.raises(ValueError, match="keep_node_outputs"):
        compare_runs(plain, plain)
    with pytest.raises(ValueError, match="keep_node_outputs"):
        node_outputs(plain)


def test_diff_arrays() -> None:
    a = np.array([1.0, -0.0, np.nan, 2.0], np.float32)
    b = np.array([1.0, 0.0, np.nan, np.nextafter(np.float32(2.0), np.float32(3.0))], np.float32)
    assert diff_arrays(a, b) == (1, 1)
    assert diff_arrays(a, np.array([1.0, 0.0, 3.0, 2.0], np.float32)) == (-1, 1)
    assert diff_arrays(np.array([3, -4], np.int8), np.array([3, 4], np.int8)) == (8, 1)
    d = NodeDiff(0, 2, "XNNConvert", "k", "", (4,), "float32", 0, 0, 4)
    assert not d.differs and d.describe().endswith(": same")


def test_cli_compare_cpu_eager_and_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "conv3x3_p1_c16_o24__fp16"
    model = str(FIXTURES / f"{name}.pte")
    assert cli.main(["run", model, "--cpu", "sme2", "--compare-cpu", "neon-i8mm"]) == 0
    out = capsys.readouterr().out
    assert "first diverging node from --cpu neon-i8mm: [0:1] XNNConv2d" in out
    assert "1 of 1 later nodes still differ" in out
    dump = tmp_path / "nodes.npz"
    assert cli.main(["run", model, "--cpu", "neon-i8mm", "--dump-nodes", str(dump)]) == 0
    with np.load(dump) as z:
        assert sorted(z.files) == ["d0_n0", "d0_n1", "d0_n2"]
    capsys.readouterr()
    assert cli.main(["run", model, "--cpu", "sme2", "--compare", str(dump)]) == 0
    assert f"first diverging node from {dump}: [0:1] XNNConv2d" in capsys.readouterr().out
    assert cli.main(["run", model, "--cpu", "sme2", "--compare-svl", "128"]) == 0
    assert "no node differs from --cpu sme2 --svl 128" in capsys.readouterr().out
    assert cli.main(["run", model, "--cpu", "sme2", "--compare", "eager"]) == 0
    eager = capsys.readouterr().out.strip()
    assert eager == '{"max_ulp": [36]}'  # docs/run.md: sme2 vs eager
