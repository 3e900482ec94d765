"""XNNPACK's gemm-config choices as data: which kernel each config runs, on which ISA branch.

The one home of these facts (XNNPACK ``75db3c093b``; the ExecuTorch pin ``92a7ad501b`` agrees):

* the KleidiAI-backed configs (``init_{pf32,pf16,pqs8_qc8w,qp8_f32_qc8w,qp8_f32_qb4w,qp8_f32_qc4w}_gemm_config``
  in ``src/configs/gemm-config.c``): the branch order (:data:`BRANCH_ORDER`), the KleidiAI kernel of
  each (branch, kind) (:data:`KAI_KERNELS`), and the XNNPACK wrapper ukernel with its mr / nr
  (:func:`xnn_ukernel`, the one place SME tile numbers are computed from the SVL);
* the generic ARM64 configs (default uarch) as ``{mr: ukernel}`` tables (:func:`generic_config`),
  dwconv and vmulcaddc (``src/configs/dwconv-config.c``, ``vmulcaddc-config.c``), and the weight-only
  and x86-64 f16 choices (:func:`f32_qcw_choice`, :func:`f16_x86_choice`).

``kind`` is ``"mopa"`` for the config's multi-row kernel (``gemm[mr - 1]``) and ``"gemv"`` for its
1-row kernel (``gemm[0]``). :mod:`kleidiref.dispatch`, every variant's ``select_kernel`` and
:mod:`kleidiref.ops` read this module; it imports neither (only targets, the ukernel registry
and the fallbacks' own kernel-name functions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar, cast

from .fallbacks.f16_x86 import f16_x86_ukernel
from .fallbacks.f32_qcw import X86Isa, f32_qcw_ukernel
from .kai.interface import Branch, Ukernel
from .kai.registry import UKERNELS
from .targets import Target, X86IsaLevel, target_svl

__all__ = [
    "BRANCH_ORDER",
    "DWCONV",
    "KAI_CONFIGS",
    "KAI_KERNELS",
    "VMULCADDC",
    "X86_DWCONV_TILES",
    "X86_ISA",
    "Branch",
    "GenericConfig",
    "KaiChoice",
    "KernelBase",
    "Kind",
    "Platform",
    "alias",
    "f16_x86_choice",
    "f32_qcw_choice",
    "generic_config",
    "kai_branch",
    "kai_choice",
    "kai_kernel_names",
    "kernel_class",
    "select_kai_kernel",
    "x86_f16_gemm_entry",
    "xnn_ukernel",
]

Kind = Literal["mopa", "gemv"]
Platform = Literal["linux", "apple"]
_K = TypeVar("_K", bound=Ukernel)

#: The KleidiAI-backed configs (each is the variant module of the same name).
KAI_CONFIGS: tuple[str, ...] = (
    "pf32_gemm",
    "pf16_gemm",
    "pqs8_qc8w_gemm",
    "qp8_f32_qc8w_gemm",
    "qp8_f32_qb4w_gemm",
    "qp8_f32_qc4w_gemm",
)

#: ``init_<config>_config``: the branches in the order XNNPACK tries them (first the target has wins).
BRANCH_ORDER: Mapping[str, tuple[Branch, ...]] = {
    "pf32_gemm": ("sme2", "sme"),
    "pf16_gemm": ("sme2", "sme"),
    "pqs8_qc8w_gemm": ("sme2", "sme"),
    "qp8_f32_qc8w_gemm": ("sme2", "sme", "i8mm", "dotprod"),
    # Note: no SME branch upstream; KleidiAI's SME2 qb4w kernels are reachable only by name.
    "qp8_f32_qb4w_gemm": ("i8mm", "dotprod"),
    "qp8_f32_qc4w_gemm": ("sme2", "sme", "i8mm", "dotprod"),
}

#: (config) -> (branch, kind) -> KleidiAI kernel (``gemm-config.c`` and the wrappers of
#: ``src/<config>/``). The SME1 pqs8 config registers no 1-row kernel.
KAI_KERNELS: Mapping[str, Mapping[tuple[Branch, Kind], str]] = {
    "pf32_gemm": {
        ("sme2", "mopa"): "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa",
        ("sme", "mopa"): "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
        ("sme2", "gemv"): "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla",
        ("sme", "gemv"): "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla",
    },
    "pf16_gemm": {
        ("sme2", "mopa"): "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa",
        ("sme", "mopa"): "kai_matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa",
        ("sme2", "gemv"): "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot",
        ("sme", "gemv"): "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla",
    },
    "pqs8_qc8w_gemm": {
        ("sme2", "mopa"): "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa",
        ("sme", "mopa"): "kai_matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa",
        ("sme2", "gemv"): "kai_matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot",
    },
    "qp8_f32_qc8w_gemm": {
        ("sme2", "mopa"): "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa",
        ("sme", "mopa"): "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa",
        ("sme2", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot",
        ("sme", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot",
        ("i8mm", "mopa"): "kai_matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm",
        ("i8mm", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod",
        ("dotprod", "mopa"): "kai_matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod",
        ("dotprod", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod",
    },
    "qp8_f32_qb4w_gemm": {
        ("i8mm", "mopa"): "kai_matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm",
        ("i8mm", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod",
        ("dotprod", "mopa"): "kai_matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod",
        ("dotprod", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod",
    },
    "qp8_f32_qc4w_gemm": {
        ("sme2", "mopa"): "kai_matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa",
        ("sme2", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot",
        ("sme", "mopa"): "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa",
        ("sme", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot",
        ("i8mm", "mopa"): "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm",
        ("i8mm", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod",
        ("dotprod", "mopa"): "kai_matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod",
        ("dotprod", "gemv"): "kai_matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod",
    },
}

#: NEON branches: (config) -> (branch, kind) -> (XNNPACK ukernel, mr, nr); fixed tiles.
_XNN_NEON: Mapping[str, Mapping[tuple[Branch, Kind], tuple[str, int, int]]] = {
    "qp8_f32_qc8w_gemm": {
        ("i8mm", "mopa"): ("xnn_qp8_f32_qc8w_gemm_minmax_ukernel_16x4c8__neoni8mm_mstep4", 16, 4),
        ("i8mm", "gemv"): ("xnn_qp8_f32_qc8w_gemm_minmax_ukernel_1x4c8__aarch64_neondot", 1, 4),
        ("dotprod", "mopa"): ("xnn_qp8_f32_qc8w_gemm_minmax_ukernel_16x4c4__aarch64_neondot_mstep4", 16, 4),
        ("dotprod", "gemv"): ("xnn_qp8_f32_qc8w_gemm_minmax_ukernel_1x4c4__aarch64_neondot", 1, 4),
    },
    "qp8_f32_qb4w_gemm": {
        ("i8mm", "mopa"): ("xnn_qp8_f32_qb4w_gemm_minmax_ukernel_16x4c16s2__neoni8mm_mstep4", 16, 4),
        ("i8mm", "gemv"): ("xnn_qp8_f32_qb4w_gemm_minmax_ukernel_1x4c16s2__aarch64_neondot", 1, 4),
        ("dotprod", "mopa"): ("xnn_qp8_f32_qb4w_gemm_minmax_ukernel_4x4c8s2__aarch64_neondot", 4, 4),
        ("dotprod", "gemv"): ("xnn_qp8_f32_qb4w_gemm_minmax_ukernel_1x4c8s2__aarch64_neondot", 1, 4),
    },
    "qp8_f32_qc4w_gemm": {
        ("i8mm", "mopa"): ("xnn_qp8_f32_qc4w_gemm_minmax_ukernel_8x8c16s2__neoni8mm_mstep2", 8, 8),
        ("i8mm", "gemv"): ("xnn_qp8_f32_qc4w_gemm_minmax_ukernel_1x8c16s2__aarch64_neondot", 1, 8),
        ("dotprod", "mopa"): ("xnn_qp8_f32_qc4w_gemm_minmax_ukernel_16x4c8s2__aarch64_neondot_mstep4", 16, 4),
        ("dotprod", "gemv"): ("xnn_qp8_f32_qc4w_gemm_minmax_ukernel_1x4c8s2__aarch64_neondot", 1, 4),
    },
}


def _has(t: Target, branch: Branch) -> bool:
    return {"sme2": t.sme2, "sme": t.sme, "i8mm": t.i8mm, "dotprod": t.dotprod}[branch]


def kai_branch(config: str, t: Target) -> Branch | None:
    """The branch of KleidiAI config ``config`` that XNNPACK takes on ``t``; None: the config is NULL.

    KleidiAI exists only on arm64 builds with it (``XNNPACK_ENABLE_KLEIDIAI`` is forced OFF
    elsewhere, CMakeLists.txt).
    """
    if t.arch != "arm64" or not t.kleidiai:
        return None
    return next((b for b in BRANCH_ORDER[config] if _has(t, b)), None)


def xnn_ukernel(config: str, branch: Branch, kind: Kind, svl: int, *, igemm: bool = False) -> tuple[str, int, int]:
    """``(XNNPACK ukernel, mr, nr)`` of a KleidiAI config's wrapper: the one tile computation.

    SME tiles scale with the SVL (``vls`` 32-bit lanes, ``vlh`` 16-bit lanes); the names carry the
    tile numbers as XNNPACK spells them at SVL 512 (``..._32x32__neonsme2``). ``igemm``: the
    convolution wrapper (SME configs register only ``igemm[mr - 1]``).
    """
    if branch in ("i8mm", "dotprod"):
        return _XNN_NEON[config][(branch, kind)]
    isa = "neonsme2" if branch == "sme2" else "neonsme"
    vls, vlh = svl // 32, svl // 16
    gemv = kind == "gemv" and not igemm
    if config == "pf16_gemm":
        # Names carry the kernel tile (VLh = 32 at SVL 512); the config nr is max(kernel nr, 16).
        nr = max(vlh, 16)
        if igemm:
            return f"xnn_pf16_f16_igemm_minmax_fp16_ukernel_{vlh}x{vlh}c2__{isa}", vlh, nr
        return f"xnn_pf16_gemm_minmax_ukernel_{1 if gemv else vlh}x{vlh}c2__{isa}", 1 if gemv else vlh, nr
    if config in ("qp8_f32_qc8w_gemm", "qp8_f32_qc4w_gemm"):
        mr, nr = (1 if gemv else vls), 4 * vls
        return f"xnn_{config}_minmax_ukernel_{mr}x{nr}c4__{isa}", mr, nr
    v = 2 * vls
    mr = 1 if gemv else v
    if config == "pf32_gemm":
        stem = "pf32_igemm_minmax" if igemm else "pf32_gemm_minmax"
        return f"xnn_{stem}_ukernel_{mr}x{v}__{isa}", mr, v
    if config == "pqs8_qc8w_gemm":
        stem = "pqs8_qc8w_igemm_minmax_fp32" if igemm else "pqs8_qc8w_gemm_minmax"
        return f"xnn_{stem}_ukernel_{mr}x{v}c4__{isa}", mr, v
    raise ValueError(f"{config} has no SME branch")


@dataclasses.dataclass(frozen=True)
class KaiChoice:
    """What a KleidiAI config runs on a target for M rows."""

    config: str
    branch: Branch
    kind: Kind
    #: The KleidiAI kernel.
    kernel: str
    #: The XNNPACK wrapper ukernel, and its mr / nr.
    xnn_kernel: str
    mr: int
    nr: int
    #: True when M == 1 but the branch registers no 1-row kernel (the MOPA runs with M = 1).
    no_gemv: bool = False


def kai_choice(config: str, t: Target, m: int, *, igemm: bool = False) -> KaiChoice | None:
    """The kernel ``config`` runs on ``t`` for ``m`` rows, or None when XNNPACK's config is NULL.

    M == 1 takes the 1-row kernel (``gemm[0]``) when the branch has one; IGEMM always the full mr.
    """
    branch = kai_branch(config, t)
    if branch is None:
        return None
    table = KAI_KERNELS[config]
    want_gemv = m == 1 and not igemm
    kind: Kind = "gemv" if want_gemv and (branch, "gemv") in table else "mopa"
    svl = target_svl(t, config) if branch in ("sme2", "sme") else 0
    xnn, mr, nr = xnn_ukernel(config, branch, kind, svl, igemm=igemm)
    no_gemv = want_gemv and kind == "mopa"
    return KaiChoice(config, branch, kind, table[(branch, kind)], xnn, mr, nr, no_gemv)


def kai_kernel_names(config: str | None = None) -> list[str]:
    """Every KleidiAI kernel name a config (or any config) can select, sorted."""
    configs = KAI_CONFIGS if config is None else (config,)
    return sorted({name for c in configs for name in KAI_KERNELS[c].values()})


# Note: ``base`` is typed as a callable so that abstract kernel bases are accepted (mypy refuses
# an abstract class where ``type[_K]`` is expected); it is always a class.
KernelBase = Callable[..., _K]


def _checked(cls: object, name: str, base: KernelBase[_K]) -> type[_K]:
    if not (isinstance(cls, type) and isinstance(base, type) and issubclass(cls, base)):
        raise TypeError(f"{name} is not a {getattr(base, '__name__', base)}")
    return cast("type[_K]", cls)


def kernel_class(name: str, base: KernelBase[_K]) -> type[_K]:
    """The registered ukernel class called ``name`` (a ``base`` subclass), from the registry."""
    return _checked(UKERNELS[name], name, base)


_FEATURE = {"sme2": "SME2", "sme": "SME", "i8mm": "I8MM", "dotprod": "DotProd"}


def select_kai_kernel(config: str, t: Target, m: int, base: KernelBase[_K], fallback: str) -> type[_K]:
    """The kernel class a variant's ``select_kernel`` returns; a ValueError naming XNNPACK's
    ``fallback`` config when ``config`` is NULL on ``t``."""
    choice = kai_choice(config, t, m)
    if choice is None:
        names = [_FEATURE[b] for b in BRANCH_ORDER[config] if b != "sme2"]  # SME2 implies SME
        feats = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise ValueError(
            f"target {t.name!r} has no {feats} usable by XNNPACK's init_{config}_config (arm64 + KleidiAI + "
            f"{feats}), so that config is NULL and XNNPACK runs {fallback} there (see kleidiref.dispatch)"
        )
    return kernel_class(choice.kernel, base)


def alias(namespace: Mapping[str, object], config: str, branch: Branch, kind: Kind, base: KernelBase[_K]) -> type[_K]:
    """The class a variant module defines for ``config``'s (branch, kind) kernel, found by the name
    :data:`KAI_KERNELS` gives (for its ``SME2_MOPA``-style aliases, bound while the module loads)."""
    name = KAI_KERNELS[config][(branch, kind)]
    return _checked(namespace[name], name, base)


# ---- generic XNNPACK configs ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GenericConfig:
    """A generic XNNPACK config (ARM64, default uarch): ``{mr: ukernel}`` for GEMM and IGEMM, config mr, nr."""

    nr: int
    mr: int
    gemm: Mapping[int, str]
    igemm: Mapping[int, str] = dataclasses.field(default_factory=dict)


def _pair(pre: str, one: str, big: str, mr: int, nr: int, *, igemm_pre: str | None = None) -> GenericConfig:
    gemm = {1: pre + one, mr: pre + big}
    igemm = {} if igemm_pre is None else {1: igemm_pre + one, mr: igemm_pre + big}
    return GenericConfig(nr=nr, mr=mr, gemm=gemm, igemm=igemm)


_F32 = "xnn_f32_gemm_minmax_ukernel_"
_F32I = "xnn_f32_igemm_minmax_ukernel_"
_GENERIC: Mapping[str, GenericConfig] = {
    "f32_gemm": GenericConfig(
        nr=8,
        mr=7,
        gemm={
            1: _F32 + "1x8__asm_aarch64_neonfma_ld128_2",
            4: _F32 + "4x8__asm_aarch64_neonfma_ld128_2",
            7: _F32 + "7x8__asm_aarch64_neonfma_ld128_2",
        },
    ),
    "f32_gemm@apple": GenericConfig(
        nr=8,
        mr=6,
        gemm={1: _F32 + "1x8__asm_aarch64_neonfma_ld128_acc4", 6: _F32 + "6x8__asm_aarch64_neonfma_ld128"},
    ),
    "f32_igemm": GenericConfig(
        nr=8,
        mr=6,
        gemm={},
        igemm={
            1: _F32I + "1x8__asm_aarch64_neonfma_ld64",
            4: _F32I + "4x8__asm_aarch64_neonfma_ld128",
            6: _F32I + "6x8__asm_aarch64_neonfma_ld128",
        },
    ),
    "f32_igemm@apple": GenericConfig(
        nr=8,
        mr=6,
        gemm={},
        igemm={1: _F32I + "1x8__asm_aarch64_neonfma_ld64", 6: _F32I + "6x8__asm_aarch64_neonfma_ld128"},
    ),
    "f32_gemm_nr2": GenericConfig(
        nr=2,
        mr=4,
        gemm={4: _F32 + "4x2__asm_aarch64_neonfma_ld128"},
        igemm={4: _F32I + "4x2__asm_aarch64_neonfma_cortex_a75_prfm"},
    ),
    "f16_gemm": _pair(
        "xnn_f16_gemm_minmax_ukernel_",
        "1x16__asm_aarch64_neonfp16arith_ld64",
        "6x16__asm_aarch64_neonfp16arith_cortex_a75",
        6,
        16,
        igemm_pre="xnn_f16_igemm_minmax_ukernel_",
    ),
    # init_qu8_gemm_config (ARM64, default uarch): rndnu requantization.
    "qu8_gemm": GenericConfig(
        nr=16,
        mr=4,
        gemm={
            1: "xnn_qu8_gemm_minmax_rndnu_ukernel_1x16__neon_mlal_lane",
            4: "xnn_qu8_gemm_minmax_rndnu_ukernel_4x16__asm_aarch64_neon_mlal_lane_cortex_a75",
        },
        igemm={
            1: "xnn_qu8_igemm_minmax_rndnu_ukernel_1x16__neon_mlal_lane",
            4: "xnn_qu8_igemm_minmax_rndnu_ukernel_4x16__asm_aarch64_neon_mlal_lane_cortex_a75",
        },
    ),
}


def _qd8_qc8w(t: Target) -> GenericConfig:
    """``init_qd8_f32_qc8w_gemm_config``: i8mm -> dotprod -> neon_mlal."""
    g, ig = "xnn_qd8_f32_qc8w_gemm_minmax_ukernel_", "xnn_qd8_f32_qc8w_igemm_minmax_ukernel_"
    if t.i8mm:
        return _pair(g, "1x16c8__neoni8mm", "4x16c8__neoni8mm", 4, 16, igemm_pre=ig)
    if t.dotprod:
        return _pair(g, "1x16c4__neondot", "4x16c4__asm_aarch64_neondot_ld128", 4, 16, igemm_pre=ig)
    return _pair(g, "1x8c2s4__neon_mlal", "2x8c2s4__neon_mlal", 2, 8, igemm_pre=ig)


def _qs8_qc8w(t: Target) -> GenericConfig:
    """``init_qs8_qc8w_gemm_config``: i8mm -> dotprod -> neon_mlal (fp32 requantization)."""
    g, ig = "xnn_qs8_qc8w_gemm_minmax_fp32_ukernel_", "xnn_qs8_qc8w_igemm_minmax_fp32_ukernel_"
    if t.i8mm:
        return _pair(g, "1x16c8__neoni8mm", "4x16c8__neoni8mm", 4, 16, igemm_pre=ig)
    if t.dotprod:
        return _pair(g, "1x16c4__neondot", "4x16c4__asm_aarch64_neondot_ld128", 4, 16, igemm_pre=ig)
    return _pair(g, "1x8c8__asm_aarch64_neon_mlal", "2x8c8__asm_aarch64_neon_mlal", 2, 8, igemm_pre=ig)


def _qd8_qb4w(t: Target) -> GenericConfig:
    """``init_qd8_f32_qb4w_gemm_config``: i8mm -> dotprod -> neon_mlal_lane."""
    g = "xnn_qd8_f32_qb4w_gemm_minmax_ukernel_"
    if t.i8mm:
        return _pair(g, "1x16c8__neoni8mm", "4x16c8__neoni8mm", 4, 16)
    if t.dotprod:
        return _pair(g, "1x16c4__neondot", "4x16c4__neondot", 4, 16)
    return _pair(g, "1x16__neon_mlal_lane", "6x16__neon_mlal_lane", 6, 16)


def _qd8_qc4w(t: Target) -> GenericConfig:
    """``init_qd8_f32_qc4w_gemm_config`` (XNN_ARCH_ARM64): i8mm -> dotprod -> neon_mlal_lane."""
    g = "xnn_qd8_f32_qc4w_gemm_minmax_ukernel_"
    if t.i8mm:
        return _pair(g, "1x16c8__neoni8mm", "4x16c8__neoni8mm", 4, 16)
    if t.dotprod:
        return _pair(g, "1x16c4__neondot", "4x16c4__neondot", 4, 16)
    return _pair(g, "1x16__neon_mlal_lane", "6x16__neon_mlal_lane", 6, 16)


def _qd8_f16(t: Target, w: str) -> GenericConfig:
    """``init_qd8_f16_{qc8w,qc4w,qb4w}_gemm_config`` (ARM64, default uarch, assembly)."""
    g = f"xnn_qd8_f16_{w}_gemm_minmax_ukernel_"
    if t.i8mm:
        return _pair(g, "1x16c8__neoni8mm", "4x16c8__neoni8mm", 4, 16)
    if t.dotprod and (t.fp16_arith or w == "qc4w"):
        big = "4x16c4__asm_aarch64_neondotfp16arith_ld128" if w == "qc8w" else "4x16c4__neondotfp16arith"
        return _pair(g, "1x16c4__neondotfp16arith", big, 4, 16)
    if w == "qc8w":
        return _pair(g, "1x8c2s4__neonfp16arith", "2x8c2s4__neonfp16arith", 2, 8)
    return _pair(g, "1x16__neonfp16arith_mlal_lane", "6x16__neonfp16arith_mlal_lane", 6, 16)


def _qd8_f16_qc8w_igemm(t: Target) -> GenericConfig:
    """``init_qd8_f16_qc8w_igemm_config`` (ARM64 Linux, default uarch, assembly)."""
    g = "xnn_qd8_f16_qc8w_igemm_minmax_ukernel_"
    if t.i8mm:
        return _pair(g, "1x16c8__neoni8mm", "4x16c8__neoni8mm", 4, 16, igemm_pre=g)
    if t.dotprod and t.fp16_arith:
        return _pair(g, "1x16c4__neondotfp16arith", "4x16c4__asm_aarch64_neondotfp16arith_ld128", 4, 16, igemm_pre=g)
    return _pair(g, "1x8c2s4__neonfp16arith", "2x8c2s4__neonfp16arith", 2, 8, igemm_pre=g)


_BY_FEATURES = {
    "qd8_f16_qc8w_igemm": _qd8_f16_qc8w_igemm,
    "qd8_f32_qc8w_gemm": _qd8_qc8w,
    "qs8_qc8w_gemm": _qs8_qc8w,
    "qd8_f32_qb4w_gemm": _qd8_qb4w,
    "qd8_f32_qc4w_gemm": _qd8_qc4w,
}


def generic_config(config: str, t: Target, platform: Platform = "linux") -> GenericConfig | None:
    """The ARM64 ukernel table of a generic config on ``t`` (None: kleidiref has no table for it).

    ``platform='apple'``: iOS/macOS builds select other f32 kernels.
    """
    if config in ("f32_gemm", "f32_igemm") and platform == "apple":
        return _GENERIC[config + "@apple"]
    if config in _GENERIC:
        return _GENERIC[config]
    if config in _BY_FEATURES:
        return _BY_FEATURES[config](t)
    if config.startswith("qd8_f16_"):
        return _qd8_f16(t, config.split("_")[2])
    return None


#: ARM64 dwconv configs (``src/configs/dwconv-config.c``): family -> primary tile -> ukernel.
DWCONV: Mapping[str, Mapping[int, str]] = {
    "f32": {
        3: "xnn_f32_dwconv_minmax_ukernel_3p8c__neonfma",
        4: "xnn_f32_dwconv_minmax_ukernel_4p8c__neonfma",
        9: "xnn_f32_dwconv_minmax_ukernel_9p8c__neonfma",
        25: "xnn_f32_dwconv_minmax_ukernel_25p8c__neonfma_acc2",
    },
    "f16": {
        3: "xnn_f16_dwconv_minmax_ukernel_3p16c__neonfp16arith",
        4: "xnn_f16_dwconv_minmax_ukernel_4p16c__neonfp16arith",
        9: "xnn_f16_dwconv_minmax_ukernel_9p16c__neonfp16arith",
        25: "xnn_f16_dwconv_minmax_ukernel_25p8c__neonfp16arith_acc2",
    },
    "qu8": {  # init_qu8_dwconv_config
        9: "xnn_qu8_dwconv_minmax_rndnu_ukernel_9p16c__neon_mul8",
        25: "xnn_qu8_dwconv_minmax_rndnu_ukernel_25p8c__neon_mul8",
    },
    "qs8": {
        3: "xnn_qs8_qc8w_dwconv_minmax_fp32_ukernel_3p16c__neonv8_mla8_ld128",
        9: "xnn_qs8_qc8w_dwconv_minmax_fp32_ukernel_9p16c__neonv8_mla8_ld64",
        25: "xnn_qs8_qc8w_dwconv_minmax_fp32_ukernel_25p16c__neonv8_mla8_ld64",
    },
}
#: x86-64 dwconv primary tiles (``src/configs/dwconv-config.c``, the AVX512F / FMA3 / AVX2 entries agree on the
#: tiles): family -> tiles. kleidiref does not name the x86 ukernels.
X86_DWCONV_TILES: Mapping[str, tuple[int, ...]] = {
    "f32": (3, 4, 9, 25),
    "f16": (3, 4, 9, 25),
    "qs8": (3, 9, 25),
    "qu8": (9, 25),
}
#: ARM64 vmulcaddc configs (``src/configs/vmulcaddc-config.c``).
VMULCADDC: Mapping[str, str] = {
    "f32": "xnn_f32_vmulcaddc_minmax_ukernel_c4__neonfma_2x",
    "f16": "xnn_f16_vmulcaddc_minmax_ukernel_c8__neonfp16arith_2x",
}

#: Deprecated: the default ``x86_isa`` of an x86_64 :class:`~kleidiref.targets.Target` (AVX2 + FMA3, no AVX-512).
#: Nothing reads it any more: each target carries its own level (``Target.x86_isa``).
X86_ISA: X86Isa = "avx2"

#: XNNPACK's x86 f16_gemm config entries (init_f16_gemm_config, first match wins): ISA level -> entry.
#: Below AVX2 the config is empty and xnn_init_f16_gemm_config returns NULL.
_F16_GEMM_ENTRY: Mapping[str, str] = {"avx512fp16": "avx512fp16", "avx512skx": "avx512skx", "avx2": "avx2"}


def _x86_level(t: Target) -> X86IsaLevel:
    if t.x86_isa is None:
        raise ValueError(f"target {t.name!r} is arm64: it has no x86 ISA level")
    return t.x86_isa


def f32_qcw_choice(cfg: str, m: int, t: Target, platform: Platform) -> tuple[str, str, int, int]:
    """``(fallback kernel=, XNNPACK ukernel, mr, nr)`` of a weight-only f32_qc8w / f32_qc4w FC.

    The one place dispatch and :mod:`kleidiref.ops` pick these kernels
    (:func:`kleidiref.fallbacks.f32_qcw.f32_qcw_ukernel`), so they cannot disagree. On x86-64 the target's
    ``x86_isa`` picks the entry (init_f32_qc{8,4}w_gemm_config has no AVX512-FP16 entry: such a CPU takes
    the AVX512SKX one).
    """
    rows = m if m >= 1 else 2  # M = 0: XNNPACK skips the run; name the config's mr kernel
    if t.arch == "arm64":
        return f32_qcw_ukernel(cfg, rows, apple=platform == "apple")
    level = _x86_level(t)
    isa: X86Isa = "avx512skx" if level == "avx512fp16" else level
    return f32_qcw_ukernel(cfg, rows, x86=isa)


def x86_f16_gemm_entry(isa: X86IsaLevel) -> str | None:
    """The x86 f16_gemm config entry an ``isa`` CPU gets (``avx512fp16`` / ``avx512skx`` / ``avx2``), or None
    below AVX2 (the config is NULL: XNNPACK rewrites fp16 nodes to fp32, cvt_to_fp32.cc)."""
    return _F16_GEMM_ENTRY.get(isa)


def f16_x86_choice(m: int, *, igemm: bool, isa: X86IsaLevel = "avx2") -> tuple[str, str, int, int]:
    """``(fallback kernel=, XNNPACK ukernel, mr, nr)`` of the x86-64 f16_gemm config on an ``isa`` CPU.

    ``m`` = 1 selects the 1-row kernel; any other value the config's mr kernel. Below AVX2 there is no
    f16_gemm config (ValueError).
    """
    entry = x86_f16_gemm_entry(isa)
    if entry is None:
        raise ValueError(
            f"x86 ISA level {isa!r}: XNNPACK's f16_gemm config needs AVX2, AVX512SKX or AVX512-FP16 "
            "(init_f16_gemm_config, src/configs/gemm-config.c), so xnn_init_f16_gemm_config returns NULL"
        )
    rows = m if m >= 1 else 2  # M = 0: the config's mr kernel
    return f16_x86_ukernel(rows, igemm=igemm, avx512fp16=entry == "avx512fp16", avx512skx=entry == "avx512skx")
