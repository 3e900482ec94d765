"""Every numeric step of the emulated kernels, named once, each rounding made explicit.

Kernels (the KleidiAI mirror, the XNNPACK fallbacks, the quantizers) build their arithmetic from
these helpers only, so each reads as the list of steps its code performs. Names follow the
instruction or C function they mirror (Arm ARM pseudocode names in parentheses):

=======================  ===========================================================================
helper                   instruction / upstream function it mirrors
=======================  ===========================================================================
``fma32``                FMLA/FMOPA/FMADD .s (FPMulAdd): ``RN32(a*b + c)``, one rounding; C ``fmaf``
``fmul32``/``fadd32``    FMUL/FADD .s: ``RN32(a*b)``, ``RN32(a + b)``
``fma16``                FMLA .h (FPMulAdd, binary16): ``RN16(a*b + c)``, one rounding
``fmul16``/``fadd16``    FMUL/FADD .h
``f16_pair_dot``         FPDot: ``RN32(a0*b0 + a1*b1)``, products exact
``fdot_add_za``          FPDotAdd_ZA (widening FMOPA, FDOT into ZA): two roundings
``fmlal``                FMLALB/FMLALT: ``RN32(acc + a*b)`` for f16 ``a``, ``b``
``fma32_x86``            x86 VFMADD231PS / MULPS / ADDPS under MXCSR.FTZ|DAZ (tininess after rounding)
``clamp``                the float clamps, one function; ``kind`` (:class:`Clamp`) picks
                         ``FCLAMP`` (SME2 FCLAMP: NaN -> lo), ``FMIN_FMAX`` (FMIN then FMAX),
                         ``FMAX_FMIN`` (FMAX then FMIN; NaN propagates in both) or an x86
                         MAXPS/MINPS order (``X86_*``); ``fclamp``/``fmin_fmax``/``fmax_fmin``
                         are the Arm three as functions, ``maxps``/``minps`` the x86 steps
``rn32``/``rn16``        FCVT to binary32 / binary16, round to nearest even
``f32_to_bf16_rne``      XNNPACK ``math_cvt_bf16_fp32`` (RNE); ``bf16_to_f32``: ``kai_cast_f32_bf16``
``round_half_even``      FRINTN / C ``rintf``, ``lrintf`` (ties to even)
``round_half_away``      FRINTA / C ``roundf`` (ties away from zero)
``fcvtzs``               FCVTZS: toward zero, saturating, NaN -> 0
``fcvtns``               FCVTNS / ``vcvtnq_s32_f32``: ties to even, saturating, NaN -> 0
``fcvtas``               FCVTAS / ``lroundf`` on AArch64: ties away, saturating, NaN -> 0
``frintn_fcvtzs``        FRINTN then FCVTZS (the SME requantization), to int32
``frintn_biased_bits``   FRINTN by the ``1.5 * 2**23`` magic add (XNNPACK ``fmagic`` requantization)
``wrap_i32``/``wrap_i16``  two's-complement wrap of an integer register (ADD/MLA/SDOT/SMOPA)
``saturate``             SQXTN/SQXTUN/SQADD (``vqmovn``, ``vqmovun``, ``vqadd``): clamp to a type
``clamp_int``            SMAX then SMIN / SCLAMP: the integer output clamp
``sqdmulh``/``srshr``    SQDMULH, SRSHL by a negative shift (XNNPACK's rndnu requantization)
``ftz32``/``ftz16``      FPCR.FZ / FPCR.FZ16 input flush (signed zero)
=======================  ===========================================================================

Rounding names used in docstrings: ``RN32``/``RN16``/``RN64`` = round to nearest, ties to even,
to binary32/binary16/binary64.

Conventions shared by the float steps:

* ``fz=True`` is FPCR.FZ (binary32) / FPCR.FZ16 (binary16): subnormal operands read as zeros of
  the same sign and a result whose exact value is below the smallest normal becomes a signed
  zero, tininess detected *before* rounding (Arm ARM FPRound with FPCR.AH = 0).
* NaN results are the default NaN (0x7FC00000 / 0x7E00).

Submodules, each re-exported here: :mod:`~kleidiref.numerics.floats` (arithmetic, FZ, the
default NaN), :mod:`~kleidiref.numerics.conversions` (FCVT, bfloat16, rounding to integral,
float -> integer), :mod:`~kleidiref.numerics.integers` (wraparound, saturation) and
:mod:`~kleidiref.numerics.clamp`.
"""

from __future__ import annotations

from .clamp import Clamp, clamp, fclamp, fmax_fmin, fmin_fmax, maxps, minps
from .conversions import (
    FRINTN_MAGIC,
    FRINTN_MAGIC_BITS,
    bf16_to_f32,
    f32_to_bf16_rne,
    fcvtas,
    fcvtns,
    fcvtzs,
    frintn_biased_bits,
    frintn_fcvtzs,
    rn16,
    rn32,
    round_half_away,
    round_half_even,
)
from .floats import (
    DEFAULT_NAN_F16_BITS,
    DEFAULT_NAN_F32_BITS,
    FLT16_MIN,
    FLT_MIN,
    canonical_nan_f16,
    canonical_nan_f32,
    f16_pair_dot,
    fadd16,
    fadd32,
    fdot_add_za,
    fma16,
    fma32,
    fma32_x86,
    fmlal,
    fmul16,
    fmul32,
    ftz16,
    ftz32,
    has_subnormal,
    round_to_odd_sum,
)
from .integers import clamp_int, saturate, sqdmulh, srshr, wrap_i16, wrap_i32

__all__ = [
    "DEFAULT_NAN_F16_BITS",
    "DEFAULT_NAN_F32_BITS",
    "FLT16_MIN",
    "FLT_MIN",
    "FRINTN_MAGIC",
    "FRINTN_MAGIC_BITS",
    "Clamp",
    "bf16_to_f32",
    "canonical_nan_f16",
    "canonical_nan_f32",
    "clamp",
    "clamp_int",
    "f16_pair_dot",
    "f32_to_bf16_rne",
    "fadd16",
    "fadd32",
    "fclamp",
    "fcvtas",
    "fcvtns",
    "fcvtzs",
    "fdot_add_za",
    "fma16",
    "fma32",
    "fma32_x86",
    "fmax_fmin",
    "fmin_fmax",
    "fmlal",
    "fmul16",
    "fmul32",
    "frintn_biased_bits",
    "frintn_fcvtzs",
    "ftz16",
    "ftz32",
    "has_subnormal",
    "maxps",
    "minps",
    "rn16",
    "rn32",
    "round_half_away",
    "round_half_even",
    "round_to_odd_sum",
    "saturate",
    "sqdmulh",
    "srshr",
    "wrap_i16",
    "wrap_i32",
]
