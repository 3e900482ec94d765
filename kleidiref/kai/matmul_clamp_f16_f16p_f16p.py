"""KleidiAI ``matmul_clamp_f16_f16p_f16p``: the pf16 MOPA kernels (packed LHS, kr = 2).

Widening FMOPA of the bias with 1.0 (-0 -> +0; FZ16 flushes a subnormal bias), then per k pair
``acc = RN32(acc + RN32(a0*w0 + a1*w1))`` (FPDotAdd_ZA), then RN16 and the f16 clamp.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._buffers import check_count
from .._engine import f16_pair_chain
from ..numerics import Clamp, ftz16
from .bias_rhs import BiasRhs, Pf16Kernel
from .interface import PackedLhsKernel, TileParams
from .layouts import SmeLhsLayout

__all__ = [
    "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa",
    "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa",
]

F16 = np.dtype(np.float16)


class _Pf16Mopa(Pf16Kernel, PackedLhsKernel):
    def tile_params(self) -> TileParams:
        v = self.vlh
        return TileParams(mr=v, nr=v, kr=2, sr=1, m_step=v, n_step=v)

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "m_idx % mr == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def lhs_layout(self, m: int, k: int) -> SmeLhsLayout:
        """The packed LHS format this kernel reads (``x16p2vlx2``)."""
        return SmeLhsLayout.for_svl(F16, 2, self.svl, m, k)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float16]:
        a: NDArray[np.float16] = self.lhs_layout(m, k).decode(lhs)
        return ftz16(a) if self.fz else a

    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        # Widening FMOPA of (bias, 0) with (1.0, 0): FPDot gives bias*1 + 0*0, so -0 -> +0.
        b = ftz16(rhs.bias) if self.fz else rhs.bias
        acc0 = b.astype(np.float32) + np.float32(0.0)
        return f16_pair_chain(np.broadcast_to(acc0, (lhs.shape[0], acc0.shape[0])), lhs, rhs.w, flush_w=rhs.flush_w)


class kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa(_Pf16Mopa):
    """SME2 MOPA [32 x 32 at SVL 512]; reads the ``...b`` packers' bias row despite its name."""

    name = "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa"
    variant = "pf16_gemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    clamp_kind = Clamp.FCLAMP


class kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa(_Pf16Mopa):
    """SME1 MOPA: same numerics; FMIN(max) then FMAX(min) in f16 (NaN -> 0x7E00)."""

    name = "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa"
    variant = "pf16_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    clamp_kind = Clamp.FMIN_FMAX
