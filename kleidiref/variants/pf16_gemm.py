"""``pf16_gemm``: f16 x f16 -> f16 with binary32 accumulation (spec: kernels.md §5).

XNNPACK config ``pf16_gemm_config``: ``xnn_pf16_gemm_minmax_ukernel_32x32c2__neonsme2`` (M > 1) and
``1x32c2__neonsme2`` (M == 1) at SVL 512. K is consumed in pairs (kr = 2, K padded with 0):

    acc = f32(bias[n])          MOPA: widening FMOPA of the bias with 1.0 (-0 -> +0; FZ16 flushes
                                a subnormal bias); GEMV: FCVT (no flush, -0 kept)
    acc = RN32(acc + RN32(a[2p]*w[2p] + a[2p+1]*w[2p+1]))     FPDotAdd_ZA: two roundings per pair
    o   = RN16(acc)             FCVT, then (FZ16) flush a binary16 subnormal
    out = clamp_f16(o, RN16(min), RN16(max))   SME2 FCLAMP (NaN -> min); SME1 FMIN/FMAX (NaN kept)

The SME1 GEMV ``kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla`` differs: FMLALB/FMLALT round
once per k, ``acc = RN32(acc + a[k]*w[k][n])``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from .. import numerics
from .._buffers import check_count, roundup
from .._engine import f16_mla_chain, f16_pair_chain
from ..kai.interface import Clamp, PackedLhsKernel, RawLhsKernel, TileParams
from ..kai.layouts import SmeLhsLayout
from ..numerics import ftz16, rn16
from ..targets import Target
from ._float_common import BiasRhs, BiasRhsKernel, FloatVariant, PackedWeights
from ._sme_packers import SmeLhsPacker, SmeRhsBiasPacker

__all__ = [
    "PackedWeights",
    "gemm",
    "gemm_packed",
    "kai_lhs_pack_x16p2vlx2_x16_sme",
    "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla",
    "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot",
    "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa",
    "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa",
    "kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme",
    "pack_weights",
    "select_kernel",
]

VARIANT = "pf16_gemm"
F16 = np.dtype(np.float16)


class kai_lhs_pack_x16p2vlx2_x16_sme(SmeLhsPacker):
    """LHS packer: mr = VLh rows per block, kr = 2 (K padded to even with 0) (§5.1)."""

    name = "kai_lhs_pack_x16p2vlx2_x16_sme"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_lhs_pack_x16p2vlx2_x16_sme.c"
    elem = F16
    kr = 2


class kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme(SmeRhsBiasPacker):
    """RHS packer, weights N x K: nr = VLh, kr = 2, f16 bias row (§5.2)."""

    name = "kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme.c"
    elem = F16
    bias_elem = F16
    kr = 2
    layout = "nxk"


class kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme(SmeRhsBiasPacker):
    """RHS packer, weights K x N: same bytes as the nxk packer."""

    name = "kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/pack/kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme.c"
    elem = F16
    bias_elem = F16
    kr = 2
    layout = "kxn"


def _flushed(w: NDArray[np.float16]) -> tuple[NDArray[np.float16], None]:
    """A decoded W as FZ16 reads it (:meth:`BiasRhsKernel._cached_rhs`)."""
    return ftz16(w), None


class _Pf16Kernel(BiasRhsKernel):
    """What the four pf16 kernels share: the packed RHS (FZ16-flushed on read) and the f16 epilogue."""

    elem = F16
    layout_kr = 2
    fz: bool
    clamp_kind: ClassVar[str]
    dst_dtype = F16

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> BiasRhs:
        """Under FZ16 the chains read W through the flush (``flush_w``), or W is a
        :class:`PackedRhs`'s decoding flushed once. The bias is read unflushed (the GEMV widens it
        with FCVT, which ignores FZ16; the MOPA kernels flush it themselves)."""
        cached = self._cached_rhs(rhs, n, k, _flushed if self.fz else None)
        if cached is not None:
            return BiasRhs(cached[0], cached[1])
        bias, w = self.rhs_layout(n, k).block_view(rhs)
        return BiasRhs(bias, w, flush_w=self.fz)

    @abc.abstractmethod
    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        """The binary32 accumulator from the bias (see each kernel)."""

    def compute(self, lhs: NDArray[np.float16], rhs: BiasRhs, epilogue: Clamp) -> NDArray[np.float16]:
        return self.epilogue(self.accumulate(lhs, rhs), epilogue)

    def epilogue(self, acc: NDArray[np.float32], clamp: Clamp) -> NDArray[np.float16]:
        """RN16, then the f16 clamp (operands through FZ16 when set), default NaN: :meth:`epilogue_exact`.

        Fast form: RN16 is monotonic and the (flushed) f16 bounds L <= H lie on the f16 grid, so
        with no NaN, clamp16(ftz16(RN16(acc)), L, H) == RN16(clamp32(acc, L, H)) wherever the latter
        is a normal f16 or an infinity (both clamp orders agree when L <= H); zeros and subnormals,
        where FZ16 and the sign of zero matter, are redone exactly. numpy's float16 min/max are
        slow, so the clamp runs in float32.
        """
        lo, hi = clamp
        lo16, hi16 = rn16(lo), rn16(hi)
        if self.fz:
            lo16, hi16 = ftz16(lo16), ftz16(hi16)
        lo_a, hi_a = np.float32(lo16), np.float32(hi16)
        if not lo_a <= hi_a or (lo_a == hi_a == 0 and np.signbit(hi_a) != np.signbit(lo_a)) or np.isnan(acc).any():
            return self.epilogue_exact(acc, clamp)
        clamped = acc if (lo_a == -np.inf and hi_a == np.inf) else np.minimum(np.maximum(acc, lo_a), hi_a)
        res: NDArray[np.float16] = rn16(clamped)
        redo = (res.view(np.uint16) & np.uint16(0x7C00)) == 0  # zeros and subnormals
        if redo.any():
            res[redo] = self.epilogue_exact(acc[redo], clamp)
        return res

    def epilogue_exact(self, acc: NDArray[np.float32], clamp: Clamp) -> NDArray[np.float16]:
        """:meth:`epilogue` step by step, as the kernels run it (the reference of its fast form)."""
        lo, hi = clamp
        # The wrappers narrow the float bounds with one FCVT; the clamp then runs in f16.
        # FZ16: the f16 clamp reads its operands through the flush.
        out: NDArray[np.float16] = numerics.clamp(rn16(acc), rn16(lo), rn16(hi), self.clamp_kind, fz=self.fz)
        return out


class _Pf16Mopa(_Pf16Kernel, PackedLhsKernel):
    def tile_params(self) -> TileParams:
        v = self.vlh
        return TileParams(mr=v, nr=v, kr=2, sr=1, m_step=v, n_step=v)

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_mr() == 0, "m_idx % mr == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def lhs_layout(self, m: int, k: int) -> SmeLhsLayout:
        """The packed LHS format this kernel reads (``x16p2vlx2``)."""
        return SmeLhsLayout.for_svl(F16, 2, self.svl, m, k)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float16]:
        a: NDArray[np.float16] = self.lhs_layout(m, k).decode(lhs)
        return ftz16(a) if self.fz else a

    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        # Widening FMOPA of (bias, 0) with (1.0, 0): FPDot gives bias*1 + 0*0, so -0 -> +0.
        b = ftz16(rhs.bias) if self.fz else rhs.bias
        acc0 = b.astype(np.float32) + np.float32(0.0)
        return f16_pair_chain(np.broadcast_to(acc0, (lhs.shape[0], acc0.shape[0])), lhs, rhs.w, flush_w=rhs.flush_w)


class kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa(_Pf16Mopa):
    """SME2 MOPA [32 x 32 at SVL 512]; reads the ``...b`` packers' bias row despite its name."""

    name = "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa"
    variant = VARIANT
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    clamp_kind = "fclamp"


class kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa(_Pf16Mopa):
    """SME1 MOPA: same numerics; FMIN(max) then FMAX(min) in f16 (NaN -> 0x7E00)."""

    name = "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16p_f16p/" + name + "_asm.S"
    clamp_kind = "fmin_fmax"


class _Pf16Gemv(_Pf16Kernel, RawLhsKernel):
    lhs_dtype = F16
    n_step_vl: ClassVar[int]

    def tile_params(self) -> TileParams:
        return TileParams(mr=1, nr=self.vlh, kr=2, sr=1, m_step=1, n_step=self.n_step_vl * self.vlh)

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[np.float16]:
        a: NDArray[np.float16] = self.raw_row(lhs, m, k)
        return ftz16(a) if self.fz else a


class kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot(_Pf16Gemv):
    """SME2 GEMV (FDOT into ZA, same FPDotAdd_ZA as the MOPA): n_step = 8 * VLh."""

    name = "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot"
    variant = VARIANT
    isa = "sme2"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16_f16p/" + name + "_asm.S"
    clamp_kind = "fclamp"
    n_step_vl = 8

    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        k = lhs.shape[1]
        a = np.zeros((1, roundup(k, 2)), dtype=F16)
        a[:, :k] = lhs  # lanes past K are predicated off: they read as 0
        # FCVT widens the bias: no FZ16 flush, -0 kept.
        return f16_pair_chain(rhs.bias.astype(np.float32).reshape(1, -1), a, rhs.w, flush_w=rhs.flush_w)


class kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla(_Pf16Gemv):
    """SME1 GEMV: FMLALB/FMLALT, one binary32 rounding per k (not per pair): n_step = 4 * VLh."""

    name = "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla"
    variant = VARIANT
    isa = "sme"
    source = "kai/ukernels/matmul/matmul_clamp_f16_f16_f16p/" + name + "_asm.S"
    clamp_kind = "fmin_fmax"
    n_step_vl = 4

    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        return f16_mla_chain(rhs.bias.astype(np.float32).reshape(1, -1), lhs, rhs.w, flush_w=rhs.flush_w)


SME2_MOPA = kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa
SME1_MOPA = kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa
SME2_GEMV = kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot
SME1_GEMV = kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla


SPEC = FloatVariant(
    name=VARIANT,
    dtype=F16,
    lhs_packer=kai_lhs_pack_x16p2vlx2_x16_sme,
    rhs_packer_nxk=kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme,
    rhs_packer_kxn=kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme,
    sme2_mopa=SME2_MOPA,
    sme1_mopa=SME1_MOPA,
    sme2_gemv=SME2_GEMV,
    sme1_gemv=SME1_GEMV,
    fallback="f16_gemm",
)


def select_kernel(target: Target, m: int) -> type[PackedLhsKernel] | type[RawLhsKernel]:
    """The kernel XNNPACK's pf16 config runs: SME2 before SME; the 1-row kernel when M == 1."""
    return SPEC.select_kernel(target, m)


def gemm(
    lhs: NDArray[np.float16],
    rhs: NDArray[np.float16],
    *,
    bias: NDArray[np.float16] | None = None,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    transpose_rhs: bool = False,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float16]:
    """``lhs @ rhs.T + bias`` in f16 with f32 accumulation, as XNNPACK's pf16 path on ``target``.

    ``lhs`` [M, K] float16; ``rhs`` [N, K] float16 ([K, N] with ``transpose_rhs``); ``bias`` [N]
    float16 or None (zeros; XNNPACK converts an fp32 static bias with ``xnn_float16_from_float``,
    i.e. :func:`kleidiref.numerics.rn16`). Clamp bounds are narrowed to f16 (RNE) as the
    wrappers do. FPCR.FZ/FZ16 follow the target's ``flush_to_zero``.
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
    rhs: NDArray[np.float16],
    *,
    bias: NDArray[np.float16] | None = None,
    transpose_rhs: bool = False,
    target: Target | None = None,
) -> PackedWeights:
    """Pack weights and bias once for :func:`gemm_packed`, as XNNPACK packs them at model load.

    Same arguments and packers as :func:`gemm`. The kernels decode the packed bytes on the
    first call and reuse that decoding (as many bytes again as the packing) on every later one.
    """
    return SPEC.pack_weights(rhs, bias=bias, transpose_rhs=transpose_rhs, target=target)


def gemm_packed(
    lhs: NDArray[np.float16],
    weights: PackedWeights,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    target: Target | None = None,
    kernel: str | None = None,
) -> NDArray[np.float16]:
    """:func:`gemm` on weights from :func:`pack_weights` (packed for the target's SVL): same bits."""
    return SPEC.gemm_packed(lhs, weights, clamp_min=clamp_min, clamp_max=clamp_max, target=target, kernel=kernel)


GOLDEN = {"pf16_gemm": SPEC.reproduce_golden, "pf16_gemm_fz": SPEC.reproduce_golden}
