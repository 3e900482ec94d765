"""``qp8_f32_qb4w_gemm``: f32 activations x blockwise int4 weights (bf16 scales) -> f32.

Activations are quantized per row to int8 by ``kai_lhs_quant_pack_qai8dxp_f32`` (docs/kernels.md
§4); weights are signed 4-bit with one bf16 scale per block of ``bl`` along K. Two paths:

* **NEON, what XNNPACK runs** (``init_qp8_f32_qb4w_gemm_config`` has no SME branch; docs/kernels.md
  §7.2, golden id ``qp8_f32_qb4w_gemm_neon``): RHS ``kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0``
  (nr 4, bias NULL, then XNNPACK's bias patch on the real channels), LHS with mr 4 (1 when
  M == 1). i8mm branch (kr 16, sr 2): ``..._qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm`` and
  ``..._qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod`` (M == 1); dotprod branch (kr 8, sr 2):
  ``..._qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod`` and ``..._qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod``.
* **SME2, KleidiAI's own kernels** (docs/kernels.md §7.2, golden id ``qp8_f32_qb4w_gemm``): RHS
  ``kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon`` (nr 4*VLs, kr 8, sr 2, bias in the
  packer), ``..._qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa`` and
  ``..._qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot`` (M == 1). XNNPACK never selects them.

Per output element, in kernel order (binary32; details in ``_qb4w_common.qb4w_matmul``)::

    isum_qb = sum_{k in qb} q[m,k] * w[n,k]           exact int32 (SMMLA / SDOT / SMOPA)
    facc    = fma32(RN32(isum_qb), d_qb[n], facc)      qb = 0..nb-1 (MOPA: FMUL for qb = 0)
    facc    = fma32(RN32(-zp[m]), rsum[n], facc)
    y       = RN32(RN32(facc * dq[m]) + bias[n])       NEON, SME2 MOPA (unfused)
            = fma32(facc, dq[m], bias[n])              SME2 GEMV (fused)
    out     = FMIN(FMAX(y, min), max)  NEON (NaN propagates) | FCLAMP(y, min, max)  SME2

Long module: it still holds the qb4w packers and kernels (KleidiAI's NEON and SME2 families)
beside the friendly API; they move to ``kleidiref.kai`` together with their numeric helpers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .._buffers import (
    Buffer,
    as_u8,
    check_count,
    read_matrix,
    require_bytes,
    roundup,
    writable_u8,
)
from ..configs import alias, select_kai_kernel
from ..kai.interface import BlockwiseKernel, ClampBounds, TileParams, Ukernel
from ..kai.layouts import Qai8dxpLayout, Qsi4c32pLayout
from ..kai.pack import Qai8dxpRows, kai_lhs_quant_pack_qai8dxp_f32
from ..numerics import bf16_to_f32
from ..quant import qb4
from ..quant.qai8dx import quantize_qai8dx
from ..targets import Target, resolve_target
from ..validate import check_alloc, check_bool, check_output_range
from ._qb4w_common import (
    EpilogueKind,
    Layout,
    PreparedRhs,
    check_rhs_params,
    prepare_rhs,
    qb4w_matmul,
    rsum_chain,
)

__all__ = [
    "PreparedQb4w",
    "Qai8dxpRows",
    "emulated_path",
    "gemm",
    "kai_lhs_quant_pack_qai8dxp_f32",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm",
    "kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
    "kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
    "kai_rhs_pack_qsi4c32p_params",
    "prepare_weights",
    "reproduce_golden",
    "reproduce_golden_neon",
    "select_kernel",
    "xnn_pack_kai_qb4_weights_and_biases",
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


class _Qsi4c32Packer(Ukernel):
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


def _psum_chunks(w: NDArray[np.int8], chunk: int) -> NDArray[np.int64]:
    npad, k = w.shape
    out: NDArray[np.int64] = w.astype(np.int64).reshape(npad, k // chunk, chunk).sum(axis=2)
    return out


def _d_chunks(d: NDArray[np.float32], bl: int, chunk: int) -> NDArray[np.float32]:
    return np.repeat(d, bl // chunk, axis=1)


class kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(_Qsi4c32Packer):
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
        return rsum_chain(_psum_chunks(w_pad, 32), _d_chunks(d_pad, bl, 32), fused=True)


class kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(_Qsi4c32Packer):
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
        return rsum_chain(_psum_chunks(w_pad, 4), _d_chunks(d_pad, bl, 4), fused=True)


def _psum_c32p(w: NDArray[np.int8], bbl: int) -> NDArray[np.int64]:
    npad, k = w.shape
    v = w.astype(np.int64).reshape(npad, k // 32, 2, 16 // bbl, bbl)
    out: NDArray[np.int64] = v.sum(axis=(2, 4)).reshape(npad, -1)
    return out


class kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0(_Qsi4c32Packer):
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
        return rsum_chain(_psum_c32p(w_pad, bbl), _d_chunks(d_pad, bl, 2 * bbl), fused=True)


class kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0(_Qsi4c32Packer):
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
        return rsum_chain(_psum_c32p(w_pad, bbl), _d_chunks(d_pad, bl, 2 * bbl), fused=True)


def xnn_pack_kai_qb4_weights_and_biases(
    rhs: NDArray[np.uint8],
    scales_bf16: NDArray[np.uint16],
    bias: NDArray[np.float32] | None,
    *,
    n: int,
    k: int,
    bl: int,
    kr: int,
    sr: int,
    nr: int = 4,
    transpose_weights: bool = False,
) -> NDArray[np.uint8]:
    """XNNPACK's ``xnn_pack_kai_qb4_weights_and_biases`` (src/reference/packing.cc).

    1. ``kai_run_rhs_pack_{nxk,kxn}_qsi4c32p_qsu4c32s1s0`` with ``bias = NULL`` (KleidiAI writes
       zeros), ``{lhs_zero_point = 1, rhs_zero_point = 8, kai_dt_bf16}``,
       ``scale_stride = (K/bl) * 2``;
    2. bias patch (``xnn_init_qs8_qc8w_scale_fp32_params`` on the bias slots of each nr-block):
       real channels get ``bias[n]``, padded channels keep 0.
    """
    packer: _Qsi4c32Packer = (
        kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0() if transpose_weights else kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0()
    )
    out = packer.pack(rhs, scales_bf16, None, nr=nr, kr=kr, sr=sr, bl=bl, n=n, k=k)
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.dtype != F32 or bias.shape != (n,):
            raise TypeError(f"bias must be a float32 array of shape ({n},) or None")
        fmt = Qsi4c32pLayout(nr, bl, kr // sr, n, k, "qsi4c32p")
        g, stride = fmt.blocks, fmt.stride
        view = out.reshape(g, stride)[:, stride - 4 * nr :]
        slots = np.zeros(g * nr, dtype="<f4")
        slots[:n] = bias
        view[...] = slots.view(np.uint8).reshape(g, 4 * nr)
    return out


# ----------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------


class _Qb4wKernel(BlockwiseKernel):
    """``kai_matmul_clamp_f32_qai8dxp*_qsi4c32p*``: run_matmul takes ``bl`` after k (as the C).

    One ``compute`` stage: the block scales are applied inside the accumulation (see
    :func:`qb4w_matmul`), so there is no separate integer accumulator to hand to an epilogue.
    """

    variant = VARIANT
    #: Packed RHS layout and its block depth (``kr / sr`` of the RHS packer).
    layout: ClassVar[Layout]
    rhs_bbl: ClassVar[int]
    kind: ClassVar[EpilogueKind]
    #: Tile constants: mr, nr, m_step, n_step in units of VLs for SME2 (``vl_scaled``) or plain.
    tiles: ClassVar[tuple[int, int, int, int, int, int]]
    vl_scaled: ClassVar[tuple[bool, bool, bool, bool]]

    def tile_params(self) -> TileParams:
        mr, nr, kr, sr, ms, ns = self.tiles
        s = self.vl_scaled
        v = self.vls
        return TileParams(
            mr=mr * (v if s[0] else 1),
            nr=nr * (v if s[1] else 1),
            kr=kr,
            sr=sr,
            m_step=ms * (v if s[2] else 1),
            n_step=ns * (v if s[3] else 1),
        )

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "(m_idx % mr) == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def get_rhs_packed_offset(self, n_idx: int, k: int, bl: int | None = None) -> int:
        n_idx, k = check_count("n_idx", n_idx), check_count("k", k)
        b = self.check_bl(bl, "get_rhs_packed_offset")
        self._assume(k % b == 0, "(k % bl) == 0", "get_rhs_packed_offset")
        self._assume(n_idx % self.get_nr() == 0, "(n_idx % nr) == 0", "get_rhs_packed_offset")
        return self.rhs_layout(0, k, b).offset(n_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def rhs_packed_size(self, n: int, k: int, bl: int | None = None) -> int:
        b = self.check_bl(bl, "get_rhs_packed_size")
        return self.rhs_layout(n, k, b).size()

    def lhs_layout(self, m: int, k: int) -> Qai8dxpLayout:
        """The packed LHS format this kernel reads."""
        p = self.tile_params()
        return Qai8dxpLayout(p.mr, p.kr, p.sr, m, k)

    def rhs_layout(self, n: int, k: int, bl: int) -> Qsi4c32pLayout:
        """The packed RHS format this kernel reads (block depth ``rhs_bbl``)."""
        return Qsi4c32pLayout(self.get_nr(), bl, self.rhs_bbl, n, k, self.layout)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> Qai8dxpRows:
        q, neg_zp, dq = self.lhs_layout(m, k).decode(lhs)
        return Qai8dxpRows(q[:, :k], neg_zp, dq)

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int, bl: int | None = None) -> PreparedRhs:
        b = self.check_bl(bl, "run_matmul")
        w, sc, rsum, bias = self.rhs_layout(n, k, b).decode(rhs)
        return prepare_rhs(w, sc, rsum, bias, b)

    def compute(self, lhs: Qai8dxpRows, rhs: PreparedRhs, epilogue: ClampBounds) -> NDArray[np.float32]:
        """The blockwise accumulation, the zero-point and scale steps and the clamp (:func:`qb4w_matmul`)."""
        lo, hi = epilogue
        return qb4w_matmul(lhs.q, lhs.neg_zp, lhs.dq, rhs, self.kind, lo, hi, fz=self.fz)


class kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa(_Qb4wKernel):
    """SME2 MOPA: mr = VLs, nr = 4*VLs, kr 8, sr 2 (docs/kernels.md §7.2). Per quant block::

        isum = SMOPA 4-way sums (LUTI4-expanded nibbles)   exact int32
        f = SCVTF(isum); facc = FMUL(f, d_0) (qb 0) | FMLA(facc, f, d_qb)
    then FMLA(facc, SCVTF(-zp), rsum); y = FMUL(facc, dq); y = FADD(y, bias); FCLAMP(y).
    """

    name = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    layout = "ps1s0nrx4"
    rhs_bbl = 4
    kind = "mopa"
    tiles = (1, 4, 8, 2, 1, 4)
    vl_scaled = (True, True, True, True)
    asserts_shape = True


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot(_Qb4wKernel):
    """SME2 GEMV (M == 1): mr 1, nr = 4*VLs, kr 8, sr 2 (docs/kernels.md §7.2)::

    isum = SDOT (ZA vgx4, LUTI4)   f = SCVTF(isum)   facc = FMLA(facc, f, d_qb) from +0
    facc = FMLA(facc, rsum, SCVTF(-zp));  y = FMLA(bias, facc, dq) (fused);  FCLAMP(y)
    """

    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot"
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    layout = "ps1s0nrx4"
    rhs_bbl = 4
    kind = "sme2_dot"
    tiles = (1, 4, 8, 2, 1, 4)
    vl_scaled = (False, True, False, True)
    asserts_shape = True
    gemv = True


class _NeonQb4w(_Qb4wKernel):
    """XNNPACK's NEON qb4w kernels (docs/kernels.md §7.2), SVL-independent::

    isum*16 = SMMLA / SDOT on (byte << 4, byte & 0xF0)      exact int32
    f = SCVTF(isum*16, #4) = RN32(isum); facc = FMLA(facc, f, d_qb) from +0
    facc = FMLA(facc, rsum, SCVTF(-zp)); y = FMUL(facc, dq); y = FADD(y, bias)
    out = FMIN(FMAX(y, min), max)                            NaN propagates
    """

    isa = "neon"
    layout = "qsi4c32p"
    kind = "neon"
    vl_scaled = (False, False, False, False)


class kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm(_NeonQb4w):
    """NEON i8mm (XNNPACK ``16x4c16s2 mstep4``): mr 4, nr 4, kr 16, sr 2, m_step 16, n_step 4."""

    name = "kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 8
    tiles = (4, 4, 16, 2, 16, 4)


class kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod(_NeonQb4w):
    """NEON dotprod GEMV of XNNPACK's i8mm branch (``1x4c16s2``): mr 1, nr 4, kr 16, sr 2."""

    name = "kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 8
    tiles = (1, 4, 16, 2, 1, 4)
    gemv = True


class kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod(_NeonQb4w):
    """NEON dotprod (XNNPACK ``4x4c8s2``): mr 4, nr 4, kr 8, sr 2, m_step 16, n_step 4."""

    name = "kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 4
    tiles = (4, 4, 8, 2, 16, 4)


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod(_NeonQb4w):
    """NEON dotprod GEMV of XNNPACK's dotprod branch (``1x4c8s2``): mr 1, nr 4, kr 8, sr 2."""

    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod"
    source = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4c32p/" + name + "_asm.S"
    rhs_bbl = 4
    tiles = (1, 4, 8, 2, 1, 4)
    gemv = True


SME2_MOPA = kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4c32p4vlx4_1vlx4vl_sme2_mopa
SME2_DOT = kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4vlx4_1x4vl_sme2_dot
# The config's kernels, by the names kleidiref.configs gives them (the SME2 ones above are in no
# XNNPACK config).
NEON_I8MM = alias(globals(), VARIANT, "i8mm", "mopa", _Qb4wKernel)
NEON_I8MM_GEMV = alias(globals(), VARIANT, "i8mm", "gemv", _Qb4wKernel)
NEON_DOT = alias(globals(), VARIANT, "dotprod", "mopa", _Qb4wKernel)
NEON_DOT_GEMV = alias(globals(), VARIANT, "dotprod", "gemv", _Qb4wKernel)

#: Kernel -> its sibling for the other M regime (same packed RHS).
_FAMILY: dict[type[_Qb4wKernel], tuple[type[_Qb4wKernel], type[_Qb4wKernel]]] = {
    c: pair for pair in ((SME2_MOPA, SME2_DOT), (NEON_I8MM, NEON_I8MM_GEMV), (NEON_DOT, NEON_DOT_GEMV)) for c in pair
}


def select_kernel(target: Target, m: int) -> type[_Qb4wKernel]:
    """The kernel XNNPACK's ``qp8_f32_qb4w_gemm_config`` runs on ``target`` for an M-row problem.

    # Note: XNNPACK has no SME/SME2 branch for this variant, so on an SME2 CPU the NEON path is
    # what runs and what is emulated by default: i8mm when the target has FEAT_I8MM
    # (``16x4x32_neon_i8mm``, GEMV ``1x4x32_neon_dotprod`` for M == 1), otherwise dotprod
    # (``16x4_neon_dotprod``, GEMV ``1x4_neon_dotprod``). KleidiAI's SME2 kernels are reachable
    # only by name (``gemm(..., kernel=...)``).
    """
    m = check_count("m", m, minimum=1)
    return select_kai_kernel(VARIANT, target, m, _Qb4wKernel, "qd8_f32_qb4w_gemm")


def emulated_path(target: Target, m: int) -> str:
    """A sentence naming the kernel :func:`select_kernel` picks and why."""
    k = select_kernel(target, m)
    branch = "i8mm" if target.i8mm else "dotprod"
    return (
        f"{k.name} (XNNPACK qp8_f32_qb4w NEON {branch} branch, M={'1 GEMV' if m == 1 else m}; "
        "XNNPACK has no SME2 qb4w branch)"
    )


@dataclasses.dataclass(frozen=True)
class PreparedQb4w:
    """Weights packed once for one kernel family, plus their decoded BLAS operands.

    ``rhs_packed`` are the bytes the kernel reads; ``operand`` is what the exact fast path
    multiplies (see ``_qb4w_common.PreparedRhs``).
    """

    family: tuple[str, str]
    svl: int | None
    n: int
    k: int
    bl: int
    rhs_packed: NDArray[np.uint8]
    operand: PreparedRhs


def _kernel_cls(name: str) -> type[_Qb4wKernel]:
    found = {c.name: c for c in _FAMILY}.get(name)
    if found is None:
        raise ValueError(f"{name!r} is not a qp8_f32_qb4w kernel (one of {sorted(c.name for c in _FAMILY)})")
    return found


def _as_codes(rhs: NDArray[Any], transpose_rhs: bool, n: int | None) -> tuple[NDArray[np.uint8], int, int]:
    """XNNPACK's uint8 nibble pairs (zero point 8) and (N, K) from int4 codes or packed nibbles."""
    if not isinstance(rhs, np.ndarray) or rhs.ndim != 2:
        raise TypeError("rhs must be a 2-D int8 array of codes in [-8, 7] or uint8 nibble pairs (zero point 8)")
    if rhs.dtype == np.int8:
        codes = rhs.T if transpose_rhs else rhs
        nn, kk = codes.shape
        return qb4.pack_nibbles(np.ascontiguousarray(codes), "kxn" if transpose_rhs else "nxk"), nn, kk
    if rhs.dtype == np.uint8:
        if transpose_rhs:
            if n is None:
                raise ValueError("packed kxn nibbles [K, ceil(N/2)] do not say N: pass n=")
            return np.ascontiguousarray(rhs), n, rhs.shape[0]
        return np.ascontiguousarray(rhs), rhs.shape[0], 2 * rhs.shape[1]
    raise TypeError(f"rhs must be int8 codes or uint8 nibble pairs, got {rhs.dtype}")


def prepare_weights(
    rhs: NDArray[Any],
    scales_bf16: NDArray[np.uint16],
    *,
    bl: int,
    bias: NDArray[np.float32] | None = None,
    transpose_rhs: bool = False,
    n: int | None = None,
    target: Target | None = None,
    kernel: str | None = None,
    kernel_zero_point: int = 8,
) -> PreparedQb4w:
    """Check, pack and decode qb4w weights once for the kernels ``gemm`` will run.

    ``rhs``: int8 codes [N, K] in [-8, 7] (or [K, N] with ``transpose_rhs``), or XNNPACK's
    uint8 nibble pairs (zero point 8) [N, K/2] / [K, ceil(N/2)] (then give ``n``).
    XNNPACK's creation checks run first (``check_block_size``, zero point 8). The NEON path
    packs with ``xnn_pack_kai_qb4_weights_and_biases`` (nr 4, the branch's kr/sr, bias patch);
    the SME2 kernels with ``kai_rhs_pack_{nxk,kxn}_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon``.
    """
    t = resolve_target(target)
    transpose_rhs = check_bool("transpose_rhs", transpose_rhs)
    qb4.check_kernel_zero_point(kernel_zero_point)
    if isinstance(rhs, np.ndarray) and rhs.ndim == 2:
        # The codes, the packed bytes and the decoded int8 weights and float32 block terms
        # (a uint8 rhs holds two codes a byte: twice the factor).
        check_alloc(f"packing qb4w weights {rhs.shape}", (rhs.shape, F32), factor=3 if rhs.dtype == np.int8 else 6)
    u, nn, kk = _as_codes(rhs, transpose_rhs, n)
    qb4.check_block_size(kk, bl)
    qb4.check_scales_bf16(scales_bf16, n=nn, num_blocks=kk // bl)
    if bias is not None and (not isinstance(bias, np.ndarray) or bias.dtype != F32 or bias.shape != (nn,)):
        raise TypeError(f"bias must be a float32 array of shape ({nn},) or None")
    kcls = select_kernel(t, 2) if kernel is None else _kernel_cls(kernel)
    fam = _FAMILY[kcls]
    kern = fam[0](t.svl_bits)
    p = kern.tile_params()
    qb4.check_block_size(kk, bl, kr=p.kr)
    if kern.asserts_shape:
        packer: _Qsi4c32Packer = (
            kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(t.svl_bits)
            if transpose_rhs
            else kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(t.svl_bits)
        )
        packed = packer.pack(u, scales_bf16, bias, nr=p.nr, kr=p.kr, sr=p.sr, bl=bl, n=nn, k=kk)
    else:
        packed = xnn_pack_kai_qb4_weights_and_biases(
            u,
            scales_bf16,
            bias,
            n=nn,
            k=kk,
            bl=bl,
            kr=p.kr,
            sr=p.sr,
            nr=p.nr,
            transpose_weights=transpose_rhs,
        )
    w, sc, rsum, b = kern.rhs_layout(nn, kk, bl).decode(packed)
    return PreparedQb4w((fam[0].name, fam[1].name), t.svl_bits, nn, kk, bl, packed, prepare_rhs(w, sc, rsum, b, bl))


def gemm(
    lhs: NDArray[np.float32],
    rhs: NDArray[Any] | PreparedQb4w,
    scales_bf16: NDArray[np.uint16] | None = None,
    *,
    bl: int | None = None,
    bias: NDArray[np.float32] | None = None,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
    kernel_zero_point: int = 8,
) -> NDArray[np.float32]:
    """``lhs @ dequant(rhs).T + bias``, clamped, as XNNPACK's qp8_f32_qb4w path computes it.

    ``lhs`` f32 [M, K] is quantized per row (``kai_lhs_quant_pack_qai8dxp_f32``, the kernel's
    kr/sr; the packed layout is skipped, the values are the same). ``rhs`` is int8 codes
    [N, K], XNNPACK's uint8 nibble pairs [N, K/2], or a :class:`PreparedQb4w` (then
    ``scales_bf16``, ``bl``, ``bias`` come from it). ``scales_bf16``: uint16 [N, K/bl]. On the
    default target the kernel is what XNNPACK runs (:func:`select_kernel`); ``kernel`` names
    another one (e.g. the SME2 MOPA/GEMV). FPCR.FZ is the target's ``flush_to_zero``.
    ``kernel_zero_point`` is the stored codes' zero point: qp8 needs 8
    (``check_kernel_zero_point_is_8_qu8``). XNNPACK's creation checks (block size, scales)
    raise ValueError before anything is packed. Arithmetic: see the module docstring.
    """
    t = resolve_target(target)
    lo, hi = check_output_range(clamp_min, clamp_max, op="xnn_create_fully_connected_nc_qp8_f32_qb4w")
    if not isinstance(lhs, np.ndarray) or lhs.dtype != F32:
        raise TypeError("lhs must be a float32 array [M, K] (qp8 activations are f32)")
    if lhs.ndim != 2:
        raise ValueError(f"lhs must be 2-D [M, K], got shape {lhs.shape}")
    m, k = lhs.shape
    if m < 1:
        raise ValueError("M must be >= 1")
    if isinstance(rhs, PreparedQb4w):
        # The quantized rows and the output with the kernels' [M, N] temporaries.
        check_alloc(f"qb4w gemm [{m}, {k}] x [{k}, {rhs.n}]", ((m, rhs.n), F32), ((m, k), F32), factor=4)
    if isinstance(rhs, PreparedQb4w):
        if scales_bf16 is not None or bias is not None or (bl is not None and bl != rhs.bl):
            raise ValueError("scales_bf16, bias and bl are part of the PreparedQb4w weights")
        prep = rhs
        if kernel is not None and kernel not in prep.family:
            raise ValueError(f"weights were packed for {prep.family}, not {kernel!r}")
        if prep.svl != t.svl_bits and _kernel_cls(prep.family[0]).isa == "sme2":
            raise ValueError(f"weights were packed at SVL {prep.svl}, target has SVL {t.svl_bits}")
    else:
        if scales_bf16 is None or bl is None:
            raise TypeError("gemm needs scales_bf16 and bl with unprepared weights")
        prep = prepare_weights(
            rhs,
            scales_bf16,
            bl=bl,
            bias=bias,
            transpose_rhs=transpose_rhs,
            target=t,
            kernel=kernel,
            kernel_zero_point=kernel_zero_point,
        )
    if k != prep.k:
        raise ValueError(f"K mismatch: lhs is {lhs.shape}, weights have K = {prep.k}")
    if kernel is not None:
        kcls = _kernel_cls(kernel)
    else:
        main, gemv_ = (_kernel_cls(x) for x in prep.family)
        kcls = gemv_ if m == 1 else main
    if kcls.gemv and m != 1:
        raise ValueError(f"{kcls.name} computes one row (XNNPACK uses it for M == 1); M = {m}")
    kern = kcls(t.svl_bits, fz=t.flush_to_zero)
    p = kern.tile_params()
    check_alloc(f"qb4w gemm [{m}, {k}] x [{k}, {prep.n}]", ((m, prep.n), F32), ((m, k), F32), factor=4)
    q, dq, zp = quantize_qai8dx(np.ascontiguousarray(lhs), k_block_len=p.kr // p.sr)
    neg_zp = (-zp.astype(np.int64)).astype(np.int32)
    return kern.compute(Qai8dxpRows(q, neg_zp, dq), prep.operand, (lo, hi))


# ----------------------------------------------------------------------------------------------
# Golden vectors
# ----------------------------------------------------------------------------------------------


# Note: the NEON kernels do not depend on the SVL; their objects are built at SVL 512.
def _run(
    kcls: type[_Qb4wKernel],
    svl: int,
    m: int,
    n: int,
    k: int,
    bl: int,
    lhs_p: NDArray[np.uint8],
    rhs_p: NDArray[np.uint8],
    lo: float,
    hi: float,
) -> NDArray[np.float32]:
    dst = np.zeros((m, n), dtype=F32)
    kcls(svl).run_matmul(m, n, k, bl, lhs_p, rhs_p, dst, n * 4, 4, lo, hi)
    return dst


def _meta(vals: Mapping[str, int]) -> dict[str, NDArray[Any]]:
    return {key: np.array(v, dtype=np.int64) for key, v in vals.items()}


def reproduce_golden(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute a ``qp8_f32_qb4w_gemm`` (SME2 kernels) golden file from its inputs."""
    svl = int(inputs["meta_svl_bits"])
    lhs, bias = inputs["lhs"], inputs["bias"]
    scale, bl = inputs["scale_bf16"], int(inputs["bl"])
    lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
    m, k = lhs.shape
    n = inputs["rhs_int4"].shape[0]
    mopa, dot = SME2_MOPA(svl).tile_params(), SME2_DOT(svl).tile_params()
    lp = kai_lhs_quant_pack_qai8dxp_f32(svl)
    lhs_packed = lp.pack(lhs, mr=mopa.mr, kr=mopa.kr, sr=mopa.sr)
    rhs_packed = kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(svl).pack(
        inputs["rhs_qsu4_nxk"], scale, bias, nr=mopa.nr, kr=mopa.kr, sr=mopa.sr, bl=bl
    )
    rhs_kxn = kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(svl).pack(
        inputs["rhs_qsu4_kxn"], scale, bias, nr=mopa.nr, kr=mopa.kr, sr=mopa.sr, bl=bl, n=n
    )
    res: dict[str, NDArray[Any]] = {
        "lhs_packed": lhs_packed,
        "rhs_packed": rhs_packed,
        "rhs_packed_kxn": rhs_kxn,
    }
    res["out"] = _run(SME2_MOPA, svl, m, n, k, bl, lhs_packed, rhs_packed, lo, hi)
    if m == 1:
        lg = lp.pack(lhs, mr=dot.mr, kr=dot.kr, sr=dot.sr)
        res["lhs_packed_gemv"] = lg
        res["out_gemv"] = _run(SME2_DOT, svl, m, n, k, bl, lg, rhs_packed, lo, hi)
    res.update(
        _meta(
            {
                "meta_mr": mopa.mr,
                "meta_nr": mopa.nr,
                "meta_kr": mopa.kr,
                "meta_sr": mopa.sr,
                "meta_m_step": mopa.m_step,
                "meta_n_step": mopa.n_step,
                "meta_gemv_mr": dot.mr,
                "meta_gemv_nr": dot.nr,
                "meta_gemv_kr": dot.kr,
                "meta_gemv_sr": dot.sr,
                "meta_gemv_n_step": dot.n_step,
                "meta_gemv_m_step": dot.m_step,
            }
        )
    )
    return res


def reproduce_golden_neon(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute a ``qp8_f32_qb4w_gemm_neon`` (XNNPACK's NEON path, both branches) golden file."""
    lhs, bias = inputs["lhs"], inputs["bias"]
    scale, bl = inputs["scale_bf16"], int(inputs["bl"])
    lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
    m, k = lhs.shape
    n = inputs["rhs_int4"].shape[0]
    lp = kai_lhs_quant_pack_qai8dxp_f32()
    res: dict[str, NDArray[Any]] = {"meta_bl": np.array(bl, dtype=np.int64)}
    for suffix, main, gemv_ in (("", NEON_I8MM, NEON_I8MM_GEMV), ("_dotprod", NEON_DOT, NEON_DOT_GEMV)):
        p, g = main().tile_params(), gemv_().tile_params()
        lhs_packed = lp.pack(lhs, mr=p.mr, kr=p.kr, sr=p.sr)
        rhs_packed = xnn_pack_kai_qb4_weights_and_biases(
            inputs["rhs_qsu4_nxk"], scale, bias, n=n, k=k, bl=bl, kr=p.kr, sr=p.sr, nr=p.nr
        )
        rhs_kxn = xnn_pack_kai_qb4_weights_and_biases(
            inputs["rhs_qsu4_kxn"],
            scale,
            bias,
            n=n,
            k=k,
            bl=bl,
            kr=p.kr,
            sr=p.sr,
            nr=p.nr,
            transpose_weights=True,
        )
        res[f"lhs_packed{suffix}"] = lhs_packed
        res[f"rhs_packed{suffix}"] = rhs_packed
        res[f"rhs_packed_kxn{suffix}"] = rhs_kxn
        res[f"out{suffix}"] = _run(main, 512, m, n, k, bl, lhs_packed, rhs_packed, lo, hi)
        if m == 1:
            lg = lp.pack(lhs, mr=g.mr, kr=g.kr, sr=g.sr)
            res[f"lhs_packed_gemv{suffix}"] = lg
            res[f"out_gemv{suffix}"] = _run(gemv_, 512, m, n, k, bl, lg, rhs_packed, lo, hi)
        res.update(
            _meta(
                {
                    f"meta_kernel_mr{suffix}": p.mr,
                    f"meta_kernel_nr{suffix}": p.nr,
                    f"meta_kernel_kr{suffix}": p.kr,
                    f"meta_kernel_sr{suffix}": p.sr,
                    f"meta_kernel_m_step{suffix}": p.m_step,
                    f"meta_kernel_n_step{suffix}": p.n_step,
                    # XNNPACK config values used for packing (mr_packed = kernel mr).
                    f"meta_mr_packed{suffix}": p.mr,
                    f"meta_nr{suffix}": p.nr,
                    f"meta_kr{suffix}": p.kr,
                    f"meta_sr{suffix}": p.sr,
                    f"meta_gemv_mr{suffix}": g.mr,
                    f"meta_gemv_nr{suffix}": g.nr,
                    f"meta_gemv_kr{suffix}": g.kr,
                    f"meta_gemv_sr{suffix}": g.sr,
                }
            )
        )
    return res


#: Golden variant ids this module reproduces.
GOLDEN = {"qp8_f32_qb4w_gemm": reproduce_golden, "qp8_f32_qb4w_gemm_neon": reproduce_golden_neon}
