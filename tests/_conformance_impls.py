"""Implementations for tests/test_conformance_plugin.py: kleidiref's kernels, one with a planted bug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kleidiref.conformance import reference_impl

MOPA = "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"


def broken(kernel: str, svl: int, fz: bool) -> Callable[..., Any] | None:
    """pf32 SME2 MOPA that ignores clamp_max (a realistic epilogue bug); nothing else provided."""
    if kernel != MOPA:
        return None
    run = reference_impl(kernel, svl, fz)
    assert run is not None

    def bad(m: int, n: int, k: int, lhs: Any, rhs: Any, dst: Any, row: int, col: int, lo: float, hi: float) -> None:
        del hi
        run(m, n, k, lhs, rhs, dst, row, col, lo, np.inf)

    return bad


def gemm_level(kernel: str, svl: int, fz: bool) -> Callable[..., Any] | None:
    """The same kernel at the gemm level (kleidiref.testing.reference)."""
    if kernel != MOPA:
        return None
    from kleidiref.targets import Target
    from kleidiref.testing import reference

    def run(**inputs: Any) -> Any:
        return reference(variant="pf32_gemm", target=Target(svl_bits=svl, flush_to_zero=fz), kernel=kernel, **inputs)

    return run


gemm_level.kleidiref_level = "gemm"  # type: ignore[attr-defined]
