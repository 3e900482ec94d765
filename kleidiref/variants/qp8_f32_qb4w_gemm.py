"""``qp8_f32_qb4w_gemm``: f32 activations x blockwise int4 weights (bf16 scales) -> f32.

Activations are quantized per row to int8 by ``kai_lhs_quant_pack_qai8dxp_f32`` (docs/kernels.md
§4); weights are signed 4-bit with one bf16 scale per block of ``bl`` along K. Two paths:

* **NEON, what XNNPACK runs** (``init_qp8_f32_qb4w_gemm_config`` has no SME branch; docs/kernels.md
  §7.2, golden id ``qp8_f32_qb4w_gemm_neon``): RHS ``kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0``
  (nr 4, bias NULL, then XNNPACK's bias patch on the real channels), LHS with mr 4 (1 when
  M == 1). i8mm branch (kr 16, sr 2): ``..._qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm`` and
  ``..._qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod`` (M == 1); dotprod branch (kr 8, sr 2):
  ``..._qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod`` and ``..._qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod``.
* **SME2, KleidiAI's own kernels** (docs/kernels.md §7.2, golden id ``qp8_f32_qb4w_gemm``): RHS
  ``kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon`` (nr 4*VLs, kr 8, sr 2, bias in the
  packer), ``..._qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa`` and
  ``..._qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot`` (M == 1). XNNPACK never selects them.

Per output element, in kernel order (binary32; details in ``kleidiref.kai.qb4w_common.qb4w_matmul``)::

    isum_qb = sum_{k in qb} q[m,k] * w[n,k]           exact int32 (SMMLA / SDOT / SMOPA)
    facc    = fma32(RN32(isum_qb), d_qb[n], facc)      qb = 0..nb-1 (MOPA: FMUL for qb = 0)
    facc    = fma32(RN32(-zp[m]), rsum[n], facc)
    y       = RN32(RN32(facc * dq[m]) + bias[n])       NEON, SME2 MOPA (unfused)
            = fma32(facc, dq[m], bias[n])              SME2 GEMV (fused)
    out     = FMIN(FMAX(y, min), max)  NEON (NaN propagates) | FCLAMP(y, min, max)  SME2

The packers and kernels are in :mod:`kleidiref.kai` (``kai/pack/rhs_pack_*qsi4c32p*``,
``kai/matmul_clamp_f32_qai8dxp_qsi4c32p``); this module is XNNPACK's side of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import (
    check_count,
)
from ..configs import alias, select_kai_kernel
from ..kai.layouts import Qsi4c32pLayout
from ..kai.matmul_clamp_f32_qai8dxp_qsi4c32p import (
    VARIANT,
    Qb4wKernel,
    kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot,
    kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod,
    kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm,
)
from ..kai.pack import Qai8dxpRows, kai_lhs_quant_pack_qai8dxp_f32
from ..kai.pack.rhs_pack_qsi4c32p_qsu4c32s1s0 import (
    Qsi4c32pPacker,
    kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0,
    kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0,
    kai_rhs_pack_qsi4c32p_params,
)
from ..kai.pack.rhs_pack_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon import (
    kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon,
    kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon,
)
from ..kai.qb4w_common import (
    PreparedRhs,
    prepare_rhs,
)
from ..quant import qb4
from ..quant.qai8dx import quantize_qai8dx
from ..targets import Target, resolve_target
from ..validate import check_alloc, check_bool, check_output_range

__all__ = [
    "PreparedQb4w",
    "Qai8dxpRows",
    "emulated_path",
    "gemm",
    "kai_lhs_quant_pack_qai8dxp_f32",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm",
    "kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
    "kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
    "kai_rhs_pack_qsi4c32p_params",
    "prepare_weights",
    "reproduce_golden",
    "reproduce_golden_neon",
    "select_kernel",
    "xnn_pack_kai_qb4_weights_and_biases",
]

F32 = np.float32


def xnn_pack_kai_qb4_weights_and_biases(
    rhs: NDArray[np.uint8],
    scales_bf16: NDArray[np.uint16],
    bias: NDArray[np.float32] | None,
    *,
    n: int,
    k: int,
    bl: int,
    kr: int,
    sr: int,
    nr: int = 4,
    transpose_weights: bool = False,
) -> NDArray[np.uint8]:
    """XNNPACK's ``xnn_pack_kai_qb4_weights_and_biases`` (src/reference/packing.cc).

    1. ``kai_run_rhs_pack_{nxk,kxn}_qsi4c32p_qsu4c32s1s0`` with ``bias = NULL`` (KleidiAI writes
       zeros), ``{lhs_zero_point = 1, rhs_zero_point = 8, kai_dt_bf16}``,
       ``scale_stride = (K/bl) * 2``;
    2. bias patch (``xnn_init_qs8_qc8w_scale_fp32_params`` on the bias slots of each nr-block):
       real channels get ``bias[n]``, padded channels keep 0.
    """
    packer: Qsi4c32pPacker = (
        kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0() if transpose_weights else kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0()
    )
    out = packer.pack(rhs, scales_bf16, None, nr=nr, kr=kr, sr=sr, bl=bl, n=n, k=k)
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.dtype != F32 or bias.shape != (n,):
            raise TypeError(f"bias must be a float32 array of shape ({n},) or None")
        fmt = Qsi4c32pLayout(nr, bl, kr // sr, n, k, "qsi4c32p")
        g, stride = fmt.blocks, fmt.stride
        view = out.reshape(g, stride)[:, stride - 4 * nr :]
        slots = np.zeros(g * nr, dtype="<f4")
        slots[:n] = bias
        view[...] = slots.view(np.uint8).reshape(g, 4 * nr)
    return out


SME2_MOPA = kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa
SME2_DOT = kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot
# The config's kernels, by the names kleidiref.configs gives them (the SME2 ones above are in no
# XNNPACK config).
NEON_I8MM = alias(globals(), VARIANT, "i8mm", "mopa", Qb4wKernel)
NEON_I8MM_GEMV = alias(globals(), VARIANT, "i8mm", "gemv", Qb4wKernel)
NEON_DOT = alias(globals(), VARIANT, "dotprod", "mopa", Qb4wKernel)
NEON_DOT_GEMV = alias(globals(), VARIANT, "dotprod", "gemv", Qb4wKernel)

#: Kernel -> its sibling for the other M regime (same packed RHS).
_FAMILY: dict[type[Qb4wKernel], tuple[type[Qb4wKernel], type[Qb4wKernel]]] = {
    c: pair for pair in ((SME2_MOPA, SME2_DOT), (NEON_I8MM, NEON_I8MM_GEMV), (NEON_DOT, NEON_DOT_GEMV)) for c in pair
}


def select_kernel(target: Target, m: int) -> type[Qb4wKernel]:
    """The kernel XNNPACK's ``qp8_f32_qb4w_gemm_config`` runs on ``target`` for an M-row problem.

    # Note: XNNPACK has no SME/SME2 branch for this variant, so on an SME2 CPU the NEON path is
    # what runs and what is emulated by default: i8mm when the target has FEAT_I8MM
    # (``16x4x32_neon_i8mm``, GEMV ``1x4x32_neon_dotprod`` for M == 1), otherwise dotprod
    # (``16x4_neon_dotprod``, GEMV ``1x4_neon_dotprod``). KleidiAI's SME2 kernels are reachable
    # only by name (``gemm(..., kernel=...)``).
    """
    m = check_count("m", m, minimum=1)
    return select_kai_kernel(VARIANT, target, m, Qb4wKernel, "qd8_f32_qb4w_gemm")


def emulated_path(target: Target, m: int) -> str:
    """A sentence naming the kernel :func:`select_kernel` picks and why."""
    k = select_kernel(target, m)
    branch = "i8mm" if target.i8mm else "dotprod"
    return (
        f"{k.name} (XNNPACK qp8_f32_qb4w NEON {branch} branch, M={'1 GEMV' if m == 1 else m}; "
        "XNNPACK has no SME2 qb4w branch)"
    )


@dataclasses.dataclass(frozen=True)
class PreparedQb4w:
    """Weights packed once for one kernel family, plus their decoded BLAS operands.

    ``rhs_packed`` are the bytes the kernel reads; ``operand`` is what the exact fast path
    multiplies (see ``kleidiref.kai.qb4w_common.PreparedRhs``).
    """

    family: tuple[str, str]
    svl: int | None
    n: int
    k: int
    bl: int
    rhs_packed: NDArray[np.uint8]
    operand: PreparedRhs


def _kernel_cls(name: str) -> type[Qb4wKernel]:
    found = {c.name: c for c in _FAMILY}.get(name)
    if found is None:
        raise ValueError(f"{name!r} is not a qp8_f32_qb4w kernel (one of {sorted(c.name for c in _FAMILY)})")
    return found


def _as_codes(rhs: NDArray[Any], transpose_rhs: bool, n: int | None) -> tuple[NDArray[np.uint8], int, int]:
    """XNNPACK's uint8 nibble pairs (zero point 8) and (N, K) from int4 codes or packed nibbles."""
    if not isinstance(rhs, np.ndarray) or rhs.ndim != 2:
        raise TypeError("rhs must be a 2-D int8 array of codes in [-8, 7] or uint8 nibble pairs (zero point 8)")
    if rhs.dtype == np.int8:
        codes = rhs.T if transpose_rhs else rhs
        nn, kk = codes.shape
        return qb4.pack_nibbles(np.ascontiguousarray(codes), "kxn" if transpose_rhs else "nxk"), nn, kk
    if rhs.dtype == np.uint8:
        if transpose_rhs:
            if n is None:
                raise ValueError("packed kxn nibbles [K, ceil(N/2)] do not say N: pass n=")
            return np.ascontiguousarray(rhs), n, rhs.shape[0]
        return np.ascontiguousarray(rhs), rhs.shape[0], 2 * rhs.shape[1]
    raise TypeError(f"rhs must be int8 codes or uint8 nibble pairs, got {rhs.dtype}")


