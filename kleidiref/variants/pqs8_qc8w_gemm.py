"""``pqs8_qc8w_gemm``: int8 asymmetric activations x int8 per-channel weights -> int8 (docs/kernels.md §6).

XNNPACK config ``pqs8_qc8w_gemm_config``: SME2 ``32x32c4__neonsme2`` (M > 1) and ``1x32c4__neonsme2``
(M == 1, raw LHS row); SME1 has no 1-row kernel, so M == 1 runs the MOPA on a packed LHS.
Weights are packed by ``kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme`` (XNNPACK transposes
N x K weights to K x N first), which folds the input zero point into the int32 bias and the scale
multiplier into the scale. Per output element::

    bias'[n]  = bias[n] + (-izp) * sum_{k<K} W[k][n]   int32, wraps       (packer)
    scale'[n] = RN32(scale[n] * scale_multiplier)                          (packer)
    acc = bias'[n] + sum_k a[m][k] * W[k][n]          int32, exact, wraps (ADDHA + SMOPA / SDOT)
    y   = RN32(RN32(acc) * scale'[n])                 SCVTF, FMUL
    r   = FCVTZS(FRINTN(y))                           ties to even; saturating; NaN -> 0
    o   = r + output_zero_point                       int32, wraps
    out = low byte of clamp(o, min_value, max_value)  SME2 SCLAMP, SME1 SMAX then SMIN; UZP1 narrow

With FPCR.FZ the FMUL flushes subnormal inputs and tiny products to signed zero (from source).

The integer part is computed exactly with float32 BLAS in K chunks whose partial sums stay below
2**24 (``kleidiref.kai.int8_common.int8_matmul``); :func:`pack_weights` returns an immutable packed buffer
that keeps its own float32 decoding.
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
from ..kai.matmul_clamp_qai8_qai8_qsi8cxp import kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot
from ..kai.matmul_clamp_qai8_qai8p_qsi8cxp import (
    I8,
    VARIANT,
    Pqs8Kernel,
    Pqs8Mopa,
    Qsi8cxp2vlx4sbRhs,
    decode_qsi8cxp2vlx4sb,
    kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa,
    kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa,
    requantize,
)
from ..kai.pack import kai_lhs_pack_x8p2vlx4_x8_sme, kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme
from ..kai.params import check_i32, kai_matmul_requantize32_params, kai_rhs_pack_qsi8cx_params
from ..targets import Target, resolve_target, target_svl
from ..validate import check_alloc, check_bool

__all__ = [
    "PackedWeights",
    "Qsi8cxp2vlx4sbRhs",
    "decode_qsi8cxp2vlx4sb",
    "gemm",
    "gemm_packed",
    "kai_lhs_pack_x8p2vlx4_x8_sme",
    "kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot",
    "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa",
    "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa",
    "kai_matmul_requantize32_params",
    "kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme",
    "kai_rhs_pack_qsi8cx_params",
    "pack_weights",
    "reproduce_golden",
    "requantize",
    "select_kernel",
]

F32 = np.dtype(np.float32)
I32 = np.dtype(np.int32)


# The config's kernels, by the names kleidiref.configs gives them.
SME2_MOPA = alias(globals(), VARIANT, "sme2", "mopa", Pqs8Mopa)
SME1_MOPA = alias(globals(), VARIANT, "sme", "mopa", Pqs8Mopa)
SME2_GEMV = alias(globals(), VARIANT, "sme2", "gemv", kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot)


def select_kernel(target: Target, m: int) -> type[Pqs8Kernel]:
    """XNNPACK's pqs8 config (:mod:`kleidiref.configs`): SME2 MOPA, or the SME2 GEMV when M == 1;
    SME1 MOPA for every M (the SME1 config registers no ``gemm[0]``)."""
    return select_kai_kernel(VARIANT, target, m, Pqs8Kernel, "qs8_qc8w_gemm")


@dataclasses.dataclass(frozen=True)
class PackedWeights:
    """Weights packed once by ``kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme`` for one SVL."""

    n: int
    k: int
    svl: int
    input_zero_point: int
    rhs_packed: PackedRhs


def _check_int8(name: str, value: object) -> int:
    """A qint8 zero point or bound, as XNNPACK's int8_t parameters: in [-128, 127]."""
    v = check_i32(name, value)
    if not -128 <= v <= 127:
        raise ValueError(f"{name} = {v} is not an int8 value (XNNPACK passes it as int8_t)")
    return v


