"""A torch-free reader of ExecuTorch ``.pte`` programs and their XNNPACK delegate graphs.

``load(path_or_bytes)`` returns a :class:`Program`: execution plans with their values, non-delegated
operators and delegate calls; each XNNPACK delegate decoded into an :class:`XnnGraph` (values with
datatypes, dims, quantization and constant data as numpy arrays; nodes with every field).
:func:`runtime_shapes` gives each value's shape at run time; :func:`load_etdump` reads the ETDump of a
real run. Malformed input raises :class:`PteError` (a ``ValueError``). See docs/pte.md.
"""

from .etdump import ETDump, is_etdump, load_etdump
from .flatbuffer import PteError
from .program import (
    SCALAR_TYPES,
    XNNPACK_BACKEND_ID,
    Delegate,
    ExecutionPlan,
    ExtendedHeader,
    Instruction,
    Program,
    ProgramValue,
    load,
)
from .shapes import program_shapes, runtime_shapes
from .xnngraph import (
    DATATYPES,
    INVALID_ID,
    NODE_TYPES,
    QuantParams,
    XnnGraph,
    XnnHeader,
    XnnNode,
    XnnValue,
    unpack_int4,
)

__all__ = [
    "DATATYPES",
    "INVALID_ID",
    "NODE_TYPES",
    "SCALAR_TYPES",
    "XNNPACK_BACKEND_ID",
    "Delegate",
    "ETDump",
    "ExecutionPlan",
    "ExtendedHeader",
    "Instruction",
    "Program",
    "ProgramValue",
    "PteError",
    "QuantParams",
    "XnnGraph",
    "XnnHeader",
    "XnnNode",
    "XnnValue",
    "is_etdump",
    "load",
    "load_etdump",
    "program_shapes",
    "runtime_shapes",
    "unpack_int4",
]
