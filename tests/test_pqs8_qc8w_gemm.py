"""pqs8_qc8w_gemm: golden vectors, tiling and SVL invariance, packers, requantization, error paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref.golden import bundled_golden_dir, check_file
from kleidiref.kai.params import kai_matmul_requantize32_params as RQ
from kleidiref.kai.params import kai_rhs_pack_qsi8cx_params
from kleidiref.quant import requantization_scale
from kleidiref.targets import GENERIC_SME1, NEON_ONLY, SUPPORTED_SVLS, Target
from kleidiref.variants import pqs8_qc8w_gemm as p

GOLDEN = sorted(bundled_golden_dir().glob("pqs8_qc8w_gemm__*.npz"))


def _problem(m: int, n: int, k: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "lhs": rng.integers(-128, 128, (m, k)).astype(np.int8),
        "rhs": rng.integers(-127, 128, (n, k)).astype(np.int8),
        "requant_scale": (rng.random(n) * 0.004 + 1e-4).astype(np.float32),
        "bias": rng.integers(-5000, 5000, n).astype(np.int32),
        "input_zero_point": int(rng.integers(-128, 128)),
        "output_zero_point": int(rng.integers(-20, 20)),
    }


def _reference(d: dict[str, Any], lo: int = -128, hi: int = 127) -> NDArray[np.int8]:
    """§8.3 oracle formula with exact int64 accumulation (no wrap occurs at these sizes)."""
    centred = d["lhs"].astype(np.int64) - d["input_zero_point"]
    acc = d["bias"].astype(np.int64) + centred @ d["rhs"].T.astype(np.int64)
    y = (acc.astype(np.float32) * d["requant_scale"]).astype(np.float32)
    return np.clip(np.rint(y).astype(np.int64) + d["output_zero_point"], lo, hi).astype(np.int8)  # type: ignore[no-any-return]


def test_golden_file_count() -> None:
    assert len(GOLDEN) == 80


@pytest.mark.parametrize("path", GOLDEN, ids=lambda x: Path(x).stem)
def test_golden(path: Path) -> None:
    res = check_file(path)
    assert res.ok, [(f.name, f.detail) for f in res.fields if not f.ok] or res.message


def _packed(svl: int, d: dict[str, Any]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    lp = p.kai_lhs_pack_x8p2vlx4_x8_sme(svl).pack(d["lhs"])
    rp = p.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(svl).pack(
        np.ascontiguousarray(d["rhs"].T),
        d["requant_scale"],
        d["bias"],
        params=kai_rhs_pack_qsi8cx_params(d["input_zero_point"], 1.0),
    )
    return lp, rp


@pytest.mark.parametrize("kcls", [p.SME2_MOPA, p.SME1_MOPA], ids=lambda c: c.name[-12:])
@pytest.mark.parametrize(("m", "n", "k", "svl"), [(37, 70, 45, 128), (5, 130, 33, 256), (40, 65, 7, 512)])
def test_tiling_invariance(kcls: type[Any], m: int, n: int, k: int, svl: int) -> None:
    d = _problem(m, n, k, seed=m * n)
    lp, rp = _packed(svl, d)
    kern = kcls(svl)
    rq = RQ(-60, 90, d["output_zero_point"])
    whole = np.zeros((m, n), dtype=np.int8)
    kern.run_matmul(m, n, k, lp, rp, whole, n, 1, rq)
    stride = n + 3
    dst = np.full(m * stride, 0x5A, dtype=np.uint8)
    ms, ns = kern.get_m_step(), kern.get_n_step()
    for m0 in range(0, m, ms):
        for n0 in range(0, n, ns):
            lo, ro = kern.get_lhs_packed_offset(m0, k), kern.get_rhs_packed_offset(n0, k)
            do = kern.get_dst_offset(m0, n0, stride)
            kern.run_matmul(min(ms, m - m0), min(ns, n - n0), k, lp[lo:], rp[ro:], dst[do:], stride, 1, rq)
    rows = dst.reshape(m, stride)
    assert np.array_equal(rows[:, :n].view(np.int8), whole)
    assert np.all(rows[:, n:] == 0x5A)
    assert np.array_equal(whole, _reference(d, -60, 90))


@pytest.mark.parametrize("svl", [128, 512, 2048])
def test_gemv_tiling(svl: int) -> None:
    d = _problem(1, 600, 29, seed=svl)
    _, rp = _packed(svl, d)
    kern = p.SME2_GEMV(svl)
    rq = RQ(-128, 127, d["output_zero_point"])
    whole = np.zeros((1, 600), np.int8)
    kern.run_matmul(1, 600, 29, d["lhs"], rp, whole, 600, 1, rq)
    dst = np.full(603, 0x5A, np.uint8)
    ns = kern.get_n_step()
    for n0 in range(0, 600, ns):
        ro, do = kern.get_rhs_packed_offset(n0, 29), kern.get_dst_offset(0, n0, 603)
        kern.run_matmul(1, min(ns, 600 - n0), 29, d["lhs"], rp[ro:], dst[do:], 603, 1, rq)
    assert np.array_equal(dst[:600].view(np.int8), whole[0]) and np.all(dst[600:] == 0x5A)
    assert np.array_equal(whole, _reference(d))


@pytest.mark.parametrize("m", [1, 2, 33])
def test_svl_and_isa_invariance(m: int) -> None:
    d = _problem(m, 70, 50, seed=m)
    args = {key: d[key] for key in ("requant_scale", "bias", "input_zero_point", "output_zero_point")}
    ref = _reference(d)
    for s in SUPPORTED_SVLS:
        for t in (Target(svl_bits=s), GENERIC_SME1.replace(svl_bits=s)):
            assert np.array_equal(p.gemm(d["lhs"], d["rhs"], **args, target=t), ref)


def test_select_kernel() -> None:
    assert p.select_kernel(Target(), 1) is p.SME2_GEMV
    assert p.select_kernel(Target(), 2) is p.SME2_MOPA
    assert p.select_kernel(GENERIC_SME1, 1) is p.SME1_MOPA  # no SME1 GEMV: MOPA with m = 1
    with pytest.raises(ValueError, match="no SME"):
        p.select_kernel(NEON_ONLY, 4)


def test_transpose_rhs_and_kernel_choice() -> None:
    d = _problem(1, 45, 13)
    args = {key: d[key] for key in ("requant_scale", "bias", "input_zero_point", "output_zero_point")}
    a = p.gemm(d["lhs"], d["rhs"], **args)
    b = p.gemm(d["lhs"], np.ascontiguousarray(d["rhs"].T), transpose_rhs=True, **args)
    c = p.gemm(d["lhs"], d["rhs"], kernel=p.SME2_MOPA.name, **args)
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_rhs_packer_layout() -> None:
    k, n = 6, 3
    w = np.arange(k * n, dtype=np.int8).reshape(k, n) - 9
    bias = np.array([10, -20, 30], np.int32)
    scale = np.array([0.5, 0.25, 3.0], np.float32)
    packer = p.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(128)
    prm = kai_rhs_pack_qsi8cx_params(lhs_zero_point=7, scale_multiplier=0.375)
    rp = packer.pack(w, scale, bias, params=prm)
    b, wf, sc = p.decode_qsi8cxp2vlx4sb(rp, 8, k, 8)
    assert np.array_equal(b[:n], bias - 7 * w.astype(np.int32).sum(axis=0)) and np.all(b[n:] == 0)
    assert np.array_equal(wf[:k, :n], w.astype(np.float32)) and np.all(wf[k:] == 0) and np.all(wf[:, n:] == 0)
    assert np.array_equal(sc[:n], scale * np.float32(0.375)) and np.all(sc[n:] == 0)
    assert rp.size == packer.get_rhs_packed_size(n, k) == 8 * (4 + 8 + 4)


def test_bias_fold_wraps() -> None:
    w = np.full((8, 1), 127, np.int8)
    rp = p.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(128).pack(
        w,
        np.ones(1, np.float32),
        np.array([2**31 - 1], np.int32),
        params=kai_rhs_pack_qsi8cx_params(lhs_zero_point=-(2**31), scale_multiplier=1.0),
    )
    b, _, _ = p.decode_qsi8cxp2vlx4sb(rp, 1, 8, 8)
    assert int(b[0]) == ((2**31 - 1 + 2**31 * 127 * 8 + 2**31) % 2**32) - 2**31


def test_requantize_saturation_and_narrowing() -> None:
    acc = np.array([[2**31 - 1, -(2**31), 0, 5]], np.int32)
    scale = np.array([1000.0, 1000.0, np.nan, 1.0], np.float32)
    out = p.requantize(acc, scale, RQ(-128, 127, 0))
    assert out.tolist() == [[127, -128, 0, 5]]  # FCVTZS saturates, NaN -> 0
    # Bounds wider than int8: the kernel stores the low byte (UZP1), so 300 wraps to 44.
    wide = p.requantize(np.array([[300]], np.int32), np.ones(1, np.float32), RQ(-1000, 1000, 0))
    assert wide.tolist() == [[44]]
    # Ties to even (FRINTN): 2.5 -> 2, 3.5 -> 4.
    half = p.requantize(np.array([[5, 7, -5]], np.int32), np.full(3, 0.5, np.float32), RQ(-128, 127, 0))
    assert half.tolist() == [[2, 4, -2]]


def test_tiny_scale_and_fz() -> None:
    d = _problem(3, 4, 8)
    d["requant_scale"] = np.full(4, 1e-40, np.float32)
    args = {key: d[key] for key in ("requant_scale", "bias", "input_zero_point")}
    on = p.gemm(d["lhs"], d["rhs"], output_zero_point=3, **args, target=Target(flush_to_zero=True))
    assert np.all(on == 3)


def test_requantization_scale_limit() -> None:
    s = requantization_scale(0.5, np.array([0.25, 2.0], np.float32), 0.125)
    assert s.tolist() == [1.0, 8.0]
    with pytest.raises(ValueError, match="setup_scale_params_qx8_qcyw"):
        requantization_scale(1.0, np.array([0.5, 256.0], np.float32), 1.0)


# ------------------------------------------------------------------------------ errors


def test_errors_friendly() -> None:
    d = _problem(2, 3, 8)
    args = {key: d[key] for key in ("requant_scale", "bias", "input_zero_point", "output_zero_point")}
    with pytest.raises(TypeError):
        p.gemm(d["lhs"].astype(np.uint8), d["rhs"], **args)
    with pytest.raises(TypeError):
        p.gemm(d["lhs"], d["rhs"].astype(np.float32), **args)
    with pytest.raises(ValueError, match="lhs must be"):
        p.gemm(d["lhs"][:, :5], d["rhs"], **args)
    with pytest.raises(TypeError):
        p.gemm(d["lhs"], d["rhs"], **{**args, "bias": d["bias"].astype(np.int64)})
    with pytest.raises(ValueError, match="scale must have shape"):
        p.gemm(d["lhs"], d["rhs"], **{**args, "requant_scale": d["requant_scale"][:1]})
    with pytest.raises(ValueError, match="int32"):
        p.gemm(d["lhs"], d["rhs"], **{**args, "input_zero_point": 2**40})
    with pytest.raises(ValueError, match="int8"):
        p.gemm(d["lhs"], d["rhs"], **{**args, "input_zero_point": 128})
    with pytest.raises(ValueError, match="int8"):
        p.gemm(d["lhs"], d["rhs"], **{**args, "output_zero_point": -129})
    with pytest.raises(ValueError, match="output_min"):
        p.gemm(d["lhs"], d["rhs"], **args, output_min=10, output_max=5)
    big = d["requant_scale"].copy()
    big[1] = 256.0
    with pytest.raises(ValueError, match="setup_scale_params_qx8_qcyw"):
        p.gemm(d["lhs"], d["rhs"], **{**args, "requant_scale": big})
    with pytest.raises(ValueError, match="not a pqs8"):
        p.gemm(d["lhs"], d["rhs"], **args, kernel="kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa")


def test_errors_kernels_and_packers() -> None:
    with pytest.raises(ValueError, match="SVL"):
        p.SME2_MOPA(100)
    d = _problem(4, 10, 8)
    lp, rp = _packed(512, d)
    k = p.SME2_MOPA(512)
    dst = np.zeros((4, 10), np.int8)
    rq = RQ(-128, 127, 0)
    with pytest.raises(ValueError, match="rhs_packed holds"):
        k.run_matmul(4, 10, 8, lp, rp[:-4], dst, 10, 1, rq)
    with pytest.raises(ValueError, match="lhs_packed holds"):
        k.run_matmul(4, 10, 8, lp[:10], rp, dst, 10, 1, rq)
    with pytest.raises(TypeError, match="kai_matmul_requantize32_params"):
        k.run_matmul(4, 10, 8, lp, rp, dst, 10, 1, (-128, 127, 0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="int32"):
        RQ(-128, 2**31, 0)
    g = p.SME2_GEMV(512)
    with pytest.raises(ValueError, match="m == 1"):
        g.run_matmul(2, 10, 8, d["lhs"], rp, dst, 10, 1, rq)
    with pytest.raises(TypeError, match="int8"):
        g.run_matmul(1, 10, 8, d["lhs"][:1].astype(np.int16), rp, dst, 10, 1, rq)
    with pytest.raises(ValueError, match="m_idx == 0"):
        g.get_dst_offset(1, 0, 10)
    lpk = p.kai_lhs_pack_x8p2vlx4_x8_sme(512)
    with pytest.raises(ValueError, match="mr == 32"):
        lpk.get_lhs_packed_size(4, 8, 16, 4, 1)
    with pytest.raises(ValueError, match="m_idx_start == 0"):
        lpk.run_lhs_pack(4, 8, 32, 4, 1, 1, d["lhs"], 8, np.zeros(1024, np.uint8))
    rpk = p.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(512)
    w = np.ascontiguousarray(d["rhs"].T)
    out = np.zeros(rpk.get_rhs_packed_size(10, 8), np.uint8)
    prm = kai_rhs_pack_qsi8cx_params(0, 1.0)
    with pytest.raises(ValueError, match="nr == 32"):
        rpk.run_rhs_pack(1, 10, 8, 16, 4, 1, 10, w, d["bias"], d["requant_scale"], out, 0, prm)
    with pytest.raises(ValueError, match="bias != NULL"):
        rpk.run_rhs_pack(1, 10, 8, 32, 4, 1, 10, w, None, d["requant_scale"], out, 0, prm)
    with pytest.raises(ValueError, match="rhs_packed holds"):
        rpk.run_rhs_pack(1, 10, 8, 32, 4, 1, 10, w, d["bias"], d["requant_scale"], out[:-1], 0, prm)
    with pytest.raises(ValueError, match="n_idx % n_step"):
        rpk.get_rhs_packed_offset(5, 8)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 70),
    k=st.integers(1, 60),
    svl=st.sampled_from([128, 256, 1024]),
    seed=st.integers(0, 2**16),
    lo=st.integers(-128, 0),
    hi=st.integers(0, 127),
)
def test_property_exact_requantization(m: int, n: int, k: int, svl: int, seed: int, lo: int, hi: int) -> None:
    d = _problem(m, n, k, seed)
    out = p.gemm(
        d["lhs"],
        d["rhs"],
        requant_scale=d["requant_scale"],
        bias=d["bias"],
        input_zero_point=d["input_zero_point"],
        output_zero_point=d["output_zero_point"],
        output_min=lo,
        output_max=hi,
        target=Target(svl_bits=svl),
    )
    assert np.array_equal(out, _reference(d, lo, hi))


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 70), k=st.integers(1, 60), seed=st.integers(0, 2**16), sme1=st.booleans())
def test_fast_path_equals_packed_path(m: int, n: int, k: int, seed: int, sme1: bool) -> None:
    d = _problem(m, n, k, seed)
    t = Target(sme2=not sme1, svl_bits=128)
    w = p.pack_weights(d["rhs"], d["requant_scale"], input_zero_point=d["input_zero_point"], bias=d["bias"], target=t)
    args = {"output_zero_point": d["output_zero_point"], "output_min": -100, "output_max": 100, "target": t}
    assert np.array_equal(p.gemm_packed(d["lhs"], w, **args), p.gemm_packed(d["lhs"], w, fast=False, **args))


# ------------------------------------------------------------------------------ shared int8 helpers


@pytest.mark.parametrize(("m", "n", "k"), [(3, 5, 7), (2, 4, 3000), (1, 3, 1025), (3, 6, 6000)])
@pytest.mark.parametrize("extreme", [False, True])
def test_int8_matmul_exact(m: int, n: int, k: int, extreme: bool) -> None:
    from kleidiref.kai.int8_common import int8_matmul

    rng = np.random.default_rng(k)
    a = np.full((m, k), -128, np.int8) if extreme else rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = np.full((k, n), -128, np.int8) if extreme else rng.integers(-128, 128, (k, n)).astype(np.int8)
    ref = a.astype(np.int64) @ w.astype(np.int64)
    assert np.array_equal(int8_matmul(a, w), ref.astype(np.int32))
    assert np.array_equal(int8_matmul(a, w.astype(np.float32), w_absmax=128.0), ref.astype(np.int32))


@pytest.mark.slow
def test_int8_matmul_wraps_like_int32() -> None:
    from kleidiref.kai.int8_common import int8_matmul

    k = 140_000  # 128 * 128 * k > 2**31: the kernels' int32 accumulator wraps
    a = np.full((1, k), -128, np.int8)
    w = np.full((k, 1), -128, np.int8)
    assert int(int8_matmul(a, w)[0, 0]) == ((16384 * k + 2**31) % 2**32) - 2**31


def test_packed_rhs_cache_only_for_the_whole_object() -> None:
    from kleidiref._buffers import PackedRhs, owner_packed_rhs, packed_rhs_columns

    pr = PackedRhs(bytes(range(64)))
    full = np.frombuffer(pr, np.uint8)
    assert owner_packed_rhs(full) is pr
    assert owner_packed_rhs(full[:]) in (None, pr)  # a view: decoding its own bytes is also correct
    assert owner_packed_rhs(full[4:]) is None
    assert owner_packed_rhs(np.frombuffer(pr[4:], np.uint8)) is None  # bytes slice: a plain copy
    assert owner_packed_rhs(full.copy()) is None
    assert pr.decoded("x", lambda b: len(b)) == 64 and pr.decoded("x", lambda _b: -1) == 64
    assert packed_rhs_columns(full, 16, 4, 16) == (pr, 16)  # 4 blocks of 4 columns
    assert packed_rhs_columns(full, 16, 4, 17) is None  # fewer columns than n
    assert packed_rhs_columns(full, 24, 4, 1) is None  # not whole blocks
    assert packed_rhs_columns(full[4:], 12, 4, 1) is None  # not the whole object
    d = _problem(5, 40, 9)
    w = p.pack_weights(d["rhs"], d["requant_scale"], input_zero_point=1)
    a1 = p.gemm_packed(d["lhs"], w, output_zero_point=0)
    # a tile view of the same object (offset) must decode its own bytes, not reuse the cache
    kern = p.SME2_MOPA()
    lp = p.kai_lhs_pack_x8p2vlx4_x8_sme().pack(d["lhs"])
    dst = np.zeros((5, 40), np.int8)
    kern.run_matmul(5, 40, 9, lp, np.frombuffer(w.rhs_packed, np.uint8)[0:], dst, 40, 1, RQ(-128, 127, 0))
    assert np.array_equal(dst, a1)
