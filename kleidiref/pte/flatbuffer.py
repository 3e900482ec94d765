"""A small, bounds-checked flatbuffer reader (tables, vtables, scalars, vectors, strings, unions, structs).

Written from the flatbuffers binary format (google/flatbuffers ``docs/source/internals.md``): a buffer
starts with a ``uoffset`` to the root table; a table starts with an ``soffset`` back to its vtable; the
vtable holds its own size, the table's inline size and one ``u16`` offset per field slot (0 = absent);
vectors and strings are a ``u32`` length followed by the elements; a union field takes two slots (the
type byte, then the offset to the value table).

Every read is checked against the buffer, so hostile bytes raise :class:`PteError` (a ``ValueError``)
naming the table path, the field and the offset, never ``IndexError``/``struct.error``. Nothing is
allocated from a length field before that length has been checked against the bytes that remain.
The reader is schema-less: the callers (:mod:`kleidiref.pte.program`, :mod:`kleidiref.pte.xnngraph`)
know the slot numbers of the upstream ``.fbs`` schemas.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Buffer", "PteError", "Table"]

_SCALARS: dict[str, struct.Struct] = {
    c: struct.Struct("<" + c) for c in ("b", "B", "h", "H", "i", "I", "q", "Q", "f", "d", "?")
}


class PteError(ValueError):
    """A ``.pte`` program (or a part of it) is malformed, truncated or of an unknown version."""


class Buffer:
    """Bytes with checked little-endian reads; ``name`` says which buffer in error messages."""

    def __init__(self, data: bytes | bytearray | memoryview, name: str) -> None:
        self.data = memoryview(data).cast("B")
        self.size = len(self.data)
        self.name = name

    def check(self, pos: int, nbytes: int, what: str) -> None:
        """Refuse a read of ``nbytes`` at ``pos`` that does not lie inside the buffer."""
        if pos < 0 or nbytes < 0 or pos + nbytes > self.size:
            raise PteError(
                f"{self.name}: {what} at offset {pos} ({nbytes} bytes) lies outside the {self.size}-byte buffer"
            )

    def scalar(self, fmt: str, pos: int, what: str) -> Any:
        """One little-endian scalar of struct format ``fmt`` (``"I"``, ``"h"``, ``"f"``...) at ``pos``."""
        st = _SCALARS[fmt]
        self.check(pos, st.size, what)
        return st.unpack_from(self.data, pos)[0]

    def uoffset(self, pos: int, what: str) -> int:
        """Follow the ``u32`` offset stored at ``pos`` (relative to ``pos``)."""
        target = pos + int(self.scalar("I", pos, what))
        if target >= self.size:
            raise PteError(f"{self.name}: {what} at offset {pos} points to {target}, past the {self.size}-byte buffer")
        return target

    def root(self, identifiers: tuple[bytes, ...], table_name: str) -> Table:
        """The root table; the 4-byte file identifier (bytes 4..8) must be one of ``identifiers``."""
        self.check(0, 8, f"{table_name} root offset and file identifier")
        ident = bytes(self.data[4:8])
        if ident not in identifiers:
            known = ", ".join(repr(i.decode()) for i in identifiers)
            raise PteError(f"{self.name}: file identifier {ident!r} is not {known} (unknown format or version)")
        return Table(self, self.uoffset(0, f"{table_name} root offset"), table_name)

    def bytes_at(self, pos: int, nbytes: int, what: str) -> memoryview:
        self.check(pos, nbytes, what)
        return self.data[pos : pos + nbytes]


class Table:
    """One flatbuffer table at ``pos``; ``path`` (e.g. ``Program.execution_plan[0]``) names it in errors."""

    def __init__(self, buf: Buffer, pos: int, path: str) -> None:
        self.buf = buf
        self.pos = pos
        self.path = path
        vtable = pos - int(buf.scalar("i", pos, f"{path}: vtable offset"))
        self.vt_size = int(buf.scalar("H", vtable, f"{path}: vtable size"))
        self.inline_size = int(buf.scalar("H", vtable + 2, f"{path}: table size"))
        if self.vt_size < 4 or self.vt_size % 2:
            raise PteError(f"{buf.name}: {path}: vtable at offset {vtable} has an invalid size {self.vt_size}")
        buf.check(vtable, self.vt_size, f"{path}: vtable")
        buf.check(pos, max(self.inline_size, 4), f"{path}: table")
        self.vtable = vtable

    def _field(self, slot: int, nbytes: int, field: str) -> int | None:
        """Absolute position of the field in ``slot``, or None when absent."""
        entry = 4 + 2 * slot
        if entry + 2 > self.vt_size:
            return None
        off = int(self.buf.scalar("H", self.vtable + entry, f"{self.path}.{field}: vtable entry"))
        if off == 0:
            return None
        if off + nbytes > self.inline_size:
            raise PteError(
                f"{self.buf.name}: {self.path}.{field}: field offset {off} (+{nbytes} bytes) "
                f"lies outside the table's {self.inline_size} bytes"
            )
        return self.pos + off

    def scalar(self, slot: int, fmt: str, field: str, default: Any = 0) -> Any:
        """A scalar field (``fmt`` as in :mod:`struct`), or ``default`` when absent."""
        pos = self._field(slot, _SCALARS[fmt].size, field)
        return default if pos is None else self.buf.scalar(fmt, pos, f"{self.path}.{field}")

    def struct_bytes(self, slot: int, nbytes: int, field: str) -> bytes | None:
        """The raw bytes of an inline struct field, or None when absent."""
        pos = self._field(slot, nbytes, field)
        return None if pos is None else bytes(self.buf.bytes_at(pos, nbytes, f"{self.path}.{field}"))

    def _target(self, slot: int, field: str) -> int | None:
        pos = self._field(slot, 4, field)
        return None if pos is None else self.buf.uoffset(pos, f"{self.path}.{field}")

    def table(self, slot: int, field: str) -> Table | None:
        """A sub-table field, or None when absent."""
        target = self._target(slot, field)
        return None if target is None else Table(self.buf, target, f"{self.path}.{field}")

    def vector(self, slot: int, elem_size: int, field: str) -> tuple[int, int]:
        """``(start, length)`` of a vector field (``(0, 0)`` when absent), its bytes checked in the buffer."""
        target = self._target(slot, field)
        if target is None:
            return 0, 0
        n = int(self.buf.scalar("I", target, f"{self.path}.{field}: vector length"))
        start = target + 4
        if n * elem_size > self.buf.size - start:
            raise PteError(
                f"{self.buf.name}: {self.path}.{field}: vector at offset {target} claims {n} elements "
                f"of {elem_size} bytes, more than the {max(self.buf.size - start, 0)} bytes left in the buffer"
            )
        return start, n

    def scalars(self, slot: int, dtype: str, field: str) -> NDArray[Any]:
        """A vector of scalars (numpy ``dtype`` such as ``"<u4"``) as a read-only array (empty when absent)."""
        dt = np.dtype(dtype)
        start, n = self.vector(slot, dt.itemsize, field)
        return np.frombuffer(self.buf.data, dtype=dt, count=n, offset=start) if n else np.zeros(0, dt)

    def ints(self, slot: int, dtype: str, field: str) -> tuple[int, ...]:
        """A vector of integers as a tuple of Python ints."""
        return tuple(int(v) for v in self.scalars(slot, dtype, field))

    def ubytes(self, slot: int, field: str) -> memoryview:
        """A ``[ubyte]`` vector as a view of the buffer (empty when absent)."""
        start, n = self.vector(slot, 1, field)
        return self.buf.data[start : start + n]

    def tables(self, slot: int, field: str) -> list[Table]:
        """A vector of tables (empty when absent)."""
        start, n = self.vector(slot, 4, field)
        return [
            Table(self.buf, self.buf.uoffset(start + 4 * i, f"{self.path}.{field}[{i}]"), f"{self.path}.{field}[{i}]")
            for i in range(n)
        ]

    def string(self, slot: int, field: str) -> str | None:
        """A string field decoded as UTF-8, or None when absent."""
        start, n = self.vector(slot, 1, field)
        if start == 0:
            return None
        try:
            return bytes(self.buf.data[start : start + n]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PteError(f"{self.buf.name}: {self.path}.{field}: string at offset {start} is not UTF-8") from exc

    def union(self, slot: int, field: str) -> tuple[int, Table | None]:
        """A union field: ``(type, value table)``; the type takes ``slot``, the value ``slot + 1``."""
        kind = int(self.scalar(slot, "B", field + "_type"))
        value = self._target(slot + 1, field)
        if kind == 0 or value is None:
            return kind, None
        return kind, Table(self.buf, value, f"{self.path}.{field}")
