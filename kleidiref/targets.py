"""Target CPUs: ISA features and the streaming vector length (SVL).

A :class:`Target` says what XNNPACK would see on a CPU: which Arm features it has (SME2, SME,
I8MM, DotProd, FP16 arithmetic), whether XNNPACK was built with KleidiAI, the SVL in bits, and
whether operators run with FPCR.FZ/FZ16 set (XNNPACK's threadpool sets both).

The current target follows array-api-strict's flag pattern: :func:`set_target` /
:func:`get_target` / :func:`reset_target`, the :func:`target` and :func:`svl` context managers,
and the ``KLEIDIREF_SVL`` environment variable for the default SVL.

Scope: :func:`set_target` outside any ``with`` block sets the *process default*, which every
thread and task sees (a script's module-level ``set_target`` applies everywhere). The context
managers are per context (a ``contextvars.ContextVar``): ``with svl(256):`` in one thread or
asyncio task never changes what another thread's ``get_target()`` returns. Inside a ``with``
block, :func:`set_target` / :func:`set_svl` / :func:`reset_target` change only that block's
target, until the block ends.

A target without SME (``NEON_ONLY``, any x86_64 target) has no SVL: ``svl_bits`` is None.

An x86_64 target has an x86 ISA level (``x86_isa``, :data:`X86_ISA_LEVELS`): the best entry of XNNPACK's
x86 config ladders the CPU reaches, default ``"avx2"`` (AVX2 + FMA3 + F16C, no AVX-512); an arm64 target has
none (``x86_isa`` is None).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from collections.abc import Iterator
from typing import Literal

__all__ = [
    "APPLE_M4",
    "GENERIC_SME1",
    "NEON_ONLY",
    "SUPPORTED_SVLS",
    "X86_ISA_LEVELS",
    "Target",
    "X86IsaLevel",
    "get_target",
    "reset_target",
    "resolve_svl",
    "resolve_target",
    "set_svl",
    "set_target",
    "svl",
    "target",
    "target_svl",
    "validate_svl",
]

#: Every SVL an SME implementation may have: powers of two from 128 to 2048 bits (Arm ARM;
#: KleidiAI's ``KAI_SME_VEC_LENGTH_MAX_BYTES = 256``).
SUPPORTED_SVLS: tuple[int, ...] = (128, 256, 512, 1024, 2048)

_DEFAULT_SVL = 512

#: An x86-64 ISA level: the best rung of XNNPACK's x86 config ladders (``src/configs/gemm-config.c``) a CPU
#: reaches. ``avx512fp16``: AVX512-FP16 (and AVX512SKX); ``avx512skx``: AVX512 F+BW+DQ+VL; ``avx2``: AVX2 +
#: FMA3 + F16C; ``fma3``: FMA3 without AVX2; ``avx``: AVX without FMA3; ``sse41``: SSE4.1 only.
X86IsaLevel = Literal["avx512fp16", "avx512skx", "avx2", "fma3", "avx", "sse41"]
#: The x86 ISA levels, best first.
X86_ISA_LEVELS: tuple[X86IsaLevel, ...] = ("avx512fp16", "avx512skx", "avx2", "fma3", "avx", "sse41")
_DEFAULT_X86_ISA: X86IsaLevel = "avx2"


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


@dataclasses.dataclass(frozen=True, repr=False)
class Target:
    """A CPU as XNNPACK's hardware-config sees it.

    ``svl_bits`` is the streaming vector length of an SME target; None (the default) means the
    ``KLEIDIREF_SVL`` default on an SME target and *no SVL* on a target without SME (0 is read
    as None there). FEAT_SME2 implies FEAT_SME. ``flush_to_zero`` is on by default because
    XNNPACK runs every operator with FPCR.FZ = FZ16 = 1 (pthreadpool's
    ``PTHREADPOOL_FLAG_DISABLE_DENORMALS``); bare kernel objects default to FZ off, as
    KleidiAI's and XNNPACK's own kernel tests run them. ``x86_isa`` is the x86-64 ISA level
    (:data:`X86_ISA_LEVELS`): None (the default) means ``"avx2"`` on x86_64; it must be None on arm64.
    """

    arch: Literal["arm64", "x86_64"] = "arm64"
    kleidiai: bool = True
    sme2: bool = True
    sme: bool = True
    i8mm: bool = True
    dotprod: bool = True
    fp16_arith: bool = True
    svl_bits: int | None = None
    flush_to_zero: bool = True
    name: str = "custom"
    x86_isa: X86IsaLevel | None = None

    def __post_init__(self) -> None:
        if self.arch not in ("arm64", "x86_64"):
            raise ValueError(f"arch must be 'arm64' or 'x86_64', got {self.arch!r}")
        for flag in ("kleidiai", "sme2", "sme", "i8mm", "dotprod", "fp16_arith", "flush_to_zero"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"Target.{flag} must be a bool")
        if self.sme2 and not self.sme:
            raise ValueError("FEAT_SME2 implies FEAT_SME: a target with sme2=True needs sme=True")
        if self.arch == "x86_64" and (self.sme or self.i8mm or self.dotprod or self.fp16_arith):
            raise ValueError("an x86_64 target has no Arm features (sme2/sme/i8mm/dotprod/fp16_arith)")
        if self.has_sme:
            svl = _env_svl() if self.svl_bits is None else validate_svl(self.svl_bits)
        elif self.svl_bits is None or (self.svl_bits == 0 and not isinstance(self.svl_bits, bool)):
            svl = None
        else:
            # Note: an SVL on a target without SME is accepted (and ignored) for compatibility.
            svl = validate_svl(self.svl_bits)
        object.__setattr__(self, "svl_bits", svl)
        object.__setattr__(self, "x86_isa", self._checked_x86_isa())

    def _checked_x86_isa(self) -> X86IsaLevel | None:
        isa = self.x86_isa
        if self.arch == "arm64":
            if isa is not None:
                raise ValueError(f"x86_isa={isa!r} on an arm64 target: only an x86_64 target has an x86 ISA level")
            return None
        if isa is None:
            return _DEFAULT_X86_ISA
        if not isinstance(isa, str) or isa not in X86_ISA_LEVELS:
            raise ValueError(
                f"x86_isa must be one of {', '.join(X86_ISA_LEVELS)} (the x86 rungs of XNNPACK's config "
                f"ladders, best first), got {isa!r}"
            )
        return isa

    @property
    def has_sme(self) -> bool:
        """True when SME kernels can run (FEAT_SME or FEAT_SME2)."""
        return self.arch == "arm64" and self.sme

    def replace(self, **changes: object) -> Target:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        fields = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)]
        return f"Target({', '.join(x for x in fields if x not in ('svl_bits=None', 'x86_isa=None'))})"


def target_svl(t: Target, what: str) -> int:
    """``t``'s SVL for ``what`` (an SME kernel or packer); a clear ValueError if ``t`` has none."""
    if t.svl_bits is None:
        raise ValueError(
            f"{what} needs a streaming vector length, and target {t.name!r} has no SVL "
            "(neither SME2 nor SME): use an SME target, or pass the SVL explicitly"
        )
    return t.svl_bits


