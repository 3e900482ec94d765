"""What a decision needs beyond :class:`~kleidiref.targets.Target`: x86-64 ISA levels and configs XNNPACK never enables.

- :func:`prefers_qdu8` mirrors ``convert_gemm_to_qduint8`` (XNNPACK ``src/subgraph.c``): on x86-64 a dynamically
  quantized GEMM-like node reads **unsigned** qduint8 activations (operator names ``QDU8``) when the qdu8 config
  exists and its ``arch`` outranks the qd8 config's. Which configs exist depends on more x86 ISA flags than
  the :class:`Target`'s ``x86_isa`` level, so an x86 CPU is described here by XNNPACK's arch flags
  (``enum xnn_arch_flags``, ``src/xnnpack/hardware-config.h``); :func:`x86_isa_of` derives its level.
- :func:`unsupported_config` names decisions whose config XNNPACK never enables (creation fails with
  ``xnn_status_unsupported_hardware``).

Config ``arch`` values: ``src/configs/gemm-config.c`` at XNNPACK ``92a7ad501b`` (ExecuTorch's pin).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..targets import X86IsaLevel
from .decision import Decision

__all__ = [
    "X86_ARCH_BITS",
    "X86_CPUS",
    "X86_LEVEL_FLAGS",
    "config_arch",
    "prefers_qdu8",
    "qdu8_operator",
    "unsupported_config",
    "x86_isa_of",
    "x86_level_flags",
]

#: ``enum xnn_arch_flags`` x86 bits (src/xnnpack/hardware-config.h); configs compare them as integers.
X86_ARCH_BITS: Mapping[str, int] = {
    name: 1 << i
    for i, name in enumerate(
        (
            "sse",
            "sse2",
            "ssse3",
            "sse4_1",
            "avx",
            "f16c",
            "fma3",
            "avx2",
            "avx256skx",
            "avx512f",
            "avx512skx",
            "avx512vbmi",
            "avx512fp16",
            "avx512bf16",
            "avxvnni",
            "avxvnniint8",
            "avx256vnni",
            "avx256vnnigfni",
            "avx512vnni",
            "avx512vnnigfni",
            "avx512amx",
        )
    )
}

_AVX2 = frozenset({"sse", "sse2", "ssse3", "sse4_1", "avx", "f16c", "fma3", "avx2"})
_SKX = frozenset({"avx256skx", "avx512f", "avx512skx"})
#: The named x86-64 CPUs: XNNPACK arch flags (src/configs/hardware-config.c sets avx256skx / avx256vnni from
#: the AVX-512 VL features, the *gfni flags from VNNI + GFNI).
X86_CPUS: Mapping[str, frozenset[str]] = {
    "x86-avx2": _AVX2,
    "x86-avx512-vnni": _AVX2 | _SKX | {"avx256vnni", "avx512vnni"},
    # A Sapphire Rapids Xeon (the machine of tests/fixtures/pte/graph, etdump, dwconv_x86) as ExecuTorch 1.5.1's
    # pip XNNPACK sees it. Note: no avx512amx although the CPU has AMX-INT8: XNNPACK's CMakeLists.txt turns
    # XNNPACK_ENABLE_AVX512AMX OFF under GCC, and the wheel is built with GCC 13.3.1 (the .comment of
    # libexecutorch_backend_xnnpack.so), so XNN_ENABLE_AVX512AMX = 0 and hardware-config.c never sets the flag
    # (with it, the arch_prctl ARCH_REQ_XCOMP_PERM XTILEDATA request must succeed too). Observed: QDU8 operators,
    # which AMX's qd8_f32_qc8w entry would outrank. No avxvnniint8 (the CPU lacks it; GCC < 17 disables it too).
    "x86-avx512-fp16": _AVX2
    | _SKX
    | {"avx512vbmi", "avx512vnni", "avx512vnnigfni", "avx512fp16", "avx512bf16", "avxvnni"}
    | {"avx256vnni", "avx256vnnigfni"},
}

#: Per x86 ISA level, the flags it takes (best first: the first level whose flag a CPU has is its level).
X86_LEVEL_FLAGS: Mapping[X86IsaLevel, str] = {
    "avx512fp16": "avx512fp16",
    "avx512skx": "avx512skx",
    "avx2": "avx2",
    "fma3": "fma3",
    "avx": "avx",
    "sse41": "sse4_1",
}


def x86_isa_of(flags: frozenset[str]) -> X86IsaLevel:
    """The :class:`~kleidiref.targets.Target` ``x86_isa`` of an x86 CPU with XNNPACK arch ``flags``.

    The first level whose flag the CPU has (the levels are one ladder: every AVX512-FP16 CPU has AVX512SKX,
    every AVX2 one FMA3). A CPU without SSE4.1 is refused: XNNPACK's SSE2-only entries are not modelled.
    """
    for level, flag in X86_LEVEL_FLAGS.items():
        if flag in flags:
            return level
    raise ValueError(
        f"x86 arch flags {sorted(flags)} reach no x86 ISA level kleidiref models (SSE4.1 at least: "
        "sse4_1 in XNNPACK's enum xnn_arch_flags)"
    )


_LEVEL_BASE: Mapping[X86IsaLevel, frozenset[str]] = {
    "avx512fp16": X86_CPUS["x86-avx512-vnni"] | {"avx512fp16"},
    "avx512skx": _AVX2 | _SKX,
    "avx2": _AVX2,
    "fma3": _AVX2 - {"avx2"},
    "avx": _AVX2 - {"avx2", "fma3"},
    "sse41": frozenset({"sse", "sse2", "ssse3", "sse4_1"}),
}


def x86_level_flags(level: X86IsaLevel) -> frozenset[str]:
    """The XNNPACK arch flags assumed for a CPU described by its ``x86_isa`` level alone (a CPU file without
    ``x86_flags``): the plainest CPU of that level (AVX512-FP16: the ``x86-avx512-vnni`` flags plus avx512fp16)."""
    return _LEVEL_BASE[level]


#: Per config, its x86 entries in the order gemm-config.c tries them (the first the CPU has is its ``arch``).
_CONFIG_ARCH: Mapping[str, tuple[str, ...]] = {
    "qd8_f32_qc8w": ("avx512amx", "avx512skx", "avx256skx", "avx2", "sse4_1", "sse2"),
    "qdu8_f32_qc8w": ("avx512vnni", "avxvnni"),
    "qdu8_f32_qc8w_igemm": ("avx512vnni", "avxvnni"),
    "qd8_f32_qc4w": ("avx512amx", "sse2"),
    "qdu8_f32_qc4w": ("avx512vnnigfni", "avx512vnni", "avxvnni", "avx512skx", "avx256skx", "avx2", "ssse3"),
    "qd8_f32_qb4w": ("avx2", "avx", "sse4_1"),
    "qdu8_f32_qb4w": ("avx512vnnigfni", "avx512vnni"),
    "qd8_f16_qc8w": ("avx256skx", "avx2"),
    "qdu8_f16_qc8w": ("avx256vnni", "avxvnni"),
    "qd8_f16_qc8w_igemm": ("avx256skx", "avx2"),
    "qd8_f16_qc4w": (),  # init_qd8_f16_qc4w_gemm_config sets no x86 arch: the config is NULL
    "qdu8_f16_qc4w": ("avx256vnni", "avxvnni", "avx256skx", "avx2"),
}

_GEMM_NODES = ("fully_connected", "batch_matrix_multiply")


def config_arch(config: str, flags: frozenset[str]) -> int:
    """The config's ``arch`` on an x86 CPU with ``flags`` (0: the config is NULL there)."""
    for name in _CONFIG_ARCH.get(config, ()):
        if name in flags:
            return X86_ARCH_BITS[name]
    return 0


