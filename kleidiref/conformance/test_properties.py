"""Property tests: ``kleidiref.testing.strategies.gemm_problems`` drawn problems, run on the implementation."""

from __future__ import annotations

from typing import Any

import pytest

from kleidiref.conformance._harness import Impl, run_problem
from kleidiref.conformance.plugin import provided_kernels
from kleidiref.kai.registry import UKERNELS
from kleidiref.targets import Target
from kleidiref.testing import Problem

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kleidiref.testing.strategies import GemmProblem, gemm_problems


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kernel" in metafunc.fixturenames:
        metafunc.parametrize("kernel", provided_kernels(metafunc.config))


def test_property(kernel: str, impl: Impl, svl: int, full: bool, check: Any, request: pytest.FixtureRequest) -> None:
    variant = UKERNELS[kernel].variant
    fzs = [fz for fz in (False, True) if impl.get(kernel, svl, fz) is not None]
    if not fzs:
        pytest.skip("the implementation does not provide this kernel at this SVL")
    n = request.config.getoption("--kleidiref-max-examples") or (200 if full else 25)
    targets = st.sampled_from([Target(svl_bits=svl, flush_to_zero=fz) for fz in fzs])
    mm, mn, mk = (24, 48, 96) if full else (12, 40, 96)

    # No explain phase: the diagnosis already names the cause, and explaining takes minutes.
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
    hc = list(HealthCheck)

    @settings(max_examples=n, deadline=None, derandomize=not full, suppress_health_check=hc, phases=phases)
    @given(gemm_problems(variant, target=targets, max_m=mm, max_n=mn, max_k=mk))
    def prop(g: GemmProblem) -> None:
        p = Problem.build(variant=variant, target=g.target, kernel=kernel, **g.inputs)
        check(run_problem(impl, p))

    prop()
