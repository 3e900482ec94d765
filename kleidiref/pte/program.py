"""The ExecuTorch program container: extended header, ``Program`` flatbuffer, segments, named data.

Mirrors ExecuTorch's ``schema/program.fbs`` (file identifier ``ET12``) and the extended header written by
``exir/_serialize/_program.py`` (``_ExtendedHeader``) and read by ``runtime/executor/program.cpp`` /
``extended_header.cpp``. Delegates with id ``XnnpackBackend`` are decoded with :mod:`.xnngraph`; other
delegates keep their raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..limits import check_bytes
from .flatbuffer import Buffer, PteError, Table
from .xnngraph import XnnGraph, parse_xnn_blob

__all__ = [
    "SCALAR_TYPES",
    "XNNPACK_BACKEND_ID",
    "Delegate",
    "ExecutionPlan",
    "ExtendedHeader",
    "Instruction",
    "Program",
    "ProgramValue",
    "load",
]

XNNPACK_BACKEND_ID = "XnnpackBackend"
_PROGRAM_IDENTIFIERS = (b"ET12",)
_EH_MAGIC = b"eh00"
_EH_MIN_LENGTH = 24

#: ``executorch_flatbuffer.ScalarType`` (``schema/scalar_type.fbs``), value -> name.
SCALAR_TYPES: dict[int, str] = {
    0: "BYTE",
    1: "CHAR",
    2: "SHORT",
    3: "INT",
    4: "LONG",
    5: "HALF",
    6: "FLOAT",
    7: "DOUBLE",
    11: "BOOL",
    12: "QINT8",
    13: "QUINT8",
    14: "QINT32",
    15: "BFLOAT16",
    16: "QUINT4X2",
    17: "QUINT2X4",
    22: "BITS16",
    23: "FLOAT8E5M2",
    24: "FLOAT8E4M3FN",
    25: "FLOAT8E5M2FNUZ",
    26: "FLOAT8E4M3FNUZ",
    27: "UINT16",
    28: "UINT32",
    29: "UINT64",
}

# ``KernelTypes`` union members (union type = position + 1) and ``InstructionArguments``.
_KERNEL_TYPES = (
    "Null",
    "Int",
    "Bool",
    "Double",
    "Tensor",
    "String",
    "IntList",
    "DoubleList",
    "BoolList",
    "TensorList",
    "OptionalTensorList",
)
_INSTRUCTIONS = ("KernelCall", "DelegateCall", "MoveCall", "JumpFalseCall", "FreeCall")


@dataclass(frozen=True)
class ExtendedHeader:
    """The ``eh00`` header after the flatbuffer's first 8 bytes (absent in very old files)."""

    length: int
    program_size: int
    segment_base_offset: int
    segment_data_size: int | None


@dataclass(frozen=True)
class ProgramValue:
    """One ``EValue`` of an execution plan: its ``KernelTypes`` member and its contents.

    For a ``Tensor``: ``scalar_type`` (``SCALAR_TYPES``), ``sizes`` and ``dim_order``; for scalars and
    lists, ``value``.
    """

    kind: str
    value: Any = None
    scalar_type: int | None = None
    sizes: tuple[int, ...] = ()
    dim_order: tuple[int, ...] = ()

    @property
    def scalar_type_name(self) -> str | None:
        if self.scalar_type is None:
            return None
        return SCALAR_TYPES.get(self.scalar_type, f"unknown({self.scalar_type})")


@dataclass(frozen=True)
class Instruction:
    """One instruction of a chain: ``kind`` is the ``InstructionArguments`` member.

    ``index`` is the operator index (``KernelCall``), the delegate index (``DelegateCall``), or the
    first integer field of the other kinds; ``args`` are EValue indices (for ``MoveCall``:
    ``(move_from, move_to)``).
    """

    kind: str
    index: int
    args: tuple[int, ...] = ()
    operator: str | None = None


