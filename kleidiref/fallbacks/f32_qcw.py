"""XNNPACK weight-only quantized FC: ``f32_qc8w_gemm`` / ``f32_qc4w_gemm`` (fp32 in/out, int weights).

Configs: ``init_f32_qc8w_gemm_config`` / ``init_f32_qc4w_gemm_config`` (src/configs/gemm-config.c,
ARM64 branch). The fully-connected operator runs the 1-row kernel when M == 1 and the config's
``mr`` kernel otherwise (``fully-connected-nc.c``, ``batch_size == 1 && gemm_cases[0]``); every
kernel keeps one output per lane, so the row count never changes the bits, only ``kernel`` does.

Packing: ``xnn_x8_packw_gemm_goi_ukernel_x8__scalar_u2`` (qc8w) / ``xnn_pack_f32_qc4w_gemm_goi_w``
(qc4w, src/reference/packing.cc) copy the fp32 bias **raw** in front of each nr block, then the
int weights; ``xnn_init_qs8_qc8w_scale_fp32_params`` writes the fp32 per-channel scale after
them. The kernels start the accumulator at that bias and multiply by the scale at the end::

    acc = bias[n]                                   (0 without a bias)
    acc = fma32(a[m,k], float(w[n,k]), acc)         k = 0 .. K-1, FMLA (SCVTF of the int is exact)
    y   = RN32(acc * scale[n])                      FMUL, after the whole sum
    y   = clamp(y, min, max)

# Note: the bias is therefore scaled too: y = (bias + sum a*w) * scale, not sum a*w*scale + bias.
# That is what the kernels and XNNPACK's own references compute (test/gemm-microkernel-tester.cc
# ``Test(xnn_f32_qc8w_gemm_minmax_ukernel_fn …)``, test/operators/fully-connected-operator-tester.h
# ``TestF32QC8W``); test/subgraph/fully-connected.cc disables the bias for F32QC8W/F32QC4W
# ("the kernels want the bias … scaled by the inverse channelwise weight scale"). Emulated as is.

``f32_qc8w_gemm`` kernels (ARM64, default uarch):

``ld128`` - ``xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128`` (M > 1, every
platform) and ``1x8__asm_aarch64_neonfma_ld128`` (M == 1 on iOS/macOS): the chain above;
clamp ``FMIN(FMAX(y, min), max)``.

``acc4`` - ``xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4`` (M == 1 on
Linux/Android; src/f32-qc8w-gemm/gen/f32-qc8w-gemm-1x8-minmax-asm-aarch64-neonfma-ld128-acc4.S,
template src/f32-gemm/1x8-aarch64-neonfma-ld128-acc4.S.in), four partial sums::

    A = bias[n]; B = C = D = +0;  G = K // 4
    for i < G:  A,B,C,D = fma32(a[4i+0..3], w, A,B,C,D)
    if G > 0:   A = A + C; B = B + D                    (FADD)
    if K % 4 >= 2: A = fma32(a[4G], w, A); B = fma32(a[4G+1], w, B)
    if K % 2 == 1: A = fma32(a[K-1], w, A)
    y = RN32((A + B) * scale[n])                        (FADD always, then FMUL)
    y = FMIN(FMAX(y, min), max)

``f32_qc4w_gemm`` - ``xnn_f32_qc4w_gemm_minmax_ukernel_{1x8,6x8}__aarch64_neonfma_lane_ld128``
(M == 1 / M > 1; ``4x8`` is registered too, same code; src/f32-qc4w-gemm/gen/, template
src/f32-gemm/neon-ld128.c.in): the chain above with ``w = nibble - kernel_zero_point`` (zero
point 0 or 8, ``xnn_init_f32_qc4w_minmax_scalar_params``); a byte holds k (low nibble) and k+1
(high nibble); clamp ``vmaxq(vminq(y, max), min)`` (FMIN first).

FPCR.FZ (``fz``) flushes subnormal ``a``, bias and bounds and tiny results (fma32 / FMUL), as
XNNPACK's threadpool sets it. The scale is normal (checked at creation, like XNNPACK).

x86-64 (same configs' x86 branch; kernels ``{1,mr}x{nr}__{isa}_broadcast`` / ``__sse41_dup``, the
same packing, the same bias-then-scale math, exact int conversions, including the qc4w
magic-bias trick of src/f32-qc4w-gemm/avx-broadcast.c.in):

``x86_fma`` - AVX512SKX (1x32/7x32), AVX2 and FMA3 (qc8w 1x16/5x16, qc4w 1x16/3x16): the FMA chain,
MULPS by the scale, then ``MAXPS(min, y)``, ``MINPS(max, y)`` (bound first: a NaN passes through).
``x86_avx`` - AVX without FMA3 (same tiles): ``acc = RN32(acc + RN32(a*w))`` (MULPS, ADDPS), same clamp.
``x86_sse41`` - neither (1x8/4x8 ``sse41_dup``): MULPS + ADDPS, then ``MINPS(y, max)``,
``MAXPS(y, min)`` (accumulator first: a NaN becomes ``max``).

Under MXCSR FTZ|DAZ (``fz``) operands that are subnormal read as zero (DAZ) and a result is
flushed when it is tiny *after* rounding (x86 detects tininess after rounding; Arm before):
a value that rounds up to FLT_MIN is kept here and flushed by the ARM kernels.

# Note: x86 NaN results are modelled as the default NaN 0x7FC00000; the hardware writes the
# negative "indefinite" 0xFFC00000 for an invalid operation and propagates NaN operands.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .._engine import fma32_chain
from ..numerics import FLT_MIN, Clamp, canonical_nan_f32, clamp, fadd32, fma32_x86, fmul32, ftz32
from ._common import as_f32

__all__ = [
    "F32_QC4W_KERNELS",
    "F32_QC8W_KERNELS",
    "X86Isa",
    "f32_qc4w_gemm",
    "f32_qc8w_gemm",
    "f32_qcw_ukernel",
    "qc4w_unpack",
]

F32 = np.float32

#: ``kernel=`` values of :func:`f32_qc8w_gemm` and the XNNPACK ukernels they model.
F32_QC8W_KERNELS: dict[str, str] = {
    "ld128": "xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128 / "
    "1x8__asm_aarch64_neonfma_ld128 (iOS/macOS, M == 1)",
    "acc4": "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4",
    "x86_fma": "xnn_f32_qc8w_gemm_minmax_ukernel_{1x32,7x32}__avx512skx_broadcast / {1x16,5x16}__{avx2,fma3}_broadcast",
    "x86_avx": "xnn_f32_qc8w_gemm_minmax_ukernel_{1x16,5x16}__avx_broadcast",
    "x86_sse41": "xnn_f32_qc8w_gemm_minmax_ukernel_{1x8,4x8}__sse41_dup",
}
#: ``kernel=`` values of :func:`f32_qc4w_gemm` and the XNNPACK ukernels they model.
F32_QC4W_KERNELS: dict[str, str] = {
    "lane_ld128": "xnn_f32_qc4w_gemm_minmax_ukernel_{1x8,4x8,6x8}__aarch64_neonfma_lane_ld128",
    "x86_fma": "xnn_f32_qc4w_gemm_minmax_ukernel_{1x32,7x32}__avx512skx_broadcast / {1x16,3x16}__{avx2,fma3}_broadcast",
    "x86_avx": "xnn_f32_qc4w_gemm_minmax_ukernel_{1x16,3x16}__avx_broadcast",
    "x86_sse41": "xnn_f32_qc4w_gemm_minmax_ukernel_{1x8,4x8}__sse41_dup",
}
X86Isa = Literal["avx512skx", "avx2", "fma3", "avx", "sse41"]
#: x86 ISA -> (kernel=, qc8w mr, qc4w mr, nr); init_f32_qc{8,4}w_gemm_config, first match wins.
_X86_TILES: dict[str, tuple[str, int, int, int]] = {
    "avx512skx": ("x86_fma", 7, 7, 32),
    "avx2": ("x86_fma", 5, 3, 16),
    "fma3": ("x86_fma", 5, 3, 16),
    "avx": ("x86_avx", 5, 3, 16),
    "sse41": ("x86_sse41", 4, 4, 8),
}


def f32_qcw_ukernel(
    config: str, m: int, *, apple: bool = False, x86: X86Isa | None = None
) -> tuple[str, str, int, int]:
    """``(kernel=, exact XNNPACK ukernel, mr, nr)`` a ``f32_qc8w_gemm`` / ``f32_qc4w_gemm`` FC runs.

    ``m`` is the number of rows (batch). ARM64 by default (``apple``: an iOS/macOS build, no
    acc4 kernel); ``x86``: the best x86 ISA the CPU has (XNNPACK's first match).
    """
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if config not in ("f32_qc8w_gemm", "f32_qc4w_gemm"):
        raise ValueError(f"config must be 'f32_qc8w_gemm' or 'f32_qc4w_gemm', got {config!r}")
    stem = config.removesuffix("_gemm")
    if x86 is not None:
        if x86 not in _X86_TILES:
            raise ValueError(f"x86 must be one of {sorted(_X86_TILES)}, got {x86!r}")
        key, mr8, mr4, nr = _X86_TILES[x86]
        rows = 1 if m == 1 else (mr8 if stem == "f32_qc8w" else mr4)
        tail = "sse41_dup" if x86 == "sse41" else f"{x86}_broadcast"
        return key, f"xnn_{stem}_gemm_minmax_ukernel_{rows}x{nr}__{tail}", rows, nr
    if stem == "f32_qc8w":
        if m == 1:
            if apple:
                return "ld128", "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128", 1, 8
            return "acc4", "xnn_f32_qc8w_gemm_minmax_ukernel_1x8__asm_aarch64_neonfma_ld128_acc4", 1, 8
        return "ld128", "xnn_f32_qc8w_gemm_minmax_ukernel_6x8__asm_aarch64_neonfma_ld128", 6, 8
    mr = 1 if m == 1 else 6
    return "lane_ld128", f"xnn_f32_qc4w_gemm_minmax_ukernel_{mr}x8__aarch64_neonfma_lane_ld128", mr, 8


def qc4w_unpack(packed: NDArray[np.uint8], k: int) -> NDArray[np.uint8]:
    """Nibble codes ``[N, K]`` (0..15) of XNNPACK's qcint4 filter bytes ``[N, ceil(K/2)]``.

    Byte ``j`` of row n holds k = 2j in its low nibble and k = 2j+1 in its high nibble.
    """
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 2:
        raise TypeError("packed must be a 2-D uint8 array [N, ceil(K/2)] of nibble pairs")
    if k < 1 or packed.shape[1] != (k + 1) // 2:
        raise ValueError(f"K = {k} needs {(k + 1) // 2} bytes per row, got shape {packed.shape}")
    if k % 2 and packed.size and int((packed[:, -1] >> 4).max()) != 0:
        # The NEON kernels' K % 2 tail converts the whole last byte (no mask): XNNPACK needs 0 there.
        raise ValueError("odd K: the high nibble of each row's last byte must be 0 (XNNPACK's padding)")
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.uint8)
    out[:, 0::2] = packed & 0xF
    out[:, 1::2] = packed >> 4
    return out[:, :k]


def _check_common(
    a: object, scale: object, bias: object, n: int, k_w: int, clamp_min: float, clamp_max: float
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    a = as_f32("a", a, ndim=2)
    k = a.shape[1]
    if k_w != k:
        raise ValueError(f"K mismatch: a is {a.shape}, w has K = {k_w} ([N, K])")
    if k < 1 or n < 1:
        raise ValueError("K and N must be >= 1")
    s = as_f32("scale", scale, shape=(n,))
    # XNNPACK check_kernel_scale_f32 (fully-connected-nc.c): finite, normal and > 0.
    if not np.all(np.isfinite(s) & (s >= F32(FLT_MIN))):
        raise ValueError("every per-channel scale must be finite, normal and > 0 (XNNPACK rejects it)")
    b = np.zeros(n, F32) if bias is None else as_f32("bias", bias, shape=(n,))
    # XNNPACK check_output_bounds_f32: no NaN, min < max.
    if not (float(clamp_min) < float(clamp_max)):
        raise ValueError(f"clamp_min must be < clamp_max (and not NaN), got {clamp_min}, {clamp_max}")
    return a, s, b


def _epilogue(
    acc: NDArray[np.float32], s: NDArray[np.float32], lo: float, hi: float, fz: bool, min_first: bool
) -> NDArray[np.float32]:
    y = fmul32(acc, s[None, :], fz=fz)
    out: NDArray[np.float32] = clamp(y, F32(lo), F32(hi), Clamp.FMIN_FMAX if min_first else Clamp.FMAX_FMIN, fz=fz)
    return out


def _tiny_possible(a: NDArray[np.float32], acc: NDArray[np.float32]) -> bool:
    """Whether some partial sum of ``acc + sum a*w`` (integer ``w``) could be tiny and nonzero.

    Every exact partial value (and every rounding of one) is a multiple of the smallest ulp of
    the nonzero ``a`` and ``acc`` values; when that quantum is >= FLT_MIN, none is tiny.
    """
    for x in (a, acc):
        nz = np.abs(x[(x != 0) & np.isfinite(x)])
        if nz.size and np.spacing(nz.min()) < F32(FLT_MIN):
            return True
    return False


def _x86_chain(
    acc0: NDArray[np.float32], a: NDArray[np.float32], wt: NDArray[np.float32], fz: bool, fused: bool
) -> NDArray[np.float32]:
    """``acc = fma(a, w, acc)`` (fused) or ``acc + RN32(a*w)`` over k, x86 semantics (``wt`` integers)."""
    acc = np.array(acc0, dtype=F32)
    if fz:
        a, acc = ftz32(a), ftz32(acc)
    if not fz or not _tiny_possible(a, acc):  # then FTZ never acts: plain IEEE binary32 steps
        if fused:
            return fma32_chain(acc, a, wt, fz=False)
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(a.shape[1]):
                acc = acc + a[:, k : k + 1] * wt[k : k + 1, :]  # float32 MULPS, then ADDPS
        return canonical_nan_f32(acc)
    for k in range(a.shape[1]):
        ak, wk = a[:, k : k + 1], wt[k : k + 1, :]
        if fused:
            acc = fma32_x86(ak, wk, acc, ftz_daz=fz)
        else:  # MULPS, then ADDPS
            acc = fma32_x86(F32(1), acc, fma32_x86(ak, wk, F32(-0.0), ftz_daz=fz), ftz_daz=fz)
    return acc


def _x86_epilogue(
    acc: NDArray[np.float32], s: NDArray[np.float32], lo: float, hi: float, fz: bool, kernel: str
) -> NDArray[np.float32]:
    y = fma32_x86(acc, s[None, :], F32(-0.0), ftz_daz=fz)  # MULPS by the scale
    kind = Clamp.X86_MIN_MAX if kernel == "x86_sse41" else Clamp.X86_BOUND_MAX_MIN
    out: NDArray[np.float32] = clamp(y, F32(lo), F32(hi), kind, fz=fz)  # DAZ reads the bounds flushed
    return out


def _run(
    a: NDArray[np.float32],
    wt: NDArray[np.float32],
    s: NDArray[np.float32],
    b: NDArray[np.float32],
    lo: float,
    hi: float,
    fz: bool,
    kernel: str,
) -> NDArray[np.float32] | None:
    """The x86 kernels and the ARM single chains; None for ``acc4`` (handled by the caller)."""
    acc0 = np.broadcast_to(b, (a.shape[0], wt.shape[1]))
    if kernel.startswith("x86_"):
        acc = _x86_chain(acc0, a, wt, fz, fused=kernel == "x86_fma")
        return _x86_epilogue(acc, s, lo, hi, fz, kernel)
    if kernel in ("ld128", "lane_ld128"):
        return _epilogue(fma32_chain(acc0, a, wt, fz=fz), s, lo, hi, fz, min_first=kernel == "lane_ld128")
    return None


def f32_qc8w_gemm(
    a: NDArray[np.float32],
    w: NDArray[np.int8],
    scale: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: Literal["ld128", "acc4", "x86_fma", "x86_avx", "x86_sse41"] = "ld128",
) -> NDArray[np.float32]:
    """``[M, N]`` f32: ``clamp((bias + a @ w.T) * scale)`` with ``kernel``'s order and roundings.

    ``a`` [M, K] float32, ``w`` [N, K] int8, ``scale`` [N] float32 (normal, > 0), ``bias`` [N]
    float32 as XNNPACK receives it (None: zeros). ``acc4`` is a 1-row kernel (M must be 1).
    """
    if not isinstance(w, np.ndarray) or w.dtype != np.int8 or w.ndim != 2:
        raise TypeError("w must be a 2-D int8 array [N, K] (qcint8 weights)")
    if kernel not in F32_QC8W_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(F32_QC8W_KERNELS)}, got {kernel!r}")
    n, k = w.shape
    a, s, b = _check_common(a, scale, bias, n, k, clamp_min, clamp_max)
    m = a.shape[0]
    wt = np.ascontiguousarray(w.T.astype(F32))  # SCVTF / CVTDQ2PS: exact
    out = _run(a, wt, s, b, clamp_min, clamp_max, fz, kernel)
    if out is not None:
        return out
    acc0 = np.broadcast_to(b, (m, n))
    if m != 1:
        raise ValueError(f"the 1x8 acc4 kernel computes one row; M = {m}")
    g = k // 4
    zero = np.zeros((m, n), F32)
    big_a, big_b, c, d = (
        fma32_chain(acc0 if j == 0 else zero, a[:, j : 4 * g : 4], wt[j : 4 * g : 4], fz=fz) for j in range(4)
    )
    if g > 0:
        big_a, big_b = fadd32(big_a, c, fz=fz), fadd32(big_b, d, fz=fz)
    if k - 4 * g >= 2:
        big_a = fma32_chain(big_a, a[:, 4 * g : 4 * g + 1], wt[4 * g : 4 * g + 1], fz=fz)
        big_b = fma32_chain(big_b, a[:, 4 * g + 1 : 4 * g + 2], wt[4 * g + 1 : 4 * g + 2], fz=fz)
    if k % 2:
        big_a = fma32_chain(big_a, a[:, k - 1 : k], wt[k - 1 : k], fz=fz)
    # The final FADD runs for every K (so a -0 sum becomes +0 even when K < 4).
    return _epilogue(fadd32(big_a, big_b, fz=fz), s, clamp_min, clamp_max, fz, min_first=False)


def _qc4w_values(w: object, kernel_zero_point: int) -> NDArray[np.float32]:
    if kernel_zero_point not in (0, 8):
        raise ValueError(f"kernel_zero_point must be 0 or 8 (xnn_define_fully_connected), got {kernel_zero_point}")
    if not isinstance(w, np.ndarray) or w.ndim != 2 or w.dtype not in (np.uint8, np.int8):
        raise TypeError("w must be a 2-D uint8 array of nibble codes [N, K] (or int8 codes - 8)")
    wi = w.astype(np.int32)
    if w.dtype == np.int8:
        if kernel_zero_point != 8:
            raise ValueError("int8 qc4w weights are signed codes (nibble - 8): kernel_zero_point must be 8")
        lo, hi = -8, 7
    else:
        lo, hi = 0, 15
        wi = wi - kernel_zero_point
    if w.size and (int(w.min()) < lo or int(w.max()) > hi):
        raise ValueError(f"4-bit weight codes of dtype {w.dtype} must lie in [{lo}, {hi}]")
    return wi.astype(F32)


def f32_qc4w_gemm(
    a: NDArray[np.float32],
    w: NDArray[Any],
    scale: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    kernel_zero_point: int = 8,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: Literal["lane_ld128", "x86_fma", "x86_avx", "x86_sse41"] = "lane_ld128",
) -> NDArray[np.float32]:
    """``[M, N]`` f32: ``clamp((bias + a @ (w - zp).T) * scale)``, sequential FMA from the bias.

    ``w`` [N, K]: uint8 nibble codes in [0, 15] (weight = code - ``kernel_zero_point``, 0 or 8;
    :func:`qc4w_unpack` turns XNNPACK's packed bytes into codes), or int8 codes already minus 8
    (in [-8, 7], zero point 8). ``a``, ``scale``, ``bias`` as :func:`f32_qc8w_gemm`.
    """
    if kernel not in F32_QC4W_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(F32_QC4W_KERNELS)}, got {kernel!r}")
    wv = _qc4w_values(w, kernel_zero_point)
    n, k = wv.shape
    a, s, b = _check_common(a, scale, bias, n, k, clamp_min, clamp_max)
    out = _run(a, np.ascontiguousarray(wv.T), s, b, clamp_min, clamp_max, fz, kernel)
    assert out is not None
    return out
