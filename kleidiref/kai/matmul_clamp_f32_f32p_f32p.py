"""KleidiAI ``matmul_clamp_f32_f32p_f32p``: the pf32 MOPA kernels (packed LHS, 2VL x 2VL tiles).

Every k step is one FMOPA rounded to binary32, in increasing k order, from the bias injected by
one FMOPA of 1.0 with the bias row (``fma32(1.0, bias, +0)``: -0 -> +0); then the clamp.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._buffers import check_count
from .._engine import fma32_chain
from ..numerics import Clamp, fma32
from .bias_rhs import BiasRhs, Pf32Kernel
from .interface import PackedLhsKernel, TileParams
from .layouts import SmeLhsLayout

__all__ = [
    "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
    "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa",
]

F32 = np.dtype(np.float32)


class _Pf32Mopa(Pf32Kernel, PackedLhsKernel):
    def tile_params(self) -> TileParams:
        v = 2 * self.vls
        return TileParams(mr=v, nr=v, kr=1, sr=1, m_step=v, n_step=v)

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "m_idx % mr == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def lhs_layout(self, m: int, k: int) -> SmeLhsLayout:
        """The packed LHS format this kernel reads (``x32p2vlx1``)."""
        return SmeLhsLayout.for_svl(F32, 1, self.svl, m, k)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self.lhs_layout(m, k).decode(lhs)
        return out

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> BiasRhs:
        return self.bias_rhs(rhs, n, k, decode=True)  # decoded: cheaper than per-block gathers for M > 1

    def accumulate(self, lhs: NDArray[np.float32], rhs: BiasRhs) -> NDArray[np.float32]:
        # Bias injection: one FMOPA of an all-1.0 vector with the bias row into a zeroed ZA.
        acc0 = fma32(np.float32(1.0), rhs.bias, np.float32(0.0), fz=self.fz)
        return fma32_chain(
            np.broadcast_to(acc0, (lhs.shape[0], acc0.shape[0])), lhs, rhs.w, fz=self.fz, w_lows=rhs.w_lows
        )


class kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa(_Pf32Mopa):
    """SME2 MOPA, 2VL x 2VL tiles [32 x 32 at SVL 512]; FCLAMP."""

    name = "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"
    variant = "pf32_gemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    clamp_kind = Clamp.FCLAMP


class kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa(_Pf32Mopa):
    """SME1 MOPA: same accumulation; FMIN(max) then FMAX(min), NaN propagates."""

    name = "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa"
    variant = "pf32_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    clamp_kind = Clamp.FMIN_FMAX
