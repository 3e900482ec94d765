"""``kleidiref inspect``: which XNNPACK operator and kernel runs each node of a real ExecuTorch ``.pte``, and why.

:func:`inspect` reads a program with :mod:`kleidiref.pte` (torch-free), lists every node of its XNNPACK
delegates and the operators left to ExecuTorch's portable kernels, and for each GEMM-like node asks
:func:`kleidiref.dispatch.decide` what runs on each CPU asked for. The result (:class:`Inspection`) renders as a
side-by-side table or as the stable JSON object documented in docs/inspect.md.

CPU names (:data:`CPU_NAMES`): ``sme2``, ``sme`` (SME without SME2), ``neon-i8mm``, ``neon-dotprod`` (ARM64,
XNNPACK built with KleidiAI, as ExecuTorch builds it), ``x86-avx2`` (AVX2 + FMA3 + F16C, no AVX-512, no VNNI) and
``x86-avx512-vnni``, ``x86-avx512-fp16`` (a Sapphire Rapids Xeon as ExecuTorch 1.5.1's XNNPACK sees it: AVX512-FP16,
VNNI, no AMX); or a JSON file describing a CPU (docs/inspect.md). An x86 CPU's ``Target.x86_isa`` comes from its
XNNPACK arch flags (:func:`kleidiref.dispatch.hardware.x86_isa_of`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import pte
from .dispatch import CaseError, NodeRejected, decide, target_from_json
from .dispatch.decision import MICROKERNEL_NAMES, Decision
from .dispatch.hardware import X86_ARCH_BITS, X86_CPUS, prefers_qdu8, qdu8_operator, x86_isa_of, x86_level_flags
from .pte.nodes import GemmNode, gemm_nodes
from .pte.shapes import program_shapes
from .pte.xnngraph import XnnGraph, XnnNode
from .targets import Target

__all__ = [
    "CPU_NAMES",
    "GEMM_OPERATOR_PREFIXES",
    "CpuSpec",
    "Inspection",
    "NodeDecision",
    "NodeRecord",
    "compare_operator_names",
    "inspect",
    "observed_operator_names",
    "resolve_cpu",
]


@dataclass(frozen=True)
class CpuSpec:
    """A CPU as the dispatcher sees it: the :class:`Target`, plus XNNPACK's x86 arch flags on x86-64."""

    name: str
    target: Target
    x86_flags: frozenset[str] | None = None


def _arm(sme2: bool, sme: bool, i8mm: bool) -> Callable[[str, int | None], CpuSpec]:
    def make(name: str, svl: int | None) -> CpuSpec:
        return CpuSpec(name, Target(sme2=sme2, sme=sme, i8mm=i8mm, svl_bits=svl if sme else None, name=name))

    return make


def _x86(name: str, svl: int | None) -> CpuSpec:
    del svl  # no SVL on x86-64
    flags = X86_CPUS[name]
    t = Target("x86_64", False, False, False, False, False, False, name=name, x86_isa=x86_isa_of(flags))
    return CpuSpec(name, t, flags)


_CPUS: Mapping[str, Callable[[str, int | None], CpuSpec]] = {
    "sme2": _arm(True, True, True),
    "sme": _arm(False, True, True),
    "neon-i8mm": _arm(False, False, True),
    "neon-dotprod": _arm(False, False, False),
    "x86-avx2": _x86,
    "x86-avx512-vnni": _x86,
    "x86-avx512-fp16": _x86,
}
#: The CPU names ``--cpu`` accepts (besides a JSON file).
CPU_NAMES: tuple[str, ...] = tuple(_CPUS)


def _cpu_from_file(path: Path, svl: int | None) -> CpuSpec:
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--cpu {path}: cannot read a JSON CPU description: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"--cpu {path}: a CPU description must be a JSON object")
    obj = dict(obj)
    flags = obj.pop("x86_flags", None)
    obj.setdefault("name", path.stem)
    if svl is not None and obj.get("sme"):
        obj["svl_bits"] = svl
    try:
        t, _ = target_from_json(obj)
    except CaseError as exc:
        raise ValueError(f"--cpu {path}: {exc}") from None
    if flags is None:
        return CpuSpec(t.name, t, None if t.x86_isa is None else x86_level_flags(t.x86_isa))
    if not isinstance(flags, list) or any(f not in X86_ARCH_BITS for f in flags):
        raise ValueError(f"--cpu {path}: x86_flags must be a list of {', '.join(X86_ARCH_BITS)}")
    if t.x86_isa is None:
        raise ValueError(f"--cpu {path}: x86_flags on an arm64 CPU (XNNPACK's x86 arch flags need arch x86_64)")
    level = x86_isa_of(frozenset(flags))
    if "x86_isa" in obj and obj["x86_isa"] is not None and obj["x86_isa"] != level:
        raise ValueError(f"--cpu {path}: x86_isa {obj['x86_isa']!r} but the x86_flags reach {level!r}")
    return CpuSpec(t.name, t.replace(x86_isa=level), frozenset(flags))


