"""A torch-free reader of ExecuTorch ETDump files (``.etdp``): what a real run profiled and recorded.

An ETDump is the flatbuffer ExecuTorch's ``ETDumpGen`` writes (schema ``devtools/etdump/etdump_schema_flatcc.fbs``,
file identifier ``ED00``, size-prefixed as flatcc writes it): per run, profile events (runtime steps such as
``Method::execute`` and ``DELEGATE_CALL``, and each XNNPACK operator by the name XNNPACK's profiling API gives
it, e.g. ``Fully Connected (NC, QP8, F32, QC8W) GEMM #1``), allocation events and debug events (intermediate
values). :func:`load_etdump` reads one with the same bounds-checked reader as the ``.pte`` reader: a hostile or
truncated file raises :class:`~kleidiref.pte.PteError` (a ``ValueError``), never anything else.

``kleidiref inspect --etdump run.etdp`` compares the XNNPACK operators a real device ran with the predicted ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..limits import check_bytes
from .flatbuffer import Buffer, PteError, Table

__all__ = ["AllocationEvent", "DebugEvent", "ETDump", "ProfileEvent", "RunData", "load_etdump"]

_IDENT = b"ED00"
#: Profile events ExecuTorch's runtime itself emits (``runtime/executor/method.cpp``, ``program.cpp``, the
#: delegate wrapper); every other named profile event inside a delegate call is a delegate's own event.
RUNTIME_EVENTS: frozenset[str] = frozenset(
    {"DELEGATE_CALL", "Method::execute", "Method::init", "Program::load_method", "Execute", "OPERATOR_CALL"}
)


@dataclass(frozen=True)
class ProfileEvent:
    """One timed event (``table ProfileEvent``); times in the runtime's ticks."""

    name: str | None
    chain_index: int
    instruction_id: int
    delegate_debug_id_int: int
    delegate_debug_id_str: str | None
    start_time: int
    end_time: int
    delegate_debug_metadata: bytes

    @property
    def label(self) -> str | None:
        """The event's name: ``name``, or for a delegate event its ``delegate_debug_id_str``."""
        return self.name if self.name is not None else self.delegate_debug_id_str

    @property
    def is_delegate_event(self) -> bool:
        """An event a delegate logged (XNNPACK logs one per operator), not one of the runtime's own."""
        return self.delegate_debug_id_int != -1 or (
            self.delegate_debug_id_str is not None and self.delegate_debug_id_str not in RUNTIME_EVENTS
        )


@dataclass(frozen=True)
class AllocationEvent:
    """``table AllocationEvent``."""

    allocator_id: int
    allocation_size: int


@dataclass(frozen=True)
class DebugEvent:
    """``table DebugEvent``: an intermediate value logged by the runtime; only where it was logged and its kind."""

    name: str | None
    chain_index: int
    instruction_id: int
    delegate_debug_id_int: int
    delegate_debug_id_str: str | None
    value_type: int  # ``enum ValueType`` (0 Null, 1 Int, 2 Bool, 3 Float, 4 Double, 5 Tensor, 6 TensorList, 7 String)


@dataclass(frozen=True)
class RunData:
    """One run (``table RunData``): its events in the order they were recorded."""

    name: str | None
    bundled_input_index: int
    allocators: tuple[str | None, ...]
    events: tuple[ProfileEvent | AllocationEvent | DebugEvent, ...]

    @property
    def profile_events(self) -> tuple[ProfileEvent, ...]:
        return tuple(e for e in self.events if isinstance(e, ProfileEvent))


@dataclass(frozen=True)
class ETDump:
    """A decoded ETDump: its version and runs."""

    version: int
    runs: tuple[RunData, ...]

    def operator_names(self, run: int | None = None) -> list[str]:
        """The delegate events' names of one run, in order: XNNPACK's operator names as it profiled them.

        ``run`` indexes :attr:`runs` (ETDumpGen writes a ``Default`` run for loading, then one ``Execute`` run
        per execution); None takes the first run with delegate events, i.e. the first execution.
        """
        if run is None:
            found = [names for r in self.runs if (names := _delegate_names(r))]
            return found[0] if found else []
        if not 0 <= run < len(self.runs):
            raise ValueError(f"the ETDump holds {len(self.runs)} run(s); run {run} does not exist")
        return _delegate_names(self.runs[run])


