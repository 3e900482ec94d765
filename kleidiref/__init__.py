"""kleidiref: a bit-exact numpy reference of the KleidiAI SME/SME2 GEMM kernels XNNPACK runs.

Variants (one module each under :mod:`kleidiref.variants`) expose KleidiAI's packers and
kernels under their exact names plus a friendly ``gemm``; :mod:`kleidiref.numerics` names every
rounding step; :mod:`kleidiref.targets` describes CPUs (features and SVL);
:mod:`kleidiref.golden` reproduces the golden vectors of the real kernels.
"""

from __future__ import annotations

from . import numerics, targets
from .kernel import get_ukernel, list_ukernels
from .targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, Target, get_target, set_target, svl, target
from .variants import pf16_gemm, pf32_gemm

__all__ = [
    "APPLE_M4",
    "GENERIC_SME1",
    "NEON_ONLY",
    "Target",
    "get_target",
    "get_ukernel",
    "list_ukernels",
    "numerics",
    "pf16_gemm",
    "pf32_gemm",
    "set_target",
    "svl",
    "target",
    "targets",
]

__version__ = "0.1.0"
