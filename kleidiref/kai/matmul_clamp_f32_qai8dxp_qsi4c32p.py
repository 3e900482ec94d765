"""``kai_matmul_clamp_f32_qai8dxp_qsi4c32p``: the f32 x qai8dxp x qsi4c32p (blockwise 4-bit) -> f32 kernels.

Upstream family directory ``kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/`` (SME2 MOPA
and dot, NEON i8mm and dotprod). XNNPACK runs the NEON ones as ``qp8_f32_qb4w_gemm`` (see
:mod:`kleidiref.variants.qp8_f32_qb4w_gemm`); the arithmetic is
:func:`kleidiref.kai.qb4w_common.qb4w_matmul`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from .._buffers import check_count
from .interface import BlockwiseKernel, ClampBounds, TileParams
from .layouts import Qai8dxpLayout, Qsi4c32pLayout
from .pack import Qai8dxpRows
from .qb4w_common import (
    EpilogueKind,
    Layout,
    PreparedRhs,
    block_sums_exact,
    prepare_rhs,
    qb4w_accumulate,
    qb4w_epilogue,
    qb4w_matmul,
)

__all__ = [
    "VARIANT",
    "Qb4wKernel",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm",
]

VARIANT = "qp8_f32_qb4w_gemm"


class Qb4wKernel(BlockwiseKernel):
    """``kai_matmul_clamp_f32_qai8dxp*_qsi4c32p*``: run_matmul takes ``bl`` after k (as the C).

    ``compute`` is :func:`qb4w_matmul` (the block scales are applied inside the k loop); its
    parts are public stages too: :meth:`block_sums` (each block's exact int32 sums, what ZA or
    the vector accumulators hold at the end of a block), :meth:`accumulate` (the float
    accumulator after the blocks) and :meth:`epilogue`; ``epilogue(accumulate(...))`` is
    ``compute``'s bits.
    """

    variant = VARIANT
    #: Packed RHS layout and its block depth (``kr / sr`` of the RHS packer).
    layout: ClassVar[Layout]
    rhs_bbl: ClassVar[int]
    kind: ClassVar[EpilogueKind]
    #: Tile constants: mr, nr, m_step, n_step in units of VLs for SME2 (``vl_scaled``) or plain.
    tiles: ClassVar[tuple[int, int, int, int, int, int]]
    vl_scaled: ClassVar[tuple[bool, bool, bool, bool]]

    def tile_params(self) -> TileParams:
        mr, nr, kr, sr, ms, ns = self.tiles
        s = self.vl_scaled
        v = self.vls
        return TileParams(
            mr=mr * (v if s[0] else 1),
            nr=nr * (v if s[1] else 1),
            kr=kr,
            sr=sr,
            m_step=ms * (v if s[2] else 1),
            n_step=ns * (v if s[3] else 1),
        )

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "(m_idx % mr) == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def get_rhs_packed_offset(self, n_idx: int, k: int, bl: int | None = None) -> int:
        n_idx, k = check_count("n_idx", n_idx), check_count("k", k)
        b = self.check_bl(bl, "get_rhs_packed_offset")
        self._assume(k % b == 0, "(k % bl) == 0", "get_rhs_packed_offset")
        self._assume(n_idx % self.get_nr() == 0, "(n_idx % nr) == 0", "get_rhs_packed_offset")
        return self.rhs_layout(0, k, b).offset(n_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def rhs_packed_size(self, n: int, k: int, bl: int | None = None) -> int:
        b = self.check_bl(bl, "get_rhs_packed_size")
        return self.rhs_layout(n, k, b).size()

    def lhs_layout(self, m: int, k: int) -> Qai8dxpLayout:
        """The packed LHS format this kernel reads."""
        p = self.tile_params()
        return Qai8dxpLayout(p.mr, p.kr, p.sr, m, k)

    def rhs_layout(self, n: int, k: int, bl: int) -> Qsi4c32pLayout:
        """The packed RHS format this kernel reads (block depth ``rhs_bbl``)."""
        return Qsi4c32pLayout(self.get_nr(), bl, self.rhs_bbl, n, k, self.layout)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> Qai8dxpRows:
        q, neg_zp, dq = self.lhs_layout(m, k).decode(lhs)
        return Qai8dxpRows(q[:, :k], neg_zp, dq)

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int, bl: int | None = None) -> PreparedRhs:
        b = self.check_bl(bl, "run_matmul")
        w, sc, rsum, bias = self.rhs_layout(n, k, b).decode(rhs)
        return prepare_rhs(w, sc, rsum, bias, b)

    def block_sums(self, lhs: Qai8dxpRows, rhs: PreparedRhs) -> NDArray[np.int32]:
        """``[nb, M, N]``: each quant block's integer dot products (SMOPA / SDOT / SMMLA sums,
        exact; what ZA holds before the block's MOVA + SCVTF)."""
        out: NDArray[np.int32] = block_sums_exact(lhs.q, rhs.w, rhs.bl).astype(np.int32)
        return out

    def accumulate(self, lhs: Qai8dxpRows, rhs: PreparedRhs) -> NDArray[np.float32]:
        """The float accumulator after every block of ``rhs`` (:func:`qb4w_accumulate`)."""
        return qb4w_accumulate(lhs.q, rhs, self.kind, fz=self.fz)

    def epilogue(
        self, facc: NDArray[np.float32], lhs: Qai8dxpRows, rhs: PreparedRhs, epilogue: ClampBounds
    ) -> NDArray[np.float32]:
        """The ``-zp * rsum`` FMLA, row scale, bias and clamp (:func:`qb4w_epilogue`)."""
        lo, hi = epilogue
        return qb4w_epilogue(facc, lhs.neg_zp, lhs.dq, rhs, self.kind, lo, hi, fz=self.fz)

    def compute(self, lhs: Qai8dxpRows, rhs: PreparedRhs, epilogue: ClampBounds) -> NDArray[np.float32]:
        """The blockwise accumulation, the zero-point and scale steps and the clamp (:func:`qb4w_matmul`)."""
        lo, hi = epilogue
        return qb4w_matmul(lhs.q, lhs.neg_zp, lhs.dq, rhs, self.kind, lo, hi, fz=self.fz)


class kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa(Qb4wKernel):
    """SME2 MOPA: mr = VLs, nr = 4*VLs, kr 8, sr 2 (docs/kernels.md §7.2). Per quant block::

        isum = SMOPA 4-way sums (LUTI4-expanded nibbles)   exact int32
        f = SCVTF(isum); facc = FMUL(f, d_0) (qb 0) | FMLA(facc, f, d_qb)
    then FMLA(facc, SCVTF(-zp), rsum); y = FMUL(facc, dq); y = FADD(y, bias); FCLAMP(y).
    """

    name = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    layout = "ps1s0nrx4"
    rhs_bbl = 4
    kind = "mopa"
    tiles = (1, 4, 8, 2, 1, 4)
    vl_scaled = (True, True, True, True)
    asserts_shape = True


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot(Qb4wKernel):
    """SME2 GEMV (M == 1): mr 1, nr = 4*VLs, kr 8, sr 2 (docs/kernels.md §7.2)::

    isum = SDOT (ZA vgx4, LUTI4)   f = SCVTF(isum)   facc = FMLA(facc, f, d_qb) from +0
    facc = FMLA(facc, rsum, SCVTF(-zp));  y = FMLA(bias, facc, dq) (fused);  FCLAMP(y)
    """

    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    layout = "ps1s0nrx4"
    rhs_bbl = 4
    kind = "sme2_dot"
    tiles = (1, 4, 8, 2, 1, 4)
    vl_scaled = (False, True, False, True)
    asserts_shape = True
    gemv = True


class _NeonQb4w(Qb4wKernel):
    """XNNPACK's NEON qb4w kernels (docs/kernels.md §7.2), SVL-independent::

    isum*16 = SMMLA / SDOT on (byte << 4, byte & 0xF0)      exact int32
    f = SCVTF(isum*16, #4) = RN32(isum); facc = FMLA(facc, f, d_qb) from +0
    facc = FMLA(facc, rsum, SCVTF(-zp)); y = FMUL(facc, dq); y = FADD(y, bias)
    out = FMIN(FMAX(y, min), max)                            NaN propagates
    """

    isa = "neon"
    layout = "qsi4c32p"
    kind = "neon"
    vl_scaled = (False, False, False, False)


class kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm(_NeonQb4w):
    """NEON i8mm (XNNPACK ``16x4c16s2 mstep4``): mr 4, nr 4, kr 16, sr 2, m_step 16, n_step 4."""

    name = "kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 8
    tiles = (4, 4, 16, 2, 16, 4)


class kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod(_NeonQb4w):
    """NEON dotprod GEMV of XNNPACK's i8mm branch (``1x4c16s2``): mr 1, nr 4, kr 16, sr 2."""

    name = "kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 8
    tiles = (1, 4, 16, 2, 1, 4)
    gemv = True


class kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod(_NeonQb4w):
    """NEON dotprod (XNNPACK ``4x4c8s2``): mr 4, nr 4, kr 8, sr 2, m_step 16, n_step 4."""

    name = "kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 4
    tiles = (4, 4, 8, 2, 16, 4)


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod(_NeonQb4w):
    """NEON dotprod GEMV of XNNPACK's dotprod branch (``1x4c8s2``): mr 1, nr 4, kr 8, sr 2."""

    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 4
    tiles = (1, 4, 8, 2, 1, 4)
    gemv = True
