"""What XNNPACK's hardware config sees on a target: which ISA branches and configs exist, and why not.

The branch of each KleidiAI config comes from :func:`kleidiref.configs.kai_branch`
(``src/configs/gemm-config.c``); this module words it for the decision's reasons.
"""

from __future__ import annotations

import dataclasses

from ..configs import Branch, GenericConfig, Platform, generic_config, kai_branch
from ..targets import Target

__all__ = [
    "X86_ASSUMED",
    "Hw",
    "fz_reason",
    "generic_table",
    "why_no_neon_kai",
    "why_no_sme",
    "x86_f16_reasons",
    "x86_name",
]


@dataclasses.dataclass(frozen=True)
class Hw:
    t: Target
    platform: Platform

    @property
    def arm64(self) -> bool:
        return self.t.arch == "arm64"

    @property
    def kai(self) -> bool:
        # XNNPACK_ENABLE_KLEIDIAI is forced OFF unless the target is AArch64 (CMakeLists.txt).
        return self.arm64 and self.t.kleidiai

    @property
    def sme_level(self) -> Branch | None:
        """'sme2' / 'sme' branch of the SME configs, None when neither (or no KleidiAI)."""
        return kai_branch("pf32_gemm", self.t)

    @property
    def qp8_level(self) -> Branch | None:
        """Branch of qp8_f32_qc8w / qp8_f32_qc4w: sme2 -> sme -> i8mm -> dotprod."""
        return kai_branch("qp8_f32_qc8w_gemm", self.t)

    @property
    def qb4w_level(self) -> Branch | None:
        """Branch of qp8_f32_qb4w: no SME branch; i8mm -> dotprod."""
        return kai_branch("qp8_f32_qb4w_gemm", self.t)

    @property
    def f16_gemm(self) -> bool:
        # Note: on x86-64 XNNPACK's f16_gemm config exists only with AVX2, AVX512SKX or
        # AVX512-FP16 (else creating an fp16 FC fails "unsupported hardware"); the Target model
        # has no x86 ISA flags, so an x86_64 target is assumed to have AVX2 (X86_ISA).
        return self.t.fp16_arith if self.arm64 else True

    def feature_summary(self) -> str:
        if not self.arm64:
            return "x86_64 target: no Arm features, KleidiAI is never built (XNNPACK_ENABLE_KLEIDIAI needs AArch64)"
        feats = [
            n
            for n, ok in (
                ("SME2", self.t.sme2),
                ("SME", self.t.sme),
                ("I8MM", self.t.i8mm),
                ("DotProd", self.t.dotprod),
                ("FP16", self.t.fp16_arith),
            )
            if ok
        ]
        kai = (
            "built with KleidiAI"
            if self.t.kleidiai
            else (
                "built WITHOUT KleidiAI (e.g. a Buck build without -DENABLE_XNNPACK_KLEIDI): no "
                "pf32/pf16/pqs8/qp8 configs"
            )
        )
        svl = f", SVL {self.t.svl_bits}" if self.t.has_sme else ""
        return f"arm64 target with {', '.join(feats) or 'no optional features'}{svl}; {kai}"


def generic_table(hw: Hw, cfg: str) -> GenericConfig | None:
    """The ARM64 ukernel table of generic config ``cfg`` on the target (:func:`kleidiref.configs.generic_config`)."""
    return generic_config(cfg, hw.t, hw.platform)


def x86_name(config: str) -> str:
    return f"{config} x86-64 ukernel (ISA-specific; not named by kleidiref)"


X86_ASSUMED = (
    "x86-64: the Target model has no x86 ISA flags; AVX2 + FMA3 (no AVX-512) is assumed, so "
    "XNNPACK's first matching config entry is the AVX2 one"
)


def x86_f16_reasons() -> list[str]:
    return [
        X86_ASSUMED + " (without AVX2 / AVX512SKX / AVX512-FP16 XNNPACK has no f16_gemm config and "
        "creating the fp16 operator fails with xnn_status_unsupported_hardware)",
        "the AVX2 f16_gemm entry runs f16_f32acc kernels (XNNPACK daf152873a): fp16 operands widened "
        "exactly, f32 FMA accumulation, one RN16 after the clamp",
    ]


def fz_reason(hw: Hw, floaty: bool) -> list[str]:
    if not floaty:
        return []
    if hw.t.flush_to_zero and hw.t.arch == "x86_64":
        return [
            "flush-to-zero on: XNNPACK runs every operator with MXCSR FTZ/DAZ set (pthreadpool "
            "PTHREADPOOL_FLAG_DISABLE_DENORMALS)"
        ]
    if hw.t.flush_to_zero:
        return [
            "flush-to-zero on: XNNPACK runs every operator with FPCR.FZ/FZ16 set (pthreadpool "
            "PTHREADPOOL_FLAG_DISABLE_DENORMALS), so subnormal floats read and write as zero (pf32/pf16 SME "
            "kernels: verified under QEMU only, not on silicon)"
        ]
    return [
        "flush-to-zero off (target.flush_to_zero = False): subnormals kept, as in a bare kernel call; "
        "XNNPACK itself would flush them"
    ]


def why_no_sme(hw: Hw, cfg: str) -> str:
    if not hw.arm64:
        return f"the {cfg} config exists only on arm64 with KleidiAI"
    if not hw.t.kleidiai:
        return f"XNNPACK was built without KleidiAI, so the {cfg} config is NULL"
    return f"the target has neither SME2 nor SME, so the {cfg} config is NULL"


def why_no_neon_kai(hw: Hw, cfg: str, *, qb4w: bool) -> str:
    if not hw.arm64:
        return f"the {cfg} config exists only on arm64 with KleidiAI"
    if not hw.t.kleidiai:
        return f"XNNPACK was built without KleidiAI, so the {cfg} config is NULL"
    return (
        f"the target has no {'I8MM or DotProd' if qb4w else 'SME2, SME, I8MM or DotProd'}, so the {cfg} config is NULL"
    )
