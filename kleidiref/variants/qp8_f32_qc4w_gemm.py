"""``qp8_f32_qc4w_gemm``: f32 activations x 4-bit per-channel weights -> f32, KleidiAI kernels (from source).

There are no golden vectors for this variant: everything here is from source.
XNNPACK ``init_qp8_f32_qc4w_gemm_config`` (src/configs/gemm-config.c), branch order SME2 -> SME
-> i8mm -> dotprod, wrappers in src/qp8-f32-qc4w-gemm/ around the KleidiAI kernels of
kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4cxp/ (KleidiAI ``495f6524d9``)::

    branch   M   XNNPACK ukernel (SVL 512)            KleidiAI kai_matmul_clamp_f32_...                   kr sr
    SME2     >1  16x64c4__neonsme2                    qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa          4  1
    SME2     1   1x64c4__neonsme2                     qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot              4  1
    SME      >1  16x64c4__neonsme                     qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa           8  2
    SME      1   1x64c4__neonsme                      qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot                8  2
    i8mm     >1  8x8c16s2__neoni8mm_mstep2            qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm              16  2
    i8mm     1   1x8c16s2__aarch64_neondot            qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod           16  2
    dotprod  >1  16x4c8s2__aarch64_neondot_mstep4     qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod           8  2
    dotprod  1   1x4c8s2__aarch64_neondot             qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod               8  2

The LHS is quantized per row by ``kai_lhs_quant_pack_qai8dxp_f32`` (:mod:`kleidiref.quant.qai8dx`,
rounding half away from zero). The weights ``w[n,k]`` in [-8, 7] (nibble minus the kernel zero
point 8 or 0) are packed, with ``lhs_zero_point = 1`` (``setup_packing_params_qs8_qc4w_izp_1``), by

* SME2 (``xnn_pack_kai_qs4_weights_and_biases_sme``): ``kai_rhs_pack_nxk_qsi4cxps1s0_qsu4cxs1s0_neon``:
  int32 ``rsum = sum_k w``, f32 scale as given; the kernels widen nibbles with LUTI4 to ``w``.
* SME, i8mm, dotprod (``xnn_pack_kai_qs4_weights_and_biases``): ``kai_rhs_pack_{nxk,kxn}_qsi4cxp_qs4cxs1s0``:
  int32 ``rsum = 16 * sum_k w``, f32 scale ``RN32(scale * 0.0625)``; the kernels widen nibbles
  with ``SHL #4`` / ``AND #0xF0``, i.e. to ``16 * w``.

Every kernel then computes (``W`` = ``w`` or ``16 w``, ``s`` = the packed scale)::

    acc = sum_{k < K32} q[m,k] * W[n,k]          int32, wraps (SMOPA / SDOT / SMMLA; K padding meets 0)
    acc = acc + (-zp[m]) * rsum[n]               MLA, int32, wraps
    f   = RN32(acc)                              SCVTF
    unfused (every MOPA, every NEON kernel):  sc = RN32(dq[m] * s[n]); y = RN32(f * sc); y = RN32(y + bias[n])
    fused (the SME2 sdot / SME1 dot GEMVs):    sc = RN32(s[n] * dq[m]); y = fma32(sc, f, bias[n])
    out = FCLAMP(y, min, max) on SME2;  FMIN(FMAX(y, min), max) on SME1 and NEON

With the 16x encoding ``f = 16 RN32(A)`` and ``sc = RN32(dq*scale)/16`` (exact unless subnormal),
so the result equals the qp8_f32_qc8w arithmetic on ``w``; the emulation keeps the packed form
so that int32 wraparound and subnormal scales behave as upstream. FPCR.FZ (the target's
``flush_to_zero``) applies to the kernels' float steps; the packer's ``scale * 0.0625`` runs at
operator creation, outside the threadpool, so without FZ.

The integer part is exact (float32 BLAS in K chunks whose partial sums stay below 2**24,
``kleidiref.kai.int8_common.int8_matmul``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..configs import Branch, kai_branch, kai_choice, select_kai_kernel
from ..kai.matmul_clamp_f32_qai8dxp_qsi4cxp import (
    KERNELS,
    VARIANT,
    Qc4wKernel,
    kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa,
    kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm,
)
from ..targets import Target, resolve_target
from ..validate import check_alloc, check_bool, check_output_range

__all__ = [
    "KERNELS",
    "Qc4wKernel",
    "branch_of",
    "gemm",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa",
    "kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm",
    "select_kernel",
    "xnn_kernel_name",
]

F32 = np.float32


def branch_of(target: Target) -> Branch | None:
    """The config branch taken on ``target`` (None: the config is NULL, XNNPACK runs qd8_f32_qc4w)."""
    return kai_branch(VARIANT, target)


def select_kernel(target: Target, m: int) -> type[Qc4wKernel]:
    """The kernel XNNPACK runs for M rows (``qp8gemm[0]`` when M == 1, else ``qp8gemm[mr - 1]``)."""
    return select_kai_kernel(VARIANT, target, m, Qc4wKernel, "qd8_f32_qc4w_gemm")


def xnn_kernel_name(target: Target, m: int) -> tuple[str, int, int]:
    """``(XNNPACK ukernel, mr, nr)``; SME tiles scale with the SVL (names as at that SVL)."""
    choice = kai_choice(VARIANT, target, m)
    if choice is None:
        select_kernel(target, m)  # raises, naming the missing branch
        raise AssertionError  # pragma: no cover
    return choice.xnn_kernel, choice.mr, choice.nr


def _check(
    lhs: object, rhs: object, scale: object, bias: object
) -> tuple[NDArray[np.float32], NDArray[np.int8], NDArray[np.float32], NDArray[np.float32]]:
    if not isinstance(lhs, np.ndarray) or lhs.dtype != F32 or lhs.ndim != 2:
        raise TypeError("lhs must be a 2-D float32 array [M, K] (quantized per row by the kernel path)")
    if not isinstance(rhs, np.ndarray) or rhs.dtype != np.int8 or rhs.ndim != 2:
        raise TypeError("rhs must be a 2-D int8 array of signed 4-bit weights (nibble - zero point)")
    if rhs.size and (int(rhs.min()) < -8 or int(rhs.max()) > 7):
        raise ValueError("4-bit weights must lie in [-8, 7] (kai_rhs_pack_*_qsi4cx* take nibbles)")
    n, k = rhs.shape
    if lhs.shape[1] != k:
        raise ValueError(f"K mismatch: lhs is {lhs.shape}, rhs is {rhs.shape} ([N, K])")
    if k < 1:
        raise ValueError("K must be >= 1 (KAI_ASSERT in the packers)")
    if not isinstance(scale, np.ndarray) or scale.dtype != F32 or scale.shape != (n,):
        raise TypeError(f"scale must be a float32 array of shape ({n},)")
    if bias is None:
        b = np.zeros(n, F32)  # XNNPACK substitutes a zero bias; the packers write zeros for NULL
    elif not isinstance(bias, np.ndarray) or bias.dtype != F32 or bias.shape != (n,):
        raise TypeError(f"bias must be a float32 array of shape ({n},) or None")
    else:
        b = bias
    return lhs, rhs, scale, b


def gemm(
    lhs: NDArray[np.float32],
    rhs: NDArray[np.int8],
    scale: NDArray[np.float32],
    *,
    bias: NDArray[np.float32] | None = None,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float32]:
    """``[M, N]`` f32 as XNNPACK's qp8_f32_qc4w path computes it (output bits; no packed buffers).

    ``lhs`` [M, K] float32; ``rhs`` int8 [N, K] (or [K, N] with ``transpose_rhs``) holding the
    signed 4-bit weights in [-8, 7]; ``scale`` float32 [N]; ``bias`` float32 [N] or None.
    ``kernel`` names a KleidiAI kernel of :data:`KERNELS`; by default the one ``target`` selects.
    """
    t = resolve_target(target)
    lo, hi = check_output_range(clamp_min, clamp_max, op="xnn_create_fully_connected_nc_qp8_f32_qc4w")
    w_in = rhs.T if check_bool("transpose_rhs", transpose_rhs) and isinstance(rhs, np.ndarray) else rhs
    a, w, sc_in, bias32 = _check(lhs, w_in, scale, bias)
    m, n = a.shape[0], w.shape[0]
    # The weights as float32 (twice), the quantized rows and the output with its temporaries.
    check_alloc(f"qc4w gemm [{m}, {a.shape[1]}] x [{a.shape[1]}, {n}]", ((n, a.shape[1]), F32), factor=3)
    check_alloc(f"qc4w gemm [{m}, {a.shape[1]}] x [{a.shape[1]}, {n}]", ((m, n), F32), ((m, a.shape[1]), F32), factor=4)
    if kernel is None:
        kern = select_kernel(t, max(m, 1))
    elif kernel in KERNELS:
        kern = KERNELS[kernel]
    else:
        raise ValueError(f"{kernel!r} is not a qp8_f32_qc4w KleidiAI kernel (one of {', '.join(KERNELS)})")
    if m == 0 or n == 0:
        return np.zeros((m, n), F32)
    return kern.run(a, w, sc_in, bias32, (lo, hi), fz=t.flush_to_zero)
