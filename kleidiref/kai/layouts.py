"""The packed formats of the KleidiAI packers, one class per format: the single home of each layout.

A layout object is one packed buffer's geometry (its dimensions and blocking). It offers
``size()`` and ``offset(idx)`` (the packers' and kernels' size/offset functions), ``encode`` /
``decode`` (what the packer writes, what the kernel reads) and ``describe(offset)``: what the
byte at ``offset`` holds (:class:`ByteInfo`: row or column, k, field, nibble, padding), which
:mod:`kleidiref.testing` uses to name the first differing byte of a packed buffer.

Formats (``Kp = roundup(K, kr)``, ``K32 = roundup(K, 32)``; offsets in elements or bytes):

* :class:`SmeLhsLayout`, ``x<bits>p2vlx<kr>`` (``kai_lhs_pack_{f32p2vlx1_f32,x16p2vlx2_x16,
  x8p2vlx4_x8}_sme``): ``A[m][k]`` at element ``(m // mr) mr Kp + (k // kr) mr kr + (m % mr) kr
  + k % kr``; rows past M and k past K are zero.
* :class:`SmeBiasRhsLayout`, ``x32p2vlx1biasf32`` / ``x16p2vlx2b`` (``kai_rhs_pack_{nxk,kxn}_
  {f32p2vlx1biasf32_f32_f32,x16p2vlx2b_x16_x16}_sme``): per nr-column block, ``nr`` bias
  elements, then ``W[k][n]`` at ``(k // kr) nr kr + j kr + k % kr``; padding is zero.
* :class:`Qai8dxpLayout` (``kai_lhs_quant_pack_qai8dxp_f32``): per mr-row block of
  ``mr (K32 + 8)`` bytes, int8 codes at ``(k // kbl) mr kbl + r kbl + k % kbl`` (``kbl = kr / sr``;
  K padding repeats the code of k = K-1), then ``mr`` int32 ``-zp``, then ``mr`` f32 ``dq``.
* :class:`Qsi8cxpLayout` (``kai_rhs_pack_{nxk,kxn}_qsi8cxp_qsi8cx_neon``): per nr-column block
  of ``nr (K32 + 12)`` bytes, int8 ``W`` at ``(k // kr) nr kr + j kr + k % kr``, then ``nr``
  int32 row sums, ``nr`` f32 scales, ``nr`` f32 biases (columns past N replicate N-1).
* :class:`Qsi8cxp2vlx4sbLayout` (``kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme``): per
  nr-column block, ``nr`` int32 ``bias'``, int8 ``W`` (kr 4) as above over ``K4``, ``nr`` f32
  ``scale'``.
* :class:`Qsi4c32pLayout` (``kai_rhs_pack_{nxk,kxn}_qsi4c32p{,s1s0nrx4}_qsu4c32s1s0*``): per
  nr-column block, for each quant block of ``bl`` k: ``nr bl / 2`` bytes of nibble pairs then
  ``nr`` bf16 scales; after the blocks ``nr`` f32 row sums and ``nr`` f32 biases.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import roundup

__all__ = [
    "ByteInfo",
    "Qai8dxpLayout",
    "Qsi4c32pLayout",
    "Qsi4cxpLayout",
    "Qsi8cxp2vlx4sbLayout",
    "Qsi8cxpLayout",
    "SmeBiasRhsLayout",
    "SmeLhsLayout",
    "signed_nibbles",
    "sme_2vl",
]


def sme_2vl(svl: int, itemsize: int, kr: int) -> int:
    """``2 * VL / kr``: the mr (LHS) or nr (RHS) of the SME packers, VL in elements of ``itemsize``."""
    return 2 * (svl // (8 * itemsize)) // kr


@dataclasses.dataclass(frozen=True)
class ByteInfo:
    """What one byte of a packed buffer holds; ``str()`` is a sentence for error messages."""

    #: ``data``, ``bias``, ``scale``, ``row-sum`` or ``zero-point``.
    field: str
    text: str
    #: LHS row (m) or RHS column (n) the byte belongs to, when it has one.
    row: int | None = None
    col: int | None = None
    #: The k of a data byte (for a nibble pair: the k of the low nibble).
    k: int | None = None
    #: ``low`` / ``high`` nibble k's for 4-bit data: ``(k_low, k_high)``.
    nibbles: tuple[int, int] | None = None
    #: The quant block of blockwise data and scales.
    block: int | None = None
    #: True for padding (rows past M, columns past N, k past K).
    padding: bool = False

    def __str__(self) -> str:
        return self.text


def _u8(x: NDArray[Any]) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = np.ascontiguousarray(x).reshape(-1).view(np.uint8)
    return out


_UNIT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


# ---------------------------------------------------------------------------------------------
# SME float / int8 LHS and the bias-led float RHS
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SmeLhsLayout:
    """``x<bits>p<mr>x<kr>``: an m x k LHS in mr-row blocks, k in groups of kr (zero padded)."""

    elem: np.dtype[Any]
    mr: int
    kr: int
    m: int
    k: int

    @classmethod
    def for_svl(cls, elem: Any, kr: int, svl: int, m: int, k: int) -> SmeLhsLayout:
        """The layout of the SME packer with mr = 2 VL / kr at ``svl``."""
        dt = np.dtype(elem)
        return cls(dt, sme_2vl(svl, dt.itemsize, kr), kr, m, k)

    @property
    def kp(self) -> int:
        return roundup(self.k, self.kr)

    def size(self) -> int:
        return roundup(self.m, self.mr) * self.kp * self.elem.itemsize

    def offset(self, m_idx: int) -> int:
        """Byte offset of row ``m_idx`` (a multiple of mr)."""
        return m_idx * self.kp * self.elem.itemsize

    def encode(self, a: NDArray[Any]) -> NDArray[np.uint8]:
        """The packed bytes of ``a`` [m, k]."""
        mp = roundup(self.m, self.mr)
        padded = np.zeros((mp, self.kp), dtype=self.elem)
        padded[: self.m, : self.k] = a
        blocks = padded.reshape(mp // self.mr, self.mr, self.kp // self.kr, self.kr).transpose(0, 2, 1, 3)
        return _u8(blocks)

    def decode(self, buf: NDArray[np.uint8]) -> NDArray[Any]:
        """A[m, Kp] (K padding included) from the packed bytes."""
        nb = roundup(self.m, self.mr) // self.mr
        flat = np.ascontiguousarray(buf[: self.size()]).view(self.elem)
        out: NDArray[Any] = flat.reshape(nb, -1, self.mr, self.kr).transpose(0, 2, 1, 3).reshape(nb * self.mr, -1)
        return out[: self.m]

    def describe(self, offset: int) -> ByteInfo:
        es = self.elem.itemsize
        b, rem = divmod(offset // es, self.mr * self.kp)
        kb, rem = divmod(rem, self.mr * self.kr)
        r, kk = divmod(rem, self.kr)
        row, col = b * self.mr + r, kb * self.kr + kk
        pad = row >= self.m or col >= self.k
        note = " (padding: must be 0)" if pad else ""
        text = f"data (row {row}, k {col}){note}, byte {offset % es} of the element"
        return ByteInfo("data", text, row=row, k=col, padding=pad)


@dataclasses.dataclass(frozen=True)
class SmeBiasRhsLayout:
    """``..p<nr>x<kr>b..``: an n x k RHS in nr-column blocks, each led by its nr biases."""

    elem: np.dtype[Any]
    bias_elem: np.dtype[Any]
    nr: int
    kr: int
    n: int
    k: int

    @classmethod
    def for_svl(cls, elem: Any, bias_elem: Any, kr: int, svl: int, n: int, k: int) -> SmeBiasRhsLayout:
        """The layout of the SME packer with nr = 2 VL / kr at ``svl``."""
        dt = np.dtype(elem)
        return cls(dt, np.dtype(bias_elem), sme_2vl(svl, dt.itemsize, kr), kr, n, k)

    @property
    def kp(self) -> int:
        return roundup(self.k, self.kr)

    @property
    def blocks(self) -> int:
        return roundup(self.n, self.nr) // self.nr

    @property
    def stride(self) -> int:
        """Bytes of one nr-column block: nr * (bias + Kp elements)."""
        return self.nr * (self.bias_elem.itemsize + self.kp * self.elem.itemsize)

    def size(self) -> int:
        return self.blocks * self.stride

    def offset(self, n_idx: int) -> int:
        """Byte offset of column ``n_idx`` (a multiple of nr)."""
        return n_idx // self.nr * self.stride

    def encode_into(self, out: NDArray[np.uint8], w_kn: NDArray[Any], bias: NDArray[Any]) -> None:
        """Write ``w_kn`` [k, n] (any strides, e.g. an nxk matrix transposed) and ``bias`` [n].

        One transposing copy of W straight into ``out``: the packed blocks are viewed with each
        column's kr lanes as one unsigned integer, so numpy moves them as single elements; W is
        zero padded first only when N or K is not a multiple of nr or kr.
        """
        nr, kr, nb = self.nr, self.kr, self.blocks
        bias_rows = np.zeros(nb * nr, dtype=self.bias_elem)
        bias_rows[: self.n] = bias
        packed = out[: self.size()].reshape(nb, self.stride)
        nbias = nr * self.bias_elem.itemsize
        packed[:, :nbias] = bias_rows.reshape(nb, nr).view(np.uint8)
        k, n = w_kn.shape
        np_, kp = nb * nr, self.kp
        if (np_, kp) != (n, k):
            padded = np.zeros((kp, np_), dtype=w_kn.dtype)
            padded[:k, :n] = w_kn
            w_kn = padded
        unit = _UNIT[w_kn.itemsize * kr]
        # [Kp/kr, kr, N] -> [Kp/kr, N, kr]: a (k group, column) unit is kr contiguous lanes.
        groups = w_kn.reshape(kp // kr, kr, np_).transpose(0, 2, 1)
        if kr > 1 and groups.strides[-1] != w_kn.itemsize:  # kxn source: interleave the k pairs first
            groups = np.ascontiguousarray(groups)
        src = groups.view(unit)[..., 0]  # [Kp/kr, N]
        view = packed[:, nbias:].view(unit).reshape(nb, kp // kr, nr)
        view[...] = src.reshape(kp // kr, nb, nr).transpose(1, 0, 2)

    def encode(self, w_kn: NDArray[Any], bias: NDArray[Any]) -> NDArray[np.uint8]:
        out = np.zeros(self.size(), np.uint8)
        self.encode_into(out, w_kn, bias)
        return out

    def block_view(self, buf: NDArray[np.uint8]) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(bias[n], W)`` with W a zero-copy view [Kp/kr, kr, nb, nr] of the packed blocks:
        ``W[k // kr, k % kr, b, j]`` is weight (k, b*nr + j) (columns past n are padding)."""
        nr, kr, item = self.nr, self.kr, self.elem.itemsize
        nb = self.blocks
        raw = buf[: self.size()].reshape(nb, -1)
        bias = np.ascontiguousarray(raw[:, : nr * self.bias_elem.itemsize]).view(self.bias_elem).reshape(-1)[: self.n]
        data = raw[:, nr * item :].view(self.elem).reshape(nb, self.kp // kr, nr, kr)
        return bias, data.transpose(1, 3, 0, 2)

    def decode(self, buf: NDArray[np.uint8]) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(bias[n], W[Kp, n])``."""
        nr, kr, nb = self.nr, self.kr, self.blocks
        raw = buf[: self.size()].reshape(nb, self.stride)
        nbias = nr * self.bias_elem.itemsize
        bias = np.ascontiguousarray(raw[:, :nbias]).view(self.bias_elem).reshape(-1)[: self.n]
        data = np.ascontiguousarray(raw[:, nbias:]).view(self.elem).reshape(nb, self.kp // kr, nr, kr)
        w: NDArray[Any] = data.transpose(1, 3, 0, 2).reshape(self.kp, nb * nr)
        return bias, w[:, : self.n]

    def describe(self, offset: int) -> ByteInfo:
        nr, kr, bs, es = self.nr, self.kr, self.bias_elem.itemsize, self.elem.itemsize
        g, rem = divmod(offset, self.stride)
        if rem < nr * bs:
            col = g * nr + rem // bs
            pad = col >= self.n
            return ByteInfo("bias", f"bias (n {col}) of block {g}{' (padding)' if pad else ''}", col=col, padding=pad)
        kb, r2 = divmod((rem - nr * bs) // es, nr * kr)
        j, kk = divmod(r2, kr)
        col, kx = g * nr + j, kb * kr + kk
        pad = col >= self.n or kx >= self.k
        text = f"data (n {col}, k {kx}){' (padding: must be 0)' if pad else ''}"
        return ByteInfo("data", text, col=col, k=kx, padding=pad)


# ---------------------------------------------------------------------------------------------
# qai8dxp LHS rows, the qsi8cxp RHS (qc8w) and the pqs8 RHS
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Qai8dxpLayout:
    """``qai8dxp<mr>x<kr>``: per mr-row block, int8 codes, then ``-zp`` (int32) and ``dq`` (f32) per row."""

    mr: int
    kr: int
    sr: int
    m: int
    k: int

    @property
    def kbl(self) -> int:
        """Codes of a row stored together: ``kr / sr``."""
        return self.kr // self.sr

    @property
    def k32(self) -> int:
        return roundup(self.k, 32)

    @property
    def stride(self) -> int:
        """Bytes of one mr-row block: mr * (K32 int8 + int32 -zp + f32 dq)."""
        return self.mr * (self.k32 + 4 + 4)

    def size(self) -> int:
        return roundup(self.m, self.mr) // self.mr * self.stride

    def offset(self, m_idx: int) -> int:
        """Byte offset of the block holding row ``m_idx``."""
        return m_idx // self.mr * self.stride

    def encode_into(
        self,
        out: NDArray[np.uint8],
        q: NDArray[np.int8],
        neg_zp: NDArray[np.int32],
        dq: NDArray[np.float32],
        start: int = 0,
    ) -> None:
        """Write rows ``start .. start + m - 1`` (codes [m, k]); K padding repeats the last code.
        Other rows of the blocks are not written (the C code leaves them as they were)."""
        m, k, k32, kbl, mr = q.shape[0], self.k, self.k32, self.kbl, self.mr
        qpad = np.concatenate([q, np.repeat(q[:, -1:], k32 - k, axis=1)], axis=1)  # repeat last value
        rows = np.arange(m) + start
        base = rows // mr * self.stride
        lane = rows % mr
        kk = np.arange(k32)
        data_off = (kk // kbl) * mr * kbl + kk % kbl  # [K32]
        out[(base + lane * kbl)[:, None] + data_off[None, :]] = qpad.view(np.uint8)
        zp_off = base + mr * k32 + 4 * lane
        dq_off = base + mr * k32 + 4 * mr + 4 * lane
        out[zp_off[:, None] + np.arange(4)] = neg_zp.astype(np.int32).view(np.uint8).reshape(m, 4)
        out[dq_off[:, None] + np.arange(4)] = dq.astype(np.float32).view(np.uint8).reshape(m, 4)

    def decode(self, buf: NDArray[np.uint8]) -> tuple[NDArray[np.int8], NDArray[np.int32], NDArray[np.float32]]:
        """``(q[m, K32] int8, neg_zp[m] int32, dq[m] f32)``."""
        mr, kbl, k32 = self.mr, self.kbl, self.k32
        nb = roundup(self.m, mr) // mr
        raw = buf[: nb * self.stride].reshape(nb, self.stride)
        data = raw[:, : mr * k32].reshape(nb, k32 // kbl, mr, kbl).transpose(0, 2, 1, 3).reshape(nb * mr, k32)
        neg_zp = np.ascontiguousarray(raw[:, mr * k32 : mr * k32 + 4 * mr]).view(np.int32).reshape(-1)
        dq = np.ascontiguousarray(raw[:, mr * k32 + 4 * mr : mr * k32 + 8 * mr]).view(np.float32).reshape(-1)
        q: Any = np.ascontiguousarray(data[: self.m]).view(np.int8)
        return q, neg_zp[: self.m], dq[: self.m]

    def describe(self, offset: int) -> ByteInfo:
        mr, kbl, k32 = self.mr, self.kbl, self.k32
        b, rem = divmod(offset, self.stride)
        if rem < mr * k32:
            kb, r2 = divmod(rem, mr * kbl)
            r, kk = divmod(r2, kbl)
            row, col = b * mr + r, kb * kbl + kk
            note = " (K padding: repeats the code of k = K-1)" if col >= self.k else ""
            past = " (row past M: unwritten)" if row >= self.m else ""
            text = f"data: int8 code (row {row}, k {col}){note}{past}"
            return ByteInfo("data", text, row=row, k=col, padding=col >= self.k or row >= self.m)
        rem -= mr * k32
        if rem < 4 * mr:
            row = b * mr + rem // 4
            return ByteInfo("zero-point", f"zero point: int32 -zp of row {row}", row=row, padding=row >= self.m)
        row = b * mr + (rem - 4 * mr) // 4
        text = f"scale: f32 dequantization scale dq of row {row}"
        return ByteInfo("scale", text, row=row, padding=row >= self.m)


@dataclasses.dataclass(frozen=True)
class Qsi8cxpLayout:
    """``qsi8cxp<nr>x<kr>``: per nr-column block, int8 W over K32, then row sums, scales, biases."""

    nr: int
    kr: int
    n: int
    k: int

    @property
    def k32(self) -> int:
        return roundup(self.k, 32)

    @property
    def blocks(self) -> int:
        return roundup(self.n, self.nr) // self.nr

    @property
    def stride(self) -> int:
        """Bytes of one nr-column block: nr * (K32 int8 + int32 rsum + f32 scale + f32 bias)."""
        return self.nr * (self.k32 + 4 + 4 + 4)

    def size(self) -> int:
        return self.blocks * self.stride

    def offset(self, n_idx: int) -> int:
        return n_idx // self.nr * self.stride

    def encode(
        self, w: NDArray[np.int8], rsum: NDArray[np.int32], scale: NDArray[np.float32], bias: NDArray[np.float32]
    ) -> NDArray[np.uint8]:
        """The packed bytes of every column slot (``blocks * nr`` of them, padding included):
        ``w`` [slots, K32], ``rsum``, ``scale``, ``bias`` [slots]."""
        nb, nr, kr, k32 = self.blocks, self.nr, self.kr, self.k32
        packed = np.empty((nb, self.stride), dtype=np.uint8)
        data = w.reshape(nb, nr, k32 // kr, kr).transpose(0, 2, 1, 3).reshape(nb, nr * k32)
        packed[:, : nr * k32] = data.view(np.uint8)
        base = nr * k32
        packed[:, base : base + 4 * nr] = rsum.astype(np.int32).reshape(nb, nr).view(np.uint8)
        packed[:, base + 4 * nr : base + 8 * nr] = scale.astype(np.float32).reshape(nb, nr).view(np.uint8)
        packed[:, base + 8 * nr : base + 12 * nr] = bias.astype(np.float32).reshape(nb, nr).view(np.uint8)
        return packed.reshape(-1)

    def decode(
        self, buf: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32], NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
        """``(W[K32, n] as float32, rsum[n], scale[n], bias[n])``."""
        nb, nr, kr, k32, n = self.blocks, self.nr, self.kr, self.k32, self.n
        raw = buf[: self.size()].reshape(nb, self.stride)
        w8 = raw[:, : nr * k32].view(np.int8).reshape(nb, k32 // kr, nr, kr)
        w = np.empty((k32, nb * nr), dtype=np.float32)
        w.reshape(k32 // kr, kr, nb, nr)[...] = w8.transpose(1, 3, 0, 2)  # one strided astype
        base = nr * k32

        def tail(lo: int, dt: Any) -> NDArray[Any]:
            arr: NDArray[Any] = np.ascontiguousarray(raw[:, lo : lo + 4 * nr]).view(dt).reshape(-1)[:n]
            return arr

        return w[:, :n], tail(base, np.int32), tail(base + 4 * nr, np.float32), tail(base + 8 * nr, np.float32)

    def describe(self, offset: int) -> ByteInfo:
        nr, kr, k32 = self.nr, self.kr, self.k32
        g, rem = divmod(offset, self.stride)
        if rem < nr * k32:
            kb, r2 = divmod(rem, nr * kr)
            j, kk = divmod(r2, kr)
            col, kx = g * nr + j, kb * kr + kk
            text = f"data: int8 weight (n {col}, k {kx})"
            return ByteInfo("data", text, col=col, k=kx, padding=col >= self.n or kx >= self.k)
        rem -= nr * k32
        which = min(rem // (4 * nr), 2)
        field, what = (
            ("row-sum", "row sum: int32 rsum"),
            ("scale", "scale: f32 per-channel scale"),
            ("bias", "bias: f32"),
        )[which]
        col = g * nr + (rem % (4 * nr)) // 4
        return ByteInfo(field, f"{what} of n {col}", col=col, padding=col >= self.n)


@dataclasses.dataclass(frozen=True)
class Qsi8cxp2vlx4sbLayout:
    """``qsi8cxp2vlx4sb``: per nr-column block, int32 ``bias'``, int8 W (kr 4) over K4, f32 ``scale'``."""

    nr: int
    n: int
    k: int
    kr = 4

    @classmethod
    def for_svl(cls, svl: int, n: int, k: int) -> Qsi8cxp2vlx4sbLayout:
        return cls(sme_2vl(svl, 1, cls.kr), n, k)

    @property
    def k4(self) -> int:
        return roundup(self.k, self.kr)

    @property
    def blocks(self) -> int:
        return roundup(self.n, self.nr) // self.nr

    @property
    def stride(self) -> int:
        """Bytes of one nr-column block: nr * (int32 bias + K4 int8 + f32 scale)."""
        return self.nr * (4 + self.k4 + 4)

    def size(self) -> int:
        return self.blocks * self.stride

    def offset(self, n_idx: int) -> int:
        return n_idx // self.nr * self.stride

    def encode_into(
        self,
        out: NDArray[np.uint8],
        bias: NDArray[np.int32] | None,
        w_kn: NDArray[np.int8],
        scale: NDArray[np.float32],
    ) -> None:
        """Write every column slot: ``w_kn`` [K4, slots], ``bias`` (None: its slots are not
        written) and ``scale`` [slots]."""
        nb, nr, kr, k4 = self.blocks, self.nr, self.kr, self.k4
        blocks = out[: self.size()].reshape(nb, self.stride)
        if bias is not None:
            blocks[:, : 4 * nr] = bias.astype(np.int32).reshape(nb, nr).view(np.uint8)
        data = w_kn.reshape(k4 // kr, kr, nb, nr).transpose(2, 0, 3, 1).reshape(nb, nr * k4)
        blocks[:, 4 * nr : 4 * nr + nr * k4] = data.view(np.uint8)
        blocks[:, 4 * nr + nr * k4 :] = scale.astype(np.float32).reshape(nb, nr).view(np.uint8)

    def decode(self, buf: NDArray[np.uint8]) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
        """``(bias'[n] int32, W[K4, n] as float32, scale'[n])``."""
        nb, nr, kr, k4, n = self.blocks, self.nr, self.kr, self.k4, self.n
        raw = buf[: self.size()].reshape(nb, -1)
        bias: NDArray[np.int32] = np.ascontiguousarray(raw[:, : 4 * nr]).view(np.int32).reshape(-1)[:n]
        w8 = raw[:, 4 * nr : 4 * nr + nr * k4].view(np.int8).reshape(nb, k4 // kr, nr, kr)
        w = np.empty((k4, nb * nr), dtype=np.float32)
        w.reshape(k4 // kr, kr, nb, nr)[...] = w8.transpose(1, 3, 0, 2)  # one strided astype
        scale: NDArray[np.float32] = np.ascontiguousarray(raw[:, 4 * nr + nr * k4 :]).view(np.float32).reshape(-1)[:n]
        return bias, w[:, :n], scale

    def describe(self, offset: int) -> ByteInfo:
        nr, k4 = self.nr, self.k4
        g, rem = divmod(offset, self.stride)
        if rem < 4 * nr:
            col = g * nr + rem // 4
            return ByteInfo("bias", f"bias: int32 bias - izp*sum(W) of n {col}", col=col, padding=col >= self.n)
        rem -= 4 * nr
        if rem < nr * k4:
            kb, r2 = divmod(rem, nr * 4)
            j, kk = divmod(r2, 4)
            col, kx = g * nr + j, kb * 4 + kk
            text = f"data: int8 weight (n {col}, k {kx})"
            return ByteInfo("data", text, col=col, k=kx, padding=col >= self.n or kx >= self.k)
        col = g * nr + (rem - nr * k4) // 4
        return ByteInfo("scale", f"scale: f32 requantization scale of n {col}", col=col, padding=col >= self.n)


# ---------------------------------------------------------------------------------------------
# qsi4c32p: blockwise 4-bit weights with bf16 block scales
# ---------------------------------------------------------------------------------------------


def signed_nibbles(nib: NDArray[np.uint8]) -> NDArray[np.int8]:
    """4-bit two's complement code -> int8 in [-8, 7] (every qsi4c32p nibble is ``w = u - 8``)."""
    out: NDArray[np.int8] = ((nib.astype(np.int8) ^ np.int8(8)) - np.int8(8)).astype(np.int8)
    return out


@dataclasses.dataclass(frozen=True)
class Qsi4c32pLayout:
    """``qsi4c32p`` (XNNPACK's NEON order) or ``qsi4c32ps1s0nrx4`` (KleidiAI's SME2 order).

    Per nr-column block (``nb = K / bl`` quant blocks): for each quant block, ``nr bl / 2`` data
    bytes then ``nr`` bf16 scales; after the blocks, ``nr`` f32 row sums and ``nr`` f32 biases.
    Data byte of (k in the block, column j):

    * ``ps1s0nrx4``: at ``(k // 4) 2 nr + 2 j + (k % 4) // 2``, low nibble = even k, high = odd k;
    * ``qsi4c32p`` (``bbl = kr / sr``): inside each 32-k chunk c, segment s, byte t of column j,
      at ``c 16 nr + s bbl nr + j bbl + t``, the low nibble holds ``k0 + s bbl + t`` and the high
      nibble ``k0 + 16 + s bbl + t`` (``k0 = 32 c``).
    """

    nr: int
    bl: int
    bbl: int
    n: int
    k: int
    #: ``ps1s0nrx4`` or ``qsi4c32p``.
    order: str

    @property
    def nb(self) -> int:
        """Quant blocks per column."""
        return self.k // self.bl

    @property
    def blocks(self) -> int:
        return roundup(self.n, self.nr) // self.nr

    @property
    def stride(self) -> int:
        """Bytes of one nr-column block: ``nr * (nb * (bl/2 + 2) + 4 + 4)``."""
        return self.nr * (self.nb * (self.bl // 2 + 2) + 8)

    def size(self) -> int:
        return self.blocks * self.stride

    def offset(self, n_idx: int) -> int:
        return n_idx // self.nr * self.stride

    def _data_bytes(self, w: NDArray[np.int8]) -> NDArray[np.uint8]:
        """Data bytes of every block: [G, nb, nr * bl / 2] from the padded weights w [G*nr, K]."""
        nr, bl, nb = self.nr, self.bl, self.nb
        g = w.shape[0] // nr
        nib = (w.astype(np.uint8) & np.uint8(0xF)).reshape(g, nr, nb, bl)
        if self.order == "ps1s0nrx4":
            # [g, j, qb, group4, t, half] -> byte = lo | hi << 4 -> [g, qb, group4, j, t]
            v = nib.reshape(g, nr, nb, bl // 4, 2, 2)
            byte = v[..., 0] | (v[..., 1] << np.uint8(4))
            out = byte.transpose(0, 2, 3, 1, 4)
        else:
            # [g, j, qb, c, half(k / k+16), s, t] -> byte [g, qb, c, s, j, t]
            v = nib.reshape(g, nr, nb, bl // 32, 2, 16 // self.bbl, self.bbl)
            byte = v[:, :, :, :, 0] | (v[:, :, :, :, 1] << np.uint8(4))
            out = byte.transpose(0, 2, 3, 4, 1, 5)
        return np.ascontiguousarray(out).reshape(g, nb, nr * bl // 2)

    def encode(
        self,
        w_pad: NDArray[np.int8],
        scale_pad: NDArray[np.uint16],
        rsum_pad: NDArray[np.float32],
        bias_pad: NDArray[np.float32],
    ) -> NDArray[np.uint8]:
        """The packed bytes from per-column arrays already padded to ``blocks * nr`` columns:
        ``w_pad`` [slots, K] int8 in [-8, 7], bf16 scale bits [slots, nb], rsum and bias [slots]."""
        nr, nb = self.nr, self.nb
        g = w_pad.shape[0] // nr
        data = self._data_bytes(w_pad)
        sc = np.ascontiguousarray(scale_pad.reshape(g, nr, nb).transpose(0, 2, 1), dtype="<u2")
        sc = sc.view(np.uint8).reshape(g, nb, 2 * nr)
        blocks = np.concatenate([data, sc], axis=2).reshape(g, nb * nr * (self.bl // 2 + 2))
        tail = np.concatenate(
            [
                rsum_pad.astype("<f4").view(np.uint8).reshape(g, 4 * nr),
                bias_pad.astype("<f4").view(np.uint8).reshape(g, 4 * nr),
            ],
            axis=1,
        )
        return np.ascontiguousarray(np.concatenate([blocks, tail], axis=1)).reshape(-1)

    def decode(
        self, buf: NDArray[np.uint8]
    ) -> tuple[NDArray[np.int8], NDArray[np.uint16], NDArray[np.float32], NDArray[np.float32]]:
        """The first n columns: ``(w [n, K] int8, bf16 scale bits [n, nb], rsum [n], bias [n])``."""
        nr, bl, nb, k, n = self.nr, self.bl, self.nb, self.k, self.n
        g = self.blocks
        raw = buf[: g * self.stride].reshape(g, self.stride)
        blk = raw[:, : nb * nr * (bl // 2 + 2)].reshape(g, nb, nr * (bl // 2 + 2))
        data = blk[:, :, : nr * bl // 2]
        sc = np.ascontiguousarray(blk[:, :, nr * bl // 2 :]).view("<u2").reshape(g, nb, nr)
        lo, hi = data & np.uint8(0xF), data >> np.uint8(4)
        if self.order == "ps1s0nrx4":
            nib = np.stack([lo, hi], axis=-1).reshape(g, nb, bl // 4, nr, 2, 2)  # [g, qb, group4, j, t, half]
            w = nib.transpose(0, 3, 1, 2, 4, 5).reshape(g * nr, k)
        else:
            lo6 = lo.reshape(g, nb, bl // 32, 16 // self.bbl, nr, self.bbl)
            hi6 = hi.reshape(g, nb, bl // 32, 16 // self.bbl, nr, self.bbl)
            nib = np.stack([lo6, hi6], axis=3)  # [g, qb, c, half, s, j, t]
            w = nib.transpose(0, 5, 1, 2, 3, 4, 6).reshape(g * nr, k)
        tail = raw[:, nb * nr * (bl // 2 + 2) :]
        rsum = np.ascontiguousarray(tail[:, : 4 * nr]).view("<f4").reshape(-1)
        bias = np.ascontiguousarray(tail[:, 4 * nr : 8 * nr]).view("<f4").reshape(-1)
        scales = sc.transpose(0, 2, 1).reshape(g * nr, nb)
        return (
            signed_nibbles(np.ascontiguousarray(w[:n])),
            np.ascontiguousarray(scales[:n]).astype(np.uint16),
            rsum[:n].astype(np.float32),
            bias[:n].astype(np.float32),
        )

    def describe(self, offset: int) -> ByteInfo:
        nr, bl, nb = self.nr, self.bl, self.nb
        qb_bytes = nr * (bl // 2 + 2)
        g, rem = divmod(offset, self.stride)
        if rem >= nb * qb_bytes:
            rem -= nb * qb_bytes
            field, what = ("row-sum", "row sum: f32 rsum") if rem < 4 * nr else ("bias", "bias: f32")
            col = g * nr + (rem % (4 * nr)) // 4
            return ByteInfo(field, f"{what} of n {col}", col=col, padding=col >= self.n)
        qb, r2 = divmod(rem, qb_bytes)
        if r2 >= nr * bl // 2:
            col = g * nr + (r2 - nr * bl // 2) // 2
            text = f"scale: bf16 block scale (n {col}, block {qb})"
            return ByteInfo("scale", text, col=col, block=qb, padding=col >= self.n)
        c, r3 = divmod(r2, 16 * nr)
        k0 = qb * bl + 32 * c
        if self.order == "ps1s0nrx4":
            i, r4 = divmod(r3, 2 * nr)
            j, t = divmod(r4, 2)
            lo = k0 + 4 * i + 2 * t
            hi = lo + 1
        else:
            s, r4 = divmod(r3, self.bbl * nr)
            j, t = divmod(r4, self.bbl)
            lo = k0 + s * self.bbl + t
            hi = lo + 16
        col = g * nr + j
        text = f"data: int4 pair (n {col}, k {lo} low nibble, k {hi} high nibble), block {qb}"
        return ByteInfo("data", text, col=col, k=lo, nibbles=(lo, hi), block=qb, padding=col >= self.n)


# ---------------------------------------------------------------------------------------------
# The per-channel int4 RHS (qsi4cxp): nibble pairs, then row sums, scales, biases
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Qsi4cxpLayout:
    """``qsi4cxp`` (``kai_rhs_pack_{nxk,kxn}_qsi4cxp_qs4cxs1s0``) or ``qsi4cxps1s0``
    (``kai_rhs_pack_nxk_qsi4cxps1s0_qsu4cxs1s0_neon``, the SME2 kernels' packer).

    Per nr-column block: ``nr K32 / 2`` data bytes of signed nibble pairs, then ``nr`` int32 row
    sums, ``nr`` f32 scales, ``nr`` f32 biases. Data byte of (k, column j):

    * ``qsi4cxp`` (``bbl = kr / sr``): inside each 32-k chunk c, segment s, byte t of column j,
      at ``c 16 nr + s bbl nr + j bbl + t``, the low nibble holds ``32 c + s bbl + t`` and the
      high nibble that k + 16 (the ``qsi4c32p`` order with one block of K32);
    * ``qsi4cxps1s0``: at ``(k // kr) nr kr / 2 + j kr / 2 + (k % kr) // 2``, low nibble = even
      k, high = odd k.

    What the packers store beside the nibbles differs (see :meth:`encode`'s callers): row sums
    ``16 sum w`` and scales ``RN32(scale / 16)`` (qsi4cxp, whose kernels widen nibbles to
    ``16 w``), or ``sum w`` and the scale (qsi4cxps1s0, LUTI4 to ``w``).
    """

    nr: int
    kr: int
    sr: int
    n: int
    k: int
    #: ``qsi4cxp`` or ``qsi4cxps1s0``.
    order: str

    @property
    def k32(self) -> int:
        return roundup(self.k, 32)

    @property
    def blocks(self) -> int:
        return roundup(self.n, self.nr) // self.nr

    @property
    def stride(self) -> int:
        """Bytes of one nr-column block: ``nr (K32 / 2 + 4 + 4 + 4)``."""
        return self.nr * (self.k32 // 2 + 12)

    def size(self) -> int:
        return self.blocks * self.stride

    def offset(self, n_idx: int) -> int:
        return n_idx // self.nr * self.stride

    def encode(
        self,
        w_pad: NDArray[np.int8],
        rsum_pad: NDArray[np.int32],
        scale_pad: NDArray[np.float32],
        bias_pad: NDArray[np.float32],
    ) -> NDArray[np.uint8]:
        """The packed bytes from per-column arrays padded to ``blocks * nr`` columns: ``w_pad``
        [slots, K] int8 in [-8, 7] (k past K reads as 0), ``rsum_pad``, ``scale_pad``, ``bias_pad``."""
        nr, kr, k32, g = self.nr, self.kr, self.k32, self.blocks
        nib = np.zeros((g * nr, k32), np.uint8)
        nib[:, : self.k] = w_pad.astype(np.uint8) & np.uint8(0xF)
        if self.order == "qsi4cxps1s0":
            v = nib.reshape(g, nr, k32 // kr, kr // 2, 2)
            data = (v[..., 0] | (v[..., 1] << np.uint8(4))).transpose(0, 2, 1, 3)
        else:
            bbl = kr // self.sr
            v = nib.reshape(g, nr, k32 // 32, 2, 16 // bbl, bbl)
            data = (v[:, :, :, 0] | (v[:, :, :, 1] << np.uint8(4))).transpose(0, 2, 3, 1, 4)
        tail = [
            rsum_pad.astype("<i4").view(np.uint8).reshape(g, 4 * nr),
            scale_pad.astype("<f4").view(np.uint8).reshape(g, 4 * nr),
            bias_pad.astype("<f4").view(np.uint8).reshape(g, 4 * nr),
        ]
        out = np.concatenate([np.ascontiguousarray(data).reshape(g, nr * k32 // 2), *tail], axis=1)
        return np.ascontiguousarray(out).reshape(-1)

    def decode(
        self, buf: NDArray[np.uint8]
    ) -> tuple[NDArray[np.int8], NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
        """The first n columns: ``(w [n, K32] int8 (zeros past K), rsum [n], scale [n], bias [n])``."""
        nr, kr, k32, g, n = self.nr, self.kr, self.k32, self.blocks, self.n
        raw = buf[: self.size()].reshape(g, self.stride)
        data = raw[:, : nr * k32 // 2]
        lo, hi = data & np.uint8(0xF), data >> np.uint8(4)
        if self.order == "qsi4cxps1s0":
            nib = np.stack([lo, hi], axis=-1).reshape(g, k32 // kr, nr, kr // 2, 2).transpose(0, 2, 1, 3, 4)
        else:
            bbl = kr // self.sr
            lo5 = lo.reshape(g, k32 // 32, 16 // bbl, nr, bbl)
            hi5 = hi.reshape(g, k32 // 32, 16 // bbl, nr, bbl)
            nib = np.stack([lo5, hi5], axis=2).transpose(0, 4, 1, 2, 3, 5)  # [g, j, c, half, s, t]
        w = signed_nibbles(np.ascontiguousarray(nib).reshape(g * nr, k32))

        def tail(i: int, dt: str) -> NDArray[Any]:
            lo_ = nr * k32 // 2 + 4 * nr * i
            arr: NDArray[Any] = np.ascontiguousarray(raw[:, lo_ : lo_ + 4 * nr]).view(dt).reshape(-1)[:n]
            return arr

        return (
            w[:n],
            tail(0, "<i4").astype(np.int32),
            tail(1, "<f4").astype(np.float32),
            tail(2, "<f4").astype(np.float32),
        )

    def describe(self, offset: int) -> ByteInfo:
        nr, kr, k32 = self.nr, self.kr, self.k32
        g, rem = divmod(offset, self.stride)
        if rem >= nr * k32 // 2:
            rem -= nr * k32 // 2
            which = min(rem // (4 * nr), 2)
            field, what = (
                ("row-sum", "row sum: int32 rsum"),
                ("scale", "scale: f32 per-channel scale"),
                ("bias", "bias: f32"),
            )[which]
            col = g * nr + (rem % (4 * nr)) // 4
            return ByteInfo(field, f"{what} of n {col}", col=col, padding=col >= self.n)
        if self.order == "qsi4cxps1s0":
            grp, r2 = divmod(rem, nr * kr // 2)
            j, t = divmod(r2, kr // 2)
            lo = grp * kr + 2 * t
            hi = lo + 1
        else:
            bbl = kr // self.sr
            c, r2 = divmod(rem, 16 * nr)
            s, r3 = divmod(r2, bbl * nr)
            j, t = divmod(r3, bbl)
            lo = 32 * c + s * bbl + t
            hi = lo + 16
        col = g * nr + j
        text = f"data: int4 pair (n {col}, k {lo} low nibble, k {hi} high nibble)"
        pad = col >= self.n or lo >= self.k
        return ByteInfo("data", text, col=col, k=lo, nibbles=(lo, hi), padding=pad)
