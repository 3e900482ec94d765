"""The KleidiAI mirror: the uniform ukernel interface and the registry of every emulated ukernel.

* :mod:`kleidiref.kai.interface`: the base classes (:class:`Ukernel`, :class:`MatmulKernel` ...);
* :mod:`kleidiref.kai.registry`: every kernel and packer by exact upstream name;
* :mod:`kleidiref.kai.params`: KleidiAI's parameter structs;
* :mod:`kleidiref.kai.layouts`: every packed format (size, offset, encode, decode, describe).
"""

from __future__ import annotations

from .interface import (
    BlockwiseKernel,
    ClampBounds,
    MatmulKernel,
    PackedLhsKernel,
    RawLhsKernel,
    RawLhsRow,
    RequantizingKernel,
    TileParams,
    Ukernel,
)
from .params import kai_matmul_requantize32_params, kai_rhs_pack_qsi8cx_params
from .registry import UKERNELS, get_ukernel, list_ukernels, ukernels_of

__all__ = [
    "UKERNELS",
    "BlockwiseKernel",
    "ClampBounds",
    "MatmulKernel",
    "PackedLhsKernel",
    "RawLhsKernel",
    "RawLhsRow",
    "RequantizingKernel",
    "TileParams",
    "Ukernel",
    "get_ukernel",
    "kai_matmul_requantize32_params",
    "kai_rhs_pack_qsi8cx_params",
    "list_ukernels",
    "ukernels_of",
]
