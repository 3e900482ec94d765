"""The XNNPACK delegate blob: ``XNNHeader``, the ``XNNGraph`` flatbuffer, and its constant data.

Mirrors ExecuTorch's ``backends/xnnpack/serialization/schema.fbs`` (file identifier ``XN01``, what the
exporter writes) and ``runtime_schema.fbs`` (``XN00``, which keeps the inline ``constant_buffer`` and adds
``XNNTensorValue.dq_datatype``); the blob header is ``backends/xnnpack/runtime/XNNHeader.cpp``; how the
runtime turns values into XNNPACK tensors is ``backends/xnnpack/runtime/XNNCompiler.cpp`` (``defineTensor``).

Constant bytes are found as the runtime finds them: a ``ConstantDataOffset`` with a ``named_key`` is looked
up in the program's named data; otherwise its ``offset`` is relative to the blob's constant-data section;
files with the legacy inline ``constant_buffer`` use that. Datatypes are ExecuTorch's ``XNNDatatype`` numbers,
not XNNPACK's C enum (``XNNCompiler.cpp`` ``getDataType`` translates by name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from ml_dtypes import bfloat16

from ..limits import check_bytes
from .flatbuffer import Buffer, PteError, Table

__all__ = [
    "DATATYPES",
    "INVALID_ID",
    "NODE_TYPES",
    "QuantParams",
    "XnnGraph",
    "XnnHeader",
    "XnnNode",
    "XnnValue",
    "parse_xnn_blob",
    "parse_xnn_header",
    "unpack_int4",
]

#: ``XNN_INVALID_VALUE_ID``: an absent optional input (a bias) or a value without an external id.
INVALID_ID = 0xFFFFFFFF

#: ExecuTorch's ``XNNDatatype`` (``schema.fbs``), value -> name without the ``xnn_datatype_`` prefix.
DATATYPES: dict[int, str] = {
    0: "invalid",
    1: "fp32",
    2: "fp16",
    3: "qint8",
    4: "quint8",
    5: "qint32",
    6: "qcint8",
    7: "qcint32",
    8: "qcint4",
    9: "qdint8",
    10: "qbint4",
    11: "qpint8",
    12: "int32",
    13: "pfp32",
    14: "bf16",
}

# numpy element type of constant data per datatype; the 4-bit ones are stored two per byte (unpack_int4).
_NUMPY: dict[str, npt.DTypeLike] = {
    "fp32": np.float32,
    "fp16": np.float16,
    "bf16": bfloat16,
    "qint8": np.int8,
    "qcint8": np.int8,
    "qdint8": np.int8,
    "quint8": np.uint8,
    "qint32": np.int32,
    "qcint32": np.int32,
    "int32": np.int32,
}
_INT4 = ("qcint4", "qbint4")

# Node tables: field names in slot order; "[u4]" marks a [uint] vector, "f" a float, everything else uint.
_N1X1 = ("input_id", "output_id", "flags")
_N2X1 = ("input1_id", "input2_id", "output_id", "flags")
_CONV = (
    "padding_top",
    "padding_right",
    "padding_bottom",
    "padding_left",
    "kernel_height",
    "kernel_width",
    "subsampling_height",
    "subsampling_width",
    "dilation_height",
    "dilation_width",
    "group_input_channels",
    "group_output_channels",
    "groups",
    "adjustment_height",
    "adjustment_width",
    "input1_id",
    "filter_id",
    "bias_id",
    "output_id",
    "flags",
)
_POOL = (
    "padding_top",
    "padding_right",
    "padding_bottom",
    "padding_left",
    "pooling_height",
    "pooling_width",
    "stride_height",
    "stride_width",
    "dilation_height",
    "dilation_width",
    *_N1X1,
)
_CAT = ("axis", "input1_id", "input2_id", "input3_id", "input4_id", "output_id", "flags", "input5_id")
_INPUT_FIELDS = (
    "input_id",
    "input1_id",
    "input2_id",
    "filter_id",
    "bias_id",
    "query_id",
    "key_id",
    "value_id",
    "scale_id",
    "mask_id",
)
_OUTPUT_FIELDS = ("output_id", "output_value_id", "output_index_id")
_FLOAT_FIELDS = frozenset({"padding_value", "alpha", "negative_slope"})
_VECTOR_FIELDS = frozenset({"perm", "new_shape", "pre_paddings", "post_paddings", "offsets", "sizes"})

#: ``XNodeUnion`` in ``schema.fbs`` order (union type = position + 1): node table name and field names.
NODE_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("XNNAdd", _N2X1),
    ("XNNFullyConnected", ("input1_id", "filter_id", "bias_id", "output_id", "flags")),
    ("XNNSoftmax", _N1X1),
    ("XNNSigmoid", _N1X1),
    ("XNNStaticTranspose", ("num_dims", "perm", *_N1X1)),
    ("XNNClamp", _N1X1),
    ("XNNConv2d", _CONV),
    ("XNNDiv", _N2X1),
    ("XNNStaticResizeBilinear2D", ("new_height", "new_width", *_N1X1)),
    ("XNNStaticConstantPad", ("pre_paddings", "post_paddings", "padding_value", *_N1X1)),
    ("XNNAvgPooling2d", _POOL),
    ("XNNMinimum", _N2X1),
    ("XNNDepthwiseConv2d", _CONV),
    ("XNNMaxPooling2d", _POOL),
    ("XNNMultiply", _N2X1),
    ("XNNSubtract", _N2X1),
    ("XNNFloor", _N1X1),
    ("XNNConvert", _N1X1),
    ("XNNGlobalAvgPooling2d", _N1X1),
    ("XNNStaticReshape", ("num_dims", "new_shape", *_N1X1)),
    (
        "XNNArgMaxPooling2d",
        (
            "padding_top",
            "padding_right",
            "padding_bottom",
            "padding_left",
            "pooling_height",
            "pooling_width",
            "input_id",
            "output_value_id",
            "output_index_id",
            "flags",
        ),
    ),
    ("XNNSquareRoot", _N1X1),
    ("XNNCeiling", _N1X1),
    ("XNNHardswish", _N1X1),
    ("XNNLeakyReLU", ("negative_slope", *_N1X1)),
    ("XNNMaximum", _N2X1),
    ("XNNNegate", _N1X1),
    ("XNNSquare", _N1X1),
    ("XNNELU", ("alpha", *_N1X1)),
    ("XNNAbs", _N1X1),
    ("XNNPReLU", _N2X1),
    ("XNNConcatenate2", _CAT),
    ("XNNConcatenate3", _CAT),
    ("XNNConcatenate4", _CAT),
    ("XNNStaticSlice", ("num_dims", "offsets", "sizes", *_N1X1)),
    (
        "XNNScaledDotProductAttention",
        ("query_id", "key_id", "value_id", "scale_id", "mask_id", "output_id", "flags"),
    ),
    ("XNNBatchMatrixMultiply", _N2X1),
    ("XNNConcatenate5", _CAT),
    ("XNNConvTranspose2d", _CONV),
    ("XNNReciprocalSquareRoot", _N1X1),
    ("XNNLog", _N1X1),
    ("XNNGelu", _N1X1),
    ("XNNTanh", _N1X1),
    ("XNNExp", _N1X1),
    ("XNNSin", _N1X1),
    ("XNNCopy", _N1X1),
    ("XNNCos", _N1X1),
)

_QUANT_KINDS = ("PerChannelQuant", "PerTensorQuant", "PerTokenDynamicQuant", "PerChannelGroupQuant")
_XH_MAGIC = b"XH00"
_XH_MIN_SIZE = 30
_XN_IDENTIFIERS = (b"XN01", b"XN00")
_NO_OFFSET = (1 << 64) - 1


@dataclass(frozen=True)
class XnnHeader:
    """The ``XNNHeader`` in front of the blob: where the flatbuffer and the constant data lie."""

    flatbuffer_offset: int
    flatbuffer_size: int
    constant_data_offset: int
    constant_data_size: int


@dataclass(frozen=True, eq=False)
class QuantParams:
    """A value's quantization (``XNNQuantParams`` union), scales resolved to numpy arrays.

    ``kind`` is the union member's table name. ``scale`` is a float32 array for per-tensor (shape ``()``)
    and per-channel, ``[N, K/group_size]`` bfloat16 for ``PerChannelGroupQuant`` (as the runtime passes
    it to ``xnn_define_blockwise_quantized_tensor_value``), None for ``PerTokenDynamicQuant``.
    ``scale_buffer_idx`` (0: scales inline in ``inline_scale``) indexes ``XnnGraph.constant_data``.
    ``scale_storage`` is how the stored scales are encoded (``"fp32"``, ``"fp16"``, ``"bf16"``, ``"inline"``).
    """

    kind: str
    scale: npt.NDArray[Any] | None = None
    zero_point: int = 0
    channel_dim: int = 0
    group_size: int = 0
    num_scales: int = 0
    scale_buffer_idx: int = 0
    num_nonbatch_dims: int = 0
    inline_scale: tuple[float, ...] = ()
    inline_scale_bf16: tuple[int, ...] | None = None
    scale_storage: str = ""


@dataclass(frozen=True, eq=False)
class XnnValue:
    """One ``XValue``: an ``XNNTensorValue``, possibly wrapped in an ``XNNQuantizedTensorValue``.

    ``dims`` are the stored dims (see :func:`kleidiref.pte.runtime_shapes` for the shapes at run time).
    ``data`` is the constant's contents as a read-only array of ``dims`` (4-bit weights unpacked to int8
    in [-8, 7], see :func:`unpack_int4`; ``raw`` keeps the stored bytes), None for non-constants.
    """

    id: int
    datatype: int
    dims: tuple[int, ...]
    num_dims: int
    constant_buffer_idx: int
    external_id: int
    flags: int
    id_out: int
    quant: QuantParams | None = None
    dq_datatype: int = 0
    data: npt.NDArray[Any] | None = None
    raw: bytes | None = None

    @property
    def datatype_name(self) -> str:
        return DATATYPES.get(self.datatype, f"unknown({self.datatype})")

    @property
    def is_constant(self) -> bool:
        return self.constant_buffer_idx != 0

    @property
    def is_external_input(self) -> bool:
        return bool(self.flags & 1)  # XNN_VALUE_FLAG_EXTERNAL_INPUT

    @property
    def is_external_output(self) -> bool:
        return bool(self.flags & 2)  # XNN_VALUE_FLAG_EXTERNAL_OUTPUT


@dataclass(frozen=True)
class XnnNode:
    """One ``XNode``: the union member's table name (``XNNFullyConnected``...) and all its fields."""

    index: int
    type: str
    fields: Mapping[str, Any]
    debug_handle: int
    output_min_max: tuple[float, float] | None = None

    @property
    def inputs(self) -> tuple[int, ...]:
        """Value ids the node reads, in field order (absent optional inputs, such as a bias, left out)."""
        names: tuple[str, ...] = _INPUT_FIELDS
        if self.type.startswith("XNNConcatenate"):
            names = tuple(f"input{i + 1}_id" for i in range(int(self.type[-1])))
        return tuple(self.fields[k] for k in names if k in self.fields and self.fields[k] != INVALID_ID)

    @property
    def outputs(self) -> tuple[int, ...]:
        """Value ids the node writes."""
        return tuple(self.fields[k] for k in _OUTPUT_FIELDS if k in self.fields)


