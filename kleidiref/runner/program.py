"""The program runner: :class:`Runner` reads a program once and runs its plan on inputs repeatedly.

Pack once: each GEMM-shaped node (:data:`~kleidiref.runner.nodes.PREPARERS`) is prepared on its first run (the
dispatch decision taken and the weights packed, by :mod:`kleidiref.ops`' prepared forms) and the prepared node
is kept by the :class:`Runner` for every later run. On first use rather than at construction because the
decision depends on the activation's shape and dtype, which are known for sure only when it arrives (the
stored dims of a ``qdint8`` value after a transpose are not its shape; shapes follow from the inputs), and a
program whose inputs change shape gets one preparation per shape. The cache belongs to the instance, never
to the module: two runners share nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import pte
from ..inspection import CPU_NAMES as CPU_NAMES_INSPECT
from ..inspection import resolve_cpu
from ..targets import Target
from .nodes import HANDLERS, PREPARERS, SUPPORTED_NODE_TYPES
from .nodes.common import Dynamic, NodeRun
from .portable import SUPPORTED_PORTABLE_OPS, run_kernel_call, unsupported_portable_ops

__all__ = ["CPU_NAMES", "NodeTrace", "RunResult", "Runner", "cpu_target", "read_inputs", "run"]

#: The CPU names ``run`` accepts (``kleidiref inspect``'s table, :func:`kleidiref.inspection.resolve_cpu`).
CPU_NAMES: tuple[str, ...] = CPU_NAMES_INSPECT


def cpu_target(cpu: str | Target, svl: int | None = None) -> Target:
    """The :class:`Target` of a named CPU (or a ``.json`` CPU description); ``svl`` sets an SME CPU's SVL.

    Note: the x86 arch flags of inspect's CPU descriptions (qdu8 or not) only change operator names: XNNPACK's
    qdu8 path adds 128 to the codes and to the zero point, which leaves every product sum unchanged.
    """
    if isinstance(cpu, Target):
        return cpu if svl is None or not cpu.has_sme else cpu.replace(svl_bits=svl)
    return resolve_cpu(cpu, svl).target


@dataclass(frozen=True)
class NodeTrace:
    """One executed node: where it is, what ran, its output's shape and dtype, how long it took.

    A non-delegated operator (an ExecuTorch portable kernel) has ``delegate = -1``, ``index`` its instruction's
    position in the plan and ``node_type`` the operator's name.

    ``output`` is the node's output value when the run was asked to keep it (``Runner.run(...,
    keep_node_outputs=True)``); for a ``Convert`` to ``qdint8`` it is the float value its consumer quantizes.
    """

    delegate: int
    index: int
    node_type: str
    emulation: str
    shape: tuple[int, ...]
    dtype: str
    seconds: float = field(default=0.0, compare=False)
    output: NDArray[Any] | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        return f"[{self.delegate}:{self.index}] {self.node_type}: {self.emulation} -> {self.dtype}{list(self.shape)}"


@dataclass(frozen=True)
class RunResult:
    """The program's outputs (plan order) and, per node, what ran."""

    outputs: tuple[NDArray[Any], ...]
    trace: tuple[NodeTrace, ...]


def _signature(x: Any) -> tuple[tuple[int, ...], str, bool]:
    """What a prepared node depends on in one of its inputs: shape, dtype, dynamically quantized or not."""
    v = x.x if isinstance(x, Dynamic) else np.asarray(x)
    return tuple(v.shape), str(v.dtype), isinstance(x, Dynamic)


