"""Shared pieces of the ``qp8_f32_qb4w`` packers and kernels.

The two packed RHS formats (``qsi4c32ps1s0nrx4``, KleidiAI's SME2 packers, and ``qsi4c32p``,
XNNPACK's NEON path) are :class:`kleidiref.kai.layouts.Qsi4c32pLayout`.

The arithmetic of all six kernels is :func:`qb4w_matmul`; the per-block integer sums come from
BLAS in a form that is exact (see its docstring), then the float steps follow kernel order.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, bf16_to_f32, clamp, fadd32, fma32, fmul32, ftz32

__all__ = [
    "EpilogueKind",
    "Layout",
    "PreparedRhs",
    "block_sums_exact",
    "check_rhs_params",
    "first_blocks",
    "prepare_rhs",
    "qb4w_accumulate",
    "qb4w_epilogue",
    "qb4w_matmul",
    "rsum_chain",
]

F32, F64 = np.float32, np.float64
Layout = Literal["ps1s0nrx4", "qsi4c32p"]
#: ``mopa``: SME2 MOPA (FMUL first block; fused rsum step; FMUL, FADD; FCLAMP).
#: ``sme2_dot``: SME2 GEMV (FMLA every block; fused rsum step; fused final step; FCLAMP).
#: ``neon``: NEON i8mm / dotprod (FMLA every block; fused rsum step; FMUL, FADD; FMAX/FMIN).
EpilogueKind = Literal["mopa", "sme2_dot", "neon"]

#: ``|d| * 2**16`` stays far from the binary32 overflow and the products stay normal when the
#: block scales lie in [2**-100, 2**100] (checked before taking the float32 fast path).
_D_LO, _D_HI = 2.0**-100, 2.0**100


def check_rhs_params(n: int, k: int, nr: int, kr: int, sr: int, bl: int, fn: str, *, bbl4: bool) -> None:
    """The KAI_ASSERTs of the qsi4c32p / qsi4c32ps1s0nrx4 RHS packers, as ValueErrors."""
    checks = [
        (bl % 32 == 0 and bl > 0, "(bl % kai_bl_multiple_of) == 0 with kai_bl_multiple_of = 32"),
        (k % bl == 0, "(k % bl) == 0"),
        (kr > 0 and bl % kr == 0, "(bl % kr) == 0"),
        (sr > 0 and kr % sr == 0, "(kr % sr) == 0"),
        (nr > 0 and nr % 4 == 0, "(nr % kai_nr_multiple_of) == 0 with kai_nr_multiple_of = 4"),
    ]
    if bbl4:
        checks.append((sr > 0 and kr // sr == 4, "block_length == 4 (kr / sr)"))
    for ok, what in checks:
        if not ok:
            raise ValueError(f"KAI_ASSERT({what}) fails in {fn} (n={n}, k={k}, nr={nr}, kr={kr}, sr={sr}, bl={bl})")
    if n < 1 or k < 1:
        raise ValueError(f"{fn} needs n >= 1 and k >= 1 (got n={n}, k={k})")


def _exact_f32_products(d: NDArray[np.float32]) -> bool:
    """True when ``int * d`` is exact in binary32 for |int| <= 2**16 (normal, bounded scales)."""
    a = np.abs(d.astype(F64))
    return bool(np.all(np.isfinite(a) & (a >= _D_LO) & (a <= _D_HI)))


def rsum_chain(psum: NDArray[np.int64], d: NDArray[np.float32], *, fused: bool) -> NDArray[np.float32]:
    """The packers' row sums: ``rsum = RN32(rsum + psum[:, c] * d[:, c])`` for c in order, from 0.

    ``psum`` [N, C] are integer partial sums (|psum| <= 256), ``d`` [N, C] the f32 scales of
    their blocks. The product is exact for normal scales, so fused (``vfmaq_f32``, or a
    contracted ``sums += psum * d``) and unfused evaluation agree; otherwise ``fused`` picks
    the contracted form (KleidiAI compiled with clang's default ``-ffp-contract=on``).
    """
    n, c = psum.shape
    acc = np.zeros(n, dtype=F32)
    p32 = psum.astype(F32)
    if _exact_f32_products(d):
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(c):
                acc = acc + p32[:, i] * d[:, i]
        return acc
    for i in range(c):
        if fused:
            acc = fma32(p32[:, i], d[:, i], acc)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                acc = (acc + p32[:, i] * d[:, i]).astype(F32)
    return acc


@dataclasses.dataclass(frozen=True)
class PreparedRhs:
    """The packed RHS decoded once into the operands of the exact BLAS products.

    ``stack`` is float32 [nb, bl, N]: ``w[n, k] * d[n, qb]`` when ``folded`` (every partial
    block sum is then ``d * integer`` with ``|integer| <= 2**16``, exact in binary32), else the
    integer weights themselves. ``w`` keeps the int8 weights for the exact float64 fallback.
    """

    n: int
    k: int
    bl: int
    w: NDArray[np.int8]
    d: NDArray[np.float32]
    rsum: NDArray[np.float32]
    bias: NDArray[np.float32]
    stack: NDArray[np.float32]
    folded: bool
    fast: bool
    #: d transposed [nb, 1, N] (scaling of the unfolded block sums), max |w| per block [nb].
    dT: NDArray[np.float32]
    wmax: NDArray[np.float32]

    @property
    def nbytes(self) -> int:
        return int(self.w.nbytes + self.stack.nbytes + self.d.nbytes + 8 * self.n)


def prepare_rhs(
    w: NDArray[np.int8],
    scale_bits: NDArray[np.uint16],
    rsum: NDArray[np.float32],
    bias: NDArray[np.float32],
    bl: int,
) -> PreparedRhs:
    """Build the BLAS operands for decoded weights ``w`` [N, K] and bf16 block scales [N, nb]."""
    n, k = w.shape
    nb = k // bl
    d = bf16_to_f32(scale_bits)
    fast = _exact_f32_products(d) and bool(np.all(d > 0)) and bl <= 16384
    # Note: folding the bf16 scale into the weights keeps every BLAS partial sum exact only
    # while sum_k |q*w| <= 2**16, guaranteed for bl <= 64 (64 * 128 * 8); larger blocks keep
    # integer weights (exact up to bl = 16384) and scale the exact block sums afterwards.
    folded = fast and bl <= 64
    wt = w.reshape(n, nb, bl).transpose(1, 2, 0).astype(F32)  # [nb, bl, N]
    if folded:
        wt = wt * d.T[:, None, :]
    wmax = np.abs(w.astype(np.int16)).reshape(n, nb, bl).max(axis=(0, 2)).astype(F32)
    dT = np.ascontiguousarray(d.T[:, None, :])
    return PreparedRhs(n, k, bl, w, d, rsum, bias, np.ascontiguousarray(wt), folded, fast, dT, wmax)


def block_sums_exact(q: NDArray[np.int8], w: NDArray[np.int8], bl: int) -> NDArray[np.float64]:
    """``isum[qb, m, n] = sum_{k in qb} q[m, k] * w[n, k]`` via float64 BLAS (exact: < 2**53)."""
    m, k = q.shape
    n = w.shape[0]
    nb = k // bl
    a = q.astype(F64).reshape(m, nb, bl).transpose(1, 0, 2)
    b = w.astype(F64).reshape(n, nb, bl).transpose(1, 2, 0)
    out: NDArray[np.float64] = np.matmul(a, b)
    return out


def _block_chain(
    q: NDArray[np.int8],
    qf: NDArray[np.float32],
    qabs: NDArray[np.float32],
    rhs: PreparedRhs,
    kind: EpilogueKind,
    fz: bool,
) -> NDArray[np.float32]:
    """``facc`` after the last quant block (steps 1-3 of :func:`qb4w_matmul`)."""
    m, k = q.shape
    bl = rhs.bl
    nb = k // bl
    d = rhs.d
    if not rhs.fast:
        isum = block_sums_exact(q, rhs.w, bl).astype(F32)  # RN32(isum): SCVTF
        zero = np.float32(-0.0) if kind == "mopa" else np.float32(0.0)  # FMUL == fma into -0
        facc = fma32(isum[0], d[:, 0][None, :], zero, fz=fz)
        for qb in range(1, nb):
            facc = fma32(isum[qb], d[:, qb][None, :], facc, fz=fz)
        return facc
    if not rhs.folded:
        # Static bound per block: |isum| <= max_m sum_k |q| * max|w| (no check needed below 2**16).
        amax = qabs * rhs.wmax
    facc = np.empty((m, rhs.n), dtype=F32)
    buf = np.empty((m, rhs.n), dtype=F32)
    for qb in range(nb):
        out = facc if qb == 0 else buf
        np.matmul(qf[:, qb * bl : (qb + 1) * bl], rhs.stack[qb], out=out)
        if not rhs.folded:
            if amax[qb] > 65536.0 and (out.max(initial=0.0) > 65536.0 or out.min(initial=0.0) < -65536.0):
                # |isum| > 2**16: f * d may be inexact in binary32; this block runs the exact step.
                if qb == 0:
                    zero = np.float32(-0.0) if kind == "mopa" else np.float32(0.0)
                    facc[...] = fma32(out, d[:, 0][None, :], zero, fz=fz) + F32(0.0)
                else:
                    facc = fma32(out, d[:, qb][None, :], facc, fz=fz)
                continue
            out *= rhs.dT[qb]
        if qb == 0:
            facc += F32(0.0)  # the true zero is +0 for positive scales (BLAS may give -0)
        else:
            facc += buf
    # Note: under FZ nothing here can be subnormal: every partial value is a multiple of
    # ulp(min d) >= 2**-107 (scales >= 2**-100), so the plain float32 chain is exact.
    return facc


def qb4w_matmul(
    q: NDArray[np.int8],
    neg_zp: NDArray[np.int32],
    dq: NDArray[np.float32],
    rhs: PreparedRhs,
    kind: EpilogueKind,
    clamp_min: np.float32,
    clamp_max: np.float32,
    *,
    fz: bool = False,
) -> NDArray[np.float32]:
    """The [M, N] output of a qb4w kernel from the decoded LHS (q [M, K], -zp, dq) and RHS.

    Steps (docs/kernels.md §7.2), all in binary32::

        isum_qb  = sum_{k in qb} q[m,k] * w[n,k]             exact (SMOPA / SDOT / SMMLA)
        f_qb     = RN32(isum_qb)                              SCVTF (exact for bl <= 16384)
        facc     = RN32(f_0 * d_0)                            mopa: FMUL for the first block
                 = fma32(f_0, d_0, +0)                        sme2_dot, neon: FMLA into +0
        facc     = fma32(f_qb, d_qb, facc)   qb = 1..nb-1     FMLA, in block order
        facc     = fma32(RN32(-zp[m]), rsum[n], facc)          SCVTF, FMLA
        mopa, neon: y = RN32(RN32(facc * dq[m]) + bias[n])     FMUL, FADD
        sme2_dot:   y = fma32(facc, dq, bias[n])               FMLA into the bias
        out      = FCLAMP(y, min, max) (SME2; NaN -> min)  |  FMIN(FMAX(y, min), max) (NEON)

    Exact fast path (no per-element emulation): with positive normal bf16 scales in
    [2**-100, 2**100], ``f_qb * d_qb`` is exact in binary32 whenever ``|isum| <= 2**16`` (16 + 8
    significant bits), so ``fma32(f, d, facc) == facc + f*d`` in plain float32. The block
    products come from one float32 BLAS call per block: with the scale folded into the weights
    (bl <= 64: every partial sum is d times an integer of magnitude <= 2**16, exact) or on the
    integer weights (exact up to bl = 16384) followed by one float32 multiply after checking
    ``|isum| <= 2**16`` (blocks that fail run numerics.fma32). Other scales run float64-exact
    block sums and numerics.fma32 throughout.
    """
    m, n = q.shape[0], rhs.n
    # Column tiles of about 2**18 outputs keep the accumulator and block buffer in cache;
    # columns are independent, so tiling changes no result.
    nc = n if m * n <= _TILE else max(64, _TILE // max(m, 1) // 64 * 64)
    qf = q.astype(F32)
    qabs = np.abs(qf).reshape(m, -1, rhs.bl).sum(axis=2).max(axis=0)  # max_m sum_{k in qb} |q|
    if nc >= n:
        return _tile(q, qf, qabs, neg_zp, dq, rhs, kind, clamp_min, clamp_max, fz)
    out = np.empty((m, n), dtype=F32)
    for n0 in range(0, n, nc):
        n1 = min(n, n0 + nc)
        out[:, n0:n1] = _tile(q, qf, qabs, neg_zp, dq, _columns(rhs, n0, n1), kind, clamp_min, clamp_max, fz)
    return out


_TILE = 1 << 18


def _columns(rhs: PreparedRhs, n0: int, n1: int) -> PreparedRhs:
    """The prepared operands of columns [n0, n1) (views)."""
    return dataclasses.replace(
        rhs,
        n=n1 - n0,
        w=rhs.w[n0:n1],
        d=rhs.d[n0:n1],
        rsum=rhs.rsum[n0:n1],
        bias=rhs.bias[n0:n1],
        stack=rhs.stack[:, :, n0:n1],
        dT=rhs.dT[:, :, n0:n1],
    )


def qb4w_accumulate(
    q: NDArray[np.int8], rhs: PreparedRhs, kind: EpilogueKind, *, fz: bool = False
) -> NDArray[np.float32]:
    """The float accumulator ``facc`` [M, N] after every quant block of ``rhs`` (steps 1-3 of
    :func:`qb4w_matmul`): per block the exact integer sums (the ZA tile / vector accumulators),
    SCVTF, then FMUL (mopa, first block) or FMLA by the block's scale into ``facc``.

    Run on the first ``s`` blocks (:func:`first_blocks`, ``q[:, :s * bl]``) it is ``facc`` after
    ``s`` blocks: the kernels scale and add the blocks in increasing order.
    """
    m = q.shape[0]
    if q.shape[1] != rhs.k:
        raise ValueError(f"qb4w_accumulate: the LHS has {q.shape[1]} columns, the RHS {rhs.k}")
    if rhs.k == 0:
        return np.zeros((m, rhs.n), F32)  # no block yet (the kernels' first block writes facc)
    qf = q.astype(F32)
    qabs = np.abs(qf).reshape(m, -1, rhs.bl).sum(axis=2).max(axis=0)  # max_m sum_{k in qb} |q|
    return _block_chain(q, qf, qabs, rhs, kind, fz)


def qb4w_epilogue(
    facc: NDArray[np.float32],
    neg_zp: NDArray[np.int32],
    dq: NDArray[np.float32],
    rhs: PreparedRhs,
    kind: EpilogueKind,
    clamp_min: np.float32,
    clamp_max: np.float32,
    *,
    fz: bool = False,
) -> NDArray[np.float32]:
    """Steps 4-6 of :func:`qb4w_matmul` on the float accumulator: the ``-zp * rsum`` FMLA, the
    row scale and bias, the clamp (``facc`` is not modified)."""
    nzp = neg_zp.astype(F32)[:, None]  # SCVTF of the stored -zp (exact: |zp| <= 255)
    rs = rhs.rsum[None, :]
    bias = rhs.bias[None, :]
    dqc = dq[:, None]
    if fz:
        nzp, rs, bias, dqc = ftz32(nzp), ftz32(rs), ftz32(bias), ftz32(dqc)
    # Every operand here is free of subnormals: the vectors were read through ftz32 and facc
    # is a multiple of ulp(min d) or was flushed by numerics.fma32.
    facc = fma32(nzp, rs, facc, fz=fz, flushed=True)
    if kind == "sme2_dot":
        y = fma32(facc, dqc, bias, fz=fz, flushed=True)
    else:
        y = fmul32(facc, dqc, fz=fz, flushed=True)
        y = fadd32(y, bias, fz=fz, flushed=True, out=y)
    # Note: a NaN reaching the NEON FMAX/FMIN keeps its payload there (FPCR.DN = 0); NaNs here
    # are generated (0 * inf, inf - inf) or come from a NaN bias; they are returned as the
    # default NaN 0x7FC00000 (a NaN bias with another payload would keep it on silicon).
    kind_ = Clamp.FMAX_FMIN if kind == "neon" else Clamp.FCLAMP
    return clamp(y, clamp_min, clamp_max, kind_, fz=fz, flushed=True, out=y)  # y is an FZ result


def first_blocks(rhs: PreparedRhs, s: int) -> PreparedRhs:
    """The prepared operands of the first ``s`` quant blocks (views): what the kernel reads for
    ``K = s * bl`` (row sums and biases unchanged)."""
    if not 0 <= s <= rhs.k // rhs.bl:
        raise ValueError(f"first_blocks: {s} is not a block count in 0..{rhs.k // rhs.bl}")
    kk = s * rhs.bl
    return dataclasses.replace(
        rhs, k=kk, w=rhs.w[:, :kk], d=rhs.d[:, :s], stack=rhs.stack[:s], dT=rhs.dT[:s], wmax=rhs.wmax[:s]
    )


def _tile(
    q: NDArray[np.int8],
    qf: NDArray[np.float32],
    qabs: NDArray[np.float32],
    neg_zp: NDArray[np.int32],
    dq: NDArray[np.float32],
    rhs: PreparedRhs,
    kind: EpilogueKind,
    clamp_min: np.float32,
    clamp_max: np.float32,
    fz: bool,
) -> NDArray[np.float32]:
    facc = _block_chain(q, qf, qabs, rhs, kind, fz)
    return qb4w_epilogue(facc, neg_zp, dq, rhs, kind, clamp_min, clamp_max, fz=fz)
