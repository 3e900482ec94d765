"""Conformance of every registered matmul kernel to KleidiAI's uniform interface.

Parametrized from :mod:`kleidiref.kai.registry`, so a new kernel is covered (or fails here for
want of an operand builder) without editing this file. The checks are those of KleidiAI's own
tests (test/tests/matmul_clamp_*_test.cpp): every ``m_step`` x ``n_step`` portion computed at
the offsets the kernel reports (``get_lhs_packed_offset``, ``get_rhs_packed_offset``,
``get_dst_offset``) equals the whole result, bytes of a padded destination row past N are never
written, and the output does not depend on the SVL (the tiles change with it, each output
element's arithmetic does not).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from kleidiref.kai import (
    BlockwiseKernel,
    MatmulKernel,
    PackedLhsKernel,
    RawLhsKernel,
    RequantizingKernel,
    kai_matmul_requantize32_params,
    kai_rhs_pack_qsi8cx_params,
    ukernels_of,
)
from kleidiref.quant import qb4
from kleidiref.targets import Target
from kleidiref.variants import VARIANTS

SVLS = (128, 256, 512, 1024, 2048)
KERNELS = [c for c in ukernels_of() if issubclass(c, MatmulKernel)]
SENTINEL = 0xA5

#: Runs a kernel on (m, n, lhs view, rhs view, dst view, dst row stride).
Run = Callable[[MatmulKernel, int, int, Any, Any, Any, int], None]


@dataclasses.dataclass
class Case:
    """Packed operands of one m x n x k problem for one kernel at one SVL, and how to run it."""

    kern: MatmulKernel
    m: int
    n: int
    k: int
    lhs: NDArray[Any]
    rhs: NDArray[np.uint8]
    run: Run
    bl: int | None = None

    def rhs_offset(self, n_idx: int) -> int:
        if isinstance(self.kern, BlockwiseKernel):
            return self.kern.get_rhs_packed_offset(n_idx, self.k, self.bl)  # type: ignore[call-arg]
        return self.kern.get_rhs_packed_offset(n_idx, self.k)

    def whole(self) -> NDArray[np.uint8]:
        """The m x n result bytes, from one call on the whole problem (dense rows)."""
        item = self.kern.dst_dtype.itemsize
        dst = np.zeros(self.m * self.n * item, np.uint8)
        self.run(self.kern, self.m, self.n, self.lhs, self.rhs, dst, self.n * item)
        return dst.reshape(self.m, self.n * item)


def _float_case(cls: type[MatmulKernel], svl: int, m: int, n: int, k: int, rng: np.random.Generator) -> Case:
    spec = VARIANTS[cls.variant].SPEC
    kern = cls(svl)
    dt = spec.dtype
    a = rng.standard_normal((m, k)).astype(dt)
    w = rng.standard_normal((n, k)).astype(dt)
    b = rng.standard_normal(n).astype(dt)
    rhs = spec.rhs_packer_nxk(svl).pack(w, b)
    item = dt.itemsize
    lo, hi = -2.5, 3.0
    if isinstance(kern, RawLhsKernel):

        def run(kn: Any, mm: int, nn: int, lhs: Any, rp: Any, dst: Any, stride: int) -> None:
            kn.run_matmul(mm, nn, k, lhs, k * item, rp, dst, stride, item, lo, hi)

        return Case(kern, m, n, k, a, rhs, run)  # the raw row, typed (offset 0 only)

    def run_p(kn: Any, mm: int, nn: int, lhs: Any, rp: Any, dst: Any, stride: int) -> None:
        kn.run_matmul(mm, nn, k, lhs, rp, dst, stride, item, lo, hi)

    return Case(kern, m, n, k, spec.lhs_packer(svl).pack(a), rhs, run_p)


def _qc8w_case(cls: type[MatmulKernel], svl: int, m: int, n: int, k: int, rng: np.random.Generator) -> Case:
    mod = VARIANTS["qp8_f32_qc8w_gemm"]
    kern = cls(svl)
    p = kern.tile_params()
    a = (rng.standard_normal((m, k)) * 3).astype(np.float32)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    sc = rng.uniform(0.001, 0.01, n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    lhs = mod.kai_lhs_quant_pack_qai8dxp_f32(svl).pack(a, mr=p.mr, kr=p.kr, sr=p.sr)
    rhs = mod.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(svl).pack(w, sc, b, nr=p.nr, kr=p.kr)

    def run(kn: Any, mm: int, nn: int, lp: Any, rp: Any, dst: Any, stride: int) -> None:
        kn.run_matmul(mm, nn, k, lp, rp, dst, stride, 4, -20.0, 20.0)

    return Case(kern, m, n, k, lhs, rhs, run)


def _pqs8_case(cls: type[MatmulKernel], svl: int, m: int, n: int, k: int, rng: np.random.Generator) -> Case:
    mod = VARIANTS["pqs8_qc8w_gemm"]
    kern = cls(svl)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (k, n)).astype(np.int8)
    sc = rng.uniform(1e-4, 1e-3, n).astype(np.float32)
    b = rng.integers(-5000, 5000, n).astype(np.int32)
    params = kai_rhs_pack_qsi8cx_params(lhs_zero_point=3, scale_multiplier=1.0)
    rhs = mod.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(svl).pack(w, sc, b, params=params)
    rq = kai_matmul_requantize32_params(-100, 110, 4)
    lhs = mod.kai_lhs_pack_x8p2vlx4_x8_sme(svl).pack(a) if kern.lhs_packed else a  # the raw row, typed

    def run(kn: Any, mm: int, nn: int, lp: Any, rp: Any, dst: Any, stride: int) -> None:
        kn.run_matmul(mm, nn, k, lp, rp, dst, stride, 1, rq)

    return Case(kern, m, n, k, lhs, rhs, run)


def _qb4w_case(cls: type[MatmulKernel], svl: int, m: int, n: int, k: int, rng: np.random.Generator) -> Case:
    mod = VARIANTS["qp8_f32_qb4w_gemm"]
    bl = 32 << int(rng.integers(0, 3))  # 32, 64 or 128
    k = -(-k // bl) * bl  # k a multiple of bl
    kern = cls(svl)
    p = kern.tile_params()
    a = (rng.standard_normal((m, k)) * 2).astype(np.float32)
    codes = rng.integers(-8, 8, (n, k)).astype(np.int8)
    scales = qb4.f32_scales_to_bf16(rng.uniform(0.005, 0.05, (n, k // bl)).astype(np.float32))
    b = rng.standard_normal(n).astype(np.float32)
    prep = mod.prepare_weights(codes, scales, bl=bl, bias=b, target=Target(svl_bits=svl), kernel=cls.name)
    lhs = mod.kai_lhs_quant_pack_qai8dxp_f32(svl).pack(a, mr=p.mr, kr=p.kr, sr=p.sr)

    def run(kn: Any, mm: int, nn: int, lp: Any, rp: Any, dst: Any, stride: int) -> None:
        kn.run_matmul(mm, nn, k, bl, lp, rp, dst, stride, 4, -3.0, 2.5)

    return Case(kern, m, n, k, lhs, np.asarray(prep.rhs_packed, np.uint8), run, bl=bl)


def _qc4w_case(cls: type[MatmulKernel], svl: int, m: int, n: int, k: int, rng: np.random.Generator) -> Case:
    mod = VARIANTS["qp8_f32_qc8w_gemm"]  # the LHS packer both int8-LHS variants share
    kern: Any = cls(svl)
    p = kern.tile_params()
    a = (rng.standard_normal((m, k)) * 3).astype(np.float32)
    w = rng.integers(-8, 8, (n, k)).astype(np.int8)
    sc = rng.uniform(0.001, 0.1, n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    lhs = mod.kai_lhs_quant_pack_qai8dxp_f32(svl).pack(a, mr=p.mr, kr=p.kr, sr=p.sr)

    def run(kn: Any, mm: int, nn: int, lp: Any, rp: Any, dst: Any, stride: int) -> None:
        kn.run_matmul(mm, nn, k, lp, rp, dst, stride, 4, -20.0, 20.0)

    return Case(kern, m, n, k, lhs, kern.pack_rhs(w, sc, b), run)


#: Operand builders by variant (the module that defines the kernel).
BUILDERS: dict[str, Callable[[type[MatmulKernel], int, int, int, int, np.random.Generator], Case]] = {
    "pf32_gemm": _float_case,
    "pf16_gemm": _float_case,
    "qp8_f32_qc8w_gemm": _qc8w_case,
    "pqs8_qc8w_gemm": _pqs8_case,
    "qp8_f32_qb4w_gemm": _qb4w_case,
    "qp8_f32_qc4w_gemm": _qc4w_case,
}


def _case(cls: type[MatmulKernel], svl: int, m: int, n: int, k: int, seed: int) -> Case:
    builder = BUILDERS.get(cls.variant)
    if builder is None:
        pytest.fail(f"{cls.name}: no operand builder for variant {cls.variant!r}; add one to BUILDERS")
    if cls(svl).get_m_step() == 1 or not cls(svl).lhs_packed:
        m = 1  # a 1-row kernel
    return builder(cls, svl, m, n, k, np.random.default_rng(seed))


def _svl_bound(cls: type[MatmulKernel]) -> bool:
    return cls.isa in ("sme", "sme2")


def test_registry_covers_every_variant() -> None:
    for v in BUILDERS:
        assert any(c.variant == v for c in KERNELS), v
    assert all(c.variant in BUILDERS for c in KERNELS)


def _portions(case: Case, pad: int) -> NDArray[np.uint8]:
    """Every m_step x n_step portion at the reported offsets into a dst whose rows have ``pad``
    extra elements pre-filled with the sentinel; returns the dst rows."""
    kern, m, n, k = case.kern, case.m, case.n, case.k
    item = kern.dst_dtype.itemsize
    stride = (n + pad) * item
    dst = np.full(m * stride, SENTINEL, np.uint8)
    ms, ns = kern.get_m_step(), kern.get_n_step()
    for m0 in range(0, m, ms):
        for n0 in range(0, n, ns):
            lo = kern.get_lhs_packed_offset(m0, k)
            ro = case.rhs_offset(n0)
            do = kern.get_dst_offset(m0, n0, stride)
            case.run(kern, min(ms, m - m0), min(ns, n - n0), case.lhs[lo:], case.rhs[ro:], dst[do:], stride)
    return dst.reshape(m, stride)


def _check_portions(cls: type[MatmulKernel], svl: int, m: int, n: int, k: int, seed: int) -> None:
    case = _case(cls, svl, m, n, k, seed)
    whole = case.whole()
    rows = _portions(case, pad=3)
    width = whole.shape[1]
    assert np.array_equal(rows[:, :width], whole), f"{cls.name}: portions differ from the whole (svl {svl})"
    assert np.all(rows[:, width:] == SENTINEL), f"{cls.name}: bytes past N in a padded dst row were written"


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.name)
def test_portions_equal_whole(cls: type[MatmulKernel]) -> None:
    """KleidiAI's offset tests: each m_step x n_step portion at the kernel's offsets equals the whole."""
    svl = 128 if _svl_bound(cls) else 512
    tp = cls(svl).tile_params()
    # More than one step each way, with ragged edges.
    m = 2 * tp.m_step + 3
    n = 2 * tp.n_step + 5
    _check_portions(cls, svl, m, n, 37, seed=len(cls.name))


@pytest.mark.slow
@pytest.mark.parametrize("svl", SVLS)
@pytest.mark.parametrize("cls", [c for c in KERNELS if _svl_bound(c)], ids=lambda c: c.name)
def test_portions_equal_whole_every_svl(cls: type[MatmulKernel], svl: int) -> None:
    tp = cls(svl).tile_params()
    _check_portions(cls, svl, tp.m_step + 1, tp.n_step + 3, 70, seed=svl)


@pytest.mark.parametrize("cls", [c for c in KERNELS if _svl_bound(c)], ids=lambda c: c.name)
def test_output_is_svl_invariant(cls: type[MatmulKernel]) -> None:
    """Packed at each SVL, the kernel computes the same bits: the tiles move, the arithmetic does not."""
    outs = [_case(cls, svl, 19, 41, 45, seed=7).whole() for svl in SVLS]
    for svl, out in zip(SVLS[1:], outs[1:], strict=True):
        assert np.array_equal(out, outs[0]), f"{cls.name}: SVL {svl} differs from SVL {SVLS[0]}"


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.name)
def test_stages_compose_to_run_matmul(cls: type[MatmulKernel]) -> None:
    """``compute(decode_lhs, decode_rhs, epilogue)`` is what ``run_matmul`` stores."""
    case = _case(cls, 256, 9, 23, 40, seed=3)
    kern = case.kern
    lhs = kern.decode_lhs(np.ascontiguousarray(case.lhs).reshape(-1).view(np.uint8), case.m, case.k)
    if isinstance(kern, BlockwiseKernel):
        rhs = kern.decode_rhs(case.rhs, case.n, case.k, case.bl)
    else:
        rhs = kern.decode_rhs(case.rhs, case.n, case.k)
    epi: Any
    if isinstance(kern, RequantizingKernel):
        epi = kai_matmul_requantize32_params(-100, 110, 4)
    elif isinstance(kern, (PackedLhsKernel, RawLhsKernel)) and cls.variant in ("pf32_gemm", "pf16_gemm"):
        epi = (np.float32(-2.5), np.float32(3.0))
    elif isinstance(kern, BlockwiseKernel):
        epi = (np.float32(-3.0), np.float32(2.5))
    else:
        epi = (np.float32(-20.0), np.float32(20.0))
    got = np.ascontiguousarray(kern.compute(lhs, rhs, epi).astype(kern.dst_dtype)).view(np.uint8)
    assert np.array_equal(got.reshape(case.m, -1), case.whole())


def test_every_variant_lists_its_ukernels() -> None:
    """``list_ukernels(variant)`` for every variant module name, and every ukernel is some variant's."""
    from kleidiref import list_ukernels

    names = {v: set(list_ukernels(v)) for v in VARIANTS}
    assert all(names.values()), [v for v, n in names.items() if not n]
    assert set(list_ukernels()) == set().union(*names.values())
