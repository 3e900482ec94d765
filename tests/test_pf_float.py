"""pf32_gemm and pf16_gemm: golden vectors, tiling and SVL invariance, packers, error paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kleidiref import GENERIC_SME1, NEON_ONLY, Target, golden
from kleidiref.kai.layouts import SmeBiasRhsLayout
from kleidiref.numerics import fma32
from kleidiref.targets import SUPPORTED_SVLS
from kleidiref.testing.strategies import activations, svls
from kleidiref.variants import pf16_gemm, pf32_gemm

GOLDEN_DIR = golden.bundled_golden_dir()
FLOAT_FILES = sorted(GOLDEN_DIR.glob("pf32_gemm*.npz")) + sorted(GOLDEN_DIR.glob("pf16_gemm*.npz"))

MOPA = {
    "pf32": [pf32_gemm.SME2_MOPA, pf32_gemm.SME1_MOPA],
    "pf16": [pf16_gemm.SME2_MOPA, pf16_gemm.SME1_MOPA],
}
GEMV = {
    "pf32": [pf32_gemm.SME2_GEMV, pf32_gemm.SME1_GEMV],
    "pf16": [pf16_gemm.SME2_GEMV, pf16_gemm.SME1_GEMV],
}
MOD: dict[str, Any] = {"pf32": pf32_gemm, "pf16": pf16_gemm}
DT = {"pf32": np.float32, "pf16": np.float16}


def bits(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint16)


def test_all_float_golden_files_are_bundled() -> None:
    assert len(FLOAT_FILES) == 260  # 80 + 80 + 50 + 50


@pytest.mark.parametrize("path", FLOAT_FILES, ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    r = golden.check_file(path)
    assert r.ok, golden.format_table([r])


def _problem(var: str, m: int, n: int, k: int, seed: int) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(seed)
    dt = DT[var]
    scale = 1.0 if var == "pf32" else 0.5
    a = (rng.standard_normal((m, k)) * scale).astype(dt)
    w = (rng.standard_normal((n, k)) * scale).astype(dt)
    b = rng.standard_normal(n).astype(dt)
    return a, w, b


def _packers(var: str, svl: int) -> tuple[Any, Any, Any]:
    mod = MOD[var]
    if var == "pf32":
        return (
            mod.kai_lhs_pack_f32p2vlx1_f32_sme(svl),
            mod.kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(svl),
            mod.kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme(svl),
        )
    return (
        mod.kai_lhs_pack_x16p2vlx2_x16_sme(svl),
        mod.kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme(svl),
        mod.kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme(svl),
    )


def _drawn(data: st.DataObject, var: str, m: int, n: int, k: int) -> tuple[Any, Any, Any]:
    """Operands from kleidiref.testing.strategies (outlier/constant/zero/negative LHS rows)."""
    dt = DT[var]
    a = data.draw(
        activations(shape=(m, k), dtype=dt, outliers=True, constant_rows=True, zero_rows=True, negative_rows=True)
    )
    w = data.draw(activations(shape=(n, k), dtype=dt))
    b = data.draw(activations(shape=(1, n), dtype=dt))[0]
    return a, w, b


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    var=st.sampled_from(["pf32", "pf16"]),
    svl=svls(max_svl=512),
    m=st.integers(1, 40),
    n=st.integers(1, 70),
    k=st.integers(1, 20),
    sme1=st.booleans(),
)
def test_tiling_invariance(data: st.DataObject, var: str, svl: int, m: int, n: int, k: int, sme1: bool) -> None:
    """Each m_step x n_step portion, run at KleidiAI's offsets into a padded dst, equals the whole."""
    a, w, b = _drawn(data, var, m, n, k)
    lhs_p, rhs_p, _ = _packers(var, svl)
    kern = MOPA[var][int(sme1)](svl)
    la, ra = lhs_p.pack(a), rhs_p.pack(w, b)
    item = np.dtype(DT[var]).itemsize
    whole = np.zeros((m, n), DT[var])
    kern.run_matmul(m, n, k, la, ra, whole, n * item, item, -np.inf, np.inf)
    pad = n + 3
    sentinel = np.full(m * pad * item, 0xA5, np.uint8)
    ms, ns = kern.get_m_step(), kern.get_n_step()
    for m0 in range(0, m, ms):
        for n0 in range(0, n, ns):
            lo = kern.get_lhs_packed_offset(m0, k)
            ro = kern.get_rhs_packed_offset(n0, k)
            do = kern.get_dst_offset(m0, n0, pad * item)
            kern.run_matmul(
                min(ms, m - m0), min(ns, n - n0), k, la[lo:], ra[ro:], sentinel[do:], pad * item, item, -np.inf, np.inf
            )
    out = sentinel.view(DT[var]).reshape(m, pad)
    assert np.array_equal(bits(out[:, :n]), bits(whole))
    assert (sentinel.reshape(m, pad * item)[:, n * item :] == 0xA5).all(), "padding columns were written"


