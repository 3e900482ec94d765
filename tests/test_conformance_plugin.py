"""The conformance suite (``pytest --pyargs kleidiref.conformance``) run in a subprocess.

(a) on kleidiref's own kernels every test passes; (b) on an implementation with a planted bug
(tests/_conformance_impls.py) tests fail and each failure writes a repro bundle that loads and
replays; skip/xfail files and the gemm-level convention work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kleidiref.conformance import load_impl, replay_bundle

ROOT = Path(__file__).resolve().parents[1]
MOPA = "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"
SMALL = f"{MOPA},*qsi8cxp2vlx4sb_1x16vl_sme2_dot,*qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    env.pop("KLEIDIREF_IMPL", None)
    return env


def _suite(tmp: Path, *args: str, examples: int = 3) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "kleidiref.conformance.plugin"]
    cmd += ["--pyargs", "kleidiref.conformance", "--kleidiref-max-examples", str(examples), *args]
    return subprocess.run(cmd, cwd=tmp, env=_env(), capture_output=True, text=True, timeout=600, check=False)


def _passed(out: str) -> int:
    return int(out.strip().splitlines()[-1].split(" passed")[0].split()[-1])


@pytest.mark.slow
def test_kleidiref_passes_every_kernel_of_its_own_suite(tmp_path: Path) -> None:
    r = _suite(tmp_path, "--kleidiref-impl", "kleidiref.conformance:reference_impl")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "failed" not in r.stdout and _passed(r.stdout) > 400


def _check_bundles(repro: Path) -> None:
    bundles = sorted(p for p in repro.iterdir() if p.is_dir())
    b = next(p for p in bundles if p.name.endswith("qmax]") or p.name.endswith("qmax"))
    case = json.loads((b / "case.json").read_text())
    assert case["kernel"] == MOPA and case["impl"] == "_conformance_impls:broken"
    got, want = np.load(b / "got.npy"), np.load(b / "expected.npy")
    assert got.shape == want.shape and not np.array_equal(got, want)
    with np.load(b / "inputs.npz") as z:
        assert {"lhs", "rhs", "clamp_max"} <= set(z.files)
    assert "clamp" in (b / "diagnosis.txt").read_text().lower()
    cmd = (b / "reproduce.txt").read_text().split()
    assert cmd[:3] == ["python", "-m", "kleidiref.conformance"]
    rr = subprocess.run([sys.executable, *cmd[1:]], env=_env(), capture_output=True, text=True, check=False)
    assert rr.returncode == 1 and "clamp" in rr.stdout.lower(), rr.stdout + rr.stderr


def test_broken_implementation_fails_writes_bundles_and_honours_skip_files(tmp_path: Path) -> None:
    """One run: failures with bundles (qmax, a clamped golden file), an xfail and a skip rule."""
    repro = tmp_path / "repro"
    text = tmp_path / "skips.txt"
    text.write_text("# known failures\nxfail test_golden[*tight*]   # clamped golden file\n\nskip *m_eq_1*\n")
    js = tmp_path / "skips.json"
    js.write_text(json.dumps({"xfail": {"test_edge[*-qmin]": "passes: an xpass"}}))
    r = _suite(
        tmp_path,
        "--kleidiref-impl",
        "_conformance_impls:broken",
        "--kleidiref-repro-dir",
        str(repro),
        "--kleidiref-skips",
        str(text),
        "--kleidiref-skips",
        str(js),
        "-k",
        "qmax or tight or qmin or m_eq_1 or k_eq",
    )
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert all(f"1 {w}" in last for w in ("failed", "passed", "skipped", "xpassed", "xfailed")), last
    assert "test_edge[" in r.stdout and "-qmax]" in r.stdout  # the qmax family catches a dropped clamp_max
    _check_bundles(repro)


@pytest.mark.slow
def test_broken_implementation_fails_its_property_test(tmp_path: Path) -> None:
    repro = tmp_path / "repro"
    r = _suite(
        tmp_path, "--kleidiref-impl", "_conformance_impls:broken", "--kleidiref-repro-dir", str(repro), examples=100
    )
    assert r.returncode == 1 and "test_property[" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    assert any("test_property" in p.name for p in repro.iterdir())
    _check_bundles(repro)


def test_skip_file_syntax_errors(tmp_path: Path) -> None:
    from kleidiref.conformance.plugin import _glob, _rules

    bad = tmp_path / "bad.txt"
    bad.write_text("ignore test_edge\n")
    with pytest.raises(pytest.UsageError, match="skip\\|xfail"):
        _rules(bad)
    assert _glob("test_golden[*]").fullmatch("test_golden[a-b]") and not _glob("t[ab]").fullmatch("ta")


@pytest.mark.slow
def test_gemm_level_and_environment_variable(tmp_path: Path) -> None:
    env_impl = "_conformance_impls:gemm_level"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "kleidiref.conformance.plugin",
            "--pyargs",
            "kleidiref.conformance",
            "--kleidiref-max-examples",
            "3",
            "-rs",
        ],
        cwd=tmp_path,
        env={**_env(), "KLEIDIREF_IMPL": env_impl},
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "needs the kernel-level calling convention" in r.stdout


def test_missing_implementation_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLEIDIREF_IMPL", raising=False)
    with pytest.raises(ValueError, match="--kleidiref-impl"):
        load_impl(None)
    with pytest.raises(ValueError, match="module:callable"):
        load_impl("nocolon")


def test_replay_bundle_of_a_passing_case_matches(tmp_path: Path) -> None:
    from kleidiref.conformance import write_bundle
    from kleidiref.conformance._edges import edge_case
    from kleidiref.conformance._harness import run_problem

    impl = load_impl("kleidiref.conformance:reference_impl")
    case = edge_case(MOPA, "strided_c", 512)
    assert not isinstance(case, str)
    o = run_problem(impl, case.problem, pad=case.pad)
    assert o is not None and o.ok
    d = write_bundle(tmp_path, "t", impl, o)
    again = replay_bundle(d)
    assert again is not None and again.ok and again.stride == o.stride
