"""Byte-buffer plumbing shared by every packer and kernel (``void*`` arguments of the C API).

A buffer may be a numpy array (any dtype, C-contiguous; its bytes are used), ``bytes``,
``bytearray`` or ``memoryview``. Offsets and strides are in bytes, as in KleidiAI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Buffer",
    "PackedRhs",
    "as_packed_rhs",
    "as_u8",
    "check_count",
    "check_dtype",
    "check_float",
    "matrix_view",
    "owner_packed_rhs",
    "packed_rhs_columns",
    "read_matrix",
    "require_bytes",
    "roundup",
    "writable_u8",
    "write_matrix",
]

Buffer = Any  # np.ndarray | bytes | bytearray | memoryview


def roundup(x: int, m: int) -> int:
    """``kai_roundup``: the smallest multiple of ``m`` that is >= ``x``."""
    return ((x + m - 1) // m) * m


def _check_plain(buf: Buffer, name: str) -> None:
    """A buffer of plain bytes: no Python objects in it, one contiguous block of memory."""
    if isinstance(buf, np.ndarray) and buf.dtype.hasobject:
        raise TypeError(f"{name} must hold plain numbers, not Python objects (dtype {buf.dtype})")
    if isinstance(buf, memoryview) and not buf.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous memoryview (the kernel reads raw bytes)")


def as_u8(buf: Buffer, name: str) -> NDArray[np.uint8]:
    """A read-only flat uint8 view of ``buf``'s bytes."""
    _check_plain(buf, name)
    if isinstance(buf, np.ndarray):
        if not buf.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (the kernel reads raw bytes)")
        return buf.reshape(-1).view(np.uint8)
    if isinstance(buf, (bytes, bytearray, memoryview)):
        return np.frombuffer(buf, dtype=np.uint8)
    raise TypeError(f"{name} must be a numpy array or a bytes-like buffer, got {type(buf).__name__}")


def writable_u8(buf: Buffer, name: str) -> NDArray[np.uint8]:
    """A writable flat uint8 view of ``buf``'s bytes (what a ``void* dst`` points at)."""
    _check_plain(buf, name)
    if isinstance(buf, np.ndarray):
        if not buf.flags.c_contiguous or not buf.flags.writeable:
            raise ValueError(f"{name} must be a writable C-contiguous array")
        return buf.reshape(-1).view(np.uint8)
    if isinstance(buf, (bytearray, memoryview)):
        arr = np.frombuffer(buf, dtype=np.uint8)
        if not arr.flags.writeable:
            raise ValueError(f"{name} is read-only")
        return arr
    raise TypeError(f"{name} must be a writable numpy array or bytearray, got {type(buf).__name__}")


def require_bytes(u8: NDArray[np.uint8], needed: int, name: str, source: str) -> None:
    """Raise unless the buffer holds at least ``needed`` bytes (what ``source`` says it needs)."""
    if u8.size < needed:
        raise ValueError(f"{name} holds {u8.size} bytes but {source} needs {needed} bytes")


def check_count(name: str, value: object, *, minimum: int = 0) -> int:
    """An integer argument (``size_t`` in C): must be an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def check_float(name: str, value: object) -> np.float32:
    """A ``float`` argument: a Python/numpy real converted to binary32 exactly, or an error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v32: np.float32 = np.float32(value)
    if not np.isnan(v32) and float(v32) != float(value):
        raise ValueError(f"{name}={value!r} is not representable in binary32 (the C argument is a float)")
    return v32


