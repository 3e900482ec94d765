"""KleidiAI's ``kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme``: the pqs8 RHS (bias', int8 W, scale').

The packed format is :class:`kleidiref.kai.layouts.Qsi8cxp2vlx4sbLayout`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..._buffers import Buffer, as_u8, check_count, check_dtype, read_matrix, require_bytes, roundup, writable_u8
from ...numerics import wrap_i32
from ..interface import Ukernel
from ..layouts import Qsi8cxp2vlx4sbLayout
from ..params import kai_rhs_pack_qsi8cx_params

__all__ = ["kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme"]

F32 = np.dtype(np.float32)
I8 = np.dtype(np.int8)
I32 = np.dtype(np.int32)
KR = 4


class kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(Ukernel):
    """RHS packer, K x N int8 weights, nr = 2 VLs, kr = 4.

    Block g of nr columns (``K4 = roundup(K, 4)``; columns past N and k past K are zero)::

        int32 bias'[j] = bias[n] + (-izp) * sum_{k<K} W[k][n]   (int32 wrap)  at 4 j
        int8  W[k][n]                  at 4 nr + (k // 4) * nr * 4 + j * 4 + k % 4
        f32   scale'[j] = RN32(scale[n] * scale_multiplier)                    at 4 nr + nr K4 + 4 j

    ``izp = params.lhs_zero_point``. With K == 0 the bias slots are not written.
    """

    name = "kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme"
    variant = "pqs8_qc8w_gemm"
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme.c"

    def get_n_step(self) -> int:
        """nr = n_step = 2 * VLb / 4."""
        return self.rhs_layout(0, 0).nr

    def rhs_layout(self, n: int, k: int) -> Qsi8cxp2vlx4sbLayout:
        """The packed format of an n x k RHS."""
        return Qsi8cxp2vlx4sbLayout.for_svl(self.svl, n, k)

    def _check_n_idx(self, n_idx: int, fn: str) -> int:
        n_idx = check_count("n_idx", n_idx)
        self._assume(n_idx % self.get_n_step() == 0, "n_idx % n_step == 0", fn)
        return n_idx

    def get_rhs_offset(self, n_idx: int) -> int:
        return self._check_n_idx(n_idx, "get_rhs_offset")

    def get_bias_offset(self, n_idx: int) -> int:
        return check_count("n_idx", n_idx) * 4

    def get_scale_offset(self, n_idx: int) -> int:
        return check_count("n_idx", n_idx) * 4

    def get_rhs_packed_stride(self, k: int) -> int:
        return self.rhs_layout(0, check_count("k", k)).stride

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx = self._check_n_idx(n_idx, "get_rhs_packed_offset")
        return n_idx // self.get_n_step() * self.get_rhs_packed_stride(k)

    def get_rhs_packed_size(self, n: int, k: int) -> int:
        nr = self.get_n_step()
        return roundup(check_count("n", n), nr) // nr * self.get_rhs_packed_stride(k)

    def run_rhs_pack(
        self,
        num_groups: int,
        n: int,
        k: int,
        nr: int,
        kr: int,
        sr: int,
        rhs_stride_row: int,
        rhs: Buffer,
        bias: Buffer | None,
        scale: Buffer | None,
        rhs_packed: Buffer,
        extra_bytes: int,
        params: kai_rhs_pack_qsi8cx_params | None,
    ) -> None:
        """``kai_run_<packer>``: ``rhs`` is K rows of N int8 with a byte row stride."""
        fn = "run_rhs_pack"
        n, k = check_count("n", n), check_count("k", k)
        self._assume(check_count("num_groups", num_groups) == 1, "num_groups == 1", fn)
        self._assume(check_count("nr", nr) == self.get_n_step(), f"nr == {self.get_n_step()}", fn)
        self._assume(check_count("kr", kr) == KR, f"kr == {KR}", fn)
        self._assume(check_count("sr", sr) == 1, "sr == 1", fn)
        self._assume(rhs is not None, "rhs != NULL", fn)
        self._assume(bias is not None, "bias != NULL", fn)
        self._assume(scale is not None, "scale != NULL", fn)
        self._assume(rhs_packed is not None, "rhs_packed != NULL", fn)
        self._assume(check_count("extra_bytes", extra_bytes) == 0, "extra_bytes == 0", fn)
        self._assume(params is not None, "params != NULL", fn)
        if not isinstance(params, kai_rhs_pack_qsi8cx_params):
            raise TypeError("params must be a kai_rhs_pack_qsi8cx_params")
        for label, arr, dt in (("rhs", rhs, I8), ("bias", bias, I32), ("scale", scale, F32)):
            if isinstance(arr, np.ndarray) and arr.dtype != dt:
                raise TypeError(f"{label} must be {dt} for {self.name}, got {arr.dtype}")
        stride = check_count("rhs_stride_row", rhs_stride_row)
        out = writable_u8(rhs_packed, "rhs_packed")
        size = self.get_rhs_packed_size(n, k)
        require_bytes(out, size, "rhs_packed", f"kai_get_rhs_packed_size_{self.name[4:]}")
        if n == 0:
            return
        src = f"{self.c_name('run')}"
        w_kn = read_matrix(as_u8(rhs, "rhs"), k, n, stride, I8, "rhs", src)
        b = read_matrix(as_u8(bias, "bias"), 1, n, 4 * n, I32, "bias", src)[0]
        sc = read_matrix(as_u8(scale, "scale"), 1, n, 4 * n, F32, "scale", src)[0]
        fmt = self.rhs_layout(n, k)
        nb, k4 = fmt.blocks, fmt.k4
        wp = np.zeros((k4, nb * nr), dtype=I8)
        wp[:k, :n] = w_kn
        # bias' = bias + (-izp) * colsum: SDOT with all-ones, negated izp, MLA (int32 wrap).
        neg_izp = int(wrap_i32(np.array(-params.lhs_zero_point, dtype=np.int64)))
        colsum = wp.sum(axis=0, dtype=np.int64)
        bias64 = np.zeros(nb * nr, dtype=np.int64)
        bias64[:n] = b
        bias_p = wrap_i32(bias64 + neg_izp * wrap_i32(colsum).astype(np.int64))
        bias_p[n:] = 0
        # scale' = RN32(scale * scale_multiplier): one FMUL.
        scale_p = np.zeros(nb * nr, dtype=F32)
        with np.errstate(over="ignore", invalid="ignore"):
            scale_p[:n] = sc * np.float32(params.scale_multiplier)
        # With K == 0 the bias slots are not written.
        fmt.encode_into(out, bias_p if k > 0 else None, wp, scale_p)

    def pack(
        self,
        rhs_kxn: NDArray[np.int8],
        scale: NDArray[np.float32],
        bias: NDArray[np.int32] | None = None,
        *,
        params: kai_rhs_pack_qsi8cx_params,
    ) -> NDArray[np.uint8]:
        """Pack a whole contiguous K x N int8 RHS; a None bias is zeros (as XNNPACK substitutes)."""
        w = check_dtype("rhs", rhs_kxn, I8, "qc8w weights are int8")
        if w.ndim != 2:
            raise ValueError(f"rhs must be 2-D [K, N], got shape {w.shape}")
        k, n = w.shape
        check_dtype("scale", scale, F32, "per-channel requantization scales are float32")
        if scale.shape != (n,):
            raise ValueError(f"scale must have shape ({n},), got {scale.shape}")
        if bias is None:
            # Note: XNNPACK substitutes a zero bias (the SME packer requires bias != NULL).
            bias = np.zeros(n, dtype=I32)
        check_dtype("bias", bias, I32, "the pqs8 bias is int32")
        if bias.shape != (n,):
            raise ValueError(f"bias must have shape ({n},), got {bias.shape}")
        out = np.zeros(self.get_rhs_packed_size(n, k), dtype=np.uint8)
        self.run_rhs_pack(
            1,
            n,
            k,
            self.get_n_step(),
            KR,
            1,
            n,
            np.ascontiguousarray(w),
            np.ascontiguousarray(bias),
            np.ascontiguousarray(scale),
            out,
            0,
            params,
        )
        return out
