"""The bundled golden vectors (outputs of the real KleidiAI kernels), run on the implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kleidiref.conformance._harness import Impl, golden_problem, run_problem
from kleidiref.conformance.plugin import provided_kernels
from kleidiref.golden import bundled_golden_dir
from kleidiref.kai.registry import UKERNELS

QUICK_FILES = 6  # golden files per kernel by default (spread over the sorted list)


def _variant_of(name: str) -> str:
    return name.split("__")[0].removesuffix("_fz").removesuffix("_neon")


def _svl_of(name: str) -> int | None:
    tail = name.removesuffix(".npz").split("__")[-1]
    return int(tail[3:]) if tail.startswith("svl") else None


def _files(kernel: str, svl: int, full: bool) -> list[Path]:
    cls = UKERNELS[kernel]
    files = sorted(bundled_golden_dir().glob("*.npz"))
    out = [f for f in files if _variant_of(f.name) == cls.variant]
    sme = cls.isa.startswith("sme")
    # The SME2-only qb4w files are for the SME kernels, the *_neon ones for the NEON kernels.
    out = [f for f in out if ("_neon__" in f.name) != sme or cls.variant != "qp8_f32_qb4w_gemm"]
    if not full:
        out = [f for f in out if _svl_of(f.name) in (svl, None)]
        step = max(1, len(out) // QUICK_FILES)
        out = out[::step][:QUICK_FILES]
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "golden" not in metafunc.fixturenames:
        return
    cfg = metafunc.config
    svl, full = int(cfg.getoption("--kleidiref-svl")), bool(cfg.getoption("--kleidiref-full"))
    params = [(k, f) for k in provided_kernels(cfg) for f in _files(k, svl, full)]
    metafunc.parametrize("golden", params, ids=[f"{k}-{f.stem}" for k, f in params])


def test_golden(golden: tuple[str, Path], impl: Impl, svl: int, check: Any) -> None:
    kernel, path = golden
    p = golden_problem(path, kernel, svl)
    if isinstance(p, str):
        pytest.skip(p)
    check(run_problem(impl, p))
