"""Small user-facing texts: ``--version``, ``explain --help`` (the CASE.json format), the selfcheck
table's legend, and C function names in error messages (``kai_run_matmul_...``, one prefix)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kleidiref
from kleidiref import cli, golden
from kleidiref.dispatch import parse_case
from kleidiref.kai.interface import MatmulKernel
from kleidiref.kai.registry import UKERNELS


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"kleidiref {kleidiref.__version__}"


def test_explain_help_describes_case_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["explain", "--help"])
    out = capsys.readouterr().out
    for word in ("svl_bits", "flush_to_zero", "fully_connected", "qdint8", "transpose_weights", "convolution"):
        assert word in out


def test_explain_help_example_parses() -> None:
    text = cli.CASE_HELP
    example = text[text.index("{") : text.index("}}") + 2]
    node, target, _ = parse_case(json.loads(example))
    assert node.op == "fully_connected" and target.svl_bits == 512


def test_table_legend_sits_between_table_and_totals() -> None:
    res = golden.check_paths(sorted(golden.bundled_golden_dir().glob("pf32_gemm__m1_n12*svl128.npz")))
    lines = golden.format_table(res).splitlines()
    assert lines[-1] == "1 files: 1 bit-exact, 0 not"  # still the last line
    legend = "\n".join(lines[-1 - len(golden.TABLE_LEGEND) : -1])
    for col in ("files:", "match:", "differ:", "n/a:", "packed bytes:", "values:"):
        assert col in legend


def test_c_function_names_have_one_prefix() -> None:
    name = "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"
    kern = UKERNELS[name](512)
    assert isinstance(kern, MatmulKernel)
    assert kern.c_name("run") == "kai_run_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"
    dst = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"kai_run_matmul_clamp_f32_f32p2vlx1") as e:
        kern.run_matmul(1, 1, 4, np.zeros(1, np.uint8), np.zeros(1, np.uint8), dst, 4, 4, 0.0, 1.0)
    assert "kai_run_kai_" not in str(e.value)
