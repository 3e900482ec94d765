"""Compatibility module: the interface moved to :mod:`kleidiref.kai.interface`, the registry to
:mod:`kleidiref.kai.registry` (``kleidiref.kernel.get_ukernel`` / ``list_ukernels`` keep working)."""

from __future__ import annotations

from .kai.interface import MatmulKernel, PackedLhsKernel, RawLhsKernel, TileParams, Ukernel
from .kai.registry import UKERNELS, get_ukernel, list_ukernels

__all__ = [
    "UKERNELS",
    "MatmulKernel",
    "PackedLhsKernel",
    "RawLhsKernel",
    "TileParams",
    "Ukernel",
    "get_ukernel",
    "list_ukernels",
]
