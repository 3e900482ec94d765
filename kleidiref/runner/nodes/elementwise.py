"""Elementwise nodes: ``XNNClamp`` (ReLU, hardtanh, ...) and ``XNNAdd``, float32 and float16.

XNNPACK ``92a7ad501b`` (ExecuTorch's pin; the x86 observations match it operator for operator):

* ``XNNClamp`` runs the ``clamp`` unary operator (``src/operators/unary-elementwise-nc.c``), kernels chosen in
  ``src/configs/unary-elementwise-config.c`` (``init_f32_clamp_config``, ``init_f16_clamp_config``):
  ``xnn_f32_vclamp_ukernel__neon_u16`` (``vmaxq_f32(x, min)`` then ``vminq_f32``, ``src/f32-vclamp/neon.c.in``),
  ``xnn_f32_vclamp_ukernel__avx512f_u32`` / ``__avx_u16`` (``_mm512_max_ps(vmin, x)`` then ``_mm512_min_ps(vmax,
  .)``, bound first, ``src/f32-vclamp/avx512f.c.in``), ``xnn_f16_vclamp_ukernel__neonfp16arith_u16`` (``vmaxq_f16``
  then ``vminq_f16``) and ``xnn_f16_vclamp_ukernel__f16c_u16`` (in f32: ``_mm256_max_ps(x, min)`` then
  ``_mm256_min_ps(., max)``, value first, ``src/f16-vclamp/f16c.c.in``).
* ``XNNAdd`` runs ``xnn_f32_vadd`` / ``xnn_f16_vadd`` (``src/configs/binary-elementwise-config.c``: ``__neon_u8``,
  ``__avx512f_u32``; ``__neonfp16arith_u16``, ``__avx512fp16_u64`` or ``__f16c_u16``), one rounded addition per
  element whatever the kernel (an f16 sum done in f32 then rounded to f16 is the same value: binary32 has more
  than 2 x 11 + 2 bits). A stored output range becomes a separate Clamp operator after the add (the subgraph's
  binary node, ``src/subgraph/binary.c``; ETDump shows ``Add (ND)`` then ``Clamp (NC)``), emulated as above.

Flushing: XNNPACK runs its kernels inside pthreadpool, which sets FPCR.FZ/FZ16 on Arm and MXCSR FTZ|DAZ on x86
(``target.flush_to_zero``). Note: the x86 f16 paths (F16C conversions, AVX512-FP16 arithmetic) ignore MXCSR's
FTZ/DAZ, so x86 f16 nodes never flush.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ... import pte
from ...numerics import Clamp, clamp, fadd16, fadd32
from ...targets import Target
from .common import Dynamic

__all__ = ["add_node", "clamp_node", "float_clamp"]

_FLOATS = ("fp32", "fp16")


def _float_input(node: pte.XnnNode, graph: pte.XnnGraph, vid: int, vals: Mapping[int, Any]) -> NDArray[Any]:
    x = vals[vid]
    dt = graph.value(vid).datatype_name
    if isinstance(x, Dynamic) or dt not in _FLOATS:
        raise NotImplementedError(
            f"{node.type} (node {node.index}) on {dt} values is not emulated yet (only fp32 and fp16: "
            "XNNPACK's qs8/qu8 clamp and add kernels are not mirrored)"
        )
    want = np.float32 if dt == "fp32" else np.float16
    if x.dtype != want:
        raise TypeError(f"{node.type} (node {node.index}): value {vid} is {x.dtype}, the graph says {dt}")
    return np.asarray(x)


def _fz(t: Target, dtype: np.dtype[Any]) -> bool:
    return t.flush_to_zero and (t.arch != "x86_64" or dtype == np.float32)


def float_clamp(t: Target, x: NDArray[Any], lo: float, hi: float) -> tuple[NDArray[Any], str]:
    """``x`` through XNNPACK's f32/f16 clamp kernel for ``t`` and the kernel's name."""
    f16 = x.dtype == np.float16
    if t.arch == "x86_64":
        kind, name = (
            (Clamp.X86_MAX_MIN, "xnn_f16_vclamp_ukernel__f16c_u16")
            if f16
            else (Clamp.X86_BOUND_MAX_MIN, "xnn_f32_vclamp_ukernel__avx512f_u32 / __avx_u16")
        )
    else:
        if f16 and not t.fp16_arith:
            raise NotImplementedError("an f16 clamp on an Arm CPU without FP16 arithmetic is not emulated")
        kind = Clamp.FMAX_FMIN
        name = "xnn_f16_vclamp_ukernel__neonfp16arith_u16" if f16 else "xnn_f32_vclamp_ukernel__neon_u16"
    # The bounds as the kernel's params hold them (xnn_init_f16_clamp_scalar_params rounds them to f16).
    lo_t, hi_t = np.asarray(lo, dtype=x.dtype), np.asarray(hi, dtype=x.dtype)
    return np.asarray(clamp(x, lo_t, hi_t, kind, fz=_fz(t, x.dtype))).astype(x.dtype, copy=False), name


def clamp_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    x = _float_input(node, graph, node.fields["input_id"], vals)
    lo, hi = node.output_min_max if node.output_min_max is not None else (-np.inf, np.inf)
    return float_clamp(t, x, lo, hi)


def add_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    a = _float_input(node, graph, f["input1_id"], vals)
    b = _float_input(node, graph, f["input2_id"], vals)
    if a.dtype != b.dtype:
        raise TypeError(f"XNNAdd (node {node.index}): operands {a.dtype} and {b.dtype} differ")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError as e:
        raise ValueError(f"XNNAdd (node {node.index}): shapes {a.shape} and {b.shape} do not broadcast") from e
    fz = _fz(t, a.dtype)
    if a.dtype == np.float16:
        if t.arch != "x86_64" and not t.fp16_arith:
            raise NotImplementedError("an f16 add on an Arm CPU without FP16 arithmetic is not emulated")
        y: NDArray[Any] = fadd16(a, b, fz=fz)
        how = "xnn_f16_vadd (__neonfp16arith_u16)" if t.arch != "x86_64" else "xnn_f16_vadd (__avx512fp16 / __f16c)"
    else:
        y = fadd32(*np.broadcast_arrays(a, b), fz=fz)
        how = "xnn_f32_vadd (__neon_u8)" if t.arch != "x86_64" else "xnn_f32_vadd (__avx512f_u32 / __avx_u16)"
    if node.output_min_max is not None:
        lo, hi = node.output_min_max
        if not (lo == -np.inf and hi == np.inf):
            y, cname = float_clamp(t, np.ascontiguousarray(y), lo, hi)
            how += f", then Clamp: {cname}"
    return np.ascontiguousarray(y), how
