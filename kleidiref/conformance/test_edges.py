"""XNNPACK's named edge families (k around the k block, n around nr, strided c, sub-tiles, qmin/qmax)."""

from __future__ import annotations

from typing import Any

import pytest

from kleidiref.conformance._edges import EDGE_FAMILIES, edge_case
from kleidiref.conformance._harness import Impl, run_problem
from kleidiref.conformance.plugin import provided_kernels

KERNEL_ONLY = ("strided_c", "subtile")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "edge" not in metafunc.fixturenames:
        return
    params = [(k, f) for k in provided_kernels(metafunc.config) for f in EDGE_FAMILIES]
    metafunc.parametrize("edge", params, ids=[f"{k}-{f}" for k, f in params])


def test_edge(edge: tuple[str, str], impl: Impl, svl: int, check: Any) -> None:
    kernel, family = edge
    if impl.level == "gemm" and family in KERNEL_ONLY:
        pytest.skip(f"{family} needs the kernel-level calling convention")
    case = edge_case(kernel, family, svl)
    if isinstance(case, str):
        pytest.skip(case)
    check(run_problem(impl, case.problem, pad=case.pad, tiles=case.tiles))