def pack_weights(
    rhs: NDArray[np.int8],
    requant_scale: NDArray[np.float32],
    *,
    input_zero_point: int,
    bias: NDArray[np.int32] | None = None,
    transpose_rhs: bool = False,
    target: Target | None = None,
) -> PackedWeights:
    """Pack as ``xnn_pack_kai_qs8_qc8w_weights_and_biases_sme``: N x K weights transposed to K x N.

    ``rhs`` is [N, K] ([K, N] with ``transpose_rhs``); ``requant_scale`` [N] is XNNPACK's
    ``RN32(RN32(s_in * s_w[n]) / s_out)`` (see :func:`kleidiref.quant.qai8.requantization_scale`);
    params ``{lhs_zero_point = input_zero_point, scale_multiplier = 1.0}``.
    """
    t = resolve_target(target)
    transpose_rhs = check_bool("transpose_rhs", transpose_rhs)
    w = check_dtype("rhs", rhs, I8, "qc8w weights are int8")
    if w.ndim != 2:
        raise ValueError(f"rhs must be 2-D, got shape {w.shape}")
    # The transposed copy, the packed bytes and the kernels' float32 decoding.
    check_alloc(f"packing pqs8 weights {w.shape}", (w.shape, I8), factor=2)
    check_alloc(f"packing pqs8 weights {w.shape}", ((w.shape[0] + 1, w.shape[1]), F32))
    w_kn = np.ascontiguousarray(w if transpose_rhs else w.T)  # XNNPACK's transpose_weights_x8
    k, n = w_kn.shape
    if k < 1:
        raise ValueError("K must be >= 1")
    izp = _check_int8("input_zero_point", input_zero_point)
    check_dtype("requant_scale", requant_scale, F32, "XNNPACK requantization scales are float32")
    with np.errstate(invalid="ignore"):
        bad = ~((requant_scale > 0) & (requant_scale < np.float32(256)))
    if np.any(bad):
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(
            f"requant_scale[{i}] = {float(requant_scale.reshape(-1)[i])!r} must be > 0 and < 256: XNNPACK's "
            "setup_scale_params_qx8_qcyw / init_requantization_scale_qx8_qc8w refuse to create the operator"
        )
    params = kai_rhs_pack_qsi8cx_params(lhs_zero_point=izp, scale_multiplier=1.0)
    svl = target_svl(t, "pqs8_qc8w_gemm's SME packer")
    packed = kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(svl).pack(w_kn, requant_scale, bias, params=params)
    return PackedWeights(n=n, k=k, svl=svl, input_zero_point=izp, rhs_packed=as_packed_rhs(packed))


def gemm_packed(
    lhs: NDArray[np.int8],
    weights: PackedWeights,
    *,
    output_zero_point: int,
    output_min: int = -128,
    output_max: int = 127,
    target: Target | None = None,
    kernel: str | None = None,
    fast: bool = True,
) -> NDArray[np.int8]:
    """:func:`gemm` with weights packed once by :func:`pack_weights` (same SVL as ``target``).

    ``fast=False`` always packs the LHS with ``kai_lhs_pack_x8p2vlx4_x8_sme`` and calls the
    kernel's ``run_matmul``; the default feeds the same rows to the same arithmetic directly.
    """
    t = resolve_target(target)
    fast = check_bool("fast", fast)
    a = check_dtype("lhs", lhs, I8, "pqs8 activations are int8")
    if not isinstance(weights, PackedWeights):
        raise TypeError("weights must come from pack_weights()")
    if a.ndim != 2 or a.shape[1] != weights.k:
        raise ValueError(f"lhs must be [M, {weights.k}], got shape {a.shape}")
    # The int8 output and LHS copy; the int32/float32 temporaries are bounded by row blocks.
    check_alloc(
        f"pqs8 gemm {a.shape} x [{weights.k}, {weights.n}]", ((a.shape[0], weights.n), I8), (a.shape, I8), factor=2
    )
    if weights.svl != t.svl_bits:
        raise ValueError(f"weights were packed for SVL {weights.svl}, the target has SVL {t.svl_bits}")
    lo, hi = _check_int8("output_min", output_min), _check_int8("output_max", output_max)
    if lo > hi:
        raise ValueError(f"output_min {lo} must be <= output_max {hi}")
    params = kai_matmul_requantize32_params(lo, hi, _check_int8("output_zero_point", output_zero_point))
    m, k, n = a.shape[0], weights.k, weights.n
    dst = np.zeros((m, n), dtype=np.int8)
    if m == 0 or n == 0:
        return dst
    if kernel is None:
        kcls: type[Any] = select_kernel(t, m)
    else:
        found = {c.name: c for c in (SME2_MOPA, SME1_MOPA, SME2_GEMV)}.get(kernel)
        if found is None:
            raise ValueError(f"{kernel!r} is not a pqs8_qc8w_gemm kernel")
        kcls = found
    kern = kcls(target_svl(t, kcls.name), fz=t.flush_to_zero)
    row = np.ascontiguousarray(a)
    if isinstance(kern, SME2_GEMV):
        if m != 1:
            raise ValueError(f"{kern.name} computes one row; M = {m}")
        kern.run_matmul(1, n, k, row, weights.rhs_packed, dst, n, 1, params)
    elif fast:
        # Note: fast path, same bits: the MOPA reads exactly these int8 rows from its packed LHS
        # (the packer only moves bytes; its K padding is zero and meets zero RHS rows).
        dst = kern.compute(row, kern.decode_rhs(np.frombuffer(weights.rhs_packed, np.uint8), n, k), params)
    else:
        lhs_packed = kai_lhs_pack_x8p2vlx4_x8_sme(t.svl_bits).pack(row)
        kern.run_matmul(m, n, k, lhs_packed, weights.rhs_packed, dst, n, 1, params)
    return dst


