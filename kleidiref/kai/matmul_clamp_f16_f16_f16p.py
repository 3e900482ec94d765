"""KleidiAI ``matmul_clamp_f16_f16_f16p``: the pf16 GEMV kernels (M == 1 on the raw LHS row).

The SME2 dot kernel accumulates k pairs as the MOPA does (FPDotAdd_ZA); the SME1 MLA kernel
rounds once per k (FMLALB/FMLALT). The bias is widened by FCVT (no FZ16 flush, -0 kept).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from .._buffers import roundup
from .._engine import f16_mla_chain, f16_pair_chain
from ..numerics import Clamp, ftz16
from .bias_rhs import BiasRhs, Pf16Kernel
from .interface import RawLhsKernel, TileParams

__all__ = [
    "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla",
    "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot",
]

F16 = np.dtype(np.float16)


class _Pf16Gemv(Pf16Kernel, RawLhsKernel):
    lhs_dtype = F16
    n_step_vl: ClassVar[int]

    def tile_params(self) -> TileParams:
        return TileParams(mr=1, nr=self.vlh, kr=2, sr=1, m_step=1, n_step=self.n_step_vl * self.vlh)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float16]:
        a: NDArray[np.float16] = self.raw_row(lhs, m, k)
        return ftz16(a) if self.fz else a


class kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot(_Pf16Gemv):
    """SME2 GEMV (FDOT into ZA, same FPDotAdd_ZA as the MOPA): n_step = 8 * VLh."""

    name = "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot"
    variant = "pf16_gemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16_f16p/" + name + "_asm.S"
    clamp_kind = Clamp.FCLAMP
    n_step_vl = 8

    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        k = lhs.shape[1]
        a = np.zeros((1, roundup(k, 2)), dtype=F16)
        a[:, :k] = lhs  # lanes past K are predicated off: they read as 0
        # FCVT widens the bias: no FZ16 flush, -0 kept.
        return f16_pair_chain(rhs.bias.astype(np.float32).reshape(1, -1), a, rhs.w, flush_w=rhs.flush_w)


class kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla(_Pf16Gemv):
    """SME1 GEMV: FMLALB/FMLALT, one binary32 rounding per k (not per pair): n_step = 4 * VLh."""

    name = "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla"
    variant = "pf16_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16_f16p/" + name + "_asm.S"
    clamp_kind = Clamp.FMIN_FMAX
    n_step_vl = 4

    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        return f16_mla_chain(rhs.bias.astype(np.float32).reshape(1, -1), lhs, rhs.w, flush_w=rhs.flush_w)
