"""``qb4``: signed 4-bit block-wise weights with one bfloat16 scale per block of ``bl`` along K.

This is XNNPACK's ``qbint4`` weight format as the ``qp8_f32_qb4w`` path consumes it
(docs/kernels.md §7.1):

* real weight ``w[n, k] = code[n, k] * d[n, k // bl]``, ``code`` in [-8, 7], ``d`` = f32 of a
  bf16 scale (``kai_cast_f32_bf16``: ``bits << 16``, exact);
* storage is two codes per byte. XNNPACK stores them **unsigned with zero point 8**
  (``u = code + 8``); KleidiAI's packed buffers hold the 4-bit two's complement (``code & 0xF``
  = ``u XOR 8``). Order ``nxk`` (``s1s0``): rows of K, byte j of row n =
  ``u[n, 2j] | u[n, 2j+1] << 4`` (low nibble = even k); order ``kxn``
  (``XNN_FLAG_TRANSPOSE_WEIGHTS``): rows of N, byte j of row k = ``u[2j, k] | u[2j+1, k] << 4``
  (low nibble = even n). An odd count is padded with the zero code (nibble 8 unsigned, 0 signed);
* scales ``[N, K / bl]`` as bf16 bit patterns (uint16).

Scale conversions, each named after the code it mirrors::

    f32 -> bf16   XNNPACK math_cvt_bf16_fp32: round to nearest even       (f32_scales_to_bf16)
    f16 -> bf16   xnn_create_fully_connected_nc_qp8_f32_qb4w_f16_scales:
                  f16 -> f32 (exact) -> bf16 RNE                           (f16_scales_to_bf16)
    f32 -> bf16   ExecuTorch legacy inline fp32 scales (XNNCompiler.cpp convertF32TensorToBF16):
                  bits(RN32(x * 1.00389105f)) >> 16, i.e. truncation after a ~2**-8 nudge
                                                                           (executorch_legacy_f32_to_bf16)

Constraints, as XNNPACK checks them when the fully-connected operator is created
(``src/operators/fully-connected-nc.c``): ``bl >= 32`` and ``bl % 32 == 0``
(``XNN_MIN_BLOCKSIZE``); ``K % bl == 0``; kernel zero point 8 for qp8
(``check_kernel_zero_point_is_8_qu8``); every bf16 scale finite, > 0 and normal
(``check_block_size``). KleidiAI's packers add ``bl % kr == 0``.
"""

from __future__ import annotations

from typing import Any, Literal

import ml_dtypes
import numpy as np
from numpy.typing import NDArray

from ..numerics import bf16_to_f32, f32_to_bf16_rne, round_half_even, saturate
from ..validate import check_alloc

__all__ = [
    "XNN_MIN_BLOCKSIZE",
    "check_block_size",
    "check_kernel_zero_point",
    "check_scales_bf16",
    "dequantize_qb4",
    "executorch_legacy_f32_to_bf16",
    "f16_scales_to_bf16",
    "f32_scales_to_bf16",
    "pack_nibbles",
    "quantize_qb4",
    "unpack_nibbles",
]

#: ``XNN_MIN_BLOCKSIZE`` (include/xnnpack.h): qb4w block sizes are multiples of 32.
XNN_MIN_BLOCKSIZE = 32

Order = Literal["nxk", "kxn"]
F32, F64 = np.float32, np.float64


def _int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    return int(v)


def check_block_size(k: int, bl: int, *, kr: int | None = None) -> None:
    """Raise ValueError unless ``bl`` and ``K`` satisfy XNNPACK's and KleidiAI's block rules.

    * ``bl >= 32`` and ``bl % 32 == 0``: ``XNN_MIN_BLOCKSIZE`` (``check_block_size``,
      fully-connected-nc.c; KleidiAI ``KAI_ASSERT((bl % kai_bl_multiple_of) == 0)``);
    * ``K % bl == 0``: ``check_block_size`` (KleidiAI ``KAI_ASSERT((k % bl) == 0)``);
    * ``bl % kr == 0`` when ``kr`` is given: KleidiAI ``KAI_ASSERT((bl % kr) == 0)``.
    """
    k, bl = _int("K", k), _int("bl", bl)
    if bl < XNN_MIN_BLOCKSIZE or bl % XNN_MIN_BLOCKSIZE:
        raise ValueError(
            f"block size bl={bl} must be a positive multiple of {XNN_MIN_BLOCKSIZE} "
            "(XNN_MIN_BLOCKSIZE, check_block_size in xnn_create_fully_connected_nc_qp8_f32_qb4w; "
            "KAI_ASSERT((bl % kai_bl_multiple_of) == 0))"
        )
    if k < 1 or k % bl:
        raise ValueError(
            f"K={k} must be a positive multiple of the block size bl={bl} "
            "(check_block_size: input_channels % block_size == 0; KAI_ASSERT((k % bl) == 0))"
        )
    if kr is not None and _int("kr", kr) < 1:
        raise ValueError(f"kr={kr} must be >= 1 (a kernel's k-block length)")
    if kr is not None and bl % _int("kr", kr):
        raise ValueError(f"bl={bl} must be a multiple of kr={kr} (KAI_ASSERT((bl % kr) == 0) in the RHS packer)")


