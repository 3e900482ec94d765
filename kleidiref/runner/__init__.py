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

* ``XNNDepthwiseConv2d`` (fp32, fp16, qint8): the generic dwconv kernel through :mod:`kleidiref.ops`.
* ``XNNConvTranspose2d``: :func:`kleidiref.ops.deconvolution_2d` (the IGEMM kernel per subkernel, or over all
  taps for KleidiAI's pqs8).

The node emulations live in :mod:`kleidiref.runner.nodes` (one module per node family, an explicit
registry). Anything else (fp16 <-> fp32 converts, non-delegated
operators) raises :class:`NotImplementedError` naming it: never an approximation. See docs/run.md.
"""

from __future__ import annotations

from .cli import add_parser, cli_main
from .compare import NodeDiff, compare_runs, compare_to_reference, first_divergence, max_ulp_distance, node_outputs
from .nodes import SUPPORTED_NODE_TYPES
from .nodes.common import RefusedByXnnpack
from .program import CPU_NAMES, NodeTrace, Runner, RunResult, cpu_target, read_inputs, run

__all__ = [
    "CPU_NAMES",
    "SUPPORTED_NODE_TYPES",
    "NodeDiff",
    "NodeTrace",
    "RefusedByXnnpack",
    "RunResult",
    "Runner",
    "add_parser",
    "cli_main",
    "compare_runs",
    "compare_to_reference",
    "cpu_target",
    "first_divergence",
    "max_ulp_distance",
    "node_outputs",
    "read_inputs",
    "run",
]