def _candidates(src: str, op: str, weights: str) -> tuple[str, str] | None:
    """(qd8 config, qdu8 config) ``convert_gemm_to_qduint8`` compares, or None."""
    gemm = op in _GEMM_NODES
    if src == "fp32":
        if weights == "qcint8":
            return "qd8_f32_qc8w", "qdu8_f32_qc8w" if gemm else "qdu8_f32_qc8w_igemm"
        by_w = {"qcint4": "qc4w", "qbint4": "qb4w"}.get(weights)
        return None if by_w is None else (f"qd8_f32_{by_w}", f"qdu8_f32_{by_w}")
    if src == "fp16" and weights == "qcint8":
        # Note: for convolutions upstream compares the qd8_f16_qc8w IGEMM config with the qdu8_f16_qc8w GEMM one.
        return ("qd8_f16_qc8w" if gemm else "qd8_f16_qc8w_igemm"), "qdu8_f16_qc8w"
    if src == "fp16" and weights == "qcint4":
        return "qd8_f16_qc4w", "qdu8_f16_qc4w"
    return None


def prefers_qdu8(src: str | None, op: str, weights: str, flags: frozenset[str]) -> tuple[bool, str]:
    """``convert_gemm_to_qduint8``: does the qdint8 input (quantized from ``src``) become qduint8, and why.

    ``src`` is the datatype the producing Convert reads; ``op`` the consumer's node kind; ``weights`` its
    filter datatype; ``flags`` the x86 CPU's XNNPACK arch flags.
    """
    pair = None if src is None else _candidates(src, op, weights)
    if pair is None:
        return False, f"convert_gemm_to_qduint8 (src/subgraph.c): no qdu8 config for {src} -> qdint8 x {weights}: qd8"
    qd8, qdu8 = pair
    a, b = config_arch(qd8, flags), config_arch(qdu8, flags)
    if b and (a == 0 or b > a):
        return True, (
            f"convert_gemm_to_qduint8 (src/subgraph.c): the {qdu8} config (arch bit {b.bit_length() - 1}) outranks "
            f"{qd8} ({'NULL' if a == 0 else f'arch bit {a.bit_length() - 1}'}): unsigned qduint8 activations "
            "(zero point + 128), operator QDU8"
        )
    why = "is NULL on this CPU" if b == 0 else "does not outrank it"
    return False, f"convert_gemm_to_qduint8 (src/subgraph.c): {qdu8} {why} ({qd8} kept): qd8"


