"""``pf16_gemm``: f16 x f16 -> f16 with binary32 accumulation (docs/kernels.md §3).

XNNPACK config ``pf16_gemm_config``: ``xnn_pf16_gemm_minmax_ukernel_32x32c2__neonsme2`` (M > 1) and
``1x32c2__neonsme2`` (M == 1) at SVL 512. K is consumed in pairs (kr = 2, K padded with 0):

    acc = f32(bias[n])          MOPA: widening FMOPA of the bias with 1.0 (-0 -> +0; FZ16 flushes
                                a subnormal bias); GEMV: FCVT (no flush, -0 kept)
    acc = RN32(acc + RN32(a[2p]*w[2p] + a[2p+1]*w[2p+1]))     FPDotAdd_ZA: two roundings per pair
    o   = RN16(acc)             FCVT, then (FZ16) flush a binary16 subnormal
    out = clamp_f16(o, RN16(min), RN16(max))   SME2 FCLAMP (NaN -> min); SME1 FMIN/FMAX (NaN kept)

The SME1 GEMV ``kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla`` differs: FMLALB/FMLALT round
once per k, ``acc = RN32(acc + a[k]*w[k][n])``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..configs import alias
from ..kai.interface import PackedLhsKernel, RawLhsKernel
from ..kai.matmul_clamp_f16_f16_f16p import (
    kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla,
    kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot,
)
from ..kai.matmul_clamp_f16_f16p_f16p import (
    kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa,
    kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa,
)
from ..kai.pack import (
    kai_lhs_pack_x16p2vlx2_x16_sme,
    kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme,
    kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme,
)
from ..targets import Target
from ._float_common import FloatVariant, PackedWeights

__all__ = [
    "PackedWeights",
    "gemm",
    "gemm_packed",
    "kai_lhs_pack_x16p2vlx2_x16_sme",
    "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla",
    "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot",
    "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa",
    "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa",
    "kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme",
    "pack_weights",
    "select_kernel",
]

VARIANT = "pf16_gemm"
F16 = np.dtype(np.float16)


# The config's kernels, by the names kleidiref.configs gives them.
SME2_MOPA = alias(globals(), VARIANT, "sme2", "mopa", PackedLhsKernel)
SME1_MOPA = alias(globals(), VARIANT, "sme", "mopa", PackedLhsKernel)
SME2_GEMV = alias(globals(), VARIANT, "sme2", "gemv", RawLhsKernel)
SME1_GEMV = alias(globals(), VARIANT, "sme", "gemv", RawLhsKernel)


SPEC = FloatVariant(
    name=VARIANT,
    dtype=F16,
    lhs_packer=kai_lhs_pack_x16p2vlx2_x16_sme,
    rhs_packer_nxk=kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme,
    rhs_packer_kxn=kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme,
    sme2_mopa=SME2_MOPA,
    sme1_mopa=SME1_MOPA,
    sme2_gemv=SME2_GEMV,
    sme1_gemv=SME1_GEMV,
    fallback="f16_gemm",
)


def select_kernel(target: Target, m: int) -> type[PackedLhsKernel] | type[RawLhsKernel]:
    """The kernel XNNPACK's pf16 config runs: SME2 before SME; the 1-row kernel when M == 1."""
    return SPEC.select_kernel(target, m)


def gemm(
    lhs: NDArray[np.float16],
    rhs: NDArray[np.float16],
    *,
    bias: NDArray[np.float16] | None = None,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float16]:
    """``lhs @ rhs.T + bias`` in f16 with f32 accumulation, as XNNPACK's pf16 path on ``target``.

    ``lhs`` [M, K] float16; ``rhs`` [N, K] float16 ([K, N] with ``transpose_rhs``); ``bias`` [N]
    float16 or None (zeros; XNNPACK converts an fp32 static bias with ``xnn_float16_from_float``,
    i.e. :func:`kleidiref.numerics.rn16`). Clamp bounds are narrowed to f16 (RNE) as the
    wrappers do. FPCR.FZ/FZ16 follow the target's ``flush_to_zero``.
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
    rhs: NDArray[np.float16],
    *,
    bias: NDArray[np.float16] | None = None,
    transpose_rhs: bool = False,
    target: Target | None = None,
) -> PackedWeights:
    """Pack weights and bias once for :func:`gemm_packed`, as XNNPACK packs them at model load.

    Same arguments and packers as :func:`gemm`. The kernels decode the packed bytes on the
    first call and reuse that decoding (as many bytes again as the packing) on every later one.
    """
    return SPEC.pack_weights(rhs, bias=bias, transpose_rhs=transpose_rhs, target=target)


def gemm_packed(
    lhs: NDArray[np.float16],
    weights: PackedWeights,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float16]:
    """:func:`gemm` on weights from :func:`pack_weights` (packed for the target's SVL): same bits."""
    return SPEC.gemm_packed(lhs, weights, clamp_min=clamp_min, clamp_max=clamp_max, target=target, kernel=kernel)


GOLDEN = {"pf16_gemm": SPEC.reproduce_golden, "pf16_gemm_fz": SPEC.reproduce_golden}