@dataclass(frozen=True)
class Delegate:
    """A ``BackendDelegate``: its id, where its processed bytes live, and (for XNNPACK) the graph."""

    index: int
    id: str
    location: str  # "inline" (backend_delegate_data) or "segment"
    data_index: int
    size: int
    compile_specs: tuple[tuple[str, bytes], ...]
    graph: XnnGraph | None


@dataclass(frozen=True)
class ExecutionPlan:
    """One method (``forward``...): values, inputs/outputs (EValue indices), operators, instructions."""

    name: str
    values: tuple[ProgramValue, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[str, ...]
    instructions: tuple[Instruction, ...]
    delegates: tuple[Delegate, ...]

    @property
    def non_delegated_ops(self) -> tuple[str, ...]:
        """Operators run by ExecuTorch's kernels (not a delegate), in execution order (``aten::add.out``)."""
        return tuple(i.operator or "" for i in self.instructions if i.kind == "KernelCall")

    def int_list(self, index: int) -> tuple[int, ...]:
        """The integers of the ``IntList`` EValue ``index``: its items are indices of boxed ``Int`` EValues
        (``schema/program.fbs``; ``BoxedEvalueList`` in ``runtime/core/evalue.h``), resolved here."""
        v = self._evalue(index, "IntList")
        out = []
        for item in v.value:
            iv = self._evalue(int(item), "Int")
            out.append(int(iv.value))
        return tuple(out)

    def scalar(self, index: int, kind: str) -> Any:
        """The value of the ``Int`` / ``Bool`` / ``Double`` EValue ``index`` (a :class:`PteError` otherwise)."""
        return self._evalue(index, kind).value

    def _evalue(self, index: int, kind: str) -> ProgramValue:
        if not 0 <= index < len(self.values):
            raise PteError(f"plan {self.name!r}: EValue index {index} of {len(self.values)}")
        v = self.values[index]
        if v.kind != kind:
            raise PteError(f"plan {self.name!r}: EValue {index} is {v.kind}, expected {kind}")
        return v

    @property
    def delegate_calls(self) -> tuple[Delegate, ...]:
        """The delegates in the order the instructions call them."""
        return tuple(self.delegates[i.index] for i in self.instructions if i.kind == "DelegateCall")

    @property
    def input_values(self) -> tuple[ProgramValue, ...]:
        return tuple(self.values[i] for i in self.inputs)

    @property
    def output_values(self) -> tuple[ProgramValue, ...]:
        return tuple(self.values[i] for i in self.outputs)


@dataclass(frozen=True)
class Program:
    """A decoded ``.pte``: header, execution plans, segments (absolute ``(offset, size)``), named data keys."""

    version: int
    header: ExtendedHeader | None
    plans: tuple[ExecutionPlan, ...]
    segments: tuple[tuple[int, int], ...]
    named_data: tuple[tuple[str, int], ...]

    def plan(self, name: str = "forward") -> ExecutionPlan:
        """The execution plan called ``name`` (the only one if there is just one); a :class:`PteError` if none."""
        for p in self.plans:
            if p.name == name:
                return p
        if len(self.plans) == 1:
            return self.plans[0]
        raise PteError(f"the program has no execution plan {name!r} (it has {[p.name for p in self.plans]})")

    @property
    def delegates(self) -> tuple[Delegate, ...]:
        return tuple(d for p in self.plans for d in p.delegates)

    @property
    def xnn_graphs(self) -> tuple[XnnGraph, ...]:
        """The XNNPACK graphs of every plan, in delegate order."""
        return tuple(d.graph for d in self.delegates if d.graph is not None)

    @property
    def non_delegated_ops(self) -> tuple[str, ...]:
        return tuple(op for p in self.plans for op in p.non_delegated_ops)


def _extended_header(buf: Buffer) -> ExtendedHeader | None:
    if buf.size < 16 or bytes(buf.data[8:12]) != _EH_MAGIC:
        return None
    length = int(buf.scalar("I", 12, "extended header length"))
    if length < _EH_MIN_LENGTH:
        raise PteError(f"{buf.name}: extended header length {length} is below the minimum {_EH_MIN_LENGTH}")
    buf.check(8, length, "extended header")
    seg_size = int(buf.scalar("Q", 32, "extended header segment data size")) if length >= 32 else None
    hdr = ExtendedHeader(
        length,
        int(buf.scalar("Q", 16, "extended header program size")),
        int(buf.scalar("Q", 24, "extended header segment base offset")),
        seg_size,
    )
    if hdr.program_size > buf.size or hdr.program_size < 8 + length:
        raise PteError(f"{buf.name}: extended header program size {hdr.program_size} does not fit the file")
    if hdr.segment_base_offset and not hdr.program_size <= hdr.segment_base_offset <= buf.size:
        raise PteError(
            f"{buf.name}: segment base offset {hdr.segment_base_offset} lies outside the file "
            f"(program size {hdr.program_size}, file {buf.size} bytes)"
        )
    return hdr


def _value(t: Table) -> ProgramValue:
    kind, body = t.union(0, "val")
    if not 1 <= kind <= len(_KERNEL_TYPES):
        raise PteError(f"{t.buf.name}: {t.path}: unknown KernelTypes union type {kind}")
    name = _KERNEL_TYPES[kind - 1]
    if body is None or name == "Null":
        return ProgramValue(name)
    if name == "Tensor":
        return ProgramValue(
            name,
            scalar_type=int(body.scalar(0, "b", "scalar_type")),
            sizes=body.ints(2, "<i4", "sizes"),
            dim_order=body.ints(3, "u1", "dim_order"),
        )
    fmt = {"Int": "q", "Bool": "?", "Double": "d"}.get(name)
    if fmt is not None:
        return ProgramValue(name, value=body.scalar(0, fmt, name.lower() + "_val"))
    if name == "String":
        return ProgramValue(name, value=body.string(0, "string_val"))
    dtype = {"IntList": "<i8", "DoubleList": "<f8", "BoolList": "u1"}.get(name, "<i4")
    return ProgramValue(name, value=tuple(v.item() for v in body.scalars(0, dtype, "items")))


def _instruction(t: Table, operators: tuple[str, ...]) -> Instruction:
    kind, body = t.union(0, "instr_args")
    if not 1 <= kind <= len(_INSTRUCTIONS) or body is None:
        raise PteError(f"{t.buf.name}: {t.path}: unknown or empty InstructionArguments union type {kind}")
    name = _INSTRUCTIONS[kind - 1]
    first = int(body.scalar(0, "i", "index"))
    if name in ("KernelCall", "DelegateCall"):
        op = None
        if name == "KernelCall":
            if not 0 <= first < len(operators):
                raise PteError(f"{t.buf.name}: {t.path}: op_index {first} out of range ({len(operators)} operators)")
            op = operators[first]
        return Instruction(name, first, body.ints(1, "<i4", "args"), op)
    if name == "FreeCall":
        return Instruction(name, first)
    return Instruction(name, first, (first, int(body.scalar(1, "i", "second"))))


class _Loader:
    """Holds the file while its plans are decoded (segments and named data are shared by all plans)."""

    def __init__(self, data: memoryview, name: str, max_bytes: int | None) -> None:
        self.file = Buffer(data, name)
        self.max_bytes = max_bytes
        self.header = _extended_header(self.file)
        size = self.header.program_size if self.header else self.file.size
        self.root = Buffer(data[:size], name).root(_PROGRAM_IDENTIFIERS, "Program")
        base = self.header.segment_base_offset if self.header else 0
        self.segments: list[tuple[int, int]] = []
        for i, s in enumerate(self.root.tables(4, "segments")):
            off, n = base + int(s.scalar(0, "Q", "offset")), int(s.scalar(1, "Q", "size"))
            self.file.check(off, n, f"Program.segments[{i}]")
            self.segments.append((off, n))
        self.named: dict[str, int] = {}
        for i, nd in enumerate(self.root.tables(7, "named_data")):
            seg = int(nd.scalar(1, "I", "segment_index"))
            if seg >= len(self.segments):
                raise PteError(f"{name}: Program.named_data[{i}] names segment {seg} of {len(self.segments)}")
            self.named[nd.string(0, "key") or ""] = seg
        self.inline = self.root.tables(3, "backend_delegate_data")

    def segment(self, index: int, what: str) -> memoryview:
        if not 0 <= index < len(self.segments):
            raise PteError(f"{self.file.name}: {what}: segment index {index} out of range ({len(self.segments)})")
        off, n = self.segments[index]
        return self.file.data[off : off + n]

    def named_data(self, key: str) -> memoryview:
        if key not in self.named:
            raise PteError(f"{self.file.name}: named data key {key!r} is not in Program.named_data")
        return self.segment(self.named[key], f"named data {key!r}")

    def delegate(self, t: Table, index: int) -> Delegate:
        ident = t.string(0, "id") or ""
        ref = t.table(1, "processed")
        if ref is None:
            raise PteError(f"{self.file.name}: {t.path}: delegate {ident!r} without processed data")
        loc, di = int(ref.scalar(0, "b", "location")), int(ref.scalar(1, "I", "index"))
        if loc == 0:
            if not 0 <= di < len(self.inline):
                raise PteError(f"{self.file.name}: {ref.path}: inline data index {di} of {len(self.inline)}")
            blob = self.inline[di].ubytes(0, "data")
        elif loc == 1:
            blob = self.segment(di, ref.path)
        else:
            raise PteError(f"{self.file.name}: {ref.path}: unknown DataLocation {loc}")
        specs = tuple((c.string(0, "key") or "", bytes(c.ubytes(1, "value"))) for c in t.tables(2, "compile_specs"))
        graph = None
        if ident == XNNPACK_BACKEND_ID:
            graph = parse_xnn_blob(blob, self.named_data, f"{self.file.name}: {t.path}", self.max_bytes)
        return Delegate(index, ident, ("inline", "segment")[loc], di, len(blob), specs, graph)

    def plan(self, t: Table) -> ExecutionPlan:
        values = tuple(_value(v) for v in t.tables(2, "values"))
        ops = tuple(_operator_name(o) for o in t.tables(6, "operators"))
        instrs = tuple(_instruction(i, ops) for chain in t.tables(5, "chains") for i in chain.tables(2, "instructions"))
        delegates = tuple(self.delegate(d, i) for i, d in enumerate(t.tables(7, "delegates")))
        inputs, outputs = t.ints(3, "<i4", "inputs"), t.ints(4, "<i4", "outputs")
        for i in inputs + outputs:
            if not 0 <= i < len(values):
                raise PteError(f"{self.file.name}: {t.path}: input/output value index {i} of {len(values)}")
        for ins in instrs:
            if ins.kind == "DelegateCall" and not 0 <= ins.index < len(delegates):
                raise PteError(f"{self.file.name}: {t.path}: delegate call {ins.index} of {len(delegates)} delegates")
        return ExecutionPlan(t.string(0, "name") or "", values, inputs, outputs, ops, instrs, delegates)


def _operator_name(t: Table) -> str:
    name, overload = t.string(0, "name") or "", t.string(1, "overload") or ""
    return f"{name}.{overload}" if overload else name


def load(source: str | Path | bytes | bytearray | memoryview, max_bytes: int | None = None) -> Program:
    """Read an ExecuTorch ``.pte`` program from a path or its bytes.

    Raises :class:`~kleidiref.pte.PteError` (a ``ValueError``) naming what is wrong for a truncated,
    malformed or unknown-version file; the file's size is checked against :mod:`kleidiref.limits` first.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        check_bytes(path.stat().st_size, f"reading {path.name}", max_bytes)
        data: bytes | bytearray | memoryview = path.read_bytes()
        name = path.name
    else:
        data, name = source, "program"
        check_bytes(len(data), "a .pte program", max_bytes)
    loader = _Loader(memoryview(data).cast("B"), name, max_bytes)
    plans = tuple(loader.plan(p) for p in loader.root.tables(1, "execution_plan"))
    return Program(
        version=int(loader.root.scalar(0, "I", "version")),
        header=loader.header,
        plans=plans,
        segments=tuple(loader.segments),
        named_data=tuple(loader.named.items()),
    )
