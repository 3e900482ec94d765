"""Packed-buffer comparison: the first differing byte, decoded as (row, k) / (n, k) and field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.interface import Ukernel
from ..kai.registry import UKERNELS

__all__ = ["compare_packed", "pack_reference", "packer_decoder"]

Decoder = Callable[[int], str]


def _ru(x: int, m: int) -> int:
    return -(-x // m) * m


def _sme_lhs(mr: int, kr: int, es: int, m: int, k: int) -> Decoder:
    kp = _ru(k, kr)

    def dec(off: int) -> str:
        i = off // es
        b, rem = divmod(i, mr * kp)
        kb, rem = divmod(rem, mr * kr)
        r, kk = divmod(rem, kr)
        row, col = b * mr + r, kb * kr + kk
        pad = " (padding: must be 0)" if row >= m or col >= k else ""
        return f"data (row {row}, k {col}){pad}, byte {off % es} of the element"

    return dec


def _sme_rhs_bias(nr: int, kr: int, es: int, bs: int, n: int, k: int) -> Decoder:
    kp = _ru(k, kr)
    stride = nr * bs + nr * kp * es

    def dec(off: int) -> str:
        g, rem = divmod(off, stride)
        if rem < nr * bs:
            j = rem // bs
            return f"bias (n {g * nr + j}) of block {g}{' (padding)' if g * nr + j >= n else ''}"
        i = (rem - nr * bs) // es
        kb, r2 = divmod(i, nr * kr)
        j, kk = divmod(r2, kr)
        col, kx = g * nr + j, kb * kr + kk
        pad = " (padding: must be 0)" if col >= n or kx >= k else ""
        return f"data (n {col}, k {kx}){pad}"

    return dec


def _qai8dxp(mr: int, kbl: int, m: int, k: int) -> Decoder:
    k32 = _ru(k, 32)
    stride = mr * (k32 + 8)

    def dec(off: int) -> str:
        b, rem = divmod(off, stride)
        if rem < mr * k32:
            kb, r2 = divmod(rem, mr * kbl)
            r, kk = divmod(r2, kbl)
            row, col = b * mr + r, kb * kbl + kk
            note = " (K padding: repeats the code of k = K-1)" if col >= k else ""
            return f"data: int8 code (row {row}, k {col}){note}{' (row past M: unwritten)' if row >= m else ''}"
        rem -= mr * k32
        if rem < 4 * mr:
            return f"zero point: int32 -zp of row {b * mr + rem // 4}"
        return f"scale: f32 dequantization scale dq of row {b * mr + (rem - 4 * mr) // 4}"

    return dec


def _qsi8cxp(nr: int, kr: int, n: int, k: int) -> Decoder:
    k32 = _ru(k, 32)
    stride = nr * (k32 + 12)

    def dec(off: int) -> str:
        g, rem = divmod(off, stride)
        if rem < nr * k32:
            kb, r2 = divmod(rem, nr * kr)
            j, kk = divmod(r2, kr)
            return f"data: int8 weight (n {g * nr + j}, k {kb * kr + kk})"
        rem -= nr * k32
        field = ("row sum: int32 rsum", "scale: f32 per-channel scale", "bias: f32")[min(rem // (4 * nr), 2)]
        return f"{field} of n {g * nr + (rem % (4 * nr)) // 4}"

    return dec


def _pqs8_rhs(nr: int, n: int, k: int) -> Decoder:
    k4 = _ru(k, 4)
    stride = nr * (4 + k4 + 4)

    def dec(off: int) -> str:
        g, rem = divmod(off, stride)
        if rem < 4 * nr:
            return f"bias: int32 bias - izp*sum(W) of n {g * nr + rem // 4}"
        rem -= 4 * nr
        if rem < nr * k4:
            kb, r2 = divmod(rem, nr * 4)
            j, kk = divmod(r2, 4)
            return f"data: int8 weight (n {g * nr + j}, k {kb * 4 + kk})"
        return f"scale: f32 requantization scale of n {g * nr + (rem - nr * k4) // 4}"

    return dec


def _qsi4(nr: int, bl: int, bbl: int, n: int, k: int, sme: bool) -> Decoder:
    nb = k // bl
    qb_bytes = nr * (bl // 2 + 2)
    stride = nr * (nb * (bl // 2 + 2) + 8)

    def dec(off: int) -> str:
        g, rem = divmod(off, stride)
        if rem >= nb * qb_bytes:
            rem -= nb * qb_bytes
            field = "row sum: f32 rsum" if rem < 4 * nr else "bias: f32"
            return f"{field} of n {g * nr + (rem % (4 * nr)) // 4}"
        qb, r2 = divmod(rem, qb_bytes)
        if r2 >= nr * bl // 2:
            return f"scale: bf16 block scale (n {g * nr + (r2 - nr * bl // 2) // 2}, block {qb})"
        c, r3 = divmod(r2, 16 * nr)
        k0 = qb * bl + 32 * c
        if sme:
            i, r4 = divmod(r3, 2 * nr)
            j, t = divmod(r4, 2)
            lo = k0 + 4 * i + 2 * t
            return f"data: int4 pair (n {g * nr + j}, k {lo} low nibble, k {lo + 1} high nibble), block {qb}"
        s, r4 = divmod(r3, bbl * nr)
        j, t = divmod(r4, bbl)
        lo = k0 + s * bbl + t
        return f"data: int4 pair (n {g * nr + j}, k {lo} low nibble, k {lo + 16} high nibble), block {qb}"

    return dec


def packer_decoder(packer: Ukernel, kwargs: dict[str, Any]) -> Decoder:
    """A function from byte offset to a description, for ``packer`` packing ``kwargs``."""
    from ..variants._qai8dxp import kai_lhs_quant_pack_qai8dxp_f32
    from ..variants._sme_packers import SmeLhsPacker, SmeRhsBiasPacker
    from ..variants.pqs8_qc8w_gemm import kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme
    from ..variants.qp8_f32_qb4w_gemm import _Qsi4c32Packer
    from ..variants.qp8_f32_qc8w_gemm import _QsiRhsPacker

    if isinstance(packer, SmeLhsPacker):
        m, k = kwargs["lhs"].shape
        return _sme_lhs(packer.native_mr(), packer.kr, packer.elem.itemsize, m, k)
    if isinstance(packer, SmeRhsBiasPacker):
        w = kwargs["rhs"]
        n, k = w.shape if packer.layout == "nxk" else w.shape[::-1]
        return _sme_rhs_bias(packer.get_n_step(), packer.kr, packer.elem.itemsize, packer.bias_elem.itemsize, n, k)
    if isinstance(packer, kai_lhs_quant_pack_qai8dxp_f32):
        m, k = kwargs["lhs"].shape
        return _qai8dxp(kwargs["mr"], kwargs["kr"] // kwargs["sr"], m, k)
    if isinstance(packer, _QsiRhsPacker):
        w = kwargs["rhs"]
        n, k = w.shape if packer.layout == "nxk" else w.shape[::-1]
        return _qsi8cxp(kwargs["nr"], kwargs.get("kr", 4), n, k)
    if isinstance(packer, kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme):
        k, n = kwargs["rhs_kxn"].shape
        return _pqs8_rhs(packer.get_n_step(), n, k)
    if isinstance(packer, _Qsi4c32Packer):
        r = kwargs["rhs"]
        n = kwargs.get("n") or (r.shape[0] if "nxk" in packer.name else 2 * r.shape[1])
        k = kwargs.get("k") or (2 * r.shape[1] if "nxk" in packer.name else r.shape[0])
        sme = "nrx4" in packer.name
        return _qsi4(kwargs["nr"], kwargs["bl"], kwargs["kr"] // kwargs["sr"], n, k, sme)
    return lambda off: f"byte {off}"


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
