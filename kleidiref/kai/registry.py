"""Every emulated KleidiAI ukernel (kernel or packer) by its exact upstream name.

The table is filled from an explicit list of the modules that define ukernels (as ONNX lists its
operators in ``_op_list``), not by discovery: adding a module that defines ukernels means adding
it to :func:`_ukernel_modules`. A module's ukernels are the :class:`~kleidiref.kai.interface.Ukernel`
classes with a ``name`` found in its namespace (defined there or re-exported).

``list_ukernels(variant)`` takes an XNNPACK variant module name (``pf32_gemm``, ``igemm`` ...):
the ukernels that module exposes, plus those whose ``variant`` attribute names it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from . import (
    imatmul_clamp,
    matmul_clamp_f16_f16_f16p,
    matmul_clamp_f16_f16p_f16p,
    matmul_clamp_f32_f32_f32p,
    matmul_clamp_f32_f32p_f32p,
    matmul_clamp_f32_qai8dxp_qsi4c32p,
    matmul_clamp_f32_qai8dxp_qsi4cxp,
    matmul_clamp_f32_qai8dxp_qsi8cxp,
    matmul_clamp_qai8_qai8_qsi8cxp,
    matmul_clamp_qai8_qai8p_qsi8cxp,
    pack,
)
from .interface import Ukernel

__all__ = ["UKERNELS", "get_ukernel", "list_ukernels", "ukernels_of"]


def _ukernel_modules() -> dict[str, ModuleType]:
    """Short module name -> module, for every module that defines ukernels.

    Every one is a module of the KleidiAI mirror (:mod:`kleidiref.kai.pack`,
    ``kai.matmul_clamp_*``, ``kai.imatmul_clamp``), imported with this module.
    """
    kai_mods = [
        pack,
        matmul_clamp_f32_f32p_f32p,
        matmul_clamp_f32_f32_f32p,
        matmul_clamp_f16_f16p_f16p,
        matmul_clamp_f16_f16_f16p,
        matmul_clamp_f32_qai8dxp_qsi8cxp,
        matmul_clamp_qai8_qai8p_qsi8cxp,
        matmul_clamp_qai8_qai8_qsi8cxp,
        matmul_clamp_f32_qai8dxp_qsi4cxp,
        matmul_clamp_f32_qai8dxp_qsi4c32p,
        imatmul_clamp,
    ]
    return {m.__name__.rsplit(".", 1)[-1].lstrip("_"): m for m in kai_mods}


def _ukernels_in(mod: ModuleType) -> list[type[Ukernel]]:
    out = []
    for key, obj in vars(mod).items():
        if isinstance(obj, type) and issubclass(obj, Ukernel) and obj.name and key == obj.name:
            out.append(obj)
    return out


class _Registry(Mapping[str, type[Ukernel]]):
    """The name -> class table, built on first use from :func:`_ukernel_modules`."""

    def __init__(self) -> None:
        self._by_name: dict[str, type[Ukernel]] | None = None
        self._by_module: dict[str, set[str]] = {}

    def _table(self) -> dict[str, type[Ukernel]]:
        if self._by_name is None:
            by_name: dict[str, type[Ukernel]] = {}
            for short, mod in _ukernel_modules().items():
                names = self._by_module.setdefault(short, set())
                for cls in _ukernels_in(mod):
                    if by_name.setdefault(cls.name, cls) is not cls:
                        raise TypeError(f"two classes are named {cls.name}")
                    names.add(cls.name)
            self._by_name = by_name
        return self._by_name

    def __getitem__(self, name: str) -> type[Ukernel]:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def of(self, variant: str) -> set[str]:
        """Names of the ukernels module ``variant`` exposes or whose ``variant`` attribute is it.

        A ``variant`` attribute that is a prefix of the name (``qp8`` of ``qp8_f32_qc8w_gemm``)
        marks a ukernel the whole family runs (``kai_lhs_quant_pack_qai8dxp_f32``); ``igemm`` names
        the convolution family (every ``*_igemm`` variant: the imatmul packers and kernels).
        """
        table = self._table()
        mine = {
            n
            for n, c in table.items()
            if c.variant == variant or variant.startswith(c.variant + "_") or c.variant.endswith("_" + variant)
        }
        return self._by_module.get(variant, set()) | mine


#: Every emulated KleidiAI kernel and packer, by exact upstream name (read-only mapping).
UKERNELS = _Registry()


def get_ukernel(name: str, svl: int | None = None, **kwargs: Any) -> Ukernel:
    """The ukernel (kernel or packer) called ``name`` at ``svl`` (the current target's if None)."""
    try:
        cls = UKERNELS[name]
    except KeyError:
        raise ValueError(f"no emulated KleidiAI ukernel is named {name!r}") from None
    return cls(svl, **kwargs)


def list_ukernels(variant: str | None = None) -> list[str]:
    """Names of the emulated ukernels (of one variant module, e.g. ``pf32_gemm``, if given), sorted."""
    return sorted(UKERNELS if variant is None else UKERNELS.of(variant))


def ukernels_of(variant: str | None = None) -> list[type[Ukernel]]:
    """The classes :func:`list_ukernels` names, in the same order."""
    return [UKERNELS[n] for n in list_ukernels(variant)]
