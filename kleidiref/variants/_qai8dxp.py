"""``kai_lhs_quant_pack_qai8dxp_f32``: quantize f32 rows to qai8dx and pack them (kernels.md §6.2).

Shared by ``qp8_f32_qc8w_gemm`` and ``qp8_f32_qb4w_gemm``. With ``kbl = kr / sr`` and
``K32 = roundup(K, 32)``, one block of ``mr`` rows (stride ``mr * (K32 + 8)`` bytes)::

    int8  q[m][k]   at (k // kbl) * mr * kbl + r * kbl + k % kbl     r = (m + m_idx_start) % mr
    int32 -zp[r]    at mr * K32 + 4 r
    f32   dq[r]     at mr * K32 + 4 mr + 4 r

K padding (K <= k < K32) repeats the quantized last element. Rows past M in the last block are
not written by the C code (stale workspace); the oracle leaves them as the caller's buffer had them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import Buffer, as_u8, check_count, read_matrix, require_bytes, roundup, writable_u8
from ..kai.interface import Ukernel
from ..quant.qai8dx import quantize_qai8dx

__all__ = ["Qai8dxpRows", "kai_lhs_quant_pack_qai8dxp_f32", "read_qai8dxp"]


@dataclasses.dataclass(frozen=True)
class Qai8dxpRows:
    """qai8dx rows as the kernels read them: int8 codes, ``-zp`` and the dequantization scale."""

    #: [M, K] or [M, roundup(K, 32)] int8 codes (the K padding meets zero weights).
    q: NDArray[np.int8]
    #: [M] int32, the negated zero points.
    neg_zp: NDArray[np.int32]
    #: [M] float32 dequantization scales.
    dq: NDArray[np.float32]


def _stride(k: int, mr: int) -> int:
    return mr * (roundup(k, 32) + 4 + 4)


class kai_lhs_quant_pack_qai8dxp_f32(Ukernel):
    """Dynamic per-row int8 quantizer and LHS packer (plain C + NEON; SVL-independent)."""

    name = "kai_lhs_quant_pack_qai8dxp_f32"
    variant = "qp8"
    isa = "neon"
    source = "kai/ukernels/matmul/pack/kai_lhs_quant_pack_qai8dxp_f32.c"

    def get_m_step(self, mr: int) -> int:
        return check_count("mr", mr, minimum=1)

    def get_lhs_offset(self, m_idx: int, lhs_stride: int) -> int:
        return check_count("m_idx", m_idx) * check_count("lhs_stride", lhs_stride)

    def get_lhs_packed_offset(self, m_idx: int, k: int, mr: int, kr: int, sr: int) -> int:
        mr = check_count("mr", mr, minimum=1)
        return (check_count("m_idx", m_idx) // mr) * _stride(check_count("k", k), mr)

    def get_lhs_packed_size(self, m: int, k: int, mr: int, kr: int, sr: int) -> int:
        mr = check_count("mr", mr, minimum=1)
        return roundup(check_count("m", m), mr) // mr * _stride(check_count("k", k), mr)

    def run_lhs_pack(
        self,
        m: int,
        k: int,
        mr: int,
        kr: int,
        sr: int,
        m_idx_start: int,
        lhs: Buffer,
        lhs_stride: int,
        lhs_packed: Buffer,
    ) -> None:
        """``kai_run_lhs_quant_pack_qai8dxp_f32``: ``lhs`` holds m rows of k f32 (stride in bytes)."""
        m, k = check_count("m", m), check_count("k", k, minimum=1)
        mr = check_count("mr", mr, minimum=1)
        kr, sr = check_count("kr", kr, minimum=1), check_count("sr", sr, minimum=1)
        if kr % sr:
            raise ValueError("KAI_ASSERT((kr % sr) == 0) fails in kai_run_lhs_quant_pack_qai8dxp_f32")
        start = check_count("m_idx_start", m_idx_start)
        if isinstance(lhs, np.ndarray) and lhs.dtype != np.float32:
            raise TypeError(f"lhs must be float32 for {self.name}, got {lhs.dtype}")
        if m == 0:
            return
        x = read_matrix(
            as_u8(lhs, "lhs"), m, k, check_count("lhs_stride", lhs_stride), np.float32, "lhs", f"kai_run_{self.name}"
        )
        kbl = kr // sr
        k32 = roundup(k, 32)
        if k32 % kbl:
            raise ValueError(f"kr / sr = {kbl} must divide roundup(k, 32) = {k32}")
        q, dq, zp = quantize_qai8dx(x, k_block_len=kbl)
        qpad = np.concatenate([q, np.repeat(q[:, -1:], k32 - k, axis=1)], axis=1)  # repeat last value
        out = writable_u8(lhs_packed, "lhs_packed")
        nblocks = (start + m + mr - 1) // mr
        require_bytes(out, nblocks * _stride(k, mr), "lhs_packed", f"kai_get_lhs_packed_size_{self.name}")
        stride = _stride(k, mr)
        rows = np.arange(m) + start
        blk, lane = rows // mr, rows % mr
        base = blk * stride
        kk = np.arange(k32)
        data_off = (kk // kbl) * mr * kbl + kk % kbl  # [K32]
        out[(base + lane * kbl)[:, None] + data_off[None, :]] = qpad.view(np.uint8)
        zp_off = base + mr * k32 + 4 * lane
        dq_off = base + mr * k32 + 4 * mr + 4 * lane
        neg = (-zp.astype(np.int32)).view(np.uint8).reshape(m, 4)
        out[zp_off[:, None] + np.arange(4)] = neg
        out[dq_off[:, None] + np.arange(4)] = dq.view(np.uint8).reshape(m, 4)

    def pack(self, lhs: NDArray[np.float32], *, mr: int, kr: int, sr: int) -> NDArray[np.uint8]:
        """Pack a whole [M, K] float32 array (rows past M in the last block stay zero)."""
        if not isinstance(lhs, np.ndarray) or lhs.ndim != 2:
            raise ValueError("lhs must be a 2-D float32 array [M, K]")
        a = np.ascontiguousarray(lhs)
        m, k = a.shape
        out = np.zeros(self.get_lhs_packed_size(m, k, mr, kr, sr), dtype=np.uint8)
        self.run_lhs_pack(m, k, mr, kr, sr, 0, a, k * 4, out)
        return out


def read_qai8dxp(
    buf: NDArray[np.uint8], m: int, k: int, mr: int, kr: int, sr: int
) -> tuple[NDArray[np.int8], NDArray[np.int32], NDArray[np.float32]]:
    """Decode a packed qai8dxp LHS: ``(q[m, K32] int8, neg_zp[m] int32, dq[m] f32)``."""
    kbl = kr // sr
    k32 = roundup(k, 32)
    stride = _stride(k, mr)
    nb = roundup(m, mr) // mr
    raw = buf[: nb * stride].reshape(nb, stride)
    data = raw[:, : mr * k32].reshape(nb, k32 // kbl, mr, kbl).transpose(0, 2, 1, 3).reshape(nb * mr, k32)
    neg_zp = np.ascontiguousarray(raw[:, mr * k32 : mr * k32 + 4 * mr]).view(np.int32).reshape(-1)
    dq = np.ascontiguousarray(raw[:, mr * k32 + 4 * mr : mr * k32 + 8 * mr]).view(np.float32).reshape(-1)
    q: Any = np.ascontiguousarray(data[:m]).view(np.int8)
    return q, neg_zp[:m], dq[:m]
