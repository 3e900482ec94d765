"""``XNNGlobalAvgPooling2d``: XNNPACK's mean over H and W of an NHWC tensor (``Mean (ND) Reduce2`` in ETDump).

XNNPACK ``92a7ad501b``: ``xnn_define_global_average_pooling_2d`` (``src/subgraph/deprecated.c``) defines a
static mean over axes (1, 2) (``xnn_define_static_reduce``, then ``xnn_create_reduce_nd(xnn_reduce_mean, ...)``
in ``src/operators/reduce-nd.c``), plus a Clamp node when an output range is stored. The reduction is not over
the innermost axis, so it runs ``xnn_compute_discontiguous_reduce`` (``src/operator-run.c``) with the ``rd_ukernel2`` of
``xnn_init_f32_rsum_config`` / ``xnn_init_f16_f32acc_rsum_config`` (``src/configs/reduce-config.c``):
``xnn_f32_rdsum_ukernel_7p7x__neon_u16`` on Arm, ``__avx512f_u64`` (or ``__avx_u32``) on x86;
``xnn_f16_f32acc_rdsum_ukernel_7p7x__neonfp16arith_u16`` / ``__avx512skx_u64`` (``__f16c_u32``) for f16.

Every one of these is the same template (``src/f32-rdsum/simd.c.in``, ``src/f16-f32acc-rdsum/*``), so Arm and
x86 sum in the same order, per output channel:

    acc = +0.0f;  for each of the H*W pixels in order: acc = RN32(pixel + acc)   (7 rows a pass; the
                                                        missing rows of the last pass add +0.0 from `zero`)
    out = RN32(0 + RN32(acc * scale))                  (the output, zeroed first, is accumulated into)

with ``scale = RN32(1.0f / (H*W))`` (``reshape_reduce_nd``: ``scale = 1.0f / num_reduction_elements``). f16
inputs are widened exactly (``vcvt_f32_f16`` / ``_mm512_cvtph_ps``), accumulated in an f32 workspace and
converted once to f16 (``xnn_init_f32_to_f16_cvt_config``, round to nearest even). The f32 additions run under
pthreadpool's FZ (Arm) / FTZ|DAZ (x86): ``target.flush_to_zero``.

qint8 (``Mean (ND)``, the older reduce path): ``xnn_qs8_rdsum_ukernel_7p7x`` (``__neon_u32``,
``__avx512skx_u64`` / ``__avx2_u64``) sums the int8 codes into an int32 workspace (exact), then the reference
int32 -> qint8 convert (``src/reference/unary-elementwise.cc``, ``quantize`` in
``src/xnnpack/reference-utils.h``) with the parameters ``reshape_reduce_nd`` rewrites::

    scale = RN32(RN32(s_in / s_out) * RN32(1.0f / n))   (xnn_init_qs8_reduce_scalar_params, then _update_)
    zp'   = zp_out - RN32(n * zp_in) * scale             (float)
    q     = (int8) clamp(nearbyint(float(sum) * scale + zp'), -128, 127)    (NaN -> 0)

Note: ``a - b * c`` and ``x * inv_scale + zero_point`` are single C expressions: clang (the Arm build, default
``-ffp-contract=on``; XNNPACK's CMakeLists.txt turns contraction off only for GCC) fuses them into one FMA;
x86-64 code without FMA in its baseline ISA rounds the product first. Arm is unobserved here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ... import pte
from ...numerics import fadd32, fma32, fmul32, rn16
from ...targets import Target
from .common import Dynamic, quant_params
from .elementwise import float_clamp

__all__ = ["global_avg_pooling_2d_node", "qs8_mean", "rdsum_mean_f32"]


def rdsum_mean_f32(rows: NDArray[np.float32], *, fz: bool) -> NDArray[np.float32]:
    """The mean over axis 1 of ``rows`` ``[N, R, C]`` (f32) the way ``xnn_f32_rdsum_ukernel_7p7x`` computes it."""
    n, r, c = rows.shape
    if r == 0:
        raise ValueError("XNNGlobalAvgPooling2d over an empty window (XNNPACK gives NaN there; not emulated)")
    scale = np.float32(1.0) / np.float32(r)
    acc = np.zeros((n, c), np.float32)
    for i in range(r):
        acc = fadd32(rows[:, i, :], acc, fz=fz)
    return fadd32(np.zeros_like(acc), fmul32(acc, scale, fz=fz), fz=fz)


def qs8_mean(rows: NDArray[np.int8], qi: tuple[float, int], qo: tuple[float, int], *, fused: bool) -> NDArray[np.int8]:
    """The qs8 mean over axis 1 of ``rows`` ``[N, R, C]`` as XNNPACK's qs8 reduce computes it (module docstring);
    ``fused``: the Arm build's contracted FMAs."""
    n = rows.shape[1]
    if n == 0:
        raise ValueError("XNNGlobalAvgPooling2d over an empty window (not emulated)")
    f32 = np.float32
    scale = f32(f32(f32(qi[0]) / f32(qo[0])) * f32(f32(1.0) / f32(n)))
    nzp = f32(f32(n) * f32(qi[1]))
    acc = rows.astype(np.int64).sum(axis=1).astype(f32)  # exact int32 sums, then static_cast<float> (RNE)
    if fused:
        zp = fma32(-nzp, scale, f32(qo[1]))
        y = fma32(acc, scale, zp)
    else:
        zp = f32(f32(qo[1]) - f32(nzp * scale))
        y = (acc * scale).astype(f32) + zp
    y = np.where(np.isnan(y), f32(0), np.rint(y))  # round_float_to_int: NaN -> 0, nearbyint (ties to even)
    return np.clip(y, -128, 127).astype(np.int8)


