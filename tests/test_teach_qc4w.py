"""The qc4w kernels' packed-buffer interface (Qsi4cxpLayout, pack_rhs, the stages) and the
teaching views on it: run_matmul on packed bytes equals the folded ``Qc4wKernel.run``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kleidiref.kai.layouts import Qsi4cxpLayout
from kleidiref.kai.matmul_clamp_f32_qai8dxp_qsi4cxp import KERNELS, Qc4wKernel
from kleidiref.kai.pack import kai_lhs_quant_pack_qai8dxp_f32

NAMES = sorted(KERNELS)


def _operands(m: int, n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((m, k)) * 3).astype(np.float32)
    w = rng.integers(-8, 8, (n, k)).astype(np.int8)
    scale = rng.uniform(0.001, 0.1, n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    return a, w, scale, bias


def _packed_run(kern: Qc4wKernel, a: np.ndarray, w: np.ndarray, scale: np.ndarray, bias: Any, clamp: Any) -> Any:
    m, k = a.shape
    n = w.shape[0]
    p = kern.tile_params()
    lhs = kai_lhs_quant_pack_qai8dxp_f32(kern.svl).pack(a, mr=p.mr, kr=p.kr, sr=p.sr)
    rhs = kern.pack_rhs(w, scale, bias)
    assert rhs.size == kern.rhs_packed_size(n, k) and lhs.size == kern.lhs_packed_size(m, k)
    dst = np.full((m, n), np.nan, np.float32)
    kern.run_matmul(m, n, k, lhs, rhs, dst, n * 4, 4, *clamp)
    return dst


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("svl", [128, 512, 2048])
@pytest.mark.parametrize(("m", "n", "k"), [(1, 5, 7), (3, 70, 33), (17, 9, 64)])
def test_packed_path_equals_run(name: str, svl: int, m: int, n: int, k: int) -> None:
    cls = KERNELS[name]
    if cls.gemv and m != 1:
        m = 1
    kern = cls(svl)
    a, w, scale, bias = _operands(m, n, k, svl + m + n + k)
    clamp = (np.float32(-4.0), np.float32(4.5))
    for fz in (False, True):
        kern.fz = fz
        want = cls.run(a, w, scale, bias, clamp, fz=fz)
        got = _packed_run(kern, a, w, scale, bias, clamp)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=f"fz={fz}")


def test_int32_wraparound_and_subnormal_scales_agree() -> None:
    """Large K (row sums times 16 wrap), tiny scales (subnormal after x 0.0625) and no bias."""
    a, w, scale, _ = _operands(4, 6, 4096, 1)
    w[:] = -8
    scale[:3] = np.float32(2.0**-127)
    for name in NAMES:
        cls = KERNELS[name]
        m = 1 if cls.gemv else 4
        want = cls.run(a[:m], w, scale, np.zeros(6, np.float32), (np.float32(-np.inf), np.float32(np.inf)), fz=False)
        got = _packed_run(cls(256), a[:m], w, scale, None, (-np.inf, np.inf))
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=name)


@pytest.mark.parametrize("order", ["qsi4cxp", "qsi4cxps1s0"])
@pytest.mark.parametrize(("nr", "kr", "sr"), [(4, 8, 2), (8, 16, 2), (16, 4, 1)])
def test_layout_round_trip_and_describe(order: str, nr: int, kr: int, sr: int) -> None:
    n, k = 11, 45
    rng = np.random.default_rng(3)
    lay = Qsi4cxpLayout(nr, kr, sr, n, k, order)
    slots = lay.blocks * nr
    w = rng.integers(-8, 8, (slots, k)).astype(np.int8)
    rsum = rng.integers(-1000, 1000, slots).astype(np.int32)
    sc, b = rng.standard_normal(slots).astype(np.float32), rng.standard_normal(slots).astype(np.float32)
    buf = lay.encode(w, rsum, sc, b)
    assert buf.size == lay.size() == lay.blocks * nr * (roundup32(k) // 2 + 12)
    wd, rd, sd, bd = lay.decode(buf)
    np.testing.assert_array_equal(wd[:, :k], w[:n])
    assert not wd[:, k:].any()
    np.testing.assert_array_equal(rd, rsum[:n])
    np.testing.assert_array_equal(sd.view(np.uint32), sc[:n].view(np.uint32))
    np.testing.assert_array_equal(bd.view(np.uint32), b[:n].view(np.uint32))
    seen = set()
    for off in range(lay.size()):
        info = lay.describe(off)
        assert info.col is not None
        if info.field == "data":
            assert info.nibbles is not None
            lo, hi = info.nibbles
            for kk, nib in ((lo, buf[off] & 0xF), (hi, buf[off] >> 4)):
                want = (int(w[info.col, kk]) & 0xF) if kk < k else 0
                assert nib == want, (off, info.text)
                seen.add((info.col, kk))
        elif info.field == "row-sum" and off % 4 == 0:
            assert int(buf[off : off + 4].view("<i4")[0]) == rsum[info.col]
    assert seen == {(c, kk) for c in range(slots) for kk in range(roundup32(k))}


def roundup32(k: int) -> int:
    return (k + 31) // 32 * 32


def test_packers_pad_columns_as_upstream() -> None:
    """qsi4cxp_qs4cxs1s0 replicates column N-1 (KAI_MIN(n0_idx, n - 1)); qsi4cxps1s0 zero-fills."""
    _, w, scale, bias = _operands(1, 5, 40, 2)
    x16 = KERNELS["kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod"]()
    lay = x16.rhs_layout(5, 40)
    wd, rsum, sc, b = Qsi4cxpLayout(lay.nr, lay.kr, lay.sr, 8, 40, lay.order).decode(x16.pack_rhs(w, scale, bias))
    np.testing.assert_array_equal(wd[5:, :40], np.repeat(w[4:5], 3, axis=0))
    assert (rsum == 16 * wd.astype(np.int32).sum(axis=1)).all() and (b[5:] == bias[4]).all()
    assert (sc == (scale[[0, 1, 2, 3, 4, 4, 4, 4]] * np.float32(0.0625))).all()
    s1s0 = KERNELS["kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot"](128)
    lay = s1s0.rhs_layout(5, 40)
    wd, rsum, sc, b = Qsi4cxpLayout(lay.nr, lay.kr, lay.sr, 16, 40, lay.order).decode(s1s0.pack_rhs(w, scale, bias))
    assert not wd[5:].any() and not rsum[5:].any() and not sc[5:].any() and not b[5:].any()
    np.testing.assert_array_equal(rsum[:5], w.astype(np.int32).sum(axis=1))


@pytest.mark.parametrize("name", NAMES)
def test_trace_ends_on_run_matmul_and_states_are_partial_sums(name: str) -> None:
    from kleidiref.teach import resolve_kernel
    from kleidiref.teach.trace import random_problem, trace

    _, kern = resolve_kernel(name, 256)
    m = 1 if kern.tile_params().m_step == 1 else 4
    n, k = 6, 21
    lhs, rhs, params = random_problem(kern, m, n, k, 9)
    t = trace(kern, lhs, rhs, m, n, k, params)
    dst = np.zeros((m, n), np.float32)
    kern.run_matmul(m, n, k, lhs, rhs, dst, n * 4, 4, *params)
    np.testing.assert_array_equal(t.out.view(np.uint32), dst.view(np.uint32))
    q = np.asarray(t.lhs.q, np.int64)
    w = np.asarray(t.rhs.w, np.int64)  # W as the kernel multiplies: 16 w (SHL #4) or w (LUTI4)
    kr = kern.get_kr()
    for s in t.recorded:
        np.testing.assert_array_equal(t.state(s), (q[:, : kr * s] @ w[: kr * s]).astype(np.int32))
    assert t.steps == -(-k // kr)


def test_teach_views_of_qc4w() -> None:
    from kleidiref.teach import layout_text, where

    text = layout_text("qp8_f32_qc4w_gemm", svl=128, m=2, n=3, k=40)
    assert "Qsi4cxpLayout" in text and "n0k0|1" in text and "rs0[4B]" in text
    sme = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot"
    ans = where(sme, svl=128, m=1, n=3, k=40, rhs_offset=1, rhs_element=(2, 17))
    # qsi4cxp, bbl 4, nr 16: byte 1 is (n 0, k 1 | 17); element (2, 17) is the high nibble of byte 2*4 + 1.
    assert "n 0, k 1 low nibble, k 17 high nibble" in ans and "bytes 9..9" in ans