def _delegate_names(r: RunData) -> list[str]:
    return [e.label for e in r.profile_events if e.is_delegate_event and e.label is not None]


def _profile(t: Table) -> ProfileEvent:
    return ProfileEvent(
        name=t.string(0, "name"),
        chain_index=int(t.scalar(1, "i", "chain_index")),
        instruction_id=int(t.scalar(2, "i", "instruction_id", -1)),
        delegate_debug_id_int=int(t.scalar(3, "i", "delegate_debug_id_int", -1)),
        delegate_debug_id_str=t.string(4, "delegate_debug_id_str"),
        delegate_debug_metadata=bytes(t.ubytes(5, "delegate_debug_metadata")),
        start_time=int(t.scalar(6, "Q", "start_time")),
        end_time=int(t.scalar(7, "Q", "end_time")),
    )


def _debug(t: Table) -> DebugEvent:
    entry = t.table(2, "debug_entry")
    return DebugEvent(
        name=t.string(5, "name"),
        chain_index=int(t.scalar(0, "Q", "chain_index")),
        instruction_id=int(t.scalar(1, "i", "instruction_id", -1)),
        delegate_debug_id_int=int(t.scalar(3, "i", "delegate_debug_id_int", -1)),
        delegate_debug_id_str=t.string(4, "delegate_debug_id_str"),
        value_type=0 if entry is None else int(entry.scalar(0, "b", "val")),
    )


def _event(t: Table) -> ProfileEvent | AllocationEvent | DebugEvent:
    p = t.table(0, "profile_event")
    if p is not None:
        return _profile(p)
    a = t.table(1, "allocation_event")
    if a is not None:
        return AllocationEvent(int(a.scalar(0, "i", "allocator_id")), int(a.scalar(1, "Q", "allocation_size")))
    d = t.table(2, "debug_event")
    if d is not None:
        return _debug(d)
    raise PteError(f"{t.buf.name}: {t.path}: an Event with no profile, allocation or debug event")


def _run(t: Table) -> RunData:
    return RunData(
        name=t.string(0, "name"),
        bundled_input_index=int(t.scalar(1, "i", "bundled_input_index", -1)),
        allocators=tuple(a.string(0, "name") for a in t.tables(2, "allocators")),
        events=tuple(_event(e) for e in t.tables(3, "events")),
    )


def _unprefix(data: bytes, name: str) -> memoryview:
    """The flatbuffer inside ``data``: flatcc writes a ``u32`` size prefix before the root offset."""
    view = memoryview(data)
    if len(view) >= 12 and bytes(view[8:12]) == _IDENT:
        size = int.from_bytes(view[:4], "little")
        if size > len(view) - 4:
            raise PteError(f"{name}: the size prefix says {size} bytes, but only {len(view) - 4} follow (truncated)")
        return view[4 : 4 + size]
    return view


def load_etdump(src: str | Path | bytes | bytearray, max_bytes: int | None = None) -> ETDump:
    """Read an ETDump file (or its bytes); malformed input raises :class:`~kleidiref.pte.PteError`.

    The file's size is checked against the memory limit (:mod:`kleidiref.limits`, or ``max_bytes``) first.
    """
    if isinstance(src, (str, Path)):
        path = Path(src)
        check_bytes(path.stat().st_size, f"reading {path.name}", max_bytes)
        name, data = str(src), path.read_bytes()
    else:
        check_bytes(len(src), "an ETDump", max_bytes)
        name, data = "ETDump", bytes(src)
    root = Buffer(_unprefix(data, name), name).root((_IDENT,), "ETDump")
    return ETDump(int(root.scalar(0, "I", "version")), tuple(_run(r) for r in root.tables(1, "run_data")))


def is_etdump(data: bytes) -> bool:
    """Whether ``data`` starts like an ETDump (the ``ED00`` identifier, size-prefixed or not)."""
    return len(data) >= 8 and (bytes(data[4:8]) == _IDENT or bytes(data[8:12]) == _IDENT)
