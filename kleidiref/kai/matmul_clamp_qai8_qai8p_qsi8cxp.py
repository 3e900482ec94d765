"""``kai_matmul_clamp_qai8_qai8p_qsi8cxp``: the int8 x packed int8 (qai8p) x qsi8cxp -> int8 MOPA kernels.

Upstream family directory ``kai/ukernels/matmul/matmul_clamp_qai8_qai8p_qsi8cxp/`` (SME2 and SME
MOPA). XNNPACK runs them as ``pqs8_qc8w_gemm``; the per-element arithmetic is written out in
:mod:`kleidiref.variants.pqs8_qc8w_gemm`. :class:`Pqs8Kernel` (packed RHS, requantizing epilogue)
is also the base of the raw-row GEMV of :mod:`kleidiref.kai.matmul_clamp_qai8_qai8_qsi8cxp`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import check_count, packed_rhs_columns
from ..numerics import clamp_int, frintn_fcvtzs, ftz32
from .int8_common import int8_matmul
from .interface import RequantizingKernel, TileParams
from .layouts import Qsi8cxp2vlx4sbLayout, SmeLhsLayout
from .params import kai_matmul_requantize32_params

__all__ = [
    "I8",
    "KR",
    "VARIANT",
    "Pqs8Kernel",
    "Pqs8Mopa",
    "Qsi8cxp2vlx4sbRhs",
    "decode_qsi8cxp2vlx4sb",
    "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa",
    "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa",
    "requantize",
]

VARIANT = "pqs8_qc8w_gemm"
I8 = np.dtype(np.int8)
#: k_r of the pqs8 packing (4-way SMOPA / SDOT).
KR = 4
#: Bytes of one int32 [rows, N] temporary of a row block (pqs8 computes blocks of rows).
_ROW_BLOCK_BYTES = 64 << 20


def decode_qsi8cxp2vlx4sb(
    buf: bytes | NDArray[np.uint8], n: int, k: int, nr: int
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
    """Decode a packed pqs8 RHS: ``(bias'[n] int32, W[K4, n] as float32, scale'[n])``."""
    u8 = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, bytes) else buf
    return Qsi8cxp2vlx4sbLayout(nr, n, k).decode(u8)


def requantize(
    acc: NDArray[np.int32],
    scale: NDArray[np.float32],
    params: kai_matmul_requantize32_params,
    *,
    fz: bool = False,
) -> NDArray[np.int8]:
    """The pqs8 output stage on int32 accumulators (bias already added).

    ::

        y = RN32(RN32(acc) * scale)                 SCVTF, FMUL (FZ: flush)
        r = FCVTZS(FRINTN(y))                       ties to even, saturating, NaN -> 0
        o = wrap_i32(r + output_zero_point)
        out = int8(low byte of min(max(o, min_value), max_value))
    """
    if fz:
        scale = ftz32(scale)  # FPCR.FZ: a subnormal scale reads as a signed zero
    with np.errstate(over="ignore", invalid="ignore"):
        # SCVTF then FMUL; RN32(acc) is integral (0 or >= 1), so a nonzero product with a scale
        # that is 0 or >= FLT_MIN is never tiny: FZ changes nothing more here.
        y = np.multiply(acc.astype(np.float32), scale, dtype=np.float32)
    r = frintn_fcvtzs(y)
    o = r + np.int32(params.output_zero_point)  # int32 add wraps
    # SCLAMP (SME2) and SMAX-then-SMIN (SME1) agree: min(max(o, lo), hi).
    clamped = clamp_int(o, np.int32(params.min_value), np.int32(params.max_value))
    out: NDArray[np.int8] = clamped.astype(np.int8)  # UZP1 narrowing keeps the low byte
    return out


@dataclasses.dataclass(frozen=True)
class Qsi8cxp2vlx4sbRhs:
    """A packed pqs8 RHS as the kernels read it (their ``decode_rhs``)."""

    #: [n] int32 ``bias'`` (the input zero point folded in by the packer).
    bias: NDArray[np.int32]
    #: [roundup(K, 4), n] int8 values as float32 (exact BLAS operands).
    w: NDArray[np.float32]
    #: [n] float32 ``scale'`` (the scale multiplier folded in).
    scale: NDArray[np.float32]
    #: A bound on ``|w|`` (lets :func:`int8_matmul` use fewer K chunks).
    w_absmax: float = 128.0


class Pqs8Kernel(RequantizingKernel):
    """What the pqs8 kernels share: the packed RHS and the requantizing epilogue."""

    def rhs_layout(self, n: int, k: int) -> Qsi8cxp2vlx4sbLayout:
        """The packed RHS format this kernel reads (nr = 2 VL / 4)."""
        return Qsi8cxp2vlx4sbLayout.for_svl(self.svl, n, k)

    def get_nr(self) -> int:
        return self.rhs_layout(0, 0).nr

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx, k = check_count("n_idx", n_idx), check_count("k", k)
        fmt = self.rhs_layout(0, k)
        if n_idx % fmt.nr:
            fn = f"kai_get_rhs_packed_offset_{self.name[4:]}"
            raise ValueError(f"KAI_ASSUME(n_idx % nr == 0) fails in {fn}")
        return fmt.offset(n_idx)

    def rhs_packed_size(self, n: int, k: int) -> int:
        return self.rhs_layout(n, k).size()

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> Qsi8cxp2vlx4sbRhs:
        fmt = self.rhs_layout(n, k)
        nr = fmt.nr
        found = packed_rhs_columns(rhs, fmt.stride, nr, n)
        if found is not None:
            # Decoded once from the immutable bytes of this PackedRhs (cannot go stale).
            owner, full_n = found
            b, w, sc = owner.decoded(
                ("qsi8cxp2vlx4sb", full_n, k, nr),
                lambda buf: Qsi8cxp2vlx4sbLayout(nr, full_n, k).decode(np.frombuffer(buf, np.uint8)),
            )
            amax = owner.decoded(("qsi8cxp2vlx4sb|W|", full_n, k, nr), lambda _: float(np.abs(w).max(initial=0)))
            return Qsi8cxp2vlx4sbRhs(b[:n], w[:, :n], sc[:n], amax)
        return Qsi8cxp2vlx4sbRhs(*fmt.decode(rhs))

    def accumulate(self, lhs: NDArray[Any], rhs: Qsi8cxp2vlx4sbRhs) -> NDArray[np.int32]:
        """ADDHA of ``bias'`` into a zeroed ZA, then SMOPA / SDOT of the int8 rows ``lhs`` [M, K or
        roundup(K, 4)]: int32, exact, wraps."""
        acc = int8_matmul(lhs, rhs.w[: lhs.shape[1]], w_absmax=rhs.w_absmax)
        acc += rhs.bias[None, :]  # numpy int32 arithmetic wraps
        return acc

    def epilogue(
        self, acc: NDArray[np.int32], scale: NDArray[np.float32], params: kai_matmul_requantize32_params
    ) -> NDArray[np.int8]:
        """:func:`requantize` (FZ as the kernel runs)."""
        return requantize(acc, scale, params, fz=self.fz)

    def compute(
        self, lhs: NDArray[Any], rhs: Qsi8cxp2vlx4sbRhs, epilogue: kai_matmul_requantize32_params
    ) -> NDArray[np.int8]:
        # Rows are independent and exact: a block of rows at a time keeps the int32/float32
        # temporaries (several times the int8 output) to about _ROW_BLOCK_BYTES each.
        m, n = lhs.shape[0], rhs.scale.shape[0]
        step = max(1, _ROW_BLOCK_BYTES // max(1, 4 * max(n, lhs.shape[1])))
        if m <= step:
            return self.epilogue(self.accumulate(lhs, rhs), rhs.scale, epilogue)
        out = np.empty((m, n), dtype=np.int8)
        for r0 in range(0, m, step):
            out[r0 : r0 + step] = self.epilogue(self.accumulate(lhs[r0 : r0 + step], rhs), rhs.scale, epilogue)
        return out


class Pqs8Mopa(Pqs8Kernel):
    def tile_params(self) -> TileParams:
        v = 2 * self.vls
        return TileParams(mr=v, nr=v, kr=KR, sr=1, m_step=v, n_step=v)

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "m_idx % mr == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def lhs_layout(self, m: int, k: int) -> SmeLhsLayout:
        """The packed LHS format this kernel reads (``x8p2vlx4``)."""
        return SmeLhsLayout.for_svl(I8, KR, self.svl, m, k)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.int8]:
        out: NDArray[np.int8] = self.lhs_layout(m, k).decode(lhs)
        return out


_SRC = "kai/ukernels/matmul/matmul_clamp_qai8_qai8p_qsi8cxp/"


class kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa(Pqs8Mopa):
    """SME2 MOPA, 2VL x 2VL tiles [32 x 32 at SVL 512]; SCLAMP."""

    name = "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa"
    variant = VARIANT
    isa = "sme2"
    source = _SRC + name + "_asm.S"


class kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa(Pqs8Mopa):
    """SME1 MOPA: same arithmetic (SMAX then SMIN clamp); also XNNPACK's M == 1 kernel on SME1."""

    name = "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa"
    variant = VARIANT
    isa = "sme"
    source = _SRC + name + "_asm.S"