@settings(max_examples=15, deadline=None)
@given(
    data=st.data(),
    var=st.sampled_from(["pf32", "pf16"]),
    m=st.integers(1, 20),
    n=st.integers(1, 40),
    k=st.integers(1, 24),
    clamp=st.booleans(),
)
def test_svl_invariance(data: st.DataObject, var: str, m: int, n: int, k: int, clamp: bool) -> None:
    """Tiling changes with the SVL, the per-element arithmetic does not: same bits at every SVL."""
    a, w, b = _drawn(data, var, m, n, k)
    lo, hi = (-0.5, 0.75) if clamp else (-np.inf, np.inf)
    outs = [
        MOD[var].gemm(a, w, bias=b, clamp_min=lo, clamp_max=hi, target=Target(svl_bits=s, flush_to_zero=False))
        for s in SUPPORTED_SVLS
    ]
    for o in outs[1:]:
        assert np.array_equal(bits(o), bits(outs[0]))


@pytest.mark.parametrize("var", ["pf32", "pf16"])
@pytest.mark.parametrize("svl", SUPPORTED_SVLS)
def test_nxk_and_kxn_packers_identical(var: str, svl: int) -> None:
    a, w, b = _problem(var, 3, 37, 9, svl)
    _, nxk, kxn = _packers(var, svl)
    assert np.array_equal(nxk.pack(w, b), kxn.pack(np.ascontiguousarray(w.T), b))
    out_t = MOD[var].gemm(a, np.ascontiguousarray(w.T), bias=b, transpose_rhs=True, target=Target(svl_bits=svl))
    out = MOD[var].gemm(a, w, bias=b, target=Target(svl_bits=svl))
    assert np.array_equal(bits(out), bits(out_t))


@pytest.mark.parametrize("var", ["pf32", "pf16"])
def test_gemv_matches_mopa_and_kernel_choice(var: str) -> None:
    a, w, b = _problem(var, 1, 300, 33, 7)
    t = Target(svl_bits=256, flush_to_zero=False)
    gemv = MOD[var].gemm(a, w, bias=b, target=t)
    mopa = MOD[var].gemm(a, w, bias=b, target=t, kernel=MOPA[var][0].name)
    assert np.array_equal(bits(gemv), bits(mopa))
    assert MOD[var].select_kernel(t, 1) is GEMV[var][0]
    assert MOD[var].select_kernel(t, 2) is MOPA[var][0]
    assert MOD[var].select_kernel(GENERIC_SME1, 1) is GEMV[var][1]
    with pytest.raises(ValueError, match="no SME"):
        MOD[var].select_kernel(NEON_ONLY, 4)