@dataclass(frozen=True)
class XnnGraph:
    """A decoded ``XNNGraph``: values indexed by id, nodes in execution order."""

    version: str
    values: tuple[XnnValue, ...]
    nodes: tuple[XnnNode, ...]
    num_externs: int
    input_ids: tuple[int, ...]
    output_ids: tuple[int, ...]
    constant_data: tuple[tuple[int, int, str], ...]
    header: XnnHeader | None = None

    def value(self, value_id: int) -> XnnValue:
        """The value with this id (a :class:`PteError` if there is none)."""
        if not 0 <= value_id < len(self.values):
            raise PteError(f"XNNGraph: value id {value_id} out of range (the graph has {len(self.values)} values)")
        return self.values[value_id]

    def producer(self, value_id: int) -> XnnNode | None:
        """The node whose output is this value (None for inputs and constants)."""
        for node in self.nodes:
            if value_id in node.outputs:
                return node
        return None


def unpack_int4(packed: npt.NDArray[np.uint8], dims: tuple[int, ...]) -> npt.NDArray[np.int8]:
    """Unpack 4-bit weights as ExecuTorch stores them (``node_visitor.py`` ``convert_to_qc4w``).

    Rows are the last dim (``K``), padded to even; element ``2j`` is the low nibble and ``2j + 1`` the
    high nibble of byte ``j``; each nibble holds ``value + 8`` (zero point 8, as ``XNNCompiler.cpp``
    defines qcint4/qbint4 values). Returns int8 values in [-8, 7] of shape ``dims``.
    """
    k = dims[-1] if dims else 1
    rows = int(np.prod(dims[:-1], dtype=np.int64)) if len(dims) > 1 else 1
    pairs = packed.reshape(rows, (k + 1) // 2)
    out = np.empty((rows, 2 * pairs.shape[1]), dtype=np.int8)
    out[:, 0::2] = (pairs & 0x0F).astype(np.int8) - 8
    out[:, 1::2] = (pairs >> 4).astype(np.int8) - 8
    return out[:, :k].reshape(dims)


def parse_xnn_header(blob: memoryview) -> XnnHeader | None:
    """The ``XNNHeader`` (``XNNHeader.cpp`` ``Parse``), or None for a legacy blob without one."""
    buf = Buffer(blob, "XNNPACK delegate blob")
    if buf.size < 8 or bytes(blob[4:8]) != _XH_MAGIC:
        return None
    buf.check(0, _XH_MIN_SIZE, "XNNHeader")
    hdr = XnnHeader(
        int(buf.scalar("I", 10, "XNNHeader flatbuffer offset")),
        int(buf.scalar("I", 14, "XNNHeader flatbuffer size")),
        int(buf.scalar("I", 18, "XNNHeader constant data offset")),
        int(buf.scalar("Q", 22, "XNNHeader constant data size")),
    )
    if hdr.flatbuffer_size < 8 or hdr.flatbuffer_offset + hdr.flatbuffer_size > buf.size:
        raise PteError(
            f"XNNHeader: flatbuffer at offset {hdr.flatbuffer_offset}, {hdr.flatbuffer_size} bytes, "
            f"does not fit the {buf.size}-byte delegate blob"
        )
    if hdr.constant_data_offset + hdr.constant_data_size > buf.size:
        raise PteError(
            f"XNNHeader: constant data at offset {hdr.constant_data_offset}, {hdr.constant_data_size} bytes, "
            f"does not fit the {buf.size}-byte delegate blob"
        )
    if hdr.constant_data_offset < hdr.flatbuffer_offset + hdr.flatbuffer_size:
        raise PteError("XNNHeader: the constant data overlaps the flatbuffer (it must follow it)")
    return hdr


def _node(t: Table, index: int) -> XnnNode:
    kind, body = t.union(0, "xnode_union")
    if not 1 <= kind <= len(NODE_TYPES):
        raise PteError(f"{t.buf.name}: {t.path}: unknown XNode union type {kind}")
    name, names = NODE_TYPES[kind - 1]
    if body is None:
        raise PteError(f"{t.buf.name}: {t.path}: {name} node without its table")
    fields: dict[str, Any] = {}
    for slot, field in enumerate(names):
        if field in _VECTOR_FIELDS:
            fields[field] = body.ints(slot, "<u4", field)
        elif field in _FLOAT_FIELDS:
            fields[field] = float(body.scalar(slot, "f", field))
        else:
            fields[field] = int(body.scalar(slot, "I", field))
    mm = t.table(3, "output_min_max")
    omm = None if mm is None else (float(mm.scalar(0, "f", "output_min")), float(mm.scalar(1, "f", "output_max")))
    return XnnNode(index, name, fields, int(t.scalar(2, "I", "debug_handle")), omm)


def _quant(t: Table) -> QuantParams | None:
    kind, q = t.union(1, "quant_params")
    if kind == 0:
        return None
    if not 1 <= kind <= len(_QUANT_KINDS) or q is None:
        raise PteError(f"{t.buf.name}: {t.path}: unknown or empty XNNQuantParams union type {kind}")
    name = _QUANT_KINDS[kind - 1]
    if name == "PerTensorQuant":
        return QuantParams(
            name, zero_point=int(q.scalar(1, "i", "zero_point")), inline_scale=(q.scalar(0, "f", "scale"),)
        )
    if name == "PerTokenDynamicQuant":
        return QuantParams(name, num_nonbatch_dims=int(q.scalar(0, "i", "num_nonbatch_dims")))
    inline = tuple(float(s) for s in q.scalars(0, "<f4", "scale"))
    if name == "PerChannelQuant":
        return QuantParams(
            name,
            channel_dim=int(q.scalar(1, "i", "channel_dim")),
            scale_buffer_idx=int(q.scalar(2, "I", "scale_buffer_idx")),
            num_scales=int(q.scalar(3, "I", "num_scales")),
            inline_scale=inline,
        )
    start, _ = q.vector(3, 2, "scale_bf16")  # deprecated in schema.fbs: kept only by older files
    return QuantParams(
        name,
        channel_dim=int(q.scalar(1, "i", "channel_dim")),
        group_size=int(q.scalar(2, "i", "group_size")),
        inline_scale_bf16=q.ints(3, "<u2", "scale_bf16") if start else None,
        scale_buffer_idx=int(q.scalar(4, "I", "scale_buffer_idx")),
        num_scales=int(q.scalar(5, "I", "num_scales")),
        inline_scale=inline,
    )


def _tensor(t: Table, index: int, quant: QuantParams | None) -> XnnValue:
    dims = t.ints(2, "<u4", "dims")
    return XnnValue(
        id=index,
        datatype=int(t.scalar(0, "h", "datatype")),
        num_dims=int(t.scalar(1, "I", "num_dims")),
        dims=dims,
        constant_buffer_idx=int(t.scalar(3, "I", "constant_buffer_idx")),
        external_id=int(t.scalar(4, "I", "external_id")),
        flags=int(t.scalar(5, "I", "flags")),
        id_out=int(t.scalar(6, "I", "id_out")),
        dq_datatype=int(t.scalar(7, "h", "dq_datatype")),  # runtime_schema.fbs only
        quant=quant,
    )


def _value(t: Table, index: int) -> XnnValue:
    kind, body = t.union(0, "xvalue_union")
    if kind == 1 and body is not None:
        return _tensor(body, index, None)
    if kind == 2 and body is not None:
        inner = body.table(0, "tensor_value")
        if inner is None:
            raise PteError(f"{t.buf.name}: {body.path}: XNNQuantizedTensorValue without its tensor_value")
        return _tensor(inner, index, _quant(body))
    raise PteError(f"{t.buf.name}: {t.path}: XValue union type {kind} is not a tensor value")


ConstantLookup = Callable[[str], memoryview]


class _Constants:
    """Finds the bytes of ``XNNGraph.constant_data[i]`` (named data, blob section, or legacy buffers)."""

    def __init__(
        self,
        root: Table,
        blob: memoryview,
        header: XnnHeader | None,
        named: ConstantLookup,
    ) -> None:
        self.entries: list[tuple[int, int, str]] = []
        for c in root.tables(8, "constant_data"):
            key = c.string(2, "named_key") or ""
            self.entries.append((int(c.scalar(0, "Q", "offset")), int(c.scalar(1, "Q", "size")), key))
        self.legacy = [b.ubytes(0, "storage") for b in root.tables(6, "constant_buffer")]
        self.section = (
            blob[header.constant_data_offset : header.constant_data_offset + header.constant_data_size]
            if header
            else blob[:0]
        )
        self.named = named

    def get(self, idx: int, what: str) -> memoryview:
        if not self.entries and self.legacy:
            if not 0 <= idx < len(self.legacy):
                raise PteError(f"{what}: constant buffer index {idx} out of range ({len(self.legacy)} buffers)")
            return self.legacy[idx]
        if not 0 < idx < len(self.entries):
            raise PteError(f"{what}: constant data index {idx} out of range ({len(self.entries)} entries)")
        offset, size, key = self.entries[idx]
        if key:
            data = self.named(key)
            if size > len(data):
                raise PteError(f"{what}: named data {key!r} holds {len(data)} bytes, fewer than the {size} declared")
            return data[:size]
        if offset == _NO_OFFSET or offset + size > len(self.section):
            raise PteError(
                f"{what}: constant data at offset {offset}, {size} bytes, lies outside the blob's "
                f"{len(self.section)}-byte constant data section"
            )
        return self.section[offset : offset + size]


def _array(raw: memoryview, dt: npt.DTypeLike, shape: tuple[int, ...], what: str) -> npt.NDArray[Any]:
    dtype = np.dtype(dt)
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count * dtype.itemsize != len(raw):
        raise PteError(f"{what}: {len(raw)} bytes do not hold {shape} elements of {dtype.name}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _scales(q: QuantParams, consts: _Constants, what: str) -> QuantParams:
    if q.kind == "PerTensorQuant":
        return dataclasses.replace(q, scale=np.array(q.inline_scale[0], dtype=np.float32), scale_storage="inline")
    if q.kind not in ("PerChannelQuant", "PerChannelGroupQuant"):
        return q
    if q.scale_buffer_idx == 0:  # older files: fp32 scales inline (bf16 inline for deprecated group scales)
        if q.inline_scale_bf16:
            arr = np.array(q.inline_scale_bf16, dtype=np.uint16).view(bfloat16)
        else:
            arr = np.array(q.inline_scale, dtype=np.float32)
        return dataclasses.replace(q, scale=arr, scale_storage="inline")
    raw = consts.get(q.scale_buffer_idx, what + " scales")
    if q.kind == "PerChannelGroupQuant":
        # Note: XNNCompiler.cpp passes these bytes as bf16 to xnn_define_blockwise_quantized_tensor_value.
        return dataclasses.replace(
            q, scale=_array(raw, bfloat16, (q.num_scales,), what + " scales"), scale_storage="bf16"
        )
    # Note: the runtime reads per-channel scales as fp32; an exporter writing fp16 scales (fp16 model +
    # torchao 8da8w per-axis) makes xnn_define_channelwise_quantized_tensor_value_v2 fail. Keep the bytes'
    # own encoding visible instead of guessing.
    if len(raw) == 2 * q.num_scales and q.num_scales:
        return dataclasses.replace(
            q, scale=_array(raw, np.float16, (q.num_scales,), what + " scales"), scale_storage="fp16"
        )
    return dataclasses.replace(
        q, scale=_array(raw, np.float32, (q.num_scales,), what + " scales"), scale_storage="fp32"
    )


def _group_rows(q: QuantParams, dims: tuple[int, ...]) -> npt.NDArray[Any]:
    """Blockwise scales as ``[N, K / group_size]`` (N = ``dims[channel_dim]``), flat if that does not fit."""
    assert q.scale is not None
    n = dims[q.channel_dim] if 0 <= q.channel_dim < len(dims) else 0
    if n and q.scale.size % n == 0:
        return q.scale.reshape(n, q.scale.size // n)
    return q.scale


def _with_data(v: XnnValue, consts: _Constants, what: str, max_bytes: int | None) -> XnnValue:
    quant = None if v.quant is None else _scales(v.quant, consts, what)
    if quant is not None and quant.kind == "PerChannelGroupQuant" and quant.scale is not None:
        quant = dataclasses.replace(quant, scale=_group_rows(quant, v.dims))
    if not v.is_constant:
        return dataclasses.replace(v, quant=quant)
    raw = consts.get(v.constant_buffer_idx, what)
    name = v.datatype_name
    if name in _INT4:
        check_bytes(2 * len(raw), what + " unpacked 4-bit weights", max_bytes)
        k = v.dims[-1] if v.dims else 1
        rows = int(np.prod(v.dims[:-1], dtype=object)) if len(v.dims) > 1 else 1
        packed = _array(raw, np.uint8, (rows * ((k + 1) // 2),), what)
        data = unpack_int4(packed, v.dims)
        data.flags.writeable = False
    elif name in _NUMPY:
        data = _array(raw, _NUMPY[name], v.dims, what)
    else:
        raise PteError(f"{what}: constant of datatype {name} cannot be decoded")
    return dataclasses.replace(v, quant=quant, data=data, raw=bytes(raw))


def parse_xnn_blob(
    blob: memoryview,
    named: ConstantLookup,
    name: str = "XNNPACK delegate",
    max_bytes: int | None = None,
) -> XnnGraph:
    """Decode one XNNPACK delegate blob; ``named(key)`` returns the program's named data for ``key``."""
    header = parse_xnn_header(blob)
    fb = blob if header is None else blob[header.flatbuffer_offset : header.flatbuffer_offset + header.flatbuffer_size]
    root = Buffer(fb, name + " XNNGraph").root(_XN_IDENTIFIERS, "XNNGraph")
    values = [_value(t, i) for i, t in enumerate(root.tables(2, "xvalues"))]
    nodes = [_node(t, i) for i, t in enumerate(root.tables(1, "xnodes"))]
    consts = _Constants(root, blob, header, named)
    values = [_with_data(v, consts, f"{name}: XNNGraph.xvalues[{v.id}]", max_bytes) for v in values]
    graph = XnnGraph(
        version=root.string(0, "version") or "",
        values=tuple(values),
        nodes=tuple(nodes),
        num_externs=int(root.scalar(3, "I", "num_externs")),
        input_ids=root.ints(4, "<u4", "input_ids"),
        output_ids=root.ints(5, "<u4", "output_ids"),
        constant_data=tuple(consts.entries),
        header=header,
    )
    _check_ids(graph, name)
    return graph


def _check_ids(graph: XnnGraph, name: str) -> None:
    """Every id a node or the graph names must be a value (the runtime would reject it too)."""
    n = len(graph.values)
    for i in graph.input_ids + graph.output_ids:
        if i >= n:
            raise PteError(f"{name}: XNNGraph input/output id {i} out of range ({n} values)")
    for node in graph.nodes:
        for i in node.inputs + node.outputs:
            if i >= n:
                raise PteError(f"{name}: XNNGraph.xnodes[{node.index}] ({node.type}) names value {i}, out of range")
