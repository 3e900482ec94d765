"""The answer of :func:`kleidiref.dispatch.decide`: :class:`Decision`, or :class:`NodeRejected`.

Also :class:`CaseError` (a malformed CASE) and the variant vocabulary :data:`VARIANT_NAMES`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from ..configs import Platform

__all__ = [
    "MICROKERNEL_NAMES",
    "VARIANT_NAMES",
    "CaseError",
    "Decision",
    "Microkernel",
    "NodeRejected",
    "no_variant",
]

#: The KleidiAI-backed variants (``Decision.variant``), named by their ``kleidiref.variants`` module.
VARIANT_NAMES: tuple[str, ...] = (
    "pf32_gemm",
    "pf16_gemm",
    "pqs8_qc8w_gemm",
    "qp8_f32_qc8w_gemm",
    "qp8_f32_qb4w_gemm",
    "qp8_f32_qc4w_gemm",
)
Microkernel = Literal["gemm", "igemm", "dwconv", "vmulcaddc", "subconv2d"]

#: How XNNPACK's profiling API (and so ETDump) spells each micro-kernel type after the operator name
#: (src/xnnpack/microkernel-type-defs.inc).
MICROKERNEL_NAMES: dict[str, str] = {
    "gemm": "GEMM",
    "igemm": "IGEMM",
    "dwconv": "DWConv",
    "vmulcaddc": "VMulCAddC",
    "subconv2d": "Subconv2D",
}


class CaseError(ValueError):
    """A CASE (node description or target) that is malformed: not an XNNPACK decision."""


class NodeRejected(ValueError):
    """XNNPACK refuses the node (``xnn_define_*`` or ``xnn_create_*`` fails): an error, not a fallback.

    ``reasons`` lists the rules applied before the refusal (as in :class:`Decision`).
    """

    def __init__(self, message: str, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.reasons: tuple[str, ...] = tuple(reasons)


@dataclasses.dataclass(frozen=True)
class Decision:
    """What XNNPACK runs for a node on a target, and why.

    ``variant`` is one of :data:`VARIANT_NAMES` only when a KleidiAI micro-kernel of that variant
    runs. ``kernel`` is the KleidiAI name on KleidiAI paths and the XNNPACK ukernel name
    otherwise; ``xnn_kernel`` is always the XNNPACK name (SME tile numbers computed from the
    SVL, as XNNPACK spells them at SVL 512).
    """

    variant: str | None
    config: str
    microkernel: Microkernel
    kernel: str
    reasons: tuple[str, ...]
    #: The XNNPACK ukernel (wrapper) name.
    xnn_kernel: str
    #: XNNPACK's operator name as the profiling API / ETDump reports it.
    operator: str
    #: The op that runs: ``fully_connected`` for a rewritten 1x1 convolution.
    op: str
    #: GEMM rows M (output pixels for a conv; per-batch rows for BMM).
    m: int
    #: Micro-kernel rows and columns (config mr/nr, mr = 1 for the 1-row kernel).
    mr: int
    nr: int
    #: The datatype the node's LHS is read as (``pfp32`` ... or the plain one).
    input_datatype: str
    rewritten_to_fc: bool
    flush_to_zero: bool
    #: dwconv primary tile (taps) when ``microkernel == 'dwconv'``.
    dwconv_tile: int | None = None
    #: Apple iOS/macOS build (f32 M == 1 kernel with four accumulators).
    platform: Platform = "linux"
    #: Why creating this operator fails with ``xnn_status_unsupported_hardware`` on the target (XNNPACK never
    #: enables the config there: :func:`kleidiref.dispatch.hardware.unsupported_config`), or None.
    unsupported: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``kleidiref explain --json`` object."""
        return {
            "variant": self.variant,
            "config": self.config,
            "microkernel": self.microkernel,
            "kernel": self.kernel,
            "reasons": list(self.reasons),
            "unsupported": self.unsupported,
        }

    @property
    def operator_name(self) -> str:
        """The operator as ETDump names it, without the `` #n`` suffix (``Fully Connected (NC, PF32) GEMM``)."""
        return f"{self.operator} {MICROKERNEL_NAMES[self.microkernel]}"

    def describe(self) -> str:
        """A readable multi-line explanation."""
        mk = MICROKERNEL_NAMES[self.microkernel]
        head = f"{self.op}: {self.operator} {mk} -> config {self.config}"
        lines = [
            head,
            f"  variant:     {self.variant or no_variant(self.kernel)}",
            f"  microkernel: {self.microkernel}",
            f"  kernel:      {self.kernel}",
        ]
        if self.xnn_kernel != self.kernel:
            lines.append(f"  xnnpack:     {self.xnn_kernel}")
        lines.append(f"  tile:        mr={self.mr} nr={self.nr} (M={self.m})")
        lines.append("  why:")
        lines += [f"    - {r}" for r in self.reasons]
        if self.unsupported is not None:
            lines.append(f"  REFUSED by XNNPACK at creation: {self.unsupported}")
        return "\n".join(lines)


def no_variant(kernel: str) -> str:
    if kernel.startswith("kai_"):
        return "none (a KleidiAI kernel outside the emulated variants)"
    return "none (generic XNNPACK kernel)"
