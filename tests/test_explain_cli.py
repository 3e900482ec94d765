"""The ``kleidiref explain [--json] CASE.json...`` contract (issue 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kleidiref.cli import main

CASES = Path(__file__).parent / "cases"
KEYS = {"variant", "config", "microkernel", "kernel", "reasons", "unsupported"}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_one_line_per_file_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    files = [
        CASES / "fp32_linear_sme2.json",
        CASES / "qb4w_bad_block.json",
        CASES / "fp16_conv1x1_fp32_filter.json",
        CASES / "bmm_fp16.json",
    ]
    rc, out, _ = run(["explain", "--json", *map(str, files)], capsys)
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 4
    objs = [json.loads(line) for line in lines]
    assert set(objs[0]) == KEYS and objs[0]["variant"] == "pf32_gemm" and objs[0]["config"] == "pf32_gemm"
    assert objs[0]["kernel"] == "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"
    assert set(objs[1]) == {"error"} and "block size" in objs[1]["error"]
    assert objs[2]["variant"] is None and objs[2]["config"] == "f16_gemm" and objs[2]["microkernel"] == "gemm"
    assert any("1x1 convolution" in r for r in objs[2]["reasons"])
    assert objs[3]["variant"] == "pf16_gemm" and objs[3]["kernel"].endswith("_1x8vl_sme_mla")
    assert all(isinstance(r, str) for o in objs if "reasons" in o for r in o["reasons"])


def test_readable_output(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["explain", str(CASES / "fp32_linear_sme2.json"), str(CASES / "qb4w_bad_block.json")], capsys)
    assert rc == 0
    assert "variant:     pf32" in out and "why:" in out
    assert "XNNPACK rejects this node" in out


def test_invalid_case_is_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"target": {}, "node": {}}')
    notjson = tmp_path / "x.json"
    notjson.write_text("{")
    rc, out, _ = run(["explain", "--json", str(bad), str(CASES / "fp32_linear_sme2.json"), str(notjson)], capsys)
    assert rc == 2
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 3
    assert "error" in lines[0] and "missing" in lines[0]["error"]
    assert lines[1]["variant"] == "pf32_gemm"
    assert "not JSON" in lines[2]["error"]


def test_subprocess_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kleidiref.cli", "explain", "--json", str(CASES / "fp32_linear_sme2.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["variant"] == "pf32_gemm"


def test_other_subcommands_still_parse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["golden"])
    capsys.readouterr()
