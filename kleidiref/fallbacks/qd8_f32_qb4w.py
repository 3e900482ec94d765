"""Generic XNNPACK ``qd8_f32_qb4w`` GEMM: qd8 rows x 4-bit block-wise weights (bf16 block scales) -> f32.

Packing (``xnn_pack_qs8_qb4w_gemm_goi_w``, src/reference/packing.cc L1306-1407) and kernel
(``xnn_qd8_f32_qb4w_gemm_minmax_ukernel_{1,4}x16c{4,8}__neon{dot,i8mm}``, ``…_{1,6}x16__neon_mlal_lane``;
the scalar reference ``qd8-f32-qb4w-gemm-1x4-minmax-scalar.c``), with
``w[n,k]`` the signed weight (nibble minus the kernel zero point) and ``sc[n,j]`` the bf16 scale
of block j::

    packing, per output channel n, over chunks of 2*kr consecutive k (in k order):
        ksum[n] = RN32(ksum[n] - RN32(float(sum_{k in chunk} w[n,k]) * sc[n, block(chunk)]))
    packed block scale  sc16[n,j] = bf16_rne(sc[n,j] / 16)            (exact unless subnormal)
    kernel, per row m:
        y = RN32(ksum[n] * float(zp[m]))
        y = fma32(float(sum_{k in block j} q[m,k] * 16*w[n,k]), sc16[n,j], y)   j = 0 .. K/bl-1
        y = RN32(y * a[m]);  y = RN32(y + b[n])
        y = FMIN(FMAX(y, min), max)

# Note: the chunking of ``ksum`` follows XNNPACK's reference packer with the config's kr (8 for
# the i8mm kernels, 4 for dotprod, 1 for neon_mlal_lane); the NEON fast packers
# (``xnn_qb4_packw_gemm_goi_ukernel_x16c{4,8}__aarch64_neondot``) may group differently
# (not determined from source): an ULP-level unknown.

The block sums are exact integers (float64 BLAS); ``float(16 * sum)`` is exact for bl <= 1024.
FPCR.FZ (``fz``) applies to the f32 steps. :func:`prepare_qd8_f32_qb4w_weights` does the weight half once
(as XNNPACK packs at operator creation); :func:`qd8_f32_qb4w_gemm_prepared` runs it per activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, bf16_to_f32, clamp, f32_to_bf16_rne, fadd32, fma32, fmul32, ftz32
from ..validate import check_alloc
from ._common import as_f32, qd8_codes

__all__ = [
    "Qb4wWeights",
    "prepare_qd8_f32_qb4w_weights",
    "qb4w_ksum",
    "qd8_f32_qb4w_gemm",
    "qd8_f32_qb4w_gemm_prepared",
]

F32 = np.float32


def _check(w: object, scales: object, block_size: int) -> tuple[NDArray[np.int8], NDArray[np.uint16]]:
    if not isinstance(w, np.ndarray) or w.dtype != np.int8 or w.ndim != 2:
        raise TypeError("w must be a 2-D int8 array [N, K] of signed 4-bit weights (nibble - zero point)")
    if w.size and (w.min() < -8 or w.max() > 7):
        raise ValueError("4-bit weights must lie in [-8, 7] (nibble minus the kernel zero point)")
    n, k = w.shape
    if block_size < 1 or k % block_size:
        raise ValueError(f"block size {block_size} must divide K = {k}")
    if not isinstance(scales, np.ndarray) or scales.dtype != np.uint16:
        raise TypeError("scales must be bf16 bit patterns (uint16) of shape [N, K / block_size]")
    if scales.shape != (n, k // block_size):
        raise ValueError(f"scales must have shape {(n, k // block_size)}, got {scales.shape}")
    return w, scales


def qb4w_ksum(w: NDArray[np.int8], scales: NDArray[np.uint16], block_size: int, *, kr: int) -> NDArray[np.float32]:
    """The packed per-channel f32 ``ksum`` slot: ``ksum -= RN32(float(chunk sum) * scale)`` per 2*kr chunk."""
    w, scales = _check(w, scales, block_size)
    if kr < 1 or (2 * kr) > block_size or block_size % (2 * kr):
        raise ValueError(f"kr = {kr}: 2*kr must divide the block size {block_size}")
    n, k = w.shape
    sc = bf16_to_f32(scales)
    c = 2 * kr
    # Every chunk's RN32 product at once (chunk-major, contiguous), then the sequential f32 subtractions.
    w3 = w.astype(np.int32).reshape(n, k // c, c)
    chunk = sum((w3[:, :, i] for i in range(1, c)), start=w3[:, :, 0]).astype(F32)  # exact integer sums
    prod = np.ascontiguousarray((chunk * np.repeat(sc, block_size // c, axis=1)).astype(F32).T)
    ksum = np.zeros(n, F32)
    for p in prod:
        ksum = (ksum - p).astype(F32)
    return ksum


@dataclass(frozen=True, eq=False)
class Qb4wWeights:
    """The static half of :func:`qd8_f32_qb4w_gemm` (what ``xnn_pack_qs8_qb4w_gemm_goi_w`` computes once).

    ``w16[j]`` is ``16 * w[n, k]`` for the k of block j as a contiguous float64 ``[bl, N]`` matrix (the
    per-block products then read contiguous operands); ``sc16[j]`` the packed block scales of block j.
    """

    n: int
    k: int
    block_size: int
    kr: int
    ksum: NDArray[np.float32]  # [N]
    sc16: NDArray[np.float32]  # [K / bl, N]: bf16_rne(scale / 16) widened
    w16: NDArray[np.float64]  # [K / bl, bl, N]
    bias: NDArray[np.float32]  # [N] (zeros without a bias)


def prepare_qd8_f32_qb4w_weights(
    w: NDArray[np.int8],
    scales: NDArray[np.uint16],
    block_size: int,
    bias: NDArray[np.float32] | None = None,
    *,
    kr: int = 8,
) -> Qb4wWeights:
    """The weight work of :func:`qd8_f32_qb4w_gemm`, done once for any number of activations."""
    w, scales = _check(w, scales, block_size)
    n, k = w.shape
    b = np.zeros(n, F32) if bias is None else as_f32("bias", bias, shape=(n,))
    ksum = qb4w_ksum(w, scales, block_size, kr=kr)
    sc16 = bf16_to_f32(f32_to_bf16_rne((bf16_to_f32(scales) / F32(16)).astype(F32)))
    nb = k // block_size
    # The widened weights are 8 bytes per weight (plus the int8 transpose), kept for the session.
    check_alloc("qd8_f32_qb4w prepared weights", ((k, n), np.float64), ((k, n), np.int8), factor=2)
    w16 = 16.0 * np.ascontiguousarray(w.T).reshape(nb, block_size, n).astype(np.float64)
    return Qb4wWeights(n, k, block_size, kr, ksum, np.ascontiguousarray(sc16.T), w16, b.copy())


def qd8_f32_qb4w_gemm_prepared(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    p: Qb4wWeights,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
) -> NDArray[np.float32]:
    """:func:`qd8_f32_qb4w_gemm` on weights prepared by :func:`prepare_qd8_f32_qb4w_weights` (same bits)."""
    q = qd8_codes(q)
    m, k = q.shape
    if k != p.k:
        raise ValueError(f"K mismatch: q is {q.shape}, the prepared weights have K = {p.k}")
    a = as_f32("a", a, shape=(m,))
    nb = k // p.block_size
    zpf = np.asarray(zp, dtype=np.int64).reshape(m).astype(F32)
    y = fmul32(p.ksum[None, :], zpf[:, None], fz=fz)
    # Under FZ: y (an FZ result), the integer-valued block sums and the flushed scales hold no
    # subnormal, so fma32's input flush is done here once instead of per block.
    sc16 = ftz32(p.sc16) if fz else p.sc16
    qb = np.ascontiguousarray(q.astype(np.float64).reshape(m, nb, p.block_size).transpose(1, 0, 2))
    for j in range(nb):
        # The block sums are exact integers (|16 q w| <= 2**14 per term), so the BLAS order is immaterial.
        s = (qb[j] @ p.w16[j]).astype(F32)
        y = fma32(s, sc16[None, j], y, fz=fz, flushed=True)
    y = fmul32(y, a[:, None], fz=fz)
    y = fadd32(y, p.bias[None, :], fz=fz)
    return clamp(y, F32(clamp_min), F32(clamp_max), Clamp.FMAX_FMIN, fz=fz)


def qd8_f32_qb4w_gemm(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    scales: NDArray[np.uint16],
    block_size: int,
    bias: NDArray[np.float32] | None = None,
    *,
    kr: int = 8,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
) -> NDArray[np.float32]:
    """``[M, N]`` f32: qd8 rows ``q`` [M, K] (``a``, ``zp`` per row), 4-bit ``w`` [N, K], bf16 ``scales``."""
    q = qd8_codes(q)
    w, scales = _check(w, scales, block_size)
    if w.shape[1] != q.shape[1]:
        raise ValueError(f"K mismatch: q is {q.shape}, w is {w.shape}")
    as_f32("a", a, shape=(q.shape[0],))
    p = prepare_qd8_f32_qb4w_weights(w, scales, block_size, bias, kr=kr)
    return qd8_f32_qb4w_gemm_prepared(q, a, zp, p, clamp_min=clamp_min, clamp_max=clamp_max, fz=fz)
