"""The golden harness: inputs-only reproduction, strict comparison, CLI contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kleidiref import cli, golden

GOLDEN = golden.bundled_golden_dir()
SAMPLE = GOLDEN / "pf32_gemm__m6_n9_k7_infnan__svl256.npz"


def test_every_bundled_family_has_a_reproducer() -> None:
    ids = {str(np.load(p)["meta_variant"]) for p in GOLDEN.glob("*.npz")}
    assert ids <= set(golden.reproducers()), ids - set(golden.reproducers())


def test_inputs_hide_results() -> None:
    data = dict(np.load(SAMPLE))
    inp = golden.GoldenInputs(data)
    assert "lhs" in inp and "meta_svl_bits" in inp
    for hidden in ("out", "out_sme1", "lhs_packed", "rhs_packed_written", "meta_mr"):
        with pytest.raises(KeyError, match="recomputed"):
            inp[hidden]
    assert golden.is_result_field("meta_nr") and not golden.is_result_field("meta_svl_bits")
    # The pqs8 output quantization parameters are inputs despite their "out" prefix.
    for name in ("out_min", "out_max", "out_zero_point"):
        assert not golden.is_result_field(name)
    assert golden.is_result_field("out_gemv") and golden.is_result_field("out")


def _tampered(tmp_path: Path, field: str, flat_index: int) -> Path:
    data = dict(np.load(SAMPLE))
    arr = data[field].copy()
    arr.reshape(-1).view(np.uint8)[flat_index] ^= 0x01
    data[field] = arr
    path = tmp_path / SAMPLE.name
    np.savez(path, **data)
    return path


def test_detects_output_and_packed_mismatch(tmp_path: Path) -> None:
    assert golden.check_file(SAMPLE).ok
    r = golden.check_file(_tampered(tmp_path, "out", 5))
    assert r.status == "mismatch"
    assert [f.name for f in r.fields if not f.ok] == ["out"]
    r = golden.check_file(_tampered(tmp_path, "rhs_packed", 100))
    assert [f.name for f in r.fields if not f.ok] == ["rhs_packed"]


def test_unwritten_bytes_are_not_compared(tmp_path: Path) -> None:
    data = dict(np.load(GOLDEN / "qp8_f32_qc8w_gemm__m5_n7_k9_tiny__svl1024.npz"))
    unwritten = np.flatnonzero(data["lhs_packed_written"] == 0)
    assert unwritten.size
    data["lhs_packed"] = data["lhs_packed"].copy()
    data["lhs_packed"][unwritten] ^= 0xFF
    path = tmp_path / "qp8_f32_qc8w_gemm__m5_n7_k9_tiny__svl1024.npz"
    np.savez(path, **data)
    assert golden.check_file(path).ok


def test_missing_result_field_fails(tmp_path: Path) -> None:
    data = dict(np.load(SAMPLE))
    data["out_extra"] = data["out"]
    path = tmp_path / SAMPLE.name
    np.savez(path, **data)
    r = golden.check_file(path)
    assert not r.ok and any(f.detail == "not reproduced" for f in r.fields)


def test_unknown_variant_is_unsupported(tmp_path: Path) -> None:
    data = dict(np.load(SAMPLE))
    data["meta_variant"] = np.array("bf16_gemm")
    path = tmp_path / "bf16_gemm__x.npz"
    np.savez(path, **data)
    assert golden.check_file(path).status == "unsupported"


def test_cli_check_and_reproduce(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["golden", "check", str(SAMPLE)]) == 0
    assert "1 files: 1 bit-exact" in capsys.readouterr().out
    assert cli.main(["golden", "check", str(_tampered(tmp_path, "out_sme1", 3))]) == 1
    out_dir = tmp_path / "repro"
    assert cli.main(["golden", "reproduce", "--out-dir", str(out_dir), str(SAMPLE)]) == 0
    got = np.load(out_dir / SAMPLE.name)
    want = np.load(SAMPLE)
    assert np.array_equal(got["out"].view(np.uint32), want["out"].view(np.uint32))
    # a whole golden file: the inputs kept, every result recomputed, so golden check reads it too
    assert set(got.files) == set(want.files)
    assert got["lhs"].tobytes() == want["lhs"].tobytes()


def test_selfcheck_console_script() -> None:
    """`kleidiref selfcheck` via the module entry point (the installed script calls the same main)."""
    proc = subprocess.run(
        [sys.executable, "-m", "kleidiref.cli", "golden", "check", str(SAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact" in proc.stdout
