"""``assert_matches`` / ``explain_mismatch`` on a sub-tile (``m_idx``, ``n_idx``, a 2-D view of dst)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kleidiref.kai.registry import UKERNELS
from kleidiref.targets import Target
from kleidiref.testing import VARIANT_NAMES, assert_matches, explain_mismatch, reference

T = Target(svl_bits=512, flush_to_zero=False)


def _problem(variant: str, m: int, n: int, k: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    if variant == "pqs8_qc8w_gemm":
        return {
            "lhs": rng.integers(-128, 128, (m, k)).astype(np.int8),
            "rhs": rng.integers(-128, 128, (n, k)).astype(np.int8),
            "bias": rng.integers(-3000, 3000, n).astype(np.int32),
            "requant_scale": rng.uniform(2e-5, 1e-4, n).astype(np.float32),
            "input_zero_point": 3,
            "output_zero_point": -2,
        }
    dt = np.float16 if variant == "pf16_gemm" else np.float32
    out: dict[str, Any] = {"lhs": rng.standard_normal((m, k)).astype(dt), "bias": rng.standard_normal(n).astype(dt)}
    if variant in ("pf32_gemm", "pf16_gemm"):
        out["rhs"] = rng.standard_normal((n, k)).astype(dt)
    elif variant == "qp8_f32_qc8w_gemm":
        out["rhs"] = rng.integers(-128, 128, (n, k)).astype(np.int8)
        out["scale"] = rng.uniform(0.001, 0.01, n).astype(np.float32)
    else:
        out["rhs"] = rng.integers(-8, 8, (n, k)).astype(np.int8)
        out["scales_bf16"] = (rng.uniform(0.005, 0.05, (n, k // 32)).astype(np.float32).view(np.uint32) >> 16).astype(
            np.uint16
        )
        out["bl"] = 32
    return out


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_subtile_of_the_reference_matches(variant: str) -> None:
    inputs = _problem(variant, 7, 13, 64)
    full = reference(variant=variant, target=T, **inputs)
    assert_matches(full[2:5, 4:11], variant=variant, target=T, m_idx=2, n_idx=4, **inputs)
    assert_matches(full[:, 3:], variant=variant, target=T, n_idx=3, **inputs)
    assert_matches(full[6:], variant=variant, target=T, m_idx=6, **inputs)
    assert_matches(full, variant=variant, target=T, **inputs)  # unchanged without m_idx/n_idx


def test_strided_dst_view() -> None:
    """A tile written into a padded destination (row stride > N) is checked through its 2-D view."""
    inputs = _problem("pf32_gemm", 5, 9, 16, seed=3)
    kern = UKERNELS["kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"]
    full = reference(variant="pf32_gemm", target=T, kernel=kern.name, **inputs)
    dst = np.full((5, 9 + 4), np.nan, np.float32)
    dst[1:4, 2:9] = full[1:4, 2:9]
    assert_matches(dst[1:4, 2:9], variant="pf32_gemm", target=T, kernel=kern.name, m_idx=1, n_idx=2, **inputs)


def test_subtile_mismatch_names_the_tile() -> None:
    inputs = _problem("qp8_f32_qc8w_gemm", 6, 10, 40, seed=1)
    tile = reference(variant="qp8_f32_qc8w_gemm", target=T, **inputs)[2:6, 5:10].copy()
    tile[1, 2] = np.nextafter(tile[1, 2], np.float32(np.inf))
    msg = explain_mismatch(tile, variant="qp8_f32_qc8w_gemm", target=T, m_idx=2, n_idx=5, **inputs)
    assert msg is not None
    assert "sub-tile: rows 2..5, cols 5..9 of the 6 x 10 output" in msg
    assert "(row 1, col 2)" in msg
    with pytest.raises(AssertionError, match="sub-tile"):
        assert_matches(tile, variant="qp8_f32_qc8w_gemm", target=T, m_idx=2, n_idx=5, **inputs)


def test_kernel_is_the_whole_problems() -> None:
    """M = 1 selects the GEMV for the whole problem; a sub-tile of it keeps that kernel."""
    inputs = _problem("pf32_gemm", 1, 40, 8, seed=2)
    full = reference(variant="pf32_gemm", target=T, **inputs)
    assert_matches(full[:, 8:24], variant="pf32_gemm", target=T, n_idx=8, **inputs)
    msg = explain_mismatch(full[:, 8:24] + 1, variant="pf32_gemm", target=T, n_idx=8, **inputs)
    assert msg is not None and "1x16vl" in msg


def test_bad_subtiles_raise() -> None:
    inputs = _problem("pf32_gemm", 4, 6, 8)
    full = reference(variant="pf32_gemm", target=T, **inputs)
    with pytest.raises(ValueError, match="does not fit"):
        assert_matches(full[1:], variant="pf32_gemm", target=T, m_idx=2, **inputs)
    with pytest.raises(ValueError, match="2-D tile"):
        assert_matches(full[0], variant="pf32_gemm", target=T, m_idx=0, **inputs)
    with pytest.raises(TypeError, match="without m_idx/n_idx"):
        assert_matches(full, variant="pf32_gemm", target=T, m_idx=0, lhs_packed=b"", **inputs)
