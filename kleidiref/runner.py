"""``kleidiref run``: execute the XNNPACK delegates of a real ExecuTorch ``.pte`` as a given CPU would.

:class:`Runner` reads a program once (weights and quantization parameters decoded by :mod:`kleidiref.pte`)
and runs it on inputs repeatedly; :func:`run` is the one-shot form. Each XNNPACK delegate runs node by node
in the graph's order (XNNPACK's execution order), each node through what XNNPACK runs on the CPU:

* ``XNNFullyConnected``, ``XNNConv2d``, ``XNNBatchMatrixMultiply``: :mod:`kleidiref.ops` (the dispatcher's
  decision, then the KleidiAI variant or the emulated generic kernel), with the node's stored weights,
  bias, quantization and output clamp.
* ``XNNStaticTranspose``: a copy in the permuted order (``xnn_x32_transposec`` / ``x16`` / ``x8``,
  ``src/operators/transpose-nd.c``): exact.
* ``XNNConvert`` to ``qdint8`` (dynamic per-token quantization): deferred to the consumer. XNNPACK's
  packed-LHS pass (``src/subgraph.c`` ``xnn_subgraph_optimize_packed_lhs``) turns the convert into the
  KleidiAI LHS packer (``qp8``) when the consumer's config packs its LHS, and runs ``xnn_f32_qd8`` /
  ``xnn_f16_qd8`` (or ``qdu8`` on x86) otherwise; :mod:`kleidiref.ops` (``dynamic=True``) quantizes the
  activation exactly as the decision it takes for the consumer says, so the runner hands it the float values.
* ``XNNConvert`` ``fp32 -> qint8`` (``xnn_f32_qs8_vcvt``) and ``qint8 -> fp32`` (``xnn_qs8_f32_vcvt``):
  :func:`kleidiref.quant.quantize_qai8` / :func:`kleidiref.quant.dequantize_qai8`.

* ``XNNDepthwiseConv2d`` with qint8 input: the generic qs8 dwconv kernel through :mod:`kleidiref.ops`.

Anything else (float ``XNNDepthwiseConv2d``, ``XNNConvTranspose2d``, fp16 <-> fp32 converts, non-delegated
operators) raises :class:`NotImplementedError` naming it: never an approximation. See docs/run.md.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import pte
from .dispatch.hardware import unsupported_config
from .inspection import CPU_NAMES as CPU_NAMES_INSPECT
from .inspection import resolve_cpu
from .ops import OpResult, QuantParams, batch_matrix_multiply, convolution_2d, fully_connected
from .quant import dequantize_qai8, quantize_qai8_vcvt
from .targets import Target
from .testing import ulp_distance as _elementwise_ulp

__all__ = [
    "CPU_NAMES",
    "SUPPORTED_NODE_TYPES",
    "NodeTrace",
    "RefusedByXnnpack",
    "RunResult",
    "Runner",
    "add_parser",
    "cli_main",
    "cpu_target",
    "max_ulp_distance",
    "run",
]

#: XNNGraph node types the runner executes.
SUPPORTED_NODE_TYPES: tuple[str, ...] = (
    "XNNFullyConnected",
    "XNNConv2d",
    "XNNBatchMatrixMultiply",
    "XNNStaticTranspose",
    "XNNConvert",
    "XNNDepthwiseConv2d",
)
_FLAG_TRANSPOSE = 1  # XNN_FLAG_TRANSPOSE_WEIGHTS (FC) / XNN_FLAG_TRANSPOSE_B (BMM)
_INT4 = ("qcint4", "qbint4")


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


class RefusedByXnnpack(RuntimeError):
    """XNNPACK itself fails on this CPU (the message gives the status and why); the program does not run."""


def _check_supported(t: Target, r: OpResult, node: pte.XnnNode) -> None:
    why = unsupported_config(r.decision, t.arch != "x86_64")
    if why is not None:
        raise RefusedByXnnpack(f"{node.type} (node {node.index}): {why}")


@dataclass(frozen=True)
class _Dynamic:
    """A float activation an ``XNNConvert`` marked for dynamic quantization (done by its GEMM consumer)."""

    x: NDArray[Any]


@dataclass(frozen=True)
class NodeTrace:
    """One executed node: where it is, what ran, its output."""

    delegate: int
    index: int
    node_type: str
    emulation: str
    shape: tuple[int, ...]
    dtype: str

    def describe(self) -> str:
        return f"[{self.delegate}:{self.index}] {self.node_type}: {self.emulation} -> {self.dtype}{list(self.shape)}"


@dataclass(frozen=True)
class RunResult:
    """The program's outputs (plan order) and, per node, what ran."""

    outputs: tuple[NDArray[Any], ...]
    trace: tuple[NodeTrace, ...]


