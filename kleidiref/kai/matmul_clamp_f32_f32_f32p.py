"""KleidiAI ``matmul_clamp_f32_f32_f32p``: the pf32 GEMV kernels (M == 1 on the raw LHS row).

The accumulator starts as a copy of the bias (-0 kept); every k step is one FMLA rounded to
binary32; then the clamp.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from .._engine import fma32_chain
from ..numerics import Clamp
from .bias_rhs import BiasRhs, Pf32Kernel
from .interface import RawLhsKernel, TileParams

__all__ = [
    "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla",
    "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla",
]

F32 = np.dtype(np.float32)


class _Pf32Gemv(Pf32Kernel, RawLhsKernel):
    lhs_dtype = F32
    #: n_step in vectors of 32-bit lanes (16 for the SME2 kernel, 8 for SME1).
    n_step_vl: ClassVar[int]

    def tile_params(self) -> TileParams:
        return TileParams(mr=1, nr=2 * self.vls, kr=1, sr=1, m_step=1, n_step=self.n_step_vl * self.vls)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float32]:
        return self.raw_row(lhs, m, k)

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> BiasRhs:
        return self.bias_rhs(rhs, n, k, decode=False)  # else a zero-copy view of the packed blocks

    def accumulate(self, lhs: NDArray[np.float32], rhs: BiasRhs) -> NDArray[np.float32]:
        # The accumulator starts as a copy of the bias (-0 kept); under FZ it is flushed when
        # first read as an FMLA addend, which fma32_chain models.
        return fma32_chain(rhs.bias.reshape(1, -1), lhs, rhs.w, fz=self.fz, w_lows=rhs.w_lows)


class kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla(_Pf32Gemv):
    """SME2 GEMV for M == 1 on the raw LHS row: n_step = 16 * VLs; FCLAMP (flags = 2)."""

    name = "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla"
    variant = "pf32_gemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32_f32p/" + name + "_asm.S"
    clamp_kind = Clamp.FCLAMP
    n_step_vl = 16


class kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla(_Pf32Gemv):
    """SME1 GEMV (SVE FMLA indexed): n_step = 8 * VLs; FMIN(max) then FMAX(min)."""

    name = "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla"
    variant = "pf32_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32_f32p/" + name + "_asm.S"
    clamp_kind = Clamp.FMIN_FMAX
    n_step_vl = 8
