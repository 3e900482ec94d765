"""``kai_matmul_clamp_qai8_qai8_qsi8cxp``: the int8 (raw row) x qsi8cxp -> int8 GEMV.

Upstream family directory ``kai/ukernels/matmul/matmul_clamp_qai8_qai8_qsi8cxp/`` (SME2 dot).
XNNPACK runs it as the M == 1 kernel of ``pqs8_qc8w_gemm`` on SME2; it shares the packed RHS and
the requantizing epilogue of the MOPA kernels (:class:`~kleidiref.kai.matmul_clamp_qai8_qai8p_qsi8cxp.Pqs8Kernel`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .interface import RawLhsRow, TileParams
from .matmul_clamp_qai8_qai8p_qsi8cxp import I8, KR, VARIANT, Pqs8Kernel

__all__ = ["kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot"]


class kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot(RawLhsRow, Pqs8Kernel):
    """SME2 GEMV on the raw int8 LHS row (M == 1): nr = 2 VLs, n_step = 16 VLs [256].

    ``run_matmul(m, n, k, lhs, rhs_packed, dst, dst_stride_row, dst_stride_col, params)``: there is
    no lhs_stride argument.
    """

    name = "kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot"
    variant = VARIANT
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_qai8_qai8_qsi8cxp/" + name + "_asm.S"
    lhs_dtype = I8

    def tile_params(self) -> TileParams:
        # Note: the C header has no get_mr; mr = 1 (one row, m_step = 1).
        return TileParams(mr=1, nr=2 * self.vls, kr=KR, sr=1, m_step=1, n_step=16 * self.vls)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.int8]:
        return self.raw_row(lhs, m, k)
