"""The blocked layouts of KleidiAI's SME packers, shared by the variants that use them.

LHS ``x<bits>p<mr>x<kr>`` (``kai_lhs_pack_f32p2vlx1_f32_sme``, ``kai_lhs_pack_x16p2vlx2_x16_sme``,
``kai_lhs_pack_x8p2vlx4_x8_sme``), with ``Kp = roundup(K, kr)``::

    A[m][k] at element  (m // mr) * mr * Kp  +  (k // kr) * mr * kr  +  (m % mr) * kr  +  k % kr

    one mr-row block:   k-group 0            k-group 1
                       [r0 k0..kr-1][r1 ..]..[r0 kr..2kr-1][r1 ..] ...

RHS with a leading bias row per nr-column block (``..p<nr>x<kr>b..``)::

    block g (columns g*nr .. g*nr+nr-1):
        bias[0..nr-1]                                  (bias element type)
        W[k][g*nr + j] at  nr + (k // kr) * nr * kr + j * kr + k % kr   (data element type)

Padding (rows past M, columns past N, k past K) is written as zero by these packers.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .._buffers import (
    Buffer,
    as_u8,
    check_count,
    matrix_view,
    read_matrix,
    require_bytes,
    roundup,
    writable_u8,
)
from ..kai.interface import Ukernel

__all__ = [
    "SmeLhsPacker",
    "SmeRhsBiasPacker",
    "block_lhs",
    "read_lhs_blocks",
    "read_rhs_bias_blocks",
    "unblock_lhs",
    "unblock_rhs",
    "write_rhs_blocks",
]


def block_lhs(a: NDArray[Any], mr: int, kr: int) -> NDArray[Any]:
    """``a`` [M, K] in the blocked LHS order, zero padded: shape [ceil(M/mr), Kp/kr, mr, kr]."""
    m, k = a.shape
    mp, kp = roundup(m, mr), roundup(k, kr)
    padded = np.zeros((mp, kp), dtype=a.dtype)
    padded[:m, :k] = a
    out: NDArray[Any] = padded.reshape(mp // mr, mr, kp // kr, kr).transpose(0, 2, 1, 3)
    return out


def unblock_lhs(blocks: NDArray[Any], m: int, mr: int, kr: int) -> NDArray[Any]:
    """Inverse of :func:`block_lhs` from a flat element array: [m, Kp] (K padding included)."""
    nb = roundup(m, mr) // mr
    b = blocks.reshape(nb, -1, mr, kr)
    out: NDArray[Any] = b.transpose(0, 2, 1, 3).reshape(nb * mr, -1)[:m]
    return out


_UNIT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def write_rhs_blocks(dst: NDArray[np.uint8], w_kn: NDArray[Any], nr: int, kr: int) -> None:
    """Store ``w_kn`` [K, N] as zero-padded blocks [ceil(N/nr)][Kp/kr][nr][kr] into ``dst``
    [nb, bytes per block] (rows may be strided): element (b, g, j, r) = W[g*kr + r, b*nr + j].

    One copy: the packed blocks are viewed with each column's kr lanes as one unsigned integer,
    so numpy moves them as single elements.
    ``w_kn`` is typically the transposed view of an nxk matrix; it is zero padded first only when
    N or K is not a multiple of nr or kr.
    """
    k, n = w_kn.shape
    np_, kp = roundup(n, nr), roundup(k, kr)
    if (np_, kp) != (n, k):
        padded = np.zeros((kp, np_), dtype=w_kn.dtype)
        padded[:k, :n] = w_kn
        w_kn = padded
    unit = _UNIT[w_kn.itemsize * kr]
    nb = np_ // nr
    # [Kp/kr, kr, N] -> [Kp/kr, N, kr]: a (k group, column) unit is kr contiguous lanes.
    groups = w_kn.reshape(kp // kr, kr, np_).transpose(0, 2, 1)
    if kr > 1 and groups.strides[-1] != w_kn.itemsize:  # kxn source: interleave the k pairs first
        groups = np.ascontiguousarray(groups)
    src = groups.view(unit)[..., 0]  # [Kp/kr, N]
    view = dst.view(unit).reshape(nb, kp // kr, nr)
    view[...] = src.reshape(kp // kr, nb, nr).transpose(1, 0, 2)


def unblock_rhs(blocks: NDArray[Any]) -> NDArray[Any]:
    """Inverse of :func:`write_rhs_blocks` on its blocks [nb, Kp/kr, nr, kr]: [Kp, Nb*nr]."""
    nb, kg, nr, kr = blocks.shape
    out: NDArray[Any] = blocks.transpose(1, 3, 0, 2).reshape(kg * kr, nb * nr)
    return out


class SmeLhsPacker(Ukernel):
    """``kai_lhs_pack_x<bits>p2vlx<kr>_x<bits>_sme``: copy the LHS into mr-row blocks."""

    #: Element type read and written.
    elem: ClassVar[np.dtype[Any]]
    #: kr of the layout (sr is always 1).
    kr: ClassVar[int]

    def native_mr(self) -> int:
        """``kai_get_mr_<packer>``: 2 * (SVL / bits) / kr."""
        return 2 * (self.svl // (8 * self.elem.itemsize)) // self.kr

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
        return m_idx * roundup(k, self.kr) * self.elem.itemsize

    def get_lhs_packed_size(self, m: int, k: int, mr: int, kr: int, sr: int) -> int:
        m, k = check_count("m", m), check_count("k", k)
        self._check_params(mr, kr, sr, "get_lhs_packed_size")
        return roundup(m, mr) * roundup(k, self.kr) * self.elem.itemsize

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
            f"kai_run_{self.name}",
        )
        out = writable_u8(lhs_packed, "lhs_packed")
        data = block_lhs(a, mr, self.kr).tobytes()
        require_bytes(out, len(data), "lhs_packed", f"kai_get_lhs_packed_size_{self.name}")
        out[: len(data)] = np.frombuffer(data, dtype=np.uint8)

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


class SmeRhsBiasPacker(Ukernel):
    """``kai_rhs_pack_{nxk,kxn}_..._sme`` with a bias row per block (pf32, pf16)."""

    elem: ClassVar[np.dtype[Any]]
    bias_elem: ClassVar[np.dtype[Any]]
    kr: ClassVar[int]
    #: ``"nxk"``: rhs is N rows of K; ``"kxn"``: K rows of N.
    layout: ClassVar[str]

    def get_n_step(self) -> int:
        """nr = n_step = 2 * (SVL / bits) / kr."""
        return 2 * (self.svl // (8 * self.elem.itemsize)) // self.kr

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
        k = check_count("k", k)
        return self.get_n_step() * (self.bias_elem.itemsize + roundup(k, self.kr) * self.elem.itemsize)

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx = self._check_n_idx(n_idx, "get_rhs_packed_offset")
        return (n_idx // self.get_n_step()) * self.get_rhs_packed_stride(k)

    def get_rhs_packed_size(self, n: int, k: int) -> int:
        n = check_count("n", n)
        return roundup(n, self.get_n_step()) // self.get_n_step() * self.get_rhs_packed_stride(k)

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
        # A view, not a copy: write_rhs_blocks reads it once (zero padding copies it only if needed).
        if self.layout == "nxk":
            w_kn = matrix_view(src, n, k, stride, self.elem, "rhs", f"kai_run_{self.name}").T
        else:
            w_kn = matrix_view(src, k, n, stride, self.elem, "rhs", f"kai_run_{self.name}")
        b = read_matrix(
            as_u8(bias, "bias"), 1, n, n * self.bias_elem.itemsize, self.bias_elem, "bias", f"kai_run_{self.name}"
        )[0]
        out = writable_u8(rhs_packed, "rhs_packed")
        require_bytes(out, self.get_rhs_packed_size(n, k), "rhs_packed", f"kai_get_rhs_packed_size_{self.name}")
        nr_ = self.get_n_step()
        nb = roundup(n, nr_) // nr_
        bias_rows = np.zeros(nb * nr_, dtype=self.bias_elem)
        bias_rows[:n] = b
        stride_b = self.get_rhs_packed_stride(k)
        packed = out[: nb * stride_b].reshape(nb, stride_b)
        nbias = nr_ * self.bias_elem.itemsize
        packed[:, :nbias] = bias_rows.reshape(nb, nr_).view(np.uint8)
        # One transposing copy straight into the buffer (the kr lanes of a column move as one unit).
        write_rhs_blocks(packed[:, nbias:], w_kn, nr_, self.kr)

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


def read_rhs_bias_blocks(
    rhs_u8: NDArray[np.uint8], n: int, k: int, nr: int, kr: int, elem: Any, bias_elem: Any
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Decode a bias-led packed RHS: (bias[n], W[Kp, n]) for the first ceil(n/nr) blocks."""
    elem, bias_elem = np.dtype(elem), np.dtype(bias_elem)
    kp = roundup(k, kr)
    nb = roundup(n, nr) // nr
    stride = nr * (bias_elem.itemsize + kp * elem.itemsize)
    raw = rhs_u8[: nb * stride].reshape(nb, stride)
    nbias = nr * bias_elem.itemsize
    bias = np.ascontiguousarray(raw[:, :nbias]).view(bias_elem).reshape(-1)[:n]
    data = np.ascontiguousarray(raw[:, nbias:]).view(elem).reshape(nb, kp // kr, nr, kr)
    return bias, unblock_rhs(data)[:, :n]


def read_lhs_blocks(lhs_u8: NDArray[np.uint8], m: int, k: int, mr: int, kr: int, elem: Any) -> NDArray[Any]:
    """Decode a blocked packed LHS: A[m, Kp]."""
    elem = np.dtype(elem)
    kp = roundup(k, kr)
    nbytes = roundup(m, mr) * kp * elem.itemsize
    return unblock_lhs(np.ascontiguousarray(lhs_u8[:nbytes]).view(elem), m, mr, kr)
