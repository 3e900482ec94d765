"""kleidiref.testing: each diagnosis fires on a deliberately broken kernel, and the error model holds."""

from __future__ import annotations

import doctest
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import kleidiref as kr
import kleidiref.testing as kt
from kleidiref.kai.pack import kai_lhs_quant_pack_qai8dxp_f32
from kleidiref.numerics import fma32, fmin_fmax
from kleidiref.quant.qai8dx import qai8dx_params, quantize_qai8dx
from kleidiref.quant.qd8 import quantize_qd8
from kleidiref.testing import assert_matches, assert_packed_matches, error_bound, exact_result, explain_mismatch
from kleidiref.testing.strategies import GemmProblem, gemm_problems
from kleidiref.variants import pf32_gemm, pqs8_qc8w_gemm, qp8_f32_qc8w_gemm

F32 = np.float32
T128 = kr.Target(svl_bits=128, flush_to_zero=False)
SME1 = kr.Target(svl_bits=128, sme2=False, flush_to_zero=False)


def _fail(actual: Any, **kw: Any) -> str:
    with pytest.raises(AssertionError) as info:
        assert_matches(actual, **kw)
    return str(info.value)


def _pf32(m: int = 9, n: int = 13, k: int = 21, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "variant": "pf32_gemm",
        "target": T128,
        "lhs": rng.standard_normal((m, k)).astype(F32),
        "rhs": rng.standard_normal((n, k)).astype(F32),
        "bias": rng.standard_normal(n).astype(F32),
    }


def _qp8(m: int = 6, n: int = 11, k: int = 40, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "variant": "qp8_f32_qc8w_gemm",
        "target": T128,
        "lhs": rng.standard_normal((m, k)).astype(F32),
        "rhs": rng.integers(-127, 128, (n, k)).astype(np.int8),
        "scale": rng.uniform(0.01, 0.1, n).astype(F32),
        "bias": rng.standard_normal(n).astype(F32),
    }


# ------------------------------------------------------------------------------------------------
# Matching outputs pass; the reference is what the variants compute
# ------------------------------------------------------------------------------------------------


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gemm_problems("pf32_gemm", max_k=40))
def test_reference_passes_pf32(p: GemmProblem) -> None:
    assert_matches(p.reference(), **p.kwargs())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gemm_problems("qp8_f32_qb4w_gemm", max_k=128))
def test_reference_passes_qb4w(p: GemmProblem) -> None:
    assert_matches(p.reference(), **p.kwargs())


def test_reference_is_the_variant_gemm() -> None:
    kw = _qp8()
    want = qp8_f32_qc8w_gemm.gemm(kw["lhs"], kw["rhs"], kw["scale"], bias=kw["bias"], target=T128)
    assert np.array_equal(kt.reference(**kw), want)


# ------------------------------------------------------------------------------------------------
# Packing stage
# ------------------------------------------------------------------------------------------------


def test_mutated_rhs_bias_byte_is_decoded() -> None:
    kw = _pf32()
    rhs = pf32_gemm.kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(128).pack(kw["rhs"], kw["bias"])
    rhs[4 * 3 + 1] ^= 0x10  # bias of column 3 in block 0
    msg = _fail(kt.reference(**kw), rhs_packed=rhs, **kw)
    assert "stage: packing" in msg and "bias (n 3)" in msg


def test_mutated_lhs_data_byte_is_decoded() -> None:
    kw = _pf32(m=3, k=5)
    lhs = pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme(128).pack(kw["lhs"])
    mr = 8
    lhs[4 * (2 * mr + 1)] ^= 1  # (row 1, k 2)
    msg = _fail(kt.reference(**kw), lhs_packed=lhs, **kw)
    assert "data (row 1, k 2)" in msg


def test_qai8dxp_fields_are_named() -> None:
    kw = _qp8(m=3, k=40)
    q = kai_lhs_quant_pack_qai8dxp_f32(128)
    mr = 4  # VLs at SVL 128
    good = q.pack(kw["lhs"], mr=mr, kr=4, sr=1)
    k32 = 64
    for off, field in (
        (mr * k32 + 4 * 1, "zero point: int32 -zp of row 1"),
        (mr * k32 + 4 * mr + 4 * 2, "scale: f32 dequantization scale dq of row 2"),
        (1 * 4 + 2, "data: int8 code (row 1, k 2)"),
    ):
        bad = good.copy()
        bad[off] ^= 0x01
        with pytest.raises(AssertionError, match="differ") as info:
            assert_packed_matches(
                bad, packer="kai_lhs_quant_pack_qai8dxp_f32", svl=128, lhs=kw["lhs"], mr=mr, kr=4, sr=1
            )
        assert field in str(info.value)


