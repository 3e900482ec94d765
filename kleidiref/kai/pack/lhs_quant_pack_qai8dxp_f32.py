"""``kai_lhs_quant_pack_qai8dxp_f32``: quantize f32 rows to qai8dx and pack them.

Shared by ``qp8_f32_qc8w_gemm``, ``qp8_f32_qb4w_gemm`` and the qc4w kernels. The packed format is
:class:`kleidiref.kai.layouts.Qai8dxpLayout`. Rows past M in the last block are not written by
the C code (stale workspace); the oracle leaves them as the caller's buffer had them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from ..._buffers import Buffer, as_u8, check_count, read_matrix, require_bytes, writable_u8
from ...quant.qai8dx import quantize_qai8dx
from ..interface import Ukernel
from ..layouts import Qai8dxpLayout

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
        fmt = Qai8dxpLayout(check_count("mr", mr, minimum=1), kr, sr, 0, check_count("k", k))
        return fmt.offset(check_count("m_idx", m_idx))

    def get_lhs_packed_size(self, m: int, k: int, mr: int, kr: int, sr: int) -> int:
        mr = check_count("mr", mr, minimum=1)
        return Qai8dxpLayout(mr, kr, sr, check_count("m", m), check_count("k", k)).size()

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
            as_u8(lhs, "lhs"), m, k, check_count("lhs_stride", lhs_stride), np.float32, "lhs", f"{self.c_name('run')}"
        )
        fmt = Qai8dxpLayout(mr, kr, sr, start + m, k)
        if fmt.k32 % fmt.kbl:
            raise ValueError(f"kr / sr = {fmt.kbl} must divide roundup(k, 32) = {fmt.k32}")
        q, dq, zp = quantize_qai8dx(x, k_block_len=fmt.kbl)
        out = writable_u8(lhs_packed, "lhs_packed")
        require_bytes(out, fmt.size(), "lhs_packed", f"kai_get_lhs_packed_size_{self.name}")
        fmt.encode_into(out, q, -zp.astype(np.int32), dq, start)

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
    return Qai8dxpLayout(mr, kr, sr, m, k).decode(buf)
