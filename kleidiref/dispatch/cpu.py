"""What XNNPACK's hardware config sees on a target: which ISA branches and configs exist, and why not.

The branch of each KleidiAI config comes from :func:`kleidiref.configs.kai_branch`
(``src/configs/gemm-config.c``); this module words it for the decision's reasons.
"""

from __future__ import annotations

import dataclasses

from ..configs import Branch, GenericConfig, Platform, generic_config, kai_branch, x86_f16_gemm_entry
from ..targets import Target, X86IsaLevel

__all__ = [
    "X86_ASSUMED",
    "Hw",
    "fz_reason",
    "generic_table",
    "why_no_neon_kai",
    "why_no_sme",
    "x86_f16_reasons",
    "x86_level_reason",
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
    def x86_isa(self) -> X86IsaLevel:
        """The x86 ISA level (x86_64 targets only)."""
        assert self.t.x86_isa is not None, "an arm64 target has no x86 ISA level"
        return self.t.x86_isa

    @property
    def f16_gemm(self) -> bool:
        # On x86-64 XNNPACK's f16_gemm config has AVX512-FP16, AVX512SKX and AVX2 entries only
        # (init_f16_gemm_config): below AVX2 xnn_init_f16_gemm_config returns NULL.
        return self.t.fp16_arith if self.arm64 else x86_f16_gemm_entry(self.x86_isa) is not None

    def feature_summary(self) -> str:
        if not self.arm64:
            return (
                f"x86_64 target, ISA level {self.x86_isa} (XNNPACK's first matching x86 config entries); "
                "no Arm features, KleidiAI is never built (XNNPACK_ENABLE_KLEIDIAI needs AArch64)"
            )
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


#: Deprecated wording of the old AVX2 assumption; kept for importers (see :func:`x86_level_reason`).
X86_ASSUMED = (
    "x86-64: the target's x86 ISA level (Target.x86_isa, default avx2) picks XNNPACK's first matching config entry"
)


def x86_level_reason(hw: Hw) -> str:
    """Why an x86 config entry was taken: the target's ISA level."""
    return f"x86-64 ISA level {hw.x86_isa} (Target.x86_isa): XNNPACK's first matching config entry is taken"


_F16_ENTRY_WHY = {
    "avx512fp16": "the AVX512-FP16 f16_gemm entry runs fp16-accumulating kernels: one VFMADD...PH (RN16) per "
    "k step from the fp16 bias, then MINPH(max, MAXPH(min, acc))",
    "avx512skx": "the AVX512SKX f16_gemm entry runs f16_f32acc kernels: fp16 operands widened exactly, f32 FMA "
    "accumulation, one RN16 after the clamp",
    "avx2": "the AVX2 f16_gemm entry runs f16_f32acc kernels (XNNPACK daf152873a): fp16 operands widened "
    "exactly, f32 FMA accumulation, one RN16 after the clamp",
}


def x86_f16_reasons(hw: Hw | None = None) -> list[str]:
    """Why the x86 f16_gemm entry of ``hw``'s ISA level (AVX2 when None) runs its kernels."""
    isa = "avx2" if hw is None else hw.x86_isa
    entry = x86_f16_gemm_entry(isa)
    assert entry is not None, f"no f16_gemm config at x86 ISA level {isa}"
    return [
        f"x86-64 ISA level {isa} (Target.x86_isa): init_f16_gemm_config tries AVX512-FP16, AVX512SKX, AVX2; "
        "without any of them xnn_init_f16_gemm_config returns NULL (creating an fp16 operator fails with "
        "xnn_status_unsupported_hardware; a subgraph rewrites fp16 nodes to fp32 first, cvt_to_fp32.cc)",
        _F16_ENTRY_WHY[entry],
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