def resolve_cpu(name: str, svl: int | None = None) -> CpuSpec:
    """A named CPU (:data:`CPU_NAMES`) or a ``.json`` CPU description; ``svl`` sets an SME CPU's SVL (default 512)."""
    if name in _CPUS:
        return _CPUS[name](name, svl if svl is not None else 512)
    if name.endswith(".json"):
        return _cpu_from_file(Path(name), svl)
    raise ValueError(f"unknown CPU {name!r}: use one of {', '.join(CPU_NAMES)} or a .json CPU description")


# ---- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeDecision:
    """What runs a GEMM-like node on one CPU; ``operator_name`` is None where XNNPACK refuses the node."""

    variant: str | None
    config: str | None
    kernel: str | None
    operator_name: str | None
    reasons: tuple[str, ...]
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "config": self.config,
            "kernel": self.kernel,
            "operator_name": self.operator_name,
            "reasons": list(self.reasons),
            "refused": self.refused,
        }


@dataclass(frozen=True)
class NodeRecord:
    """One node of an XNNPACK delegate; ``decisions`` (keyed by CPU name) only for GEMM-like nodes."""

    delegate_index: int
    node_index: int
    node_type: str
    debug_handle: int
    input_datatypes: tuple[str, ...]
    output_datatypes: tuple[str, ...]
    gemm_like: bool = False
    geometry: str | None = None
    quant: str | None = None
    group_size: int | None = None
    input_producer: str | None = None
    producer_input_datatype: str | None = None
    decisions: Mapping[str, NodeDecision] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "delegate_index": self.delegate_index,
            "node_index": self.node_index,
            "node_type": self.node_type,
            "debug_handle": self.debug_handle,
            "input_datatypes": list(self.input_datatypes),
            "output_datatypes": list(self.output_datatypes),
            "gemm_like": self.gemm_like,
        }
        if self.gemm_like:
            out |= {
                "geometry": self.geometry,
                "quant": self.quant,
                "group_size": self.group_size,
                "input_producer": self.input_producer,
                "producer_input_datatype": self.producer_input_datatype,
                "decisions": {k: v.to_json() for k, v in self.decisions.items()},
            }
        return out


@dataclass(frozen=True)
class Inspection:
    """A program's delegated nodes (with decisions per CPU) and its non-delegated operators."""

    program: str
    cpus: tuple[str, ...]
    nodes: tuple[NodeRecord, ...]
    non_delegated: tuple[str, ...]

    @property
    def gemm_nodes(self) -> tuple[NodeRecord, ...]:
        return tuple(n for n in self.nodes if n.gemm_like)

    def operator_names(self, cpu: str) -> list[str | None]:
        """The predicted ETDump names of the GEMM-like operators on ``cpu``, in execution order (None: refused)."""
        return [n.decisions[cpu].operator_name for n in self.gemm_nodes]

    def to_json(self) -> dict[str, Any]:
        """The stable ``kleidiref inspect --json`` object (docs/inspect.md)."""
        return {
            "program": self.program,
            "cpus": list(self.cpus),
            "nodes": [n.to_json() for n in self.nodes],
            "non_delegated": list(self.non_delegated),
        }

    def table(self, *, reasons: bool = True) -> str:
        """A terminal table: one row per delegated node, one operator column per CPU; then the reasons."""
        return _render(self, reasons)


# ---- building -----------------------------------------------------------------------------------