def global_avg_pooling_2d_node(
    t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]
) -> tuple[Any, str]:
    vid = node.fields["input_id"]
    x = vals[vid]
    dt = graph.value(vid).datatype_name
    if dt == "qint8" and not isinstance(x, Dynamic) and x.ndim == 4:
        qi, qo = quant_params(graph.value(vid)), quant_params(graph.value(node.fields["output_id"]))
        if qi is None or qo is None or not isinstance(qi.scale, float) or not isinstance(qo.scale, float):
            raise NotImplementedError(f"XNNGlobalAvgPooling2d (node {node.index}): not per-tensor qint8")
        n, h, w, c = x.shape
        arm = t.arch != "x86_64"
        q = qs8_mean(
            np.asarray(x).reshape(n, h * w, c),
            (qi.scale, int(qi.zero_point)),
            (qo.scale, int(qo.zero_point)),
            fused=arm,
        ).reshape(n, 1, 1, c)
        if node.output_min_max is not None and tuple(node.output_min_max) != (-np.inf, np.inf):
            raise NotImplementedError(f"XNNGlobalAvgPooling2d (node {node.index}): a qint8 output range")
        kernel = "xnn_qs8_rdsum_ukernel_7p7x__" + ("neon_u32" if arm else "avx512skx_u64")
        return q, kernel + ", then the reference int32 -> qint8 convert" + (" (FMA-contracted)" if arm else "")
    if isinstance(x, Dynamic) or dt not in ("fp32", "fp16"):
        raise NotImplementedError(
            f"XNNGlobalAvgPooling2d (node {node.index}) on {dt} values is not emulated yet "
            "(XNNPACK's qs8/qu8 mean: xnn_qs8_rdsum with an int32 -> qint8 requantization)"
        )
    if x.ndim != 4:
        raise ValueError(f"XNNGlobalAvgPooling2d (node {node.index}): input must be NHWC (4-D), got {x.shape}")
    n, h, w, c = x.shape
    rows = np.asarray(x, dtype=np.float32).reshape(n, h * w, c)  # f16 -> f32 is exact
    arm = t.arch != "x86_64"
    mean: NDArray[Any] = rdsum_mean_f32(rows, fz=t.flush_to_zero).reshape(n, 1, 1, c)
    if x.dtype == np.float16:
        kernel = "xnn_f16_f32acc_rdsum_ukernel_7p7x__" + ("neonfp16arith_u16" if arm else "avx512skx_u64 / __f16c_u32")
        mean, how = rn16(mean), f"{kernel}, then xnn_f32_f16_vcvt (RNE)"
    else:
        how = "xnn_f32_rdsum_ukernel_7p7x__" + ("neon_u16" if arm else "avx512f_u64 / __avx_u32")
    if node.output_min_max is not None and tuple(node.output_min_max) != (-np.inf, np.inf):
        mean, cname = float_clamp(t, mean, *node.output_min_max)
        how += f", then Clamp: {cname}"
    return mean, how
