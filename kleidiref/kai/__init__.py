"""The KleidiAI mirror: the uniform ukernel interface and the registry of every emulated ukernel.

* :mod:`kleidiref.kai.interface`: the base classes (:class:`Ukernel`, :class:`MatmulKernel` ...);
* :mod:`kleidiref.kai.registry`: every kernel and packer by exact upstream name.
"""

from __future__ import annotations

from .interface import MatmulKernel, PackedLhsKernel, RawLhsKernel, TileParams, Ukernel
from .registry import UKERNELS, get_ukernel, list_ukernels, ukernels_of

__all__ = [
    "UKERNELS",
    "MatmulKernel",
    "PackedLhsKernel",
    "RawLhsKernel",
    "TileParams",
    "Ukernel",
    "get_ukernel",
    "list_ukernels",
    "ukernels_of",
]