class Runner:
    """A loaded program, run on inputs as one CPU would: ``Runner(path, cpu="sme2", svl=512)(inputs)``.

    The program is read once, at construction; each GEMM-shaped node's weights are packed once, on its first
    run, and reused by every later run (``prepared_nodes`` counts them). A Runner may be called from several
    threads: a run keeps its values to itself, and the prepared nodes are immutable once made; a lock makes
    each node prepared exactly once (a second thread needing it waits for the first).
    """

    def __init__(
        self,
        program: str | Path | pte.Program,
        cpu: str | Target = "sme2",
        svl: int | None = None,
        plan: str = "forward",
    ) -> None:
        self.program = program if isinstance(program, pte.Program) else pte.load(program)
        self.plan = self.program.plan(plan)
        self.target = cpu_target(cpu, svl)
        self._check_program()
        #: (delegate, node, input signatures) -> the prepared node.
        self._prepared: dict[tuple[Any, ...], NodeRun] = {}
        self._lock = threading.Lock()

    @property
    def prepared_nodes(self) -> int:
        """How many prepared nodes (weights packed) this runner keeps."""
        return len(self._prepared)

    def _check_program(self) -> None:
        """Refuse, before any run, what the runner does not emulate."""
        ops = unsupported_portable_ops(self.plan)
        if ops:
            raise NotImplementedError(
                f"non-delegated operators {ops} are not emulated (the runner runs {', '.join(SUPPORTED_PORTABLE_OPS)})"
            )
        for ins in self.plan.instructions:
            if ins.kind not in ("DelegateCall", "KernelCall", "FreeCall"):
                raise NotImplementedError(f"instruction {ins.kind} is not supported (only delegate and kernel calls)")
        for d in self.plan.delegates:
            if d.graph is None:
                raise NotImplementedError(f"delegate {d.index} ({d.id}) is not an XNNPACK delegate")
            for node in d.graph.nodes:
                if node.type not in SUPPORTED_NODE_TYPES:
                    raise NotImplementedError(
                        f"{node.type} (delegate {d.index}, node {node.index}) is not emulated yet; "
                        f"the runner emulates {', '.join(SUPPORTED_NODE_TYPES)}"
                    )

    def __call__(self, inputs: Sequence[NDArray[Any]]) -> tuple[NDArray[Any], ...]:
        return self.run(inputs).outputs

    def run(self, inputs: Sequence[NDArray[Any]], *, keep_node_outputs: bool = False) -> RunResult:
        """Run the plan on ``inputs`` (plan input order); outputs in plan output order.

        ``keep_node_outputs`` keeps every node's output in its :class:`NodeTrace` (memory: all intermediates).
        """
        if len(inputs) != len(self.plan.inputs):
            raise ValueError(f"the program takes {len(self.plan.inputs)} inputs, got {len(inputs)}")
        env: dict[int, NDArray[Any]] = {i: np.asarray(x) for i, x in zip(self.plan.inputs, inputs, strict=True)}
        trace: list[NodeTrace] = []
        for pos, ins in enumerate(self.plan.instructions):
            if ins.kind == "DelegateCall":
                trace.extend(self._delegate(self.plan.delegates[ins.index], ins.args, env, keep_node_outputs))
            elif ins.kind == "KernelCall":
                trace.append(self._kernel_call(pos, ins, env, keep_node_outputs))
        missing = [i for i in self.plan.outputs if i not in env]
        if missing:
            raise ValueError(f"plan outputs {missing} were never written")
        return RunResult(tuple(env[i] for i in self.plan.outputs), tuple(trace))

    def _kernel_call(self, pos: int, ins: pte.Instruction, env: dict[int, NDArray[Any]], keep: bool) -> NodeTrace:
        """A non-delegated operator: traced with ``delegate = -1`` and its instruction's position as ``index``."""
        t0 = time.perf_counter()
        how = run_kernel_call(self.plan, ins, env, x86=self.target.arch == "x86_64")
        out = env[ins.args[-1]]
        dt = time.perf_counter() - t0
        return NodeTrace(-1, pos, ins.operator or "", how, tuple(out.shape), str(out.dtype), dt, out if keep else None)

    def _delegate(
        self, d: pte.Delegate, args: Sequence[int], env: dict[int, NDArray[Any]], keep: bool
    ) -> list[NodeTrace]:
        graph = d.graph
        assert graph is not None
        n_in = len(graph.input_ids)
        # The XNNPACK executor binds the call's arguments to the graph's inputs then its outputs, in order.
        vals: dict[int, Any] = {v.id: v.data for v in graph.values if v.is_constant}
        for vid, arg in zip(graph.input_ids, args[:n_in], strict=True):
            vals[vid] = env[arg]
        trace = []
        for node in graph.nodes:
            t0 = time.perf_counter()
            out, how = self._node(d.index, graph, node, vals)
            dt = time.perf_counter() - t0
            vals[node.outputs[0]] = out
            shown = out.x if isinstance(out, Dynamic) else out
            trace.append(
                NodeTrace(
                    d.index,
                    node.index,
                    node.type,
                    how,
                    tuple(shown.shape),
                    str(shown.dtype),
                    dt,
                    shown if keep else None,
                )
            )
        for vid, arg in zip(graph.output_ids, args[n_in:], strict=True):
            out = vals[vid]
            if isinstance(out, Dynamic):
                raise NotImplementedError("a dynamically quantized (qdint8) delegate output is not supported")
            env[arg] = out
        return trace

    def _node(self, delegate: int, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
        preparer = PREPARERS.get(node.type)
        if preparer is None:
            return HANDLERS[node.type](self.target, graph, node, vals)
        key = (delegate, node.index, tuple(_signature(vals[i]) for i in node.inputs if not graph.value(i).is_constant))
        prepared = self._prepared.get(key)
        if prepared is None:
            with self._lock:
                prepared = self._prepared.get(key)
                if prepared is None:
                    prepared = preparer(self.target, graph, node, vals)
                    self._prepared[key] = prepared
        return prepared(vals)


def run(
    path: str | Path | pte.Program,
    inputs: Sequence[NDArray[Any]],
    cpu: str | Target = "sme2",
    svl: int | None = None,
) -> tuple[NDArray[Any], ...]:
    """The outputs the program gives on ``cpu`` (one-shot :class:`Runner`)."""
    return Runner(path, cpu, svl)(inputs)


def read_inputs(path: str | Path) -> list[NDArray[Any]]:
    """A program's inputs from an ``.npz``: ``input_0``, ``input_1``, ... in order (as a ``MODEL.io.npz`` holds
    them)."""
    with np.load(path) as z:
        n = sum(1 for k in z.files if k.startswith("input_"))
        return [z[f"input_{i}"] for i in range(n)]
