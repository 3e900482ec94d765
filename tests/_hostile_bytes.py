"""Hostile bytes for the tests of kleidiref's flatbuffer readers (``.pte`` programs, ETDumps): bit flips and
forged words, and the one check they all make: a clear :class:`~kleidiref.pte.PteError` or a result, quickly."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from hypothesis import strategies as st

from kleidiref.pte import PteError

#: Extreme offsets, sizes and lengths to write over a word.
FORGED_WORDS = st.sampled_from([0, 1, 3, 0x7FFF, 0xFFFF, 2**31, 2**31 - 1, 2**32 - 1, 2**32 - 4])
#: (position, bit) pairs; positions wrap around the buffer.
BIT_FLIPS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), max_size=8)


def flip_bits(base: bytes, flips: Sequence[tuple[int, int]]) -> bytes:
    b = bytearray(base)
    for pos, bit in flips:
        b[pos % len(b)] ^= 1 << bit
    return bytes(b)


def forge_word(base: bytes, pos: int, value: int, size: int = 4) -> bytes:
    """``base`` with the aligned ``size``-byte word near ``pos`` replaced by ``value``."""
    b = bytearray(base)
    pos = (pos % (len(b) - size)) // size * size
    b[pos : pos + size] = value.to_bytes(size, "little")
    return bytes(b)


def loads_or_clear_error(load: Callable[[bytes], object], data: bytes, seconds: float = 2.0) -> None:
    """``load(data)`` returns or raises a :class:`PteError` with a message, within ``seconds``."""
    t0 = time.perf_counter()
    try:
        load(data)
    except PteError as exc:
        assert str(exc)
    assert time.perf_counter() - t0 < seconds