def gemm(
    lhs: NDArray[np.int8],
    rhs: NDArray[np.int8],
    *,
    input_zero_point: int,
    requant_scale: NDArray[np.float32],
    bias: NDArray[np.int32] | None = None,
    output_zero_point: int,
    output_min: int = -128,
    output_max: int = 127,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.int8]:
    """An int8 fully-connected layer exactly as XNNPACK's pqs8_qc8w path computes it.

    ``out = clamp(rint(RN32(RN32(bias + sum_k (a - izp) w) * requant_scale)) + output_zero_point)``
    with int32 wraparound. ``lhs`` int8 [M, K] (zero point ``input_zero_point``), ``rhs`` int8
    [N, K] ([K, N] with ``transpose_rhs``), ``requant_scale`` float32 [N] in XNNPACK's convention
    ``RN32(RN32(s_in * s_w[n]) / s_out)``, ``bias`` int32 [N] or None, output bounds int8.
    """
    t = resolve_target(target)
    w = pack_weights(
        rhs, requant_scale, input_zero_point=input_zero_point, bias=bias, transpose_rhs=transpose_rhs, target=t
    )
    return gemm_packed(
        lhs,
        w,
        output_zero_point=output_zero_point,
        output_min=output_min,
        output_max=output_max,
        target=t,
        kernel=kernel,
    )


def reproduce_golden(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute every result array of a ``pqs8_qc8w_gemm`` golden file from its inputs."""
    svl = int(inputs["meta_svl_bits"])
    lhs, rhs, bias, scale = inputs["lhs"], inputs["rhs"], inputs["bias"], inputs["scale"]
    pack_params = kai_rhs_pack_qsi8cx_params(int(inputs["lhs_zero_point"]), float(inputs["scale_multiplier"]))
    rq = kai_matmul_requantize32_params(int(inputs["out_min"]), int(inputs["out_max"]), int(inputs["out_zero_point"]))
    m, k = lhs.shape
    n = rhs.shape[0]
    lhs_packed = kai_lhs_pack_x8p2vlx4_x8_sme(svl).pack(lhs)
    rhs_packed = kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(svl).pack(
        np.ascontiguousarray(rhs.T), scale, bias, params=pack_params
    )
    res: dict[str, NDArray[Any]] = {"lhs_packed": lhs_packed, "rhs_packed": rhs_packed}
    for key, cls in (("out", SME2_MOPA), ("out_sme1", SME1_MOPA)):
        dst = np.zeros((m, n), dtype=np.int8)
        cls(svl).run_matmul(m, n, k, lhs_packed, rhs_packed, dst, n, 1, rq)
        res[key] = dst
    gemv = SME2_GEMV(svl)
    if m == 1:
        dst = np.zeros((1, n), dtype=np.int8)
        gemv.run_matmul(1, n, k, np.ascontiguousarray(lhs), rhs_packed, dst, n, 1, rq)
        res["out_gemv"] = dst
    tp, gp, sp = SME2_MOPA(svl).tile_params(), gemv.tile_params(), SME1_MOPA(svl).tile_params()
    vals = {
        "meta_mr": tp.mr,
        "meta_nr": tp.nr,
        "meta_kr": tp.kr,
        "meta_sr": tp.sr,
        "meta_m_step": tp.m_step,
        "meta_n_step": tp.n_step,
        "meta_gemv_nr": gp.nr,
        "meta_gemv_kr": gp.kr,
        "meta_gemv_n_step": gp.n_step,
        "meta_sme1_mr": sp.mr,
        "meta_sme1_nr": sp.nr,
    }
    res.update({key: np.array(v, dtype=np.int64) for key, v in vals.items()})
    return res


#: Golden variant ids this module reproduces.
GOLDEN = {"pqs8_qc8w_gemm": reproduce_golden}
