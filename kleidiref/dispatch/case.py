"""The node and target a decision is about, and the JSON CASE contract ``kleidiref explain`` reads."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..configs import Platform
from ..targets import Target
from .decision import CaseError

__all__ = [
    "CONV_OPS",
    "DTYPES",
    "MAX_CASE_BYTES",
    "OPS",
    "ConvParams",
    "Node",
    "TensorSpec",
    "an",
    "bname",
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
OPS: tuple[str, ...] = (
    "fully_connected",
    "convolution_2d",
    "batch_matrix_multiply",
    "depthwise_convolution_2d",
    "deconvolution_2d",
)
#: The node kinds that carry ``convolution`` parameters (a deconvolution's stride is its upsampling).
CONV_OPS: tuple[str, ...] = ("convolution_2d", "depthwise_convolution_2d", "deconvolution_2d")
_FLAGS = ("transpose_weights", "transpose_b")


def _as_float(v: float, where: str) -> float:
    try:
        return float(v)
    except OverflowError:
        raise CaseError(f"{where}.scale {str(v)[:20]}... is too large for a float") from None


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
            scale = tuple(_as_float(s, where) for s in scale)
        elif scale is not None:
            if isinstance(scale, bool) or not isinstance(scale, (int, float)):
                raise CaseError(f"{where}.scale must be a number or a list of numbers")
            scale = _as_float(scale, where)
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
        if self.op in CONV_OPS and self.convolution is None:
            raise CaseError(f"a {self.op} node needs 'convolution' parameters")

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
    """A CASE ``target`` -> (:class:`Target`, platform). Optional: ``flush_to_zero``, ``platform``, ``name`` and
    ``x86_isa`` (an x86_64 target's ISA level, default ``"avx2"``; absent or null on arm64)."""
    if not isinstance(obj, Mapping):
        raise CaseError("'target' must be an object")
    # A target without SME has no SVL: svl_bits may be omitted, null or 0 there.
    no_sme = obj.get("sme2") is False and obj.get("sme") is False
    missing = [k for k in _TARGET_KEYS if k not in obj and not (k == "svl_bits" and no_sme)]
    if missing:
        raise CaseError(f"target is missing {missing} (required: {', '.join(_TARGET_KEYS)})")
    unknown = set(obj) - set(_TARGET_KEYS) - {"flush_to_zero", "platform", "name", "x86_isa"}
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
            x86_isa=obj.get("x86_isa"),
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


#: A CASE file describes one node: anything larger is refused before it is read.
MAX_CASE_BYTES = 1 << 20


def load_case(path: str | Path) -> tuple[Node, Target, Platform]:
    """Read and parse a CASE file; anything wrong with it is a :class:`CaseError`."""
    try:
        with Path(path).open("rb") as fh:
            raw = fh.read(MAX_CASE_BYTES + 1)
    except OSError as exc:
        raise CaseError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CASE_BYTES:
        raise CaseError(f"{path}: larger than {MAX_CASE_BYTES:,} bytes (a CASE describes one node)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaseError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise CaseError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise CaseError(f"{path}: not usable JSON ({exc})") from None
    return parse_case(obj)


def an(word: str) -> str:
    return ("an " if word[0] in "aeiouf" else "a ") + word


def bname(node: Node) -> str:
    return "input2 (B)" if node.op == "batch_matrix_multiply" else "filter"