def check_kernel_zero_point(zero_point: int) -> None:
    """qp8_f32_qb4w needs the unsigned codes' zero point to be 8 (``check_kernel_zero_point_is_8_qu8``;
    KleidiAI ``KAI_ASSERT(params->rhs_zero_point == 8)``)."""
    zp = _int("kernel_zero_point", zero_point)
    if zp != 8:
        raise ValueError(
            f"kernel zero point {zp}: the qp8_f32_qb4w path requires 8 (check_kernel_zero_point_is_8_qu8 in "
            "fully-connected-nc.c; KAI_ASSERT(params->rhs_zero_point == 8) in the qsi4c32p RHS packers)"
        )


def check_scales_bf16(scales: NDArray[np.uint16], *, n: int | None = None, num_blocks: int | None = None) -> None:
    """Every bf16 scale must be finite, > 0 and normal (``check_block_size``; ``math_cvt_fp32_bf16``).

    Shape ``[N, K / bl]`` is checked when ``n`` / ``num_blocks`` are given.
    """
    if not isinstance(scales, np.ndarray):
        raise TypeError(f"scales must be a numpy array of uint16 bf16 bit patterns, got {type(scales).__name__}")
    if scales.dtype != np.uint16:
        raise TypeError(f"scales must be uint16 bf16 bit patterns [N, K/bl], got {scales.dtype}")
    if scales.ndim != 2:
        raise ValueError(f"scales must be 2-D [N, K/bl], got shape {scales.shape}")
    if n is not None and num_blocks is not None and scales.shape != (n, num_blocks):
        raise ValueError(f"scales must have shape ({n}, {num_blocks}) = [N, K/bl], got {scales.shape}")
    d = bf16_to_f32(scales)
    bad = ~(np.isfinite(d) & (d > 0) & (d >= np.finfo(np.float32).tiny))
    if np.any(bad):
        i = tuple(int(x) for x in np.argwhere(bad)[0])
        raise ValueError(
            f"scale {i} = {float(d[i])!r} (bf16 0x{int(scales[i]):04x}) is not finite, positive and normal: "
            "XNNPACK's check_block_size rejects it (xnn_status_invalid_parameter)"
        )


def f32_scales_to_bf16(scales: NDArray[np.float32]) -> NDArray[np.uint16]:
    """f32 -> bf16 bits, round to nearest even (XNNPACK ``math_cvt_bf16_fp32``)."""
    if not isinstance(scales, np.ndarray) or scales.dtype != F32:
        raise TypeError("f32_scales_to_bf16 converts a float32 array")
    return f32_to_bf16_rne(scales)


def f16_scales_to_bf16(scales: NDArray[np.float16]) -> NDArray[np.uint16]:
    """f16 -> f32 (exact) -> bf16 RNE, as ``xnn_create_fully_connected_nc_qp8_f32_qb4w_f16_scales`` does."""
    if not isinstance(scales, np.ndarray) or scales.dtype != np.float16:
        raise TypeError("f16_scales_to_bf16 converts a float16 array")
    return f32_to_bf16_rne(scales.astype(F32))


def executorch_legacy_f32_to_bf16(scales: NDArray[np.float32]) -> NDArray[np.uint16]:
    """ExecuTorch's legacy inline fp32 qbint4 scales (``convertF32TensorToBF16``, XNNCompiler.cpp).

    ``bits(RN32(x * 1.00389105f)) >> 16``: a binary32 multiply by a factor just above
    1 + 2**-8, then truncation of the low 16 bits. Not round-to-nearest: it can differ from
    :func:`f32_scales_to_bf16` by one bf16 ulp.
    """
    if not isinstance(scales, np.ndarray) or scales.dtype != F32:
        raise TypeError("executorch_legacy_f32_to_bf16 converts a float32 array")
    with np.errstate(over="ignore", invalid="ignore"):
        y = (scales * F32(1.00389105)).astype(F32)
    out: NDArray[np.uint16] = (y.view(np.uint32) >> np.uint32(16)).astype(np.uint16)
    return out


