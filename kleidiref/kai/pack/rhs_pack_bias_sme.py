"""KleidiAI's SME RHS packers with a bias row per block: ``kai_rhs_pack_{nxk,kxn}_f32p2vlx1biasf32_f32_f32_sme``
and ``kai_rhs_pack_{nxk,kxn}_x16p2vlx2b_x16_x16_sme``.

nr = 2 VL / kr columns per block; the packed format is :class:`kleidiref.kai.layouts.SmeBiasRhsLayout`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..._buffers import (
    Buffer,
    as_u8,
    check_count,
    matrix_view,
    read_matrix,
    require_bytes,
    writable_u8,
)
from ..interface import Ukernel
from ..layouts import SmeBiasRhsLayout, sme_2vl

__all__ = [
    "SmeRhsBiasPacker",
    "kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme",
    "kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme",
    "kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme",
]


class SmeRhsBiasPacker(Ukernel):
    """``kai_rhs_pack_{nxk,kxn}_..._sme`` with a bias row per block (pf32, pf16)."""

    elem: ClassVar[np.dtype[Any]]
    bias_elem: ClassVar[np.dtype[Any]]
    kr: ClassVar[int]
    #: ``"nxk"``: rhs is N rows of K; ``"kxn"``: K rows of N.
    layout: ClassVar[str]

    def get_n_step(self) -> int:
        """nr = n_step = 2 * (SVL / bits) / kr."""
        return sme_2vl(self.svl, self.elem.itemsize, self.kr)

    def rhs_layout(self, n: int, k: int) -> SmeBiasRhsLayout:
        """The packed format of an n x k RHS (``layout`` is the source order, nxk or kxn)."""
        return SmeBiasRhsLayout(self.elem, self.bias_elem, self.get_n_step(), self.kr, n, k)

    def _check_n_idx(self, n_idx: int, fn: str) -> int:
        n_idx = check_count("n_idx", n_idx)
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", fn)
        return n_idx

    def get_rhs_offset(self, n_idx: int, rhs_stride: int) -> int:
        """Byte offset of column ``n_idx`` in the unpacked RHS."""
        n_idx = self._check_n_idx(n_idx, "get_rhs_offset")
        rhs_stride = check_count("rhs_stride", rhs_stride)
        return n_idx * rhs_stride if self.layout == "nxk" else n_idx * self.elem.itemsize

    def get_bias_offset(self, n_idx: int) -> int:
        return check_count("n_idx", n_idx) * self.bias_elem.itemsize

    def get_rhs_packed_stride(self, k: int) -> int:
        """Bytes of one nr-column block: nr * (bias + roundup(k, kr) * elem)."""
        return self.rhs_layout(0, check_count("k", k)).stride

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx = self._check_n_idx(n_idx, "get_rhs_packed_offset")
        return self.rhs_layout(0, check_count("k", k)).offset(n_idx)

    def get_rhs_packed_size(self, n: int, k: int) -> int:
        return self.rhs_layout(check_count("n", n), check_count("k", k)).size()

    def run_rhs_pack(
        self,
        num_groups: int,
        n: int,
        k: int,
        nr: int,
        kr: int,
        sr: int,
        rhs_stride: int,
        rhs: Buffer,
        bias: Buffer | None,
        scale: Buffer | None,
        rhs_packed: Buffer,
        extra_bytes: int,
        params: object | None,
    ) -> None:
        """``kai_run_<packer>``: rhs is N x K (nxk) or K x N (kxn) with a byte row stride."""
        fn = "run_rhs_pack"
        n, k = check_count("n", n), check_count("k", k)
        self._assume(check_count("num_groups", num_groups) == 1, "num_groups == 1", fn)
        self._assume(check_count("nr", nr) == self.get_n_step(), f"nr == {self.get_n_step()}", fn)
        self._assume(check_count("kr", kr) == self.kr, f"kr == {self.kr}", fn)
        self._assume(check_count("sr", sr) == 1, "sr == 1", fn)
        self._assume(bias is not None, "bias != NULL", fn)
        self._assume(scale is None, "scale == NULL", fn)
        self._assume(check_count("extra_bytes", extra_bytes) == 0, "extra_bytes == 0", fn)
        self._assume(params is None, "params == NULL", fn)
        for label, arr, dt in (("rhs", rhs, self.elem), ("bias", bias, self.bias_elem)):
            if isinstance(arr, np.ndarray) and arr.dtype != dt:
                raise TypeError(f"{label} must be {dt} for {self.name}, got {arr.dtype}")
        stride = check_count("rhs_stride", rhs_stride)
        src = as_u8(rhs, "rhs")
        # A view, not a copy: the layout's encode reads it once (zero padding copies it only if needed).
        if self.layout == "nxk":
            w_kn = matrix_view(src, n, k, stride, self.elem, "rhs", f"{self.c_name('run')}").T
        else:
            w_kn = matrix_view(src, k, n, stride, self.elem, "rhs", f"{self.c_name('run')}")
        b = read_matrix(
            as_u8(bias, "bias"), 1, n, n * self.bias_elem.itemsize, self.bias_elem, "bias", f"{self.c_name('run')}"
        )[0]
        out = writable_u8(rhs_packed, "rhs_packed")
        fmt = self.rhs_layout(n, k)
        require_bytes(out, fmt.size(), "rhs_packed", f"kai_get_rhs_packed_size_{self.name}")
        fmt.encode_into(out, w_kn, b)

    def pack(self, rhs: NDArray[Any], bias: NDArray[Any] | None = None) -> NDArray[np.uint8]:
        """Pack a whole contiguous RHS ([N, K] for nxk, [K, N] for kxn); a None bias is zeros."""
        if not isinstance(rhs, np.ndarray) or rhs.ndim != 2:
            raise ValueError(f"rhs must be a 2-D numpy array of {self.elem}")
        w = np.ascontiguousarray(rhs)
        n, k = w.shape if self.layout == "nxk" else w.shape[::-1]
        if bias is None:
            # Note: XNNPACK substitutes a zero bias (the SME packers require bias != NULL).
            bias = np.zeros(n, dtype=self.bias_elem)
        if not isinstance(bias, np.ndarray) or bias.shape != (n,):
            raise ValueError(f"bias must be a numpy array of shape ({n},)")
        out = np.zeros(self.get_rhs_packed_size(n, k), dtype=np.uint8)
        self.run_rhs_pack(
            1,
            n,
            k,
            self.get_n_step(),
            self.kr,
            1,
            w.shape[1] * w.itemsize,
            w,
            np.ascontiguousarray(bias),
            None,
            out,
            0,
            None,
        )
        return out


class kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(SmeRhsBiasPacker):
    """RHS packer, weights N x K (XNNPACK's default): nr = 2 * VLs, f32 bias row."""

    name = "kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme"
    variant = "pf32_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme.c"
    elem = np.dtype(np.float32)
    bias_elem = np.dtype(np.float32)
    kr = 1
    layout = "nxk"


class kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme(SmeRhsBiasPacker):
    """RHS packer, weights K x N (``XNN_FLAG_TRANSPOSE_WEIGHTS``): same bytes as the nxk one."""

    name = "kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme"
    variant = "pf32_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme.c"
    elem = np.dtype(np.float32)
    bias_elem = np.dtype(np.float32)
    kr = 1
    layout = "kxn"


class kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme(SmeRhsBiasPacker):
    """RHS packer, weights N x K: nr = VLh, kr = 2, f16 bias row."""

    name = "kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme"
    variant = "pf16_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme.c"
    elem = np.dtype(np.float16)
    bias_elem = np.dtype(np.float16)
    kr = 2
    layout = "nxk"


class kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme(SmeRhsBiasPacker):
    """RHS packer, weights K x N: same bytes as the nxk packer."""

    name = "kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme"
    variant = "pf16_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme.c"
    elem = np.dtype(np.float16)
    bias_elem = np.dtype(np.float16)
    kr = 2
    layout = "kxn"
