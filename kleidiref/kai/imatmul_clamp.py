"""The dedicated KleidiAI ``kai_imatmul_clamp_*`` kernels: the matmul MOPA kernels with
``k = k_chunk_count * roundup(k_chunk_length, kr)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .._buffers import Buffer, check_count, roundup
from .interface import MatmulKernel, TileParams, Ukernel
from .matmul_clamp_f16_f16p_f16p import (
    kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa,
    kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa,
)
from .matmul_clamp_f32_f32p_f32p import (
    kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa,
    kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa,
)
from .matmul_clamp_qai8_qai8p_qsi8cxp import (
    kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa,
    kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa,
)
from .params import kai_matmul_requantize32_params

__all__ = [
    "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa",
    "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa",
    "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa",
]


class _ImatmulKernel(Ukernel):
    """``kai_imatmul_clamp_*``: the imatmul interface over the matmul kernel with the same bits.

    ``kai_run_imatmul_clamp_<...>`` sets ``K = k_chunk_count * roundup(k_chunk_length, kr)`` and
    runs the same MOPA loop as ``matmul``; every golden file confirms identical bytes
    (``imatmul_output_equal``, ``imatmul_sme1_output_equal``). There is no ``dst_stride_col``.
    """

    #: The ``kai_matmul_clamp_*`` kernel computing the same bits.
    matmul: ClassVar[type[MatmulKernel]]
    kr: ClassVar[int]

    def __init__(self, svl: int | None = None, *, fz: bool = False) -> None:
        super().__init__(svl)
        self._mm = self.matmul(self.svl, fz=fz)
        #: FPCR.FZ (and FZ16) while the kernel runs.
        self.fz = fz

    def tile_params(self) -> TileParams:
        return self._mm.tile_params()

    def get_m_step(self) -> int:
        return self._mm.get_m_step()

    def get_n_step(self) -> int:
        return self._mm.get_n_step()

    def _k(self, k_chunk_count: int, k_chunk_length: int) -> int:
        kcc, kcl = check_count("k_chunk_count", k_chunk_count), check_count("k_chunk_length", k_chunk_length)
        return kcc * roundup(kcl, self.kr)

    def get_lhs_packed_offset(self, m_idx: int, k_chunk_count: int, k_chunk_length: int) -> int:
        """``m_idx * kcc * roundup(kcl, kr) * elem`` (``m_idx % m_step == 0``)."""
        m_idx = check_count("m_idx", m_idx)
        self._assume(m_idx % self.get_m_step() == 0, "m_idx % m_step == 0", "get_lhs_packed_offset")
        return self._mm.get_lhs_packed_offset(m_idx, self._k(k_chunk_count, k_chunk_length))

    def get_rhs_packed_offset(self, n_idx: int, k_chunk_count: int, k_chunk_length: int) -> int:
        n_idx = check_count("n_idx", n_idx)
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", "get_rhs_packed_offset")
        return self._mm.get_rhs_packed_offset(n_idx, self._k(k_chunk_count, k_chunk_length))

    def get_dst_offset(self, m_idx: int, n_idx: int, dst_stride_row: int) -> int:
        m_idx, n_idx = check_count("m_idx", m_idx), check_count("n_idx", n_idx)
        self._assume(m_idx % self.get_m_step() == 0, "m_idx % m_step == 0", "get_dst_offset")
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", "get_dst_offset")
        return self._mm.get_dst_offset(m_idx, n_idx, dst_stride_row)

    def get_dst_size(self, m: int, n: int) -> int:
        return self._mm.get_dst_size(m, n)

    def _run_k(self, k_chunk_count: int, k_chunk_length: int) -> int:
        k = self._k(k_chunk_count, k_chunk_length)
        self._assume(k >= 1, "k_chunk_count * k_chunk_length >= 1", "run_imatmul")
        return k


class _FloatImatmul(_ImatmulKernel):
    def run_imatmul(
        self,
        m: int,
        n: int,
        k_chunk_count: int,
        k_chunk_length: int,
        lhs_packed: Buffer,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        clamp_min: float,
        clamp_max: float,
    ) -> None:
        """``kai_run_<name>(m, n, k_chunk_count, k_chunk_length, lhs_packed, rhs_packed, dst,
        dst_stride_row, clamp_min, clamp_max)``."""
        k = self._run_k(k_chunk_count, k_chunk_length)
        self._mm.run_matmul(
            m, n, k, lhs_packed, rhs_packed, dst, dst_stride_row, self._mm.dst_dtype.itemsize, clamp_min, clamp_max
        )


class kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa(_FloatImatmul):
    """pf32 imatmul, SME2 (same bits as ``kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa``)."""

    name = "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa"
    variant = "pf32_igemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/imatmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    matmul = kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa
    kr = 1


class kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa(_FloatImatmul):
    """pf32 imatmul, SME1 (same bits as ``kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa``)."""

    name = "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa"
    variant = "pf32_igemm"
    isa = "sme"
    source = "kai/ukernels/matmul/imatmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    matmul = kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa
    kr = 1


class kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa(_FloatImatmul):
    """pf16 imatmul, SME2 (same bits as ``kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa``)."""

    name = "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa"
    variant = "pf16_igemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/imatmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    matmul = kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa
    kr = 2


class kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa(_FloatImatmul):
    """pf16 imatmul, SME1 (same bits as ``kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa``)."""

    name = "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa"
    variant = "pf16_igemm"
    isa = "sme"
    source = "kai/ukernels/matmul/imatmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    matmul = kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa
    kr = 2


class _Pqs8Imatmul(_ImatmulKernel):
    def run_imatmul(
        self,
        m: int,
        n: int,
        k_chunk_count: int,
        k_chunk_length: int,
        lhs_packed: Buffer,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        params: kai_matmul_requantize32_params,
    ) -> None:
        """``kai_run_<name>(m, n, k_chunk_count, k_chunk_length, lhs_packed, rhs_packed, dst,
        dst_stride_row, params)``."""
        k = self._run_k(k_chunk_count, k_chunk_length)
        run: Any = self._mm.run_matmul  # the pqs8 kernels take requantization params, not clamps
        run(m, n, k, lhs_packed, rhs_packed, dst, dst_stride_row, 1, params)


class kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa(_Pqs8Imatmul):
    """pqs8 imatmul, SME2: same bits as the matmul kernel ``..._qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa``."""

    name = "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa"
    variant = "pqs8_qc8w_igemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/imatmul_clamp_qai8_qai8p_qsi8cxp/" + name + "_asm.S"
    matmul = kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa
    kr = 4


class kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa(_Pqs8Imatmul):
    """pqs8 imatmul, SME1: same bits as the matmul kernel ``..._qsi8cxp2vlx4sb_2vlx2vl_sme_mopa``."""

    name = "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa"
    variant = "pqs8_qc8w_igemm"
    isa = "sme"
    source = "kai/ukernels/matmul/imatmul_clamp_qai8_qai8p_qsi8cxp/" + name + "_asm.S"
    matmul = kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa
    kr = 4
