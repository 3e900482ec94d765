"""KleidiAI's ``kai_rhs_pack_{nxk,kxn}_qsi8cxp_qsi8cx_neon``: int8 per-channel weights with row sums, scales and bias.

Plain C, SVL-independent; the packed format is :class:`kleidiref.kai.layouts.Qsi8cxpLayout`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from ..._buffers import Buffer, as_u8, check_count, check_dtype, read_matrix, require_bytes, roundup, writable_u8
from ...numerics import wrap_i32
from ..interface import Ukernel
from ..layouts import Qsi8cxpLayout
from ..params import kai_rhs_pack_qsi8cx_params

__all__ = ["Qsi8cxpRhsPacker", "kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon", "kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon"]

F32 = np.dtype(np.float32)
I8 = np.dtype(np.int8)
#: The kr the packers default to (the SME kernels' and XNNPACK's dotprod branch).
KR = 4


def _kai_assert(cond: bool, what: str, fn: str) -> None:
    if not cond:
        raise ValueError(f"KAI_ASSERT({what}) fails in {fn}")


class Qsi8cxpRhsPacker(Ukernel):
    """``kai_rhs_pack_{nxk,kxn}_qsi8cxp_qsi8cx_neon``.

    Block g of nr columns, with ``K32 = roundup(K, 32)`` and ``n' = min(g*nr + j, N - 1)``::

        int8  W[n'][k]  (0 for k >= K)     at (k // kr) * nr * kr + j * kr + k % kr
        int32 rsum[j] = wrap_i32(lhs_zero_point * sum_{k<K} W[n'][k])   at nr * K32 + 4 j
        f32   scale[n']                     at nr * K32 + 4 nr + 4 j
        f32   bias[n'] (0 if bias is NULL)  at nr * K32 + 8 nr + 4 j

    Columns past N replicate column N-1 (data, rsum, scale and bias). The int32 sums wrap.
    ``params.scale_multiplier`` is ignored by this packer.
    """

    variant = "qp8_f32_qc8w_gemm"
    isa = "neon"
    layout: ClassVar[str]

    def get_n_step(self, nr: int) -> int:
        return check_count("nr", nr, minimum=1)

    def get_rhs_offset(self, n_idx: int, rhs_stride: int) -> int:
        """Byte offset of column ``n_idx`` in the unpacked RHS."""
        n_idx, rhs_stride = check_count("n_idx", n_idx), check_count("rhs_stride", rhs_stride)
        return n_idx * rhs_stride if self.layout == "nxk" else n_idx

    def get_rhs_packed_stride(self, k: int, nr: int, kr: int, sr: int) -> int:
        del sr  # the C signature's sr: the stride does not depend on it
        return Qsi8cxpLayout(check_count("nr", nr, minimum=1), kr, 0, check_count("k", k)).stride

    def get_rhs_packed_offset(self, n_idx: int, k: int, nr: int, kr: int, sr: int) -> int:
        n_idx, nr = check_count("n_idx", n_idx), check_count("nr", nr, minimum=1)
        _kai_assert(n_idx % nr == 0, "(n_idx % nr) == 0", f"kai_get_rhs_packed_offset_{self.name[4:]}")
        return (n_idx // nr) * self.get_rhs_packed_stride(k, nr, kr, sr)

    def get_rhs_packed_size(self, n: int, k: int, nr: int, kr: int, sr: int) -> int:
        n, nr = check_count("n", n), check_count("nr", nr, minimum=1)
        return roundup(n, nr) // nr * self.get_rhs_packed_stride(k, nr, kr, sr)

    def run_rhs_pack(
        self,
        num_groups: int,
        n: int,
        k: int,
        nr: int,
        kr: int,
        sr: int,
        rhs: Buffer,
        bias: Buffer | None,
        scale: Buffer | None,
        rhs_packed: Buffer,
        extra_bytes: int,
        params: kai_rhs_pack_qsi8cx_params | None,
    ) -> None:
        """``kai_run_<packer>``: ``rhs`` is N x K (nxk, row stride K) or K x N (kxn, row stride N)."""
        fn = f"{self.c_name('run')}"
        n, k = check_count("n", n), check_count("k", k)
        nr, kr, sr = check_count("nr", nr, minimum=1), check_count("kr", kr, minimum=1), check_count("sr", sr)
        _kai_assert(check_count("num_groups", num_groups) == 1, "num_groups == 1", fn)
        _kai_assert(check_count("extra_bytes", extra_bytes) == 0, "extra_bytes == 0", fn)
        _kai_assert(sr == 1, "sr == 1", fn)
        _kai_assert(rhs is not None, "rhs != NULL", fn)
        _kai_assert(scale is not None, "scale != NULL", fn)
        _kai_assert(rhs_packed is not None, "rhs_packed != NULL", fn)
        _kai_assert(params is not None, "params != NULL", fn)
        if not isinstance(params, kai_rhs_pack_qsi8cx_params):
            raise TypeError("params must be a kai_rhs_pack_qsi8cx_params")
        fmt = Qsi8cxpLayout(nr, kr, n, k)
        k32 = fmt.k32
        if k32 % kr:
            # Note: upstream does not check this; with kr not dividing roundup(k, 32) its loop
            # writes a layout no kernel reads, so the oracle refuses it.
            raise ValueError(f"kr = {kr} must divide roundup(k, 32) = {k32}")
        for label, arr, dt in (("rhs", rhs, I8), ("scale", scale, F32), ("bias", bias, F32)):
            if isinstance(arr, np.ndarray) and arr.dtype != dt:
                raise TypeError(f"{label} must be {dt} for {self.name}, got {arr.dtype}")
        out = writable_u8(rhs_packed, "rhs_packed")
        size = self.get_rhs_packed_size(n, k, nr, kr, sr)
        require_bytes(out, size, "rhs_packed", f"kai_get_rhs_packed_size_{self.name[4:]}")
        if n == 0:
            return
        src = as_u8(rhs, "rhs")
        if self.layout == "nxk":
            w_nk = read_matrix(src, n, k, k, I8, "rhs", fn)
        else:
            w_nk = read_matrix(src, k, n, n, I8, "rhs", fn).T
        sc = read_matrix(as_u8(scale, "scale"), 1, n, 4 * n, F32, "scale", fn)[0]
        b = (
            np.zeros(n, dtype=F32)
            if bias is None
            else read_matrix(as_u8(bias, "bias"), 1, n, 4 * n, F32, "bias", fn)[0]
        )
        cols = np.minimum(np.arange(fmt.blocks * nr), n - 1)  # columns past N replicate column N-1
        wp = np.zeros((fmt.blocks * nr, k32), dtype=I8)
        wp[:, :k] = w_nk[cols]
        # rsum: int32 partial sums times lhs_zero_point, accumulated in int32 (wraps).
        rsum = wrap_i32(wp.sum(axis=1, dtype=np.int64) * params.lhs_zero_point)
        out[:size] = fmt.encode(wp, rsum, sc[cols], b[cols])

    def pack(
        self,
        rhs: NDArray[np.int8],
        scale: NDArray[np.float32],
        bias: NDArray[np.float32] | None = None,
        *,
        nr: int,
        kr: int = KR,
        params: kai_rhs_pack_qsi8cx_params | None = None,
    ) -> NDArray[np.uint8]:
        """Pack a whole contiguous RHS ([N, K] for nxk, [K, N] for kxn); returns the bytes.

        ``params`` defaults to XNNPACK's ``{lhs_zero_point = 1, scale_multiplier = 1.0}``.
        """
        w = check_dtype("rhs", rhs, I8, "qsi8cx weights are int8")
        if w.ndim != 2:
            raise ValueError(f"rhs must be 2-D, got shape {w.shape}")
        n, k = w.shape if self.layout == "nxk" else w.shape[::-1]
        check_dtype("scale", scale, F32, "per-channel weight scales are float32")
        if scale.shape != (n,):
            raise ValueError(f"scale must have shape ({n},), got {scale.shape}")
        if bias is not None:
            check_dtype("bias", bias, F32, "the qp8 bias is float32")
            if bias.shape != (n,):
                raise ValueError(f"bias must have shape ({n},), got {bias.shape}")
        p = kai_rhs_pack_qsi8cx_params() if params is None else params
        out = np.zeros(self.get_rhs_packed_size(n, k, nr, kr, 1), dtype=np.uint8)
        self.run_rhs_pack(
            1,
            n,
            k,
            nr,
            kr,
            1,
            np.ascontiguousarray(w),
            None if bias is None else np.ascontiguousarray(bias),
            np.ascontiguousarray(scale),
            out,
            0,
            p,
        )
        return out


class kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon(Qsi8cxpRhsPacker):
    """RHS packer for N x K int8 weights (XNNPACK's default layout)."""

    name = "kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon.c"
    layout = "nxk"


class kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon(Qsi8cxpRhsPacker):
    """RHS packer for K x N int8 weights (``XNN_FLAG_TRANSPOSE_WEIGHTS``): same bytes as nxk."""

    name = "kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon.c"
    layout = "kxn"
