"""qp8_f32_qc8w_gemm: golden vectors, tiling and SVL invariance, packers, error paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref._buffers import PackedRhs
from kleidiref.golden import bundled_golden_dir, check_file
from kleidiref.kai.pack import kai_lhs_quant_pack_qai8dxp_f32
from kleidiref.kai.params import kai_rhs_pack_qsi8cx_params
from kleidiref.targets import GENERIC_SME1, NEON_ONLY, SUPPORTED_SVLS, Target
from kleidiref.variants import qp8_f32_qc8w_gemm as q

GOLDEN = sorted(bundled_golden_dir().glob("qp8_f32_qc8w_gemm__*.npz"))
KERNELS = [q.SME2_MOPA, q.SME1_MOPA, q.SME2_GEMV, q.SME1_GEMV]


def _problem(m: int, n: int, k: int, seed: int = 0) -> tuple[NDArray[Any], ...]:
    rng = np.random.default_rng(seed)
    lhs = (rng.standard_normal((m, k)) * 3).astype(np.float32)
    rhs = rng.integers(-127, 128, (n, k)).astype(np.int8)
    scale = (rng.random(n) * 0.02 + 1e-3).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    return lhs, rhs, scale, bias


def test_golden_file_count() -> None:
    assert len(GOLDEN) == 80


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: Path(p).stem)
def test_golden(path: Path) -> None:
    res = check_file(path)
    assert res.ok, [(f.name, f.detail) for f in res.fields if not f.ok] or res.message


def _pack(
    kcls: type[Any], svl: int, lhs: NDArray[Any], rhs: NDArray[Any], scale: NDArray[Any], bias: NDArray[Any]
) -> tuple[Any, NDArray[np.uint8], NDArray[np.uint8]]:
    kern = kcls(svl)
    lp = kai_lhs_quant_pack_qai8dxp_f32(svl).pack(lhs, mr=kern.get_mr(), kr=kern.get_kr(), sr=kern.get_sr())
    packer = q.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(svl)
    rp = packer.pack(rhs, scale, bias, nr=kern.get_nr(), kr=kern.get_kr())
    return kern, lp, rp


@pytest.mark.parametrize("m", [1, 3, 20])
def test_svl_invariance(m: int) -> None:
    lhs, rhs, scale, bias = _problem(m, 75, 70, seed=m)
    outs = [q.gemm(lhs, rhs, scale, bias=bias, target=Target(svl_bits=s)) for s in SUPPORTED_SVLS]
    for o in outs[1:]:
        assert np.array_equal(o.view(np.uint32), outs[0].view(np.uint32))


def test_gemv_vs_mopa_only_epilogue_differs() -> None:
    lhs, rhs, scale, bias = _problem(1, 300, 50, seed=7)
    gemv = q.gemm(lhs, rhs, scale, bias=bias)
    mopa = q.gemm(lhs, rhs, scale, bias=bias, kernel=q.SME2_MOPA.name)
    # Same integer part and scales; fused vs unfused epilogue: within one rounding of each other.
    assert np.allclose(gemv, mopa, rtol=2**-22, atol=1e-6)


def test_sme1_equals_sme2_without_nan() -> None:
    lhs, rhs, scale, bias = _problem(9, 40, 19)
    a = q.gemm(lhs, rhs, scale, bias=bias, clamp_min=-1.0, clamp_max=1.0)
    b = q.gemm(lhs, rhs, scale, bias=bias, clamp_min=-1.0, clamp_max=1.0, target=GENERIC_SME1)
    assert np.array_equal(a, b)


def test_matches_float_reference() -> None:
    lhs, rhs, scale, bias = _problem(6, 33, 100)
    out = q.gemm(lhs, rhs, scale, bias=bias)
    ref = lhs.astype(np.float64) @ (rhs.astype(np.float64) * scale[:, None].astype(np.float64)).T + bias
    assert np.max(np.abs(out - ref)) < 0.05 * np.max(np.abs(ref))


@pytest.mark.parametrize("n", [1, 63, 64, 65, 130])
def test_nxk_kxn_packers_equal(n: int) -> None:
    _, rhs, scale, bias = _problem(1, n, 37, seed=n)
    for nr in (16, 64):
        a = q.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon().pack(rhs, scale, bias, nr=nr)
        b = q.kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon().pack(np.ascontiguousarray(rhs.T), scale, bias, nr=nr)
        assert np.array_equal(a, b)


def test_rhs_packer_layout_and_replication() -> None:
    rhs = np.arange(-50, 50, dtype=np.int8).reshape(5, 20)
    scale = np.arange(1, 6, dtype=np.float32)
    bias = -np.arange(1, 6, dtype=np.float32)
    nr = 8
    p = q.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon().pack(
        rhs, scale, bias, nr=nr, params=kai_rhs_pack_qsi8cx_params(3, 9.0)
    )
    w, rsum, sc, b = q.decode_qsi8cxp(p, nr, 20, nr)
    assert np.array_equal(w[:20, :5].T, rhs.astype(np.float32))
    assert np.all(w[20:] == 0)  # K padding is zero
    assert np.array_equal(w[:20, 5:], np.repeat(w[:20, 4:5], 3, axis=1))  # columns past N replicate N-1
    assert np.array_equal(rsum[:5], 3 * rhs.astype(np.int64).sum(axis=1))
    assert np.array_equal(sc, np.r_[scale, [5, 5, 5]].astype(np.float32))
    assert np.array_equal(b, np.r_[bias, [-5, -5, -5]].astype(np.float32))


def test_rsum_wraps_int32() -> None:
    rhs = np.full((1, 64), 127, dtype=np.int8)
    p = q.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon().pack(
        rhs, np.ones(1, np.float32), nr=4, params=kai_rhs_pack_qsi8cx_params(lhs_zero_point=2**30)
    )
    _, rsum, _, _ = q.decode_qsi8cxp(p, 1, 64, 4)
    assert int(rsum[0]) == ((127 * 64 * 2**30 + 2**31) % 2**32) - 2**31


def test_packed_weights_cache_matches_plain_buffer() -> None:
    lhs, rhs, scale, bias = _problem(20, 70, 40)
    w = q.pack_weights(rhs, scale, bias=bias)
    assert isinstance(w.rhs_packed, PackedRhs)
    a = q.gemm_packed(lhs, w)
    b = q.gemm_packed(lhs, w)  # cached decoding
    kern = q.SME2_MOPA()
    lp = kai_lhs_quant_pack_qai8dxp_f32().pack(lhs, mr=kern.get_mr(), kr=4, sr=1)
    c = np.zeros_like(a)
    kern.run_matmul(20, 70, 40, lp, np.frombuffer(bytes(w.rhs_packed), np.uint8).copy(), c, 70 * 4, 4, -np.inf, np.inf)
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_fz_flushes_subnormal_scale() -> None:
    lhs, rhs, _, _ = _problem(3, 5, 8)
    tiny = np.full(5, 1e-40, dtype=np.float32)
    on = q.gemm(lhs, rhs, tiny, target=Target(flush_to_zero=True))
    off = q.gemm(lhs, rhs, tiny, target=Target(flush_to_zero=False))
    assert np.all(on == 0) and np.any(off != 0)


def test_nan_clamps() -> None:
    lhs, rhs, scale, _ = _problem(2, 4, 8)
    bias = np.full(4, np.nan, dtype=np.float32)
    sme2 = q.gemm(lhs, rhs, scale, bias=bias, clamp_min=-3.0, clamp_max=3.0)
    sme1 = q.gemm(lhs, rhs, scale, bias=bias, clamp_min=-3.0, clamp_max=3.0, target=GENERIC_SME1)
    assert np.all(sme2 == -3.0)  # FCLAMP: NaN -> min
    assert np.all(sme1.view(np.uint32) == 0x7FC00000)  # FMAX/FMIN propagate the default NaN


# ------------------------------------------------------------------------------ errors


def test_errors_dtypes_and_shapes() -> None:
    lhs, rhs, scale, bias = _problem(2, 3, 8)
    with pytest.raises(TypeError):
        q.gemm(lhs.astype(np.float64), rhs, scale)
    with pytest.raises(TypeError):
        q.gemm(lhs, rhs.astype(np.int16), scale)
    with pytest.raises(TypeError):
        q.gemm(lhs, rhs, scale.astype(np.float64))
    with pytest.raises(ValueError, match="scale must have shape"):
        q.gemm(lhs, rhs, scale[:2])
    with pytest.raises(ValueError, match="bias must have shape"):
        q.gemm(lhs, rhs, scale, bias=bias[:1])
    with pytest.raises(ValueError):
        q.gemm(lhs[:, :5], rhs, scale)
    with pytest.raises(ValueError, match="no SME"):
        q.gemm(lhs, rhs, scale, target=NEON_ONLY.replace(i8mm=False, dotprod=False))
    with pytest.raises(ValueError, match="not a qp8"):
        q.gemm(lhs, rhs, scale, kernel="kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa")
    w = q.pack_weights(rhs, scale, target=Target(svl_bits=256))
    with pytest.raises(ValueError, match="SVL"):
        q.gemm_packed(lhs, w, target=Target(svl_bits=512))


def test_errors_kernel_interface() -> None:
    with pytest.raises(ValueError, match="SVL"):
        q.SME2_MOPA(384)
    lhs, rhs, scale, bias = _problem(4, 10, 8)
    kern, lp, rp = _pack(q.SME2_MOPA, 512, lhs, rhs, scale, bias)
    dst = np.zeros((4, 10), np.float32)
    with pytest.raises(ValueError, match="rhs_packed holds"):
        kern.run_matmul(4, 10, 8, lp, rp[:-1], dst, 40, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="lhs_packed holds"):
        kern.run_matmul(4, 10, 8, lp[:100], rp, dst, 40, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="dst holds"):
        kern.run_matmul(4, 10, 8, lp, rp, np.zeros(10, np.float32), 40, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="m > 0"):
        kern.run_matmul(0, 10, 8, lp, rp, dst, 40, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="dst_stride_col"):
        kern.run_matmul(4, 10, 8, lp, rp, dst, 40, 8, -1.0, 1.0)
    with pytest.raises(ValueError, match="m_idx % mr"):
        kern.get_lhs_packed_offset(3, 8)
    with pytest.raises(ValueError, match="n_idx % nr"):
        kern.get_rhs_packed_offset(3, 8)
    gemv = q.SME2_GEMV(512)
    gemv.run_matmul(0, 10, 8, b"", rp, dst, 40, 4, -1.0, 1.0)  # m == 0: returns (upstream)


def test_errors_rhs_packer() -> None:
    packer = q.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon()
    rhs = np.zeros((3, 8), np.int8)
    scale = np.ones(3, np.float32)
    out = np.zeros(packer.get_rhs_packed_size(3, 8, 4, 4, 1), np.uint8)
    p = kai_rhs_pack_qsi8cx_params()
    with pytest.raises(ValueError, match="sr == 1"):
        packer.run_rhs_pack(1, 3, 8, 4, 4, 2, rhs, None, scale, out, 0, p)
    with pytest.raises(ValueError, match="num_groups == 1"):
        packer.run_rhs_pack(2, 3, 8, 4, 4, 1, rhs, None, scale, out, 0, p)
    with pytest.raises(ValueError, match="scale != NULL"):
        packer.run_rhs_pack(1, 3, 8, 4, 4, 1, rhs, None, None, out, 0, p)
    with pytest.raises(ValueError, match="params != NULL"):
        packer.run_rhs_pack(1, 3, 8, 4, 4, 1, rhs, None, scale, out, 0, None)
    with pytest.raises(ValueError, match="rhs_packed holds"):
        packer.run_rhs_pack(1, 3, 8, 4, 4, 1, rhs, None, scale, out[:-1], 0, p)
    with pytest.raises(TypeError):
        packer.run_rhs_pack(1, 3, 8, 4, 4, 1, rhs.astype(np.uint8), None, scale, out, 0, p)
    with pytest.raises(ValueError, match="n_idx % nr"):
        packer.get_rhs_packed_offset(2, 8, 4, 4, 1)
    with pytest.raises(ValueError, match="int32"):
        kai_rhs_pack_qsi8cx_params(lhs_zero_point=2**31)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 80),
    k=st.integers(1, 70),
    svl=st.sampled_from([128, 512]),
    seed=st.integers(0, 2**16),
)
def test_kernels_agree_with_integer_model(m: int, n: int, k: int, svl: int, seed: int) -> None:
    """MOPA output == the §7.2 formula evaluated independently with int64 and float32 numpy."""
    from kleidiref.quant import quantize_qai8dx

    lhs, rhs, scale, bias = _problem(m, n, k, seed)
    out = q.gemm(lhs, rhs, scale, bias=bias, kernel=q.SME2_MOPA.name, target=Target(svl_bits=svl))
    qa, dq, zp = quantize_qai8dx(lhs, k_block_len=4)
    acc = (qa.astype(np.int64) - zp[:, None]) @ rhs.astype(np.int64).T  # K padding cancels exactly
    f = acc.astype(np.float32)
    sc = (dq[:, None] * scale[None, :]).astype(np.float32)
    ref = ((sc * f).astype(np.float32) + bias).astype(np.float32)
    assert np.array_equal(out.view(np.uint32), ref.view(np.uint32))


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 35),
    n=st.integers(1, 70),
    k=st.integers(1, 80),
    seed=st.integers(0, 2**16),
    sme1=st.booleans(),
    fz=st.booleans(),
    tight=st.booleans(),
    scale_exp=st.integers(-140, 0),
)
def test_fast_path_equals_packed_path(
    m: int, n: int, k: int, seed: int, sme1: bool, fz: bool, tight: bool, scale_exp: int
) -> None:
    lhs, rhs, scale, bias = _problem(m, n, k, seed)
    scale = (scale * np.float32(2.0**scale_exp)).astype(np.float32)  # down to subnormal scales
    t = Target(sme2=not sme1, flush_to_zero=fz, svl_bits=256)
    w = q.pack_weights(rhs, scale, bias=bias, target=t)
    lo, hi = (-0.5, 0.75) if tight else (-np.inf, np.inf)
    fast = q.gemm_packed(lhs, w, clamp_min=lo, clamp_max=hi, target=t)
    slow = q.gemm_packed(lhs, w, clamp_min=lo, clamp_max=hi, target=t, fast=False)
    assert np.array_equal(fast.view(np.uint32), slow.view(np.uint32))