def prepare_weights(
    rhs: NDArray[Any],
    scales_bf16: NDArray[np.uint16],
    *,
    bl: int,
    bias: NDArray[np.float32] | None = None,
    transpose_rhs: bool = False,
    n: int | None = None,
    target: Target | None = None,
    kernel: str | None = None,
    kernel_zero_point: int = 8,
) -> PreparedQb4w:
    """Check, pack and decode qb4w weights once for the kernels ``gemm`` will run.

    ``rhs``: int8 codes [N, K] in [-8, 7] (or [K, N] with ``transpose_rhs``), or XNNPACK's
    uint8 nibble pairs (zero point 8) [N, K/2] / [K, ceil(N/2)] (then give ``n``).
    XNNPACK's creation checks run first (``check_block_size``, zero point 8). The NEON path
    packs with ``xnn_pack_kai_qb4_weights_and_biases`` (nr 4, the branch's kr/sr, bias patch);
    the SME2 kernels with ``kai_rhs_pack_{nxk,kxn}_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon``.
    """
    t = resolve_target(target)
    transpose_rhs = check_bool("transpose_rhs", transpose_rhs)
    qb4.check_kernel_zero_point(kernel_zero_point)
    if isinstance(rhs, np.ndarray) and rhs.ndim == 2:
        # The codes, the packed bytes and the decoded int8 weights and float32 block terms
        # (a uint8 rhs holds two codes a byte: twice the factor).
        check_alloc(f"packing qb4w weights {rhs.shape}", (rhs.shape, F32), factor=3 if rhs.dtype == np.int8 else 6)
    u, nn, kk = _as_codes(rhs, transpose_rhs, n)
    qb4.check_block_size(kk, bl)
    qb4.check_scales_bf16(scales_bf16, n=nn, num_blocks=kk // bl)
    if bias is not None and (not isinstance(bias, np.ndarray) or bias.dtype != F32 or bias.shape != (nn,)):
        raise TypeError(f"bias must be a float32 array of shape ({nn},) or None")
    kcls = select_kernel(t, 2) if kernel is None else _kernel_cls(kernel)
    fam = _FAMILY[kcls]
    kern = fam[0](t.svl_bits)
    p = kern.tile_params()
    qb4.check_block_size(kk, bl, kr=p.kr)
    if kern.asserts_shape:
        packer: Qsi4c32pPacker = (
            kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(t.svl_bits)
            if transpose_rhs
            else kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(t.svl_bits)
        )
        packed = packer.pack(u, scales_bf16, bias, nr=p.nr, kr=p.kr, sr=p.sr, bl=bl, n=nn, k=kk)
    else:
        packed = xnn_pack_kai_qb4_weights_and_biases(
            u,
            scales_bf16,
            bias,
            n=nn,
            k=kk,
            bl=bl,
            kr=p.kr,
            sr=p.sr,
            nr=p.nr,
            transpose_weights=transpose_rhs,
        )
    w, sc, rsum, b = kern.rhs_layout(nn, kk, bl).decode(packed)
    return PreparedQb4w((fam[0].name, fam[1].name), t.svl_bits, nn, kk, bl, packed, prepare_rhs(w, sc, rsum, b, bl))


def gemm(
    lhs: NDArray[np.float32],
    rhs: NDArray[Any] | PreparedQb4w,
    scales_bf16: NDArray[np.uint16] | None = None,
    *,
    bl: int | None = None,
    bias: NDArray[np.float32] | None = None,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
    kernel_zero_point: int = 8,
) -> NDArray[np.float32]:
    """``lhs @ dequant(rhs).T + bias``, clamped, as XNNPACK's qp8_f32_qb4w path computes it.

    ``lhs`` f32 [M, K] is quantized per row (``kai_lhs_quant_pack_qai8dxp_f32``, the kernel's
    kr/sr; the packed layout is skipped, the values are the same). ``rhs`` is int8 codes
    [N, K], XNNPACK's uint8 nibble pairs [N, K/2], or a :class:`PreparedQb4w` (then
    ``scales_bf16``, ``bl``, ``bias`` come from it). ``scales_bf16``: uint16 [N, K/bl]. On the
    default target the kernel is what XNNPACK runs (:func:`select_kernel`); ``kernel`` names
    another one (e.g. the SME2 MOPA/GEMV). FPCR.FZ is the target's ``flush_to_zero``.
    ``kernel_zero_point`` is the stored codes' zero point: qp8 needs 8
    (``check_kernel_zero_point_is_8_qu8``). XNNPACK's creation checks (block size, scales)
    raise ValueError before anything is packed. Arithmetic: see the module docstring.
    """
    t = resolve_target(target)
    lo, hi = check_output_range(clamp_min, clamp_max, op="xnn_create_fully_connected_nc_qp8_f32_qb4w")
    if not isinstance(lhs, np.ndarray) or lhs.dtype != F32:
        raise TypeError("lhs must be a float32 array [M, K] (qp8 activations are f32)")
    if lhs.ndim != 2:
        raise ValueError(f"lhs must be 2-D [M, K], got shape {lhs.shape}")
    m, k = lhs.shape
    if m < 1:
        raise ValueError("M must be >= 1")
    if isinstance(rhs, PreparedQb4w):
        # The quantized rows and the output with the kernels' [M, N] temporaries.
        check_alloc(f"qb4w gemm [{m}, {k}] x [{k}, {rhs.n}]", ((m, rhs.n), F32), ((m, k), F32), factor=4)
    if isinstance(rhs, PreparedQb4w):
        if scales_bf16 is not None or bias is not None or (bl is not None and bl != rhs.bl):
            raise ValueError("scales_bf16, bias and bl are part of the PreparedQb4w weights")
        prep = rhs
        if kernel is not None and kernel not in prep.family:
            raise ValueError(f"weights were packed for {prep.family}, not {kernel!r}")
        if prep.svl != t.svl_bits and _kernel_cls(prep.family[0]).isa == "sme2":
            raise ValueError(f"weights were packed at SVL {prep.svl}, target has SVL {t.svl_bits}")
    else:
        if scales_bf16 is None or bl is None:
            raise TypeError("gemm needs scales_bf16 and bl with unprepared weights")
        prep = prepare_weights(
            rhs,
            scales_bf16,
            bl=bl,
            bias=bias,
            transpose_rhs=transpose_rhs,
            target=t,
            kernel=kernel,
            kernel_zero_point=kernel_zero_point,
        )
    if k != prep.k:
        raise ValueError(f"K mismatch: lhs is {lhs.shape}, weights have K = {prep.k}")
    if kernel is not None:
        kcls = _kernel_cls(kernel)
    else:
        main, gemv_ = (_kernel_cls(x) for x in prep.family)
        kcls = gemv_ if m == 1 else main
    if kcls.gemv and m != 1:
        raise ValueError(f"{kcls.name} computes one row (XNNPACK uses it for M == 1); M = {m}")
    kern = kcls(t.svl_bits, fz=t.flush_to_zero)
    p = kern.tile_params()
    check_alloc(f"qb4w gemm [{m}, {k}] x [{k}, {prep.n}]", ((m, prep.n), F32), ((m, k), F32), factor=4)
    q, dq, zp = quantize_qai8dx(np.ascontiguousarray(lhs), k_block_len=p.kr // p.sr)
    neg_zp = (-zp.astype(np.int64)).astype(np.int32)
    return kern.compute(Qai8dxpRows(q, neg_zp, dq), prep.operand, (lo, hi))


# ----------------------------------------------------------------------------------------------
# Golden vectors
# ----------------------------------------------------------------------------------------------


# Note: the NEON kernels do not depend on the SVL; their objects are built at SVL 512.
def _run(
    kcls: type[Qb4wKernel],
    svl: int,
    m: int,
    n: int,
    k: int,
    bl: int,
    lhs_p: NDArray[np.uint8],
    rhs_p: NDArray[np.uint8],
    lo: float,
    hi: float,
) -> NDArray[np.float32]:
    dst = np.zeros((m, n), dtype=F32)
    kcls(svl).run_matmul(m, n, k, bl, lhs_p, rhs_p, dst, n * 4, 4, lo, hi)
    return dst


def _meta(vals: Mapping[str, int]) -> dict[str, NDArray[Any]]:
    return {key: np.array(v, dtype=np.int64) for key, v in vals.items()}


def reproduce_golden(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute a ``qp8_f32_qb4w_gemm`` (SME2 kernels) golden file from its inputs."""
    svl = int(inputs["meta_svl_bits"])
    lhs, bias = inputs["lhs"], inputs["bias"]
    scale, bl = inputs["scale_bf16"], int(inputs["bl"])
    lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
    m, k = lhs.shape
    n = inputs["rhs_int4"].shape[0]
    mopa, dot = SME2_MOPA(svl).tile_params(), SME2_DOT(svl).tile_params()
    lp = kai_lhs_quant_pack_qai8dxp_f32(svl)
    lhs_packed = lp.pack(lhs, mr=mopa.mr, kr=mopa.kr, sr=mopa.sr)
    rhs_packed = kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(svl).pack(
        inputs["rhs_qsu4_nxk"], scale, bias, nr=mopa.nr, kr=mopa.kr, sr=mopa.sr, bl=bl
    )
    rhs_kxn = kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(svl).pack(
        inputs["rhs_qsu4_kxn"], scale, bias, nr=mopa.nr, kr=mopa.kr, sr=mopa.sr, bl=bl, n=n
    )
    res: dict[str, NDArray[Any]] = {
        "lhs_packed": lhs_packed,
        "rhs_packed": rhs_packed,
        "rhs_packed_kxn": rhs_kxn,
    }
    res["out"] = _run(SME2_MOPA, svl, m, n, k, bl, lhs_packed, rhs_packed, lo, hi)
    if m == 1:
        lg = lp.pack(lhs, mr=dot.mr, kr=dot.kr, sr=dot.sr)
        res["lhs_packed_gemv"] = lg
        res["out_gemv"] = _run(SME2_DOT, svl, m, n, k, bl, lg, rhs_packed, lo, hi)
    res.update(
        _meta(
            {
                "meta_mr": mopa.mr,
                "meta_nr": mopa.nr,
                "meta_kr": mopa.kr,
                "meta_sr": mopa.sr,
                "meta_m_step": mopa.m_step,
                "meta_n_step": mopa.n_step,
                "meta_gemv_mr": dot.mr,
                "meta_gemv_nr": dot.nr,
                "meta_gemv_kr": dot.kr,
                "meta_gemv_sr": dot.sr,
                "meta_gemv_n_step": dot.n_step,
                "meta_gemv_m_step": dot.m_step,
            }
        )
    )
    return res


def reproduce_golden_neon(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute a ``qp8_f32_qb4w_gemm_neon`` (XNNPACK's NEON path, both branches) golden file."""
    lhs, bias = inputs["lhs"], inputs["bias"]
    scale, bl = inputs["scale_bf16"], int(inputs["bl"])
    lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
    m, k = lhs.shape
    n = inputs["rhs_int4"].shape[0]
    lp = kai_lhs_quant_pack_qai8dxp_f32()
    res: dict[str, NDArray[Any]] = {"meta_bl": np.array(bl, dtype=np.int64)}
    for suffix, main, gemv_ in (("", NEON_I8MM, NEON_I8MM_GEMV), ("_dotprod", NEON_DOT, NEON_DOT_GEMV)):
        p, g = main().tile_params(), gemv_().tile_params()
        lhs_packed = lp.pack(lhs, mr=p.mr, kr=p.kr, sr=p.sr)
        rhs_packed = xnn_pack_kai_qb4_weights_and_biases(
            inputs["rhs_qsu4_nxk"], scale, bias, n=n, k=k, bl=bl, kr=p.kr, sr=p.sr, nr=p.nr
        )
        rhs_kxn = xnn_pack_kai_qb4_weights_and_biases(
            inputs["rhs_qsu4_kxn"],
            scale,
            bias,
            n=n,
            k=k,
            bl=bl,
            kr=p.kr,
            sr=p.sr,
            nr=p.nr,
            transpose_weights=True,
        )
        res[f"lhs_packed{suffix}"] = lhs_packed
        res[f"rhs_packed{suffix}"] = rhs_packed
        res[f"rhs_packed_kxn{suffix}"] = rhs_kxn
        res[f"out{suffix}"] = _run(main, 512, m, n, k, bl, lhs_packed, rhs_packed, lo, hi)
        if m == 1:
            lg = lp.pack(lhs, mr=g.mr, kr=g.kr, sr=g.sr)
            res[f"lhs_packed_gemv{suffix}"] = lg
            res[f"out_gemv{suffix}"] = _run(gemv_, 512, m, n, k, bl, lg, rhs_packed, lo, hi)
        res.update(
            _meta(
                {
                    f"meta_kernel_mr{suffix}": p.mr,
                    f"meta_kernel_nr{suffix}": p.nr,
                    f"meta_kernel_kr{suffix}": p.kr,
                    f"meta_kernel_sr{suffix}": p.sr,
                    f"meta_kernel_m_step{suffix}": p.m_step,
                    f"meta_kernel_n_step{suffix}": p.n_step,
                    # XNNPACK config values used for packing (mr_packed = kernel mr).
                    f"meta_mr_packed{suffix}": p.mr,
                    f"meta_nr{suffix}": p.nr,
                    f"meta_kr{suffix}": p.kr,
                    f"meta_sr{suffix}": p.sr,
                    f"meta_gemv_mr{suffix}": g.mr,
                    f"meta_gemv_nr{suffix}": g.nr,
                    f"meta_gemv_kr{suffix}": g.kr,
                    f"meta_gemv_sr{suffix}": g.sr,
                }
            )
        )
    return res


#: Golden variant ids this module reproduces.
GOLDEN = {"qp8_f32_qb4w_gemm": reproduce_golden, "qp8_f32_qb4w_gemm_neon": reproduce_golden_neon}
