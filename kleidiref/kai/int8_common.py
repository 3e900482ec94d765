"""Exact integer GEMM plumbing and parameter structs shared by the int8 KleidiAI kernels.

Used by ``qp8_f32_qc8w_gemm`` and ``pqs8_qc8w_gemm``. The integer part of every int8 kernel is
an exact dot product accumulated in a 32-bit register that wraps (SMOPA 4-way, SDOT, MLA)::

    acc = sum_k a[m][k] * w[k][n]        exact, then reduced mod 2**32 (two's complement)

It is computed here with float BLAS, never numpy integer ``@`` (which is slow and does not say
how it accumulates):

    1. split K into chunks of at most 1024 (each int8 x int8 product is at most 2**14 in
       magnitude, so every partial sum of a chunk stays within 2**24: exact in binary32,
       whatever order the BLAS adds in; float64 would be exact up to 2**53)
    2. one float32 GEMM per chunk -> exact integers
    3. convert each chunk to int32 and add in int32 (numpy wraps: the kernels' wraparound)

The kernels decode a :class:`kleidiref._buffers.PackedRhs` once (see there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import check_count
from ..numerics import Clamp, clamp, fadd32, fma32, fmul32, ftz32
from .params import check_i32, kai_matmul_requantize32_params, kai_rhs_pack_qsi8cx_params

__all__ = [
    "K_CHUNK",
    "check_i32",
    "check_k",
    "int8_matmul",
    "kai_matmul_requantize32_params",
    "kai_rhs_pack_qsi8cx_params",
    "qai8dxp_epilogue",
]

F32 = np.float32
F64 = np.float64
#: K chunk length for exact float32 BLAS: 1024 * 2**14 = 2**24.
K_CHUNK = 1024

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def int8_matmul(a: NDArray[Any], w_kn: NDArray[Any], *, w_absmax: float = 128.0) -> NDArray[np.int32]:
    """``sum_k a[m][k] * w[k][n]`` reduced mod 2**32, exactly (see the module docstring).

    ``a`` [M, K] and ``w_kn`` [K, N] hold int8 values (any integer or float dtype holding them;
    pass float32 to avoid a conversion); ``w_absmax`` bounds ``|w|``. Every partial sum of a
    chunk is bounded by ``max_m sum_{k in chunk} |a[m][k]| * w_absmax``; K is split into as few
    equal chunks as keep that bound <= 2**24 (one float32 GEMM each, exact), or else into
    chunks of 1024 (bounded by 1024 * 2**14 = 2**24 whatever the values). Chunks are added in
    int32 with wraparound.
    """
    k = a.shape[1]
    a32 = a if a.dtype == F32 else a.astype(F32)
    bounds = list(range(0, k, K_CHUNK))  # always exact: 1024 * 128 * 128 = 2**24
    if k > K_CHUNK and a32.size:
        # Fewer, longer chunks when the data allow: each chunk's bound must stay <= 2**24.
        absa = np.abs(a32)
        total = float(absa.sum(axis=1, dtype=F64).max()) * w_absmax
        nch = 1 if total <= 2.0**24 else int(np.ceil(total / 2.0**24)) + 1
        if nch < len(bounds):
            cand = [i * k // nch for i in range(nch)]
            per_chunk = np.add.reduceat(absa, cand, axis=1, dtype=F64).max(axis=0) * w_absmax
            if bool(np.all(per_chunk <= 2.0**24)):
                bounds = cand
    out: NDArray[np.int32] | None = None
    for i, k0 in enumerate(bounds):
        k1 = bounds[i + 1] if i + 1 < len(bounds) else k
        w = w_kn[k0:k1]
        part = (a32[:, k0:k1] @ (w if w.dtype == F32 else w.astype(F32))).astype(np.int32)  # exact
        if out is None:
            out = part
        else:
            out += part  # int32 add wraps, like the kernels' accumulators
    if out is None:
        return np.zeros((a.shape[0], w_kn.shape[1]), dtype=np.int32)
    return out


def qai8dxp_epilogue(
    acc: NDArray[np.int32],
    dq: NDArray[np.float32],
    scale: NDArray[np.float32],
    bias: NDArray[np.float32],
    lo: np.float32,
    hi: np.float32,
    *,
    fused: bool,
    fz: bool,
    clamp_kind: Clamp | str,
) -> NDArray[np.float32]:
    """The float epilogue of the qai8dxp x qsi8cxp / qsi4cxp kernels, [M, N] from the int32 ``acc``.

    SCVTF (RNE; an integer-valued float is never subnormal, so FZ does not touch it); then
    ``fused``: FMUL ``scale * dq`` and FMLA with the bias (one rounding), else FMUL ``dq * scale``,
    FMUL by the accumulator and FADD the bias (two roundings); then the clamp of ``clamp_kind``.
    Under FPCR.FZ subnormal scales, bias and bounds read as signed zeros. NaNs come out as the
    default NaN 0x7FC00000 (numerics' convention).
    """
    f = acc.astype(F32)
    if fz:
        dq, scale, bias = ftz32(dq), ftz32(scale), ftz32(bias)
    if fused:
        sc = fmul32(scale[None, :], dq[:, None], fz=fz, flushed=True)  # FMUL scale * dq
        y = fma32(sc, f, np.broadcast_to(bias[None, :], f.shape), fz=fz, flushed=True)  # FMLA: one rounding
    else:
        # FMUL dq * scale (the NEON kernels compute scale * dq: the same bits, products commute)
        sc = fmul32(dq[:, None], scale[None, :], fz=fz, flushed=True)
        with np.errstate(over="ignore", invalid="ignore"):
            # FMUL sc * f: |sc| is 0 or >= FLT_MIN and |f| is 0 or >= 1, so never tiny
            # (and y is never subnormal: FZ has nothing to flush in it).
            y = np.multiply(sc, f, dtype=F32)
        # FADD y + bias: the second rounding (bias already flushed under FZ).
        y = fadd32(y, bias[None, :], fz=fz, flushed=True, out=y)
    return clamp(y, lo, hi, clamp_kind, fz=fz, flushed=True, out=y)  # y is an FZ result


def check_k(k: object) -> int:
    """K >= 1 (every int8 kernel asserts it through its strides)."""
    return check_count("k", k, minimum=1)
