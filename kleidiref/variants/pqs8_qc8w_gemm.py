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
2**24 (``_int8_common.int8_matmul``); :func:`pack_weights` returns an immutable packed buffer
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
    check_count,
    check_dtype,
    packed_rhs_columns,
)
from ..configs import alias, select_kai_kernel
from ..kai.interface import RawLhsRow, RequantizingKernel, TileParams
from ..kai.layouts import Qsi8cxp2vlx4sbLayout, SmeLhsLayout
from ..kai.pack import kai_lhs_pack_x8p2vlx4_x8_sme, kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme
from ..numerics import clamp_int, frintn_fcvtzs, ftz32
from ..targets import Target, resolve_target, target_svl
from ..validate import check_alloc, check_bool
from ._int8_common import (
    check_i32,
    int8_matmul,
    kai_matmul_requantize32_params,
    kai_rhs_pack_qsi8cx_params,
)

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

VARIANT = "pqs8_qc8w_gemm"
F32 = np.dtype(np.float32)
I8 = np.dtype(np.int8)
I32 = np.dtype(np.int32)
KR = 4
#: Bytes of one int32 [rows, N] temporary of a row block (pqs8 computes blocks of rows).
_ROW_BLOCK_BYTES = 64 << 20


def decode_qsi8cxp2vlx4sb(
    buf: bytes | NDArray[np.uint8], n: int, k: int, nr: int
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
    """Decode a packed pqs8 RHS: ``(bias'[n] int32, W[K4, n] as float32, scale'[n])``."""
    u8 = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, bytes) else buf
    return Qsi8cxp2vlx4sbLayout(nr, n, k).decode(u8)


def requantize(
    acc: NDArray[np.int32],
    scale: NDArray[np.float32],
    params: kai_matmul_requantize32_params,
    *,
    fz: bool = False,
) -> NDArray[np.int8]:
    """The pqs8 output stage on int32 accumulators (bias already added).

    ::

        y = RN32(RN32(acc) * scale)                 SCVTF, FMUL (FZ: flush)
        r = FCVTZS(FRINTN(y))                       ties to even, saturating, NaN -> 0
        o = wrap_i32(r + output_zero_point)
        out = int8(low byte of min(max(o, min_value), max_value))
    """
    if fz:
        scale = ftz32(scale)  # FPCR.FZ: a subnormal scale reads as a signed zero
    with np.errstate(over="ignore", invalid="ignore"):
        # SCVTF then FMUL; RN32(acc) is integral (0 or >= 1), so a nonzero product with a scale
        # that is 0 or >= FLT_MIN is never tiny: FZ changes nothing more here.
        y = np.multiply(acc.astype(np.float32), scale, dtype=np.float32)
    r = frintn_fcvtzs(y)
    o = r + np.int32(params.output_zero_point)  # int32 add wraps
    # SCLAMP (SME2) and SMAX-then-SMIN (SME1) agree: min(max(o, lo), hi).
    clamped = clamp_int(o, np.int32(params.min_value), np.int32(params.max_value))
    out: NDArray[np.int8] = clamped.astype(np.int8)  # UZP1 narrowing keeps the low byte
    return out


@dataclasses.dataclass(frozen=True)
class Qsi8cxp2vlx4sbRhs:
    """A packed pqs8 RHS as the kernels read it (their ``decode_rhs``)."""

    #: [n] int32 ``bias'`` (the input zero point folded in by the packer).
    bias: NDArray[np.int32]
    #: [roundup(K, 4), n] int8 values as float32 (exact BLAS operands).
    w: NDArray[np.float32]
    #: [n] float32 ``scale'`` (the scale multiplier folded in).
    scale: NDArray[np.float32]
    #: A bound on ``|w|`` (lets :func:`int8_matmul` use fewer K chunks).
    w_absmax: float = 128.0


