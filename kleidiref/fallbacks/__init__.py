"""Generic XNNPACK kernels (the non-KleidiAI paths), one kernel family per module.

Each function names its accumulation order and roundings (docs/kernels.md §8); :data:`FALLBACKS`
maps the XNNPACK config (or micro-kernel family) stem the dispatcher reports to the function.

=====================  =====================================================================
config / family        function
=====================  =====================================================================
``f32_gemm``           :func:`f32_gemm` (``kernel='ld128' | 'acc4' | 'nr2'``)
``f32_igemm``          :func:`f32_igemm` (``kernel='ld128' | 'acc2'``)
``f16_gemm``           :func:`f16_gemm` / :func:`f16_igemm` (``kernel='1x16' | '6x16'``)
``f16_gemm`` (x86-64)  :func:`f16_x86_gemm` / :func:`f16_x86_igemm` (``kernel='avx2' | …``, key ``f16_gemm@x86_64``)
``f32_qc8w_gemm``      :func:`f32_qc8w_gemm` (weight-only int8; ``kernel='ld128' | 'acc4' | 'x86_*'``)
``f32_qc4w_gemm``      :func:`f32_qc4w_gemm` (weight-only int4; ``kernel='lane_ld128' | 'x86_*'``)
``qd8_f32_qc8w_gemm``  :func:`qd8_f32_qc8w_gemm` / :func:`qd8_f32_qc8w_igemm`
``qs8_qc8w_gemm``      :func:`qs8_qc8w_gemm` / :func:`qs8_qc8w_igemm` (fp32 requantization)
``qd8_f32_qb4w_gemm``  :func:`qd8_f32_qb4w_gemm`
``qd8_f32_qc4w_gemm``  :func:`qd8_f32_qc4w_gemm`
``qd8_f16_*_gemm``     :func:`qd8_f16_qc8w_gemm` / :func:`qd8_f16_qc4w_gemm` / :func:`qd8_f16_qb4w_gemm`
``qd8_f16_qc8w_igemm``  :func:`qd8_f16_qc8w_igemm` (fp16-output dynamically quantized convolution)
``qu8_gemm``           :func:`qu8_gemm` / :func:`qu8_igemm` (rndnu requantization; also ``qu8_dwconv``)
``*_dwconv``           :func:`dwconv` (f32/f16), :func:`dwconv_qs8`
``*_vmulcaddc``        :func:`vmulcaddc`
=====================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .dwconv import dwconv, dwconv_qs8, dwconv_tile
from .f16_gemm import f16_gemm, f16_igemm
from .f16_x86 import F16_X86_KERNELS, f16_x86_gemm, f16_x86_igemm, f16_x86_ukernel
from .f32_gemm import f32_gemm
from .f32_igemm import f32_igemm
from .f32_qcw import F32_QC4W_KERNELS, F32_QC8W_KERNELS, f32_qc4w_gemm, f32_qc8w_gemm, f32_qcw_ukernel, qc4w_unpack
from .qd8_f16 import qd8_f16_qb4w_gemm, qd8_f16_qc4w_gemm, qd8_f16_qc8w_gemm, qd8_f16_qc8w_igemm
from .qd8_f32_qb4w import (
    Qb4wWeights,
    prepare_qd8_f32_qb4w_weights,
    qb4w_ksum,
    qd8_f32_qb4w_gemm,
    qd8_f32_qb4w_gemm_prepared,
)
from .qd8_f32_qc4w import qd8_f32_qc4w_gemm
from .qd8_f32_qc8w import qd8_f32_qc8w_gemm, qd8_f32_qc8w_igemm
from .qs8_qc8w import qs8_qc8w_gemm, qs8_qc8w_igemm, qs8_requantization_scale, qs8_requantize_fp32
from .qu8 import qu8_gemm, qu8_igemm, qu8_requantization_scale, qu8_requantize_rndnu
from .vmulcaddc import vmulcaddc

__all__ = [
    "F16_X86_KERNELS",
    "F32_QC4W_KERNELS",
    "F32_QC8W_KERNELS",
    "FALLBACKS",
    "Qb4wWeights",
    "dwconv",
    "dwconv_qs8",
    "dwconv_tile",
    "f16_gemm",
    "f16_igemm",
    "f16_x86_gemm",
    "f16_x86_igemm",
    "f16_x86_ukernel",
    "f32_gemm",
    "f32_igemm",
    "f32_qc4w_gemm",
    "f32_qc8w_gemm",
    "f32_qcw_ukernel",
    "prepare_qd8_f32_qb4w_weights",
    "qb4w_ksum",
    "qc4w_unpack",
    "qd8_f16_qb4w_gemm",
    "qd8_f16_qc4w_gemm",
    "qd8_f16_qc8w_gemm",
    "qd8_f16_qc8w_igemm",
    "qd8_f32_qb4w_gemm",
    "qd8_f32_qb4w_gemm_prepared",
    "qd8_f32_qc4w_gemm",
    "qd8_f32_qc8w_gemm",
    "qd8_f32_qc8w_igemm",
    "qs8_qc8w_gemm",
    "qs8_qc8w_igemm",
    "qs8_requantization_scale",
    "qs8_requantize_fp32",
    "qu8_gemm",
    "qu8_igemm",
    "qu8_requantization_scale",
    "qu8_requantize_rndnu",
    "vmulcaddc",
]

#: (config or family stem, micro-kernel type) -> emulated generic kernel.
FALLBACKS: dict[tuple[str, str], Callable[..., Any]] = {
    ("f32_gemm", "gemm"): f32_gemm,
    ("f32_gemm_nr2", "gemm"): f32_gemm,
    ("f32_igemm", "igemm"): f32_igemm,
    ("f32_gemm_nr2", "igemm"): f32_igemm,
    ("f16_gemm", "gemm"): f16_gemm,
    ("f16_gemm", "igemm"): f16_igemm,
    ("f16_gemm@x86_64", "gemm"): f16_x86_gemm,
    ("f16_gemm@x86_64", "igemm"): f16_x86_igemm,
    ("f32_qc8w_gemm", "gemm"): f32_qc8w_gemm,
    ("f32_qc4w_gemm", "gemm"): f32_qc4w_gemm,
    ("qd8_f32_qc8w_gemm", "gemm"): qd8_f32_qc8w_gemm,
    ("qd8_f32_qc8w_gemm", "igemm"): qd8_f32_qc8w_igemm,
    ("qs8_qc8w_gemm", "gemm"): qs8_qc8w_gemm,
    ("qs8_qc8w_gemm", "igemm"): qs8_qc8w_igemm,
    ("qd8_f32_qb4w_gemm", "gemm"): qd8_f32_qb4w_gemm,
    ("qd8_f32_qc4w_gemm", "gemm"): qd8_f32_qc4w_gemm,
    ("qd8_f16_qc8w_gemm", "gemm"): qd8_f16_qc8w_gemm,
    ("qd8_f16_qc8w_igemm", "igemm"): qd8_f16_qc8w_igemm,
    ("qd8_f16_qc4w_gemm", "gemm"): qd8_f16_qc4w_gemm,
    ("qd8_f16_qb4w_gemm", "gemm"): qd8_f16_qb4w_gemm,
    ("qu8_gemm", "gemm"): qu8_gemm,
    ("qu8_gemm", "igemm"): qu8_igemm,
    ("qu8_dwconv", "dwconv"): qu8_igemm,
    ("f32_dwconv", "dwconv"): dwconv,
    ("f16_dwconv", "dwconv"): dwconv,
    ("qs8_qc8w_dwconv", "dwconv"): dwconv_qs8,
    ("f32_vmulcaddc", "vmulcaddc"): vmulcaddc,
    ("f16_vmulcaddc", "vmulcaddc"): vmulcaddc,
}
