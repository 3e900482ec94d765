"""Which emulation runs for a decision: (microkernel, XNNPACK config) -> adapter, in one table.

:data:`RUNNERS` is the single home of that fact; :data:`PREPARERS` adds, for the configs whose weights XNNPACK
packs at operator creation (the KleidiAI RHS packers), the adapter split in two: pack the weights once
(:func:`prepare`), then run on each activation. :func:`run` is ``prepare(c)(c)``: one code path. The keys are
the decision's ``microkernel`` and ``config`` (XNNPACK's ``xnn_init_*_config`` names as
:mod:`kleidiref.dispatch` spells them), never its ``variant``. Adapters are registered here explicitly, one
line each; a decision whose key is missing raises ``NotImplementedError`` naming the config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..dispatch import Decision
from . import conv_runners as C
from . import deconv_runners as D
from . import gemm_runners as G
from .gemm_runners import Result
from .operands import Call

__all__ = [
    "DECONV_RUNNERS",
    "PREPARERS",
    "RUNNERS",
    "Prepared",
    "Preparer",
    "Runner",
    "prepare",
    "run",
    "run_deconvolution",
]

#: An adapter: one kernel call in, ``(output, OpResult.emulation)`` out.
Runner = Callable[[Call], Result]
#: A prepared adapter: weights packed once, called with each call (its ``x``; its weights are not read again).
Prepared = G.Prepared
#: A preparer: a call's static operands (decision, target, weights, bias, quantization, clamp; ``x`` is a
#: zero-row placeholder of the activation's dtype, never read) in, the prepared adapter out.
Preparer = Callable[[Call], Prepared]

RUNNERS: Mapping[tuple[str, str], Runner] = {
    # GEMM (fully connected, a 1x1 convolution rewritten to FC, each BMM batch).
    # KleidiAI: the variants (kleidiref.variants.<config>).
    ("gemm", "pf32_gemm"): G.run_pf32,
    ("gemm", "pf16_gemm"): G.run_pf16,
    ("gemm", "pqs8_qc8w_gemm"): G.run_pqs8_qc8w,
    ("gemm", "qp8_f32_qc8w_gemm"): G.run_qp8_f32_qc8w,
    ("gemm", "qp8_f32_qb4w_gemm"): G.run_qp8_f32_qb4w,
    ("gemm", "qp8_f32_qc4w_gemm"): G.run_qp8_f32_qc4w,
    # Generic XNNPACK kernels (kleidiref.fallbacks).
    ("gemm", "f32_gemm"): G.run_f32_gemm,
    ("gemm", "f32_gemm_nr2"): G.run_f32_gemm_nr2,
    ("gemm", "f16_gemm"): G.run_f16_gemm,
    ("gemm", "f32_qc8w_gemm"): G.run_f32_qc8w,
    ("gemm", "f32_qc4w_gemm"): G.run_f32_qc4w,
    ("gemm", "qd8_f32_qc8w_gemm"): G.run_qd8_f32_qc8w,
    ("gemm", "qd8_f32_qc4w_gemm"): G.run_qd8_f32_qc4w,
    ("gemm", "qd8_f32_qb4w_gemm"): G.run_qd8_f32_qb4w,
    ("gemm", "qd8_f16_qc8w_gemm"): G.run_qd8_f16_qc8w,
    ("gemm", "qd8_f16_qc4w_gemm"): G.run_qd8_f16_qc4w,
    ("gemm", "qd8_f16_qb4w_gemm"): G.run_qd8_f16_qb4w,
    ("gemm", "qs8_qc8w_gemm"): G.run_qs8_qc8w,
    ("gemm", "qu8_gemm"): G.run_qu8,
    # IGEMM (convolutions). KleidiAI (kleidiref.variants.igemm) for the packed configs.
    ("igemm", "pf32_gemm"): C.run_kai_igemm_pf32,
    ("igemm", "pf16_gemm"): C.run_kai_igemm_pf16,
    ("igemm", "pqs8_qc8w_gemm"): C.run_kai_igemm_pqs8,
    ("igemm", "f32_igemm"): C.run_f32_igemm,
    ("igemm", "f32_gemm_nr2"): C.run_f32_igemm,
    ("igemm", "f16_gemm"): C.run_f16_igemm,
    ("igemm", "qd8_f32_qc8w_gemm"): C.run_qd8_f32_qc8w_igemm,
    ("igemm", "qd8_f16_qc8w_igemm"): C.run_qd8_f16_qc8w_igemm,
    ("igemm", "qs8_qc8w_gemm"): C.run_qs8_qc8w_igemm,
    ("igemm", "qu8_gemm"): C.run_qu8_conv,
    # Depthwise.
    ("dwconv", "f32_dwconv"): C.run_dwconv_f32,
    ("dwconv", "f16_dwconv"): C.run_dwconv_f16,
    ("dwconv", "qs8_qc8w_dwconv"): C.run_dwconv_qs8,
    ("dwconv", "qu8_dwconv"): C.run_qu8_conv,
    # Note: no vmulcaddc entry: no convolution selects it at the pin (kleidiref.fallbacks.vmulcaddc says why).
}

#: Deconvolution (``deconvolution_2d``): (microkernel, config) -> adapter. Each splits the node into the
#: convolutions its subkernels (``subconv2d``) or its deconvolution indirection (``igemm``) amount to and
#: runs them through the IGEMM adapter of the config (kleidiref.ops.deconv_runners).
DECONV_RUNNERS: Mapping[tuple[str, str], Runner] = {
    ("subconv2d", "f32_igemm"): D.run_deconv_f32,
    ("igemm", "f32_igemm"): D.run_deconv_f32,
    ("subconv2d", "f32_gemm_nr2"): D.run_deconv_f32,
    ("igemm", "f32_gemm_nr2"): D.run_deconv_f32,
    ("subconv2d", "f16_gemm"): D.run_deconv_f16,
    ("igemm", "f16_gemm"): D.run_deconv_f16,
    ("subconv2d", "qd8_f32_qc8w_gemm"): D.run_deconv_qd8_f32_qc8w,
    ("igemm", "qd8_f32_qc8w_gemm"): D.run_deconv_qd8_f32_qc8w,
    ("subconv2d", "qs8_qc8w_gemm"): D.run_deconv_qs8_qc8w,
    ("igemm", "qs8_qc8w_gemm"): D.run_deconv_qs8_qc8w,
    ("subconv2d", "qu8_gemm"): D.run_deconv_qu8,
    ("igemm", "qu8_gemm"): D.run_deconv_qu8,
    # KleidiAI: XNN_FLAG_INLINE_LHS_PACKING keeps pqs8 off subconv2d; the imatmul kernel over all taps.
    ("igemm", "pqs8_qc8w_gemm"): D.run_deconv_pqs8,
}


#: The configs whose weights are packed once by a preparer (KleidiAI's RHS packers, as XNNPACK packs them
#: at operator creation; the generic qd8_f32_qb4w, whose int4 decoding is costly). The other adapters have
#: nothing costly to pack ahead: prepared, they are themselves (the decision is still taken once, by the op
#: that prepares them).
PREPARERS: Mapping[tuple[str, str], Preparer] = {
    ("gemm", "pf32_gemm"): G.prepare_pf32,
    ("gemm", "pf16_gemm"): G.prepare_pf16,
    ("gemm", "pqs8_qc8w_gemm"): G.prepare_pqs8_qc8w,
    ("gemm", "qp8_f32_qc8w_gemm"): G.prepare_qp8_f32_qc8w,
    ("gemm", "qp8_f32_qb4w_gemm"): G.prepare_qp8_f32_qb4w,
    ("gemm", "qd8_f32_qb4w_gemm"): G.prepare_qd8_f32_qb4w,  # generic: weights decoded once
    ("igemm", "pf32_gemm"): C.prepare_kai_igemm_pf32,
    ("igemm", "pf16_gemm"): C.prepare_kai_igemm_pf16,
    ("igemm", "pqs8_qc8w_gemm"): C.prepare_kai_igemm_pqs8,
}


def prepare(c: Call) -> Prepared:
    """The adapter for the call's decision with its weights packed once; NotImplementedError if there is none."""
    d: Decision = c.decision
    if (refused := G.x86_level_unmodelled(d, c.target)) is not None:
        raise refused
    key = (d.microkernel, d.config)
    preparer = PREPARERS.get(key)
    if preparer is not None:
        return preparer(c)
    runner = RUNNERS.get(key)
    if runner is None:
        raise G.not_emulated(d, f"no emulated {d.microkernel} kernel for this config")
    return runner


def run(c: Call) -> Result:
    """Run the adapter registered for the call's decision (prepared, then called once)."""
    return prepare(c)(c)


def run_deconvolution(c: Call) -> Result:
    """Run the deconvolution adapter registered for the call's decision; NotImplementedError if there is none."""
    d: Decision = c.decision
    if (refused := G.x86_level_unmodelled(d, c.target)) is not None:
        raise refused
    runner = DECONV_RUNNERS.get((d.microkernel, d.config))
    if runner is None:
        raise G.not_emulated(d, f"no emulated deconvolution ({d.microkernel}) for this config")
    return runner(c)
