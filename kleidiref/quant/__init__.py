"""Quantization schemes as small pure functions, each paired with its dequantization.

Names follow upstream: ``qai8dx`` is KleidiAI's dynamic per-row asymmetric int8 (what
``kai_lhs_quant_pack_qai8dxp_f32`` computes). Every rounding is named in the docstrings.
"""

from __future__ import annotations

from .qai8dx import dequantize_qai8dx, qai8dx_params, quantize_qai8dx

__all__ = ["dequantize_qai8dx", "qai8dx_params", "quantize_qai8dx"]
