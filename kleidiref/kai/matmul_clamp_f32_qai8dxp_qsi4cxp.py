"""``kai_matmul_clamp_f32_qai8dxp_qsi4cxp``: the f32 x qai8dxp x qsi4cxp (4-bit per-channel) -> f32 kernels.

Upstream family directory ``kai/ukernels/matmul/matmul_clamp_f32_qai8dxp_qsi4cxp/`` (SME2 / SME
MOPA and GEMV, NEON i8mm and dotprod). XNNPACK runs them as ``qp8_f32_qc4w_gemm`` (see
:mod:`kleidiref.variants.qp8_f32_qc4w_gemm` for the config and the per-element arithmetic);
:meth:`Qc4wKernel.run` computes a kernel's output bits with XNNPACK's packing folded in.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from ..numerics import wrap_i32
from ..quant.qai8dx import quantize_qai8dx
from .int8_common import int8_matmul, qai8dxp_epilogue
from .interface import Branch, ClampBounds, Ukernel

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


class Qc4wKernel(Ukernel):
    """One KleidiAI qai8dxp x qsi4cxp kernel as XNNPACK's qp8_f32_qc4w config runs it.

    A registered ukernel (``kleidiref.get_ukernel``) describing the kernel; :meth:`run` computes
    its output bits (no packed-buffer interface: XNNPACK's packing is folded into ``run``).
    Subclasses set ``branch``, ``gemv``, ``kr``, ``sr`` and ``ext``; the rest follows.
    """

    variant = VARIANT
    branch: ClassVar[Qc4wBranch]
    gemv: ClassVar[bool]
    kr: ClassVar[int]
    sr: ClassVar[int]
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
        ``w`` [N, K] (XNNPACK's packing folded in), clamped to ``clamp``, FPCR.FZ if ``fz``."""
        lo, hi = clamp
        # LHS: kai_lhs_quant_pack_qai8dxp_f32 with this kernel's kr / sr (its K32 padding meets the
        # packers' zero RHS padding: 8 ^ 8 = 0 for zero point 8, 0 for zero point 0).
        q, dq, zp = quantize_qai8dx(np.ascontiguousarray(a), k_block_len=cls.kr // cls.sr)
        wi = w.astype(np.int64)
        if cls.x16:
            wk = (16 * w.astype(np.int16)).astype(F32)  # SHL #4 / AND #0xF0 of the packed nibbles
            rsum = wrap_i32(16 * wi.sum(axis=1))  # packer: sums[i] * 16 (int32)
            with np.errstate(under="ignore"):
                s = (sc_in * F32(0.0625)).astype(F32)  # packer: scale * 0.0625F, at creation (no FZ)
            absmax = 128.0
        else:
            wk = w.astype(F32)  # LUTI4 -> int8 value
            rsum = wrap_i32(wi.sum(axis=1))
            s = sc_in
            absmax = 8.0
        acc = int8_matmul(q, np.ascontiguousarray(wk.T), w_absmax=absmax)  # int32, wraps
        acc += (-zp).astype(np.int32)[:, None] * rsum.astype(np.int32)[None, :]  # MLA (numpy int32 wraps)
        return qai8dxp_epilogue(acc, dq, s, bias32, lo, hi, fused=cls.fused, fz=fz, clamp_kind=cls.clamp_kind)


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


class kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod(Qc4wKernel):
    name = "kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod"
    branch, gemv, kr, sr = "i8mm", True, 16, 2


class kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod(Qc4wKernel, ext="_asm.S"):
    name = "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod"
    branch, gemv, kr, sr = "dotprod", False, 8, 2


class kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod(Qc4wKernel):
    name = "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod"
    branch, gemv, kr, sr = "dotprod", True, 8, 2


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