def _geometry(node: XnnNode, shapes: Sequence[Sequence[int]], g: GemmNode) -> str:
    f = node.fields
    n = g.node
    if n is None:
        return "-"
    x, w = n.input.shape, n.filter.shape
    if n.op == "fully_connected":
        nn = w[1] if "transpose_weights" in n.flags else w[0]
        return f"M={math.prod(x[:-1])} N={nn} K={x[-1]}"
    if n.op == "batch_matrix_multiply":
        nn = w[-2] if "transpose_b" in n.flags else w[-1]
        return f"B={math.prod(x[:-2])} M={x[-2]} N={nn} K={x[-1]}"
    c = n.convolution
    assert c is not None
    out = tuple(shapes[f["output_id"]])
    pads = ",".join(str(p) for p in c.padding)
    return (
        f"{'x'.join(map(str, x))}->{'x'.join(map(str, out))} k{c.kernel[0]}x{c.kernel[1]} "
        f"s{c.stride[0]}x{c.stride[1]} p{pads} g{c.groups}"
    )


def _quant(graph: XnnGraph, node: XnnNode) -> tuple[str | None, int | None]:
    fid = node.fields.get("filter_id", node.fields.get("input2_id"))
    if fid is None:
        return None, None
    q = graph.value(fid).quant
    if q is None:
        return None, None
    return q.kind, (q.group_size or None) if q.kind == "PerChannelGroupQuant" else None


def _refusal(message: str, reasons: Sequence[str]) -> NodeDecision:
    return NodeDecision(None, None, None, None, (*tuple(reasons), f"refused: {message}"), message)


def _qdu8(d: Decision, g: GemmNode, cpu: CpuSpec) -> tuple[str, str, str | None]:
    """(operator name, config, extra reason) after x86's qd8 -> qdu8 choice."""
    name = d.operator_name
    n = g.node
    if cpu.x86_flags is None or n is None or n.input.dtype != "qdint8":
        return name, d.config, None
    ok, why = prefers_qdu8(g.producer_input_datatype, n.op, n.filter.dtype, cpu.x86_flags)
    if not ok:
        return name, d.config, why
    cfg = d.config.replace("qd8_", "qdu8_", 1) if qdu8_operator(d) != d.operator else d.config
    return f"{qdu8_operator(d)} {MICROKERNEL_NAMES[d.microkernel]}", cfg, why


def decide_node(g: GemmNode, cpu: CpuSpec) -> NodeDecision:
    """The decision for one GEMM-like node on one CPU (refusals included)."""
    if g.node is None:
        return _refusal(g.unsupported or "not described", ())
    try:
        d = decide(g.node, cpu.target)
    except NodeRejected as exc:
        return _refusal(exc.message, exc.reasons)
    bad = d.unsupported
    if bad is not None:
        return NodeDecision(d.variant, d.config, d.kernel, None, (*d.reasons, bad), bad)
    name, cfg, why = _qdu8(d, g, cpu)
    reasons = d.reasons if why is None else (*d.reasons, why)
    return NodeDecision(d.variant, cfg, d.kernel, name, reasons)


def _dtypes(graph: XnnGraph, ids: Sequence[int]) -> tuple[str, ...]:
    return tuple(graph.value(i).datatype_name for i in ids)


def _records(program: pte.Program, cpus: Sequence[CpuSpec], plan: str) -> list[NodeRecord]:
    p = program.plan(plan)
    gemm = {(g.delegate_index, g.node_index): g for g in gemm_nodes(program, plan=plan)}
    out: list[NodeRecord] = []
    for k, shapes in sorted(program_shapes(program, None, plan).items()):
        graph = p.delegates[k].graph
        assert graph is not None
        for node in graph.nodes:
            ins, outs = _dtypes(graph, node.inputs), _dtypes(graph, node.outputs)
            base = NodeRecord(k, node.index, node.type, node.debug_handle, ins, outs)
            g = gemm.get((k, node.index))
            if g is None:
                out.append(base)
                continue
            kind, gs = _quant(graph, node)
            decisions = {c.name: decide_node(g, c) for c in cpus}
            out.append(
                NodeRecord(
                    k, node.index, node.type, node.debug_handle, ins, outs, True, _geometry(node, shapes, g),
                    kind, gs, g.input_producer, g.producer_input_datatype, decisions,
                )
            )  # fmt: skip
    return out