#: An SME2 CPU with SVL 512 (Apple M4; the SVL is assumed, M5 Max reports 512).
APPLE_M4 = Target(svl_bits=512, name="apple-m4")
#: A hypothetical SME-without-SME2 CPU (exercises XNNPACK's ``_sme_`` kernel branch).
GENERIC_SME1 = Target(sme2=False, sme=True, svl_bits=512, name="generic-sme1")
#: An Armv8.6 CPU with I8MM and DotProd but no SME (so no SVL).
NEON_ONLY = Target(sme2=False, sme=False, name="neon-i8mm")

#: The process default set by :func:`set_target` outside any ``with`` block (all threads).
_process_default: Target | None = None
#: The target of the innermost ``with target(...)`` / ``with svl(...)`` block of this context.
_context_target: contextvars.ContextVar[Target | None] = contextvars.ContextVar("kleidiref_target", default=None)


def _check_target(new: object, who: str) -> Target:
    if not isinstance(new, Target):
        raise TypeError(f"{who} expects a kleidiref.targets.Target, got {type(new).__name__} {new!r}")
    return new


def get_target() -> Target:
    """The current target: this context's ``with`` block's, else the process default, else
    ``APPLE_M4``'s features with the ``KLEIDIREF_SVL`` SVL."""
    found = _context_target.get()
    if found is not None:
        return found
    return _process_default if _process_default is not None else Target(name="default")


def set_target(new: Target) -> None:
    """Make ``new`` the current target: the process default (every thread), or, inside a
    ``with target(...)`` / ``with svl(...)`` block, that block's target until it ends."""
    global _process_default
    checked = _check_target(new, "set_target")
    if _context_target.get() is not None:
        _context_target.set(checked)
    else:
        _process_default = checked


def reset_target() -> None:
    """Forget :func:`set_target`: the default target applies again (inside a ``with`` block:
    the process default, until the block ends)."""
    global _process_default
    if _context_target.get() is not None:
        _context_target.set(None)
    else:
        _process_default = None


def set_svl(svl_bits: int) -> None:
    """Change only the SVL of the current target (scoped as :func:`set_target`)."""
    set_target(get_target().replace(svl_bits=validate_svl(svl_bits)))


@contextlib.contextmanager
def target(new: Target) -> Iterator[Target]:
    """``with target(t):`` makes ``t`` current inside the block, in this thread / task only."""
    token = _context_target.set(_check_target(new, "target"))
    try:
        yield new
    finally:
        _context_target.reset(token)


@contextlib.contextmanager
def svl(svl_bits: int) -> Iterator[Target]:
    """``with svl(256):`` runs the block with the current target at another SVL (this thread / task)."""
    with target(get_target().replace(svl_bits=validate_svl(svl_bits))) as t:
        yield t


def resolve_target(t: object) -> Target:
    """``t`` checked to be a :class:`Target`, or the current target when None.

    The one check every public entry point taking ``target=`` goes through: a string or any
    other object is a TypeError, not a silent default.
    """
    return get_target() if t is None else _check_target(t, "target=")


def resolve_svl(svl_bits: int | None, *, required: bool = True) -> int:
    """``svl_bits`` validated, or the current target's SVL when None.

    When the current target has no SVL (no SME): a ValueError if ``required`` (SME kernels),
    else the ``KLEIDIREF_SVL`` default (NEON kernels and packers, which ignore it).
    """
    if svl_bits is not None:
        return validate_svl(svl_bits)
    t = get_target()
    if t.svl_bits is not None:
        return t.svl_bits
    if required:
        return target_svl(t, "an SME kernel")
    return _env_svl()
