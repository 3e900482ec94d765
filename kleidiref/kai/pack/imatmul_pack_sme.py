"""The KleidiAI imatmul packers XNNPACK's IGEMM path runs: ``kai_lhs_imatmul_pack_*`` (the LHS,
gathered through the indirection buffer's pointers) and ``kai_rhs_imatmul_pack_kxn_*`` (the
weights, with the same per-chunk K padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..._buffers import Buffer, as_u8, check_count, read_matrix, require_bytes, roundup, writable_u8
from ..interface import Ukernel
from ..params import kai_rhs_pack_qsi8cx_params
from .rhs_pack_bias_sme import (
    SmeRhsBiasPacker,
    kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme,
    kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme,
)
from .rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme import kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme

__all__ = [
    "F16",
    "F32",
    "I8",
    "I32",
    "ImatmulLhsPacker",
    "ImatmulRhsBiasPacker",
    "ImatmulRhsPacker",
    "kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme",
    "kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme",
    "kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme",
    "kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme",
    "kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme",
]

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)
I8 = np.dtype(np.int8)
I32 = np.dtype(np.int32)
_PACK = "kai/ukernels/matmul/pack/"


# --------------------------------------------------------------------------------------------
# LHS: kai_lhs_imatmul_pack_*
# --------------------------------------------------------------------------------------------


class ImatmulLhsPacker(Ukernel):
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
                f"lhs_ptrs holds {ptrs.size} pointers but {self.c_name('run')}(m={m}, "
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
                    f"{mem.size}-byte memory in {self.c_name('run')}"
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


class kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme(ImatmulLhsPacker):
    """imatmul LHS packer, 32-bit elements: mr = 2 * VLs, kr = 1 (pf32)."""

    name = "kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme"
    variant = "pf32_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F32
    kr = 1


class kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme(ImatmulLhsPacker):
    """imatmul LHS packer, 16-bit elements: mr = VLh, kr = 2 (pf16; odd chunks padded with 0)."""

    name = "kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme"
    variant = "pf16_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F16
    kr = 2


class kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme(ImatmulLhsPacker):
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


class ImatmulRhsPacker(Ukernel):
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
        return read_matrix(as_u8(rhs, "rhs"), kcc * kcl, n, stride, self.elem, "rhs", f"{self.c_name('run')}")


class ImatmulRhsBiasPacker(ImatmulRhsPacker):
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
        b = read_matrix(as_u8(bias, "bias"), 1, n, n * self.elem.itemsize, self.elem, "bias", f"{self.c_name('run')}")
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


class kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme(ImatmulRhsBiasPacker):
    """imatmul RHS packer for pf32: nr = 2 * VLs, kr = 1, f32 bias row (no chunk padding)."""

    name = "kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme"
    variant = "pf32_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F32
    kr = 1
    extra_per_col = 4
    plain = kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme


class kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme(ImatmulRhsBiasPacker):
    """imatmul RHS packer for pf16: nr = VLh, kr = 2, f16 bias row; odd chunks padded with 0."""

    name = "kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme"
    variant = "pf16_igemm"
    isa = "sme"
    source = _PACK + name + ".c"
    elem = F16
    kr = 2
    extra_per_col = 2
    plain = kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme


class kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(ImatmulRhsPacker):
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
        plain = kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(self.svl)
        k = w.shape[0]
        tmp = np.array(out[:size])  # bytes the packer does not write (bias' when K == 0) stay as they were
        plain.run_rhs_pack(
            1, n, k, self.get_n_step(), self.kr, 1, n, np.ascontiguousarray(w), bias, scale, tmp, 0, params
        )
        out[:size] = tmp
