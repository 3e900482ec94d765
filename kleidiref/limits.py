"""The memory limit: how many bytes one call or one file may make kleidiref allocate.

An emulation of a huge shape, or a hostile file whose small compressed members inflate to
gigabytes, is refused before anything is allocated, with a ``ValueError`` naming the size and
the limit. The limit is ``KLEIDIREF_MAX_BYTES`` (bytes; suffixes ``K``, ``M``, ``G`` are binary
multiples) or :data:`DEFAULT_MAX_BYTES`; a ``max_bytes=`` argument, where an entry point takes
one, overrides both.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_MAX_BYTES", "ENV_VAR", "check_bytes", "max_bytes"]

#: 8 GiB: a third of this project's 24 GiB machines, far above every real layer shape.
DEFAULT_MAX_BYTES = 8 << 30
ENV_VAR = "KLEIDIREF_MAX_BYTES"
_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _parse(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = _SUFFIX.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in _SUFFIX else t
    if not digits.isdigit() or len(digits) > 20:
        raise ValueError(f"{ENV_VAR}={text!r} is not a byte count (digits with an optional K, M or G suffix)")
    value = int(digits) * mult
    if value <= 0:
        raise ValueError(f"{ENV_VAR}={text!r}: the limit must be positive")
    return value


def max_bytes(override: int | None = None) -> int:
    """The limit in force: ``override`` if given, else ``KLEIDIREF_MAX_BYTES``, else the default."""
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override <= 0:
            raise TypeError(f"max_bytes must be a positive int, got {override!r}")
        return override
    env = os.environ.get(ENV_VAR)
    return DEFAULT_MAX_BYTES if env is None or not env.strip() else _parse(env)


def check_bytes(nbytes: int, what: str, override: int | None = None) -> None:
    """Refuse (``ValueError``) before allocating ``nbytes`` for ``what`` above the limit."""
    limit = max_bytes(override)
    if nbytes > limit:
        raise ValueError(
            f"{what} needs {nbytes:,} bytes, above the memory limit of {limit:,} bytes "
            f"(raise it with {ENV_VAR} or max_bytes=)"
        )
