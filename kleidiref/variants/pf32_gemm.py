"""``pf32_gemm``: f32 x f32 -> f32 on the KleidiAI SME/SME2 kernels (docs/kernels.md §2).

XNNPACK config ``pf32_gemm_config``: ``xnn_pf32_gemm_minmax_ukernel_32x32__neonsme2`` (M > 1) and
``1x32__neonsme2`` (M == 1) at SVL 512. Every k step is one fused multiply-add rounded to
binary32 (FMOPA / FMLA), in increasing k order, from the bias:

    acc = bias'[n]                        MOPA: fma32(1.0, bias, +0) (-0 -> +0); GEMV: bias copy
    acc = fma32(a[m][k], w[k][n], acc)    k = 0 .. K-1          (one rounding per k)
    out = clamp(acc)                      SME2: FCLAMP (NaN -> min); SME1: FMIN(max), FMAX(min)

The accumulator is binary32 throughout; NaNs are the default NaN 0x7FC00000.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..configs import alias
from ..kai.interface import PackedLhsKernel, RawLhsKernel
from ..kai.matmul_clamp_f32_f32_f32p import (
    kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla,
    kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla,
)
from ..kai.matmul_clamp_f32_f32p_f32p import (
    kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa,
    kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa,
)
from ..kai.pack import (
    kai_lhs_pack_f32p2vlx1_f32_sme,
    kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme,
    kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme,
)
from ..targets import Target
from ._float_common import FloatVariant, PackedWeights

__all__ = [
    "PackedWeights",
    "gemm",
    "gemm_packed",
    "kai_lhs_pack_f32p2vlx1_f32_sme",
    "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla",
    "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla",
    "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
    "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa",
    "kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme",
    "kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme",
    "pack_weights",
    "select_kernel",
]

VARIANT = "pf32_gemm"
F32 = np.dtype(np.float32)


# The config's kernels, by the names kleidiref.configs gives them.
SME2_MOPA = alias(globals(), VARIANT, "sme2", "mopa", PackedLhsKernel)
SME1_MOPA = alias(globals(), VARIANT, "sme", "mopa", PackedLhsKernel)
SME2_GEMV = alias(globals(), VARIANT, "sme2", "gemv", RawLhsKernel)
SME1_GEMV = alias(globals(), VARIANT, "sme", "gemv", RawLhsKernel)


SPEC = FloatVariant(
    name=VARIANT,
    dtype=F32,
    lhs_packer=kai_lhs_pack_f32p2vlx1_f32_sme,
    rhs_packer_nxk=kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme,
    rhs_packer_kxn=kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme,
    sme2_mopa=SME2_MOPA,
    sme1_mopa=SME1_MOPA,
    sme2_gemv=SME2_GEMV,
    sme1_gemv=SME1_GEMV,
    fallback="f32_gemm",
)


def select_kernel(target: Target, m: int) -> type[PackedLhsKernel] | type[RawLhsKernel]:
    """The kernel XNNPACK's pf32 config runs: SME2 before SME; the 1-row kernel when M == 1."""
    return SPEC.select_kernel(target, m)


def gemm(
    lhs: NDArray[np.float32],
    rhs: NDArray[np.float32],
    *,
    bias: NDArray[np.float32] | None = None,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float32]:
    """``lhs @ rhs.T + bias``, clamped, exactly as XNNPACK's pf32 path computes it on ``target``.

    ``lhs`` is [M, K] float32; ``rhs`` is [N, K] (XNNPACK's default weight layout) or [K, N] with
    ``transpose_rhs=True`` (``XNN_FLAG_TRANSPOSE_WEIGHTS``, packed by the kxn packer: same
    bytes). ``bias`` is [N] float32 or None (zeros). The kernel is the one XNNPACK would pick
    (SME2 before SME1; the 1-row GEMV for M == 1) unless ``kernel`` names one. FPCR.FZ is the
    target's ``flush_to_zero``.
    """
    return SPEC.gemm(
        lhs,
        rhs,
        bias=bias,
        clamp_min=clamp_min,
        clamp_max=clamp_max,
        transpose_rhs=transpose_rhs,
        target=target,
        kernel=kernel,
    )


def pack_weights(
    rhs: NDArray[np.float32],
    *,
    bias: NDArray[np.float32] | None = None,
    transpose_rhs: bool = False,
    target: Target | None = None,
) -> PackedWeights:
    """Pack weights and bias once for :func:`gemm_packed`, as XNNPACK packs them at model load.

    Same arguments and packers as :func:`gemm`. The kernels decode the packed bytes on the
    first call and reuse that decoding (as many bytes again as the packing) on every later one.
    """
    return SPEC.pack_weights(rhs, bias=bias, transpose_rhs=transpose_rhs, target=target)


def gemm_packed(
    lhs: NDArray[np.float32],
    weights: PackedWeights,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float32]:
    """:func:`gemm` on weights from :func:`pack_weights` (packed for the target's SVL): same bits."""
    return SPEC.gemm_packed(lhs, weights, clamp_min=clamp_min, clamp_max=clamp_max, target=target, kernel=kernel)


#: Golden variant ids this module reproduces.
GOLDEN = {"pf32_gemm": SPEC.reproduce_golden, "pf32_gemm_fz": SPEC.reproduce_golden}
