"""The IGEMM variants XNNPACK runs through KleidiAI (pf32, pf16, pqs8): per variant its element
type, imatmul packers and MOPA kernels, and the packing steps both the kernel path and the golden
reproducer take.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..._buffers import as_packed_rhs
from ...conv import ConvGeometry
from ...kai.interface import MatmulKernel
from ...kai.pack.imatmul_pack_sme import (
    F16,
    F32,
    I8,
    ImatmulLhsPacker,
    ImatmulRhsBiasPacker,
    ImatmulRhsPacker,
    kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme,
    kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme,
    kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme,
    kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme,
    kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme,
    kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme,
)
from ...kai.params import kai_rhs_pack_qsi8cx_params
from .. import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm

__all__ = ["CONFIGS", "IgemmConfig", "Variant", "pack_lhs", "pack_weights", "xnnpack_conv_weights_mislaid"]

Variant = Literal["pf32", "pf16", "pqs8"]


@dataclasses.dataclass(frozen=True)
class IgemmConfig:
    """One IGEMM variant: element type, imatmul packers, the SME2/SME1 MOPA kernels, kr."""

    elem: np.dtype[Any]
    lhs_packer: type[ImatmulLhsPacker]
    rhs_packer: type[ImatmulRhsPacker]
    sme2: type[MatmulKernel]
    sme1: type[MatmulKernel]
    kr: int

    @property
    def elem_name(self) -> str:
        return {1: "int8", 2: "float16", 4: "float32"}[self.elem.itemsize]


CONFIGS: dict[str, IgemmConfig] = {
    "pf32": IgemmConfig(
        F32,
        kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme,
        kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme,
        pf32_gemm.SME2_MOPA,
        pf32_gemm.SME1_MOPA,
        1,
    ),
    "pf16": IgemmConfig(
        F16,
        kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme,
        kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme,
        pf16_gemm.SME2_MOPA,
        pf16_gemm.SME1_MOPA,
        2,
    ),
    "pqs8": IgemmConfig(
        I8,
        kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme,
        kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme,
        pqs8_qc8w_gemm.SME2_MOPA,
        pqs8_qc8w_gemm.SME1_MOPA,
        4,
    ),
}


def xnnpack_conv_weights_mislaid(variant: str, svl: int) -> bool:
    """True where XNNPACK's own float conv weight packer disagrees with what the kernel reads.

    Note: XNNPACK packs pf32/pf16 *convolution* weights with its generic
    ``xnn_pack_f32_conv_goki_w`` / ``xnn_pack_f16_conv_goki_w`` (``set_context_params_f32/_f16``),
    not the KleidiAI imatmul RHS packers, using the config's nr. For pf16 the config forces
    ``nr = max(kernel nr, 16)`` ("nstep_min"), so at **SVL 128** (kernel nr = VLh = 8) XNNPACK's
    pf16 Conv2d would lay weights out in 16-column blocks that
    ``kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa`` (and its SME1 sibling) read as
    8-column blocks: an upstream hazard inferred from XNNPACK source (``src/configs/gemm-config.c``,
    ``src/operators/convolution-nhwc.c``), not executed. kleidiref emulates the kernel-consistent
    layout (the one the golden vectors store), so its pf16 SVL-128 convolution is what the kernels
    compute on correctly packed weights. Everywhere else the two layouts coincide on every byte the
    kernel reads.
    """
    return variant == "pf16" and svl == 128


def pack_weights(
    cfg: IgemmConfig,
    variant: str,
    svl: int,
    filt: NDArray[Any],
    bias: NDArray[Any],
    ks: int,
    kc: int,
    scale: NDArray[np.float32] | None,
    izp: int,
) -> Any:
    """OHWI -> [ks*kc][Cout] (XNNPACK's goki transpose) -> the imatmul RHS packer."""
    cout = filt.shape[0]
    w_kn = np.ascontiguousarray(filt.reshape(cout, ks * kc).T)
    packer = cfg.rhs_packer(svl)
    out = np.zeros(packer.get_rhs_packed_size(cout, ks, kc), dtype=np.uint8)
    if variant == "pqs8":
        assert isinstance(packer, kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme)
        params = kai_rhs_pack_qsi8cx_params(lhs_zero_point=izp, scale_multiplier=1.0)
        packer.run_rhs_imatmul_pack(
            cout, ks, kc, cout, w_kn, np.ascontiguousarray(bias), np.ascontiguousarray(scale), out, params
        )
        return as_packed_rhs(out)  # immutable: the kernels cache its decoding across images
    assert isinstance(packer, ImatmulRhsBiasPacker)
    packer.run_rhs_imatmul_pack(cout, ks, kc, cout * cfg.elem.itemsize, w_kn, np.ascontiguousarray(bias), out)
    return out


def pack_lhs(
    cfg: IgemmConfig,
    svl: int,
    geom: ConvGeometry,
    ind: NDArray[np.int32],
    memory: NDArray[np.uint8],
    kc: int,
    pad_ptr: int,
    a_offset: int,
) -> NDArray[np.uint8]:
    """XNNPACK's ``xnn_x*_pack_lh_ukernel__igemm_neonsme*`` on the whole image (m = M)."""
    packer = cfg.lhs_packer(svl)
    ptrs = np.where(ind >= 0, ind.astype(np.int64) * kc * cfg.elem.itemsize, pad_ptr)
    out = np.zeros(packer.get_lhs_packed_size(geom.m, geom.ks, kc), dtype=np.uint8)
    packer.run_lhs_imatmul_pack(geom.m, geom.ks, kc, ptrs, a_offset, pad_ptr, out, memory=memory)
    return out
