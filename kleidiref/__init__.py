"""kleidiref: a bit-exact numpy reference of the KleidiAI SME/SME2 GEMM kernels XNNPACK runs.

* :mod:`kleidiref.variants`: one module per XNNPACK variant (``pf32_gemm``, ``pf16_gemm``,
  ``qp8_f32_qc8w_gemm``, ``pqs8_qc8w_gemm``, ``qp8_f32_qb4w_gemm``, ``qp8_f32_qc4w_gemm``, and ``igemm``
  for Conv2d), with KleidiAI's packers and kernels under their exact names and a friendly ``gemm``;
* :mod:`kleidiref.numerics`: every rounding step, named; :mod:`kleidiref.quant`: the schemes;
* :mod:`kleidiref.targets`: CPUs (features, SVL, flush-to-zero);
* :mod:`kleidiref.dispatch` / :mod:`kleidiref.ops`: what XNNPACK runs for a node, and running it;
* :func:`kleidiref.inspect` (:mod:`kleidiref.inspection`): per node of a real ExecuTorch ``.pte``, what runs;
* :func:`kleidiref.sweep` (module ``kleidiref.sweep``): a program on every (CPU, SVL), per node, resumable;
* :mod:`kleidiref.golden`: reproduce the real kernels' golden vectors;
* :mod:`kleidiref.testing` (and ``kleidiref.testing.strategies``, which needs hypothesis):
  ``assert_matches`` with stage-by-stage diagnosis, error bounds, hypothesis strategies.
"""

from __future__ import annotations

from . import dispatch, golden, numerics, ops, quant, targets
from .dispatch import Decision, NodeRejected, decide
from .inspection import inspect
from .kai import get_ukernel, list_ukernels
from .ops import batch_matrix_multiply, convolution_2d, fully_connected
from .runner import Runner, run
from .sweep import sweep
from .targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, Target, get_target, set_target, svl, target
from .variants import (
    igemm,
    pf16_gemm,
    pf32_gemm,
    pqs8_qc8w_gemm,
    qp8_f32_qb4w_gemm,
    qp8_f32_qc4w_gemm,
    qp8_f32_qc8w_gemm,
)

__all__ = [
    "APPLE_M4",
    "GENERIC_SME1",
    "NEON_ONLY",
    "Decision",
    "NodeRejected",
    "Runner",
    "Target",
    "batch_matrix_multiply",
    "convolution_2d",
    "decide",
    "dispatch",
    "fully_connected",
    "get_target",
    "get_ukernel",
    "golden",
    "igemm",
    "inspect",
    "list_ukernels",
    "numerics",
    "ops",
    "pf16_gemm",
    "pf32_gemm",
    "pqs8_qc8w_gemm",
    "qp8_f32_qb4w_gemm",
    "qp8_f32_qc4w_gemm",
    "qp8_f32_qc8w_gemm",
    "quant",
    "run",
    "set_target",
    "svl",
    "sweep",
    "target",
    "targets",
]

__version__ = "0.1.0"