def test_pf32_matches_fma32_loop() -> None:
    """The packed-kernel path equals the spec's oracle formula: an fma32 chain seeded with the bias."""
    a, w, b = _problem("pf32", 5, 11, 13, 3)
    acc = fma32(np.float32(1), b, np.float32(0))[None, :].repeat(5, 0)
    for k in range(13):
        acc = fma32(a[:, k : k + 1], w[:, k][None, :], acc)
    out = pf32_gemm.gemm(a, w, bias=b, target=Target(flush_to_zero=False))
    assert np.array_equal(bits(out), bits(acc))


def test_pf16_sme1_gemv_rounds_per_k() -> None:
    """kai_..._1x8vl_sme_mla rounds once per k; the SME2 dot kernel once per pair.

    a = [1, 2**-11, 2**-24, 2**-24], w = 1: per pair, acc = 1 + 2**-11 + RN32(2**-24 + 2**-24)
    = 1 + 2**-11 + 2**-23 (above the f16 midpoint, RN16 -> 1 + 2**-10); per k, each 2**-24 is a
    binary32 tie that rounds away, leaving the f16 midpoint 1 + 2**-11, RN16 -> 1.0.
    """
    a = np.array([[1.0, 2.0**-11, 2.0**-24, 2.0**-24]], np.float16)
    w = np.ones((1, 4), np.float16)
    t2, t1 = Target(flush_to_zero=False), GENERIC_SME1.replace(flush_to_zero=False)
    assert pf16_gemm.gemm(a, w, target=t2)[0, 0] == np.float16(1 + 2.0**-10)
    assert pf16_gemm.gemm(a, w, target=t1)[0, 0] == np.float16(1.0)
    # The SME1 MOPA keeps the pair rounding of FMOPA: only the SME1 GEMV differs.
    mopa1 = pf16_gemm.gemm(a, w, target=t1, kernel=pf16_gemm.SME1_MOPA.name)
    assert mopa1[0, 0] == np.float16(1 + 2.0**-10)


def test_nan_clamp_sme2_vs_sme1() -> None:
    a = np.array([[np.inf, 1.0]], np.float32).repeat(2, 0)
    w = np.array([[0.0, 1.0], [1.0, 1.0]], np.float32)
    o2 = pf32_gemm.gemm(a, w, clamp_min=-3.0, clamp_max=3.0, target=Target())
    o1 = pf32_gemm.gemm(a, w, clamp_min=-3.0, clamp_max=3.0, target=GENERIC_SME1)
    assert o2[0, 0] == -3.0 and o2[0, 1] == 3.0  # FCLAMP: NaN -> min
    assert o1.view(np.uint32)[0, 0] == 0x7FC00000 and o1[0, 1] == 3.0


# ---------------------------------------------------------------- error paths


def test_bad_svl() -> None:
    with pytest.raises(ValueError, match="no SME CPU"):
        pf32_gemm.SME2_MOPA(384)
    with pytest.raises(TypeError):
        pf32_gemm.SME2_MOPA(512.0)  # type: ignore[arg-type]


def test_gemm_input_errors() -> None:
    a = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="float32"):
        pf32_gemm.gemm(a.astype(np.float64), np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="K mismatch"):
        pf32_gemm.gemm(a, np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="bias"):
        pf32_gemm.gemm(a, np.ones((4, 3), np.float32), bias=np.ones(3, np.float32))
    with pytest.raises(TypeError, match="float16"):
        pf16_gemm.gemm(a.astype(np.float16), np.ones((4, 3), np.float16), bias=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="not a pf32_gemm kernel"):
        pf32_gemm.gemm(a, np.ones((4, 3), np.float32), kernel=pf16_gemm.SME2_MOPA.name)


