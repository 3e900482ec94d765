"""``kai_matmul_clamp_f32_qai8dxp_qsi8cxp``: the f32 x qai8dxp (LHS) x qsi8cxp (RHS) -> f32 kernels.

Upstream family directory ``kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi8cxp/`` (SME2 / SME
MOPA and GEMV, NEON i8mm and dotprod). XNNPACK runs them as ``qp8_f32_qc8w_gemm``; the per-element
arithmetic of each kernel is written out in :mod:`kleidiref.variants.qp8_f32_qc8w_gemm`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from .._buffers import check_count, packed_rhs_columns
from ..numerics import Clamp
from .int8_common import int8_matmul, qai8dxp_epilogue
from .interface import ClampBounds, PackedLhsKernel, TileParams
from .layouts import Qai8dxpLayout, Qsi8cxpLayout
from .pack import Qai8dxpRows

__all__ = [
    "KR",
    "VARIANT",
    "Qp8Kernel",
    "Qsi8cxpRhs",
    "decode_qsi8cxp",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm",
]

VARIANT = "qp8_f32_qc8w_gemm"
#: k_r of the SME kernels' packing.
KR = 4


@dataclasses.dataclass(frozen=True)
class Qsi8cxpRhs:
    """A packed qsi8cxp RHS as the kernels read it (their ``decode_rhs``)."""

    #: [roundup(K, 32), n] int8 values as float32 (exact BLAS operands).
    w: NDArray[np.float32]
    #: [n] int32 row sums times the packer's ``lhs_zero_point``.
    rsum: NDArray[np.int32]
    #: [n] float32 per-channel scales and bias.
    scale: NDArray[np.float32]
    bias: NDArray[np.float32]
    #: A bound on ``|w|`` (lets :func:`int8_matmul` use fewer K chunks).
    w_absmax: float = 128.0


def decode_qsi8cxp(
    buf: bytes | NDArray[np.uint8], n: int, k: int, nr: int, kr: int = KR
) -> tuple[NDArray[np.float32], NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
    """Decode a packed qsi8cxp RHS: ``(W[K32, n] as float32, rsum[n], scale[n], bias[n])``."""
    u8 = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, bytes) else buf
    return Qsi8cxpLayout(nr, kr, n, k).decode(u8)


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------


class Qp8Kernel(PackedLhsKernel):
    """What the qp8_f32_qc8w kernels share: the packed operands and the integer part."""

    #: True for the GEMV kernels (mr = 1).
    gemv: ClassVar[bool]
    #: True for the SME 1x4vl GEMVs: FMLA epilogue (one rounding); else FMUL then FADD.
    fused: ClassVar[bool] = False
    #: ``fclamp`` (SME2 FCLAMP) or ``fmax_fmin`` (SME1 and NEON: FMAX then FMIN).
    clamp_kind: ClassVar[Clamp]
    #: NEON kernels: fixed ``(mr, nr, kr, m_step, n_step)`` (sr 1); None for the SVL-scaled SME tiles.
    neon_tiles: ClassVar[tuple[int, int, int, int, int] | None] = None

    def tile_params(self) -> TileParams:
        if self.neon_tiles is not None:
            mr, nr, kr, ms, ns = self.neon_tiles
            return TileParams(mr=mr, nr=nr, kr=kr, sr=1, m_step=ms, n_step=ns)
        nr = 4 * self.vls
        mr = 1 if self.gemv else self.vls
        return TileParams(mr=mr, nr=nr, kr=KR, sr=1, m_step=mr, n_step=nr)

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        mr = self.get_mr()
        self._assume(m_idx % mr == 0, "(m_idx % mr) == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx, k = check_count("n_idx", n_idx), check_count("k", k)
        nr = self.get_nr()
        self._assume(n_idx % nr == 0, "(n_idx % nr) == 0", "get_rhs_packed_offset")
        return self.rhs_layout(0, k).offset(n_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def rhs_packed_size(self, n: int, k: int) -> int:
        return self.rhs_layout(n, k).size()

    def _check_problem(self, m: object, n: object, k: object) -> tuple[int, int, int]:
        m_, n_, k_ = super()._check_problem(m, n, k)
        if self.neon_tiles is not None:
            # Note: the NEON kernels return at m == 0 (as upstream). With n == 0 and m > 0 their
            # column loop still runs once and stores one element per row from the first RHS
            # block; XNNPACK never calls them so, and the oracle refuses it instead of guessing.
            if m_ > 0 and n_ == 0:
                raise ValueError(f"n == 0 with m > 0: {self.c_name('run')} would store one element per row")
            return m_, n_, k_
        if not self.gemv:
            if m_ == 0:
                raise ValueError(f"KAI_ASSERT(m > 0) fails in {self.c_name('run')}")
            if n_ == 0:
                raise ValueError(f"KAI_ASSERT(n > 0) fails in {self.c_name('run')}")
        return m_, n_, k_

    def lhs_layout(self, m: int, k: int) -> Qai8dxpLayout:
        """The packed LHS format this kernel reads (mr, kr of its tiles, sr 1)."""
        p = self.tile_params()
        return Qai8dxpLayout(p.mr, p.kr, 1, m, k)

    def rhs_layout(self, n: int, k: int) -> Qsi8cxpLayout:
        """The packed RHS format this kernel reads (nr, kr of its tiles)."""
        p = self.tile_params()
        return Qsi8cxpLayout(p.nr, p.kr, n, k)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> Qai8dxpRows:
        return Qai8dxpRows(*self.lhs_layout(m, k).decode(lhs))

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> Qsi8cxpRhs:
        fmt = self.rhs_layout(n, k)
        nr, kr = fmt.nr, fmt.kr
        found = packed_rhs_columns(rhs, fmt.stride, nr, n)
        if found is not None:
            # Decoded once from the immutable bytes of this PackedRhs (cannot go stale).
            owner, full_n = found
            w, rsum, sc, b = owner.decoded(
                ("qsi8cxp", full_n, k, nr, kr),
                lambda buf: Qsi8cxpLayout(nr, kr, full_n, k).decode(np.frombuffer(buf, np.uint8)),
            )
            amax = owner.decoded(("qsi8cxp|W|", full_n, k, nr, kr), lambda _: float(np.abs(w).max(initial=0)))
            return Qsi8cxpRhs(w[:, :n], rsum[:n], sc[:n], b[:n], amax)
        return Qsi8cxpRhs(*fmt.decode(rhs), 128.0)

    def accumulate(self, lhs: Qai8dxpRows, rhs: Qsi8cxpRhs) -> NDArray[np.int32]:
        """The int32 accumulator (wraps): the integer dot products, then ``-zp * rsum``."""
        q = lhs.q
        # 1. SMOPA / SDOT / SMMLA over all K32 columns (LHS padding x RHS zeros), int32 wrap.
        acc = int8_matmul(q, rhs.w[: q.shape[1]], w_absmax=rhs.w_absmax)
        # 2. MLA with the packed row sums: acc += (-zp) * rsum (numpy int32 arithmetic wraps).
        acc += lhs.neg_zp.astype(np.int32)[:, None] * rhs.rsum.astype(np.int32)[None, :]
        return acc

    def epilogue(
        self, acc: NDArray[np.int32], dq: NDArray[np.float32], rhs: Qsi8cxpRhs, clamp: ClampBounds
    ) -> NDArray[np.float32]:
        """SCVTF, the scale/bias steps (``fused`` or not) and the clamp."""
        lo, hi = clamp
        return qai8dxp_epilogue(
            acc, dq, rhs.scale, rhs.bias, lo, hi, fused=self.fused, fz=self.fz, clamp_kind=self.clamp_kind
        )

    def compute(self, lhs: Qai8dxpRows, rhs: Qsi8cxpRhs, epilogue: ClampBounds) -> NDArray[np.float32]:
        return self.epilogue(self.accumulate(lhs, rhs), lhs.dq, rhs, epilogue)


_SRC = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi8cxp/"


class kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa(Qp8Kernel):
    """SME2 MOPA, 1VL x 4VL tiles [16 x 64 at SVL 512]; unfused epilogue; FCLAMP."""

    name = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa"
    variant = VARIANT
    isa = "sme2"
    source = _SRC + name + "_asm.S"
    gemv = False
    clamp_kind = Clamp.FCLAMP


class kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa(Qp8Kernel):
    """SME1 MOPA: same arithmetic; FMAX(min) then FMIN(max), NaN propagates."""

    name = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa"
    variant = VARIANT
    isa = "sme"
    source = _SRC + name + "_asm.S"
    gemv = False
    clamp_kind = Clamp.FMAX_FMIN


class kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot(Qp8Kernel):
    """SME2 GEMV (LHS packed with mr = 1), n_step = 4 VLs [64]; fused FMLA epilogue; FCLAMP."""

    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot"
    variant = VARIANT
    isa = "sme2"
    source = _SRC + name + "_asm.S"
    gemv = True
    fused = True
    clamp_kind = Clamp.FCLAMP


class kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot(Qp8Kernel):
    """SME1 GEMV: fused FMLA epilogue; FMAX(min) then FMIN(max)."""

    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot"
    variant = VARIANT
    isa = "sme"
    source = _SRC + name + "_asm.S"
    gemv = True
    fused = True
    clamp_kind = Clamp.FMAX_FMIN


class _NeonQp8(Qp8Kernel):
    """XNNPACK's NEON qp8_f32_qc8w kernels (from source, no golden vectors), SVL-independent::

    acc = SMMLA / SDOT (+ ADDP) over K32      int32, wraps
    acc = MLA(acc, rsum, -zp)                 int32, wraps
    sc = FMUL(scale, dq);  f = SCVTF(acc);  y = FMUL(f, sc);  y = FADD(y, bias)
    out = FMIN(FMAX(y, min), max)             NaN propagates
    """

    variant = VARIANT
    isa = "neon"
    fused = False
    clamp_kind = Clamp.FMAX_FMIN


class kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm(_NeonQp8):
    """NEON i8mm SMMLA (XNNPACK ``16x4c8__neoni8mm_mstep4``): mr 4, nr 4, kr 8, sr 1, m_step 16, n_step 4.

    SMMLA 2x2 int32 tiles, UZP1/UZP2 to rows, then the shared unfused epilogue (FMAX, FMIN).
    """

    name = "kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm"
    source = _SRC + name + "_asm.S"
    gemv = False
    neon_tiles = (4, 4, 8, 16, 4)


class kai_matmul_clamp_f32_qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod(_NeonQp8):
    """NEON SDOT GEMV of the i8mm branch (``1x4c8__aarch64_neondot``): mr 1, nr 4, kr 8, sr 1.

    SDOT lanes hold the two 4-byte halves of each column's 8-byte groups (columns 0-1 in one
    accumulator, 2-3 in the other), joined by ADDP (int32, wraps); then the shared unfused
    epilogue (FMAX, FMIN).
    """

    name = "kai_matmul_clamp_f32_qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod"
    source = _SRC + name + ".c"
    gemv = True
    neon_tiles = (1, 4, 8, 1, 4)


class kai_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod(_NeonQp8):
    """NEON SDOT by element (XNNPACK ``16x4c4__aarch64_neondot_mstep4``): mr 4, nr 4, kr 4, sr 1, m_step 16.

    Rows in blocks of 16 (four packed mr-4 blocks), then a 4-row tail; shared unfused epilogue.
    """

    name = "kai_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod"
    source = _SRC + name + ".c"
    gemv = False
    neon_tiles = (4, 4, 4, 16, 4)


class kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod(_NeonQp8):
    """NEON SDOT-by-element GEMV of the dotprod branch (``1x4c4__aarch64_neondot``): mr 1, nr 4, kr 4."""

    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod"
    source = _SRC + name + "_asm.S"
    gemv = True
    neon_tiles = (1, 4, 4, 1, 4)
