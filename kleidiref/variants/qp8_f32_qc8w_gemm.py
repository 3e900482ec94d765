"""``qp8_f32_qc8w_gemm``: f32 activations x int8 per-channel weights -> f32 (docs/kernels.md §4, §5).

XNNPACK config ``qp8_f32_qc8w_gemm_config`` (SME2 branch): ``16x64c4__neonsme2`` (M > 1) and
``1x64c4__neonsme2`` (M == 1) at SVL 512; SME branch likewise; without SME the i8mm branch
(``16x4c8__neoni8mm_mstep4`` / ``1x4c8__aarch64_neondot``) or the dotprod branch
(``16x4c4__aarch64_neondot_mstep4`` / ``1x4c4__aarch64_neondot``), see "NEON kernels" below.
The LHS rows are quantized dynamically per row to int8 by ``kai_lhs_quant_pack_qai8dxp_f32``
(mr of the kernel, or 1 for the GEMV; kr 4 (SME, NEON dotprod) or 8 (NEON i8mm), sr 1);
the weights are packed with their per-channel scale, row sums and f32 bias by
``kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon`` (or the kxn sibling). Per output element::

    acc = sum_{k < K32} q[m][k] * W[k][n]       int32, exact, wraps (SMOPA / SDOT)
    acc = acc + (-zp[m]) * rsum[n]              int32 MLA, wraps (rsum = lhs_zero_point * sum W)
    f   = RN32(acc)                             SCVTF
    MOPA (1vlx4vl): sc = RN32(dq[m] * scale[n])     FMUL
                    y  = RN32(sc * f)               FMUL
                    y  = RN32(y + bias[n])          FADD       (two roundings)
    GEMV (1x4vl):   sc = RN32(scale[n] * dq[m])     FMUL
                    y  = fma32(sc, f, bias[n])      FMLA       (one rounding)
    out = SME2: FCLAMP(y, min, max)  (NaN -> min)
          SME1: FMIN(FMAX(y, min), max)  (NaN propagates)

With FPCR.FZ (the target's ``flush_to_zero``) the float steps flush subnormal inputs and tiny
results to signed zero (from source: no golden vectors cover FZ in the quantized kernels).

NEON kernels (from source, no golden vectors): ``kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm``
(SMMLA), ``..._qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod`` (SDOT, two partial sums joined by ADDP),
``..._qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod`` and ``..._qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod``
(SDOT by element). nr 4, kr 8 (i8mm branch) or 4 (dotprod branch), sr 1, mr 4 (m_step 16) or 1.
All four share one epilogue, that of the SME1 MOPA (every step a separate instruction)::

    acc = SMMLA / SDOT (+ ADDP) over K32        int32, wraps (the sum mod 2**32 is exact)
    acc = MLA(acc, rsum[n], -zp[m])             int32, wraps
    sc  = RN32(scale[n] * dq[m])                FMUL
    f   = RN32(acc)                             SCVTF
    y   = RN32(f * sc)                          FMUL
    y   = RN32(y + bias[n])                     FADD
    out = FMIN(FMAX(y, min), max)               NaN propagates

The integer part is computed exactly with float32 BLAS in K chunks whose partial sums stay below
2**24 (``kleidiref.kai.int8_common.int8_matmul``). :func:`pack_weights` returns an immutable packed buffer
that keeps its own float32 decoding, so repeated calls on the same weights skip the decode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import (
    PackedRhs,
    as_packed_rhs,
    check_dtype,
)
from ..configs import alias, select_kai_kernel
from ..kai.matmul_clamp_f32_qai8dxp_qsi8cxp import (
    KR,
    VARIANT,
    Qp8Kernel,
    Qsi8cxpRhs,
    decode_qsi8cxp,
    kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa,
    kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm,
)
from ..kai.pack import (
    Qai8dxpRows,
    Qsi8cxpRhsPacker,
    kai_lhs_quant_pack_qai8dxp_f32,
    kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon,
    kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon,
)
from ..kai.params import kai_rhs_pack_qsi8cx_params
from ..quant.qai8dx import quantize_qai8dx
from ..targets import Target, resolve_target, target_svl
from ..validate import check_alloc, check_bool, check_output_range

__all__ = [
    "PackedWeights",
    "Qai8dxpRows",
    "Qsi8cxpRhs",
    "decode_qsi8cxp",
    "gemm",
    "gemm_packed",
    "kai_lhs_quant_pack_qai8dxp_f32",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm",
    "kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon",
    "kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon",
    "kai_rhs_pack_qsi8cx_params",
    "pack_weights",
    "reproduce_golden",
    "select_kernel",
]

F32 = np.dtype(np.float32)
I8 = np.dtype(np.int8)


# The config's kernels, by the names kleidiref.configs gives them.
SME2_MOPA = alias(globals(), VARIANT, "sme2", "mopa", Qp8Kernel)
SME1_MOPA = alias(globals(), VARIANT, "sme", "mopa", Qp8Kernel)
SME2_GEMV = alias(globals(), VARIANT, "sme2", "gemv", Qp8Kernel)
SME1_GEMV = alias(globals(), VARIANT, "sme", "gemv", Qp8Kernel)
NEON_I8MM = alias(globals(), VARIANT, "i8mm", "mopa", Qp8Kernel)
NEON_I8MM_GEMV = alias(globals(), VARIANT, "i8mm", "gemv", Qp8Kernel)
NEON_DOT = alias(globals(), VARIANT, "dotprod", "mopa", Qp8Kernel)
NEON_DOT_GEMV = alias(globals(), VARIANT, "dotprod", "gemv", Qp8Kernel)
_KERNELS: dict[str, type[Qp8Kernel]] = {
    c.name: c for c in (SME2_MOPA, SME1_MOPA, SME2_GEMV, SME1_GEMV, NEON_I8MM, NEON_I8MM_GEMV, NEON_DOT, NEON_DOT_GEMV)
}


def select_kernel(target: Target, m: int) -> type[Qp8Kernel]:
    """The kernel XNNPACK's qp8_f32_qc8w config runs (:mod:`kleidiref.configs`); the GEMV when M == 1.

    Branch order of ``init_qp8_f32_qc8w_gemm_config``: SME2 -> SME -> i8mm -> dotprod.
    """
    return select_kai_kernel(VARIANT, target, m, Qp8Kernel, "qd8_f32_qc8w_gemm")


# ---------------------------------------------------------------------------------------------
# Friendly entry points
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PackedWeights:
    """Weights packed once by ``kai_rhs_pack_{nxk,kxn}_qsi8cxp_qsi8cx_neon`` for one kernel family.

    ``rhs_packed`` is an immutable :class:`~kleidiref._buffers.PackedRhs`; the
    kernels decode it once and reuse the decoding (it cannot go stale). ``nr`` / ``kr`` are the
    packing parameters (4 VLs / 4 for the SME kernels, 4 / 8 or 4 / 4 for the NEON ones).
    """

    n: int
    k: int
    svl: int | None
    rhs_packed: PackedRhs
    nr: int
    kr: int


def _pack_params(target: Target, kernel: str | None) -> tuple[int, int]:
    """``(nr, kr)`` the RHS is packed with for ``kernel`` (or the kernels ``target`` selects)."""
    if kernel is not None:
        p = _resolve_kernel(kernel, target, 2)(target.svl_bits).tile_params()
        return p.nr, p.kr
    if not target.has_sme:
        try:
            p = select_kernel(target, 2)(target.svl_bits).tile_params()
        except ValueError:
            if target.svl_bits is None:
                raise  # no qp8 kernel and no SVL to pack SME tiles for
            # Note: no qp8 kernel on this target; pack for the SME tiles (gemm_packed refuses).
        else:
            return p.nr, p.kr
    return 4 * (target_svl(target, "the SME qp8_f32_qc8w packing") // 32), KR


def pack_weights(
    rhs: NDArray[np.int8],
    scale: NDArray[np.float32],
    *,
    bias: NDArray[np.float32] | None = None,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
) -> PackedWeights:
    """Pack int8 weights as ``xnn_pack_kai_qs8_weights_and_biases`` does (sr 1).

    nr / kr are those of ``kernel`` or of the kernels ``target`` selects: 4 VLs / 4 (SME),
    4 / 8 (NEON i8mm branch), 4 / 4 (NEON dotprod branch). ``rhs`` is [N, K] (nxk packer) or
    [K, N] with ``transpose_rhs=True`` (kxn packer); params ``{lhs_zero_point = 1,
    scale_multiplier = 1.0}`` (``setup_packing_params_qs8_qc8w``).
    """
    t = resolve_target(target)
    transpose_rhs = check_bool("transpose_rhs", transpose_rhs)
    w = check_dtype("rhs", rhs, I8, "qc8w weights are int8")
    if w.ndim != 2:
        raise ValueError(f"rhs must be 2-D, got shape {w.shape}")
    n, k = w.shape[::-1] if transpose_rhs else w.shape
    if k < 1:
        raise ValueError("K must be >= 1")
    # The packed bytes and the kernels' float32 decoding of them.
    check_alloc(f"packing qc8w weights [{n}, {k}]", ((n + 1, k), F32), factor=2)
    packer: Qsi8cxpRhsPacker = (
        kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon(t.svl_bits)
        if transpose_rhs
        else kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(t.svl_bits)
    )
    nr, kr = _pack_params(t, kernel)
    packed = packer.pack(w, scale, bias, nr=nr, kr=kr)
    return PackedWeights(n=n, k=k, svl=t.svl_bits, rhs_packed=as_packed_rhs(packed), nr=nr, kr=kr)


def _resolve_kernel(kernel: str | None, target: Target, m: int) -> type[Qp8Kernel]:
    if kernel is None:
        return select_kernel(target, m)
    found = _KERNELS.get(kernel)
    if found is None:
        raise ValueError(f"{kernel!r} is not a qp8_f32_qc8w_gemm kernel")
    return found


def gemm_packed(
    lhs: NDArray[np.float32],
    weights: PackedWeights,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    target: Target | None = None,
    kernel: str | None = None,
    fast: bool = True,
) -> NDArray[np.float32]:
    """:func:`gemm` with weights packed once by :func:`pack_weights` (same SVL as ``target``).

    ``fast=False`` always goes through ``kai_lhs_quant_pack_qai8dxp_f32`` and the kernel's
    ``run_matmul`` on the packed buffers; the default skips the packed-LHS round trip for finite
    inputs (bit-identical; see the tests).
    """
    t = resolve_target(target)
    lo, hi = check_output_range(clamp_min, clamp_max, op="xnn_create_fully_connected_nc_qp8_f32_qc8w")
    fast = check_bool("fast", fast)
    a = check_dtype("lhs", lhs, F32, "qp8 activations are float32 (quantized per row by the kernel path)")
    if not isinstance(weights, PackedWeights):
        raise TypeError("weights must come from pack_weights()")
    if a.ndim != 2 or a.shape[1] != weights.k:
        raise ValueError(f"lhs must be [M, {weights.k}], got shape {a.shape}")
    m, k, n = a.shape[0], weights.k, weights.n
    # The quantized rows and the output with the kernels' [M, N] temporaries.
    check_alloc(f"qc8w gemm [{m}, {k}] x [{k}, {n}]", ((m, n), F32), ((m + 1, k), F32), factor=4)
    kcls = _resolve_kernel(kernel, t, max(m, 1))
    if kcls.neon_tiles is None and weights.svl != t.svl_bits:
        raise ValueError(f"weights were packed for SVL {weights.svl}, the target has SVL {t.svl_bits}")
    kern = kcls(t.svl_bits, fz=t.flush_to_zero)
    if (kern.get_nr(), kern.get_kr()) != (weights.nr, weights.kr):
        raise ValueError(
            f"weights were packed with nr {weights.nr}, kr {weights.kr}; {kern.name} reads "
            f"nr {kern.get_nr()}, kr {kern.get_kr()} (pack_weights(..., kernel=...))"
        )
    if m == 0 or n == 0:
        return np.zeros((m, n), dtype=np.float32)
    row = np.ascontiguousarray(a)
    if not fast or not bool(np.isfinite(row).all()):
        # XNNPACK packs the LHS with the kernel's mr (mr = 1 for the GEMV).
        dst = np.empty((m, n), dtype=np.float32)  # every element is written by the kernel
        lhs_packed = kai_lhs_quant_pack_qai8dxp_f32(t.svl_bits).pack(row, mr=kern.get_mr(), kr=kern.get_kr(), sr=1)
        kern.run_matmul(m, n, k, lhs_packed, weights.rhs_packed, dst, n * 4, 4, float(lo), float(hi))
        return dst
    # Note: fast path, same bits: the codes, -zp and dq the packer would store (finite rows), fed
    # to the same kernel arithmetic without the packed-layout round trip. The K32 padding is
    # skipped: it meets the packer's zero RHS padding and adds 0.
    q, dq, zp = quantize_qai8dx(row, k_block_len=kern.get_kr())
    rows = Qai8dxpRows(q, (-zp).astype(np.int32), dq)
    return kern.compute(rows, kern.decode_rhs(np.frombuffer(weights.rhs_packed, np.uint8), n, k), (lo, hi))


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
    """``clamp(dequant(quant(lhs)) @ (rhs * scale).T + bias)`` exactly as XNNPACK's qp8 path does it.

    ``lhs`` [M, K] float32 is quantized per row (``kai_lhs_quant_pack_qai8dxp_f32``); ``rhs`` is
    int8 [N, K] (or [K, N] with ``transpose_rhs``), per-channel ``scale`` float32 [N], ``bias``
    float32 [N] or None. M == 1 runs the GEMV (LHS packed with mr = 1) unless ``kernel`` names
    one. FPCR.FZ is the target's ``flush_to_zero``.
    """
    t = resolve_target(target)
    w = pack_weights(rhs, scale, bias=bias, transpose_rhs=transpose_rhs, target=t, kernel=kernel)
    return gemm_packed(lhs, w, clamp_min=clamp_min, clamp_max=clamp_max, target=t, kernel=kernel)


# ---------------------------------------------------------------------------------------------
# Golden vectors
# ---------------------------------------------------------------------------------------------


def reproduce_golden(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute every result array of a ``qp8_f32_qc8w_gemm`` golden file from its inputs."""
    svl = int(inputs["meta_svl_bits"])
    lhs, rhs, bias, scale = inputs["lhs"], inputs["rhs"], inputs["bias"], inputs["scale"]
    lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
    params = kai_rhs_pack_qsi8cx_params(int(inputs["lhs_zero_point"]), float(inputs["scale_multiplier"]))
    m, k = lhs.shape
    n = rhs.shape[0]
    mopa, gemv_k = SME2_MOPA(svl), SME2_GEMV(svl)
    tp, gp, sp = mopa.tile_params(), gemv_k.tile_params(), SME1_MOPA(svl).tile_params()
    quant = kai_lhs_quant_pack_qai8dxp_f32(svl)
    lhs_packed = quant.pack(lhs, mr=tp.mr, kr=tp.kr, sr=tp.sr)
    rhs_packed = kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(svl).pack(rhs, scale, bias, nr=tp.nr, kr=tp.kr, params=params)
    res: dict[str, NDArray[Any]] = {"lhs_packed": lhs_packed, "rhs_packed": rhs_packed}

    def run(cls: type[Qp8Kernel], lhs_buf: NDArray[np.uint8]) -> NDArray[np.float32]:
        dst = np.zeros((m, n), dtype=np.float32)
        cls(svl).run_matmul(m, n, k, lhs_buf, rhs_packed, dst, n * 4, 4, lo, hi)
        return dst

    res["out"] = run(SME2_MOPA, lhs_packed)
    res["out_sme1"] = run(SME1_MOPA, lhs_packed)
    if m == 1:
        gemv_lhs = quant.pack(lhs, mr=1, kr=gp.kr, sr=gp.sr)
        res["lhs_packed_gemv"] = gemv_lhs
        res["out_gemv"] = run(SME2_GEMV, gemv_lhs)
        res["out_gemv_sme1"] = run(SME1_GEMV, gemv_lhs)
    vals = {
        "meta_mr": tp.mr,
        "meta_nr": tp.nr,
        "meta_kr": tp.kr,
        "meta_sr": tp.sr,
        "meta_m_step": tp.m_step,
        "meta_n_step": tp.n_step,
        "meta_gemv_mr": gp.mr,
        "meta_gemv_nr": gp.nr,
        "meta_gemv_kr": gp.kr,
        "meta_gemv_sr": gp.sr,
        "meta_gemv_n_step": gp.n_step,
        "meta_sme1_mr": sp.mr,
        "meta_sme1_nr": sp.nr,
    }
    res.update({key: np.array(v, dtype=np.int64) for key, v in vals.items()})
    return res


#: Golden variant ids this module reproduces.
GOLDEN = {"qp8_f32_qc8w_gemm": reproduce_golden}
