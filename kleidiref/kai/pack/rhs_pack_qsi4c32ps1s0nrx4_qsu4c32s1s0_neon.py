"""``kai_rhs_pack_{nxk,kxn}_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon``: the SME2 qb4w kernels' RHS packers.

Upstream ``kai/ukernels/matmul/pack/kai_rhs_pack_{nxk,kxn}_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon.c``
(XNNPACK never runs them: it has no SME2 qb4w branch).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ..._buffers import require_bytes, roundup
from ..qb4w_common import rsum_chain
from .rhs_pack_qsi4c32p_qsu4c32s1s0 import Qsi4c32pPacker, d_chunks

__all__ = [
    "kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
    "kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
]


def _psum_chunks(w: NDArray[np.int8], chunk: int) -> NDArray[np.int64]:
    npad, k = w.shape
    out: NDArray[np.int64] = w.astype(np.int64).reshape(npad, k // chunk, chunk).sum(axis=2)
    return out


class kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(Qsi4c32pPacker):
    """SME2 kernels' RHS packer, N x K input (``kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon.c``).

    ``rsum[j] = RN32(rsum[j] + psum * d)`` over 32-k chunks in k order (``psum`` = sum of the
    32 signed codes; exact product). Padded columns replicate column N-1.
    """

    name = "kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon.c"
    layout = "ps1s0nrx4"
    order = "nxk"
    strict_groups = False

    def _rsum(self, w_pad: NDArray[np.int8], d_pad: NDArray[np.float32], bl: int, bbl: int) -> NDArray[np.float32]:  # noqa: ARG002 (the ps1s0nrx4 sums do not depend on bbl)
        return rsum_chain(_psum_chunks(w_pad, 32), d_chunks(d_pad, bl, 32), fused=True)


class kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(Qsi4c32pPacker):
    """SME2 kernels' RHS packer, K x N input (``kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon.c``).

    * rsum: ``rsum[j] = fma32(psum4, d, rsum[j])`` over 4-k groups (``vfmaq_f32``), so it can
      differ from the nxk packer's in the last bit.
    * Columns past N: each group of 16 columns loads 8 bytes of every k-row from byte
      ``n0 / 2``, ``n0 = min(g*nr + 16h, N-1)``, so padded columns take the bytes that follow
      the row in memory (the next k-row; past the last row, whatever follows the buffer: here
      0x00 bytes in the harness that made the golden vectors, i.e. code -8). The kernel never reads
      those columns.
    """

    name = "kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon.c"
    layout = "ps1s0nrx4"
    order = "kxn"
    strict_groups = False
    #: Value assumed for bytes read past the end of ``rhs`` (padded columns of the last k-rows).
    # Note: reading past the buffer is undefined behaviour upstream; 0x00 is what the golden
    # harness's allocation held there (it reproduces all 72 stored rhs_packed_kxn buffers).
    tail_byte: ClassVar[int] = 0x00

    def _kxn_weights(self, u8: NDArray[np.uint8], n: int, k: int, nr: int, stride: int) -> NDArray[np.int8]:
        npad = roundup(n, nr)
        need = (k - 1) * stride + (n + 1) // 2
        require_bytes(u8, need, "rhs", self._fn("run"))
        j = np.arange(npad)
        n0 = np.minimum((j // 16) * 16, n - 1)
        vc = 2 * (n0 // 2) + j % 16
        byte_idx = (np.arange(k) * stride)[None, :] + (vc // 2)[:, None]  # [npad, k]
        flat = np.concatenate([u8, np.full(16, self.tail_byte, dtype=np.uint8)])
        byte_idx = np.minimum(byte_idx, flat.size - 1)
        b = flat[byte_idx]
        u = np.where((vc % 2)[:, None] == 1, b >> np.uint8(4), b & np.uint8(0xF))
        out: NDArray[np.int8] = (u.astype(np.int8) - np.int8(8)).astype(np.int8)
        return out

    def _rsum(self, w_pad: NDArray[np.int8], d_pad: NDArray[np.float32], bl: int, bbl: int) -> NDArray[np.float32]:  # noqa: ARG002 (the ps1s0nrx4 sums do not depend on bbl)
        return rsum_chain(_psum_chunks(w_pad, 4), d_chunks(d_pad, bl, 4), fused=True)
