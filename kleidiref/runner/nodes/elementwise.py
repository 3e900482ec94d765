"""Elementwise nodes: ``XNNClamp`` (ReLU, hardtanh, ...) and ``XNNAdd``, float32, float16 and qint8.

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

qint8 (static quantization, one scale and zero point per tensor):

* ``XNNAdd``: ``xnn_qs8_vadd_minmax`` (``__neon_ld64_u32`` on Arm64, ``__avx512skx_mul32_ld128_u16`` /
  ``__avx2_mul32_ld64_u16`` on x86) with ``xnn_init_qs8_add_minmax_scalar_params`` (``src/microparams-init.c``):
  ``m_a = lrintf(|s_a / s_out| * 2**shift)`` (likewise ``m_b``), ``shift = 20 - exponent(max(|s_a/s_out|,
  |s_b/s_out|))``. Arm (``src/qs8-vadd/neon.c.in``): ``acc = (a - z_a) m_a + (b - z_b) m_b``, ``vrshlq_s32`` by
  ``-shift`` (add ``2**(shift-1)``, arithmetic shift), ``vqmovn_s32``, ``vqaddq_s16`` of the output zero point,
  ``vqmovn_s16``; x86 (``avx512skx-mul32-ld128.c.in``): ``bias + a m_a + b m_b`` with ``bias = 2**(shift-1) -
  m_a z_a - m_b z_b``, ``_mm512_sra_epi32``, ``packs_epi32``, ``adds_epi16``, ``packs_epi16``: the same integers
  (no int32 overflow: ``|a - z_a| <= 255``, ``m < 2**21``). The add's own bounds are [-128, 127]; a stored output
  range is the separate Clamp after it.
* ``XNNClamp``: ``xnn_s8_vclamp`` (``__neon_u64``, ``__sse41_u64`` / ``__avx2``...) with bounds
  ``xnn_qs8_quantize(min)``, ``xnn_qs8_quantize(max)`` in the output's quantization
  (``xnn_init_qs8_clamp_scalar_params``): an integer max then min, the same on every CPU.

NaNs: ``kleidiref.numerics`` gives every NaN result as the default NaN (``0x7FC00000`` / ``0x7E00``), where the
kernels return a quieted operand NaN (FMAX/FADD without FPCR.DN; MAXPS/ADDPS return an operand, and x86's own
invalid-operation NaN is ``0xFFC00000``): NaN payloads and signs are not mirrored (``max_ulp_distance`` ignores
them); where a NaN appears is.

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
from ...numerics import Clamp, clamp, fadd16, fadd32, saturate
from ...quant import quantize_qai8
from ...targets import Target
from .common import Dynamic, quant_params

__all__ = ["add_node", "clamp_node", "float_clamp", "qs8_add", "qs8_add_params", "qs8_clamp"]

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


def _per_tensor(node: pte.XnnNode, graph: pte.XnnGraph, vid: int) -> tuple[float, int]:
    q = quant_params(graph.value(vid))
    if q is None or not isinstance(q.scale, float):
        raise NotImplementedError(f"{node.type} (node {node.index}): value {vid} is not per-tensor qint8")
    return q.scale, int(q.zero_point)


def qs8_add_params(s_a: float, s_b: float, s_out: float) -> tuple[int, int, int]:
    """``xnn_init_qs8_add_minmax_scalar_params``: (m_a, m_b, shift); a ValueError where its asserts fail."""
    ra = np.float32(np.float32(s_a) / np.float32(s_out))
    rb = np.float32(np.float32(s_b) / np.float32(s_out))
    top = max(abs(ra), abs(rb))
    if not (2.0**-10 <= abs(ra) < 2.0**8 and 2.0**-10 <= abs(rb) < 2.0**8):
        raise ValueError(
            f"qs8 add: input/output scale ratios {ra}, {rb} outside [2**-10, 2**8) "
            "(xnn_init_qs8_add_minmax_scalar_params asserts them)"
        )
    shift = 20 - (int(np.array(top, np.float32).view(np.uint32)) >> 23) + 127
    # float_as_uint32(|r|) + (shift << 23): |r| * 2**shift exactly, then lrintf (ties to even)
    ma = int(np.rint(np.float64(abs(ra)) * 2.0**shift))
    mb = int(np.rint(np.float64(abs(rb)) * 2.0**shift))
    return (-ma if ra < 0 else ma), (-mb if rb < 0 else mb), shift


def qs8_add(
    a: NDArray[np.int8], b: NDArray[np.int8], qa: tuple[float, int], qb: tuple[float, int], qo: tuple[float, int]
) -> NDArray[np.int8]:
    """``xnn_qs8_vadd_minmax`` (both kernels give these integers; see the module docstring)."""
    ma, mb, shift = qs8_add_params(qa[0], qb[0], qo[0])
    acc = (a.astype(np.int64) - qa[1]) * ma + (b.astype(np.int64) - qb[1]) * mb
    out = (acc + (1 << (shift - 1))) >> shift  # vrshlq_s32 / sra after the rounding bias
    out16 = saturate(saturate(out, np.int16) + qo[1], np.int16)  # vqmovn_s32, vqaddq_s16
    return np.ascontiguousarray(saturate(out16, np.int8).astype(np.int8))


def qs8_clamp(x: NDArray[np.int8], lo: float, hi: float, qo: tuple[float, int]) -> NDArray[np.int8]:
    """``xnn_s8_vclamp`` with ``xnn_qs8_quantize``d bounds."""
    qlo = int(quantize_qai8(np.array(lo, np.float32), qo[0], qo[1]))
    qhi = int(quantize_qai8(np.array(hi, np.float32), qo[0], qo[1]))
    out: NDArray[np.int8] = np.minimum(np.maximum(x, np.int8(qlo)), np.int8(qhi))
    return out


def _bounds(node: pte.XnnNode) -> tuple[float, float] | None:
    mm = node.output_min_max
    return None if mm is None or tuple(mm) == (-np.inf, np.inf) else (float(mm[0]), float(mm[1]))


def _qs8_input(node: pte.XnnNode, graph: pte.XnnGraph, vid: int, vals: Mapping[int, Any]) -> NDArray[np.int8] | None:
    """The value as int8 codes if the graph says qint8 (None for a float value)."""
    if graph.value(vid).datatype_name != "qint8":
        return None
    x = vals[vid]
    if isinstance(x, Dynamic) or x.dtype != np.int8:
        raise TypeError(f"{node.type} (node {node.index}): value {vid} should hold int8 codes")
    return np.asarray(x)


def clamp_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    q = _qs8_input(node, graph, node.fields["input_id"], vals)
    if q is not None:
        b = _bounds(node) or (-np.inf, np.inf)
        qo = _per_tensor(node, graph, node.fields["output_id"])
        return qs8_clamp(q, b[0], b[1], qo), "xnn_s8_vclamp (bounds by xnn_qs8_quantize)"
    x = _float_input(node, graph, node.fields["input_id"], vals)
    lo, hi = node.output_min_max if node.output_min_max is not None else (-np.inf, np.inf)
    return float_clamp(t, x, lo, hi)


def add_node(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    qa = _qs8_input(node, graph, f["input1_id"], vals)
    qb = _qs8_input(node, graph, f["input2_id"], vals)
    if qa is not None and qb is not None:
        qo = _per_tensor(node, graph, f["output_id"])
        pa, pb = _per_tensor(node, graph, f["input1_id"]), _per_tensor(node, graph, f["input2_id"])
        qa, qb = np.broadcast_arrays(qa, qb)
        y8 = qs8_add(qa, qb, pa, pb, qo)
        how = (
            "xnn_qs8_vadd_minmax (" + ("__neon_ld64_u32" if t.arch != "x86_64" else "__avx512skx_mul32_ld128_u16") + ")"
        )
        bounds = _bounds(node)
        if bounds is not None:
            y8 = qs8_clamp(y8, bounds[0], bounds[1], qo)
            how += ", then Clamp: xnn_s8_vclamp"
        return y8, how
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
