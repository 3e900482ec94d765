"""KleidiAI's SME LHS packers ``kai_lhs_pack_{f32p2vlx1_f32,x16p2vlx2_x16,x8p2vlx4_x8}_sme``.

They copy the LHS into mr-row blocks (``mr = 2 VL / kr``); the packed format is
:class:`kleidiref.kai.layouts.SmeLhsLayout`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..._buffers import (
    Buffer,
    as_u8,
    check_count,
    read_matrix,
    require_bytes,
    writable_u8,
)
from ..interface import Ukernel
from ..layouts import SmeLhsLayout, sme_2vl

__all__ = [
    "SmeLhsPacker",
    "kai_lhs_pack_f32p2vlx1_f32_sme",
    "kai_lhs_pack_x8p2vlx4_x8_sme",
    "kai_lhs_pack_x16p2vlx2_x16_sme",
]


class SmeLhsPacker(Ukernel):
    """``kai_lhs_pack_x<bits>p2vlx<kr>_x<bits>_sme``: copy the LHS into mr-row blocks."""

    #: Element type read and written.
    elem: ClassVar[np.dtype[Any]]
    #: kr of the layout (sr is always 1).
    kr: ClassVar[int]

    def native_mr(self) -> int:
        """``kai_get_mr_<packer>``: 2 * (SVL / bits) / kr."""
        return sme_2vl(self.svl, self.elem.itemsize, self.kr)

    def lhs_layout(self, m: int, k: int) -> SmeLhsLayout:
        """The packed format of an m x k LHS."""
        return SmeLhsLayout(self.elem, self.native_mr(), self.kr, m, k)

    def _check_params(self, mr: int, kr: int, sr: int, fn: str) -> None:
        self._assume(mr == self.native_mr(), f"mr == {self.native_mr()}", fn)
        self._assume(kr == self.kr, f"kr == {self.kr}", fn)
        self._assume(sr == 1, "sr == 1", fn)

    def get_m_step(self, mr: int) -> int:
        self._assume(check_count("mr", mr) == self.native_mr(), f"mr == {self.native_mr()}", "get_m_step")
        return mr

    def get_lhs_offset(self, m_idx: int, lhs_stride_row: int) -> int:
        m_idx = check_count("m_idx", m_idx)
        self._assume(m_idx % self.native_mr() == 0, "m_idx % mr == 0", "get_lhs_offset")
        return m_idx * check_count("lhs_stride_row", lhs_stride_row)

    def get_lhs_packed_offset(self, m_idx: int, k: int, mr: int, kr: int, sr: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._check_params(mr, kr, sr, "get_lhs_packed_offset")
        self._assume(m_idx % mr == 0, "m_idx % m_step == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def get_lhs_packed_size(self, m: int, k: int, mr: int, kr: int, sr: int) -> int:
        m, k = check_count("m", m), check_count("k", k)
        self._check_params(mr, kr, sr, "get_lhs_packed_size")
        return self.lhs_layout(m, k).size()

    def run_lhs_pack(
        self,
        m: int,
        k: int,
        mr: int,
        kr: int,
        sr: int,
        m_idx_start: int,
        lhs: Buffer,
        lhs_stride_row: int,
        lhs_packed: Buffer,
    ) -> None:
        """``kai_run_<packer>``: pack ``m`` rows of ``k`` elements (row stride in bytes)."""
        m, k = check_count("m", m), check_count("k", k)
        self._check_params(mr, kr, sr, "run_lhs_pack")
        self._assume(check_count("m_idx_start", m_idx_start) == 0, "m_idx_start == 0", "run_lhs_pack")
        if isinstance(lhs, np.ndarray) and lhs.dtype != self.elem:
            raise TypeError(f"lhs must be {self.elem} for {self.name}, got {lhs.dtype}")
        a = read_matrix(
            as_u8(lhs, "lhs"),
            m,
            k,
            check_count("lhs_stride_row", lhs_stride_row),
            self.elem,
            "lhs",
            f"{self.c_name('run')}",
        )
        out = writable_u8(lhs_packed, "lhs_packed")
        data = self.lhs_layout(m, k).encode(a)
        require_bytes(out, data.size, "lhs_packed", f"kai_get_lhs_packed_size_{self.name}")
        out[: data.size] = data

    def pack(self, lhs: NDArray[Any]) -> NDArray[np.uint8]:
        """Pack a whole [M, K] array (contiguous rows) with the native mr; returns the bytes."""
        if not isinstance(lhs, np.ndarray) or lhs.ndim != 2:
            raise ValueError(f"lhs must be a 2-D numpy array [M, K] of {self.elem}")
        a = np.ascontiguousarray(lhs)
        m, k = a.shape
        mr = self.native_mr()
        out = np.zeros(self.get_lhs_packed_size(m, k, mr, self.kr, 1), dtype=np.uint8)
        self.run_lhs_pack(m, k, mr, self.kr, 1, 0, a, k * a.itemsize, out)
        return out


class kai_lhs_pack_f32p2vlx1_f32_sme(SmeLhsPacker):
    """LHS packer: mr = 2 * VLs rows per block, kr = sr = 1."""

    name = "kai_lhs_pack_f32p2vlx1_f32_sme"
    variant = "pf32_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_lhs_pack_f32p2vlx1_f32_sme.c"
    elem = np.dtype(np.float32)
    kr = 1


class kai_lhs_pack_x16p2vlx2_x16_sme(SmeLhsPacker):
    """LHS packer: mr = VLh rows per block, kr = 2 (K padded to even with 0)."""

    name = "kai_lhs_pack_x16p2vlx2_x16_sme"
    variant = "pf16_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_lhs_pack_x16p2vlx2_x16_sme.c"
    elem = np.dtype(np.float16)
    kr = 2


class kai_lhs_pack_x8p2vlx4_x8_sme(SmeLhsPacker):
    """LHS packer: raw int8 rows in blocks of mr = 2 VLs rows, kr = 4."""

    name = "kai_lhs_pack_x8p2vlx4_x8_sme"
    variant = "pqs8_qc8w_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_lhs_pack_x8p2vlx4_x8_sme.c"
    elem = np.dtype(np.int8)
    kr = 4