def check_dtype(name: str, arr: object, dtype: Any, source: str) -> NDArray[Any]:
    """A numpy array of exactly ``dtype`` (nothing is cast silently)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of {np.dtype(dtype)}, got {type(arr).__name__}")
    if arr.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must be {np.dtype(dtype)} ({source}), got {arr.dtype}")
    return arr


def matrix_view(
    u8: NDArray[np.uint8], rows: int, cols: int, row_stride: int, dtype: Any, name: str, source: str
) -> NDArray[Any]:
    """A read-only ``rows x cols`` view of ``dtype`` on a byte buffer with a byte row stride."""
    dt = np.dtype(dtype)
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols), dtype=dt)
    if row_stride < cols * dt.itemsize and rows > 1:
        raise ValueError(f"{name} row stride {row_stride} is smaller than one row ({cols * dt.itemsize} bytes)")
    require_bytes(u8, (rows - 1) * row_stride + cols * dt.itemsize, name, source)
    view: NDArray[Any] = np.ndarray((rows, cols), dtype=dt, buffer=u8, offset=0, strides=(row_stride, dt.itemsize))
    view.flags.writeable = False
    return view


def read_matrix(
    u8: NDArray[np.uint8], rows: int, cols: int, row_stride: int, dtype: Any, name: str, source: str
) -> NDArray[Any]:
    """Copy a ``rows x cols`` matrix of ``dtype`` out of a byte buffer with a byte row stride."""
    return np.array(matrix_view(u8, rows, cols, row_stride, dtype, name, source), copy=True)


def write_matrix(
    u8: NDArray[np.uint8], values: NDArray[Any], row_stride: int, col_stride: int, name: str, source: str
) -> None:
    """Store ``values`` (rows x cols) into a byte buffer with byte strides, touching nothing else."""
    rows, cols = values.shape
    if rows == 0 or cols == 0:
        return
    item = values.dtype.itemsize
    require_bytes(u8, (rows - 1) * row_stride + (cols - 1) * col_stride + item, name, source)
    view = np.ndarray((rows, cols), dtype=values.dtype, buffer=u8, offset=0, strides=(row_stride, col_stride))
    view[...] = values


class PackedRhs(bytes):
    """An immutable packed RHS buffer that remembers the decodings of its own bytes.

    Weights packed once and run many times, as XNNPACK's packed-weights cache holds them. It is
    a ``bytes`` object (any kernel accepts it as ``rhs_packed``); ``decoded(key, fn)`` returns
    ``fn(self)`` computed once per ``key`` (the key names the layout read: element type, nr,
    kr, K). The content can never change, so the cache is always valid; kernels use it only
    when handed this exact object (not a slice or a copy), and it lives as long as the object.
    """

    _cache: dict[object, Any]

    def decoded(self, key: object, fn: Callable[[bytes], Any]) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = fn(self)
        return cache[key]


def as_packed_rhs(buf: NDArray[np.uint8]) -> PackedRhs:
    """Freeze packed bytes into a :class:`PackedRhs`."""
    return PackedRhs(np.ascontiguousarray(buf, dtype=np.uint8).tobytes())


def owner_packed_rhs(rhs_u8: NDArray[np.uint8]) -> PackedRhs | None:
    """The :class:`PackedRhs` ``rhs_u8`` views in full (offset 0, every byte), else None."""
    base = rhs_u8.base
    if isinstance(base, PackedRhs) and rhs_u8.size == len(base) and rhs_u8.ndim == 1:
        if rhs_u8.ctypes.data == np.frombuffer(base, dtype=np.uint8).ctypes.data:
            return base
    return None


def packed_rhs_columns(rhs_u8: NDArray[np.uint8], stride: int, nr: int, n: int) -> tuple[PackedRhs, int] | None:
    """``(owner, columns)``: the :class:`PackedRhs` ``rhs_u8`` views whole and how many columns
    it holds, in blocks of ``nr`` columns of ``stride`` bytes each; None if it is not one, is not
    made of whole blocks, or holds fewer than ``n`` columns (the kernel then reads ``rhs_u8``)."""
    owner = owner_packed_rhs(rhs_u8)
    if owner is None or len(owner) % stride:
        return None
    columns = len(owner) // stride * nr
    return (owner, columns) if columns >= n else None
