"""Packed-buffer comparison: the first differing byte, described by its layout (:mod:`kleidiref.kai.layouts`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.interface import Ukernel
from ..kai.layouts import Qai8dxpLayout, Qsi4c32pLayout, Qsi8cxpLayout
from ..kai.registry import UKERNELS

__all__ = ["compare_packed", "describer", "pack_reference", "packer_decoder"]

Decoder = Callable[[int], str]


def describer(layout: Any) -> Decoder:
    """Byte offset -> description, from a :mod:`kleidiref.kai.layouts` layout's ``describe``."""
    return lambda off: str(layout.describe(off))


def _layout_of(packer: Ukernel, kwargs: dict[str, Any]) -> Any:
    """The layout of the buffer ``packer.pack(**kwargs)`` writes, or None for an unknown packer."""
    from ..kai.pack import SmeLhsPacker, SmeRhsBiasPacker
    from ..variants import pqs8_qc8w_gemm as pqs8
    from ..variants import qp8_f32_qb4w_gemm as qb4w
    from ..variants import qp8_f32_qc8w_gemm as qc8w

    if isinstance(packer, SmeLhsPacker):
        return packer.lhs_layout(*kwargs["lhs"].shape)
    if isinstance(packer, SmeRhsBiasPacker):
        w = kwargs["rhs"]
        return packer.rhs_layout(*(w.shape if packer.layout == "nxk" else w.shape[::-1]))
    if isinstance(packer, qc8w.kai_lhs_quant_pack_qai8dxp_f32):
        return Qai8dxpLayout(kwargs["mr"], kwargs["kr"], kwargs["sr"], *kwargs["lhs"].shape)
    if isinstance(packer, (qc8w.kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon, qc8w.kai_rhs_pack_kxn_qsi8cxp_qsi8cx_neon)):
        w = kwargs["rhs"]
        n, k = w.shape if packer.layout == "nxk" else w.shape[::-1]
        return Qsi8cxpLayout(kwargs["nr"], kwargs.get("kr", 4), n, k)
    if isinstance(packer, pqs8.kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme):
        k, n = kwargs["rhs_kxn"].shape
        return packer.rhs_layout(n, k)
    qsi4 = (
        qb4w.kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0,
        qb4w.kai_rhs_pack_kxn_qsi4c32p_qsu4c32s1s0,
        qb4w.kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon,
        qb4w.kai_rhs_pack_kxn_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon,
    )
    if isinstance(packer, qsi4):
        r = kwargs["rhs"]
        nxk = "nxk" in packer.name
        n = kwargs.get("n") or (r.shape[0] if nxk else 2 * r.shape[1])
        k = kwargs.get("k") or (2 * r.shape[1] if nxk else r.shape[0])
        return Qsi4c32pLayout(kwargs["nr"], kwargs["bl"], kwargs["kr"] // kwargs["sr"], n, k, packer.layout)
    return None


def packer_decoder(packer: Ukernel, kwargs: dict[str, Any]) -> Decoder:
    """A function from byte offset to a description, for ``packer`` packing ``kwargs``."""
    layout = _layout_of(packer, kwargs)
    return (lambda off: f"byte {off}") if layout is None else describer(layout)


def pack_reference(packer: str, svl: int | None, kwargs: dict[str, Any]) -> tuple[Ukernel, NDArray[np.uint8]]:
    """The packer object and the bytes kleidiref's ``packer.pack(**kwargs)`` writes."""
    cls = UKERNELS.get(packer)
    if cls is None or not hasattr(cls, "pack"):
        names = sorted(n for n, c in UKERNELS.items() if hasattr(c, "pack"))
        raise ValueError(f"{packer!r} is not an emulated packer; packers: {', '.join(names)}")
    obj = cls(svl)
    return obj, np.asarray(obj.pack(**kwargs), dtype=np.uint8)  # type: ignore[attr-defined]


def compare_packed(
    actual: Any,
    expected: NDArray[np.uint8],
    decode: Decoder,
    what: str,
    written: NDArray[np.bool_] | None = None,
) -> str | None:
    """None if equal (on ``written`` bytes), else a message naming the first differing byte."""
    a = np.frombuffer(bytes(actual), dtype=np.uint8) if not isinstance(actual, np.ndarray) else actual.view(np.uint8)
    a = a.reshape(-1)
    if a.size < expected.size:
        return (
            f"{what}: {a.size} bytes, expected at least {expected.size} (the packer's "
            f"get_*_packed_size); the layout or the padding differs"
        )
    diff = a[: expected.size] != expected
    if written is not None:
        diff &= written.reshape(-1)[: expected.size]
    if not diff.any():
        return None
    idx = np.flatnonzero(diff)
    first = int(idx[0])
    return (
        f"packed {what} bytes differ at {idx.size} of {expected.size} bytes; first at byte offset {first} "
        f"(actual 0x{int(a[first]):02x}, expected 0x{int(expected[first]):02x}): {decode(first)}"
    )
