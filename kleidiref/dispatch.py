"""XNNPACK's dispatcher for ``XNNFullyConnected``, ``XNNConv2d`` and ``XNNBatchMatrixMultiply``.

Given a node (datatypes, shapes, flags, convolution parameters) and a :class:`~kleidiref.targets.Target`,
:func:`decide` answers which XNNPACK GEMM config runs it, whether that is one of the
KleidiAI-backed variants (:data:`VARIANT_NAMES`, named by their :mod:`kleidiref.variants` module), which
micro-kernel type and kernel, and why. A node XNNPACK would refuse at definition or creation time
raises :class:`NodeRejected` instead (a ``ValueError``): that is an error, not a fallback.

The rules (spec: dispatch.md; XNNPACK ``75db3c093b``, the ExecuTorch pin ``92a7ad501b`` decides
the same for these configs)::

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
    7. micro-kernel            conv: vmulcaddc / dwconv / igemm (select_microkernel_type);
                               M == 1 -> the 1-row kernel when the config has one

Everything here is **from source** (no golden vectors exercise the dispatcher).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .configs import (
    DWCONV,
    KAI_CONFIGS,
    VMULCADDC,
    X86_ISA,
    Branch,
    GenericConfig,
    f16_x86_choice,
    f32_qcw_choice,
    generic_config,
    kai_branch,
    kai_choice,
)
from .conv import conv_output_size
from .numerics import bf16_to_f32, f32_to_bf16_rne
from .targets import Target

__all__ = [
    "DTYPES",
    "OPS",
    "VARIANT_NAMES",
    "X86_ISA",
    "CaseError",
    "ConvParams",
    "Decision",
    "Node",
    "NodeRejected",
    "TensorSpec",
    "decide",
    "explain_case",
    "f16_x86_choice",
    "f32_qcw_choice",
    "load_case",
    "parse_case",
    "target_from_json",
]

#: XNNPACK datatype names a CASE may use.
DTYPES: tuple[str, ...] = (
    "fp32",
    "fp16",
    "bf16",
    "qint8",
    "quint8",
    "qcint8",
    "qdint8",
    "qbint4",
    "qcint4",
    "qint32",
    "qcint32",
)
#: Node operations a CASE may describe.
OPS: tuple[str, ...] = ("fully_connected", "convolution_2d", "batch_matrix_multiply")
#: The KleidiAI-backed variants (``Decision.variant``), named by their ``kleidiref.variants`` module.
VARIANT_NAMES: tuple[str, ...] = (
    "pf32_gemm",
    "pf16_gemm",
    "pqs8_qc8w_gemm",
    "qp8_f32_qc8w_gemm",
    "qp8_f32_qb4w_gemm",
    "qp8_f32_qc4w_gemm",
)
_FLAGS = ("transpose_weights", "transpose_b")
Microkernel = Literal["gemm", "igemm", "dwconv", "vmulcaddc"]
Platform = Literal["linux", "apple"]


class CaseError(ValueError):
    """A CASE (node description or target) that is malformed: not an XNNPACK decision."""


class NodeRejected(ValueError):
    """XNNPACK refuses the node (``xnn_define_*`` or ``xnn_create_*`` fails): an error, not a fallback.

    ``reasons`` lists the rules applied before the refusal (as in :class:`Decision`).
    """

    def __init__(self, message: str, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.reasons: tuple[str, ...] = tuple(reasons)


# --------------------------------------------------------------------------------------------
# Node description (the JSON CASE contract)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One tensor of a node: XNNPACK datatype, shape, and what the creation checks need.

    ``scale`` is optional (per-tensor float or per-channel / per-block tuple); when present the
    creation-time scale checks run (qs8 requantization scale < 256, qb4w bf16 scales normal > 0).
    """

    dtype: str
    shape: tuple[int, ...]
    static: bool = False
    zero_point: int | None = None
    block_size: int | None = None
    scale: float | tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise CaseError(f"datatype {self.dtype!r} is not an XNNPACK datatype name (one of {', '.join(DTYPES)})")
        if not isinstance(self.shape, tuple) or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in self.shape
        ):
            raise CaseError(f"shape must be a list of non-negative ints, got {self.shape!r}")
        for name in ("zero_point", "block_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise CaseError(f"{name} must be an int, got {v!r}")

    @classmethod
    def from_json(cls, obj: object, where: str) -> TensorSpec:
        if not isinstance(obj, Mapping):
            raise CaseError(f"{where} must be an object with 'dtype' and 'shape'")
        unknown = set(obj) - {"dtype", "shape", "static", "zero_point", "block_size", "scale"}
        if unknown:
            raise CaseError(f"{where}: unknown field(s) {sorted(unknown)}")
        if "dtype" not in obj or "shape" not in obj:
            raise CaseError(f"{where} needs 'dtype' and 'shape'")
        shape = obj["shape"]
        if not isinstance(shape, list):
            raise CaseError(f"{where}.shape must be a list of ints")
        static = obj.get("static", False)
        if not isinstance(static, bool):
            raise CaseError(f"{where}.static must be true or false")
        scale = obj.get("scale")
        if isinstance(scale, list):
            if not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scale):
                raise CaseError(f"{where}.scale must be a number or a list of numbers")
            scale = tuple(float(s) for s in scale)
        elif scale is not None:
            if isinstance(scale, bool) or not isinstance(scale, (int, float)):
                raise CaseError(f"{where}.scale must be a number or a list of numbers")
            scale = float(scale)
        try:
            return cls(
                dtype=str(obj["dtype"]),
                shape=tuple(shape),
                static=static,
                zero_point=obj.get("zero_point"),
                block_size=obj.get("block_size"),
                scale=scale,
            )
        except CaseError as exc:
            raise CaseError(f"{where}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class ConvParams:
    """``convolution``: kernel [kh, kw], stride, dilation, padding [top, right, bottom, left], groups."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1

    def __post_init__(self) -> None:
        for name, n, lo in (("kernel", 2, 1), ("stride", 2, 1), ("dilation", 2, 1), ("padding", 4, 0)):
            v = getattr(self, name)
            if (
                not isinstance(v, tuple)
                or len(v) != n
                or any(isinstance(x, bool) or not isinstance(x, int) or x < lo for x in v)
            ):
                raise CaseError(f"convolution.{name} must be {n} ints >= {lo}, got {v!r}")
        if isinstance(self.groups, bool) or not isinstance(self.groups, int) or self.groups < 1:
            raise CaseError(f"convolution.groups must be an int >= 1, got {self.groups!r}")

    @classmethod
    def from_json(cls, obj: object) -> ConvParams:
        if not isinstance(obj, Mapping):
            raise CaseError("'convolution' must be an object with kernel/stride/dilation/padding/groups")
        unknown = set(obj) - {"kernel", "stride", "dilation", "padding", "groups"}
        if unknown:
            raise CaseError(f"convolution: unknown field(s) {sorted(unknown)}")
        if "kernel" not in obj:
            raise CaseError("convolution.kernel [kh, kw] is required")

        def tup(key: str, default: tuple[int, ...]) -> Any:
            v = obj.get(key, list(default))
            if not isinstance(v, list):
                raise CaseError(f"convolution.{key} must be a list of ints")
            return tuple(v)

        return cls(
            kernel=tup("kernel", ()),
            stride=tup("stride", (1, 1)),
            dilation=tup("dilation", (1, 1)),
            padding=tup("padding", (0, 0, 0, 0)),
            groups=obj.get("groups", 1),
        )


@dataclasses.dataclass(frozen=True)
class Node:
    """An XNNPACK node as the CASE contract describes it.

    For ``batch_matrix_multiply``, ``input`` is ``input1`` [.., M, K] and ``filter`` is ``input2``
    [.., K, N] ([.., N, K] with the ``transpose_b`` flag).
    """

    op: str
    input: TensorSpec
    filter: TensorSpec
    output: TensorSpec
    bias: TensorSpec | None = None
    flags: tuple[str, ...] = ()
    convolution: ConvParams | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise CaseError(f"node.op must be one of {', '.join(OPS)}, got {self.op!r}")
        for f in self.flags:
            if f not in _FLAGS:
                raise CaseError(f"unknown flag {f!r} (known: {', '.join(_FLAGS)})")
        if self.op == "convolution_2d" and self.convolution is None:
            raise CaseError("a convolution_2d node needs 'convolution' parameters")

    @classmethod
    def from_json(cls, obj: object) -> Node:
        if not isinstance(obj, Mapping):
            raise CaseError("'node' must be an object")
        op = obj.get("op")
        if op not in OPS:
            raise CaseError(f"node.op must be one of {', '.join(OPS)}, got {op!r}")
        allowed = {"op", "output", "flags", "bias"}
        if op == "batch_matrix_multiply":
            allowed |= {"input1", "input2"}
            a_key, b_key = "input1", "input2"
        else:
            allowed |= {"input", "filter", "convolution"}
            a_key, b_key = "input", "filter"
        unknown = set(obj) - allowed
        if unknown:
            raise CaseError(f"node ({op}): unknown or misplaced field(s) {sorted(unknown)}")
        for key in (a_key, b_key, "output"):
            if key not in obj:
                raise CaseError(f"node ({op}) needs '{key}'")
        flags = obj.get("flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise CaseError("node.flags must be a list of strings")
        bias_obj = obj.get("bias")
        conv = obj.get("convolution")
        return cls(
            op=op,
            input=TensorSpec.from_json(obj[a_key], f"node.{a_key}"),
            filter=TensorSpec.from_json(obj[b_key], f"node.{b_key}"),
            output=TensorSpec.from_json(obj["output"], "node.output"),
            bias=None if bias_obj is None else TensorSpec.from_json(bias_obj, "node.bias"),
            flags=tuple(flags),
            convolution=None if conv is None else ConvParams.from_json(conv),
        )


_TARGET_KEYS = ("arch", "kleidiai", "sme2", "sme", "i8mm", "dotprod", "fp16_arith", "svl_bits")


def target_from_json(obj: object) -> tuple[Target, Platform]:
    """A CASE ``target`` -> (:class:`Target`, platform). Optional: ``flush_to_zero``, ``platform``."""
    if not isinstance(obj, Mapping):
        raise CaseError("'target' must be an object")
    # A target without SME has no SVL: svl_bits may be omitted, null or 0 there.
    no_sme = obj.get("sme2") is False and obj.get("sme") is False
    missing = [k for k in _TARGET_KEYS if k not in obj and not (k == "svl_bits" and no_sme)]
    if missing:
        raise CaseError(f"target is missing {missing} (required: {', '.join(_TARGET_KEYS)})")
    unknown = set(obj) - set(_TARGET_KEYS) - {"flush_to_zero", "platform", "name"}
    if unknown:
        raise CaseError(f"target: unknown field(s) {sorted(unknown)}")
    platform = obj.get("platform", "linux")
    if platform not in ("linux", "apple"):
        raise CaseError("target.platform must be 'linux' (Linux/Android builds) or 'apple' (iOS/macOS builds)")
    try:
        t = Target(
            arch=obj["arch"],
            kleidiai=obj["kleidiai"],
            sme2=obj["sme2"],
            sme=obj["sme"],
            i8mm=obj["i8mm"],
            dotprod=obj["dotprod"],
            fp16_arith=obj["fp16_arith"],
            svl_bits=obj.get("svl_bits"),
            flush_to_zero=obj.get("flush_to_zero", True),
            name=str(obj.get("name", "case")),
        )
    except (TypeError, ValueError) as exc:
        raise CaseError(f"target: {exc}") from None
    return t, platform


def parse_case(obj: object) -> tuple[Node, Target, Platform]:
    """A decoded CASE object -> (node, target, platform); :class:`CaseError` names what is wrong."""
    if not isinstance(obj, Mapping):
        raise CaseError("a CASE is a JSON object with 'target' and 'node'")
    unknown = set(obj) - {"target", "node", "comment", "expect"}
    if unknown:
        raise CaseError(f"CASE: unknown field(s) {sorted(unknown)}")
    if "target" not in obj or "node" not in obj:
        raise CaseError("a CASE needs 'target' and 'node'")
    t, platform = target_from_json(obj["target"])
    return Node.from_json(obj["node"]), t, platform


def load_case(path: str | Path) -> tuple[Node, Target, Platform]:
    """Read and parse a CASE file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CaseError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaseError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    return parse_case(obj)


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Decision:
    """What XNNPACK runs for a node on a target, and why.

    ``variant`` is one of :data:`VARIANT_NAMES` only when a KleidiAI micro-kernel of that variant
    runs. ``kernel`` is the KleidiAI name on KleidiAI paths and the XNNPACK ukernel name
    otherwise; ``xnn_kernel`` is always the XNNPACK name (SME tile numbers computed from the
    SVL, as XNNPACK spells them at SVL 512).
    """

    variant: str | None
    config: str
    microkernel: Microkernel
    kernel: str
    reasons: tuple[str, ...]
    #: The XNNPACK ukernel (wrapper) name.
    xnn_kernel: str
    #: XNNPACK's operator name as the profiling API / ETDump reports it.
    operator: str
    #: The op that runs: ``fully_connected`` for a rewritten 1x1 convolution.
    op: str
    #: GEMM rows M (output pixels for a conv; per-batch rows for BMM).
    m: int
    #: Micro-kernel rows and columns (config mr/nr, mr = 1 for the 1-row kernel).
    mr: int
    nr: int
    #: The datatype the node's LHS is read as (``pfp32`` ... or the plain one).
    input_datatype: str
    rewritten_to_fc: bool
    flush_to_zero: bool
    #: dwconv primary tile (taps) when ``microkernel == 'dwconv'``.
    dwconv_tile: int | None = None
    #: Apple iOS/macOS build (f32 M == 1 kernel with four accumulators).
    platform: Platform = "linux"

    def to_json(self) -> dict[str, Any]:
        """The ``kleidiref explain --json`` object."""
        return {
            "variant": self.variant,
            "config": self.config,
            "microkernel": self.microkernel,
            "kernel": self.kernel,
            "reasons": list(self.reasons),
        }

    def describe(self) -> str:
        """A readable multi-line explanation."""
        mk = {"igemm": "IGEMM", "dwconv": "DWConv", "vmulcaddc": "VMulCAddC", "gemm": "GEMM"}[self.microkernel]
        head = f"{self.op}: {self.operator} {mk} -> config {self.config}"
        lines = [
            head,
            f"  variant:     {self.variant or _no_variant(self.kernel)}",
            f"  microkernel: {self.microkernel}",
            f"  kernel:      {self.kernel}",
        ]
        if self.xnn_kernel != self.kernel:
            lines.append(f"  xnnpack:     {self.xnn_kernel}")
        lines.append(f"  tile:        mr={self.mr} nr={self.nr} (M={self.m})")
        lines.append("  why:")
        lines += [f"    - {r}" for r in self.reasons]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Hardware: which configs exist on the target
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Hw:
    t: Target
    platform: Platform

    @property
    def arm64(self) -> bool:
        return self.t.arch == "arm64"

    @property
    def kai(self) -> bool:
        # XNNPACK_ENABLE_KLEIDIAI is forced OFF unless the target is AArch64 (CMakeLists.txt).
        return self.arm64 and self.t.kleidiai

    @property
    def sme_level(self) -> Branch | None:
        """'sme2' / 'sme' branch of the SME configs, None when neither (or no KleidiAI)."""
        return kai_branch("pf32_gemm", self.t)

    @property
    def qp8_level(self) -> Branch | None:
        """Branch of qp8_f32_qc8w / qp8_f32_qc4w: sme2 -> sme -> i8mm -> dotprod."""
        return kai_branch("qp8_f32_qc8w_gemm", self.t)

    @property
    def qb4w_level(self) -> Branch | None:
        """Branch of qp8_f32_qb4w: no SME branch; i8mm -> dotprod."""
        return kai_branch("qp8_f32_qb4w_gemm", self.t)

    @property
    def f16_gemm(self) -> bool:
        # Note: on x86-64 XNNPACK's f16_gemm config exists only with AVX2, AVX512SKX or
        # AVX512-FP16 (else creating an fp16 FC fails "unsupported hardware"); the Target model
        # has no x86 ISA flags, so an x86_64 target is assumed to have AVX2 (X86_ISA).
        return self.t.fp16_arith if self.arm64 else True

    def feature_summary(self) -> str:
        if not self.arm64:
            return "x86_64 target: no Arm features, KleidiAI is never built (XNNPACK_ENABLE_KLEIDIAI needs AArch64)"
        feats = [
            n
            for n, ok in (
                ("SME2", self.t.sme2),
                ("SME", self.t.sme),
                ("I8MM", self.t.i8mm),
                ("DotProd", self.t.dotprod),
                ("FP16", self.t.fp16_arith),
            )
            if ok
        ]
        kai = (
            "built with KleidiAI"
            if self.t.kleidiai
            else (
                "built WITHOUT KleidiAI (e.g. a Buck build without -DENABLE_XNNPACK_KLEIDI): no "
                "pf32/pf16/pqs8/qp8 configs"
            )
        )
        svl = f", SVL {self.t.svl_bits}" if self.t.has_sme else ""
        return f"arm64 target with {', '.join(feats) or 'no optional features'}{svl}; {kai}"


def _x86_name(config: str) -> str:
    return f"{config} x86-64 ukernel (ISA-specific; not named by kleidiref)"


_X86_ASSUMED = (
    "x86-64: the Target model has no x86 ISA flags; AVX2 + FMA3 (no AVX-512) is assumed, so "
    "XNNPACK's first matching config entry is the AVX2 one"
)


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


def _prod(xs: Sequence[int]) -> int:
    return math.prod(xs) if xs else 1


def _use_nr2(nr: int, nr2: int, n: int) -> bool:
    """``xnn_use_nr2`` (src/microkernel-utils.c L157-171)."""

    def over(x: int) -> int:
        return (x - n % x) % x

    return nr > n or (over(nr2) < over(nr) and over(nr) * 100 > n)


def _heuristic_mr(m: int, max_mr: int, nr: int, available: Sequence[int]) -> int:
    """``xnn_get_heuristic_mr_igemm`` (src/operator-utils.c L130-157)."""
    if m <= max_mr and m in available:
        return m
    best, best_cost = max_mr, None
    for mr in sorted(available):
        cost = -(-m // mr) * (3 * (mr + nr) + mr * nr)
        if best_cost is None or cost <= best_cost:
            best, best_cost = mr, cost
    return best


def _check_zero_points(node: Node, why: list[str]) -> None:
    f = node.filter
    if f.dtype in ("qbint4", "qcint4"):
        zp = 8 if f.zero_point is None else f.zero_point
        if zp not in (0, 8):
            raise NodeRejected(
                f"xnn_define_fully_connected rejects a {f.dtype} filter with zero point {zp}: 4-bit "
                "filters must "
                "have zero point 0 (signed nibbles) or 8 (unsigned nibbles, what ExecuTorch serializes)",
                why,
            )


def _check_qb4w(node: Node, k: int, why: list[str]) -> None:
    """``check_block_size`` (fully-connected-nc.c L597-637): XNN_MIN_BLOCKSIZE = 32."""
    f = node.filter
    bs = f.block_size
    if bs is None:
        raise NodeRejected("a qbint4 filter needs a block_size (xnn_define_blockwise_quantized_tensor_value)", why)
    if bs < 32 or bs % 32:
        raise NodeRejected(
            f"qb4w block size {bs} is rejected at creation: it must be a multiple of 32 and >= 32 "
            "(XNN_MIN_BLOCKSIZE; check_block_size in fully-connected-nc.c); re-quantize with group "
            "size 32, 64, 128 ...",
            why,
        )
    if k % bs:
        raise NodeRejected(
            f"qb4w block size {bs} does not divide K = {k}: XNNPACK requires K % block_size == 0 at creation",
            why,
        )
    if f.scale is not None:
        scales = np.atleast_1d(np.asarray(f.scale, dtype=np.float32))
        b = bf16_to_f32(f32_to_bf16_rne(scales))
        bad = ~np.isfinite(b) | (b <= 0) | (np.abs(b) < np.float32(np.finfo(np.float32).tiny))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise NodeRejected(
                f"qb4w block scale #{i} = {float(b[i])!r} (as bf16) is rejected at creation: every "
                "bf16 block scale "
                "must be finite, normal and > 0 (check_block_size)",
                why,
            )


def _check_qs8_scale(node: Node, n: int, why: list[str], *, kind: str = "qs8") -> None:
    """Requantization scale ``fl(fl(sx*sw[n]) / sy) < 256`` (fully-connected-nc.c L934-985)."""
    sx, sw, sy = node.input.scale, node.filter.scale, node.output.scale
    if sx is None or sw is None or sy is None:
        return
    if isinstance(sx, tuple) or isinstance(sy, tuple):
        raise NodeRejected("qint8 input and output scales are per-tensor (one number each)", why)
    w = (
        np.broadcast_to(np.asarray(sw, dtype=np.float32), (n,))
        if np.ndim(sw) == 0 or len(np.atleast_1d(sw)) == 1
        else np.asarray(sw, dtype=np.float32)
    )
    if w.shape != (n,):
        raise NodeRejected(f"per-channel filter scales: expected {n} values, got {w.shape[0]}", why)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = (np.float32(sx) * w) / np.float32(sy)
    bad = ~(s < np.float32(256.0))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise NodeRejected(
            f"requantization scale input_scale*filter_scale[{i}]/output_scale = {float(s[i])!r} is "
            f">= 256: XNNPACK "
            f"rejects the {kind} operator at creation (xnn_status_unsupported_parameter); use a larger "
            "output scale",
            why,
        )


def _no_variant(kernel: str) -> str:
    if kernel.startswith("kai_"):
        return "none (a KleidiAI kernel outside the emulated variants)"
    return "none (generic XNNPACK kernel)"


def _fz_reason(hw: _Hw, floaty: bool) -> list[str]:
    if not floaty:
        return []
    if hw.t.flush_to_zero and hw.t.arch == "x86_64":
        return [
            "flush-to-zero on: XNNPACK runs every operator with MXCSR FTZ/DAZ set (pthreadpool "
            "PTHREADPOOL_FLAG_DISABLE_DENORMALS)"
        ]
    if hw.t.flush_to_zero:
        return [
            "flush-to-zero on: XNNPACK runs every operator with FPCR.FZ/FZ16 set (pthreadpool "
            "PTHREADPOOL_FLAG_DISABLE_DENORMALS), so subnormal floats read and write as zero (pf32/pf16 SME "
            "kernels: verified under QEMU only, not on silicon)"
        ]
    return [
        "flush-to-zero off (target.flush_to_zero = False): subnormals kept, as in a bare kernel call; "
        "XNNPACK itself would flush them"
    ]


def _fc_combo(in_dt: str, k_dt: str, out_dt: str, op: str, why: list[str]) -> None:
    ok = {
        ("fp32", "fp32", "fp32"),
        ("fp32", "fp16", "fp32"),
        ("fp16", "fp16", "fp16"),
        ("fp16", "fp32", "fp16"),
        ("bf16", "bf16", "bf16"),
        ("bf16", "bf16", "fp32"),
        ("bf16", "fp32", "bf16"),
        ("bf16", "fp32", "fp32"),
        ("qdint8", "qcint8", "fp32"),
        ("qdint8", "qbint4", "fp32"),
        ("qdint8", "qcint4", "fp32"),
        ("qdint8", "qcint8", "fp16"),
        ("qdint8", "qbint4", "fp16"),
        ("qdint8", "qcint4", "fp16"),
        ("fp32", "qcint8", "fp32"),
        ("fp32", "qcint4", "fp32"),
        ("qint8", "qcint8", "qint8"),
        ("qint8", "qint8", "qint8"),
        ("quint8", "quint8", "quint8"),
    }
    if op == "batch_matrix_multiply":
        ok = {
            ("fp32", "fp32", "fp32"),
            ("fp16", "fp16", "fp16"),
            ("qdint8", "qcint8", "fp32"),
            ("fp32", "qcint8", "fp32"),
            ("qint8", "qint8", "qint8"),
            ("bf16", "bf16", "bf16"),
        }
    if (in_dt, k_dt, out_dt) not in ok:
        what = "batch matrix multiply" if op == "batch_matrix_multiply" else "fully connected"
        raise NodeRejected(
            f"XNNPACK has no {what} operator for input {in_dt}, "
            f"{'input2' if op == 'batch_matrix_multiply' else 'filter'} {k_dt}, output {out_dt} "
            "(xnn_define / create fails with xnn_status_invalid_parameter)",
            why,
        )


def _packed_fc(hw: _Hw, node: Node, in_dt: str, k_dt: str, out_dt: str, why: list[str]) -> str | None:
    """The packed-LHS pass for FC/BMM nodes (dispatch.md §4.3)."""
    lvl = hw.sme_level
    if in_dt == "fp16":
        if out_dt == "fp16" and k_dt == "fp16":
            if lvl is not None:
                why.append(
                    f"packed-LHS pass: fp16 input, fp16 {_bname(node)} and fp16 output with the pf16 config "
                    f"available ({lvl.upper()} + KleidiAI) -> input packed as pfp16"
                )
                return "pfp16"
            why.append("pf16_gemm not taken: " + _why_no_sme(hw, "pf16_gemm"))
        elif out_dt == "fp16":
            from_conv = any(r.startswith("conv -> FC rewrite") for r in why)
            why.append(
                f"pf16 needs an fp16 {_bname(node)}; "
                + (
                    f"this 1x1 convolution was serialized with {_an(k_dt)} filter (ExecuTorch keeps "
                    "conv filters fp32 in fp16 models) and became a fully-connected node"
                    if from_conv
                    else f"this node has {_an(k_dt)} {_bname(node)}"
                )
                + ", so the packed-LHS pass leaves it unpacked (generic f16 FC)"
            )
        return None
    if in_dt == "fp32":
        if out_dt == "fp32" and k_dt in ("fp32", "fp16"):
            if lvl is not None:
                why.append(
                    f"packed-LHS pass: fp32 input, {k_dt} {_bname(node)}, fp32 output with the pf32 config "
                    f"available ({lvl.upper()} + KleidiAI) -> input packed as pfp32"
                )
                return "pfp32"
            why.append("pf32_gemm not taken: " + _why_no_sme(hw, "pf32_gemm"))
        return None
    if in_dt == "qint8":
        if out_dt == "qint8" and k_dt == "qcint8":
            if node.op == "batch_matrix_multiply":
                return None
            if lvl is not None:
                why.append(
                    "packed-LHS pass: qint8 input, per-channel qcint8 filter, qint8 output with "
                    "the pqs8_qc8w "
                    f"config available ({lvl.upper()} + KleidiAI) -> input packed as pqint8"
                )
                return "pqint8"
            why.append("pqs8_qc8w_gemm not taken: " + _why_no_sme(hw, "pqs8_qc8w_gemm"))
        elif out_dt == "qint8" and k_dt == "qint8" and node.op != "batch_matrix_multiply":
            why.append(
                "pqs8_qc8w needs a per-channel (qcint8) filter for a fully-connected node; this filter is "
                "per-tensor qint8 (PT2E static per-tensor), so it runs the generic qs8 kernel — quantize "
                "the weights per channel to reach pqs8"
            )
        return None
    if in_dt == "qdint8":
        if out_dt == "fp16":
            why.append(
                "dynamically quantized node with fp16 output: no qp8 config at the ExecuTorch pin (XNNPACK "
                "HEAD adds qp8_f16_qc8w, SME2 only) -> stays qdint8"
            )
            return None
        if out_dt != "fp32":
            return None
        if k_dt == "qbint4":
            zp = 8 if node.filter.zero_point is None else node.filter.zero_point
            if zp != 8:
                why.append(f"qp8_f32_qb4w needs kernel zero point 8; this qbint4 filter has zero point {zp} -> qd8")
                return None
            lvl4 = hw.qb4w_level
            if lvl4 is None:
                why.append("qp8_f32_qb4w_gemm not taken: " + _why_no_neon_kai(hw, "qp8_f32_qb4w_gemm", qb4w=True))
                return None
            why.append(
                f"packed-LHS pass: qdint8 input, qbint4 filter (zero point 8), fp32 output with the "
                f"qp8_f32_qb4w config available (KleidiAI NEON, {lvl4} branch; this config has no SME "
                "branch) -> qpint8 (KleidiAI per-row quantizer)"
            )
            return "qpint8"
        if k_dt in ("qcint8", "qcint4"):
            cfg = "qp8_f32_qc8w_gemm" if k_dt == "qcint8" else "qp8_f32_qc4w_gemm"
            lvl8 = hw.qp8_level
            if lvl8 is None:
                why.append(f"{cfg} not taken: " + _why_no_neon_kai(hw, cfg, qb4w=False))
                return None
            why.append(
                f"packed-LHS pass: qdint8 input, {k_dt} filter, fp32 output with the {cfg} config available "
                f"({lvl8} branch of SME2 -> SME -> i8mm -> dotprod) -> qpint8 (KleidiAI per-row quantizer)"
            )
            return "qpint8"
    return None


def _an(word: str) -> str:
    return ("an " if word[0] in "aeiouf" else "a ") + word


def _bname(node: Node) -> str:
    return "input2 (B)" if node.op == "batch_matrix_multiply" else "filter"


def _why_no_sme(hw: _Hw, cfg: str) -> str:
    if not hw.arm64:
        return f"the {cfg} config exists only on arm64 with KleidiAI"
    if not hw.t.kleidiai:
        return f"XNNPACK was built without KleidiAI, so the {cfg} config is NULL"
    return f"the target has neither SME2 nor SME, so the {cfg} config is NULL"


def _why_no_neon_kai(hw: _Hw, cfg: str, *, qb4w: bool) -> str:
    if not hw.arm64:
        return f"the {cfg} config exists only on arm64 with KleidiAI"
    if not hw.t.kleidiai:
        return f"XNNPACK was built without KleidiAI, so the {cfg} config is NULL"
    return (
        f"the target has no {'I8MM or DotProd' if qb4w else 'SME2, SME, I8MM or DotProd'}, so the {cfg} config is NULL"
    )


_GEMV_WHY = {
    "qp8_f32_qc8w_gemm": "M == 1: the 1-row qp8gemm[0] kernel (LHS still quantized and packed with mr = 1)",
    "qp8_f32_qb4w_gemm": "M == 1: the 1-row qp8gemm_bl[0] kernel",
    "qp8_f32_qc4w_gemm": "M == 1: the 1-row qp8gemm[0] kernel",
}


def _kai_gemm_kernel(hw: _Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    """(kernel, xnn_kernel, mr, nr) of a KleidiAI config (:func:`kleidiref.configs.kai_choice`)."""
    c = kai_choice(cfg, hw.t, m)
    assert c is not None
    lvl = c.branch
    if cfg in ("qp8_f32_qc8w_gemm", "qp8_f32_qb4w_gemm", "qp8_f32_qc4w_gemm"):
        many = "qp8gemm_bl[mr-1]" if cfg == "qp8_f32_qb4w_gemm" else "qp8gemm[mr-1]"
        head = _GEMV_WHY[cfg] if c.kind == "gemv" else f"M = {m} > 1: the {many} kernel"
        why.append(head + f"; {lvl} branch: XNNPACK ukernel {c.xnn_kernel}")
        return c.kernel, c.xnn_kernel, c.mr, c.nr
    if c.no_gemv:
        why.append(
            "M == 1 but the SME1 pqs8 config registers no 1-row kernel: the MOPA kernel runs on a packed single-row LHS"
        )
    elif c.kind == "gemv":
        why.append("M == 1: the 1-row kernel runs on the unpacked LHS row (gemm[0]; gemv_noop, no LHS packing)")
    else:
        why.append(f"M = {m} > 1: the {lvl.upper()} MOPA kernel on an LHS packed by the KleidiAI SME packer")
    why.append(
        f"{lvl.upper()} branch taken "
        + ("(SME2 is preferred over SME)" if lvl == "sme2" else "(no SME2 on the target)")
        + f": XNNPACK ukernel {c.xnn_kernel}"
        + f" (tile numbers for SVL {hw.t.svl_bits})"
    )
    return c.kernel, c.xnn_kernel, c.mr, c.nr


def _gemm_kernel(hw: _Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    """(kernel, xnn_kernel, mr, nr) for a GEMM config, with the M == 1 rule (gemm[0] when it exists)."""
    gemv = m == 1
    if cfg in KAI_CONFIGS:
        return _kai_gemm_kernel(hw, cfg, m, why)
    if cfg in ("f32_qc8w_gemm", "f32_qc4w_gemm"):
        _, xnn, mr, nr = f32_qcw_choice(cfg, m, hw.t, hw.platform)
        if gemv:
            why.append(f"M == 1: the 1-row kernel runs ({xnn})")
        else:
            why.append(f"M = {m} > 1: mr = config mr = {mr} ({xnn})")
        if not hw.arm64:
            why.append(_X86_ASSUMED)
        elif cfg == "f32_qc8w_gemm" and gemv:
            why.append(
                "iOS/macOS build: the 1x8 ld128 kernel (no acc4 variant)"
                if hw.platform == "apple"
                else "Linux/Android build: the 1x8 ld128_acc4 kernel (four partial sums)"
            )
        return xnn, xnn, mr, nr
    if cfg == "f16_gemm" and not hw.arm64:
        _, xnn, mr, nr = f16_x86_choice(m, igemm=False)
        why.append(
            ("M == 1: the 1-row kernel" if gemv else f"M = {m} > 1: mr = config mr = {mr}")
            + f" of the x86-64 f16_gemm config: {xnn}"
        )
        why += _x86_f16_reasons()
        return xnn, xnn, mr, nr
    # Generic XNNPACK configs.
    tbl = _generic_table(hw, cfg)
    if tbl is None:
        name = f"xnn_{cfg} (no ARM64 ukernel table in kleidiref)"
        return name, name, 0, 0
    kernels = tbl.gemm
    mr = 1 if gemv and 1 in kernels else tbl.mr
    if gemv and 1 in kernels:
        why.append(f"M == 1: gemm[0] exists, so the 1-row kernel {kernels[1]} runs")
    elif gemv:
        why.append(f"M == 1 but {cfg} registers no 1-row kernel: mr = {mr}")
    else:
        why.append(f"M = {m} > 1: mr = config mr = {mr} (no heuristic for fully connected)")
    if not hw.arm64:
        name = _x86_name(cfg)
        why.append(
            "x86-64: the config's kernels are ISA-specific (SSE/AVX/AVX-512); kleidiref uses the ARM64 "
            "kernel shapes and accumulation order of the same config"
        )
        return name, name, mr, tbl.nr
    return kernels[mr], kernels[mr], mr, tbl.nr


def _x86_f16_reasons() -> list[str]:
    return [
        _X86_ASSUMED + " (without AVX2 / AVX512SKX / AVX512-FP16 XNNPACK has no f16_gemm config and "
        "creating the fp16 operator fails with xnn_status_unsupported_hardware)",
        "the AVX2 f16_gemm entry runs f16_f32acc kernels (XNNPACK daf152873a): fp16 operands widened "
        "exactly, f32 FMA accumulation, one RN16 after the clamp",
    ]


def _generic_table(hw: _Hw, cfg: str) -> GenericConfig | None:
    return generic_config(cfg, hw.t, hw.platform)


_OPNAME = {
    "f32_gemm": "F32",
    "f32_gemm_nr2": "F32",
    "pf32_gemm": "PF32",
    "f16_gemm": "F16",
    "pf16_gemm": "PF16",
    "qd8_f32_qc8w_gemm": "QD8, F32, QC8W",
    "qp8_f32_qc8w_gemm": "QP8, F32, QC8W",
    "qd8_f32_qb4w_gemm": "QD8, F32, QB4W",
    "qp8_f32_qb4w_gemm": "QP8, F32, QB4W",
    "qd8_f32_qc4w_gemm": "QD8, F32, QC4W",
    "qp8_f32_qc4w_gemm": "QP8, F32, QC4W",
    "qs8_qc8w_gemm": "QS8, QC8W",
    "pqs8_qc8w_gemm": "PQS8, QC8W",
    "f32_qc8w_gemm": "F32, QC8W",
    "f32_qc4w_gemm": "F32, QC4W",
    "qd8_f16_qc8w_gemm": "QD8, F16, QC8W",
    "qd8_f16_qb4w_gemm": "QD8, F16, QB4W",
    "qd8_f16_qc4w_gemm": "QD8, F16, QC4W",
    "qu8_gemm": "QU8",
}


def _float_fallbacks(
    hw: _Hw, node: Node, in_dt: str, k_dt: str, out_dt: str, packed: str | None, why: list[str]
) -> tuple[str, str, str]:
    """fp16 -> fp32 (no pf16 and no f16_gemm) and bf16 -> fp32 rewrites, after the packed-LHS pass."""
    if in_dt == "fp16" and out_dt == "fp16" and packed != "pfp16":
        if hw.f16_gemm:
            return in_dt, k_dt, out_dt
        why.append(
            "fp16 node without pf16 and without f16_gemm (the target has no FP16 arithmetic): XNNPACK "
            "rewrites it to fp32 with converts around it (cvt_to_fp32); the packed-LHS pass already ran, so "
            "it gets the generic f32 kernel, not pf32"
        )
        return "fp32", "fp32", "fp32"
    if "bf16" in (in_dt, out_dt, k_dt) and in_dt in ("bf16", "fp32") and out_dt in ("bf16", "fp32"):
        why.append(
            "bf16 node: XNNPACK rewrites bf16 nodes to fp32 with converts after the packed-LHS pass, so it "
            "runs the generic f32 kernel (no KleidiAI variant)"
        )
        return "fp32", "fp32", "fp32"
    return in_dt, k_dt, out_dt


def _decide_gemm_like(hw: _Hw, node: Node, m: int, n: int, k: int, why: list[str], *, rewritten: bool) -> Decision:
    in_dt, k_dt, out_dt = node.input.dtype, node.filter.dtype, node.output.dtype
    op = "batch_matrix_multiply" if node.op == "batch_matrix_multiply" else "fully_connected"
    _fc_combo(in_dt, k_dt, out_dt, op, why)
    _check_zero_points(node, why)
    packed = _packed_fc(hw, node, in_dt, k_dt, out_dt, why)
    in_dt, k_dt, out_dt = _float_fallbacks(hw, node, in_dt, k_dt, out_dt, packed, why)
    variant: str | None = None
    opname_override: str | None = None
    floaty = out_dt in ("fp32", "fp16")
    if out_dt == "fp32" and in_dt == "fp32" and k_dt in ("fp32", "fp16"):
        if packed == "pfp32":
            cfg = variant = "pf32_gemm"
            if k_dt == "fp16":
                why.append(
                    "fp16 weights with fp32 activations: the operator converts the weights to fp32 at "
                    "creation (…_pf32_f16), then pf32"
                )
        else:
            cfg = "f32_gemm"
            if op == "fully_connected" and hw.arm64 and _use_nr2(8, 2, n):
                cfg = "f32_gemm_nr2"
                why.append(
                    f"N = {n}: xnn_use_nr2(nr=8, nr2=2, N) is true, so the f32_gemm_nr2 config (4x2 kernel) "
                    "replaces f32_gemm"
                )
    elif out_dt == "fp16" and in_dt == "qdint8" and hw.sme_level is None:
        # cvt_to_fp32.cc (GetOpActionFp16): an FC with XNN_FLAG_INLINE_LHS_PACKING (every qdint8
        # FC under ExecuTorch) stays fp16 only if the pf16 config is valid; otherwise it is
        # rewritten to fp32 after the packed-LHS pass, so qd8 (never qp8) with converts around it.
        if k_dt == "qbint4":
            _check_qb4w(node, k, why)
        cfg = {
            "qcint8": "qd8_f32_qc8w_gemm",
            "qbint4": "qd8_f32_qb4w_gemm",
            "qcint4": "qd8_f32_qc4w_gemm",
        }[k_dt]
        why.append(
            "fp16-output dynamically quantized FC without the pf16 config ("
            + _why_no_sme(hw, "pf16_gemm")
            + "): XNNPACK's fp16 fallback (cvt_to_fp32) rewrites it to fp32 after the packed-LHS pass: "
            "the fp16 input is converted to fp32 (exact), quantized by XNNPACK's f32 qd8 quantizer, "
            f"run by {cfg} and the fp32 output converted to fp16 (RNE)"
        )
    elif out_dt == "fp16":
        if in_dt == "qdint8":
            if k_dt == "qbint4":
                _check_qb4w(node, k, why)
            cfg = {
                "qcint8": "qd8_f16_qc8w_gemm",
                "qbint4": "qd8_f16_qb4w_gemm",
                "qcint4": "qd8_f16_qc4w_gemm",
            }[k_dt]
            why.append(
                "the pf16 config is valid, so XNNPACK's fp16 fallback keeps this fp16-output node: "
                f"{cfg} (fp16 activations quantized by the fp16 qd8 quantizer, binary32 epilogue, one "
                "conversion to fp16)"
            )
        elif packed == "pfp16":
            cfg = variant = "pf16_gemm"
        else:
            cfg = "f16_gemm"
            if k_dt == "fp32":
                why.append(
                    "fp32 static filter on an fp16 node: converted to fp16 at creation "
                    "(XNN_FLAG_FP32_STATIC_WEIGHTS), generic f16 kernel"
                )
        if node.bias is not None and node.bias.dtype == "fp32" and in_dt != "qdint8":
            why.append("fp32 bias on an fp16 node: converted to fp16 (RNE) at creation (XNN_FLAG_FP32_STATIC_BIASES)")
    elif in_dt == "qdint8":
        if k_dt == "qbint4":
            _check_qb4w(node, k, why)
        if packed == "qpint8":
            cfg = {
                "qcint8": "qp8_f32_qc8w_gemm",
                "qbint4": "qp8_f32_qb4w_gemm",
                "qcint4": "qp8_f32_qc4w_gemm",
            }[k_dt]
            variant = cfg
        else:
            cfg = {
                "qcint8": "qd8_f32_qc8w_gemm",
                "qbint4": "qd8_f32_qb4w_gemm",
                "qcint4": "qd8_f32_qc4w_gemm",
            }[k_dt]
            if not hw.arm64:
                why.append(
                    "x86-64: XNNPACK prefers qdu8 (unsigned, zero point + 128) configs on "
                    "AVX-VNNI/AVX512-VNNI "
                    "machines; kleidiref reports and emulates the signed qd8 path"
                )
            why.append("XNNPACK's own per-row dynamic quantization (qd8, ties to even) feeds the generic kernel")
    elif in_dt == "quint8":
        cfg = "qu8_gemm"
        _check_qs8_scale(node, n, why, kind="qu8")
        why.append(
            "quint8 node: XNNPACK's generic qu8 operator (never KleidiAI; ExecuTorch does not serialize "
            "quint8 here), rndnu requantization (xnn_init_qu8_conv_minmax_rndnu_neon_params)"
        )
    elif in_dt == "fp32" and k_dt in ("qcint8", "qcint4"):
        cfg = "f32_qc8w_gemm" if k_dt == "qcint8" else "f32_qc4w_gemm"
        why.append(f"fp32 activations with {k_dt} weights: weight-only quantized operator ({cfg}), never packed")
        if node.bias is not None:
            # Note: emulated as XNNPACK computes it, not as the node's math reads.
            why.append(
                "bias: XNNPACK packs the fp32 bias raw and multiplies the whole accumulator by the "
                "per-channel scale, so the output is (bias + sum a*w) * scale - the bias is scaled too "
                "(XNNPACK's own subgraph test disables the bias for F32QC8W/F32QC4W); kleidiref passes "
                "the bias exactly as the node has it"
            )
    else:  # qint8
        cfg = "pqs8_qc8w_gemm" if packed == "pqint8" else "qs8_qc8w_gemm"
        variant = cfg if packed == "pqint8" else None
        if op == "fully_connected":
            _check_qs8_scale(node, n, why)
        if k_dt == "qint8":
            why.append("per-tensor qint8 filter: the qs8 operator broadcasts the scale and uses the qs8_qc8w config")
            opname_override = "QS8"
    why += _fz_reason(hw, floaty)
    kernel, xnn, mr, nr = _gemm_kernel(hw, cfg, m, why)
    if cfg == "qp8_f32_qc4w_gemm" and hw.qp8_level == "sme2" and "transpose_weights" in node.flags:
        # Note: inferred from source, not run: kleidiref computes the transposed product.
        why.append(
            "upstream hazard: the SME2 qc4w weight packer (xnn_pack_kai_qs4_weights_and_biases_sme) "
            "always calls the nxk KleidiAI packer and ignores XNN_FLAG_TRANSPOSE_WEIGHTS, so XNNPACK "
            "would read a [K, N] filter as [N, K]"
        )
    if variant is None:
        why.append("result: a generic XNNPACK kernel runs (none of the KleidiAI variants)")
    else:
        why.append(f"result: KleidiAI variant {variant} runs ({kernel})")
    kind = "Batch Matrix Multiply (NC, " if op == "batch_matrix_multiply" else "Fully Connected (NC, "
    opname = kind + (opname_override or _OPNAME.get(cfg, cfg.upper())) + ")"
    return Decision(
        variant=variant,
        config=cfg,
        microkernel="gemm",
        kernel=kernel,
        reasons=tuple(why),
        xnn_kernel=xnn,
        operator=opname,
        op=op,
        m=m,
        mr=mr,
        nr=nr,
        input_datatype=packed or in_dt,
        rewritten_to_fc=rewritten,
        flush_to_zero=hw.t.flush_to_zero,
        platform=hw.platform,
    )


def _fc_dims(node: Node, why: list[str]) -> tuple[int, int, int]:
    f = node.filter
    if len(f.shape) != 2:
        raise NodeRejected(
            f"a fully-connected filter is 2-D ([N, K], or [K, N] with transpose_weights); got {f.shape}", why
        )
    if len(node.input.shape) < 1:
        raise NodeRejected("a fully-connected input needs at least one dimension ([.., K])", why)
    transpose = "transpose_weights" in node.flags
    n, kf = (f.shape[1], f.shape[0]) if transpose else f.shape
    k = node.input.shape[-1]
    if kf != k:
        raise NodeRejected(
            f"input K = {k} does not match the filter's K = {kf} (filter {f.shape}, transpose_weights={transpose})",
            why,
        )
    m = _prod(node.input.shape[:-1])
    if node.bias is not None and node.bias.shape not in ((n,), ()):
        raise NodeRejected(f"bias must have shape [{n}], got {list(node.bias.shape)}", why)
    out = node.output.shape
    if out and out[-1] != n:
        raise NodeRejected(f"output's last dimension must be N = {n}, got {list(out)}", why)
    return m, n, k


def _decide_fc(hw: _Hw, node: Node, why: list[str], *, rewritten: bool = False) -> Decision:
    m, n, k = _fc_dims(node, why)
    why.append(f"fully connected: M = {m} (product of the input's leading dims), N = {n}, K = {k}")
    return _decide_gemm_like(hw, node, m, n, k, why, rewritten=rewritten)


def _decide_bmm(hw: _Hw, node: Node, why: list[str]) -> Decision:
    a, b = node.input.shape, node.filter.shape
    if len(a) < 2 or len(b) < 2:
        raise NodeRejected(f"batch matrix multiply needs inputs of rank >= 2, got {list(a)} and {list(b)}", why)
    m, k = a[-2], a[-1]
    tb = "transpose_b" in node.flags or "transpose_weights" in node.flags
    kb, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if kb != k:
        raise NodeRejected(f"input1 K = {k} does not match input2's K = {kb} (transpose_b={tb})", why)
    try:
        np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    except ValueError:
        raise NodeRejected(f"batch dimensions {list(a[:-2])} and {list(b[:-2])} do not broadcast", why) from None
    why.append(
        f"batch matrix multiply: M = {m}, N = {n}, K = {k} per batch; B "
        f"{'static (packed once)' if node.filter.static else 'dynamic (packed on every run)'}; "
        "static/dynamic B and transpose flags do not change the config"
    )
    return _decide_gemm_like(hw, node, m, n, k, why, rewritten=False)


def _conv_out(h: int, pad: int, kk: int, dil: int, s: int) -> int:
    return max(0, conv_output_size(h + pad, kk, dil, s))


def _decide_conv(hw: _Hw, node: Node, why: list[str]) -> Decision:
    c = node.convolution
    assert c is not None
    x, f = node.input.shape, node.filter.shape
    if len(x) != 4:
        raise NodeRejected(f"convolution input must be NHWC (4-D), got {list(x)}", why)
    if len(f) != 4:
        raise NodeRejected(f"convolution filter must be [O, kh, kw, I/groups] (4-D), got {list(f)}", why)
    kh, kw = c.kernel
    if (f[1], f[2]) != (kh, kw):
        raise NodeRejected(f"filter spatial dims {f[1]}x{f[2]} do not match kernel {kh}x{kw}", why)
    g = c.groups
    cin, cout = x[3], f[0]
    if cin % g or cout % g:
        raise NodeRejected(f"groups = {g} must divide input channels {cin} and output channels {cout}", why)
    gic, goc = cin // g, cout // g
    if f[3] != gic:
        raise NodeRejected(f"filter's last dim must be I/groups = {gic}, got {f[3]}", why)
    sh, sw = c.stride
    pt, pr, pb, pl = c.padding
    hout = _conv_out(x[1], pt + pb, kh, c.dilation[0], sh)
    wout = _conv_out(x[2], pl + pr, kw, c.dilation[1], sw)
    out = node.output.shape
    if out and tuple(out) != (x[0], hout, wout, cout):
        raise NodeRejected(
            f"output shape must be {[x[0], hout, wout, cout]} for these parameters, got {list(out)}", why
        )
    if node.bias is not None and node.bias.shape not in ((cout,), ()):
        raise NodeRejected(f"bias must have shape [{cout}], got {list(node.bias.shape)}", why)
    # xnn_define_convolution_2d checks the datatypes *before* the conv -> FC rewrite
    # (src/subgraph/convolution-2d.c ~L1160-1320).
    for role, spec, allowed in (
        ("input", node.input, ("fp32", "fp16", "qint8", "quint8", "qdint8")),
        ("filter", node.filter, ("fp32", "fp16", "qint8", "qcint8", "quint8")),
        ("output", node.output, ("fp32", "fp16", "qint8", "quint8")),
    ):
        if spec.dtype not in allowed:
            extra = (
                " (4-bit weights are fully-connected only: ExecuTorch exports such a convolution, but it fails at load)"
                if spec.dtype in ("qcint4", "qbint4")
                else ""
            )
            raise NodeRejected(
                f"xnn_define_convolution_2d rejects {_an(spec.dtype)} {role} (accepted: {', '.join(allowed)})" + extra,
                why,
            )
    becomes_fc = g == 1 and kh * kw == 1 and (sh, sw) == (1, 1) and c.padding == (0, 0, 0, 0) and gic + goc > 2
    if becomes_fc:
        why.append(
            "conv -> FC rewrite: groups 1, 1x1 kernel, stride 1, no padding and Cin + Cout > 2, so "
            "xnn_define_convolution_2d defines a fully-connected node (filter [O,1,1,I] read as [O,I], "
            "flags 0" + ("; qdint8 input re-quantized per pixel row" if node.input.dtype == "qdint8" else "") + ")"
        )
        fc = Node(
            op="fully_connected",
            input=dataclasses.replace(node.input, shape=(x[0] * x[1] * x[2], cin)),
            filter=dataclasses.replace(node.filter, shape=(cout, cin)),
            output=dataclasses.replace(node.output, shape=(x[0] * x[1] * x[2], cout)),
            bias=node.bias,
            flags=(),
        )
        d = _decide_fc(hw, fc, why, rewritten=True)
        return d
    why.append(_why_not_fc(c, gic, goc))
    in_dt, k_dt, out_dt = node.input.dtype, node.filter.dtype, node.output.dtype
    ok = {
        ("fp32", "fp32", "fp32"),
        ("fp32", "fp16", "fp32"),
        ("fp16", "fp16", "fp16"),
        ("fp16", "fp32", "fp16"),
        ("qdint8", "qcint8", "fp32"),
        ("qint8", "qint8", "qint8"),
        ("quint8", "quint8", "quint8"),
        ("qint8", "qcint8", "qint8"),
    }
    if (in_dt, k_dt, out_dt) not in ok:
        extra = (
            (
                " (dynamic-quant convolution with 4-bit weights: ExecuTorch exports it, but XNNPACK "
                "has no qd8 x "
                "qc4w/qb4w convolution)"
            )
            if in_dt == "qdint8"
            else ""
        )
        raise NodeRejected(
            f"XNNPACK has no convolution operator for input {in_dt}, filter {k_dt}, output {out_dt}" + extra,
            why,
        )
    lvl = hw.sme_level
    packed: str | None = None
    if in_dt == "qint8" and lvl is not None:
        packed = "pqint8"
        why.append(
            f"packed-LHS pass (conv): qint8 input, {k_dt} filter, qint8 output, pqs8_qc8w available "
            f"({lvl.upper()}) -> pqint8 (the conv rule accepts a per-tensor qint8 filter too)"
        )
    elif in_dt == "fp32" and lvl is not None:
        packed = "pfp32"
        why.append(f"packed-LHS pass (conv): fp32 input/output, {k_dt} filter, pf32 available ({lvl.upper()}) -> pfp32")
    elif in_dt == "fp16" and lvl is not None:
        packed = "pfp16"
        why.append(
            f"packed-LHS pass (conv): fp16 input/output, {k_dt} filter (the conv rule accepts an fp32 "
            f"filter), pf16 available ({lvl.upper()}) -> pfp16"
        )
    elif in_dt == "qdint8":
        why.append("a dynamically quantized convolution never gets a packed type (no qp8 for conv): qd8 IGEMM")
    elif in_dt == "quint8":
        why.append(
            "quint8 convolution: XNNPACK's generic qu8 operator (never KleidiAI), rndnu requantization "
            "(xnn_init_qu8_conv_minmax_rndnu_neon_params)"
        )
    elif in_dt in ("qint8", "fp32", "fp16"):
        why.append(
            "no packed type: "
            + _why_no_sme(hw, {"qint8": "pqs8_qc8w_gemm", "fp32": "pf32_gemm", "fp16": "pf16_gemm"}[in_dt])
        )
    conv_node = dataclasses.replace(node, input=node.input)  # datatypes may change below
    in_dt, k_dt, out_dt = _float_fallbacks(hw, conv_node, in_dt, k_dt, out_dt, packed, why)
    if in_dt == "fp32" and node.input.dtype in ("fp16", "bf16"):
        packed = None
    floaty = out_dt in ("fp32", "fp16")
    variant: str | None
    if out_dt == "fp32" and in_dt == "fp32":
        cfg, variant, fam = ("pf32_gemm", "pf32_gemm", "f32") if packed == "pfp32" else ("f32_igemm", None, "f32")
        opname = "PF32" if variant else "F32"
    elif out_dt == "fp16":
        cfg, variant, fam = ("pf16_gemm", "pf16_gemm", "f16") if packed == "pfp16" else ("f16_gemm", None, "f16")
        opname = "PF16" if variant else "F16"
    elif in_dt == "quint8":
        cfg, variant, fam, opname = "qu8_gemm", None, "qu8", "QU8"
        _check_qs8_scale(node, cout, why, kind="qu8")
    elif in_dt == "qdint8":
        cfg, variant, fam, opname = "qd8_f32_qc8w_gemm", None, "qd8", "QD8, F32, QC8W"
        why.append(
            "dynamic quantization per image (num_nonbatch_dims = 3 from ExecuTorch) by XNNPACK's qd8 "
            "convert; padding reads the image's zero point"
        )
    else:
        if packed == "pqint8":
            cfg, variant, fam = "pqs8_qc8w_gemm", "pqs8_qc8w_gemm", "qs8"
            opname = "PQS8, QS8, QC8W"
        else:
            cfg, variant, fam = "qs8_qc8w_gemm", None, "qs8"
            opname = "QS8" if k_dt == "qint8" else "QC8"
        _check_qs8_scale(node, cout, why)
    why += _fz_reason(hw, floaty)
    # Micro-kernel type (select_microkernel_type, convolution-nhwc.c L563-589).
    taps = kh * kw
    depthwise = gic == 1 and goc == 1
    vm_ok = fam in ("f32", "f16") and (fam == "f32" or hw.f16_gemm) and hw.arm64
    dw_tbl = DWCONV.get(fam) if hw.arm64 and not (fam == "f16" and not hw.t.fp16_arith) else None
    tile = min((t for t in dw_tbl if t >= taps), default=None) if dw_tbl else None
    mk: Microkernel
    dwtile: int | None = None
    if depthwise and taps == 1 and (sh, sw) == (1, 1) and c.padding == (0, 0, 0, 0) and vm_ok:
        mk = "vmulcaddc"
        kernel = VMULCADDC[fam]
        why.append(
            "depthwise-like 1x1 (1 input and 1 output channel per group, stride 1, no padding): the generic "
            f"vmulcaddc kernel {kernel} runs, even with a {opname} operator"
        )
        mr, nr, variant, cfg = 1, 0, None, f"{fam}_vmulcaddc"
        xnn = kernel
    elif depthwise and tile is not None and dw_tbl is not None:
        mk = "dwconv"
        kernel = dw_tbl[tile]
        dwtile = tile
        why.append(
            f"depthwise shape (1 input and 1 output channel per group): the generic dwconv kernel with the "
            f"smallest primary tile >= {taps} taps runs ({kernel}), not a KleidiAI kernel"
        )
        mr, nr, variant = 1, 0, None
        cfg = {"qs8": "qs8_qc8w_dwconv", "qu8": "qu8_dwconv"}.get(fam, f"{fam}_dwconv")
        xnn = kernel
    else:
        mk = "igemm"
        if depthwise:
            why.append(
                f"depthwise shape but no dwconv kernel for {taps} taps"
                + (" (qd8 has no dwconv kernel)" if fam == "qd8" else "")
                + ": IGEMM"
            )
        kernel, xnn, mr, nr = _igemm_kernel(hw, cfg, hout * wout, why)
        if cfg == "f32_igemm" and hw.arm64 and goc < 8:
            cfg = "f32_gemm_nr2"
            kernel = xnn = _generic_table(hw, "f32_gemm_nr2").igemm[4]  # type: ignore[union-attr]
            mr, nr = 4, 2
            why.append(f"group output channels {goc} < f32_igemm nr 8: the f32_gemm_nr2 config's 4x2 IGEMM replaces it")
        if cfg == "pf16_gemm" and hw.t.svl_bits == 128:
            why.append(
                "upstream hazard: at SVL 128 XNNPACK packs pf16 conv weights with nr = 16 while the "
                "kernel reads "
                "nr = 8 (dispatch.md §4.5); kleidiref emulates the kernel-consistent layout"
            )
    if variant is None:
        why.append("result: a generic XNNPACK kernel runs (none of the KleidiAI variants)")
    else:
        why.append(f"result: KleidiAI variant {variant} runs ({kernel}) through XNNPACK's IGEMM wrapper {xnn}")
    return Decision(
        variant=variant,
        config=cfg,
        microkernel=mk,
        kernel=kernel,
        reasons=tuple(why),
        xnn_kernel=xnn,
        operator=f"Convolution (NHWC, {opname})",
        op="convolution_2d",
        m=x[0] * hout * wout,
        mr=mr,
        nr=nr,
        input_datatype=packed or in_dt,
        rewritten_to_fc=False,
        flush_to_zero=hw.t.flush_to_zero,
        dwconv_tile=dwtile,
        platform=hw.platform,
    )


def _why_not_fc(c: ConvParams, gic: int, goc: int) -> str:
    fails = []
    if c.groups != 1:
        fails.append(f"groups = {c.groups}")
    if c.kernel != (1, 1):
        fails.append(f"kernel {c.kernel[0]}x{c.kernel[1]}")
    if c.stride != (1, 1):
        fails.append(f"stride {c.stride}")
    if c.padding != (0, 0, 0, 0):
        fails.append("padding")
    if c.groups == 1 and c.kernel == (1, 1) and gic + goc <= 2:
        fails.append("Cin + Cout <= 2")
    return "no conv -> FC rewrite (" + ", ".join(fails) + "): the convolution operator runs"


def _igemm_kernel(hw: _Hw, cfg: str, m: int, why: list[str]) -> tuple[str, str, int, int]:
    if cfg in KAI_CONFIGS:
        c = kai_choice(cfg, hw.t, m, igemm=True)
        assert c is not None
        why.append(
            f"SME configs register only igemm[mr-1]: the {c.branch.upper()} MOPA kernel runs with the full mr "
            f"= {c.mr} on an LHS packed per tile (x32/x16/x8_igemm_pack_lh), K' = taps x channels"
        )
        return c.kernel, c.xnn_kernel, c.mr, c.nr
    tbl = _generic_table(hw, cfg)
    assert tbl is not None
    kernels = tbl.igemm
    if cfg == "f16_gemm" and not hw.arm64:
        big, nr = f16_x86_choice(2, igemm=True)[2:]
        mr = _heuristic_mr(m, big, nr, (1, big))
        xnn = f16_x86_choice(mr, igemm=True)[1]
        why.append(f"IGEMM mr heuristic (xnn_get_heuristic_mr_igemm) for {m} output pixels: mr = {mr} -> {xnn}")
        why += _x86_f16_reasons()
        return xnn, xnn, mr, nr
    mr = _heuristic_mr(m, tbl.mr, tbl.nr, sorted(kernels))
    if not hw.arm64:
        name = _x86_name(cfg)
        return name, name, mr, tbl.nr
    why.append(f"IGEMM mr heuristic (xnn_get_heuristic_mr_igemm) for {m} output pixels: mr = {mr} -> {kernels[mr]}")
    return kernels[mr], kernels[mr], mr, tbl.nr


def decide(node: Node, target: Target, *, platform: Platform = "linux") -> Decision:
    """The XNNPACK decision for ``node`` on ``target``; raises :class:`NodeRejected` if XNNPACK refuses it.

    ``platform='apple'`` models an iOS/macOS build (different f32 kernels, dispatch.md §7.6).
    """
    if not isinstance(node, Node):
        raise TypeError(f"decide expects a Node, got {type(node).__name__}")
    if not isinstance(target, Target):
        raise TypeError(f"decide expects a Target, got {type(target).__name__}")
    if platform not in ("linux", "apple"):
        raise ValueError("platform must be 'linux' or 'apple'")
    hw = _Hw(target, platform)
    why = [hw.feature_summary()]
    if node.op == "fully_connected":
        return _decide_fc(hw, node, why)
    if node.op == "batch_matrix_multiply":
        return _decide_bmm(hw, node, why)
    return _decide_conv(hw, node, why)


def explain_case(obj: object) -> Decision | NodeRejected:
    """Parse a CASE object and decide; a rejection is returned (not raised). Bad CASEs raise CaseError."""
    node, t, platform = parse_case(obj)
    try:
        return decide(node, t, platform=platform)
    except NodeRejected as exc:
        return exc
