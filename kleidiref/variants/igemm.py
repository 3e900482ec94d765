"""IGEMM (Conv2d) through KleidiAI on SME/SME2: ``pf32``, ``pf16`` and ``pqs8_qc8w`` (kernels.md §11).

XNNPACK runs a KleidiAI-eligible 2-D convolution as an *indirect* GEMM:

1. ``xnn_indirection_init_conv2d`` (``src/indirection.c``) builds, per tile of ``mr`` output
   pixels and per kernel tap (ky, kx) in row-major order, ``mr`` pointers to the input pixel each
   output pixel reads, or to a padding buffer (``kc`` elements of ``input_zero_point`` for pqs8,
   +0.0 for the float variants). Layout ``[m_tile][ks][mr]``; rows past M repeat the last pixel.
2. The imatmul LHS packer (``kai_lhs_imatmul_pack_{x32p2vlx1_x32p, x16p2vlx2_x16p,
   x8p2vlx4_x8p}_sme``) copies, per m-block and tap ("k chunk"), the ``kc`` channels each pointer
   addresses, zero-padding each chunk to ``Kc = roundup(kc, kr)`` (**per-chunk K padding**) and
   the rows past M of the last block.
3. The weights ``OHWI = [Cout][ks][kc]`` are transposed to ``[ks*kc][Cout]`` and packed with the
   same per-chunk padding (``kai_rhs_imatmul_pack_kxn_*``; pqs8 folds ``-izp * sum W`` into the
   int32 bias).
4. The **ordinary matmul MOPA kernel** runs with ``k = ks * Kc`` (SME2 kernel -> ``out``, SME1 ->
   ``out_sme1``). KleidiAI's dedicated ``kai_imatmul_clamp_*`` kernels read the same buffers and
   give the same bits; they are exposed here as thin classes over the matmul kernels.

Numerics per output element (k' = c*Kc + i runs tap-major, channel-minor; padded channels
``kc <= i < Kc`` are zero on both sides, padding taps read the padding buffer)::

    pf32: acc = fma32(1.0, bias[n], +0); acc = fma32(a[m][k'], w[k'][n], acc) for k' in order;
          out = clamp(acc)               (SME2 FCLAMP: NaN -> min; SME1 FMIN/FMAX: NaN kept)
    pf16: acc = f32(bias[n]); per tap c, pair p < Kc/2:
          acc = RN32(acc + RN32(a[c][2p]*w[c][2p][n] + a[c][2p+1]*w[c][2p+1][n]))
          out = clamp_f16(RN16(acc), RN16(min), RN16(max))
    pqs8: acc = bias[n] + sum_{taps, i<kc} (x - izp) * W   int32, wraps (padding taps read izp -> 0)
          out = clamp(RNE_int(RN32(RN32(acc) * scale[n])) + zp_out, min, max)

Because a pixel's padding-tap products are exact zeros (floats) or cancelled exactly (pqs8), an
output pixel whose taps are all padding gives ``clamp(bias)`` (a -0 bias gives +0 in the MOPA
kernels) or the requantized bias.

**IGEMM vs im2col GEMM.** The IGEMM result equals a plain GEMM through the same MOPA kernel on
the im2col matrix ``A[m][c*kc + i]`` (padding taps = the padding value) *when that matrix is
padded per tap the same way*: for pf32 (kr = 1) and for even ``kc`` in pf16 no padding exists and
the two are bit-identical; for pqs8 they are always identical (exact integers). For pf16 with odd
``kc`` the unpadded im2col GEMM pairs the last channel of one tap with the first channel of the
next, which rounds differently (``tests/test_igemm.py`` has a counterexample).

**conv2d's fast path.** :func:`conv2d` computes exactly that: the kernel's arithmetic on an
im2col gather of the input (per-tap padded for pf16, padding taps = the padding value), skipping
the indirection buffer and the packed buffers, which only move elements. The float chains run on
the transposed problem when M > N (each output element is an independent chain of products
``a*w``, and fma32 and the f16 pair dot are symmetric in a and w); pqs8 runs one float32 GEMM
with exact integer partial sums and a float32 epilogue that provably rounds as the kernel's, or
else the kernel's own integer route. ``conv2d(..., fast=False)`` runs the packers and kernel
objects; ``tests/test_igemm_fast.py`` checks the two paths bit for bit.

**Prepared operators.** :func:`prepare_conv2d` splits :func:`conv2d` as XNNPACK splits create
from run: the checks and the weight preparation once, then :class:`PreparedConv2d` calls that do
only the input-dependent work; ``conv2d(input, ...)`` is ``prepare_conv2d(...)(input)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, cast

import numpy as np
from numpy.typing import NDArray

from .._buffers import (
    Buffer,
    as_packed_rhs,
    as_u8,
    check_count,
    check_dtype,
    check_float,
    read_matrix,
    require_bytes,
    roundup,
    writable_u8,
)
from .._engine import f16_pair_chain, fma32_chain
from ..conv import (
    NO_PADDING,
    ConvGeometry,
    Padding,
    PaddingLike,
    as_padding,
    as_pair,
    conv_channels,
    conv_geometry,
    im2col,
    indirection_conv2d,
)
from ..kernel import PackedLhsKernel, TileParams, Ukernel
from ..numerics import FLT_MIN, fma32, ftz16, ftz32, rn16
from ..targets import Target, get_target
from . import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm
from ._int8_common import (
    check_i32,
    int8_matmul,
    kai_matmul_requantize32_params,
    kai_rhs_pack_qsi8cx_params,
    wrap_i32,
)
from ._sme_packers import SmeRhsBiasPacker
from .pqs8_qc8w_gemm import requantize

__all__ = [
    "GOLDEN",
    "ConvGeometry",
    "Padding",
    "PreparedConv2d",
    "Variant",
    "conv2d",
    "conv_geometry",
    "golden_padding",
    "im2col",
    "indirection_conv2d",
    "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa",
    "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa",
    "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa",
    "kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme",
    "kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme",
    "kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme",
    "kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme",
    "kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme",
    "prepare_conv2d",
    "reproduce_golden",
    "xnnpack_conv_weights_mislaid",
]

Variant = Literal["pf32", "pf16", "pqs8"]

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)
I8 = np.dtype(np.int8)
I32 = np.dtype(np.int32)
_PACK = "kai/ukernels/matmul/pack/"


# --------------------------------------------------------------------------------------------
# LHS: kai_lhs_imatmul_pack_*
# --------------------------------------------------------------------------------------------


class _ImatmulLhsPacker(Ukernel):
    """``kai_lhs_imatmul_pack_x<bits>p2vlx<kr>_x<bits>p_sme``: gather rows through pointers.

    Pointers are modelled as byte offsets into one ``memory`` buffer (the address space): what
    XNNPACK passes is the indirection buffer of pointers into the input and the zero buffer, so
    place both in ``memory`` and pass their offsets. For m-block ``i_m`` (a multiple of mr) and
    chunk ``c``, row ``y < min(m - i_m, mr)`` reads ``k_chunk_length`` elements at::

        p = lhs_ptrs[i_m * k_chunk_count + c * mr + y]
        p if p == pad_ptr else p + lhs_ptr_offset          (the pad pointer is never offset)

    and is stored at element ``c*mr*Kc + (i // kr)*mr*kr + y*kr + i % kr`` of the block
    (``Kc = roundup(k_chunk_length, kr)``, blocks ``mr*k_chunk_count*Kc`` elements apart).
    Channels ``i >= k_chunk_length`` and rows past ``m`` are written as zeros.
    """

    elem: ClassVar[np.dtype[Any]]
    kr: ClassVar[int]

    def get_m_step(self) -> int:
        """``kai_get_m_step_<packer>`` = mr = 2 * (VL bytes / element size) / kr."""
        return 2 * (self.vlb // self.elem.itemsize) // self.kr

    def _kc(self, k_chunk_length: int) -> int:
        return roundup(k_chunk_length, self.kr)

    def get_lhs_packed_offset(self, m_idx: int, k_chunk_count: int, k_chunk_length: int) -> int:
        """Byte offset of row ``m_idx`` (a multiple of m_step): ``m_idx * kcc * Kc * elem``."""
        m_idx = check_count("m_idx", m_idx)
        kcc, kcl = check_count("k_chunk_count", k_chunk_count), check_count("k_chunk_length", k_chunk_length)
        self._assume(m_idx % self.get_m_step() == 0, "m_idx % m_step == 0", "get_lhs_packed_offset")
        return m_idx * kcc * self._kc(kcl) * self.elem.itemsize

    def get_lhs_packed_size(self, m: int, k_chunk_count: int, k_chunk_length: int) -> int:
        """Bytes written: ``roundup(m, mr) * kcc * Kc * elem``."""
        m = check_count("m", m)
        return self.get_lhs_packed_offset(roundup(m, self.get_m_step()), k_chunk_count, k_chunk_length)

    def required_ptrs(self, m: int, k_chunk_count: int) -> int:
        """How many ``lhs_ptrs`` entries the packer reads (the last block is still mr-strided)."""
        mr = self.get_m_step()
        if m == 0 or k_chunk_count == 0:
            return 0
        i_m = (m - 1) // mr * mr
        return i_m * k_chunk_count + (k_chunk_count - 1) * mr + (m - i_m)

    def run_lhs_imatmul_pack(
        self,
        m: int,
        k_chunk_count: int,
        k_chunk_length: int,
        lhs_ptrs: Sequence[int] | NDArray[np.integer[Any]],
        lhs_ptr_offset: int,
        pad_ptr: int,
        lhs_packed: Buffer,
        *,
        memory: Buffer,
    ) -> None:
        """``kai_run_<packer>(m, k_chunk_count, k_chunk_length, lhs_ptrs, lhs_ptr_offset, pad_ptr,
        lhs_packed)``; ``lhs_ptrs``/``pad_ptr`` are byte offsets into ``memory``."""
        fn = "run_lhs_imatmul_pack"
        m = check_count("m", m)
        kcc, kcl = check_count("k_chunk_count", k_chunk_count), check_count("k_chunk_length", k_chunk_length)
        offset, pad = check_count("lhs_ptr_offset", lhs_ptr_offset), check_count("pad_ptr", pad_ptr)
        self._assume(lhs_ptrs is not None, "lhs_ptrs != NULL", fn)
        self._assume(lhs_packed is not None, "lhs_packed != NULL", fn)
        ptrs = np.asarray(lhs_ptrs)
        if ptrs.ndim != 1 or (ptrs.size and ptrs.dtype.kind not in "iu"):
            raise TypeError("lhs_ptrs must be a 1-D sequence of integer byte offsets into memory")
        need = self.required_ptrs(m, kcc)
        if ptrs.size < need:
            raise ValueError(
                f"lhs_ptrs holds {ptrs.size} pointers but kai_run_{self.name}(m={m}, "
                f"k_chunk_count={kcc}) reads {need} (per m-block k_chunk_count groups of "
                f"mr = {self.get_m_step()}, as XNNPACK's indirection buffer is padded to whole tiles)"
            )
        mem = as_u8(memory, "memory")
        out = writable_u8(lhs_packed, "lhs_packed")
        size = self.get_lhs_packed_size(m, kcc, kcl)
        require_bytes(out, size, "lhs_packed", f"kai_get_lhs_packed_size_{self.name[4:]}")
        if size == 0:
            return
        mr, kc, e = self.get_m_step(), self._kc(kcl), self.elem.itemsize
        nb = roundup(m, mr) // mr
        b, c, y = np.ogrid[:nb, :kcc, :mr]
        valid = np.broadcast_to(b * mr + y < m, (nb, kcc, mr))
        # Rows past m are never read (their positions are clipped, then their bytes zeroed).
        pos = np.minimum(b * (mr * kcc) + c * mr + y, max(ptrs.size - 1, 0))
        eff = ptrs.astype(np.int64)[pos] if ptrs.size else np.zeros(pos.shape, dtype=np.int64)
        if offset:
            # The pad pointer is used as is; every other pointer gets lhs_ptr_offset (uintptr_t add).
            eff += (eff != pad) * np.int64(offset)
        eff[~valid] = 0
        nbytes = kcl * e
        if nbytes and m:
            lo, hi = int(eff.min()), int(eff.max())  # invalid rows read 0: in range
            if lo < 0 or hi + nbytes > mem.size:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"a row pointer (byte {bad}, offset included) reads {nbytes} bytes outside the "
                    f"{mem.size}-byte memory in kai_run_{self.name}"
                )
        vals = np.zeros((nb, kcc, mr, kc * e), dtype=np.uint8) if kc != kcl or not nbytes else None
        if nbytes:
            # Every row is nbytes contiguous bytes at its pointer: one row gather.
            if not (eff % nbytes).any():  # all rows aligned: gather nbytes-wide void elements
                usable = mem.size // nbytes * nbytes
                rows = mem[:usable].view(f"V{nbytes}")[eff // nbytes].view(np.uint8)
                rows = rows.reshape((*eff.shape, nbytes))
            else:  # a zero-copy sliding window over the memory
                rows = np.lib.stride_tricks.sliding_window_view(mem, nbytes)[eff]
            rows[~valid] = 0  # rows past m: zeroing predicated loads, whole vectors stored
            if vals is None:
                vals = rows
            else:
                vals[..., :nbytes] = rows
        assert vals is not None
        # [nb][kcc][mr][Kc/kr][kr*e] -> [nb][kcc][Kc/kr][mr][kr*e]
        blocked = vals.reshape(nb, kcc, mr, kc // self.kr, self.kr * e).transpose(0, 1, 3, 2, 4)
        out[:size].reshape(blocked.shape)[...] = blocked


class kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme(_ImatmulLhsPacker):
    """imatmul LHS packer, 32-bit elements: mr = 2 * VLs, kr = 1 (pf32)."""

    name = "kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme"
    variant = "pf32_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F32
    kr = 1


class kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme(_ImatmulLhsPacker):
    """imatmul LHS packer, 16-bit elements: mr = VLh, kr = 2 (pf16; odd chunks padded with 0)."""

    name = "kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme"
    variant = "pf16_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F16
    kr = 2


class kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme(_ImatmulLhsPacker):
    """imatmul LHS packer, 8-bit elements: mr = 2 * VLs (= VLb / 2), kr = 4 (pqs8)."""

    name = "kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme"
    variant = "pqs8_qc8w_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = I8
    kr = 4


# --------------------------------------------------------------------------------------------
# RHS: kai_rhs_imatmul_pack_kxn_*
# --------------------------------------------------------------------------------------------


def _chunk_pad(w_kn: NDArray[Any], kcc: int, kcl: int, kr: int) -> NDArray[Any]:
    """[kcc*kcl, n] -> [kcc*Kc, n]: each chunk's rows zero-padded to Kc (the static pad_row)."""
    n = w_kn.shape[1]
    kc = roundup(kcl, kr)
    out = np.zeros((kcc, kc, n), dtype=w_kn.dtype)
    out[:, :kcl] = w_kn.reshape(kcc, kcl, n)
    return out.reshape(kcc * kc, n)


class _ImatmulRhsPacker(Ukernel):
    """What the three ``kai_rhs_imatmul_pack_kxn_*_sme`` packers share (n_step, strides)."""

    elem: ClassVar[np.dtype[Any]]
    kr: ClassVar[int]
    #: Bytes per column besides the weights (bias; pqs8 also its scale).
    extra_per_col: ClassVar[int]

    def get_n_step(self) -> int:
        """nr = n_step = 2 * (VL bytes / element size) / kr."""
        return 2 * (self.vlb // self.elem.itemsize) // self.kr

    def get_rhs_offset(self, n_idx: int) -> int:
        """Byte offset of column ``n_idx`` (a multiple of n_step) in the K x N RHS."""
        n_idx = check_count("n_idx", n_idx)
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", "get_rhs_offset")
        return n_idx * self.elem.itemsize

    def get_rhs_packed_stride(self, k_chunk_count: int, k_chunk_length: int) -> int:
        """Bytes of one nr-column block: ``nr * (extras + kcc * roundup(kcl, kr) * elem)``."""
        kcc, kcl = check_count("k_chunk_count", k_chunk_count), check_count("k_chunk_length", k_chunk_length)
        return self.get_n_step() * (self.extra_per_col + kcc * roundup(kcl, self.kr) * self.elem.itemsize)

    def get_rhs_packed_offset(self, n_idx: int, k_chunk_count: int, k_chunk_length: int) -> int:
        n_idx = check_count("n_idx", n_idx)
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", "get_rhs_packed_offset")
        return n_idx // self.get_n_step() * self.get_rhs_packed_stride(k_chunk_count, k_chunk_length)

    def get_rhs_packed_size(self, n: int, k_chunk_count: int, k_chunk_length: int) -> int:
        return self.get_rhs_packed_offset(
            roundup(check_count("n", n), self.get_n_step()), k_chunk_count, k_chunk_length
        )

    def _read_kxn(self, n: int, kcc: int, kcl: int, rhs_stride_row: int, rhs: Buffer) -> NDArray[Any]:
        if isinstance(rhs, np.ndarray) and rhs.dtype != self.elem:
            raise TypeError(f"rhs must be {self.elem} for {self.name}, got {rhs.dtype}")
        stride = check_count("rhs_stride_row", rhs_stride_row)
        return read_matrix(as_u8(rhs, "rhs"), kcc * kcl, n, stride, self.elem, "rhs", f"kai_run_{self.name}")


class _ImatmulRhsBiasPacker(_ImatmulRhsPacker):
    """``kai_rhs_imatmul_pack_kxn_x{32,16}p2vlx{1,2}b_x.._x.._sme``: bias row + chunk-padded weights.

    Block g (columns ``g*nr .. g*nr+nr-1``, ``j = n - g*nr``, ``Kc = roundup(kcl, kr)``)::

        bias[j]                                             at element j   (bias element type)
        W[c*kcl + i][n] (0 if i >= kcl) for k' = c*Kc + i   at nr + (k' // kr)*nr*kr + j*kr + k' % kr

    which is the plain ``kai_rhs_pack_kxn_*`` layout of the chunk-padded [kcc*Kc, n] matrix.
    Columns past n are zero.
    """

    #: The plain kxn packer whose layout this is (applied to the chunk-padded matrix).
    plain: ClassVar[type[SmeRhsBiasPacker]]

    def get_bias_offset(self, n_idx: int) -> int:
        return check_count("n_idx", n_idx) * self.elem.itemsize

    def run_rhs_imatmul_pack(
        self,
        n: int,
        k_chunk_count: int,
        k_chunk_length: int,
        rhs_stride_row: int,
        rhs: Buffer,
        bias: Buffer | None,
        rhs_packed: Buffer,
    ) -> None:
        """``kai_run_<packer>(n, k_chunk_count, k_chunk_length, rhs_stride_row, rhs, bias,
        rhs_packed)``: ``rhs`` is ``k_chunk_count * k_chunk_length`` rows of n elements."""
        fn = "run_rhs_imatmul_pack"
        n = check_count("n", n)
        kcc, kcl = check_count("k_chunk_count", k_chunk_count), check_count("k_chunk_length", k_chunk_length)
        self._assume(rhs is not None, "rhs != NULL", fn)
        self._assume(bias is not None, "bias != NULL", fn)
        self._assume(rhs_packed is not None, "rhs_packed != NULL", fn)
        out = writable_u8(rhs_packed, "rhs_packed")
        size = self.get_rhs_packed_size(n, kcc, kcl)
        require_bytes(out, size, "rhs_packed", f"kai_get_rhs_packed_size_{self.name[4:]}")
        if n == 0:
            # Note: the assembly's bias loop is a do-while that stores one full block even for
            # n == 0 (past a 0-byte buffer); the emulation writes nothing.
            return
        if isinstance(bias, np.ndarray) and bias.dtype != self.elem:
            raise TypeError(f"bias must be {self.elem} for {self.name}, got {bias.dtype}")
        w = _chunk_pad(self._read_kxn(n, kcc, kcl, rhs_stride_row, rhs), kcc, kcl, self.kr)
        b = read_matrix(as_u8(bias, "bias"), 1, n, n * self.elem.itemsize, self.elem, "bias", f"kai_run_{self.name}")
        plain = self.plain(self.svl)
        k = w.shape[0]
        tmp = np.zeros(plain.get_rhs_packed_size(n, k), dtype=np.uint8)
        plain.run_rhs_pack(
            1,
            n,
            k,
            self.get_n_step(),
            self.kr,
            1,
            n * self.elem.itemsize,
            np.ascontiguousarray(w),
            b[0],
            None,
            tmp,
            0,
            None,
        )
        out[:size] = tmp


class kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme(_ImatmulRhsBiasPacker):
    """imatmul RHS packer for pf32: nr = 2 * VLs, kr = 1, f32 bias row (no chunk padding)."""

    name = "kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme"
    variant = "pf32_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F32
    kr = 1
    extra_per_col = 4
    plain = pf32_gemm.kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme


class kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme(_ImatmulRhsBiasPacker):
    """imatmul RHS packer for pf16: nr = VLh, kr = 2, f16 bias row; odd chunks padded with 0."""

    name = "kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme"
    variant = "pf16_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F16
    kr = 2
    extra_per_col = 2
    plain = pf16_gemm.kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme


class kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(_ImatmulRhsPacker):
    """imatmul RHS packer for pqs8: nr = 2 * VLs, kr = 4; bias folded with the input zero point.

    Block g (``j = n - g*nr``, ``Kc4 = roundup(kcl, 4)``, stride ``nr * (4 + kcc*Kc4 + 4)``)::

        int32 bias'[j] = bias[n] - izp * sum_{c, i<kcl} W[c*kcl+i][n]   (int32 wrap)   at 4j
        int8  W for k' = c*Kc4 + i (0 if i >= kcl)   at 4nr + (k'//4)*nr*4 + j*4 + k'%4
        f32   scale'[j] = RN32(scale[n] * scale_multiplier)             at 4nr + nr*kcc*Kc4 + 4j

    ``izp = params.lhs_zero_point``. The assembly computes ``bias'`` after packing (SDOT of the
    packed bytes with all-ones, times ``-izp``, MLA onto the loaded bias), so the pad rows add 0.
    Columns past n are zero; with ``kcl == 0`` (or ``kcc == 0``) the bias slots are not written.
    """

    name = "kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme"
    variant = "pqs8_qc8w_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = I8
    kr = 4
    extra_per_col = 8

    def get_bias_offset(self, n_idx: int) -> int:
        return check_count("n_idx", n_idx) * 4

    def get_scale_offset(self, n_idx: int) -> int:
        return check_count("n_idx", n_idx) * 4

    def run_rhs_imatmul_pack(
        self,
        n: int,
        k_chunk_count: int,
        k_chunk_length: int,
        rhs_stride_row: int,
        rhs: Buffer,
        bias: Buffer | None,
        scale: Buffer | None,
        rhs_packed: Buffer,
        params: kai_rhs_pack_qsi8cx_params | None,
    ) -> None:
        """``kai_run_<packer>(n, k_chunk_count, k_chunk_length, rhs_stride_row, rhs, bias, scale,
        rhs_packed, params)``."""
        fn = "run_rhs_imatmul_pack"
        n = check_count("n", n)
        kcc, kcl = check_count("k_chunk_count", k_chunk_count), check_count("k_chunk_length", k_chunk_length)
        for label, val in (
            ("rhs", rhs),
            ("bias", bias),
            ("scale", scale),
            ("rhs_packed", rhs_packed),
            ("params", params),
        ):
            self._assume(val is not None, f"{label} != NULL", fn)
        if not isinstance(params, kai_rhs_pack_qsi8cx_params):
            raise TypeError("params must be a kai_rhs_pack_qsi8cx_params")
        out = writable_u8(rhs_packed, "rhs_packed")
        size = self.get_rhs_packed_size(n, kcc, kcl)
        require_bytes(out, size, "rhs_packed", f"kai_get_rhs_packed_size_{self.name[4:]}")
        if n == 0:
            return
        w = _chunk_pad(self._read_kxn(n, kcc, kcl, rhs_stride_row, rhs), kcc, kcl, self.kr)
        plain = pqs8_qc8w_gemm.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(self.svl)
        k = w.shape[0]
        tmp = np.array(out[:size])  # bytes the packer does not write (bias' when K == 0) stay as they were
        plain.run_rhs_pack(
            1, n, k, self.get_n_step(), self.kr, 1, n, np.ascontiguousarray(w), bias, scale, tmp, 0, params
        )
        out[:size] = tmp


# --------------------------------------------------------------------------------------------
# The dedicated kai_imatmul_clamp_* kernels: the matmul kernels with k = kcc * roundup(kcl, kr)
# --------------------------------------------------------------------------------------------


class _ImatmulKernel(Ukernel):
    """``kai_imatmul_clamp_*``: the imatmul interface over the matmul kernel with the same bits.

    ``kai_run_imatmul_clamp_<...>`` sets ``K = k_chunk_count * roundup(k_chunk_length, kr)`` and
    runs the same MOPA loop as ``matmul``; every golden file confirms identical bytes
    (``imatmul_output_equal``, ``imatmul_sme1_output_equal``). There is no ``dst_stride_col``.
    """

    #: The ``kai_matmul_clamp_*`` kernel computing the same bits.
    matmul: ClassVar[type[PackedLhsKernel]]
    kr: ClassVar[int]

    def __init__(self, svl: int | None = None, *, fz: bool = False) -> None:
        super().__init__(svl)
        self._mm = self.matmul(self.svl, fz=fz)
        #: FPCR.FZ (and FZ16) while the kernel runs.
        self.fz = fz

    def tile_params(self) -> TileParams:
        return self._mm.tile_params()

    def get_m_step(self) -> int:
        return self._mm.get_m_step()

    def get_n_step(self) -> int:
        return self._mm.get_n_step()

    def _k(self, k_chunk_count: int, k_chunk_length: int) -> int:
        kcc, kcl = check_count("k_chunk_count", k_chunk_count), check_count("k_chunk_length", k_chunk_length)
        return kcc * roundup(kcl, self.kr)

    def get_lhs_packed_offset(self, m_idx: int, k_chunk_count: int, k_chunk_length: int) -> int:
        """``m_idx * kcc * roundup(kcl, kr) * elem`` (``m_idx % m_step == 0``)."""
        m_idx = check_count("m_idx", m_idx)
        self._assume(m_idx % self.get_m_step() == 0, "m_idx % m_step == 0", "get_lhs_packed_offset")
        return self._mm.get_lhs_packed_offset(m_idx, self._k(k_chunk_count, k_chunk_length))

    def get_rhs_packed_offset(self, n_idx: int, k_chunk_count: int, k_chunk_length: int) -> int:
        n_idx = check_count("n_idx", n_idx)
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", "get_rhs_packed_offset")
        return self._mm.get_rhs_packed_offset(n_idx, self._k(k_chunk_count, k_chunk_length))

    def get_dst_offset(self, m_idx: int, n_idx: int, dst_stride_row: int) -> int:
        m_idx, n_idx = check_count("m_idx", m_idx), check_count("n_idx", n_idx)
        self._assume(m_idx % self.get_m_step() == 0, "m_idx % m_step == 0", "get_dst_offset")
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", "get_dst_offset")
        return self._mm.get_dst_offset(m_idx, n_idx, dst_stride_row)

    def get_dst_size(self, m: int, n: int) -> int:
        return self._mm.get_dst_size(m, n)

    def _run_k(self, k_chunk_count: int, k_chunk_length: int) -> int:
        k = self._k(k_chunk_count, k_chunk_length)
        self._assume(k >= 1, "k_chunk_count * k_chunk_length >= 1", "run_imatmul")
        return k


class _FloatImatmul(_ImatmulKernel):
    def run_imatmul(
        self,
        m: int,
        n: int,
        k_chunk_count: int,
        k_chunk_length: int,
        lhs_packed: Buffer,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        clamp_min: float,
        clamp_max: float,
    ) -> None:
        """``kai_run_<name>(m, n, k_chunk_count, k_chunk_length, lhs_packed, rhs_packed, dst,
        dst_stride_row, clamp_min, clamp_max)``."""
        k = self._run_k(k_chunk_count, k_chunk_length)
        self._mm.run_matmul(
            m, n, k, lhs_packed, rhs_packed, dst, dst_stride_row, self._mm.dst_dtype.itemsize, clamp_min, clamp_max
        )


class kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa(_FloatImatmul):
    """pf32 imatmul, SME2 (same bits as ``kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa``)."""

    name = "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa"
    variant = "pf32_igemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/imatmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    matmul = pf32_gemm.SME2_MOPA
    kr = 1


class kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa(_FloatImatmul):
    """pf32 imatmul, SME1 (same bits as ``kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa``)."""

    name = "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa"
    variant = "pf32_igemm"
    isa = "sme"
    source = "kai/ukernels/matmul/imatmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    matmul = pf32_gemm.SME1_MOPA
    kr = 1


class kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa(_FloatImatmul):
    """pf16 imatmul, SME2 (same bits as ``kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa``)."""

    name = "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa"
    variant = "pf16_igemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/imatmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    matmul = pf16_gemm.SME2_MOPA
    kr = 2


class kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa(_FloatImatmul):
    """pf16 imatmul, SME1 (same bits as ``kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa``)."""

    name = "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa"
    variant = "pf16_igemm"
    isa = "sme"
    source = "kai/ukernels/matmul/imatmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    matmul = pf16_gemm.SME1_MOPA
    kr = 2


class _Pqs8Imatmul(_ImatmulKernel):
    def run_imatmul(
        self,
        m: int,
        n: int,
        k_chunk_count: int,
        k_chunk_length: int,
        lhs_packed: Buffer,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        params: kai_matmul_requantize32_params,
    ) -> None:
        """``kai_run_<name>(m, n, k_chunk_count, k_chunk_length, lhs_packed, rhs_packed, dst,
        dst_stride_row, params)``."""
        k = self._run_k(k_chunk_count, k_chunk_length)
        run: Any = self._mm.run_matmul  # the pqs8 kernels take requantization params, not clamps
        run(m, n, k, lhs_packed, rhs_packed, dst, dst_stride_row, 1, params)


class kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa(_Pqs8Imatmul):
    """pqs8 imatmul, SME2: same bits as the matmul kernel ``..._qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa``."""

    name = "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa"
    variant = "pqs8_qc8w_igemm"
    isa = "sme2"
    source = "kai/ukernels/matmul/imatmul_clamp_qai8_qai8p_qsi8cxp/" + name + "_asm.S"
    matmul = pqs8_qc8w_gemm.SME2_MOPA
    kr = 4


class kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa(_Pqs8Imatmul):
    """pqs8 imatmul, SME1: same bits as the matmul kernel ``..._qsi8cxp2vlx4sb_2vlx2vl_sme_mopa``."""

    name = "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa"
    variant = "pqs8_qc8w_igemm"
    isa = "sme"
    source = "kai/ukernels/matmul/imatmul_clamp_qai8_qai8p_qsi8cxp/" + name + "_asm.S"
    matmul = pqs8_qc8w_gemm.SME1_MOPA
    kr = 4


# --------------------------------------------------------------------------------------------
# Variant table, conv2d and the golden reproducer
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Cfg:
    elem: np.dtype[Any]
    lhs_packer: type[_ImatmulLhsPacker]
    rhs_packer: type[_ImatmulRhsPacker]
    sme2: type[PackedLhsKernel]
    sme1: type[PackedLhsKernel]
    kr: int

    @property
    def elem_name(self) -> str:
        return {1: "int8", 2: "float16", 4: "float32"}[self.elem.itemsize]


_CFG: dict[str, _Cfg] = {
    "pf32": _Cfg(
        F32,
        kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme,
        kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme,
        pf32_gemm.SME2_MOPA,
        pf32_gemm.SME1_MOPA,
        1,
    ),
    "pf16": _Cfg(
        F16,
        kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme,
        kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme,
        pf16_gemm.SME2_MOPA,
        pf16_gemm.SME1_MOPA,
        2,
    ),
    "pqs8": _Cfg(
        I8,
        kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme,
        kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme,
        pqs8_qc8w_gemm.SME2_MOPA,
        pqs8_qc8w_gemm.SME1_MOPA,
        4,
    ),
}


def xnnpack_conv_weights_mislaid(variant: str, svl: int) -> bool:
    """True where XNNPACK's own float conv weight packer disagrees with what the kernel reads.

    Note: XNNPACK packs pf32/pf16 *convolution* weights with its generic
    ``xnn_pack_f32_conv_goki_w`` / ``xnn_pack_f16_conv_goki_w`` (``set_context_params_f32/_f16``),
    not the KleidiAI imatmul RHS packers, using the config's nr. For pf16 the config forces
    ``nr = max(kernel nr, 16)`` ("nstep_min"), so at **SVL 128** (kernel nr = VLh = 8) XNNPACK's
    pf16 Conv2d would lay weights out in 16-column blocks that
    ``kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa`` (and its SME1 sibling) read as
    8-column blocks: an upstream hazard inferred from XNNPACK source (kernels.md §11.3,
    dispatch.md §4.5), not executed. kleidiref emulates the kernel-consistent layout (the one the
    golden vectors store), so its pf16 SVL-128 convolution is what the kernels compute on
    correctly packed weights. Everywhere else the two layouts coincide on every byte the kernel
    reads.
    """
    return variant == "pf16" and svl == 128


def _pack_weights(
    cfg: _Cfg,
    variant: str,
    svl: int,
    filt: NDArray[Any],
    bias: NDArray[Any],
    ks: int,
    kc: int,
    scale: NDArray[np.float32] | None,
    izp: int,
) -> Any:
    """OHWI -> [ks*kc][Cout] (XNNPACK's goki transpose) -> the imatmul RHS packer."""
    cout = filt.shape[0]
    w_kn = np.ascontiguousarray(filt.reshape(cout, ks * kc).T)
    packer = cfg.rhs_packer(svl)
    out = np.zeros(packer.get_rhs_packed_size(cout, ks, kc), dtype=np.uint8)
    if variant == "pqs8":
        assert isinstance(packer, kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme)
        params = kai_rhs_pack_qsi8cx_params(lhs_zero_point=izp, scale_multiplier=1.0)
        packer.run_rhs_imatmul_pack(
            cout, ks, kc, cout, w_kn, np.ascontiguousarray(bias), np.ascontiguousarray(scale), out, params
        )
        return as_packed_rhs(out)  # immutable: the kernels cache its decoding across images
    assert isinstance(packer, _ImatmulRhsBiasPacker)
    packer.run_rhs_imatmul_pack(cout, ks, kc, cout * cfg.elem.itemsize, w_kn, np.ascontiguousarray(bias), out)
    return out


def _pack_lhs(
    cfg: _Cfg,
    svl: int,
    geom: ConvGeometry,
    ind: NDArray[np.int32],
    memory: NDArray[np.uint8],
    kc: int,
    pad_ptr: int,
    a_offset: int,
) -> NDArray[np.uint8]:
    """XNNPACK's ``xnn_x*_pack_lh_ukernel__igemm_neonsme*`` on the whole image (m = M)."""
    packer = cfg.lhs_packer(svl)
    ptrs = np.where(ind >= 0, ind.astype(np.int64) * kc * cfg.elem.itemsize, pad_ptr)
    out = np.zeros(packer.get_lhs_packed_size(geom.m, geom.ks, kc), dtype=np.uint8)
    packer.run_lhs_imatmul_pack(geom.m, geom.ks, kc, ptrs, a_offset, pad_ptr, out, memory=memory)
    return out


def _check_int8(name: str, value: object) -> int:
    v = check_i32(name, value)
    if not -128 <= v <= 127:
        raise ValueError(f"{name} = {v} is not an int8 value (XNNPACK passes it as int8_t)")
    return v


def _array(name: str, value: object, ndim: int, what: str) -> NDArray[Any]:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array ({what}), got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D ({what}), got shape {value.shape}")
    return value


_ELEM_WHAT = {
    "pf32": "pf32 tensors are float32",
    "pf16": "pf16 tensors are float16",
    "pqs8": "pqs8 activations and weights are int8",
}


def conv2d(
    input: NDArray[Any],
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    variant: Variant,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    padding: PaddingLike = NO_PADDING,
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    input_zero_point: int | None = None,
    requant_scale: NDArray[np.float32] | None = None,
    output_zero_point: int | None = None,
    output_min: int = -128,
    output_max: int = 127,
    target: Target | None = None,
    sme1: bool = False,
    fast: bool = True,
) -> NDArray[Any]:
    """A 2-D convolution exactly as XNNPACK's KleidiAI IGEMM path computes it: [N, Hout, Wout, Cout].

    Arguments:
        input: NHWC ``[N, H, W, Cin]``, N >= 0 (N == 0 gives an empty result, as XNNPACK skips
            the operator). float32 (pf32), float16 (pf16) or int8 (pqs8, zero point
            ``input_zero_point``).
        filter: OHWI ``[Cout, KH, KW, Cin / groups]`` (XNNPACK's goki, groups major); same dtype as
            ``input`` (pf16 also accepts float32, converted with RNE as
            ``XNN_FLAG_FP32_STATIC_WEIGHTS`` does); pqs8: int8 symmetric per output channel.
        bias: ``[Cout]`` float32 / float16 (pf16 accepts float32, RNE) / int32 (pqs8, in units
            of ``input_scale * kernel_scale[n]``), or None (zeros, as XNNPACK substitutes).
        variant: ``"pf32"``, ``"pf16"`` or ``"pqs8"``.
        stride, dilation: (height, width), each >= 1.
        padding: (top, right, bottom, left), each >= 0: XNNPACK's order, as everywhere in kleidiref
            (:mod:`kleidiref.conv`); a :class:`~kleidiref.conv.Padding` names the sides. Explicit
            padding: resolve TF SAME first.
        groups: >= 1, dividing Cin and Cout. Group g reads input channels ``g*Cin/groups ..``,
            filters/bias/scales ``g*Cout/groups ..`` and writes those output channels: XNNPACK runs
            the same IGEMM once per group (``a_offset = g * group_input_channels``, weights packed
            per group by its goki packer), so each group is exactly an ungrouped convolution.
        clamp_min, clamp_max: pf32/pf16 output bounds (binary32; pf16 narrows them to f16 with
            RNE, as the wrappers do). NaN or ``min > max`` is refused like XNNPACK's create.
        input_zero_point, requant_scale, output_zero_point, output_min, output_max: pqs8 only.
            ``requant_scale`` is float32 ``[Cout]`` in XNNPACK's convention
            ``RN32(RN32(s_in * s_w[n]) / s_out)`` (see
            :func:`kleidiref.quant.qai8.requantization_scale`), each in (0, 256).
        target: the CPU (default: the current target). Needs SME; FPCR.FZ is its
            ``flush_to_zero``.
        sme1: run the SME1 kernel even when the target has SME2 (XNNPACK picks SME2 first).
        fast: the default computes the kernel's arithmetic on an im2col gather of the input,
            skipping the pointers and the packed buffers (the same bits: the packers only move
            elements; the tests compare both paths); ``fast=False`` runs the steps below through
            the packer and kernel objects.

    Steps per image b and group (XNNPACK ``reshape_igemm`` + ``xnn_compute_hmp_inline_packed_igemm``;
    ``Cin``/``Cout`` below are the group's channel counts):

    1. :func:`conv_geometry` (output size, XNNPACK's checks) and :func:`indirection_conv2d`
       with ``mr`` = the LHS packer's m_step (built once, for image 0).
    2. Padding buffer: ``Cin`` elements of +0.0 (floats) or ``input_zero_point`` (pqs8,
       ``input_padding_bytes``).
    3. The imatmul LHS packer with ``m = M``, ``k_chunk_count = ks``, ``k_chunk_length = Cin``,
       ``lhs_ptr_offset = b * H * W * Cin * elem`` (XNNPACK's ``a_offset``), ``pad_ptr`` = the
       padding buffer (never offset).
    4. Weights: OHWI transposed to ``[ks*Cin][Cout]`` and packed by the imatmul RHS packer (pqs8
       params ``{lhs_zero_point = input_zero_point, scale_multiplier = 1.0}``).
    5. The matmul MOPA kernel (SME2, or SME1 without SME2 / with ``sme1``) with ``m = M``,
       ``n = Cout``, ``k = ks * roundup(Cin, kr)``; arithmetic in the module docstring.

    ``conv2d(input, filter, bias, **kw)`` is ``prepare_conv2d(filter, bias, **kw)(input)``
    (:func:`prepare_conv2d`): to run one convolution on many inputs, prepare it once.

    XNNPACK's subgraph may route some convolutions elsewhere (1x1 groups=1 -> fully connected;
    1-in/1-out channel per group, i.e. depthwise -> generic dwconv/vmulcaddc); this function is the
    IGEMM path only (for groups too). ``xnnpack_conv_weights_mislaid`` flags the pf16 SVL-128
    weight-layout hazard.
    """
    op, x, geom = _prepare(
        True,
        input,
        filter,
        bias,
        variant=variant,
        stride=stride,
        dilation=dilation,
        padding=padding,
        groups=groups,
        clamp_min=clamp_min,
        clamp_max=clamp_max,
        input_zero_point=input_zero_point,
        requant_scale=requant_scale,
        output_zero_point=output_zero_point,
        output_min=output_min,
        output_max=output_max,
        target=target,
        sme1=sme1,
        fast=fast,
    )
    assert x is not None and geom is not None
    return op._run(x, geom)


def prepare_conv2d(
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    variant: Variant,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    padding: PaddingLike = NO_PADDING,
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    input_zero_point: int | None = None,
    requant_scale: NDArray[np.float32] | None = None,
    output_zero_point: int | None = None,
    output_min: int = -128,
    output_max: int = 127,
    target: Target | None = None,
    sme1: bool = False,
    fast: bool = True,
) -> PreparedConv2d:
    """A convolution operator with its weights prepared once: XNNPACK's create/run split.

    ``prepare_conv2d(filter, bias, **kw)(input)`` is :func:`conv2d` ``(input, filter, bias, **kw)``
    bit for bit (the arguments mean the same; :func:`conv2d` is exactly this). Here, as in
    ``xnn_create_convolution2d_nhwc_*``, every filter, bias and parameter check runs and the weights
    are prepared once per group (pqs8: the float32 weights with the folded ``bias' = bias - izp *
    sum W`` and the scales checked and flushed; pf32/pf16: the per-tap padded weights and the bias
    FMOPA; ``fast=False``: the imatmul RHS packer's buffer); calling the returned
    :class:`PreparedConv2d` does only the input-dependent work, as ``xnn_reshape_*`` +
    ``xnn_setup_*`` + ``xnn_run_operator`` do. Without an input the channel checks use the
    filter's ``Cin = groups * filter.shape[3]``; the input's are checked per call.
    """
    return _prepare(
        False,
        None,
        filter,
        bias,
        variant=variant,
        stride=stride,
        dilation=dilation,
        padding=padding,
        groups=groups,
        clamp_min=clamp_min,
        clamp_max=clamp_max,
        input_zero_point=input_zero_point,
        requant_scale=requant_scale,
        output_zero_point=output_zero_point,
        output_min=output_min,
        output_max=output_max,
        target=target,
        sme1=sme1,
        fast=fast,
    )[0]


def _prepare(
    have_input: bool,
    input: object,
    filter: NDArray[Any],
    bias: NDArray[Any] | None,
    *,
    variant: Variant,
    stride: Sequence[int],
    dilation: Sequence[int],
    padding: PaddingLike,
    groups: int,
    clamp_min: float,
    clamp_max: float,
    input_zero_point: int | None,
    requant_scale: NDArray[np.float32] | None,
    output_zero_point: int | None,
    output_min: int,
    output_max: int,
    target: Target | None,
    sme1: bool,
    fast: bool,
) -> tuple[PreparedConv2d, NDArray[Any] | None, ConvGeometry | None]:
    """Every check of :func:`conv2d` in its order and the weight preparation; with ``have_input``
    also the input's checks and geometry (returned with the operator)."""
    if variant not in _CFG:
        raise ValueError(f"variant must be one of {sorted(_CFG)}, got {variant!r}")
    cfg = _CFG[variant]
    t = get_target() if target is None else target
    if not isinstance(t, Target):
        raise TypeError(f"target must be a kleidiref Target, got {type(t).__name__}")
    if not t.has_sme:
        raise ValueError(
            f"the KleidiAI IGEMM path needs SME; target {t.name!r} has none (XNNPACK runs its generic "
            "f32/f16/qs8 IGEMM there: see kleidiref.dispatch)"
        )
    if not isinstance(sme1, bool):
        raise TypeError("sme1 must be a bool")
    n_groups = check_count("groups", groups, minimum=1)
    if not isinstance(fast, bool):
        raise TypeError("fast must be a bool")
    x = _array("input", input, 4, "NHWC [N, H, W, Cin]") if have_input else None
    f = _array("filter", filter, 4, "OHWI [Cout, KH, KW, Cin]")
    elem_what = _ELEM_WHAT[variant]
    if x is not None:
        check_dtype("input", x, cfg.elem, elem_what)
    if variant == "pf16" and f.dtype == F32:
        # Note: XNN_FLAG_FP32_STATIC_WEIGHTS: xnn_pack_f32_to_f16_conv_goki_w converts with
        # xnn_float16_from_float (RNE).
        f = rn16(f)
    check_dtype("filter", f, cfg.elem, elem_what)
    cout, kh, kw, fcin = f.shape
    conv_channels(fcin * n_groups if x is None else x.shape[3], cout, fcin, n_groups)
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel {kh}x{kw}: kernel dimensions must be non-zero (xnn_create_convolution2d_nhwc)")
    geom: ConvGeometry | None = None
    if x is None:
        conv = (as_pair("stride", stride), as_pair("dilation", dilation), as_padding(padding))
    else:
        geom = conv_geometry(x.shape[1], x.shape[2], kh, kw, stride=stride, dilation=dilation, padding=padding)
        conv = (geom.stride, geom.dilation, geom.padding)
    bias_dtype = I32 if variant == "pqs8" else cfg.elem
    if bias is None:
        b = np.zeros(cout, dtype=bias_dtype)  # Note: XNNPACK substitutes a zero bias
    else:
        bias_name = "int32" if variant == "pqs8" else cfg.elem_name  # Note: dtype.name costs ~5 us a call
        b = _array("bias", bias, 1, f"[Cout] {bias_name}")
        if variant == "pf16" and b.dtype == F32:
            b = rn16(b)  # Note: XNN_FLAG_FP32_STATIC_BIASES: xnn_float16_from_float (RNE)
        check_dtype("bias", b, bias_dtype, f"the {variant} bias is {bias_name}")
        if b.shape != (cout,):
            raise ValueError(f"bias must have shape ({cout},) (one per output channel), got {b.shape}")
    svl, fz = t.svl_bits, t.flush_to_zero
    kern = (cfg.sme1 if (sme1 or not t.sme2) else cfg.sme2)(svl, fz=fz)
    izp = 0
    scale: NDArray[np.float32] | None = None
    if variant == "pqs8":
        if input_zero_point is None or requant_scale is None or output_zero_point is None:
            raise ValueError("pqs8 needs input_zero_point, requant_scale and output_zero_point")
        izp = _check_int8("input_zero_point", input_zero_point)
        zp_out = _check_int8("output_zero_point", output_zero_point)
        lo_q, hi_q = _check_int8("output_min", output_min), _check_int8("output_max", output_max)
        if lo_q > hi_q:
            raise ValueError(f"output_min {lo_q} must be <= output_max {hi_q} (xnn_create_convolution2d_nhwc_qs8)")
        scale = check_dtype("requant_scale", requant_scale, F32, "XNNPACK requantization scales are float32")
        if scale.shape != (cout,):
            raise ValueError(f"requant_scale must have shape ({cout},), got {scale.shape}")
        with np.errstate(invalid="ignore"):
            bad = ~((scale > 0) & (scale < np.float32(256)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"requant_scale[{i}] = {float(scale[i])!r} must be > 0 and < 256: XNNPACK's "
                "init_requantization_scale_qx8_qc8w refuses to create the operator"
            )
        params: Any = kai_matmul_requantize32_params(lo_q, hi_q, zp_out)
    else:
        for label, v in (
            ("input_zero_point", input_zero_point),
            ("requant_scale", requant_scale),
            ("output_zero_point", output_zero_point),
        ):
            if v is not None:
                raise ValueError(f"{label} is a pqs8 parameter; {variant} clamps with clamp_min/clamp_max")
        # The C arguments are floats: a bound that binary32 cannot hold is refused, not rounded.
        lo, hi = float(check_float("clamp_min", clamp_min)), float(check_float("clamp_max", clamp_max))
        if np.isnan(lo) or np.isnan(hi):
            raise ValueError("clamp bounds must be non-NaN (xnn_create_convolution2d_nhwc: check_output_range_f32)")
        if lo > hi:
            raise ValueError(f"clamp_min {lo} must be <= clamp_max {hi} (check_output_range_f32)")
        if variant == "pf16" and not float(rn16(np.float32(lo))) < float(rn16(np.float32(hi))):
            raise ValueError(
                f"[{lo}, {hi}] rounded to f16 is empty: check_output_range_f16 needs rounded min < rounded max"
            )
        params = (np.float32(lo), np.float32(hi))
    og = cout // n_groups
    plans: list[_GroupPlan] = []
    for g in range(n_groups):
        # XNNPACK packs each group's weights on their own: its Cout/groups filters and bias/scale
        # slice (goki: group-major).
        fs, bs = f[g * og : (g + 1) * og], b[g * og : (g + 1) * og]
        ss = None if scale is None else scale[g * og : (g + 1) * og]
        if not fast:
            plans.append(_KernelPathPlan(cfg, variant, kern, fs, bs, ss, izp, params))
        elif variant == "pqs8":
            assert ss is not None
            plans.append(_Pqs8Plan(kern, fs, bs, ss, izp, params))
        else:
            plans.append(_FloatPlan(variant, kern, fs, bs, params))
    op = PreparedConv2d(variant, kern, (cout, kh, kw, fcin), n_groups, *conv, fast, izp, params, plans)
    return op, x, geom


class PreparedConv2d:
    """A 2-D convolution operator made by :func:`prepare_conv2d`: call it with NHWC inputs.

    ``op(input)`` gives ``[N, Hout, Wout, Cout]`` exactly as :func:`conv2d` does for the same
    arguments; the input may change shape (N, H, W) from call to call, as XNNPACK's reshape allows,
    but not its channel count or dtype (both checked per call, as the geometry is). The operator is
    immutable: it holds copies of what it needs of the filter, bias and scales (later changes to the
    caller's arrays do not reach it, as XNNPACK's packed weights do not see them). Calls from several
    threads are safe (the scratch buffers are per thread).
    """

    __slots__ = (
        "_dilation",
        "_fast",
        "_filter_shape",
        "_geoms",
        "_groups",
        "_izp",
        "_kern",
        "_padding",
        "_params",
        "_plans",
        "_stride",
        "_variant",
    )

    _variant: Variant
    _kern: Any
    _filter_shape: tuple[int, int, int, int]
    _groups: int
    _stride: tuple[int, int]
    _dilation: tuple[int, int]
    _padding: Padding
    _fast: bool
    _izp: int
    _params: Any
    _plans: tuple[_GroupPlan, ...]
    _geoms: dict[tuple[int, int], ConvGeometry]

    def __init__(
        self,
        variant: Variant,
        kern: Any,
        filter_shape: tuple[int, int, int, int],
        groups: int,
        stride: tuple[int, int],
        dilation: tuple[int, int],
        padding: Padding,
        fast: bool,
        izp: int,
        params: Any,
        plans: Sequence[_GroupPlan],
    ) -> None:
        """Internal: use :func:`prepare_conv2d` (which checks the arguments)."""
        for name, value in (
            ("_variant", variant),
            ("_kern", kern),
            ("_filter_shape", filter_shape),
            ("_groups", groups),
            ("_stride", stride),
            ("_dilation", dilation),
            ("_padding", padding),
            ("_fast", fast),
            ("_izp", izp),
            ("_params", params),
            ("_plans", tuple(plans)),
            ("_geoms", {}),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a PreparedConv2d is immutable: prepare another one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a PreparedConv2d is immutable: prepare another one")

    def __repr__(self) -> str:
        cout, kh, kw, fcin = self._filter_shape
        return (
            f"PreparedConv2d({self._variant}, {self._kern.name}, Cin={fcin * self._groups}, Cout={cout}, "
            f"kernel={kh}x{kw}, stride={self._stride}, dilation={self._dilation}, padding={self._padding}, "
            f"groups={self._groups}, fast={self._fast})"
        )

    @property
    def variant(self) -> Variant:
        """``"pf32"``, ``"pf16"`` or ``"pqs8"``."""
        return self._variant

    @property
    def kernel_name(self) -> str:
        """The MOPA kernel whose arithmetic runs (SME2, or SME1 without SME2 / with ``sme1``)."""
        name: str = self._kern.name
        return name

    @property
    def in_channels(self) -> int:
        """Cin: the input's channel count (``groups * filter.shape[3]``)."""
        return self._filter_shape[3] * self._groups

    @property
    def out_channels(self) -> int:
        """Cout."""
        return self._filter_shape[0]

    @property
    def groups(self) -> int:
        return self._groups

    @property
    def dtype(self) -> np.dtype[Any]:
        """The input, filter and output element type."""
        dt: np.dtype[Any] = self._kern.dst_dtype
        return dt

    def geometry(self, h: int, w: int) -> ConvGeometry:
        """The geometry of an H x W input (:func:`conv_geometry`'s checks), cached per (H, W)."""
        key = (h, w)
        geom = self._geoms.get(key)
        if geom is None:
            _, kh, kw, _ = self._filter_shape
            geom = conv_geometry(h, w, kh, kw, stride=self._stride, dilation=self._dilation, padding=self._padding)
            if len(self._geoms) >= 16:  # Note: a bounded cache (inputs of ever new sizes)
                self._geoms.clear()
            self._geoms[key] = geom
        return geom

    def __call__(self, input: NDArray[Any]) -> NDArray[Any]:
        """The convolution of ``input`` (NHWC ``[N, H, W, Cin]``, N >= 0): ``[N, Hout, Wout, Cout]``."""
        x = _array("input", input, 4, "NHWC [N, H, W, Cin]")
        check_dtype("input", x, _CFG[self._variant].elem, _ELEM_WHAT[self._variant])
        cout, _, _, fcin = self._filter_shape
        conv_channels(x.shape[3], cout, fcin, self._groups)
        return self._run(x, self.geometry(x.shape[1], x.shape[2]))

    def _run(self, x: NDArray[Any], geom: ConvGeometry) -> NDArray[Any]:
        """The per-inference work on a checked input: per group, the prepared plan's route."""
        n_img = x.shape[0]
        cout, ng = self._filter_shape[0], self._groups
        # Note: empty, not zeros: every route writes every output element (no zeroing pass).
        out = np.empty((n_img, geom.hout, geom.wout, cout), dtype=self._kern.dst_dtype)
        if n_img == 0:
            return out  # Note: XNNPACK marks a batch of 0 as xnn_run_state_skip
        if ng == 1:
            self._plans[0].run(self._kern, geom, x, out)
            return out
        cg, og = x.shape[3] // ng, cout // ng
        for g, plan in enumerate(self._plans):
            # XNNPACK runs one IGEMM per group: its Cin/groups input channels (a_offset = g * cg) and
            # its output channel slice.
            plan.run(self._kern, geom, x[..., g * cg : (g + 1) * cg], out[..., g * og : (g + 1) * og])
        return out


class _GroupPlan:
    """One group's prepared weights and the route that runs them per call."""

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        raise NotImplementedError


class _KernelPathPlan(_GroupPlan):
    """``fast=False``: weights packed once by the imatmul RHS packer; per call the indirection
    buffer, the imatmul LHS packer and the MOPA kernel object, as XNNPACK runs them."""

    def __init__(
        self,
        cfg: _Cfg,
        variant: str,
        kern: Any,
        f: NDArray[Any],
        b: NDArray[Any],
        scale: NDArray[np.float32] | None,
        izp: int,
        params: Any,
    ) -> None:
        cout, kh, kw, kc = f.shape
        self.cfg, self.variant, self.izp, self.params = cfg, variant, izp, params
        self.kc, self.cout = kc, cout
        # Note: pf32/pf16 weights are packed in the layout the kernel reads (the KleidiAI imatmul
        # packer's, which the golden vectors store). XNNPACK itself packs float conv weights with its
        # generic xnn_pack_f{32,16}_conv_goki_w, identical except for pf16 at SVL 128, where it uses
        # nr = 16 against the kernel's nr = 8 (an upstream hazard, see xnnpack_conv_weights_mislaid).
        self.packed_w = _pack_weights(cfg, variant, kern.svl, f, b, kh * kw, kc, scale, izp)

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        cfg, kc, cout = self.cfg, self.kc, self.cout
        n_img, h, w, _ = x.shape
        svl = kern.svl
        ind = indirection_conv2d(geom, cfg.lhs_packer(svl).get_m_step())
        image_bytes = h * w * kc * cfg.elem.itemsize
        pad = np.full(kc, self.izp, dtype=cfg.elem)  # memset(zero_buffer, input_padding_bytes, ...)
        # Note: a group's channels are copied out contiguously (XNNPACK points into the whole pixel
        # with a_offset = g * kc and pixel stride Cin); the packer copies the same kc elements.
        memory = np.concatenate([np.ascontiguousarray(x).reshape(-1).view(np.uint8), pad.view(np.uint8)])
        pad_ptr = n_img * image_bytes
        k = geom.ks * roundup(kc, cfg.kr)
        m = geom.m
        for i in range(n_img):
            lhs_packed = _pack_lhs(cfg, svl, geom, ind, memory, kc, pad_ptr, i * image_bytes)
            dst = np.zeros((m, cout), dtype=kern.dst_dtype)
            if self.variant == "pqs8":
                kern.run_matmul(m, cout, k, lhs_packed, self.packed_w, dst, cout, 1, self.params)
            else:
                lo, hi = self.params
                item = cfg.elem.itemsize
                kern.run_matmul(m, cout, k, lhs_packed, self.packed_w, dst, cout * item, item, lo, hi)
            out[i] = dst.reshape(geom.hout, geom.wout, cout)


# --------------------------------------------------------------------------------------------
# The fast path of conv2d: the same arithmetic on an im2col gather (no pointers, no packing)
# --------------------------------------------------------------------------------------------


_scratch = threading.local()
#: Largest scratch buffer kept between calls (per thread and use).
_SCRATCH_MAX_BYTES = 16 << 20


def _scratch_buffer(tag: str, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
    """An uninitialised array for one internal use (``tag``), reused by the next call of this thread.

    Note: fresh large allocations are returned to the OS and fault their pages in again on every
    call (measured: up to 4x the cost of the im2col gather itself), so the gather's padded image,
    its output and the pqs8 GEMM output are kept (at most one of each per thread, up to 16 MiB).
    Nothing returned to the caller lives in these buffers.
    """
    dt = np.dtype(dtype)
    if math.prod(shape) * dt.itemsize > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype=dt)
    bufs: dict[str, NDArray[Any]] | None = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = _scratch.bufs = {}
    arr = bufs.get(tag)
    if arr is None or arr.shape != shape or arr.dtype != dt:
        arr = bufs[tag] = np.empty(shape, dtype=dt)
        views: dict[Any, Any] | None = getattr(_scratch, "views", None)
        if views:
            views.clear()  # views on the replaced buffer would keep it alive
    return arr


class _GatherViews:
    """The views one im2col gather writes and reads, on this thread's scratch buffers ``xp``
    (the padded image) and ``buf`` (the matrix): built once per geometry and layout."""

    __slots__ = ("borders", "buf", "dst", "geom", "interior", "ones", "src", "xp", "zero")

    def __init__(
        self, img_shape: tuple[int, int, int], geom: ConvGeometry, kcp: int, dtype: Any, transposed: bool, ones: bool
    ) -> None:
        h, w, kc = img_shape
        g = self.geom = geom
        need_h, need_w = (g.hout - 1) * g.sh + (g.kh - 1) * g.dh + 1, (g.wout - 1) * g.sw + (g.kw - 1) * g.dw + 1
        xp = self.xp = _scratch_buffer("im2col.padded", (max(need_h, g.top + h), max(need_w, g.left + w), kc), dtype)
        self.interior = xp[g.top : g.top + h, g.left : g.left + w]
        if h * w * kc > 4096:
            # Note: only the border is filled (the image overwrites the rest): a pass fewer over big images
            self.borders = [
                v
                for v in (
                    xp[: g.top],
                    xp[g.top + h :],
                    xp[g.top : g.top + h, : g.left],
                    xp[g.top : g.top + h, g.left + w :],
                )
                if v.size
            ]
        else:
            self.borders = [xp]
        s0, s1, s2 = xp.strides
        taps, taps_st = (g.kh, g.kw), (g.dh * s0, g.dw * s1)
        pix, pix_st = (g.hout, g.wout), (g.sh * s0, g.sw * s1)
        k = g.ks * kcp
        # Note: read-only strided views of the padded image (np.ndarray: as_strided costs ~10 us)
        if transposed:
            buf = self.buf = _scratch_buffer("im2col", (k + ones, g.m), dtype)
            self.ones = buf[k:] if ones else None
            out = buf[:k].reshape(*taps, kcp, *pix)
            self.zero = out[:, :, kc:] if kcp > kc else None
            self.dst = out[:, :, :kc]
            self.src = np.ndarray((*taps, kc, *pix), dtype=xp.dtype, buffer=xp, strides=(*taps_st, s2, *pix_st))
        else:
            buf = self.buf = _scratch_buffer("im2col", (g.m, k + ones), dtype)
            self.ones = buf[:, k:] if ones else None
            out = buf[:, :k].reshape(*pix, *taps, kcp)
            self.zero = out[..., kc:] if kcp > kc else None
            self.dst = out[..., :kc]
            self.src = np.ndarray((*pix, *taps, kc), dtype=xp.dtype, buffer=xp, strides=(*pix_st, *taps_st, s2))
        self.src.flags.writeable = False

    def current(self, geom: ConvGeometry) -> bool:
        """Whether these views are for ``geom`` and still on this thread's scratch buffers."""
        bufs: dict[str, NDArray[Any]] = getattr(_scratch, "bufs", {})
        return geom is self.geom and bufs.get("im2col") is self.buf and bufs.get("im2col.padded") is self.xp


def _im2col(
    img: NDArray[Any],
    geom: ConvGeometry,
    pad_value: float | int,
    kcp: int,
    dtype: Any,
    *,
    transposed: bool,
    ones: bool = False,
) -> NDArray[Any]:
    """The im2col matrix of one HWC image, ``[M, ks*kcp]`` (or its transpose ``[ks*kcp, M]``).

    Row m (output pixel), column ``c*kcp + i`` (tap c, channel i) holds what the imatmul LHS
    packer stores for row m, k' = c*Kc + i: the input element, ``pad_value`` for a padding tap, 0
    for the per-chunk padding ``i >= kc``. One strided copy from a padded copy of the image (no
    Python loop over pixels). ``ones`` appends a column (row) of 1s, to fold a bias into a GEMM.
    Every element of the result and of the padded image it reads is written on every call.
    """
    # Note: the views are kept per thread for the last few (geometry, layout) keys: building them
    # costs more than the gather itself for small images. A prepared operator keeps its geometry
    # objects, so the identity of ``geom`` is the key (the cached views hold it alive).
    key = (id(geom), img.shape, kcp, np.dtype(dtype).char, transposed, ones)
    views: dict[Any, _GatherViews] | None = getattr(_scratch, "views", None)
    if views is None:
        views = _scratch.views = {}
    v = views.get(key)
    if v is None or not v.current(geom):
        v = _GatherViews(img.shape, geom, kcp, dtype, transposed, ones)
        if v.current(geom):  # not for buffers too big to keep
            if len(views) >= 8:
                views.clear()
            views[key] = v
    for b in v.borders:
        b[...] = pad_value
    v.interior[...] = img
    if v.ones is not None:
        v.ones[...] = 1
    if v.zero is not None:
        v.zero[...] = 0
    v.dst[...] = v.src
    return v.buf


#: Below this many channels the transposed gather is faster (the channel runs are short).
_ROW_GATHER_MIN_KC = 8


class _FloatPlan(_GroupPlan):
    """pf32/pf16, one group: the MOPA kernel's ``_compute`` on the im2col gather, bit for bit.

    Same bits because the kernel path only moves elements: the packed LHS decodes to exactly this
    chunk-padded im2col matrix and the packed RHS to the chunk-padded filter (tests compare the two
    paths). Each output element is an independent chain over k of products ``a*w``, and the float
    steps (fma32, the f16 pair dot) are symmetric in a and w, including their FZ flushes: for
    M > N the chain runs on the transposed problem (output [N, M]), whose long rows suit numpy.
    Prepared once: the per-tap padded weights (FZ16-flushed for pf16 under FZ) in both
    orientations and the bias FMOPA.
    """

    def __init__(
        self, variant: str, kern: Any, f: NDArray[Any], b: NDArray[Any], bounds: tuple[np.float32, np.float32]
    ) -> None:
        cout, kh, kw, kc = f.shape
        fz = kern.fz
        self.variant = variant
        self.kr = kr = 1 if variant == "pf32" else 2
        self.kcp = kcp = roundup(kc, kr)
        self.dt = dt = F32 if variant == "pf32" else F16
        ks = kh * kw
        w_pad = np.zeros((cout, ks, kcp), dtype=dt)  # a copy: the caller's filter may change later
        w_pad[:, :, :kc] = f.reshape(cout, ks, kc)
        w_nk: NDArray[Any] = w_pad.reshape(cout, ks * kcp)
        acc0: NDArray[np.float32]
        if variant == "pf32":
            acc0 = fma32(np.float32(1.0), b, np.float32(0.0), fz=fz)  # the bias FMOPA: -0 -> +0
        else:
            if fz:
                w_nk, b = cast(NDArray[Any], ftz16(w_nk)), ftz16(b)
            acc0 = b.astype(F32) + np.float32(0.0)
        self.w_nk, self.w_kn = w_nk, np.ascontiguousarray(w_nk.T)
        self.acc0 = acc0
        self.bounds = bounds

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        variant, fz = self.variant, kern.fz
        cout = self.w_nk.shape[0]
        m = geom.m
        acc0 = self.acc0
        lo, hi = self.bounds
        res: NDArray[Any]
        for i in range(x.shape[0]):
            a_t: NDArray[Any] = _im2col(x[i], geom, 0.0, self.kcp, self.dt, transposed=True)  # [K, M]
            if variant == "pf16" and fz:
                a_t = ftz16(a_t)
            if m > cout:  # output [N, M], the bias along rows
                acc = _chain(variant, np.broadcast_to(acc0[:, None], (cout, m)), self.w_nk, a_t, fz).T
            else:
                acc = _chain(variant, np.broadcast_to(acc0, (m, cout)), a_t.T, self.w_kn, fz)
            res = _pf32_epilogue(kern, acc, lo, hi) if variant == "pf32" else kern._output(acc, lo, hi)
            out[i].reshape(m, cout)[...] = res


def _chain(variant: str, acc0: NDArray[np.float32], a: NDArray[Any], w: NDArray[Any], fz: bool) -> NDArray[np.float32]:
    """``fma32_chain`` (pf32) or ``f16_pair_chain`` (pf16) of ``a`` [R, K] and ``w`` [K, C] from ``acc0``."""
    # Note: cutting outputs too small for the engine's tiling into column blocks on threads was
    # measured slower (GIL-bound per-k calls), so they stay on one thread.
    if variant == "pf32":
        return fma32_chain(acc0, a, w, fz=fz)
    return f16_pair_chain(acc0, a, w)


def _pf32_epilogue(kern: Any, acc: NDArray[np.float32], lo: np.float32, hi: np.float32) -> NDArray[np.float32]:
    """``kern._clamp(acc, lo, hi)``; XNNPACK's default unbounded clamp of a NaN-free ``acc`` is
    ``acc`` itself, returned without a copy (the caller writes it into the output once)."""
    if lo == -np.inf and hi == np.inf and not np.isnan(acc).any():
        return acc
    out: NDArray[np.float32] = kern._clamp(acc, lo, hi)
    return out


#: |partial sums| of one float32 GEMM stay exact below this.
_EXACT_F32 = float(2**24)


class _Pqs8Plan(_GroupPlan):
    """pqs8, one group: the MOPA kernel's ``_requant`` on the im2col gather (padding taps = izp).

    The kernel computes ``bias' + sum_k a*W`` (int32, wraps) with ``bias' = bias - izp * sum_k W``
    (the packer), then requantizes. The im2col rows are the packed LHS rows (the per-chunk padding
    is zero on both sides, so it is left out). Fast case, when the data bound it: one float32 GEMM
    (every partial sum < 2**24 whatever the summation order: exact), ``+ bias'`` in that GEMM or in
    float32 (both addends < 2**24 in magnitude: the one rounding is RN32(acc), which the kernel's
    SCVTF computes too; no int32 wrap possible),
    ``* scale`` (FMUL), ``rint`` (FRINTN), ``+ zp`` and the clamp in float32 (|r| < 2**31 - 256:
    FCVTZS cannot saturate nor the zp add wrap; an inexact r + zp is beyond 2**24, clamped the same).
    When neither the int8 range nor the weights bound the partial sums (K >= 1024), with few
    output pixels :func:`_pqs8_chunked_acc` checks the bound on the result instead of scanning the
    input. Otherwise the kernel's own integer route (``int8_matmul`` in K
    chunks, int32 adds, ``requantize``).

    Prepared once (what depends on the weights only): the float32 weights ``[N, K+1]`` with bias'
    as the last column, bias' (int32 and float32), the flushed scales and their maximum, the
    weights' bound on the partial sums; per call only the decisions that involve M or the input.
    """

    def __init__(
        self,
        kern: Any,
        f: NDArray[np.int8],
        b: NDArray[np.int32],
        scale: NDArray[np.float32],
        izp: int,
        params: kai_matmul_requantize32_params,
    ) -> None:
        cout = f.shape[0]
        k = f.shape[1] * f.shape[2] * f.shape[3]
        self.k, self.cout, self.izp = k, cout, izp
        w32 = np.empty((cout, k + 1), dtype=F32)  # [N, K(+1)], what the kernel decodes (transposed)
        w32[:, :k] = f.reshape(cout, k)
        # The packer's fold, bias' = bias - izp * sum_k W (int32 wrap); the column sums are exact in
        # float32 (|sum| <= 128 K < 2**24) and izp * sum fits int64.
        colsum = w32[:, :k].sum(axis=1).astype(np.int64)
        self.bias64 = bias64 = b.astype(np.int64) - izp * colsum
        self.b_absmax = float(np.abs(bias64).max(initial=0))
        self.bias_p = bias_p = wrap_i32(bias64)
        # Note: the bias' column is always stored; it is used (exact) only when folded.
        w32[:, k] = bias_p
        self.w32 = w32
        self.bias32 = bias_p.astype(F32)
        self.scale = scale.copy()  # the integer route's requantize flushes it itself
        # FMUL under FZ reads a subnormal scale as zero (the scales are > 0: subnormal iff < FLT_MIN)
        self.sc = sc = ftz32(scale).astype(F32) if kern.fz and float(scale.min()) < FLT_MIN else scale.copy()
        self.sc_max = float(sc.max(initial=0.0))
        # |partial sums| <= max|a| * max_n sum_k |W[k][n]| <= 128 * K * 128; the weights' sums of |W|
        # settle the cases the coarse bound does not (float32 sums of |W| are exact for K < 2**17).
        self.part_coarse = 128.0 * 128.0 * k
        self.w_colsum = 0.0
        if self.part_coarse >= _EXACT_F32:
            self.w_colsum = float(
                np.abs(w32[:, :k]).sum(axis=1, dtype=F32 if k < 2**17 else np.float64).max(initial=0.0)
            )
        self.params = params
        self.lo_f, self.hi_f = np.float32(params.min_value), np.float32(params.max_value)
        self.zp_f = np.float32(params.output_zero_point)
        self._sc_rows: dict[int, NDArray[np.float32]] = {}

    def _scale_rows(self, m: int) -> NDArray[np.float32]:
        # Note: the scales tiled over r rows, so that the multiply runs on long rows (a [M, N]
        # times [N] broadcast has N-long inner loops: 2x slower for N = 32).
        rows = math.gcd(m, max(1, 2048 // self.cout))
        sc_rows = self._sc_rows.get(rows)
        if sc_rows is None:
            sc_rows = self._sc_rows[rows] = np.broadcast_to(self.sc, (rows, self.cout)).reshape(-1)
        return sc_rows

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        k, cout, izp = self.k, self.cout, self.izp
        kc = x.shape[3]
        # When the coarse bound does not settle it, the weights' (prepared) bound; then, if the
        # output is much smaller than the weights, per-image checks on the result (``chunked``:
        # cheaper than a scan of the input), else the input's bound.
        part_bound = self.part_coarse
        if part_bound >= _EXACT_F32:
            part_bound = 128.0 * self.w_colsum
        chunked = part_bound >= _EXACT_F32 and 4 * geom.m < k
        if part_bound >= _EXACT_F32 and not chunked:
            x_max = int(np.abs(x.astype(np.int16)).max(initial=0))
            part_bound = float(max(x_max, abs(izp))) * self.w_colsum
        b_absmax, sc_max = self.b_absmax, self.sc_max
        fast = part_bound < _EXACT_F32 and b_absmax < _EXACT_F32 and (part_bound + b_absmax) * sc_max < 2.0**31 - 256
        # Note: with |partial sums| + |bias'| < 2**24 the bias rides in the GEMM as a row of W against
        # a column of 1s in A (every partial sum is still an exact integer): one pass fewer.
        fold = fast and part_bound + b_absmax < _EXACT_F32
        w32 = self.w32 if fold else self.w32[:, :k]
        if fast or chunked:
            sc_rows = self._scale_rows(geom.m)
            lo_z, hi_z, zp_f = self.lo_f - self.zp_f, self.hi_f - self.zp_f, self.zp_f
        # |RN32(y * scale)| < 2**22: the output stage of :func:`_requant_small` (a pass fewer)
        small = fast and not chunked and (part_bound + b_absmax) * sc_max < 2.0**22 - 1
        short = kc < _ROW_GATHER_MIN_KC
        for i in range(x.shape[0]):
            # [M, K(+1)] of int8 values (a transposed view when the channel runs are short)
            a = _im2col(x[i], geom, izp, kc, F32, transposed=short, ones=fold)
            if short:
                a = a.T
            y = _scratch_buffer("pqs8.acc", (a.shape[0], cout), F32)
            if chunked:
                exact = _pqs8_chunked_acc(a, w32, self.bias64, sc_max, y)
            elif fast:
                np.matmul(a, w32.T, out=y)  # exact integers
                if not fold:
                    y += self.bias32  # RN32(acc): exact addends, one rounding
                exact = True
            else:
                exact = False
            if exact:
                y.reshape(-1, sc_rows.size)[...] *= sc_rows  # FMUL
                if small:
                    _requant_small(y, self.params, out[i].reshape(-1, cout))
                    continue
                np.rint(y, out=y)  # FRINTN, ties to even
                # clamp(r + zp, lo, hi) as clamp(r, lo - zp, hi - zp) + zp: the same for |r| < 2**24
                # (exact), and both give a bound beyond; the last add writes the int8 result.
                np.clip(y, lo_z, hi_z, out=y)
                np.add(y, zp_f, out=out[i].reshape(-1, cout), casting="unsafe")
            else:  # the data do not bound the float route: the kernel's integer route
                acc = int8_matmul(a, w32.T, w_absmax=128.0)
                acc += self.bias_p[None, :]  # int32 wraps
                out[i] = requantize(acc, self.scale, self.params, fz=kern.fz).reshape(geom.hout, geom.wout, cout)


#: 1.5 * 2**23: RN32(v + _MAGIC) = _MAGIC + rint(v) (ties to even) for |v| <= 2**22.
_MAGIC = np.float32(1.5 * 2**23)
#: The bits of _MAGIC: the bits of _MAGIC + r are _MAGIC_BITS + r for integers |r| <= 2**22.
_MAGIC_BITS = 0x4B400000


def _requant_small(v: NDArray[np.float32], params: kai_matmul_requantize32_params, out: NDArray[np.int8]) -> None:
    """``out = clamp(rint(v) + zp, lo, hi)`` (FRINTN, FCVTZS, the zp add, the clamp) for |v| < 2**22.

    ``v + 1.5 * 2**23`` rounds to ``1.5 * 2**23 + rint(v)`` with ties to even (the constant is even
    and the float32 spacing there is 1), whose bits are ``0x4B400000 + rint(v)``: the clamp to
    ``[lo - zp, hi - zp]`` runs on those int32 bits, their low byte is ``rint(v)`` mod 256 and an
    int8 (wrapping) add of zp gives the result, in [lo, hi]. Overwrites ``v``.
    """
    # Note: measured 25% faster than rint, a float clamp and a float add cast to int8 (the float
    # clip and the casting add are the slow passes).
    zp = params.output_zero_point
    np.add(v, _MAGIC, out=v)
    bits = v.view(np.int32)
    np.clip(
        bits, np.int32(_MAGIC_BITS + params.min_value - zp), np.int32(_MAGIC_BITS + params.max_value - zp), out=bits
    )
    np.copyto(out, bits, casting="unsafe")  # the low byte (two's-complement truncation)
    np.add(out, np.int8(zp), out=out)


def _pqs8_chunked_acc(
    a: NDArray[np.float32],
    w32: NDArray[np.float32],
    bias64: NDArray[np.int64],
    sc_max: float,
    y: NDArray[np.float32],
) -> bool:
    """``y = RN32(bias' + a @ W)`` for K >= 1024 when the result bounds itself; False otherwise.

    K is cut into chunks of at most 1024 (|partial sums| <= 1024 * 128 * 128 = 2**24: each float32
    GEMM is exact), added in float64 with the unwrapped bias' (exact integers). If the total is
    below 2**31 in magnitude the kernel's int32 accumulator did not wrap and one cast is its SCVTF;
    the scaled value must also stay below 2**31 - 256 (see :class:`_Pqs8Plan`).
    """
    k = a.shape[1]
    nch = -(-k // 1024)
    cuts = [j * k // nch for j in range(nch + 1)]
    acc = np.matmul(a[:, : cuts[1]], w32[:, : cuts[1]].T).astype(np.float64)
    for k0, k1 in itertools.pairwise(cuts[1:]):
        acc += np.matmul(a[:, k0:k1], w32[:, k0:k1].T)
    acc += bias64.astype(np.float64)
    amax = float(np.abs(acc).max(initial=0.0))
    if not (amax < 2.0**31 and amax * sc_max * (1 + 2.0**-20) < 2.0**31 - 256):
        return False
    np.copyto(y, acc, casting="unsafe")  # RN32 (SCVTF)
    return True


def golden_padding(inputs: Mapping[str, NDArray[Any]]) -> Padding:
    """The padding of an IGEMM golden file as a :class:`~kleidiref.conv.Padding`.

    Note: the files store ``padding`` as (top, left, bottom, right), the order of the original
    capture; everything else in kleidiref uses XNNPACK's (top, right, bottom, left).
    """
    top, left, bottom, right = (int(v) for v in inputs["padding"].tolist())
    return Padding(top=top, right=right, bottom=bottom, left=left)


def reproduce_golden(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute a ``pf32_igemm`` / ``pf16_igemm`` / ``pqs8_qc8w_igemm`` golden file from its inputs.

    The files run one image with ``lhs_ptr_offset = 0`` and the padding buffer as the pad
    pointer; ``out`` is the SME2 kernel's and ``out_sme1`` the SME1 kernel's, with FPCR.FZ clear.
    """
    gid = str(inputs["meta_variant"])
    variant = {"pf32_igemm": "pf32", "pf16_igemm": "pf16", "pqs8_qc8w_igemm": "pqs8"}[gid]
    cfg = _CFG[variant]
    svl = int(inputs["meta_svl_bits"])
    x, f, b = inputs["input"], inputs["filter"], inputs["bias"]
    _, h, w, cin = x.shape
    cout, kh, kw, _ = f.shape
    geom = conv_geometry(
        h,
        w,
        kh,
        kw,
        stride=inputs["stride"].tolist(),
        dilation=inputs["dilation"].tolist(),
        padding=golden_padding(inputs),
    )
    ks, kc, m = geom.ks, cin, geom.m
    k = ks * roundup(kc, cfg.kr)
    izp = int(inputs["input_zero_point"]) if variant == "pqs8" else 0
    lhs_packer = cfg.lhs_packer(svl)
    mr = lhs_packer.get_m_step()
    ind = indirection_conv2d(geom, mr)
    pad = np.full(cin, izp, dtype=cfg.elem)
    memory = np.concatenate([np.ascontiguousarray(x).reshape(-1).view(np.uint8), pad.view(np.uint8)])
    lhs_packed = _pack_lhs(cfg, svl, geom, ind, memory, kc, x.nbytes, 0)
    res: dict[str, NDArray[Any]] = {"indirection": ind, "lhs_packed": lhs_packed}
    if variant == "pqs8":
        params = kai_rhs_pack_qsi8cx_params(izp, float(inputs["scale_multiplier"]))
        packer = kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(svl)
        rhs_packed = np.zeros(packer.get_rhs_packed_size(cout, ks, kc), dtype=np.uint8)
        w_kn = np.ascontiguousarray(f.reshape(cout, ks * kc).T)
        packer.run_rhs_imatmul_pack(cout, ks, kc, cout, w_kn, b, inputs["scale"], rhs_packed, params)
        rq = kai_matmul_requantize32_params(
            int(inputs["out_min"]), int(inputs["out_max"]), int(inputs["out_zero_point"])
        )
    else:
        rhs_packed = _pack_weights(cfg, variant, svl, f, b, ks, kc, None, 0)
        lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
    res["rhs_packed"] = rhs_packed
    for key, cls in (("out", cfg.sme2), ("out_sme1", cfg.sme1)):
        kern = cls(svl)
        dst = np.zeros((1, geom.hout, geom.wout, cout), dtype=kern.dst_dtype)
        if variant == "pqs8":
            kern.run_matmul(m, cout, k, lhs_packed, rhs_packed, dst, cout, 1, rq)  # type: ignore[call-arg, arg-type]
        else:
            item = cfg.elem.itemsize
            kern.run_matmul(m, cout, k, lhs_packed, rhs_packed, dst, cout * item, item, lo, hi)
        res[key] = dst
    tp, sp = cfg.sme2(svl).tile_params(), cfg.sme1(svl).tile_params()
    meta = {
        "H": h,
        "W": w,
        "Cin": cin,
        "Cout": cout,
        "KH": kh,
        "KW": kw,
        "Hout": geom.hout,
        "Wout": geom.wout,
        "M": m,
        "N": cout,
        "K": k,
        "ks": ks,
        "kc": kc,
        "mr": tp.mr,
        "nr": tp.nr,
        "kr": tp.kr,
        "sr": tp.sr,
        "m_step": tp.m_step,
        "n_step": tp.n_step,
        "sme1_mr": sp.mr,
        "sme1_nr": sp.nr,
        "lhs_packer_mr": mr,
    }
    res.update({f"meta_{key}": np.array(v, dtype=np.int64) for key, v in meta.items()})
    return res


#: Golden variant ids this module reproduces.
GOLDEN = {"pf32_igemm": reproduce_golden, "pf16_igemm": reproduce_golden, "pqs8_qc8w_igemm": reproduce_golden}
