"""IGEMM (Conv2d) through KleidiAI on SME/SME2: ``pf32``, ``pf16`` and ``pqs8_qc8w``.

XNNPACK runs a KleidiAI-eligible 2-D convolution as an *indirect* GEMM:

1. ``xnn_indirection_init_conv2d`` (``src/indirection.c``) builds, per tile of ``mr`` output
   pixels and per kernel tap (ky, kx) in row-major order, ``mr`` pointers to the input pixel each
   output pixel reads, or to a padding buffer (``kc`` elements of ``input_zero_point`` for pqs8,
   +0.0 for the float variants). Layout ``[m_tile][ks][mr]``; rows past M repeat the last pixel.
2. The imatmul LHS packer (``kai_lhs_imatmul_pack_{x32p2vlx1_x32p, x16p2vlx2_x16p,
   x8p2vlx4_x8p}_sme``) copies, per m-block and tap ("k chunk"), the ``kc`` channels each pointer
   addresses, zero-padding each chunk to ``Kc = roundup(kc, kr)`` (**per-chunk K padding**) and
   the rows past M of the last block.
3. The weights ``OHWI = [Cout][ks][kc]`` are transposed to ``[ks*kc][Cout]`` and packed with the
   same per-chunk padding (``kai_rhs_imatmul_pack_kxn_*``; pqs8 folds ``-izp * sum W`` into the
   int32 bias).
4. The **ordinary matmul MOPA kernel** runs with ``k = ks * Kc`` (SME2 kernel -> ``out``, SME1 ->
   ``out_sme1``). KleidiAI's dedicated ``kai_imatmul_clamp_*`` kernels read the same buffers and
   give the same bits; they are exposed here as thin classes over the matmul kernels.

Numerics per output element (k' = c*Kc + i runs tap-major, channel-minor; padded channels
``kc <= i < Kc`` are zero on both sides, padding taps read the padding buffer)::

    pf32: acc = fma32(1.0, bias[n], +0); acc = fma32(a[m][k'], w[k'][n], acc) for k' in order;
          out = clamp(acc)               (SME2 FCLAMP: NaN -> min; SME1 FMIN/FMAX: NaN kept)
    pf16: acc = f32(bias[n]); per tap c, pair p < Kc/2:
          acc = RN32(acc + RN32(a[c][2p]*w[c][2p][n] + a[c][2p+1]*w[c][2p+1][n]))
          out = clamp_f16(RN16(acc), RN16(min), RN16(max))
    pqs8: acc = bias[n] + sum_{taps, i<kc} (x - izp) * W   int32, wraps (padding taps read izp -> 0)
          out = clamp(RNE_int(RN32(RN32(acc) * scale[n])) + zp_out, min, max)

Because a pixel's padding-tap products are exact zeros (floats) or cancelled exactly (pqs8), an
output pixel whose taps are all padding gives ``clamp(bias)`` (a -0 bias gives +0 in the MOPA
kernels) or the requantized bias.

**IGEMM vs im2col GEMM.** The IGEMM result equals a plain GEMM through the same MOPA kernel on
the im2col matrix ``A[m][c*kc + i]`` (padding taps = the padding value) *when that matrix is
padded per tap the same way*: for pf32 (kr = 1) and for even ``kc`` in pf16 no padding exists and
the two are bit-identical; for pqs8 they are always identical (exact integers). For pf16 with odd
``kc`` the unpadded im2col GEMM pairs the last channel of one tap with the first channel of the
next, which rounds differently (``tests/test_igemm.py`` has a counterexample).

**conv2d** (:mod:`.api`) computes the kernel's arithmetic on an im2col gather by default and
the packers and kernel objects with ``fast=False`` (:mod:`.plans`); :func:`prepare_conv2d`
splits it as XNNPACK splits create from run. The geometry, padding order (XNNPACK's: top, right,
bottom, left), indirection buffer and im2col are :mod:`kleidiref.conv`'s.

Modules: :mod:`.packers` (``kai_lhs_imatmul_pack_*``, ``kai_rhs_imatmul_pack_kxn_*``),
:mod:`.kernels` (``kai_imatmul_clamp_*``), :mod:`.configs` (the variant table and the packing
steps), :mod:`.plans` (the per-group routes), :mod:`.api` (:func:`conv2d`, :func:`prepare_conv2d`,
:class:`PreparedConv2d`), :mod:`.golden` (the golden reproducer).
"""

from __future__ import annotations

from ...conv import ConvGeometry, Padding, conv_geometry, im2col, indirection_conv2d
from ...kai.imatmul_clamp import (
    kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa,
    kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa,
    kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa,
    kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa,
    kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa,
    kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa,
)
from ...kai.pack.imatmul_pack_sme import (
    kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme,
    kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme,
    kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme,
    kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme,
    kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme,
    kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme,
)
from .api import PreparedConv2d, conv2d, prepare_conv2d
from .configs import Variant, xnnpack_conv_weights_mislaid
from .golden import GOLDEN, golden_padding, reproduce_golden

__all__ = [
    "GOLDEN",
    "ConvGeometry",
    "Padding",
    "PreparedConv2d",
    "Variant",
    "conv2d",
    "conv_geometry",
    "golden_padding",
    "im2col",
    "indirection_conv2d",
    "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa",
    "kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme2_mopa",
    "kai_imatmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa",
    "kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa",
    "kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme",
    "kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme",
    "kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme",
    "kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme",
    "kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme",
    "kai_rhs_imatmul_pack_kxn_x32p2vlx1b_x32_x32_sme",
    "prepare_conv2d",
    "reproduce_golden",
    "xnnpack_conv_weights_mislaid",
]