def test_qsi8cxp_row_sum_is_named() -> None:
    kw = _qp8(n=5, k=8)
    nr = 16
    p = qp8_f32_qc8w_gemm.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(128)
    bad = p.pack(kw["rhs"], kw["scale"], kw["bias"], nr=nr)
    bad[nr * 32 + 4 * 2] ^= 1
    msg = _fail(kt.reference(**kw), rhs_packed=bad, **kw)
    assert "row sum: int32 rsum of n 2" in msg


def test_packed_match_passes() -> None:
    kw = _pf32()
    buf = pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme(512).pack(kw["lhs"])
    assert_packed_matches(buf, packer="kai_lhs_pack_f32p2vlx1_f32_sme", svl=512, lhs=kw["lhs"])
    assert_packed_matches(bytes(buf), packer="kai_lhs_pack_f32p2vlx1_f32_sme", svl=512, lhs=kw["lhs"])
    with pytest.raises(ValueError, match="not an emulated packer"):
        assert_packed_matches(buf, packer="kai_nope", lhs=kw["lhs"])


# ------------------------------------------------------------------------------------------------
# Rounding: ties, qd8, fused epilogue, float references
# ------------------------------------------------------------------------------------------------


def _tie_rows(m: int, k: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Rows [0, 255, then n + 0.5 values]: scale0 = 1, so x * scale0 is an exact tie."""
    rng = np.random.default_rng(3)
    x = (rng.integers(0, 250, (m, k)) + 0.5).astype(F32)
    x[:, 0], x[:, 1] = 0, 255
    return x


def test_ties_even_quantizer_is_named() -> None:
    kw = _qp8(m=3, k=40)
    kw["lhs"] = _tie_rows(3, 40)
    # A broken quantizer: RNE instead of ties-away, codes patched into the kernel's packed LHS.
    scale0, _, zp = qai8dx_params(kw["lhs"])
    q_rne = np.clip(np.rint(kw["lhs"] * scale0[:, None]) + zp[:, None], -128, 127).astype(np.int8)
    assert not np.array_equal(q_rne, quantize_qai8dx(kw["lhs"])[0])
    kern = qp8_f32_qc8w_gemm.SME2_MOPA(128)
    lhs_p = kai_lhs_quant_pack_qai8dxp_f32(128).pack(kw["lhs"], mr=4, kr=4, sr=1)
    for r in range(3):
        for c in range(40):
            lhs_p[(r // 4) * 4 * 72 + (c // 4) * 16 + (r % 4) * 4 + c % 4] = q_rne[r, c].view(np.uint8)
    w = qp8_f32_qc8w_gemm.pack_weights(kw["rhs"], kw["scale"], bias=kw["bias"], target=T128)
    out = np.zeros((3, 11), F32)
    kern.run_matmul(3, 11, 40, lhs_p, w.rhs_packed, out, 44, 4, -np.inf, np.inf)
    msg = _fail(out, **kw)
    assert "ties-even rounding in qai8dx" in msg
    assert "stage: integer accumulator or quantized operands" in msg


def test_xnnpack_qd8_path_is_named() -> None:
    from kleidiref.fallbacks.qd8_f32_qc8w import qd8_f32_qc8w_gemm

    kw = _qp8()
    q, a, zp = quantize_qd8(kw["lhs"], fz=False)
    out = qd8_f32_qc8w_gemm(q, a, zp, kw["rhs"], kw["scale"], kw["bias"], fz=False)
    assert "XNNPACK qd8_f32_qc8w" in _fail(out, **kw)


def test_fused_mopa_epilogue_is_named() -> None:
    kw = _qp8(m=5, n=40, k=64, seed=7)
    q, dq, zp = quantize_qai8dx(kw["lhs"])
    acc = q.astype(np.int64) @ kw["rhs"].astype(np.int64).T - zp[:, None] * kw["rhs"].astype(np.int64).sum(1)
    sc = (kw["scale"][None, :] * dq[:, None]).astype(F32)
    fused = fma32(sc, acc.astype(F32), np.broadcast_to(kw["bias"], acc.shape))  # one rounding: wrong for MOPA
    msg = _fail(fused, **kw)
    assert "stage: float epilogue" in msg and "fused vs unfused" in msg
    assert "qsi8cxp4vlx4_1x4vl_sme2_dot" in msg and "MOPA vs GEMV epilogue" in msg


def test_float64_matmul_is_named_and_within_bound() -> None:
    kw = _pf32()
    alt = (kw["lhs"].astype(np.float64) @ kw["rhs"].astype(np.float64).T + kw["bias"]).astype(F32)
    msg = _fail(alt, **kw)
    assert "numpy float64 matmul" in msg and "ULP" in msg and "would PASS" in msg
    assert_matches(alt, exact=False, **kw)  # the derived tolerance accepts it


def test_unfused_per_element_accumulation_is_named() -> None:
    kw = _pf32(k=40, seed=4)
    acc = np.broadcast_to(kw["bias"], (9, 13)).astype(F32)
    for j in range(40):
        acc = acc + (kw["lhs"][:, j : j + 1] * kw["rhs"][:, j][None, :]).astype(F32)
    assert "per-element float32 accumulation, unfused" in _fail(acc, **kw)


def test_pqs8_ties_away_requantization() -> None:
    rng = np.random.default_rng(5)
    lhs = rng.integers(-20, 20, (4, 8)).astype(np.int8)
    rhs = rng.integers(-20, 20, (6, 8)).astype(np.int8)
    kw: dict[str, Any] = {
        "variant": "pqs8_qc8w_gemm",
        "target": T128,
        "lhs": lhs,
        "rhs": rhs,
        "input_zero_point": 0,
        "requant_scale": np.full(6, 0.5, F32),
        "output_zero_point": 3,
    }
    acc = lhs.astype(np.int64) @ rhs.astype(np.int64).T
    y = acc * 0.5
    away = np.clip(np.trunc(y + np.copysign(0.5, y)) + 3, -128, 127).astype(np.int8)
    msg = _fail(away, **kw)
    assert "ties-away requantization" in msg and "requantization" in msg.split("stage:")[1]
    broken_acc = pqs8_qc8w_gemm.gemm(
        lhs, rhs, input_zero_point=5, requant_scale=kw["requant_scale"], output_zero_point=3, target=T128
    )
    assert "stage: integer accumulator" in _fail(broken_acc, **kw)


def test_integer_accumulator_delta_is_reported() -> None:
    kw = _qp8()
    w2 = kw["rhs"].copy()
    w2[4, 7] = np.int8(w2[4, 7] // 2)
    out = qp8_f32_qc8w_gemm.gemm(kw["lhs"], w2, kw["scale"], bias=kw["bias"], target=T128)
    msg = _fail(out, **kw)
    assert "integer accumulator or quantized operands" in msg and "implies an int32 accumulator off by" in msg


# ------------------------------------------------------------------------------------------------
# Clamp and tiling
# ------------------------------------------------------------------------------------------------


def test_sme1_clamp_on_sme2_is_named() -> None:
    kw = _pf32()
    kw["lhs"][2, 3] = np.nan
    kw.update(clamp_min=-1.0, clamp_max=1.0)
    y = pf32_gemm.gemm(
        kw["lhs"],
        kw["rhs"],
        bias=kw["bias"],
        target=T128,
        kernel=pf32_gemm.SME1_MOPA.name,
        clamp_min=-np.inf,
        clamp_max=np.inf,
    )
    broken = fmin_fmax(y, F32(-1), F32(1))  # FMIN/FMAX where the SME2 kernel has FCLAMP
    msg = _fail(broken, **kw)
    assert "stage: clamp" in msg and "FCLAMP maps a NaN to clamp_min" in msg
    assert "kernel kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa" in msg


def test_fclamp_on_sme1_target() -> None:
    kw = _pf32()
    kw.update(target=SME1, clamp_min=-1.0, clamp_max=1.0)
    kw["lhs"][0, 0] = np.nan
    sme2 = pf32_gemm.gemm(kw["lhs"], kw["rhs"], bias=kw["bias"], clamp_min=-1.0, clamp_max=1.0, target=T128)
    assert "stage: clamp" in _fail(sme2, **kw)


def test_off_by_one_tile_offset() -> None:
    kw = _pf32(m=10, n=20, k=7)
    kern = pf32_gemm.SME2_MOPA(128)
    ms, ns = kern.get_m_step(), kern.get_n_step()
    lhs_p = pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme(128).pack(kw["lhs"])
    rhs_p = pf32_gemm.kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(128).pack(kw["rhs"], kw["bias"])
    out = np.zeros((10, 20), F32)
    for m0 in range(0, 10, ms):
        for n0 in range(0, 20, ns):
            wrong = max(n0 - ns, 0) if (m0, n0) == (ms, ns) else n0  # a bug: the previous tile's RHS
            bm, bn = min(ms, 10 - m0), min(ns, 20 - n0)
            dst = out.reshape(-1).view(np.uint8)[kern.get_dst_offset(m0, n0, 80) :]
            kern.run_matmul(
                bm,
                bn,
                7,
                lhs_p[kern.get_lhs_packed_offset(m0, 7) :],
                rhs_p[kern.get_rhs_packed_offset(wrong, 7) :],
                dst,
                80,
                4,
                -np.inf,
                np.inf,
            )
    msg = _fail(out, **kw)
    assert "stage: tiling" in msg and "block (1, 1)" in msg and "cols [0, 8)" in msg
    assert "off by one tile (8 columns)" in msg


def test_whole_tile_garbage_is_tiling() -> None:
    kw = _pf32(m=10, n=20, k=7)
    out = kt.reference(**kw)
    out[8:10, 16:20] = 0
    msg = _fail(out, **kw)
    assert "stage: tiling" in msg and "confined to 1 of" in msg


def test_shape_and_dtype_messages() -> None:
    kw = _pf32()
    assert "shape: actual (9, 12)" in _fail(np.zeros((9, 12), F32), **kw)
    ok = kt.reference(**kw).astype(np.float64)
    assert_matches(ok, **kw)  # converted exactly
    with pytest.raises(TypeError, match="unexpected"):
        assert_matches(ok, scale=np.ones(13, F32), **kw)
    with pytest.raises(ValueError, match="variant must be one of"):
        assert_matches(ok, **{**kw, "variant": "pf64_gemm"})


def test_explain_none_on_match() -> None:
    kw = _qp8()
    assert explain_mismatch(kt.reference(**kw), **kw) is None


# ------------------------------------------------------------------------------------------------
# The error model
# ------------------------------------------------------------------------------------------------

_WORST: dict[str, float] = {}


@pytest.mark.parametrize("variant", kt.VARIANT_NAMES)
def test_error_bound_holds_and_is_tight(variant: str, record_property: Any) -> None:
    """|out - exact| <= bound on every element; the observed max ratio shows the bound is tight.

    The ratio is printed (``pytest -s``) and recorded as the ``max_ratio`` property (junit XML).
    """
    worst = [0.0]

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(gemm_problems(variant, max_k=200))
    def check(p: GemmProblem) -> None:
        out = p.reference().astype(np.float64)
        e, x = error_bound(**p.kwargs()), exact_result(**p.kwargs())
        fin = np.isfinite(e) & np.isfinite(out)
        with np.errstate(invalid="ignore"):  # NaN/Inf elements (the strategies draw them) are out of model
            d = np.abs(out - x)[fin]
        assert (d <= e[fin]).all(), p
        if d.size:
            worst[0] = max(worst[0], float((d / e[fin]).max()))

    check()
    _WORST[variant] = worst[0]
    record_property("max_ratio", round(worst[0], 4))
    print(f"{variant}: observed max |out - exact| / bound = {worst[0]:.3f}")
    assert worst[0] > 0.05, "the bound is loose by more than 20x on every drawn problem"


@pytest.mark.slow
@pytest.mark.parametrize("variant", kt.VARIANT_NAMES)
def test_error_bound_holds_long(variant: str) -> None:
    """The same property on many more and larger problems (K up to 600)."""

    @settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(gemm_problems(variant, max_m=32, max_n=96, max_k=600))
    def check(p: GemmProblem) -> None:
        out = p.reference().astype(np.float64)
        e, x = error_bound(**p.kwargs()), exact_result(**p.kwargs())
        fin = np.isfinite(e) & np.isfinite(out)
        with np.errstate(invalid="ignore"):
            assert (np.abs(out - x)[fin] <= e[fin]).all(), p

    check()


def test_exact_false_rejects_integer_errors() -> None:
    kw = _qp8()
    w2 = kw["rhs"].copy()
    w2[0, 0] = np.int8(-w2[0, 0] if w2[0, 0] else 5)
    out = qp8_f32_qc8w_gemm.gemm(kw["lhs"], w2, kw["scale"], bias=kw["bias"], target=T128)
    with pytest.raises(AssertionError):
        assert_matches(out, exact=False, **kw)


# ------------------------------------------------------------------------------------------------
# Packaging
# ------------------------------------------------------------------------------------------------


def test_kleidiref_imports_without_hypothesis() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None; import kleidiref, kleidiref.testing; "
        "from kleidiref.testing import assert_matches; print('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_docstring_examples() -> None:
    res = doctest.testmod(kt, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0


def test_pf16_sme1_gemv_vs_pair_rounding() -> None:
    rng = np.random.default_rng(14)  # mixed magnitudes: per-k and per-pair rounding differ after RN16
    a = (rng.standard_normal((1, 64)) * 2.0 ** rng.integers(-6, 6, (1, 64))).astype(np.float16)
    w = (rng.standard_normal((64, 64)) * 2.0 ** rng.integers(-6, 6, (64, 64))).astype(np.float16)
    kw: dict[str, Any] = {"variant": "pf16_gemm", "target": SME1, "lhs": a, "rhs": w}
    from kleidiref.variants import pf16_gemm

    pairs = pf16_gemm.gemm(kw["lhs"], kw["rhs"], target=SME1, kernel=pf16_gemm.SME1_MOPA.name)
    msg = _fail(pairs, **kw)  # SME1's 1-row kernel rounds per k (FMLALB/FMLALT), not per pair
    assert "per-k vs per-pair rounding" in msg and "stage: float epilogue" in msg


def test_qb4w_ties_even_is_named() -> None:
    from kleidiref.quant.qb4 import f32_scales_to_bf16
    from kleidiref.variants import qp8_f32_qb4w_gemm as qb4w

    rng = np.random.default_rng(9)
    x = _tie_rows(3, 64)
    codes = rng.integers(-8, 8, (10, 64)).astype(np.int8)
    sc = f32_scales_to_bf16(rng.uniform(0.01, 0.1, (10, 2)).astype(F32))
    kw: dict[str, Any] = {
        "variant": "qp8_f32_qb4w_gemm",
        "target": T128,
        "lhs": x,
        "rhs": codes,
        "scales_bf16": sc,
        "bl": 32,
    }
    kern = qb4w.NEON_I8MM(128)
    prep = qb4w.prepare_weights(codes, sc, bl=32, target=T128)
    scale0, dq, zp = qai8dx_params(x)
    q_rne = np.clip(np.rint(x * scale0[:, None]) + zp[:, None], -128, 127).astype(np.int8)
    rows = qb4w.Qai8dxpRows(q_rne, (-zp).astype(np.int32), dq)
    out = kern.compute(rows, prep.operand, (F32(-np.inf), F32(np.inf)))
    assert not np.array_equal(q_rne, quantize_qai8dx(x, k_block_len=8)[0])
    assert "ties-even rounding in qai8dx" in _fail(out, **kw)


@pytest.mark.parametrize("fz", [False, True])
def test_error_bound_covers_subnormal_scale_products(fz: bool) -> None:
    """A tiny row makes RN32(dq * scale) subnormal (or flushed): its absolute error scales with |acc|.

    Found by test_error_bound_holds_long: lhs 1.84e-35, weight -127, scale 2**-12.
    """
    kw: dict[str, Any] = {
        "variant": "qp8_f32_qc8w_gemm",
        "lhs": np.array([[1.838794e-35]], np.float32),
        "rhs": np.array([[-127]], np.int8),
        "scale": np.array([2.0**-12], np.float32),
        "bias": np.array([0.0], np.float32),
        "target": kr.Target(svl_bits=128, sme2=False, flush_to_zero=fz),
    }
    out = qp8_f32_qc8w_gemm.gemm(kw["lhs"], kw["rhs"], kw["scale"], bias=kw["bias"], target=kw["target"])
    e, x = error_bound(**kw), exact_result(**kw)
    assert (np.abs(out.astype(np.float64) - x) <= e).all()
