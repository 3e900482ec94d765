"""KleidiAI's packers (``kai/ukernels/matmul/pack/``), one module per packer family."""

from __future__ import annotations

from .imatmul_pack_sme import (
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
from .lhs_pack_sme import (
    SmeLhsPacker,
    kai_lhs_pack_f32p2vlx1_f32_sme,
    kai_lhs_pack_x8p2vlx4_x8_sme,
    kai_lhs_pack_x16p2vlx2_x16_sme,
)
from .lhs_quant_pack_qai8dxp_f32 import Qai8dxpRows, kai_lhs_quant_pack_qai8dxp_f32, read_qai8dxp
from .rhs_pack_bias_sme import (
    SmeRhsBiasPacker,
    kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme,
    kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme,
    kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme,
    kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme,
)
from .rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme import kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme
from .rhs_pack_qsi4c32p_qsu4c32s1s0 import (
    Qsi4c32pPacker,
    kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0,
    kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0,
    kai_rhs_pack_qsi4c32p_params,
)
from .rhs_pack_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon import (
    kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon,
    kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon,
)
from .rhs_pack_qsi8cxp_qsi8cx_neon import (
    Qsi8cxpRhsPacker,
    kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon,
    kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon,
)

__all__ = [
    "ImatmulLhsPacker",
    "ImatmulRhsBiasPacker",
    "ImatmulRhsPacker",
    "Qai8dxpRows",
    "Qsi4c32pPacker",
    "Qsi8cxpRhsPacker",
    "SmeLhsPacker",
    "SmeRhsBiasPacker",
    "kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme",
    "kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme",
    "kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme",
    "kai_lhs_pack_f32p2vlx1_f32_sme",
    "kai_lhs_pack_x8p2vlx4_x8_sme",
    "kai_lhs_pack_x16p2vlx2_x16_sme",
    "kai_lhs_quant_pack_qai8dxp_f32",
    "kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme",
    "kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme",
    "kai_rhs_pack_kxn_f32p2vlx1biasf32_f32_f32_sme",
    "kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
    "kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme",
    "kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon",
    "kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme",
    "kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0",
    "kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon",
    "kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon",
    "kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_pack_qsi4c32p_params",
    "read_qai8dxp",
]
