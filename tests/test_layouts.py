"""kleidiref.kai.layouts: each packed format against its packer, at every SVL.

For random shapes: the layout's size is the packer's, ``decode`` of the packer's bytes gives back
the packer's inputs, and ``describe(offset)`` names the element a change of that byte changes
(flipping a bit of the byte and decoding again moves exactly that element, or nothing for
padding the decoder drops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from kleidiref.kai.layouts import (
    ByteInfo,
    Qai8dxpLayout,
    Qsi4c32pLayout,
    Qsi8cxp2vlx4sbLayout,
    Qsi8cxpLayout,
    SmeBiasRhsLayout,
    SmeLhsLayout,
)
from kleidiref.kai.params import kai_rhs_pack_qsi8cx_params
from kleidiref.quant import qb4
from kleidiref.targets import SUPPORTED_SVLS
from kleidiref.variants import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm, qp8_f32_qb4w_gemm, qp8_f32_qc8w_gemm

#: (layout, packed bytes, named arrays the decoder returns, where each lives) for one random case.
Built = tuple[Any, NDArray[np.uint8], list[NDArray[Any]]]


def _shape(rng: np.random.Generator) -> tuple[int, int, int]:
    return int(rng.integers(1, 40)), int(rng.integers(1, 70)), int(rng.integers(1, 80))


def _sme_lhs(svl: int, rng: np.random.Generator, mod: Any) -> Built:
    m, _, k = _shape(rng)
    packer = mod.SPEC.lhs_packer(svl)
    a = (
        rng.standard_normal((m, k)).astype(packer.elem)
        if packer.elem.kind == "f"
        else rng.integers(-128, 128, (m, k)).astype(packer.elem)
    )
    packed = packer.pack(a)
    fmt = packer.lhs_layout(m, k)
    assert fmt.size() == packer.get_lhs_packed_size(m, k, fmt.mr, fmt.kr, 1) == packed.size
    dec = fmt.decode(packed)
    assert np.array_equal(np.ascontiguousarray(dec[:, :k]).view(np.uint8), a.view(np.uint8))
    assert not dec[:, k:].any()
    return fmt, packed, [dec]


def _x8_lhs(svl: int, rng: np.random.Generator) -> Built:
    m, _, k = _shape(rng)
    packer = pqs8_qc8w_gemm.kai_lhs_pack_x8p2vlx4_x8_sme(svl)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    packed = packer.pack(a)
    fmt = packer.lhs_layout(m, k)
    assert isinstance(fmt, SmeLhsLayout) and fmt.size() == packed.size
    dec = fmt.decode(packed)
    assert np.array_equal(dec[:, :k], a) and not dec[:, k:].any()
    return fmt, packed, [dec]


def _sme_rhs(svl: int, rng: np.random.Generator, mod: Any) -> Built:
    _, n, k = _shape(rng)
    packer = mod.SPEC.rhs_packer_nxk(svl)
    w = rng.standard_normal((n, k)).astype(packer.elem)
    b = rng.standard_normal(n).astype(packer.bias_elem)
    packed = packer.pack(w, b)
    fmt = packer.rhs_layout(n, k)
    assert isinstance(fmt, SmeBiasRhsLayout) and fmt.size() == packer.get_rhs_packed_size(n, k) == packed.size
    bias, wd = fmt.decode(packed)
    assert np.array_equal(bias, b) and np.array_equal(wd[:k], w.T) and not wd[k:].any()
    return fmt, packed, [bias, wd]


def _qai8dxp(svl: int, rng: np.random.Generator) -> Built:
    m, _, k = _shape(rng)
    mr, kr, sr = [(1, 4, 1), (4, 8, 2), (svl // 32, 4, 1), (4, 16, 2)][int(rng.integers(0, 4))]
    packer = qp8_f32_qc8w_gemm.kai_lhs_quant_pack_qai8dxp_f32(svl)
    x = rng.standard_normal((m, k)).astype(np.float32)
    packed = packer.pack(x, mr=mr, kr=kr, sr=sr)
    fmt = Qai8dxpLayout(mr, kr, sr, m, k)
    assert fmt.size() == packer.get_lhs_packed_size(m, k, mr, kr, sr) == packed.size
    q, neg_zp, dq = fmt.decode(packed)
    assert (q[:, k:] == q[:, k - 1 : k]).all()  # K padding repeats the last code
    return fmt, packed, [q, neg_zp, dq]


def _qsi8cxp(svl: int, rng: np.random.Generator) -> Built:
    _, n, k = _shape(rng)
    nr, kr = [(4, 4), (4, 8), (svl // 8, 4)][int(rng.integers(0, 3))]
    packer = qp8_f32_qc8w_gemm.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(svl)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    sc = rng.uniform(0.01, 1, n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    packed = packer.pack(w, sc, b, nr=nr, kr=kr)
    fmt = Qsi8cxpLayout(nr, kr, n, k)
    assert fmt.size() == packer.get_rhs_packed_size(n, k, nr, kr, 1) == packed.size
    wd, rsum, scd, bd = fmt.decode(packed)
    assert np.array_equal(wd[:k], w.T) and np.array_equal(scd, sc) and np.array_equal(bd, b)
    assert np.array_equal(rsum, w.sum(axis=1, dtype=np.int64).astype(np.int32))
    return fmt, packed, [wd, rsum, scd, bd]


def _pqs8_rhs(svl: int, rng: np.random.Generator) -> Built:
    _, n, k = _shape(rng)
    packer = pqs8_qc8w_gemm.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(svl)
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    sc = rng.uniform(0.01, 1, n).astype(np.float32)
    b = rng.integers(-1000, 1000, n).astype(np.int32)
    packed = packer.pack(w, sc, b, params=kai_rhs_pack_qsi8cx_params(lhs_zero_point=0))
    fmt = packer.rhs_layout(n, k)
    assert isinstance(fmt, Qsi8cxp2vlx4sbLayout) and fmt.size() == packer.get_rhs_packed_size(n, k) == packed.size
    bd, wd, scd = fmt.decode(packed)
    assert np.array_equal(bd, b) and np.array_equal(wd[:k], w) and np.array_equal(scd, sc)
    return fmt, packed, [bd, wd, scd]


def _qsi4(svl: int, rng: np.random.Generator) -> Built:
    _, n, _ = _shape(rng)
    bl = 32 << int(rng.integers(0, 3))
    k = bl * int(rng.integers(1, 4))
    sme = bool(rng.integers(0, 2))
    codes = rng.integers(-8, 8, (n, k)).astype(np.int8)
    scales = qb4.f32_scales_to_bf16(rng.uniform(0.01, 0.1, (n, k // bl)).astype(np.float32))
    b = rng.standard_normal(n).astype(np.float32)
    u = qb4.pack_nibbles(codes)
    if sme:
        nr, kr, sr = svl // 8, 8, 2
        packer: Any = qp8_f32_qb4w_gemm.kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(svl)
    else:
        nr, kr, sr = 4, [8, 16][int(rng.integers(0, 2))], 2
        packer = qp8_f32_qb4w_gemm.kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0(svl)
    packed = packer.pack(u, scales, b, nr=nr, kr=kr, sr=sr, bl=bl)
    fmt = Qsi4c32pLayout(nr, bl, kr // sr, n, k, packer.layout)
    assert fmt.size() == packed.size
    wd, scd, rsum, bd = fmt.decode(packed)
    assert np.array_equal(wd, codes) and np.array_equal(scd, scales) and np.array_equal(bd, b)
    return fmt, packed, [wd, scd, rsum, bd]


CASES: dict[str, Callable[[int, np.random.Generator], Built]] = {
    "x32p2vlx1": lambda svl, rng: _sme_lhs(svl, rng, pf32_gemm),
    "x16p2vlx2": lambda svl, rng: _sme_lhs(svl, rng, pf16_gemm),
    "x8p2vlx4": _x8_lhs,
    "x32p2vlx1biasf32": lambda svl, rng: _sme_rhs(svl, rng, pf32_gemm),
    "x16p2vlx2b": lambda svl, rng: _sme_rhs(svl, rng, pf16_gemm),
    "qai8dxp": _qai8dxp,
    "qsi8cxp": _qsi8cxp,
    "qsi8cxp2vlx4sb": _pqs8_rhs,
    "qsi4c32p": _qsi4,
}


def _where(fmt: Any, info: ByteInfo, bit: int) -> tuple[int, tuple[int, ...]] | None:
    """(decoded array index, element index) the described byte decodes to; None: not decoded."""
    k = info.nibbles[bit >= 4] if info.nibbles is not None else info.k
    if isinstance(fmt, SmeLhsLayout):
        return (0, (info.row, k)) if info.row is not None and info.row < fmt.m else None  # type: ignore[return-value]
    if isinstance(fmt, Qai8dxpLayout):
        if info.row is None or info.row >= fmt.m:
            return None
        idx = {"data": 0, "zero-point": 1, "scale": 2}[info.field]
        return (idx, (info.row, k) if idx == 0 else (info.row,))  # type: ignore[return-value]
    if info.col is None or info.col >= fmt.n:
        return None
    col = info.col
    if isinstance(fmt, SmeBiasRhsLayout):
        return (0, (col,)) if info.field == "bias" else (1, (k, col))  # type: ignore[return-value]
    if isinstance(fmt, Qsi8cxpLayout):
        idx = {"data": 0, "row-sum": 1, "scale": 2, "bias": 3}[info.field]
        return (idx, (k, col) if idx == 0 else (col,))  # type: ignore[return-value]
    if isinstance(fmt, Qsi8cxp2vlx4sbLayout):
        idx = {"bias": 0, "data": 1, "scale": 2}[info.field]
        return (idx, (k, col) if idx == 1 else (col,))  # type: ignore[return-value]
    idx = {"data": 0, "scale": 1, "row-sum": 2, "bias": 3}[info.field]
    return (idx, (col, k) if idx == 0 else (col, info.block) if idx == 1 else (col,))  # type: ignore[return-value]


def _changed(before: list[NDArray[Any]], after: Any) -> list[tuple[int, tuple[int, ...]]]:
    after = list(after) if isinstance(after, tuple) else [after]
    out = []
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        ab = np.ascontiguousarray(a).view(np.uint8).reshape(*a.shape, -1)
        diff = ab != np.ascontiguousarray(b).view(np.uint8).reshape(*b.shape, -1)
        out += [(i, tuple(int(x) for x in idx)) for idx in np.argwhere(diff.any(axis=-1))]
    return out


@pytest.mark.parametrize("svl", SUPPORTED_SVLS)
@pytest.mark.parametrize("name", list(CASES))
def test_layout_round_trip_and_describe(name: str, svl: int) -> None:
    rng = np.random.default_rng(svl + len(name))
    for _ in range(3):
        fmt, packed, decoded = CASES[name](svl, rng)
        for off in rng.integers(0, packed.size, 25):
            bit = int(rng.integers(0, 8))
            info = fmt.describe(int(off))
            assert str(info) == info.text
            flipped = packed.copy()
            flipped[off] ^= np.uint8(1 << bit)
            moved = _changed(decoded, fmt.decode(flipped))
            want = _where(fmt, info, bit)
            assert moved == ([] if want is None else [want]), (name, int(off), bit, info.text)