def qdu8_operator(d: Decision) -> str:
    """The operator name of ``d`` once its qdint8 input is qduint8.

    An fp16-output convolution keeps its ``QD8, F16, QC8W`` name (XNNPACK has no qdu8_f16 convolution
    operator; observed in ETDump on x86-64 while the Convert before it reads ``F16, QDU8``).
    """
    if d.op == "convolution_2d" and ", F16," in d.operator:
        return d.operator
    return d.operator.replace("(NC, QD8,", "(NC, QDU8,").replace("(NHWC, QD8,", "(NHWC, QDU8,")


def unsupported_config(d: Decision, arm64: bool) -> str | None:
    """Why creating the operator of ``d`` fails with ``xnn_status_unsupported_hardware``, or None."""
    if d.config == "qd8_f16_qb4w_gemm":
        return (
            "xnn_status_unsupported_hardware: init_qd8_f16_qb4w_gemm_config (src/configs/gemm-config.c) fills "
            "ukernels but never sets the config's arch, so xnn_init_qd8_f16_qb4w_gemm_config returns NULL on every "
            "CPU and xnn_create_fully_connected_nc_qd8_f16_qb4w fails. The fp16 node reaches it only when "
            "cvt_to_fp32.cc keeps it fp16: an FC with XNN_FLAG_INLINE_LHS_PACKING (every qdint8 FC) stays fp16 "
            "when the pf16 config is valid (SME/SME2), else it is rewritten to fp32 (qd8_f32_qb4w) and runs"
            + ("" if arm64 else " (x86-64: the f32 rewrite applies)")
        )
    return None
