"""Generic XNNPACK f32 IGEMM (convolution; ``f32_igemm`` / ``f32_gemm_nr2`` configs), ARM64.

Rows are output pixels; ``k' = tap * gic + c`` with taps (ky, kx) row-major and channels
ascending; a tap in the padding reads a zero buffer (+0.0). Per group g and output channel n:

``ld128`` - ``xnn_f32_igemm_minmax_ukernel_{4,6}x8__asm_aarch64_neonfma_ld128`` (one accumulator)::

    acc = bias[n]
    acc = fma32(x[k'], w[n, k'], acc)     k' = 0 .. taps*gic - 1
    y   = FMIN(FMAX(acc, min), max)

``acc2`` - ``xnn_f32_igemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld64`` (mr = 1) and the nr2
config's ``4x2__asm_aarch64_neonfma_cortex_a75_prfm``: two accumulators, split by the parity of
the channel position p inside each tap (src/f32-igemm/gen/f32-igemm-1x8-minmax-asm-aarch64-neonfma-ld64.S)::

    A = bias[n]; B = +0
    for each tap, p = 0 .. gic-1:  (p even ? A : B) = fma32(x, w, A or B)
    y = FMIN(FMAX(A + B, min), max)                 (FADD, always)

FPCR.FZ (``fz``) as XNNPACK's threadpool sets it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .._engine import fma32_chain
from ..numerics import Clamp, clamp, fadd32
from ._common import as_f32
from ._conv import grouped_conv, grouped_geometry

__all__ = ["F32_IGEMM_KERNELS", "f32_igemm"]

F32 = np.float32
F32_IGEMM_KERNELS: dict[str, str] = {
    "ld128": "xnn_f32_igemm_minmax_ukernel_{4,6}x8__asm_aarch64_neonfma_ld128",
    "acc2": "xnn_f32_igemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld64 / 4x2__asm_aarch64_neonfma_cortex_a75_prfm",
}


def f32_igemm(
    x: NDArray[np.float32],
    w: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: Literal["ld128", "acc2"] = "ld128",
) -> NDArray[np.float32]:
    """NHWC convolution ``x`` [N, H, W, C] * ``w`` [O, kh, kw, C/groups] + ``bias`` [O] -> [N, Ho, Wo, O]."""
    x = as_f32("x", x, ndim=4)
    w = as_f32("w", w, ndim=4)
    geo = grouped_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    cout = w.shape[0]
    b = np.zeros(cout, F32) if bias is None else as_f32("bias", bias, ndim=1)
    if b.shape != (cout,):
        raise ValueError(f"bias must have shape ({cout},), got {b.shape}")
    if kernel not in F32_IGEMM_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(F32_IGEMM_KERNELS)}, got {kernel!r}")

    def gemm(rows: NDArray[np.float32], wg: NDArray[np.float32], cols: slice) -> NDArray[np.float32]:
        m = rows.shape[0]
        wt = np.ascontiguousarray(wg.T)
        acc0 = np.broadcast_to(b[cols], (m, geo.goc))
        if kernel == "ld128":
            acc = fma32_chain(acc0, rows, wt, fz=fz)
        else:
            pos = np.tile(np.arange(geo.gic), geo.kh * geo.kw)
            even, odd = pos % 2 == 0, pos % 2 == 1
            big_a = fma32_chain(acc0, rows[:, even], wt[even], fz=fz)
            big_b = fma32_chain(np.zeros((m, geo.goc), F32), rows[:, odd], wt[odd], fz=fz)
            acc = fadd32(big_a, big_b, fz=fz)
        return clamp(acc, clamp_min, clamp_max, Clamp.FMAX_FMIN, fz=fz)

    return grouped_conv(x, w, geo, F32(0.0), F32, gemm)