def test_kernel_argument_errors() -> None:
    k = pf32_gemm.SME2_MOPA(512)
    lhs_p, rhs_p, _ = _packers("pf32", 512)
    a, w, b = _problem("pf32", 4, 5, 6, 0)
    la, ra = lhs_p.pack(a), rhs_p.pack(w, b)
    dst = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="lhs_packed holds"):
        k.run_matmul(4, 5, 6, la[:-1], ra, dst, 20, 4, -np.inf, np.inf)
    with pytest.raises(ValueError, match="rhs_packed holds"):
        k.run_matmul(4, 5, 6, la, ra[:100], dst, 20, 4, -np.inf, np.inf)
    with pytest.raises(ValueError, match="dst holds"):
        k.run_matmul(4, 5, 6, la, ra, np.zeros(19, np.float32), 20, 4, -np.inf, np.inf)
    with pytest.raises(ValueError, match="dst_stride_col"):
        k.run_matmul(4, 5, 6, la, ra, dst, 20, 8, -np.inf, np.inf)
    with pytest.raises(ValueError, match="k must be >= 1"):
        k.run_matmul(4, 5, 0, la, ra, dst, 20, 4, -np.inf, np.inf)
    with pytest.raises(ValueError, match="not representable in binary32"):
        k.run_matmul(4, 5, 6, la, ra, dst, 20, 4, 0.1, np.inf)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(m_idx % mr == 0\)"):
        k.get_lhs_packed_offset(3, 6)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(n_idx % n_step == 0\)"):
        k.get_dst_offset(0, 5, 20)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(m == 1\)"):
        pf32_gemm.SME2_GEMV(512).run_matmul(2, 5, 6, a, 24, ra, dst, 20, 4, -np.inf, np.inf)
    with pytest.raises(TypeError, match="float32"):
        pf32_gemm.SME2_GEMV(512).run_matmul(1, 5, 6, a.astype(np.float64), 24, ra, dst, 20, 4, -np.inf, np.inf)


