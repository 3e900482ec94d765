"""``pf32_gemm``: f32 x f32 -> f32 on the KleidiAI SME/SME2 kernels (spec: kernels.md §4).

XNNPACK config ``pf32_gemm_config``: ``xnn_pf32_gemm_minmax_ukernel_32x32__neonsme2`` (M > 1) and
``1x32__neonsme2`` (M == 1) at SVL 512. Every k step is one fused multiply-add rounded to
binary32 (FMOPA / FMLA), in increasing k order, from the bias:

    acc = bias'[n]                        MOPA: fma32(1.0, bias, +0) (-0 -> +0); GEMV: bias copy
    acc = fma32(a[m][k], w[k][n], acc)    k = 0 .. K-1          (one rounding per k)
    out = clamp(acc)                      SME2: FCLAMP (NaN -> min); SME1: FMIN(max), FMAX(min)

The accumulator is binary32 throughout; NaNs are the default NaN 0x7FC00000.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from .. import numerics
from .._buffers import check_count
from .._engine import flushed_row_lows, fma32_chain, row_lows
from ..kai.interface import Clamp, PackedLhsKernel, RawLhsKernel, TileParams
from ..kai.layouts import SmeLhsLayout
from ..numerics import fma32
from ..targets import Target
from ._float_common import BiasRhs, BiasRhsKernel, FloatVariant, PackedWeights
from ._sme_packers import SmeLhsPacker, SmeRhsBiasPacker

__all__ = [
    "PackedWeights",
    "gemm",
    "gemm_packed",
    "kai_lhs_pack_f32p2vlx1_f32_sme",
    "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla",
    "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla",
    "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
    "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa",
    "kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme",
    "kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme",
    "pack_weights",
    "select_kernel",
]

VARIANT = "pf32_gemm"
F32 = np.dtype(np.float32)


class kai_lhs_pack_f32p2vlx1_f32_sme(SmeLhsPacker):
    """LHS packer: mr = 2 * VLs rows per block, kr = sr = 1 (kernels.md §4.1)."""

    name = "kai_lhs_pack_f32p2vlx1_f32_sme"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_lhs_pack_f32p2vlx1_f32_sme.c"
    elem = F32
    kr = 1


class kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(SmeRhsBiasPacker):
    """RHS packer, weights N x K (XNNPACK's default): nr = 2 * VLs, f32 bias row (§4.2)."""

    name = "kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme.c"
    elem = F32
    bias_elem = F32
    kr = 1
    layout = "nxk"


class kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme(SmeRhsBiasPacker):
    """RHS packer, weights K x N (``XNN_FLAG_TRANSPOSE_WEIGHTS``): same bytes as the nxk one."""

    name = "kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme.c"
    elem = F32
    bias_elem = F32
    kr = 1
    layout = "kxn"


def _lows(w: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """A decoded W and its row lows, for the chain (:meth:`BiasRhsKernel._cached_rhs`)."""
    return w, row_lows(w)


class _Pf32Kernel(BiasRhsKernel):
    """What the four pf32 kernels share: the packed RHS and the clamp/FZ epilogue."""

    elem = F32
    layout_kr = 1
    fz: bool
    #: ``fclamp`` (SME2 FCLAMP) or ``fmin_fmax`` (SME1).
    clamp_kind: ClassVar[str]

    def _rhs(self, rhs_u8: NDArray[np.uint8], n: int, k: int, decode: bool) -> BiasRhs:
        """The RHS for :func:`fma32_chain`: a :class:`PackedRhs`'s decoding (flushed once under FZ,
        with its row lows), else W decoded (``decode``) or the blocks' view."""
        cached = self._cached_rhs(rhs_u8, n, k, flushed_row_lows if self.fz else _lows)
        if cached is not None:
            return BiasRhs(cached[0], cached[1], w_lows=cached[2])
        fmt = self.rhs_layout(n, k)
        bias, w = fmt.decode(rhs_u8) if decode else fmt.block_view(rhs_u8)
        return BiasRhs(bias, w)

    def epilogue(self, acc: NDArray[np.float32], clamp: Clamp) -> NDArray[np.float32]:
        """The clamp (FCLAMP or FMIN/FMAX; bounds flushed under FZ); NaNs: the default NaN."""
        lo, hi = clamp
        out: NDArray[np.float32] = numerics.clamp(acc, lo, hi, self.clamp_kind, fz=self.fz)
        return out

    @abc.abstractmethod
    def accumulate(self, lhs: NDArray[np.float32], rhs: BiasRhs) -> NDArray[np.float32]:
        """The binary32 accumulator: one fused multiply-add per k from the bias (see each kernel)."""

    def compute(self, lhs: NDArray[np.float32], rhs: BiasRhs, epilogue: Clamp) -> NDArray[np.float32]:
        return self.epilogue(self.accumulate(lhs, rhs), epilogue)


class _Pf32Mopa(_Pf32Kernel, PackedLhsKernel):
    def tile_params(self) -> TileParams:
        v = 2 * self.vls
        return TileParams(mr=v, nr=v, kr=1, sr=1, m_step=v, n_step=v)

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "m_idx % mr == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def lhs_layout(self, m: int, k: int) -> SmeLhsLayout:
        """The packed LHS format this kernel reads (``x32p2vlx1``)."""
        return SmeLhsLayout.for_svl(F32, 1, self.svl, m, k)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float32]:
        out: NDArray[np.float32] = self.lhs_layout(m, k).decode(lhs)
        return out

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> BiasRhs:
        return self._rhs(rhs, n, k, decode=True)  # decoded: cheaper than per-block gathers for M > 1

    def accumulate(self, lhs: NDArray[np.float32], rhs: BiasRhs) -> NDArray[np.float32]:
        # Bias injection: one FMOPA of an all-1.0 vector with the bias row into a zeroed ZA.
        acc0 = fma32(np.float32(1.0), rhs.bias, np.float32(0.0), fz=self.fz)
        return fma32_chain(
            np.broadcast_to(acc0, (lhs.shape[0], acc0.shape[0])), lhs, rhs.w, fz=self.fz, w_lows=rhs.w_lows
        )


class kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa(_Pf32Mopa):
    """SME2 MOPA, 2VL x 2VL tiles [32 x 32 at SVL 512]; FCLAMP."""

    name = "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa"
    variant = VARIANT
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    clamp_kind = "fclamp"


class kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa(_Pf32Mopa):
    """SME1 MOPA: same accumulation; FMIN(max) then FMAX(min), NaN propagates."""

    name = "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32p_f32p/" + name + "_asm.S"
    clamp_kind = "fmin_fmax"


class _Pf32Gemv(_Pf32Kernel, RawLhsKernel):
    lhs_dtype = F32
    #: n_step in vectors of 32-bit lanes (16 for the SME2 kernel, 8 for SME1).
    n_step_vl: ClassVar[int]

    def tile_params(self) -> TileParams:
        return TileParams(mr=1, nr=2 * self.vls, kr=1, sr=1, m_step=1, n_step=self.n_step_vl * self.vls)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float32]:
        return self.raw_row(lhs, m, k)

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> BiasRhs:
        return self._rhs(rhs, n, k, decode=False)  # else a zero-copy view of the packed blocks

    def accumulate(self, lhs: NDArray[np.float32], rhs: BiasRhs) -> NDArray[np.float32]:
        # The accumulator starts as a copy of the bias (-0 kept); under FZ it is flushed when
        # first read as an FMLA addend, which fma32_chain models.
        return fma32_chain(rhs.bias.reshape(1, -1), lhs, rhs.w, fz=self.fz, w_lows=rhs.w_lows)


class kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla(_Pf32Gemv):
    """SME2 GEMV for M == 1 on the raw LHS row: n_step = 16 * VLs; FCLAMP (flags = 2)."""

    name = "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla"
    variant = VARIANT
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32_f32p/" + name + "_asm.S"
    clamp_kind = "fclamp"
    n_step_vl = 16


class kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla(_Pf32Gemv):
    """SME1 GEMV (SVE FMLA indexed): n_step = 8 * VLs; FMIN(max) then FMAX(min)."""

    name = "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f32_f32_f32p/" + name + "_asm.S"
    clamp_kind = "fmin_fmax"
    n_step_vl = 8


SME2_MOPA = kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa
SME1_MOPA = kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa
SME2_GEMV = kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla
SME1_GEMV = kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla


SPEC = FloatVariant(
    name=VARIANT,
    dtype=F32,
    lhs_packer=kai_lhs_pack_f32p2vlx1_f32_sme,
    rhs_packer_nxk=kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme,
    rhs_packer_kxn=kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme,
    sme2_mopa=SME2_MOPA,
    sme1_mopa=SME1_MOPA,
    sme2_gemv=SME2_GEMV,
    sme1_gemv=SME1_GEMV,
    fallback="f32_gemm",
)


def select_kernel(target: Target, m: int) -> type[PackedLhsKernel] | type[RawLhsKernel]:
    """The kernel XNNPACK's pf32 config runs: SME2 before SME; the 1-row kernel when M == 1."""
    return SPEC.select_kernel(target, m)


def gemm(
    lhs: NDArray[np.float32],
    rhs: NDArray[np.float32],
    *,
    bias: NDArray[np.float32] | None = None,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float32]:
    """``lhs @ rhs.T + bias``, clamped, exactly as XNNPACK's pf32 path computes it on ``target``.

    ``lhs`` is [M, K] float32; ``rhs`` is [N, K] (XNNPACK's default weight layout) or [K, N] with
    ``transpose_rhs=True`` (``XNN_FLAG_TRANSPOSE_WEIGHTS``, packed by the kxn packer: same
    bytes). ``bias`` is [N] float32 or None (zeros). The kernel is the one XNNPACK would pick
    (SME2 before SME1; the 1-row GEMV for M == 1) unless ``kernel`` names one. FPCR.FZ is the
    target's ``flush_to_zero``.
    """
    return SPEC.gemm(
        lhs,
        rhs,
        bias=bias,
        clamp_min=clamp_min,
        clamp_max=clamp_max,
        transpose_rhs=transpose_rhs,
        target=target,
        kernel=kernel,
    )


def pack_weights(
    rhs: NDArray[np.float32],
    *,
    bias: NDArray[np.float32] | None = None,
    transpose_rhs: bool = False,
    target: Target | None = None,
) -> PackedWeights:
    """Pack weights and bias once for :func:`gemm_packed`, as XNNPACK packs them at model load.

    Same arguments and packers as :func:`gemm`. The kernels decode the packed bytes on the
    first call and reuse that decoding (as many bytes again as the packing) on every later one.
    """
    return SPEC.pack_weights(rhs, bias=bias, transpose_rhs=transpose_rhs, target=target)


def gemm_packed(
    lhs: NDArray[np.float32],
    weights: PackedWeights,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float32]:
    """:func:`gemm` on weights from :func:`pack_weights` (packed for the target's SVL): same bits."""
    return SPEC.gemm_packed(lhs, weights, clamp_min=clamp_min, clamp_max=clamp_max, target=target, kernel=kernel)


#: Golden variant ids this module reproduces.
GOLDEN = {"pf32_gemm": SPEC.reproduce_golden, "pf32_gemm_fz": SPEC.reproduce_golden}
