"""Quantization schemes as small pure functions, each paired with its dequantization.

Names follow upstream: ``qai8dx`` is KleidiAI's dynamic per-row asymmetric int8 (what
``kai_lhs_quant_pack_qai8dxp_f32`` computes); ``qsi8cx`` per-channel symmetric int8 weights;
``qai8`` static asymmetric int8 activations/outputs and XNNPACK's fp32 requantization scale;
``qd8`` XNNPACK's own dynamic per-row int8 (ties to even, unlike ``qai8dx``), ``qd8_f16`` the same
from fp16 rows; ``qb4`` blockwise signed int4 weights with bf16 block scales (nibble packing and
the upstream creation checks).
Every rounding is named in the docstrings.
"""

from __future__ import annotations

from . import qb4, qd8
from .qai8 import choose_qai8_params, dequantize_qai8, quantize_qai8, quantize_qai8_vcvt, requantization_scale
from .qai8dx import dequantize_qai8dx, qai8dx_params, quantize_qai8dx
from .qb4 import dequantize_qb4, quantize_qb4
from .qd8 import dequantize_qd8, qd8_params, quantize_qd8
from .qd8_f16 import qd8_f16_params, quantize_qd8_f16
from .qsi8cx import dequantize_qsi8cx, qsi8cx_scale, quantize_qsi8cx

__all__ = [
    "choose_qai8_params",
    "dequantize_qai8",
    "dequantize_qai8dx",
    "dequantize_qb4",
    "dequantize_qd8",
    "dequantize_qsi8cx",
    "qai8dx_params",
    "qb4",
    "qd8",
    "qd8_f16_params",
    "qd8_params",
    "qsi8cx_scale",
    "quantize_qai8",
    "quantize_qai8_vcvt",
    "quantize_qai8dx",
    "quantize_qb4",
    "quantize_qd8",
    "quantize_qd8_f16",
    "quantize_qsi8cx",
    "requantization_scale",
]
