"""Target CPUs: ISA features and the streaming vector length (SVL).

A :class:`Target` says what XNNPACK would see on a CPU: which Arm features it has (SME2, SME,
I8MM, DotProd, FP16 arithmetic), whether XNNPACK was built with KleidiAI, the SVL in bits, and
whether operators run with FPCR.FZ/FZ16 set (XNNPACK's threadpool sets both).

The current target follows array-api-strict's flag pattern: :func:`set_target` /
:func:`get_target` / :func:`reset_target`, the :func:`target` and :func:`svl` context managers,
and the ``KLEIDIREF_SVL`` environment variable for the default SVL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Literal

__all__ = [
    "APPLE_M4",
    "GENERIC_SME1",
    "NEON_ONLY",
    "SUPPORTED_SVLS",
    "Target",
    "get_target",
    "reset_target",
    "resolve_svl",
    "set_svl",
    "set_target",
    "svl",
    "target",
    "validate_svl",
]

#: Every SVL an SME implementation may have: powers of two from 128 to 2048 bits (Arm ARM;
#: KleidiAI's ``KAI_SME_VEC_LENGTH_MAX_BYTES = 256``).
SUPPORTED_SVLS: tuple[int, ...] = (128, 256, 512, 1024, 2048)

_DEFAULT_SVL = 512


def validate_svl(svl_bits: object) -> int:
    """Return ``svl_bits`` as an int, or raise if no SME CPU can have that vector length."""
    if isinstance(svl_bits, bool) or not isinstance(svl_bits, int):
        raise TypeError(f"SVL must be an int number of bits, got {type(svl_bits).__name__}")
    if svl_bits not in SUPPORTED_SVLS:
        raise ValueError(
            f"SVL {svl_bits} bits: no SME CPU has it; the streaming vector length is a power of two "
            f"from 128 to 2048 bits (one of {SUPPORTED_SVLS}; KAI_SME_VEC_LENGTH_MAX_BYTES = 256)"
        )
    return svl_bits


def _env_svl() -> int:
    raw = os.environ.get("KLEIDIREF_SVL")
    if raw is None or raw == "":
        return _DEFAULT_SVL
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"KLEIDIREF_SVL={raw!r} is not an integer number of bits") from None
    return validate_svl(value)


@dataclasses.dataclass(frozen=True)
class Target:
    """A CPU as XNNPACK's hardware-config sees it.

    ``svl_bits`` matters only on SME targets; FEAT_SME2 implies FEAT_SME. ``flush_to_zero``
    is on by default because XNNPACK runs every operator with FPCR.FZ = FZ16 = 1
    (pthreadpool's ``PTHREADPOOL_FLAG_DISABLE_DENORMALS``); bare kernel objects default to
    FZ off, as KleidiAI's and XNNPACK's own kernel tests run them.
    """

    arch: Literal["arm64", "x86_64"] = "arm64"
    kleidiai: bool = True
    sme2: bool = True
    sme: bool = True
    i8mm: bool = True
    dotprod: bool = True
    fp16_arith: bool = True
    svl_bits: int = dataclasses.field(default_factory=_env_svl)
    flush_to_zero: bool = True
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.arch not in ("arm64", "x86_64"):
            raise ValueError(f"arch must be 'arm64' or 'x86_64', got {self.arch!r}")
        for flag in ("kleidiai", "sme2", "sme", "i8mm", "dotprod", "fp16_arith", "flush_to_zero"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"Target.{flag} must be a bool")
        validate_svl(self.svl_bits)
        if self.sme2 and not self.sme:
            raise ValueError("FEAT_SME2 implies FEAT_SME: a target with sme2=True needs sme=True")
        if self.arch == "x86_64" and (self.sme or self.i8mm or self.dotprod or self.fp16_arith):
            raise ValueError("an x86_64 target has no Arm features (sme2/sme/i8mm/dotprod/fp16_arith)")

    @property
    def has_sme(self) -> bool:
        """True when SME kernels can run (FEAT_SME or FEAT_SME2)."""
        return self.arch == "arm64" and self.sme

    def replace(self, **changes: object) -> Target:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


#: An SME2 CPU with SVL 512 (Apple M4; the SVL is assumed, M5 Max reports 512).
APPLE_M4 = Target(svl_bits=512, name="apple-m4")
#: A hypothetical SME-without-SME2 CPU (exercises XNNPACK's ``_sme_`` kernel branch).
GENERIC_SME1 = Target(sme2=False, sme=True, svl_bits=512, name="generic-sme1")
#: An Armv8.6 CPU with I8MM and DotProd but no SME.
NEON_ONLY = Target(sme2=False, sme=False, svl_bits=512, name="neon-i8mm")

_current: Target | None = None


def get_target() -> Target:
    """The current target (``APPLE_M4`` with the ``KLEIDIREF_SVL`` SVL unless set)."""
    return _current if _current is not None else Target(name="default")


def set_target(new: Target) -> None:
    """Make ``new`` the current target."""
    global _current
    if not isinstance(new, Target):
        raise TypeError(f"set_target expects a Target, got {type(new).__name__}")
    _current = new


def reset_target() -> None:
    """Forget :func:`set_target`; the default target applies again."""
    global _current
    _current = None


def set_svl(svl_bits: int) -> None:
    """Change only the SVL of the current target."""
    set_target(get_target().replace(svl_bits=validate_svl(svl_bits)))


@contextlib.contextmanager
def target(new: Target) -> Iterator[Target]:
    """``with target(t):`` makes ``t`` current inside the block."""
    global _current
    saved = _current
    set_target(new)
    try:
        yield new
    finally:
        _current = saved


@contextlib.contextmanager
def svl(svl_bits: int) -> Iterator[Target]:
    """``with svl(256):`` runs the block with the current target at another SVL."""
    with target(get_target().replace(svl_bits=validate_svl(svl_bits))) as t:
        yield t


def resolve_svl(svl_bits: int | None) -> int:
    """``svl_bits`` validated, or the current target's SVL when None."""
    return get_target().svl_bits if svl_bits is None else validate_svl(svl_bits)