def quantize_qb4(w: NDArray[np.floating[Any]], bl: int) -> tuple[NDArray[np.int8], NDArray[np.uint16]]:
    """Symmetric 4-bit block quantization of ``w`` [N, K]: ``(codes [N, K] int8, scales [N, K/bl] bf16)``.

    ::

        amax  = max |w| over the block (float64)
        s     = RN32(amax / 7.5)                  torchao's symmetric int4 range (-8..7)
        d     = bf16 RNE of s, raised one bf16 ulp if it fell below s (so |w| / d <= 7.5)
        code  = clamp(RNE_int(w / d), -8, 7)      (float64 division)
        all-zero block: d = 1.0, codes 0          (XNNPACK needs positive normal scales)

    So ``|w - code * d| <= d / 2`` for every element. Scales outside the bf16 normal range
    raise ValueError (XNNPACK would reject them).
    """
    if not isinstance(w, np.ndarray) or w.ndim != 2 or w.dtype.kind != "f":
        raise TypeError("quantize_qb4 takes a 2-D floating-point array [N, K]")
    n, k = w.shape
    check_block_size(k, bl)
    check_alloc(f"qb4 quantization of {w.shape}", (w.shape, F64), factor=4)
    x = w.astype(F64)
    if not np.all(np.isfinite(x)):
        raise ValueError("quantize_qb4: weights must be finite")
    blocks = x.reshape(n, k // bl, bl)
    amax = np.abs(blocks).max(axis=2)
    s = (amax / 7.5).astype(F32)
    s = np.where(amax == 0, F32(1.0), s).astype(F32)
    bits = f32_to_bf16_rne(s)
    low = bf16_to_f32(bits) < s
    bits = np.where(low, bits + np.uint16(1), bits).astype(np.uint16)
    check_scales_bf16(bits)
    d = bf16_to_f32(bits).astype(F64)
    codes = saturate(round_half_even(blocks / d[:, :, None]), ml_dtypes.int4).astype(np.int8).reshape(n, k)
    return codes, bits


def dequantize_qb4(codes: NDArray[np.int8], scales: NDArray[np.uint16], bl: int) -> NDArray[np.float32]:
    """``code * f32(bf16 scale)`` [N, K] in float32 (exact: 4-bit times 8-bit significands)."""
    if not isinstance(codes, np.ndarray) or codes.dtype != np.int8 or codes.ndim != 2:
        raise TypeError("codes must be a 2-D int8 array [N, K] with values in [-8, 7]")
    n, k = codes.shape
    check_block_size(k, bl)
    check_alloc(f"qb4 dequantization of {codes.shape}", (codes.shape, F32), factor=3)
    if np.any(codes < -8) or np.any(codes > 7):
        raise ValueError("codes must lie in [-8, 7] (signed 4-bit)")
    if not isinstance(scales, np.ndarray) or scales.dtype != np.uint16:
        raise TypeError("scales must be uint16 bf16 bit patterns [N, K/bl]")
    if scales.shape != (n, k // bl):
        raise ValueError(f"scales must have shape ({n}, {k // bl}) = [N, K/bl], got {scales.shape}")
    d = np.repeat(bf16_to_f32(scales), bl, axis=1)
    return (codes.astype(F32) * d).astype(F32)


def pack_nibbles(codes: NDArray[np.int8], order: Order = "nxk", *, signed: bool = False) -> NDArray[np.uint8]:
    """Two 4-bit codes per byte from ``codes`` [N, K] in [-8, 7].

    ``order="nxk"``: [N, ceil(K/2)], low nibble = even k (``s1s0``; XNNPACK's default layout).
    ``order="kxn"``: [K, ceil(N/2)], low nibble = even n (``XNN_FLAG_TRANSPOSE_WEIGHTS``).
    ``signed=False``: unsigned nibbles with zero point 8 (``code + 8``, XNNPACK / ExecuTorch
    storage); ``signed=True``: two's complement nibbles (``code & 0xF``, KleidiAI's packed form).
    An odd trailing position holds the zero code.
    """
    if not isinstance(codes, np.ndarray) or codes.dtype != np.int8 or codes.ndim != 2:
        raise TypeError("codes must be a 2-D int8 array [N, K] with values in [-8, 7]")
    if np.any(codes < -8) or np.any(codes > 7):
        raise ValueError("codes must lie in [-8, 7] (signed 4-bit)")
    if order not in ("nxk", "kxn"):
        raise ValueError(f"order must be 'nxk' or 'kxn', got {order!r}")
    m = codes if order == "nxk" else codes.T
    rows, cols = m.shape
    nib = (m.astype(np.int16) & 0xF) if signed else (m.astype(np.int16) + 8)
    if cols % 2:
        nib = np.concatenate([nib, np.full((rows, 1), 0 if signed else 8, dtype=np.int16)], axis=1)
    nib = nib.astype(np.uint8)
    return np.ascontiguousarray(nib[:, 0::2] | (nib[:, 1::2] << np.uint8(4)))


def unpack_nibbles(
    packed: NDArray[np.uint8], n: int, k: int, order: Order = "nxk", *, signed: bool = False
) -> NDArray[np.int8]:
    """Inverse of :func:`pack_nibbles`: the codes [N, K] in [-8, 7]."""
    n, k = _int("n", n), _int("k", k)
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 2:
        raise TypeError("packed must be a 2-D uint8 array of nibble pairs")
    if order not in ("nxk", "kxn"):
        raise ValueError(f"order must be 'nxk' or 'kxn', got {order!r}")
    rows, cols = (n, k) if order == "nxk" else (k, n)
    if packed.shape != (rows, (cols + 1) // 2):
        raise ValueError(f"packed must have shape ({rows}, {(cols + 1) // 2}) for order {order!r}, got {packed.shape}")
    lo, hi = packed & np.uint8(0xF), packed >> np.uint8(4)
    nib = np.stack([lo, hi], axis=2).reshape(rows, -1)[:, :cols].astype(np.int16)
    vals = ((nib ^ 8) - 8) if signed else (nib - 8)
    out = vals.astype(np.int8)
    return np.ascontiguousarray(out if order == "nxk" else out.T)