def _quant_params(v: pte.XnnValue) -> QuantParams | None:
    """A stored value's quantization as :class:`kleidiref.ops.QuantParams`."""
    q = v.quant
    if q is None or q.kind == "PerTokenDynamicQuant" or q.scale is None:
        return None
    bits = 4 if v.datatype_name in _INT4 else 8
    zp = 8 if bits == 4 else q.zero_point
    if q.kind == "PerChannelGroupQuant":
        scale = np.ascontiguousarray(q.scale).view(np.uint16)  # bf16 bits, [N, K / group]
        return QuantParams(scale, zp, block_size=q.group_size, bits=bits)
    s = np.asarray(q.scale, dtype=np.float32)
    return QuantParams(float(s) if s.ndim == 0 else s.reshape(-1), zp, bits=bits)


def _clamp(node: pte.XnnNode) -> dict[str, Any]:
    lo, hi = node.output_min_max if node.output_min_max is not None else (-np.inf, np.inf)
    return {"output_min": float(lo), "output_max": float(hi)}


class Runner:
    """A loaded program, run on inputs as one CPU would: ``Runner(path, cpu="sme2", svl=512)(inputs)``."""

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

    def _check_program(self) -> None:
        """Refuse, before any run, what the runner does not emulate."""
        ops = self.plan.non_delegated_ops
        if ops:
            raise NotImplementedError(
                f"non-delegated operators {sorted(set(ops))}: none is supported yet (only XNNPACK delegates run)"
            )
        for ins in self.plan.instructions:
            if ins.kind not in ("DelegateCall", "FreeCall"):
                raise NotImplementedError(f"instruction {ins.kind} is not supported (only delegate calls)")
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

    def run(self, inputs: Sequence[NDArray[Any]]) -> RunResult:
        """Run the plan on ``inputs`` (plan input order); outputs in plan output order."""
        if len(inputs) != len(self.plan.inputs):
            raise ValueError(f"the program takes {len(self.plan.inputs)} inputs, got {len(inputs)}")
        env: dict[int, NDArray[Any]] = {i: np.asarray(x) for i, x in zip(self.plan.inputs, inputs, strict=True)}
        trace: list[NodeTrace] = []
        for ins in self.plan.instructions:
            if ins.kind == "DelegateCall":
                trace.extend(self._delegate(self.plan.delegates[ins.index], ins.args, env))
        missing = [i for i in self.plan.outputs if i not in env]
        if missing:
            raise ValueError(f"plan outputs {missing} were never written")
        return RunResult(tuple(env[i] for i in self.plan.outputs), tuple(trace))

    def _delegate(self, d: pte.Delegate, args: Sequence[int], env: dict[int, NDArray[Any]]) -> list[NodeTrace]:
        graph = d.graph
        assert graph is not None
        n_in = len(graph.input_ids)
        # The XNNPACK executor binds the call's arguments to the graph's inputs then its outputs, in order.
        vals: dict[int, Any] = {v.id: v.data for v in graph.values if v.is_constant}
        for vid, arg in zip(graph.input_ids, args[:n_in], strict=True):
            vals[vid] = env[arg]
        trace = []
        for node in graph.nodes:
            out, how = self._node(graph, node, vals)
            vals[node.outputs[0]] = out
            shown = out.x if isinstance(out, _Dynamic) else out
            trace.append(NodeTrace(d.index, node.index, node.type, how, tuple(shown.shape), str(shown.dtype)))
        for vid, arg in zip(graph.output_ids, args[n_in:], strict=True):
            out = vals[vid]
            if isinstance(out, _Dynamic):
                raise NotImplementedError("a dynamically quantized (qdint8) delegate output is not supported")
            env[arg] = out
        return trace

    def _node(self, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
        handler = _HANDLERS[node.type]
        return handler(self.target, graph, node, vals)


# ---- node emulations ----------------------------------------------------------------------------------


def _activation(x: Any, v: pte.XnnValue) -> tuple[NDArray[Any], dict[str, Any]]:
    """A GEMM's activation operand: the float values to quantize dynamically, or a static int8 tensor."""
    if isinstance(x, _Dynamic):
        return x.x, {"dynamic": True}
    if v.datatype_name in ("qint8", "quint8"):
        return x, {"input_quant": _quant_params(v)}
    return x, {}


def _out_quant(v: pte.XnnValue) -> dict[str, Any]:
    return {"output_quant": _quant_params(v)} if v.datatype_name in ("qint8", "quint8") else {}


def _bias(graph: pte.XnnGraph, f: Mapping[str, Any]) -> NDArray[Any] | None:
    bid = f.get("bias_id", pte.INVALID_ID)
    return None if bid == pte.INVALID_ID else graph.value(bid).data


def _fully_connected(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    x, kw = _activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    w = graph.value(f["filter_id"])
    r: OpResult = fully_connected(
        x,
        vals[f["filter_id"]],
        _bias(graph, f),
        filter_quant=_quant_params(w),
        transpose_weights=bool(f["flags"] & _FLAG_TRANSPOSE),
        target=t,
        **kw,
        **_out_quant(graph.value(f["output_id"])),
        **_clamp(node),
    )
    _check_supported(t, r, node)
    return r.output, r.emulation


def _conv2d(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    x, kw = _activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    r: OpResult = convolution_2d(
        x,
        vals[f["filter_id"]],
        _bias(graph, f),
        stride=(f["subsampling_height"], f["subsampling_width"]),
        dilation=(f["dilation_height"], f["dilation_width"]),
        padding=(f["padding_top"], f["padding_right"], f["padding_bottom"], f["padding_left"]),
        groups=f["groups"],
        filter_quant=_quant_params(graph.value(f["filter_id"])),
        target=t,
        **kw,
        **_out_quant(graph.value(f["output_id"])),
        **_clamp(node),
    )
    return r.output, r.emulation


def _bmm(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    a, kw = _activation(vals[f["input1_id"]], graph.value(f["input1_id"]))
    b = graph.value(f["input2_id"])
    if "input_quant" in kw:
        kw = {"input1_quant": kw["input_quant"], "input2_quant": _quant_params(b)}
    r: OpResult = batch_matrix_multiply(
        a,
        vals[f["input2_id"]],
        transpose_b=bool(f["flags"] & _FLAG_TRANSPOSE),
        static_b=b.is_constant,
        target=t,
        **kw,
        **_out_quant(graph.value(f["output_id"])),
    )
    return r.output, r.emulation


def _depthwise(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    """``XNNDepthwiseConv2d`` as the grouped convolution it is (groups = channels): the generic dwconv kernel.

    Only the static int8 (qs8) one (bit-exact on the fixtures): kleidiref's f32/f16 dwconv is 2048 / 5120 ULP
    off the observed outputs (docs/run.md), so a float depthwise node is refused rather than approximated.
    """
    f = node.fields
    src = graph.value(f["input1_id"])
    if src.datatype_name != "qint8":
        raise NotImplementedError(
            f"XNNDepthwiseConv2d with {src.datatype_name} input is not emulated yet (kleidiref's f32/f16 dwconv "
            "does not match XNNPACK's bit for bit; docs/run.md)"
        )
    w = np.ascontiguousarray(np.transpose(vals[f["filter_id"]], (3, 1, 2, 0)))  # [1,kh,kw,C*m] -> [C*m,kh,kw,1]
    r: OpResult = convolution_2d(
        vals[f["input1_id"]],
        w,
        _bias(graph, f),
        stride=(f["subsampling_height"], f["subsampling_width"]),
        dilation=(f["dilation_height"], f["dilation_width"]),
        padding=(f["padding_top"], f["padding_right"], f["padding_bottom"], f["padding_left"]),
        groups=f["groups"],
        input_quant=_quant_params(src),
        filter_quant=_quant_params(graph.value(f["filter_id"])),
        target=t,
        **_out_quant(graph.value(f["output_id"])),
        **_clamp(node),
    )
    return r.output, r.emulation


def _transpose(_t: Target, _graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    x = vals[node.fields["input_id"]]
    if isinstance(x, _Dynamic):
        raise NotImplementedError("XNNStaticTranspose of a dynamically quantized (qdint8) value")
    perm = tuple(node.fields["perm"])[: x.ndim]
    bits = 8 * x.dtype.itemsize
    return np.ascontiguousarray(np.transpose(x, perm)), f"xnn_x{bits}_transposec (transpose-nd.c): exact copy"


def _convert(t: Target, graph: pte.XnnGraph, node: pte.XnnNode, vals: Mapping[int, Any]) -> tuple[Any, str]:
    f = node.fields
    src, dst = graph.value(f["input_id"]), graph.value(f["output_id"])
    x = vals[f["input_id"]]
    kinds = (src.datatype_name, dst.datatype_name)
    if kinds in (("fp32", "qdint8"), ("fp16", "qdint8")):
        return _Dynamic(x), (
            f"{kinds[0]} -> qdint8: quantized by the consumer as XNNPACK decides it "
            "(xnn_f32_qd8 / xnn_f16_qd8 / qdu8 on x86, or KleidiAI's qai8dx LHS packer for qp8)"
        )
    q = _quant_params(dst if kinds[1] == "qint8" else src)
    if kinds == ("fp32", "qint8") and q is not None:
        return quantize_qai8_vcvt(x, q.scale, q.zero_point, t.arch == "x86_64"), "xnn_f32_qs8_vcvt"
    if kinds == ("qint8", "fp32") and q is not None:
        return dequantize_qai8(x, q.scale, q.zero_point), "xnn_qs8_f32_vcvt (dequantize_qai8)"
    raise NotImplementedError(f"XNNConvert {kinds[0]} -> {kinds[1]} is not emulated yet")


_Handler = Callable[[Target, pte.XnnGraph, pte.XnnNode, Mapping[int, Any]], tuple[Any, str]]
_HANDLERS: Mapping[str, _Handler] = {
    "XNNFullyConnected": _fully_connected,
    "XNNConv2d": _conv2d,
    "XNNBatchMatrixMultiply": _bmm,
    "XNNStaticTranspose": _transpose,
    "XNNConvert": _convert,
    "XNNDepthwiseConv2d": _depthwise,
}


def run(
    path: str | Path | pte.Program,
    inputs: Sequence[NDArray[Any]],
    cpu: str | Target = "sme2",
    svl: int | None = None,
) -> tuple[NDArray[Any], ...]:
    """The outputs the program gives on ``cpu`` (one-shot :class:`Runner`)."""
    return Runner(path, cpu, svl)(inputs)


def max_ulp_distance(a: NDArray[Any], b: NDArray[Any]) -> int:
    """The largest ULP distance between two arrays (0: identical up to +-0 and NaN payloads; -1: NaN mismatch)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"cannot compare {a.dtype}{list(a.shape)} with {b.dtype}{list(b.shape)}")
    if a.dtype.kind != "f":
        return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)), initial=0))
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return -1
    ok = ~np.isnan(a)
    return int(np.max(_elementwise_ulp(a[ok], b[ok]), initial=0))


# ---- CLI ----------------------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Add ``run`` to the CLI's subparsers."""
    p = sub.add_parser("run", help="run a .pte's XNNPACK delegates as a CPU would (bit-exact emulation)")
    p.add_argument("model", type=Path, metavar="MODEL.pte")
    p.add_argument("--cpu", default="sme2", help=f"{', '.join(CPU_NAMES)} or a .json CPU description")
    p.add_argument("--svl", type=int, default=None, help="SVL in bits of an SME CPU (default 512)")
    p.add_argument("--inputs", type=Path, help=".npz with input_0, input_1, ... (default: <model>.io.npz's)")
    p.add_argument("--out", type=Path, help="write output_0, ... to this .npz")
    p.add_argument("--trace", action="store_true", help="per node: type, kernel, output shape")
    p.add_argument("--compare", type=Path, help=".npz with output_0, ...: max ULP distance per output")


def _read_inputs(args: argparse.Namespace) -> list[NDArray[Any]]:
    src = args.inputs or args.model.with_suffix(".io.npz")
    with np.load(src) as z:
        n = sum(1 for k in z.files if k.startswith("input_"))
        return [z[f"input_{i}"] for i in range(n)]


def cli_main(args: argparse.Namespace) -> int:
    """``kleidiref run``: exit 0 on success, 2 when the program cannot be run (the reason on stdout)."""
    try:
        res = Runner(args.model, args.cpu, args.svl).run(_read_inputs(args))
    except (NotImplementedError, RefusedByXnnpack, ValueError, OSError) as exc:
        print(f"kleidiref run: {args.model}: {exc}")
        return 2
    if args.trace:
        for t in res.trace:
            print(t.describe())
    if args.out:
        arrays: dict[str, Any] = {f"output_{i}": o for i, o in enumerate(res.outputs)}
        np.savez(args.out, **arrays)
    if args.compare:
        with np.load(args.compare) as z:
            dist = [max_ulp_distance(o, z[f"output_{i}"]) for i, o in enumerate(res.outputs)]
        print(json.dumps({"max_ulp": dist}))
    return 0
