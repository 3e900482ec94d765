"""Generic XNNPACK ``vmulcaddc``: a 1x1, stride-1, unpadded convolution with 1 input and 1 output
channel per group (a per-channel ``x * scale + bias``).

``xnn_f32_vmulcaddc_minmax_ukernel_c4__neonfma_2x`` /
``xnn_f16_vmulcaddc_minmax_ukernel_c8__neonfp16arith_2x``
(src/f32-vmulcaddc/gen/f32-vmulcaddc-c4-minmax-neonfma-2x.c)::

    y = fma(x[.., c], scale[c], bias[c])      vfmaq_f32(bias, scale, x): one rounding (f32 or f16)
    y = FMIN(FMAX(y, min), max)

FPCR.FZ/FZ16 as XNNPACK's threadpool sets them.

Note: at the pin no convolution reaches this kernel: ``init_vmuladdc_params_{f32,f16}``
(src/operators/convolution-nhwc.c) never store the config in ``context->vmulcaddc_config``, so
``select_microkernel_type`` runs the 3-tap dwconv kernel instead (:mod:`kleidiref.fallbacks.dwconv`; its
spare taps make ``0 * Inf`` of a neighbour a NaN where this kernel would not). Kept as the kernel itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fma16, fma32

__all__ = ["vmulcaddc"]


def vmulcaddc(
    x: NDArray[Any],
    scale: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
) -> NDArray[Any]:
    """``x`` [..., C] float32/float16, ``scale`` [C] (the 1x1 depthwise filter), ``bias`` [C], same dtype."""
    xa = np.asarray(x)
    dt = xa.dtype
    if dt not in (np.float32, np.float16):
        raise TypeError(f"vmulcaddc takes float32 or float16 inputs, got {dt}")
    c = xa.shape[-1]
    sc = np.asarray(scale)
    b = np.zeros(c, dt) if bias is None else np.asarray(bias)
    if sc.dtype != dt or b.dtype != dt or sc.shape != (c,) or b.shape != (c,):
        raise TypeError(f"scale and bias must be {dt} arrays of shape ({c},)")
    fma = fma32 if dt == np.float32 else fma16
    y = fma(xa, sc, b, fz=fz)
    lo = np.float32(clamp_min).astype(dt)
    hi = np.float32(clamp_max).astype(dt)
    return clamp(np.asarray(y, dtype=dt), lo, hi, Clamp.FMAX_FMIN, fz=fz)
