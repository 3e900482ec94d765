"""Generic XNNPACK f32 GEMM (``f32_gemm`` / ``f32_gemm_nr2`` configs), ARM64 assembly kernels.

``y = clamp(bias + a @ w.T)`` with each kernel's accumulation order:

``ld128`` - ``xnn_f32_gemm_minmax_ukernel_{1,4,7}x8__asm_aarch64_neonfma_ld128_2`` (Linux/Android
default) and ``6x8__asm_aarch64_neonfma_ld128`` (iOS/macOS, M > 1)::

    acc = bias[n]
    acc = fma32(a[m,k], w[n,k], acc)      k = 0 .. K-1   (FMLA .4s, one rounding each)
    y   = FMAX(FMIN(acc, max), min)

``acc4`` - ``xnn_f32_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4`` (iOS/macOS, M == 1),
four partial sums A, B, C, D (src/f32-gemm/gen/f32-gemm-1x8-minmax-asm-aarch64-neonfma-ld128-acc4.S)::

    A = bias[n]; B = C = D = +0;  G = K // 4
    for i < G: A = fma(a[4i],w,A); B = fma(a[4i+1],w,B); C = fma(a[4i+2],w,C); D = fma(a[4i+3],w,D)
    if G > 0:  A = A + C; B = B + D                       (FADD)
    if K % 4 >= 2: A = fma(a[4G],w,A); B = fma(a[4G+1],w,B)
    if K % 2 == 1: A = fma(a[K-1],w,A)
    y = FMIN(FMAX(A + B, min), max)

``nr2`` - ``xnn_f32_gemm_minmax_ukernel_4x2__asm_aarch64_neonfma_ld128`` (the ``f32_gemm_nr2``
config), four lanes per output (src/f32-gemm/gen/f32-gemm-4x2-minmax-asm-aarch64-neonfma-ld128.S)::

    L0 = bias[n]; L1 = L2 = L3 = +0;  G = K // 4
    for i < G, j < 4: Lj = fma(a[4i+j], w, Lj)
    acc = (L0 + L1) + (L2 + L3)                            (FADDP twice; also when G == 0)
    acc = fma(a[k], w, acc)   for k = 4G .. K-1
    y = FMIN(FMAX(acc, min), max)

FPCR.FZ (``fz``) flushes every operand and tiny result, as XNNPACK's threadpool sets it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .._engine import fma32_chain
from ..numerics import Clamp, clamp, fadd32
from ._common import as_f32

__all__ = ["F32_GEMM_KERNELS", "f32_gemm"]

F32 = np.float32
#: ``kernel=`` values and the XNNPACK ukernels they model.
F32_GEMM_KERNELS: dict[str, str] = {
    "ld128": "xnn_f32_gemm_minmax_ukernel_{1,4,7}x8__asm_aarch64_neonfma_ld128_2 / 6x8__..._ld128",
    "acc4": "xnn_f32_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4",
    "nr2": "xnn_f32_gemm_minmax_ukernel_4x2__asm_aarch64_neonfma_ld128",
}


def f32_gemm(
    a: NDArray[np.float32],
    w: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: Literal["ld128", "acc4", "nr2"] = "ld128",
) -> NDArray[np.float32]:
    """``[M, N]`` float32 output of the f32 GEMM kernel ``kernel`` for ``a`` [M, K], ``w`` [N, K].

    ``bias`` [N] (None: zeros, as for BMM's dynamic B). ``acc4`` is a 1-row kernel (M must be 1).
    """
    a = as_f32("a", a, ndim=2)
    w = as_f32("w", w, ndim=2)
    m, k = a.shape
    n = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"K mismatch: a is {a.shape}, w is {w.shape} ([N, K])")
    if k < 1:
        raise ValueError("K must be >= 1")
    b = np.zeros(n, F32) if bias is None else as_f32("bias", bias, ndim=1)
    if b.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), got {b.shape}")
    if kernel not in F32_GEMM_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(F32_GEMM_KERNELS)}, got {kernel!r}")
    wt = np.ascontiguousarray(w.T)
    acc0 = np.broadcast_to(b, (m, n))
    zero = np.zeros((m, n), F32)
    if kernel == "ld128":
        return clamp(fma32_chain(acc0, a, wt, fz=fz), clamp_min, clamp_max, Clamp.FMIN_FMAX, fz=fz)
    g = k // 4
    if kernel == "acc4":
        if m != 1:
            raise ValueError(f"the 1x8 acc4 kernel computes one row; M = {m}")
        acc = [fma32_chain(acc0 if j == 0 else zero, a[:, j : 4 * g : 4], wt[j : 4 * g : 4], fz=fz) for j in range(4)]
        big_a, big_b, c, d = acc
        if g > 0:
            big_a, big_b = fadd32(big_a, c, fz=fz), fadd32(big_b, d, fz=fz)
        r = k - 4 * g
        if r >= 2:
            big_a = fma32_chain(big_a, a[:, 4 * g : 4 * g + 1], wt[4 * g : 4 * g + 1], fz=fz)
            big_b = fma32_chain(big_b, a[:, 4 * g + 1 : 4 * g + 2], wt[4 * g + 1 : 4 * g + 2], fz=fz)
        if r % 2:
            big_a = fma32_chain(big_a, a[:, k - 1 : k], wt[k - 1 : k], fz=fz)
        return clamp(fadd32(big_a, big_b, fz=fz), clamp_min, clamp_max, Clamp.FMAX_FMIN, fz=fz)
    # nr2: four lanes per output, FADDP reduction, then the K % 4 tail on the reduced sum.
    lanes = [fma32_chain(acc0 if j == 0 else zero, a[:, j : 4 * g : 4], wt[j : 4 * g : 4], fz=fz) for j in range(4)]
    red = fadd32(fadd32(lanes[0], lanes[1], fz=fz), fadd32(lanes[2], lanes[3], fz=fz), fz=fz)
    if k > 4 * g:
        red = fma32_chain(red, a[:, 4 * g :], wt[4 * g :], fz=fz)
    return clamp(red, clamp_min, clamp_max, Clamp.FMAX_FMIN, fz=fz)