class _Pqs8Kernel(RequantizingKernel):
    """What the pqs8 kernels share: the packed RHS and the requantizing epilogue."""

    def rhs_layout(self, n: int, k: int) -> Qsi8cxp2vlx4sbLayout:
        """The packed RHS format this kernel reads (nr = 2 VL / 4)."""
        return Qsi8cxp2vlx4sbLayout.for_svl(self.svl, n, k)

    def get_nr(self) -> int:
        return self.rhs_layout(0, 0).nr

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx, k = check_count("n_idx", n_idx), check_count("k", k)
        fmt = self.rhs_layout(0, k)
        if n_idx % fmt.nr:
            fn = f"kai_get_rhs_packed_offset_{self.name[4:]}"
            raise ValueError(f"KAI_ASSUME(n_idx % nr == 0) fails in {fn}")
        return fmt.offset(n_idx)

    def rhs_packed_size(self, n: int, k: int) -> int:
        return self.rhs_layout(n, k).size()

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> Qsi8cxp2vlx4sbRhs:
        fmt = self.rhs_layout(n, k)
        nr = fmt.nr
        found = packed_rhs_columns(rhs, fmt.stride, nr, n)
        if found is not None:
            # Decoded once from the immutable bytes of this PackedRhs (cannot go stale).
            owner, full_n = found
            b, w, sc = owner.decoded(
                ("qsi8cxp2vlx4sb", full_n, k, nr),
                lambda buf: Qsi8cxp2vlx4sbLayout(nr, full_n, k).decode(np.frombuffer(buf, np.uint8)),
            )
            amax = owner.decoded(("qsi8cxp2vlx4sb|W|", full_n, k, nr), lambda _: float(np.abs(w).max(initial=0)))
            return Qsi8cxp2vlx4sbRhs(b[:n], w[:, :n], sc[:n], amax)
        return Qsi8cxp2vlx4sbRhs(*fmt.decode(rhs))

    def accumulate(self, lhs: NDArray[Any], rhs: Qsi8cxp2vlx4sbRhs) -> NDArray[np.int32]:
        """ADDHA of ``bias'`` into a zeroed ZA, then SMOPA / SDOT of the int8 rows ``lhs`` [M, K or
        roundup(K, 4)]: int32, exact, wraps."""
        acc = int8_matmul(lhs, rhs.w[: lhs.shape[1]], w_absmax=rhs.w_absmax)
        acc += rhs.bias[None, :]  # numpy int32 arithmetic wraps
        return acc

    def epilogue(
        self, acc: NDArray[np.int32], scale: NDArray[np.float32], params: kai_matmul_requantize32_params
    ) -> NDArray[np.int8]:
        """:func:`requantize` (FZ as the kernel runs)."""
        return requantize(acc, scale, params, fz=self.fz)

    def compute(
        self, lhs: NDArray[Any], rhs: Qsi8cxp2vlx4sbRhs, epilogue: kai_matmul_requantize32_params
    ) -> NDArray[np.int8]:
        # Rows are independent and exact: a block of rows at a time keeps the int32/float32
        # temporaries (several times the int8 output) to about _ROW_BLOCK_BYTES each.
        m, n = lhs.shape[0], rhs.scale.shape[0]
        step = max(1, _ROW_BLOCK_BYTES // max(1, 4 * max(n, lhs.shape[1])))
        if m <= step:
            return self.epilogue(self.accumulate(lhs, rhs), rhs.scale, epilogue)
        out = np.empty((m, n), dtype=np.int8)
        for r0 in range(0, m, step):
            out[r0 : r0 + step] = self.epilogue(self.accumulate(lhs[r0 : r0 + step], rhs), rhs.scale, epilogue)
        return out


class _Pqs8Mopa(_Pqs8Kernel):
    def tile_params(self) -> TileParams:
        v = 2 * self.vls
        return TileParams(mr=v, nr=v, kr=KR, sr=1, m_step=v, n_step=v)

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "m_idx % mr == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def lhs_layout(self, m: int, k: int) -> SmeLhsLayout:
        """The packed LHS format this kernel reads (``x8p2vlx4``)."""
        return SmeLhsLayout.for_svl(I8, KR, self.svl, m, k)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.int8]:
        out: NDArray[np.int8] = self.lhs_layout(m, k).decode(lhs)
        return out


_SRC = "kai/ukernels/matmul/matmul_clamp_qai8_qai8p_qsi8cxp/"


class kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa(_Pqs8Mopa):
    """SME2 MOPA, 2VL x 2VL tiles [32 x 32 at SVL 512]; SCLAMP."""

    name = "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa"
    variant = VARIANT
    isa = "sme2"
    source = _SRC + name + "_asm.S"


class kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa(_Pqs8Mopa):
    """SME1 MOPA: same arithmetic (SMAX then SMIN clamp); also XNNPACK's M == 1 kernel on SME1."""

    name = "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa"
    variant = VARIANT
    isa = "sme"
    source = _SRC + name + "_asm.S"


class kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot(RawLhsRow, _Pqs8Kernel):
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


# The config's kernels, by the names kleidiref.configs gives them.
SME2_MOPA = alias(globals(), VARIANT, "sme2", "mopa", _Pqs8Mopa)
SME1_MOPA = alias(globals(), VARIANT, "sme", "mopa", _Pqs8Mopa)
SME2_GEMV = alias(globals(), VARIANT, "sme2", "gemv", kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot)


def select_kernel(target: Target, m: int) -> type[_Pqs8Kernel]:
    """XNNPACK's pqs8 config (:mod:`kleidiref.configs`): SME2 MOPA, or the SME2 GEMV when M == 1;
    SME1 MOPA for every M (the SME1 config registers no ``gemm[0]``)."""
    return select_kai_kernel(VARIANT, target, m, _Pqs8Kernel, "qs8_qc8w_gemm")


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
