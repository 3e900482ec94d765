"""``kai_matmul_clamp_f32_qai8dxp_qsi4cxp``: the f32 x qai8dxp x qsi4cxp (4-bit per-channel) -> f32 kernels.

Upstream family directory ``kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4cxp/`` (SME2 / SME
MOPA and GEMV, NEON i8mm and dotprod). XNNPACK runs them as ``qp8_f32_qc4w_gemm`` (see
:mod:`kleidiref.variants.qp8_f32_qc4w_gemm` for the config and the per-element arithmetic).

Each kernel has KleidiAI's packed-buffer interface (``run_matmul`` on a packed qai8dxp LHS and a
packed :class:`~kleidiref.kai.layouts.Qsi4cxpLayout` RHS, the stages ``decode_lhs`` /
``decode_rhs`` / ``accumulate`` / ``epilogue`` / ``compute``); :meth:`Qc4wKernel.pack_rhs` is
the packer XNNPACK uses for it. :meth:`Qc4wKernel.run` computes the same bits from XNNPACK's
unpacked operands (no packed bytes: what ``gemm`` uses), through the same stage functions.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from .._buffers import check_count
from ..numerics import wrap_i32
from ..quant.qai8dx import quantize_qai8dx
from .int8_common import int8_matmul, qai8dxp_epilogue
from .interface import Branch, ClampBounds, PackedLhsKernel, TileParams
from .layouts import Qai8dxpLayout, Qsi4cxpLayout
from .matmul_clamp_f32_qai8dxp_qsi8cxp import Qsi8cxpRhs
from .pack import Qai8dxpRows

__all__ = [
    "KERNELS",
    "VARIANT",
    "Qc4wBranch",
    "Qc4wKernel",
    "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa",
    "kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot",
    "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod",
    "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm",
]

F32 = np.float32
VARIANT = "qp8_f32_qc4w_gemm"
#: The branches of XNNPACK's qp8_f32_qc4w config (kept as a name for existing imports).
Qc4wBranch = Branch
_SRC = "kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4cxp/"


def _rhs_operand(
    w: NDArray[np.int8], rsum: NDArray[np.int32], scale: NDArray[np.float32], bias: NDArray[np.float32], x16: bool
) -> Qsi8cxpRhs:
    """The RHS as the kernels read it: ``W`` [K, n] float32 (``16 w`` after SHL #4 / AND #0xF0
    when ``x16``, else ``w`` after LUTI4), the packed row sums, scales and biases."""
    wk = (16 * w.astype(np.int16)).astype(F32) if x16 else w.astype(F32)
    return Qsi8cxpRhs(np.ascontiguousarray(wk.T), rsum, scale, bias, 128.0 if x16 else 8.0)


class Qc4wKernel(PackedLhsKernel):
    """One KleidiAI qai8dxp x qsi4cxp kernel (``kai_run_<name>(m, n, k, lhs_packed, rhs_packed,
    dst, dst_stride_row, dst_stride_col, clamp_min, clamp_max)``), as XNNPACK's qp8_f32_qc4w
    config runs it. Subclasses set ``branch``, ``gemv``, ``kr``, ``sr`` and ``ext``.
    """

    variant = VARIANT
    branch: ClassVar[Qc4wBranch]
    gemv: ClassVar[bool]
    kr: ClassVar[int]
    sr: ClassVar[int]
    #: NEON kernels: ``(mr, nr, m_step, n_step)``; None: the SME 1vl x 4vl tiles.
    neon_tiles: ClassVar[tuple[int, int, int, int] | None] = None
    #: SME GEMVs: FMUL then FMLA (one rounding); else FMUL, FMUL, FADD.
    fused: ClassVar[bool]
    clamp_kind: ClassVar[Literal["fclamp", "fmax_fmin"]]
    #: True: nibbles widened to 16*w, packed scale * 0.0625 (qsi4cxp_qs4cxs1s0 packers);
    #: False: LUTI4 to w, scale as given (qsi4cxps1s0_qsu4cxs1s0 packer).
    x16: ClassVar[bool]
    packer: ClassVar[str]

    def __init_subclass__(cls, ext: str = ".c", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        sme = cls.branch in ("sme2", "sme")
        cls.isa = cls.branch if sme else "neon"
        cls.fused = sme and cls.gemv
        cls.clamp_kind = "fclamp" if cls.branch == "sme2" else "fmax_fmin"
        cls.x16 = cls.branch != "sme2"
        cls.packer = (
            "kai_rhs_pack_nxk_qsi4cxps1s0_qsu4cxs1s0_neon"
            if cls.branch == "sme2"
            else "kai_rhs_pack_nxk_qsi4cxp_qs4cxs1s0 (kxn sibling for transposed weights)"
        )
        cls.source = _SRC + cls.name + ext

    # -- the interface -------------------------------------------------------------------------

    def tile_params(self) -> TileParams:
        if self.neon_tiles is not None:
            mr, nr, ms, ns = self.neon_tiles
            return TileParams(mr=mr, nr=nr, kr=self.kr, sr=self.sr, m_step=ms, n_step=ns)
        mr = 1 if self.gemv else self.vls
        return TileParams(mr=mr, nr=4 * self.vls, kr=self.kr, sr=self.sr, m_step=mr, n_step=4 * self.vls)

    def lhs_layout(self, m: int, k: int) -> Qai8dxpLayout:
        """The packed LHS format this kernel reads (``kai_lhs_quant_pack_qai8dxp_f32`` with mr, kr, sr)."""
        p = self.tile_params()
        return Qai8dxpLayout(p.mr, p.kr, p.sr, m, k)

    def rhs_layout(self, n: int, k: int) -> Qsi4cxpLayout:
        """The packed RHS format this kernel reads (its packer's order, nr, kr, sr)."""
        p = self.tile_params()
        return Qsi4cxpLayout(p.nr, p.kr, p.sr, n, k, "qsi4cxp" if self.x16 else "qsi4cxps1s0")

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        m_idx, k = check_count("m_idx", m_idx), check_count("k", k)
        self._assume(m_idx % self.get_m_step() == 0, "(m_idx % m_step) == 0", "get_lhs_packed_offset")
        return self.lhs_layout(0, k).offset(m_idx)

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx, k = check_count("n_idx", n_idx), check_count("k", k)
        self._assume(n_idx % self.get_n_step() == 0, "(n_idx % n_step) == 0", "get_rhs_packed_offset")
        return self.rhs_layout(0, k).offset(n_idx)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return self.lhs_layout(m, k).size()

    def rhs_packed_size(self, n: int, k: int) -> int:
        return self.rhs_layout(n, k).size()

    # -- the packer ------------------------------------------------------------------------------

    def pack_rhs(
        self, w: NDArray[np.int8], scale: NDArray[np.float32], bias: NDArray[np.float32] | None = None
    ) -> NDArray[np.uint8]:
        """The packed RHS XNNPACK's packer writes for signed 4-bit weights ``w`` [N, K] in [-8, 7]
        (``lhs_zero_point`` 1): columns past N replicate column N-1 (qsi4cxp_qs4cxs1s0) or are
        zero (qsi4cxps1s0_qsu4cxs1s0); row sums ``16 sum w`` / ``sum w`` (int32, wraps), scales
        ``RN32(scale * 0.0625)`` / as given, biases (zero for None)."""
        n, k = w.shape
        if n < 1 or k < 1:
            raise ValueError(f"{self.packer} needs n >= 1 and k >= 1 (got n={n}, k={k})")
        lay = self.rhs_layout(n, k)
        slots = lay.blocks * lay.nr
        b = np.zeros(n, F32) if bias is None else bias.astype(F32)
        if self.x16:
            idx = np.minimum(np.arange(slots), n - 1)  # KAI_MIN(n0_idx, n - 1)
            w_pad, sc, bs = w[idx], scale.astype(F32)[idx], b[idx]
            rsum = wrap_i32(16 * w_pad.astype(np.int64).sum(axis=1))
            with np.errstate(under="ignore"):
                sc = (sc * F32(0.0625)).astype(F32)  # packer: scale * 0.0625F, at creation (no FZ)
        else:
            w_pad = np.zeros((slots, k), np.int8)
            w_pad[:n] = w
            sc, bs = np.zeros(slots, F32), np.zeros(slots, F32)
            sc[:n], bs[:n] = scale, b
            rsum = wrap_i32(w_pad.astype(np.int64).sum(axis=1))
        return lay.encode(w_pad, rsum.astype(np.int32), sc, bs)

    # -- the stages ------------------------------------------------------------------------------

    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> Qai8dxpRows:
        return Qai8dxpRows(*self.lhs_layout(m, k).decode(lhs))

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> Qsi8cxpRhs:
        w, rsum, scale, bias = self.rhs_layout(n, k).decode(rhs)
        return _rhs_operand(w, rsum, scale, bias, self.x16)

    def accumulate(self, lhs: Qai8dxpRows, rhs: Qsi8cxpRhs) -> NDArray[np.int32]:
        """The int32 accumulator (wraps): SMOPA / SDOT / SMMLA dot products, then ``-zp * rsum``."""
        return _accumulate(lhs.q, lhs.neg_zp, rhs)

    def epilogue(
        self, acc: NDArray[np.int32], dq: NDArray[np.float32], rhs: Qsi8cxpRhs, clamp: ClampBounds
    ) -> NDArray[np.float32]:
        """SCVTF, the scale/bias steps (``fused`` or not) and the clamp."""
        return _epilogue(type(self), acc, dq, rhs, clamp, self.fz)

    def compute(self, lhs: Qai8dxpRows, rhs: Qsi8cxpRhs, epilogue: ClampBounds) -> NDArray[np.float32]:
        return self.epilogue(self.accumulate(lhs, rhs), lhs.dq, rhs, epilogue)

    @classmethod
    def run(
        cls,
        a: NDArray[np.float32],
        w: NDArray[np.int8],
        sc_in: NDArray[np.float32],
        bias32: NDArray[np.float32],
        clamp: ClampBounds,
        *,
        fz: bool,
    ) -> NDArray[np.float32]:
        """The output bits of this kernel on float32 rows ``a`` [M, K] and signed 4-bit weights
        ``w`` [N, K] (XNNPACK's packing folded in), clamped to ``clamp``, FPCR.FZ if ``fz``: the
        operands ``decode_lhs`` / ``decode_rhs`` would read from the packed buffers, without
        the bytes (tests/test_teach_qc4w.py checks both ways agree)."""
        # LHS: kai_lhs_quant_pack_qai8dxp_f32 with this kernel's kr / sr (its K32 padding meets the
        # packers' zero RHS padding: 8 ^ 8 = 0 for zero point 8, 0 for zero point 0).
        q, dq, zp = quantize_qai8dx(np.ascontiguousarray(a), k_block_len=cls.kr // cls.sr)
        wi = w.astype(np.int64)
        if cls.x16:
            rsum = wrap_i32(16 * wi.sum(axis=1))  # packer: sums[i] * 16 (int32)
            with np.errstate(under="ignore"):
                s = (sc_in * F32(0.0625)).astype(F32)  # packer: scale * 0.0625F, at creation (no FZ)
        else:
            rsum = wrap_i32(wi.sum(axis=1))
            s = sc_in
        rhs = _rhs_operand(w, rsum.astype(np.int32), s, bias32, cls.x16)
        acc = _accumulate(q, (-zp).astype(np.int32), rhs)
        return _epilogue(cls, acc, dq, rhs, clamp, fz)


def _accumulate(q: NDArray[np.int8], neg_zp: NDArray[np.int32], rhs: Qsi8cxpRhs) -> NDArray[np.int32]:
    acc = int8_matmul(q, rhs.w[: q.shape[1]], w_absmax=rhs.w_absmax)  # int32, wraps
    acc += neg_zp.astype(np.int32)[:, None] * rhs.rsum.astype(np.int32)[None, :]  # MLA (numpy int32 wraps)
    return acc


def _epilogue(
    cls: type[Qc4wKernel],
    acc: NDArray[np.int32],
    dq: NDArray[np.float32],
    rhs: Qsi8cxpRhs,
    clamp: ClampBounds,
    fz: bool,
) -> NDArray[np.float32]:
    lo, hi = clamp
    return qai8dxp_epilogue(acc, dq, rhs.scale, rhs.bias, lo, hi, fused=cls.fused, fz=fz, clamp_kind=cls.clamp_kind)


class kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa(Qc4wKernel):
    name = "kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa"
    branch, gemv, kr, sr = "sme2", False, 4, 1


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot(Qc4wKernel):
    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot"
    branch, gemv, kr, sr = "sme2", True, 4, 1


class kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa(Qc4wKernel, ext="_asm.S"):
    name = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa"
    branch, gemv, kr, sr = "sme", False, 8, 2


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot(Qc4wKernel, ext="_asm.S"):
    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot"
    branch, gemv, kr, sr = "sme", True, 8, 2


class kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm(Qc4wKernel, ext="_asm.S"):
    name = "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm"
    branch, gemv, kr, sr = "i8mm", False, 16, 2
    neon_tiles = (4, 8, 8, 8)


class kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod(Qc4wKernel):
    name = "kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod"
    branch, gemv, kr, sr = "i8mm", True, 16, 2
    neon_tiles = (1, 8, 1, 8)


class kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod(Qc4wKernel, ext="_asm.S"):
    name = "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod"
    branch, gemv, kr, sr = "dotprod", False, 8, 2
    neon_tiles = (4, 4, 16, 4)


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod(Qc4wKernel):
    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod"
    branch, gemv, kr, sr = "dotprod", True, 8, 2
    neon_tiles = (1, 4, 1, 4)


#: KleidiAI kernel name -> kernel class.
KERNELS: dict[str, type[Qc4wKernel]] = {
    k.name: k
    for k in (
        kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa,
        kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot,
        kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa,
        kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot,
        kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm,
        kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod,
        kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod,
        kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod,
    )
}
