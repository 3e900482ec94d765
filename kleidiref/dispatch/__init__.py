"""XNNPACK's dispatcher for ``XNNFullyConnected``, ``XNNConv2d``, ``XNNDepthwiseConv2d``, ``XNNConvTranspose2d``
and ``XNNBatchMatrixMultiply``.

Given a node (datatypes, shapes, flags, convolution parameters) and a :class:`~kleidiref.targets.Target`,
:func:`decide` answers which XNNPACK GEMM config runs it, whether that is one of the
KleidiAI-backed variants (:data:`VARIANT_NAMES`, named by their :mod:`kleidiref.variants` module), which
micro-kernel type and kernel, and why. A node XNNPACK would refuse at definition or creation time
raises :class:`NodeRejected` instead (a ``ValueError``): that is an error, not a fallback.

The rules (XNNPACK ``75db3c093b``; the ExecuTorch pin ``92a7ad501b`` decides the same for these
configs), one module each::

    1. conv -> FC rewrite      groups == 1, kh*kw == 1, stride 1, no padding, Cin + Cout > 2
                               (src/subgraph/convolution-2d.c L1382-1397)
    2. config availability     branch order SME2 -> SME -> i8mm -> dotprod; KleidiAI built only on
                               arm64 (src/configs/gemm-config.c)
    3. packed-LHS pass         in/filter/out datatypes -> pfp32 / pfp16 / pqint8 / qpint8
                               (xnn_subgraph_optimize_packed_lhs, src/subgraph.c L3954-4266)
    4. fp16 / bf16 -> fp32     fp16 nodes without pf16 or f16_gemm, and every bf16 node, become fp32
                               (src/subgraph/rewrites/cvt_to_fp32.cc)
    5. operator type, config   FC / Conv / BMM tables (fully-connected.c, convolution-2d.c,
                               batch-matrix-multiply.c); f32 nr2 switch (xnn_use_nr2)
    6. creation-time checks    qb4w block size / K / bf16 scales, zero points, qs8 scale < 256
    7. micro-kernel            conv: dwconv / igemm (select_microkernel_type; vmulcaddc never at the pin);
                               M == 1 -> the 1-row kernel when the config has one

Depthwise nodes (``depthwise_convolution_2d``) never get a packed type; deconvolutions (``deconvolution_2d``)
follow src/subgraph/deconvolution-2d.c and src/operators/deconvolution-nhwc.c (subconv2d or IGEMM). x86-64 qdu8
and configs XNNPACK never enables: :mod:`.hardware`.

Modules: :mod:`.case` (the node, the target, the JSON CASE), :mod:`.decision` (the answer),
:mod:`.cpu` (the target's ISA branches), :mod:`.rules` (what XNNPACK refuses), :mod:`.gemm`
(FC / BMM), :mod:`.conv` (convolution); the kernel tables are :mod:`kleidiref.configs`.

Everything here is **from source** (no golden vectors exercise the dispatcher).
"""

from __future__ import annotations

import dataclasses

from ..configs import X86_ISA, Platform, f16_x86_choice, f32_qcw_choice
from ..targets import Target
from .case import DTYPES, OPS, ConvParams, Node, TensorSpec, load_case, parse_case, target_from_json
from .conv import decide_conv, decide_deconv
from .cpu import Hw
from .decision import MICROKERNEL_NAMES, VARIANT_NAMES, CaseError, Decision, Microkernel, NodeRejected
from .gemm import decide_bmm, decide_fc
from .hardware import unsupported_config
from .rules import check_quant_params

__all__ = [
    "DTYPES",
    "MICROKERNEL_NAMES",
    "OPS",
    "VARIANT_NAMES",
    "X86_ISA",
    "CaseError",
    "ConvParams",
    "Decision",
    "Microkernel",
    "Node",
    "NodeRejected",
    "Platform",
    "TensorSpec",
    "decide",
    "explain_case",
    "f16_x86_choice",
    "f32_qcw_choice",
    "load_case",
    "parse_case",
    "target_from_json",
]


def decide(node: Node, target: Target, *, platform: Platform = "linux") -> Decision:
    """The XNNPACK decision for ``node`` on ``target``; raises :class:`NodeRejected` if XNNPACK refuses it.

    A node XNNPACK accepts but whose chosen config it never enables on ``target`` (operator creation fails
    with ``xnn_status_unsupported_hardware``) gets a decision whose ``unsupported`` says why.

    ``platform='apple'`` models an iOS/macOS build (different f32 kernels).
    """
    if not isinstance(node, Node):
        raise TypeError(f"decide expects a Node, got {type(node).__name__}")
    if not isinstance(target, Target):
        raise TypeError(f"decide expects a Target, got {type(target).__name__}")
    if platform not in ("linux", "apple"):
        raise ValueError("platform must be 'linux' or 'apple'")
    hw = Hw(target, platform)
    why = [hw.feature_summary()]
    check_quant_params(node, why)  # xnn_define_*_tensor_value: before any operator rule
    if node.op == "fully_connected":
        d = decide_fc(hw, node, why)
    elif node.op == "batch_matrix_multiply":
        d = decide_bmm(hw, node, why)
    elif node.op == "deconvolution_2d":
        d = decide_deconv(hw, node, why)
    else:
        d = decide_conv(hw, node, why)
    bad = unsupported_config(d, target.arch == "arm64")
    return d if bad is None else dataclasses.replace(d, unsupported=bad)


def explain_case(obj: object) -> Decision | NodeRejected:
    """Parse a CASE object and decide; a rejection is returned (not raised). Bad CASEs raise CaseError."""
    node, t, platform = parse_case(obj)
    try:
        return decide(node, t, platform=platform)
    except NodeRejected as exc:
        return exc
