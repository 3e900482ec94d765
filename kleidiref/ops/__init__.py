"""Run an XNNPACK node as XNNPACK would on a target: dispatch, then the chosen kernel's numerics.

``fully_connected``, ``convolution_2d``, ``deconvolution_2d`` and ``batch_matrix_multiply`` take numpy arrays plus
quantization parameters and a :class:`~kleidiref.targets.Target`, call :func:`kleidiref.dispatch.decide`
and compute the output with the adapter :data:`kleidiref.ops.registry.RUNNERS` registers for the
decision's (microkernel, config):

* the KleidiAI variant modules (:mod:`kleidiref.variants`) for the KleidiAI configs
  (``pf32_gemm``, ``pf16_gemm``, ``pqs8_qc8w_gemm``, ``qp8_f32_qc8w_gemm``, ``qp8_f32_qb4w_gemm``,
  and ``qp8_f32_qc4w_gemm``), running exactly the kernel the decision names;
* the generic kernels of :mod:`kleidiref.fallbacks` otherwise: XNNPACK's ARM64 kernels, the
  weight-only ``f32_qc8w`` / ``f32_qc4w`` kernels (ARM64 and x86-64) and, on an x86_64 target, the
  kernels of the f16 config's entry for the target's ``x86_isa`` (AVX512-FP16, AVX512SKX or AVX2). Below AVX2
  only the weight-only kernels (and at FMA3 the f32 ones) are emulated; the rest is refused.

Each op has a prepared form (``prepare_fully_connected``, ``prepare_convolution_2d``,
``prepare_batch_matrix_multiply``): the decision taken and the weights packed once for one input
shape and dtype, a :class:`PreparedOp` called on each activation, as XNNPACK creates an operator
once and runs it many times; the one-shot ops are prepare-then-call.

The result is an :class:`OpResult` (``output``, ``decision``, ``emulation``) that also unpacks as
``out, decision = fully_connected(...)``.

Datatypes are inferred from the arrays: float32 -> ``fp32``, float16 -> ``fp16``, ml_dtypes
bfloat16 -> ``bf16``; int8 activations with ``input_quant`` -> ``qint8``; ``dynamic=True`` makes a
float input ``qdint8`` (dynamically quantized, as ExecuTorch's dynamic recipes serialize it);
int8 filters are ``qcint8`` with a per-channel scale array, ``qint8`` with a scalar scale,
``qbint4`` (signed codes in [-8, 7]) when ``filter_quant.block_size`` is set, and ``qcint4``
(signed codes in [-8, 7], per-channel scales) with ``filter_quant.bits == 4``.

Every float path honours ``target.flush_to_zero`` (FPCR.FZ/FZ16, on by default as XNNPACK's
threadpool sets it).

Modules: :mod:`~kleidiref.ops.api` (the ops), :mod:`~kleidiref.ops.operands` (datatypes,
quantization parameters, float conversions), :mod:`~kleidiref.ops.registry` (which adapter runs),
:mod:`~kleidiref.ops.gemm_runners` and :mod:`~kleidiref.ops.conv_runners` (the adapters).
"""

from __future__ import annotations

from .api import (
    OpResult,
    PreparedOp,
    batch_matrix_multiply,
    convolution_2d,
    deconvolution_2d,
    fully_connected,
    prepare_batch_matrix_multiply,
    prepare_convolution_2d,
    prepare_deconvolution_2d,
    prepare_fully_connected,
)
from .operands import QuantParams

__all__ = [
    "OpResult",
    "PreparedOp",
    "QuantParams",
    "batch_matrix_multiply",
    "convolution_2d",
    "deconvolution_2d",
    "fully_connected",
    "prepare_batch_matrix_multiply",
    "prepare_convolution_2d",
    "prepare_deconvolution_2d",
    "prepare_fully_connected",
]
