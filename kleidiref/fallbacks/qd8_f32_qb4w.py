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
FPCR.FZ (``fz``) applies to the f32 steps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, bf16_to_f32, clamp, f32_to_bf16_rne, fadd32, fma32, fmul32
from ._common import as_f32, qd8_codes

__all__ = ["qb4w_ksum", "qd8_f32_qb4w_gemm"]

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
    ksum = np.zeros(n, F32)
    wi = w.astype(np.int64)
    for c0 in range(0, k, 2 * kr):
        chunk = wi[:, c0 : c0 + 2 * kr].sum(axis=1).astype(F32)
        ksum = (ksum - (chunk * sc[:, c0 // block_size]).astype(F32)).astype(F32)
    return ksum


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
    m, k = q.shape
    n = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"K mismatch: q is {q.shape}, w is {w.shape}")
    a = as_f32("a", a, shape=(m,))
    b = np.zeros(n, F32) if bias is None else as_f32("bias", bias, shape=(n,))
    ksum = qb4w_ksum(w, scales, block_size, kr=kr)
    sc16 = bf16_to_f32(f32_to_bf16_rne((bf16_to_f32(scales) / F32(16)).astype(F32)))
    zpf = np.asarray(zp, dtype=np.int64).reshape(m).astype(F32)
    y = fmul32(ksum[None, :], zpf[:, None], fz=fz)
    q64 = q.astype(np.float64)
    w16 = 16.0 * w.astype(np.float64)
    for j in range(k // block_size):
        blk = slice(j * block_size, (j + 1) * block_size)
        s = np.rint(q64[:, blk] @ w16[:, blk].T).astype(F32)
        y = fma32(s, sc16[None, :, j], y, fz=fz)
    y = fmul32(y, a[:, None], fz=fz)
    y = fadd32(y, b[None, :], fz=fz)
    return clamp(y, F32(clamp_min), F32(clamp_max), Clamp.FMAX_FMIN, fz=fz)
