"""``kai_rhs_pack_{nxk,kxn}_qsi4c32p_qsu4c32s1s0``: the qsi4c32p RHS packers XNNPACK's qb4w path runs.

Upstream ``kai/ukernels/matmul/pack/kai_rhs_pack_{nxk,kxn}_qsi4c32p_qsu4c32s1s0.c``. Their base,
:class:`Qsi4c32pPacker`, is also that of the SME2 kernels' packers
(:mod:`kleidiref.kai.pack.rhs_pack_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ..._buffers import Buffer, as_u8, check_count, read_matrix, require_bytes, roundup, writable_u8
from ...numerics import bf16_to_f32
from ..interface import Ukernel
from ..layouts import Qsi4c32pLayout
from ..qb4w_common import Layout, check_rhs_params, rsum_chain

__all__ = [
    "VARIANT",
    "Qsi4c32pPacker",
    "d_chunks",
    "kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_qsi4c32p_params",
]

VARIANT = "qp8_f32_qb4w_gemm"
F32 = np.float32


@dataclasses.dataclass(frozen=True)
class kai_rhs_pack_qsi4c32p_params:
    """``struct kai_rhs_pack_{nxk,kxn}_qsi4c32p_qsu4c32s1s0_params``.

    XNNPACK (``setup_packing_params_qs8_qc4w_izp_1``) and KleidiAI's tests pass
    ``lhs_zero_point = 1``, ``rhs_zero_point = 8``, ``scale_dt = kai_dt_bf16``.
    """

    lhs_zero_point: int = 1
    rhs_zero_point: int = 8
    scale_dt: str = "bf16"


# ----------------------------------------------------------------------------------------------
# RHS packers
# ----------------------------------------------------------------------------------------------


class Qsi4c32pPacker(Ukernel):
    """The four qsi4c32p RHS packers (plain C / NEON, SVL-independent)."""

    variant = VARIANT
    isa = "neon"
    layout: ClassVar[Layout]
    order: ClassVar[str]  # "nxk" or "kxn"
    #: ``num_groups == 1`` and ``extra_bytes == 0`` are asserted by the generic packers only.
    strict_groups: ClassVar[bool]

    def _fn(self, what: str) -> str:
        return f"kai_{what}_{self.name.removeprefix('kai_')}"

    def _check(self, n: int, k: int, nr: int, kr: int, sr: int, bl: int, scale_dt: str, what: str) -> None:
        check_rhs_params(n, k, nr, kr, sr, bl, self._fn(what), bbl4=self.layout == "ps1s0nrx4")
        if scale_dt != "bf16":
            raise ValueError(f"KAI_ASSERT(scale_dt == kai_dt_bf16) fails in {self._fn(what)} (got {scale_dt!r})")

    def get_n_step(self, nr: int) -> int:
        return check_count("nr", nr, minimum=1)

    def get_rhs_offset(self, n_idx: int, rhs_stride: int) -> int:
        """Byte offset of column/row ``n_idx`` in the unpacked input."""
        n_idx = check_count("n_idx", n_idx)
        if self.order == "kxn":
            if self.layout == "ps1s0nrx4" and n_idx % 2:
                raise ValueError(f"KAI_ASSERT((n_idx % 2) == 0) fails in {self._fn('get_rhs_offset')}")
            return n_idx // 2
        return n_idx * check_count("rhs_stride", rhs_stride)

    def get_rhs_packed_stride(self, k: int, nr: int, kr: int, sr: int, bl: int, scale_dt: str = "bf16") -> int:
        self._check(1, k, nr, kr, sr, bl, scale_dt, "get_rhs_packed_stride")
        return Qsi4c32pLayout(nr, bl, kr // sr, 0, k, self.layout).stride

    def get_rhs_packed_offset(
        self, n_idx: int, k: int, nr: int, kr: int, sr: int, bl: int, scale_dt: str = "bf16"
    ) -> int:
        n_idx = check_count("n_idx", n_idx)
        if n_idx % check_count("nr", nr, minimum=1):
            raise ValueError(f"KAI_ASSERT((n_idx % nr) == 0) fails in {self._fn('get_rhs_packed_offset')}")
        return (n_idx // nr) * self.get_rhs_packed_stride(k, nr, kr, sr, bl, scale_dt)

    def get_rhs_packed_size(self, n: int, k: int, nr: int, kr: int, sr: int, bl: int, scale_dt: str = "bf16") -> int:
        n = check_count("n", n)
        return (
            roundup(n, check_count("nr", nr, minimum=1)) // nr * self.get_rhs_packed_stride(k, nr, kr, sr, bl, scale_dt)
        )

    def run_rhs_pack(
        self,
        num_groups: int,
        n: int,
        k: int,
        nr: int,
        kr: int,
        sr: int,
        bl: int,
        rhs: Buffer,
        rhs_stride: int,
        bias: NDArray[np.float32] | None,
        scale: Buffer,
        scale_stride: int,
        rhs_packed: Buffer,
        extra_bytes: int,
        params: kai_rhs_pack_qsi4c32p_params | None,
    ) -> None:
        """``kai_run_<name>``: pack ``rhs`` (uint8 nibble pairs, zero point 8) and bf16 ``scale``.

        Columns past N replicate column N-1 (data, scales, rsum, bias) for the nxk packers; the
        kxn packers differ there (see the class docstrings).
        """
        fn = self._fn("run")
        if params is None:
            raise ValueError(f"KAI_ASSERT(params != NULL) fails in {fn}")
        if params.rhs_zero_point != 8:
            raise ValueError(f"KAI_ASSERT(params->rhs_zero_point == 8) fails in {fn} (got {params.rhs_zero_point})")
        if params.lhs_zero_point != 1:
            raise ValueError(f"KAI_ASSERT(params->lhs_zero_point == 1) fails in {fn} (got {params.lhs_zero_point})")
        n, k = check_count("n", n, minimum=1), check_count("k", k, minimum=1)
        nr, kr, sr, bl = (check_count(x, v, minimum=1) for x, v in (("nr", nr), ("kr", kr), ("sr", sr), ("bl", bl)))
        self._check(n, k, nr, kr, sr, bl, params.scale_dt, "run")
        if self.strict_groups:
            if check_count("num_groups", num_groups) != 1:
                raise ValueError(f"KAI_ASSERT(num_groups == 1) fails in {fn}")
            if check_count("extra_bytes", extra_bytes) != 0:
                raise ValueError(f"KAI_ASSERT(extra_bytes == 0) fails in {fn}")
        rhs_stride = check_count("rhs_stride", rhs_stride)
        scale_stride = check_count("scale_stride", scale_stride)
        nb = k // bl
        sc = read_matrix(as_u8(scale, "scale"), n, nb, scale_stride, "<u2", "scale", fn).astype(np.uint16)
        if bias is not None:
            if not isinstance(bias, np.ndarray) or bias.dtype != F32 or bias.shape != (n,):
                raise TypeError(f"bias must be a float32 array of shape ({n},) or None")
        npad = roundup(n, nr)
        src = np.minimum(np.arange(npad), n - 1)
        w_pad = self._weights(as_u8(rhs, "rhs"), n, k, nr, rhs_stride)
        scale_pad = sc[src]
        d_pad = bf16_to_f32(scale_pad)
        rsum = self._rsum(w_pad, d_pad, bl, kr // sr)
        bias_pad = np.zeros(npad, dtype=F32) if bias is None else bias[src].astype(F32)
        packed = Qsi4c32pLayout(nr, bl, kr // sr, n, k, self.layout).encode(w_pad, scale_pad, rsum, bias_pad)
        out = writable_u8(rhs_packed, "rhs_packed")
        require_bytes(out, packed.size, "rhs_packed", self._fn("get_rhs_packed_size"))
        out[: packed.size] = packed

    def _weights(self, u8: NDArray[np.uint8], n: int, k: int, nr: int, stride: int) -> NDArray[np.int8]:
        """Signed weights of the roundup(n, nr) packed columns, as the packer reads them."""
        npad = roundup(n, nr)
        if self.order == "nxk":
            raw = read_matrix(u8, n, k // 2, stride, np.uint8, "rhs", self._fn("run"))
            u = np.stack([raw & np.uint8(0xF), raw >> np.uint8(4)], axis=2).reshape(n, k)
            w = u.astype(np.int8) - np.int8(8)
            return np.ascontiguousarray(w[np.minimum(np.arange(npad), n - 1)])
        return self._kxn_weights(u8, n, k, nr, stride)

    def _kxn_weights(self, u8: NDArray[np.uint8], n: int, k: int, nr: int, stride: int) -> NDArray[np.int8]:
        raise NotImplementedError

    def _rsum(self, w_pad: NDArray[np.int8], d_pad: NDArray[np.float32], bl: int, bbl: int) -> NDArray[np.float32]:
        raise NotImplementedError

    def pack(
        self,
        rhs: NDArray[np.uint8],
        scales_bf16: NDArray[np.uint16],
        bias: NDArray[np.float32] | None,
        *,
        nr: int,
        kr: int,
        sr: int,
        bl: int,
        n: int | None = None,
        k: int | None = None,
    ) -> NDArray[np.uint8]:
        """Pack a whole weight array: nxk ``rhs`` [N, K/2] or kxn ``rhs`` [K, ceil(N/2)] uint8."""
        if not isinstance(rhs, np.ndarray) or rhs.dtype != np.uint8 or rhs.ndim != 2:
            raise TypeError("rhs must be a 2-D uint8 array of nibble pairs (zero point 8)")
        if self.order == "nxk":
            n_, k_ = rhs.shape[0], 2 * rhs.shape[1]
        else:
            k_, n_ = rhs.shape[0], n if n is not None else 2 * rhs.shape[1]
        n_ = n if n is not None else n_
        k_ = k if k is not None else k_
        r = np.ascontiguousarray(rhs)
        out = np.zeros(self.get_rhs_packed_size(n_, k_, nr, kr, sr, bl), dtype=np.uint8)
        self.run_rhs_pack(
            1,
            n_,
            k_,
            nr,
            kr,
            sr,
            bl,
            r,
            r.shape[1],
            bias,
            np.ascontiguousarray(scales_bf16),
            scales_bf16.shape[1] * 2,
            out,
            0,
            kai_rhs_pack_qsi4c32p_params(),
        )
        return out


def d_chunks(d: NDArray[np.float32], bl: int, chunk: int) -> NDArray[np.float32]:
    """Each block scale repeated for the ``bl // chunk`` row-sum chunks of its block."""
    return np.repeat(d, bl // chunk, axis=1)


def _psum_c32p(w: NDArray[np.int8], bbl: int) -> NDArray[np.int64]:
    npad, k = w.shape
    v = w.astype(np.int64).reshape(npad, k // 32, 2, 16 // bbl, bbl)
    out: NDArray[np.int64] = v.sum(axis=(2, 4)).reshape(npad, -1)
    return out


class kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0(Qsi4c32pPacker):
    """XNNPACK's NEON-path RHS packer, N x K input (``kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0.c``; docs/kernels.md §7.2).

    ``rsum[j] = RN32(rsum[j] + psum * d)`` in the order qb -> 32-k chunk -> segment, ``psum`` =
    sum of the 2*bbl codes of a segment (k and k + 16 halves). Padded columns replicate N-1.
    """

    name = "kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0.c"
    layout = "qsi4c32p"
    order = "nxk"
    strict_groups = True

    def _rsum(self, w_pad: NDArray[np.int8], d_pad: NDArray[np.float32], bl: int, bbl: int) -> NDArray[np.float32]:
        return rsum_chain(_psum_c32p(w_pad, bbl), d_chunks(d_pad, bl, 2 * bbl), fused=True)


class kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0(Qsi4c32pPacker):
    """XNNPACK's NEON-path RHS packer, K x N input (``XNN_FLAG_TRANSPOSE_WEIGHTS``).

    Same layout and row sums as the nxk packer for real columns. A padded column n >= N
    reads byte ``(N-1) / 2`` of each k-row but takes the nibble by the parity of n, so it
    holds column N-1 or its neighbour in that byte (N-2, or the pad nibble when N is odd).

    # Note: its rsum accumulates ``(lo + hi - 16) * d`` per byte in float before adding; for the
    # positive normal scales XNNPACK accepts every term is exact, so the nxk order is used.
    """

    name = "kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0.c"
    layout = "qsi4c32p"
    order = "kxn"
    strict_groups = True

    def _kxn_weights(self, u8: NDArray[np.uint8], n: int, k: int, nr: int, stride: int) -> NDArray[np.int8]:
        npad = roundup(n, nr)
        raw = read_matrix(u8, k, (n + 1) // 2, stride, np.uint8, "rhs", self._fn("run"))  # [K, ceil(N/2)]
        j = np.arange(npad)
        col_byte = np.minimum(j, n - 1) // 2
        b = raw[:, col_byte].T  # [npad, K]
        u = np.where((j % 2)[:, None] == 1, b >> np.uint8(4), b & np.uint8(0xF))
        out: NDArray[np.int8] = (u.astype(np.int8) - np.int8(8)).astype(np.int8)
        return out

    def _rsum(self, w_pad: NDArray[np.int8], d_pad: NDArray[np.float32], bl: int, bbl: int) -> NDArray[np.float32]:
        return rsum_chain(_psum_c32p(w_pad, bbl), d_chunks(d_pad, bl, 2 * bbl), fused=True)