def inspect(
    path: str | Path | bytes,
    cpu: str | CpuSpec | Sequence[str | CpuSpec] = "sme2",
    *,
    svl: int | None = None,
    plan: str = "forward",
) -> Inspection:
    """Read a ``.pte`` (path or bytes) and decide every GEMM-like node on each CPU.

    ``cpu``: a name of :data:`CPU_NAMES`, a ``.json`` CPU description, a :class:`CpuSpec`, or a sequence of
    them; ``svl`` the SVL of SME CPUs (default 512). Raises :class:`kleidiref.pte.PteError` for a malformed file.
    """
    items = [cpu] if isinstance(cpu, str | CpuSpec) else list(cpu)
    specs = [c if isinstance(c, CpuSpec) else resolve_cpu(c, svl) for c in items]
    if len({c.name for c in specs}) != len(specs):
        raise ValueError("each --cpu must be named differently")
    program = pte.load(path)
    name = "<bytes>" if isinstance(path, bytes) else str(path)
    return Inspection(
        program=name,
        cpus=tuple(c.name for c in specs),
        nodes=tuple(_records(program, specs, plan)),
        non_delegated=program.plan(plan).non_delegated_ops,
    )


# ---- observed operator names --------------------------------------------------------------------

#: ETDump names of the GEMM-like XNNPACK operators (the ones :func:`inspect` predicts).
GEMM_OPERATOR_PREFIXES: tuple[str, ...] = (
    "Fully Connected ",
    "Convolution ",
    "Deconvolution ",
    "Batch Matrix Multiply ",
)
_SUFFIX = re.compile(r" #\d+$")


def observed_operator_names(obj: object) -> list[str]:
    """The GEMM-like operator names, in order and without `` #n``, of an observed list.

    ``obj``: a list of names, or an object with ``operator_names`` / ``x86_operator_names`` (a list), or the
    text of a file with one name per line, or a :class:`kleidiref.pte.ETDump` (its first execution).
    """
    names: object = obj
    if isinstance(obj, pte.ETDump):
        names = obj.operator_names()
    elif isinstance(obj, str):
        names = [ln.strip() for ln in obj.splitlines() if ln.strip()]
    elif isinstance(obj, Mapping):
        names = obj.get("operator_names", obj.get("x86_operator_names"))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("observed operator names must be a list of strings (or operator_names: [...])")
    return [_SUFFIX.sub("", n) for n in names if n.startswith(GEMM_OPERATOR_PREFIXES)]


def compare_operator_names(predicted: Sequence[str | None], observed: Sequence[str]) -> list[str]:
    """Every difference between predicted and observed GEMM-like operator names, node by node."""
    diffs = []
    for i in range(max(len(predicted), len(observed))):
        p = predicted[i] if i < len(predicted) else "(no node)"
        o = observed[i] if i < len(observed) else "(not observed)"
        if p != o:
            diffs.append(f"GEMM-like operator {i + 1}: predicted {p or '(refused)'}, observed {o}")
    return diffs


# ---- rendering ----------------------------------------------------------------------------------


def _row(n: NodeRecord, cpus: Sequence[str]) -> list[str]:
    dts = f"{','.join(n.input_datatypes)}->{','.join(n.output_datatypes)}"
    q = "" if n.quant is None else n.quant + ("" if n.group_size is None else f"/{n.group_size}")
    cols = [f"{n.delegate_index}.{n.node_index}", n.node_type, str(n.debug_handle), dts, n.geometry or "", q]
    for c in cpus:
        d = n.decisions.get(c)
        cols.append("" if d is None else d.operator_name or "REFUSED")
    return cols


def _grid(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _render(ins: Inspection, reasons: bool) -> str:
    head = ["node", "type", "debug", "datatypes", "geometry", "quant", *ins.cpus]
    lines = [f"program: {ins.program}", *_grid([head] + [_row(n, ins.cpus) for n in ins.nodes])]
    lines.append("non-delegated (ExecuTorch portable kernels): " + (", ".join(ins.non_delegated) or "none"))
    for n in ins.gemm_nodes if reasons else ():
        src = f" <- {n.input_producer}({n.producer_input_datatype})" if n.producer_input_datatype else ""
        lines.append(f"\n{n.delegate_index}.{n.node_index} {n.node_type} (debug handle {n.debug_handle}){src}")
        for c, d in n.decisions.items():
            what = d.operator_name or f"REFUSED: {d.refused}"
            lines.append(f"  [{c}] {what}")
            if d.config is not None:
                lines.append(f"    config {d.config}, variant {d.variant or 'none'}, kernel {d.kernel}")
            lines += [f"    - {r}" for r in d.reasons]
    return "\n".join(lines)
