"""qp8_f32_qb4w_gemm: golden vectors (SME2 and XNNPACK's NEON path), tiling, exact fast path, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref.golden import bundled_golden_dir, check_file
from kleidiref.kai import qb4w_common as common
from kleidiref.kai.layouts import Qsi4c32pLayout
from kleidiref.kai.pack import kai_lhs_quant_pack_qai8dxp_f32
from kleidiref.numerics import bf16_to_f32
from kleidiref.quant import qb4
from kleidiref.quant.qai8dx import _quantize_literal, quantize_qai8dx
from kleidiref.targets import NEON_ONLY, SUPPORTED_SVLS, Target
from kleidiref.testing.strategies import activations, block_scales_bf16, int4_weights
from kleidiref.variants import qp8_f32_qb4w_gemm as q

GOLDEN_SME2 = sorted(bundled_golden_dir().glob("qp8_f32_qb4w_gemm__*.npz"))
GOLDEN_NEON = sorted(bundled_golden_dir().glob("qp8_f32_qb4w_gemm_neon__*.npz"))
KERNELS = [q.SME2_MOPA, q.SME2_DOT, q.NEON_I8MM, q.NEON_I8MM_GEMV, q.NEON_DOT, q.NEON_DOT_GEMV]
M4 = Target(svl_bits=512, name="m4")


def _problem(
    m: int, n: int, k: int, bl: int, seed: int = 0, scale_lo: float = 0.005, scale_hi: float = 0.05
) -> tuple[NDArray[Any], ...]:
    rng = np.random.default_rng(seed)
    lhs = (rng.standard_normal((m, k)) * 2).astype(np.float32)
    codes = rng.integers(-8, 8, (n, k)).astype(np.int8)
    scales = qb4.f32_scales_to_bf16(rng.uniform(scale_lo, scale_hi, (n, k // bl)).astype(np.float32))
    bias = rng.standard_normal(n).astype(np.float32)
    return lhs, codes, scales, bias


def _pack(
    kcls: type[Any],
    svl: int,
    lhs: NDArray[Any],
    codes: NDArray[Any],
    scales: NDArray[Any],
    bias: NDArray[Any],
    bl: int,
) -> tuple[Any, NDArray[np.uint8], NDArray[np.uint8]]:
    kern = kcls(svl)
    p = kern.tile_params()
    lp = kai_lhs_quant_pack_qai8dxp_f32(svl).pack(lhs, mr=p.mr, kr=p.kr, sr=p.sr)
    n, k = codes.shape
    u = qb4.pack_nibbles(codes)
    if kern.isa == "sme2":
        rp = q.kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(svl).pack(
            u, scales, bias, nr=p.nr, kr=p.kr, sr=p.sr, bl=bl
        )
    else:
        rp = q.xnn_pack_kai_qb4_weights_and_biases(u, scales, bias, n=n, k=k, bl=bl, kr=p.kr, sr=p.sr, nr=p.nr)
    return kern, lp, rp


def _bits(x: NDArray[np.float32]) -> NDArray[np.uint32]:
    return x.view(np.uint32)


def test_golden_file_counts() -> None:
    assert len(GOLDEN_SME2) == 75
    assert len(GOLDEN_NEON) == 16


@pytest.mark.parametrize("path", GOLDEN_SME2 + GOLDEN_NEON, ids=lambda p: Path(p).stem)
def test_golden(path: Path) -> None:
    res = check_file(path)
    assert res.ok, [(f.name, f.detail) for f in res.fields if not f.ok] or res.message


@pytest.mark.parametrize("mode", ["exact", "unfolded"])
def test_golden_through_other_paths(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The float64-exact path and the integer-BLAS path reproduce the vectors too."""
    orig = common.prepare_rhs

    def prep(*a: Any, **kw: Any) -> common.PreparedRhs:
        r = orig(*a, **kw)
        if mode == "exact":
            return dataclasses.replace(r, fast=False)
        if r.fast and r.folded:
            st_ = r.w.reshape(r.n, r.k // r.bl, r.bl).transpose(1, 2, 0).astype(np.float32)
            return dataclasses.replace(r, folded=False, stack=np.ascontiguousarray(st_))
        return r

    monkeypatch.setattr(q, "prepare_rhs", prep)
    for path in GOLDEN_SME2[::7] + GOLDEN_NEON:
        res = check_file(path)
        assert res.ok, (path.name, [(f.name, f.detail) for f in res.fields if not f.ok] or res.message)


@given(
    data=st.data(),
    m=st.integers(1, 9),
    n=st.integers(1, 20),
    nb=st.integers(1, 4),
    bl=st.sampled_from([32, 64, 128, 256]),
    kind=st.sampled_from(["mopa", "sme2_dot", "neon"]),
    wide=st.booleans(),
    fz=st.booleans(),
    extreme=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_fast_path_equals_exact_emulation(
    data: st.DataObject, m: int, n: int, nb: int, bl: int, kind: str, wide: bool, fz: bool, extreme: bool
) -> None:
    """Property: the BLAS fast path is bit-identical to the per-step numerics.fma32 emulation."""
    k = nb * bl
    lhs = data.draw(activations(shape=(m, k), outliers=True, constant_rows=True, zero_rows=True, negative_rows=True))
    codes = data.draw(int4_weights(shape=(n, k)))
    # wide: block scales 2**-20 .. 2**13 mixed in one row; else 2**-8 .. 2**-5 (0.004 .. 0.06)
    scales = data.draw(
        block_scales_bf16(
            n=n, num_blocks=nb, min_exponent=-20 if wide else -8, max_exponent=13 if wide else -5, extreme_ranges=wide
        )
    )
    bias = data.draw(activations(shape=(1, n)))[0]
    if extreme:  # extreme codes and one-signed rows push |isum| over 2**16 when bl >= 128
        codes = np.where(codes < 0, -8, 7).astype(np.int8)
        lhs = np.abs(lhs) + np.float32(1)
    from kleidiref.quant.qai8dx import quantize_qai8dx

    qv, dq, zp = quantize_qai8dx(lhs, k_block_len=4)
    w, sc = codes, scales
    rsum = common.rsum_chain(
        w.astype(np.int64).reshape(n, -1, 32).sum(axis=2),
        np.repeat(bf16_to_f32(sc), bl // 32, axis=1),
        fused=True,
    )
    fast = common.prepare_rhs(w, sc, rsum, bias, bl)
    exact = dataclasses.replace(fast, fast=False)
    neg = (-zp.astype(np.int64)).astype(np.int32)
    lo, hi = np.float32(-np.inf), np.float32(np.inf)
    a = common.qb4w_matmul(qv, neg, dq, fast, kind, lo, hi, fz=fz)  # type: ignore[arg-type]
    b = common.qb4w_matmul(qv, neg, dq, exact, kind, lo, hi, fz=fz)  # type: ignore[arg-type]
    assert np.array_equal(_bits(a), _bits(b))


def test_large_block_sums_take_the_exact_step() -> None:
    """bl = 256 with all-127 codes and w = -8: |isum| = 260096 > 2**16 (per-block fallback)."""
    m, n, bl, k = 3, 5, 256, 512
    qv = np.full((m, k), 127, dtype=np.int8)
    w = np.full((n, k), -8, dtype=np.int8)
    sc = qb4.f32_scales_to_bf16(np.full((n, k // bl), 0.0123, dtype=np.float32))
    rsum = np.full(n, -1.5, dtype=np.float32)
    bias = np.zeros(n, dtype=np.float32)
    fast = common.prepare_rhs(w, sc, rsum, bias, bl)
    assert fast.fast and not fast.folded
    exact = dataclasses.replace(fast, fast=False)
    neg, dq = np.full(m, 3, dtype=np.int32), np.full(m, 0.01, dtype=np.float32)
    lo, hi = np.float32(-np.inf), np.float32(np.inf)
    for kind in ("mopa", "sme2_dot", "neon"):
        a = common.qb4w_matmul(qv, neg, dq, fast, kind, lo, hi)
        b = common.qb4w_matmul(qv, neg, dq, exact, kind, lo, hi)
        assert np.array_equal(_bits(a), _bits(b))


@pytest.mark.parametrize("m", [1, 6, 33])
@pytest.mark.parametrize("i8mm", [True, False])
def test_gemm_default_is_xnnpack_neon_path(m: int, i8mm: bool) -> None:
    t = Target(svl_bits=512, i8mm=i8mm)
    kcls = q.select_kernel(t, m)
    assert kcls.isa == "neon" and kcls.gemv == (m == 1)
    assert ("i8mm" in kcls.name or "1x8" in kcls.name) == i8mm
    lhs, codes, scales, bias = _problem(m, 23, 128, 64, seed=m)
    out = q.gemm(lhs, codes, scales, bl=64, bias=bias, clamp_min=-1.5, clamp_max=1.75, target=t)
    kern, lp, rp = _pack(kcls, 512, lhs, codes, scales, bias, 64)
    dst = np.zeros((m, 23), dtype=np.float32)
    kern.run_matmul(m, 23, 128, 64, lp, rp, dst, 23 * 4, 4, -1.5, 1.75)
    assert np.array_equal(_bits(out), _bits(dst))
    assert "no SME2 qb4w branch" in q.emulated_path(t, m)


@pytest.mark.parametrize("m", [1, 9])
def test_sme2_kernels_by_name_and_svl(m: int) -> None:
    lhs, codes, scales, bias = _problem(m, 40, 128, 32, seed=7)
    name = q.SME2_DOT.name if m == 1 else q.SME2_MOPA.name
    outs = [
        q.gemm(lhs, codes, scales, bl=32, bias=bias, kernel=name, target=Target(svl_bits=s)) for s in SUPPORTED_SVLS
    ]
    for o in outs[1:]:
        assert np.array_equal(_bits(o), _bits(outs[0]))
    kern, lp, rp = _pack(q.SME2_DOT if m == 1 else q.SME2_MOPA, 256, lhs, codes, scales, bias, 32)
    dst = np.zeros((m, 40), dtype=np.float32)
    kern.run_matmul(m, 40, 128, 32, lp, rp, dst, 160, 4, -np.inf, np.inf)
    assert np.array_equal(_bits(outs[0]), _bits(dst))


def test_input_forms_and_prepared_weights() -> None:
    lhs, codes, scales, bias = _problem(4, 13, 64, 32, seed=3)
    ref = q.gemm(lhs, codes, scales, bl=32, bias=bias, target=M4)
    nib = qb4.pack_nibbles(codes)
    assert np.array_equal(_bits(q.gemm(lhs, nib, scales, bl=32, bias=bias, target=M4)), _bits(ref))
    t_codes = np.ascontiguousarray(codes.T)
    got = q.gemm(lhs, t_codes, scales, bl=32, bias=bias, transpose_rhs=True, target=M4)
    assert np.array_equal(_bits(got), _bits(ref))  # kxn packer: same bytes on real columns
    prep = q.prepare_weights(codes, scales, bl=32, bias=bias, target=M4)
    assert np.array_equal(_bits(q.gemm(lhs, prep, target=M4)), _bits(ref))
    assert np.array_equal(_bits(q.gemm(lhs[:1], prep, target=M4)), _bits(ref[:1]))  # GEMV sibling, same RHS
    with pytest.raises(ValueError, match="PreparedQb4w"):
        q.gemm(lhs, prep, scales, target=M4)
    with pytest.raises(ValueError, match="packed for"):
        q.gemm(lhs, prep, target=M4, kernel=q.SME2_MOPA.name)


def test_packers_padding_and_bias_patch() -> None:
    n, k, bl = 6, 64, 32
    _, codes, scales, bias = _problem(1, n, k, bl, seed=11)
    u = qb4.pack_nibbles(codes)
    rp = q.xnn_pack_kai_qb4_weights_and_biases(u, scales, bias, n=n, k=k, bl=bl, kr=16, sr=2)
    w, sc, _rsum, b = Qsi4c32pLayout(4, bl, 8, 8, k, "qsi4c32p").decode(rp)
    assert np.array_equal(w[:n], codes) and np.array_equal(w[n:], np.stack([codes[-1]] * 2))
    assert np.array_equal(b[:n], bias) and np.all(b[n:] == 0)  # XNNPACK patches real channels only
    assert np.array_equal(sc[n:], np.stack([scales[-1]] * 2))
    rk = q.xnn_pack_kai_qb4_weights_and_biases(
        qb4.pack_nibbles(codes, "kxn"), scales, bias, n=n, k=k, bl=bl, kr=16, sr=2, transpose_weights=True
    )
    stride = Qsi4c32pLayout(4, bl, 8, n, k, "qsi4c32p").stride
    assert np.array_equal(rk[:stride], rp[:stride])  # first block has no padded column
    sme = q.kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(128).pack(u, scales, bias, nr=16, kr=8, sr=2, bl=bl)
    w2, _, _, b2 = Qsi4c32pLayout(16, bl, 4, 16, k, "ps1s0nrx4").decode(sme)
    assert np.array_equal(w2[:n], codes) and np.all(b2[n:] == bias[-1])  # KleidiAI replicates N-1


def test_select_kernel_without_neon_dotprod() -> None:
    with pytest.raises(ValueError, match="init_qp8_f32_qb4w_gemm_config"):
        q.select_kernel(Target(svl_bits=512, i8mm=False, dotprod=False), 4)
    with pytest.raises(ValueError, match="KleidiAI"):
        q.select_kernel(M4.replace(kleidiai=False), 4)
    assert q.select_kernel(NEON_ONLY, 4) is q.NEON_I8MM


def test_creation_errors() -> None:
    lhs, codes, scales, _bias = _problem(2, 5, 64, 32)
    with pytest.raises(ValueError, match="XNN_MIN_BLOCKSIZE"):
        q.gemm(lhs[:, :48], codes[:, :48], scales[:, :1], bl=48, target=M4)
    l96, c96, s96, _ = _problem(2, 5, 96, 32)
    with pytest.raises(ValueError, match=r"k % bl"):
        q.gemm(l96, c96, s96[:, :1], bl=64, target=M4)
    with pytest.raises(ValueError, match="check_kernel_zero_point_is_8_qu8"):
        q.prepare_weights(codes, scales, bl=32, kernel_zero_point=0, target=M4)
    with pytest.raises(ValueError, match="check_kernel_zero_point_is_8_qu8"):
        q.gemm(lhs, codes, scales, bl=32, kernel_zero_point=7, target=M4)
    for bad in (0x0000, 0xBC00, 0x7F80, 0x7FC0, 0x0010):
        s2 = scales.copy()
        s2[1, 1] = bad
        with pytest.raises(ValueError, match="check_block_size"):
            q.gemm(lhs, codes, s2, bl=32, target=M4)


def test_type_and_shape_errors() -> None:
    lhs, codes, scales, bias = _problem(2, 5, 64, 32)
    with pytest.raises(TypeError, match="float32"):
        q.gemm(lhs.astype(np.float64), codes, scales, bl=32, target=M4)
    with pytest.raises(TypeError, match="int8"):
        q.gemm(lhs, codes.astype(np.int16), scales, bl=32, target=M4)
    with pytest.raises(TypeError, match="uint16"):
        q.gemm(lhs, codes, scales.astype(np.float32), bl=32, target=M4)
    with pytest.raises(ValueError, match="shape"):
        q.gemm(lhs, codes, scales[:, :1], bl=32, target=M4)
    with pytest.raises(TypeError, match="bias"):
        q.gemm(lhs, codes, scales, bl=32, bias=bias[:3], target=M4)
    with pytest.raises(ValueError, match="K mismatch"):
        q.gemm(lhs[:, :32], codes, scales, bl=32, target=M4)
    with pytest.raises(TypeError, match="scales_bf16 and bl"):
        q.gemm(lhs, codes, scales, target=M4)
    with pytest.raises(ValueError, match="one row"):
        q.gemm(lhs, codes, scales, bl=32, target=M4, kernel=q.NEON_DOT_GEMV.name)
    with pytest.raises(ValueError, match="not a qp8_f32_qb4w kernel"):
        q.gemm(lhs, codes, scales, bl=32, target=M4, kernel="kai_nope")


def test_kernel_asserts_and_short_buffers() -> None:
    m, n, k, bl = 3, 9, 64, 32
    lhs, codes, scales, bias = _problem(m, n, k, bl)
    kern, lp, rp = _pack(q.SME2_MOPA, 512, lhs, codes, scales, bias, bl)
    dst = np.zeros((m, n), dtype=np.float32)
    with pytest.raises(ValueError, match=r"bl % kai_bl"):
        kern.run_matmul(m, n, k, 48, lp, rp, dst, n * 4, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match=r"k % bl"):
        kern.run_matmul(m, n, 96, 64, lp, rp, dst, n * 4, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="dst_stride_col"):
        kern.run_matmul(m, n, k, bl, lp, rp, dst, n * 4, 8, -1.0, 1.0)
    with pytest.raises(ValueError, match="m > 0"):
        kern.run_matmul(0, n, k, bl, lp, rp, dst, n * 4, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="lhs_packed"):
        kern.run_matmul(m, n, k, bl, lp[:-1], rp, dst, n * 4, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="rhs_packed"):
        kern.run_matmul(m, n, k, bl, lp, rp[:-1], dst, n * 4, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="dst"):
        kern.run_matmul(m, n, k, bl, lp, rp, np.zeros(m * n - 1, dtype=np.float32), n * 4, 4, -1.0, 1.0)
    with pytest.raises(ValueError, match="m == 1"):
        q.SME2_DOT(512).run_matmul(2, n, k, bl, lp, rp, dst, n * 4, 4, -1.0, 1.0)
    with pytest.raises(TypeError, match="needs bl"):
        kern.get_rhs_packed_offset(0, k)
    with pytest.raises(ValueError, match="n_idx % nr"):
        kern.get_rhs_packed_offset(3, k, bl)
    with pytest.raises(ValueError, match="m_idx % mr"):
        q.NEON_I8MM().get_lhs_packed_offset(2, k)
    neon = q.NEON_DOT()
    neon.run_matmul(0, n, k, bl, lp, rp, dst, n * 4, 4, -1.0, 1.0)  # m == 0 returns, as the C


def test_packer_asserts() -> None:
    _, codes, scales, bias = _problem(1, 5, 64, 32)
    u = qb4.pack_nibbles(codes)
    sme = q.kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(512)
    with pytest.raises(ValueError, match="block_length == 4"):
        sme.pack(u, scales, bias, nr=64, kr=16, sr=2, bl=32)
    with pytest.raises(ValueError, match="nr % kai_nr_multiple_of"):
        sme.pack(u, scales, bias, nr=6, kr=8, sr=2, bl=32)
    neon = q.kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0()
    with pytest.raises(ValueError, match=r"kr % sr"):
        neon.pack(u, scales, bias, nr=4, kr=16, sr=3, bl=32)
    with pytest.raises(ValueError, match=r"bl % kr"):
        neon.pack(u, scales, bias, nr=4, kr=64, sr=2, bl=32)
    out = np.zeros(neon.get_rhs_packed_size(5, 64, 4, 16, 2, 32), dtype=np.uint8)
    bad = q.kai_rhs_pack_qsi4c32p_params(rhs_zero_point=0)
    with pytest.raises(ValueError, match="rhs_zero_point == 8"):
        neon.run_rhs_pack(1, 5, 64, 4, 16, 2, 32, u, 32, None, scales, 4, out, 0, bad)
    with pytest.raises(ValueError, match="lhs_zero_point == 1"):
        neon.run_rhs_pack(
            1,
            5,
            64,
            4,
            16,
            2,
            32,
            u,
            32,
            None,
            scales,
            4,
            out,
            0,
            q.kai_rhs_pack_qsi4c32p_params(lhs_zero_point=0),
        )
    with pytest.raises(ValueError, match="num_groups == 1"):
        neon.run_rhs_pack(2, 5, 64, 4, 16, 2, 32, u, 32, None, scales, 4, out, 0, q.kai_rhs_pack_qsi4c32p_params())
    with pytest.raises(ValueError, match="rhs_packed"):
        neon.run_rhs_pack(1, 5, 64, 4, 16, 2, 32, u, 32, None, scales, 4, out[:-1], 0, q.kai_rhs_pack_qsi4c32p_params())
    with pytest.raises(ValueError, match="rhs"):
        neon.run_rhs_pack(1, 5, 64, 4, 16, 2, 32, u[:4], 32, None, scales, 4, out, 0, q.kai_rhs_pack_qsi4c32p_params())


def test_fz_changes_nothing_on_normal_data() -> None:
    lhs, codes, scales, bias = _problem(6, 19, 128, 64, seed=9)
    for kernel in (None, q.SME2_MOPA.name):
        a = q.gemm(lhs, codes, scales, bl=64, bias=bias, target=M4, kernel=kernel)
        b = q.gemm(lhs, codes, scales, bl=64, bias=bias, target=M4.replace(flush_to_zero=False), kernel=kernel)
        assert np.array_equal(_bits(a), _bits(b))


def test_neon_clamp_propagates_nan_sme2_clamps_it() -> None:
    m, n, k, bl = 2, 4, 32, 32
    lhs, codes, scales, _ = _problem(m, n, k, bl)
    bias = np.array([np.nan, 0.0, np.inf, -np.inf], dtype=np.float32)
    neon = q.gemm(lhs, codes, scales, bl=bl, bias=bias, clamp_min=-1.0, clamp_max=1.0, target=M4)
    sme2 = q.gemm(
        lhs,
        codes,
        scales,
        bl=bl,
        bias=bias,
        clamp_min=-1.0,
        clamp_max=1.0,
        target=M4,
        kernel=q.SME2_MOPA.name,
    )
    assert np.all(_bits(neon[:, 0]) == 0x7FC00000)  # FMAX/FMIN propagate NaN (default NaN here)
    assert np.all(sme2[:, 0] == -1.0)  # FCLAMP: NaN -> min
    assert np.all(neon[:, 2] == 1.0) and np.all(neon[:, 3] == -1.0)


@pytest.mark.slow
def test_llm_size_against_exact_path() -> None:
    lhs, codes, scales, bias = _problem(8, 512, 2048, 128, seed=2)
    prep = q.prepare_weights(codes, scales, bl=128, bias=bias, target=M4)
    a = q.gemm(lhs, prep, target=M4)
    exact = dataclasses.replace(prep, operand=dataclasses.replace(prep.operand, fast=False))
    assert np.array_equal(_bits(a), _bits(q.gemm(lhs, exact, target=M4)))


@given(
    m=st.integers(1, 5),
    k=st.integers(1, 70),
    kbl=st.sampled_from([4, 8]),
    seed=st.integers(0, 2**32 - 1),
    special=st.sampled_from(["none", "ties", "const", "zero", "huge", "nonfinite"]),
)
@settings(max_examples=200, deadline=None)
def test_fast_lhs_quantizer_equals_qai8dx(m: int, k: int, kbl: int, seed: int, special: str) -> None:
    from kleidiref.quant.qai8dx import quantize_qai8dx

    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * 10.0 ** rng.integers(-20, 20)).astype(np.float32)
    if special == "ties":
        x = (rng.integers(-40, 40, (m, k)) / 2).astype(np.float32)
        x[0, 0] = np.float32(0.49999997)
    elif special == "const":
        x[:] = x[0, 0]
    elif special == "zero":
        x[0] = 0
    elif special == "huge":
        x[:, ::2] = np.float32(3e38)
        x[:, 1::2] = np.float32(-3e38)
    elif special == "nonfinite":
        x[0, rng.integers(0, k)] = rng.choice([np.inf, -np.inf, np.nan])
    a = _quantize_literal(x, k_block_len=kbl)
    b = quantize_qai8dx(x, k_block_len=kbl)
    pairs: list[tuple[NDArray[Any], NDArray[Any]]] = list(zip(a, b, strict=True))
    for u, v in pairs:
        assert u.dtype == v.dtype and np.array_equal(u, v)


@pytest.mark.parametrize("kind", ["mopa", "sme2_dot", "neon"])
def test_column_tiling_of_the_emulation(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache tiling over columns inside qb4w_matmul changes no bit (incl. the exact path)."""
    lhs, codes, scales, bias = _problem(7, 300, 256, 128, seed=4)
    prep = q.prepare_weights(codes, scales, bl=128, bias=bias, target=M4)
    qv, dq, zp = quantize_qai8dx(lhs, k_block_len=8)
    neg = (-zp.astype(np.int64)).astype(np.int32)
    lo, hi = np.float32(-2.0), np.float32(3.0)
    whole = common.qb4w_matmul(qv, neg, dq, prep.operand, kind, lo, hi)  # type: ignore[arg-type]
    monkeypatch.setattr(common, "_TILE", 7 * 64)
    for op in (prep.operand, dataclasses.replace(prep.operand, fast=False)):
        tiled = common.qb4w_matmul(qv, neg, dq, op, kind, lo, hi)  # type: ignore[arg-type]
        assert np.array_equal(_bits(tiled), _bits(whole))


@pytest.mark.parametrize("kind", ["mopa", "sme2_dot", "neon"])
def test_fz_epilogue_flushes_tiny_results(kind: str) -> None:
    """FPCR.FZ: a product facc * dq that is tiny before rounding becomes a signed zero."""
    from kleidiref.numerics import fma32, fmax_fmin

    m, n, k, bl = 4, 6, 64, 32
    _, codes, scales, _ = _problem(m, n, k, bl, seed=1)
    rng = np.random.default_rng(2)
    qv = rng.integers(-128, 128, (m, k)).astype(np.int8)
    neg = rng.integers(-127, 128, m).astype(np.int32)
    dq = np.array([2.0**-120, 2.0**-130, 1e-3, 2.0**-127], dtype=np.float32)  # normal, subnormal, ...
    bias = np.array([0.0, -0.0, 2.0**-140, 1.0, -(2.0**-126), 0.0], dtype=np.float32)
    rsum = common.rsum_chain(
        codes.astype(np.int64).reshape(n, -1, 32).sum(axis=2),
        np.repeat(bf16_to_f32(scales), 1, axis=1),
        fused=True,
    )
    prep = common.prepare_rhs(codes, scales, rsum, bias, bl)
    lo, hi = np.float32(-np.inf), np.float32(np.inf)
    got = common.qb4w_matmul(qv, neg, dq, prep, kind, lo, hi, fz=True)  # type: ignore[arg-type]
    # Reference: the exact chain (fz cannot matter there), then every step with numerics.fma32(fz=True).
    isum = common.block_sums_exact(qv, codes, bl).astype(np.float32)
    d = bf16_to_f32(scales)
    facc = fma32(isum[0], d[:, 0][None, :], np.float32(-0.0) if kind == "mopa" else np.float32(0.0), fz=True)
    for qb in range(1, k // bl):
        facc = fma32(isum[qb], d[:, qb][None, :], facc, fz=True)
    facc = fma32(neg.astype(np.float32)[:, None], rsum[None, :], facc, fz=True)
    if kind == "sme2_dot":
        y = fma32(facc, dq[:, None], bias[None, :], fz=True)
    else:
        y = fma32(fma32(facc, dq[:, None], np.float32(-0.0), fz=True), np.float32(1.0), bias[None, :], fz=True)
    want = fmax_fmin(y, lo, hi)
    assert np.array_equal(_bits(got), _bits(want))
    assert not np.any((got != 0) & (np.abs(got) < np.finfo(np.float32).tiny))