def test_packer_asserts() -> None:
    lhs_p, rhs_p, _ = _packers("pf32", 512)
    a = np.ones((2, 3), np.float32)
    out = np.zeros(lhs_p.get_lhs_packed_size(2, 3, 32, 1, 1), np.uint8)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(mr == 32\)"):
        lhs_p.run_lhs_pack(2, 3, 16, 1, 1, 0, a, 12, out)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(m_idx_start == 0\)"):
        lhs_p.run_lhs_pack(2, 3, 32, 1, 1, 1, a, 12, out)
    with pytest.raises(ValueError, match="lhs_packed holds"):
        lhs_p.run_lhs_pack(2, 3, 32, 1, 1, 0, a, 12, out[:10])
    with pytest.raises(TypeError, match="float32"):
        lhs_p.run_lhs_pack(2, 3, 32, 1, 1, 0, a.astype(np.float16), 12, out)
    w = np.ones((4, 3), np.float32)
    rout = np.zeros(rhs_p.get_rhs_packed_size(4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(bias != NULL\)"):
        rhs_p.run_rhs_pack(1, 4, 3, 32, 1, 1, 12, w, None, None, rout, 0, None)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(num_groups == 1\)"):
        rhs_p.run_rhs_pack(2, 4, 3, 32, 1, 1, 12, w, np.zeros(4, np.float32), None, rout, 0, None)
    with pytest.raises(ValueError, match=r"KAI_ASSUME\(nr == 32\)"):
        rhs_p.run_rhs_pack(1, 4, 3, 16, 1, 1, 12, w, np.zeros(4, np.float32), None, rout, 0, None)
    with pytest.raises(ValueError, match="rhs holds"):
        rhs_p.run_rhs_pack(1, 4, 3, 32, 1, 1, 12, w[:3], np.zeros(4, np.float32), None, rout, 0, None)


def test_registry_names() -> None:
    from kleidiref import get_ukernel, list_ukernels

    names = list_ukernels("pf32_gemm")
    assert "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa" in names
    assert len(list_ukernels("pf16_gemm")) == 7
    k = get_ukernel("kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot", 1024)
    assert (k.get_nr(), k.get_n_step()) == (64, 512)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no emulated KleidiAI ukernel"):
        get_ukernel("kai_matmul_clamp_nonsense")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(1, 12),
    nr=st.sampled_from([4, 8]),
    kr=st.sampled_from([1, 2]),
    f16=st.booleans(),
    nxk=st.booleans(),
)
def test_rhs_layout_encode_matches_element_order(n: int, k: int, nr: int, kr: int, f16: bool, nxk: bool) -> None:
    """The packers' one-copy block writer puts W[g*kr + r, b*nr + j] at (b, g, j, r), zero padded."""
    dt = np.float16 if f16 else np.float32
    w = np.arange(1, n * k + 1, dtype=dt).reshape(k, n)
    src = np.ascontiguousarray(w.T).T if nxk else w  # the nxk packers pass a transposed view
    nb, kp = -(-n // nr), -(-k // kr)
    want = np.zeros((nb, kp, nr, kr), dtype=dt)
    for b in range(nb):
        for g in range(kp):
            for j in range(nr):
                for r in range(kr):
                    if g * kr + r < k and b * nr + j < n:
                        want[b, g, j, r] = w[g * kr + r, b * nr + j]
    fmt = SmeBiasRhsLayout(np.dtype(dt), np.dtype(dt), nr, kr, n, k)
    buf = np.full(fmt.size(), 0xAB, dtype=np.uint8)
    bias = np.arange(n, dtype=dt) - 7
    fmt.encode_into(buf, src, bias)
    rows = buf.reshape(nb, fmt.stride)
    nbias = nr * np.dtype(dt).itemsize
    np.testing.assert_array_equal(rows[:, nbias:], want.reshape(nb, -1).view(np.uint8))
    got_bias = np.ascontiguousarray(rows[:, :nbias]).view(dt).reshape(-1)
    np.testing.assert_array_equal(got_bias[:n], bias)
    assert (got_bias[n:] == 0).all()
    w_back, b_back = fmt.decode(buf)[1], fmt.decode(buf)[0]
    np.testing.assert_array_equal(w_back[:k], w)
    np.testing.assert_array_equal(b_back, bias)


@pytest.mark.parametrize("layout", ["nxk", "kxn"])
@pytest.mark.parametrize("variant", ["pf32", "pf16"])
def test_rhs_pack_reads_a_strided_byte_buffer(layout: str, variant: str) -> None:
    """run_rhs_pack on a bytes buffer whose rows are padded: the same bytes as pack() of the matrix."""
    rng = np.random.default_rng(7)
    n, k, svl = 37, 19, 512
    dt = np.float32 if variant == "pf32" else np.float16
    mod: Any = pf32_gemm if variant == "pf32" else pf16_gemm
    name = (
        f"kai_rhs_pack_{layout}_f32p2vlx1biasf32_f32_f32_sme"
        if variant == "pf32"
        else f"kai_rhs_pack_{layout}_x16p2vlx2b_x16_x16_sme"
    )
    packer = getattr(mod, name)(svl)
    rows, cols = (n, k) if layout == "nxk" else (k, n)
    mat = rng.standard_normal((rows, cols)).astype(dt)
    bias = rng.standard_normal(n).astype(dt)
    stride = (cols + 5) * mat.itemsize
    raw = np.zeros((rows, cols + 5), dtype=dt)
    raw[:, :cols] = mat
    out = np.full(packer.get_rhs_packed_size(n, k), 0xCD, dtype=np.uint8)
    packer.run_rhs_pack(1, n, k, packer.get_n_step(), packer.kr, 1, stride, raw.tobytes(), bias, None, out, 0, None)
    np.testing.assert_array_equal(out, packer.pack(mat, bias))


_OUT_VALUES = [
    0.0,
    -0.0,
    6.1e-5,
    -6.1e-5,
    6.0e-5,
    3e-8,
    -3e-8,
    1.0,
    -1.0,
    0.5,
    65504.0,
    65520.0,
    -7e4,
    np.inf,
    -np.inf,
    np.nan,
    2.0**-25,
    1.0009765625,
    1.00048828125,
]


@settings(max_examples=200, deadline=None)
@given(
    acc=st.lists(
        st.sampled_from(_OUT_VALUES) | st.floats(width=32, min_value=-7e4, max_value=7e4), min_size=1, max_size=16
    ),
    lo=st.sampled_from([-np.inf, -1.0, -0.0, 0.0, 6e-5, 0.5, 1.0, np.inf]),
    hi=st.sampled_from([-np.inf, -1.0, -0.0, 0.0, 6e-5, 0.5, 1.0, np.inf]),
    sme1=st.booleans(),
    fz=st.booleans(),
)
def test_pf16_output_fast_equals_exact(acc: list[float], lo: float, hi: float, sme1: bool, fz: bool) -> None:
    """The pf16 kernels' float32-clamp-then-RN16 output stage gives the bits of RN16, FZ16, f16 clamp."""
    cls = pf16_gemm.SME1_MOPA if sme1 else pf16_gemm.SME2_MOPA
    kern = cls(512, fz=fz)
    a = np.array(acc, dtype=np.float32).reshape(1, -1)
    got = kern.epilogue(a, (np.float32(lo), np.float32(hi)))  # type: ignore[attr-defined]
    want = kern.epilogue_exact(a, (np.float32(lo), np.float32(hi)))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


def _lone_small_weights(data: st.DataObject, var: str, a: Any, w: Any, b: Any) -> tuple[Any, Any, Any]:
    """Operands where FZ / FZ16 shows: a column whose only weight is small, its bias 0 and its
    row's activations scaled so that the result is visible: a subnormal weight (flushed under
    FZ, else a normal product) or, pf32, a normal weight with a subnormal product."""
    a, w, b = a.copy(), w.copy(), b.copy()
    cases = [(1e-40, 1e30), (-2e-39, -1e29), (1e-30, 1e-10)] if var == "pf32" else [(1e-6, 1000.0), (-3e-5, 64.0)]
    n, k = w.shape
    for i, j in zip(range(k), data.draw(st.permutations(range(n)))[: data.draw(st.integers(0, 2))], strict=False):
        small, scale = data.draw(st.sampled_from(cases))
        w[j] = 0  # w is [N, K]
        w[j, i] = DT[var](small)
        b[j] = 0
        a[:, i] = DT[var](scale)
    return a, w, b


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    var=st.sampled_from(["pf32", "pf16"]),
    svl=svls(max_svl=512),
    m=st.sampled_from([1, 1, 2, 17]),
    n=st.integers(1, 70),
    k=st.integers(1, 24),
    fz=st.booleans(),
    sme1=st.booleans(),
    transpose=st.booleans(),
)
def test_gemm_packed_equals_gemm(
    data: st.DataObject, var: str, svl: int, m: int, n: int, k: int, fz: bool, sme1: bool, transpose: bool
) -> None:
    """Weights packed once: every call (the first decodes, later ones reuse) gives gemm()'s bits."""
    a, w, b = _lone_small_weights(data, var, *_drawn(data, var, m, n, k))
    t = (GENERIC_SME1 if sme1 else Target()).replace(svl_bits=svl, flush_to_zero=fz)
    rhs = np.ascontiguousarray(w.T) if transpose else w
    want = bits(MOD[var].gemm(a, rhs, bias=b, transpose_rhs=transpose, target=t))
    pw = MOD[var].pack_weights(rhs, bias=b, transpose_rhs=transpose, target=t)
    assert (pw.n, pw.k, pw.svl) == (n, k, svl)
    for _ in range(2):
        assert np.array_equal(bits(MOD[var].gemm_packed(a, pw, target=t)), want)
    assert len(pw.rhs_packed.__dict__["_cache"]) == 1  # decoded once, reused
    # The other kernel family on the same weights decodes under its own key, same bits.
    other = (MOPA if m == 1 else GEMV)[var][int(sme1)]
    if m == 1 or other not in GEMV[var]:
        got = MOD[var].gemm_packed(a, pw, target=t, kernel=other.name)
        assert np.array_equal(
            bits(got), bits(MOD[var].gemm(a, rhs, bias=b, transpose_rhs=transpose, target=t, kernel=other.name))
        )


@pytest.mark.parametrize("var", ["pf32", "pf16"])
@pytest.mark.parametrize("fz", [False, True])
def test_packed_rhs_kernels_whole_and_sub_tiles(var: str, fz: bool) -> None:
    """Every kernel on a PackedRhs equals the plain buffer; its n_step sub-tiles (offset views,
    which cannot use the decoding) equal the whole, and the decoding is read-only."""
    from kleidiref._buffers import as_packed_rhs

    svl, m, n, k = 256, 5, 70, 19
    a, w, b = _problem(var, m, n, k, 4)
    w[3], b[3], a[:, 2] = 0, 0, 1000  # w is [N, K]
    w[3, 2] = DT[var](1e-40 if var == "pf32" else 1e-6)  # FZ / FZ16 flush it: column 3 is 0, else not
    lhs_p, rhs_p, _ = _packers(var, svl)
    plain = rhs_p.pack(w, b)
    once = as_packed_rhs(plain)
    item = np.dtype(DT[var]).itemsize
    for kcls in MOPA[var] + GEMV[var]:
        kern, gemv = kcls(svl, fz=fz), kcls in GEMV[var]
        lhs = a[:1] if gemv else lhs_p.pack(a)

        def run(rhs: Any, nn: int, kern: Any = kern, gemv: bool = gemv, lhs: Any = lhs) -> Any:
            dst = np.zeros((1 if gemv else m, nn), DT[var])
            if gemv:
                kern.run_matmul(1, nn, k, lhs, k * item, rhs, dst, nn * item, item, -np.inf, np.inf)
            else:
                kern.run_matmul(m, nn, k, lhs, rhs, dst, nn * item, item, -np.inf, np.inf)
            return dst

        want = bits(run(plain, n))
        assert np.array_equal(bits(run(once, n)), want)
        assert once.__dict__["_cache"]  # the whole PackedRhs: decoded
        assert np.array_equal(bits(run(once, 33)), want[:, :33])  # a column prefix of the decoding
        ns = kern.get_n_step()
        for n0 in range(0, n, ns):
            part = run(np.frombuffer(once, np.uint8)[kern.get_rhs_packed_offset(n0, k) :], min(ns, n - n0))
            assert np.array_equal(bits(part), want[:, n0 : n0 + ns])
    for arr in once.__dict__["_cache"].values():
        assert not arr[0].flags.writeable and not arr[1].flags.writeable


def test_gemm_packed_errors() -> None:
    a = np.ones((2, 3), np.float32)
    pw = pf32_gemm.pack_weights(np.ones((4, 3), np.float32), target=Target(svl_bits=512))
    with pytest.raises(TypeError, match="pack_weights"):
        pf32_gemm.gemm_packed(a, pw.rhs_packed)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pf16_gemm\.pack_weights"):
        pf16_gemm.gemm_packed(a.astype(np.float16), pw)
    with pytest.raises(ValueError, match="packed for SVL 512, the target has SVL 256"):
        pf32_gemm.gemm_packed(a, pw, target=Target(svl_bits=256))
    with pytest.raises(ValueError, match=r"lhs must be \[M, 3\]"):
        pf32_gemm.gemm_packed(np.ones((2, 4), np.float32), pw, target=Target(svl_bits=512))
    with pytest.raises(TypeError, match="float32"):
        pf32_gemm.gemm_packed(a.astype(np.float64), pw, target=Target(svl_bits=512))
    with pytest.raises(ValueError, match="bias"):
        pf32_gemm.pack_weights(np.ones((4, 3), np.float32), bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        pf16_gemm.pack_weights(np.ones(3, np.float16))
