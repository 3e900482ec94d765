"""The torch-free ``.pte`` reader on real ExecuTorch programs: every node and value equals the serializer's
XNNGraph dump, weights decode to the model's numbers, runtime shapes match the runtime's outputs, and
hostile bytes (truncation, bit flips, forged offsets and lengths) give only ``PteError``."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _hostile_bytes import BIT_FLIPS, FORGED_WORDS, flip_bits, forge_word, loads_or_clear_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kleidiref import pte
from kleidiref.pte.dump import graph_to_dict
from kleidiref.pte.flatbuffer import Buffer, PteError

FIXTURES = Path(__file__).parent / "fixtures" / "pte"
PROGRAMS = sorted(FIXTURES.glob("*.pte"))


def _corpus_dir() -> Path | None:
    """An external directory of more programs (``programs/*.pte`` plus dumps), if there is one."""
    env = os.environ.get("KLEIDIREF_PTE_CORPUS")
    root = Path(__file__).resolve().parents[1]
    candidates = [Path(env)] if env else [root.parent / "shared" / "pte", root.parents[1] / "shared" / "pte"]
    for c in candidates:
        if (c / "programs").is_dir():
            return c / "programs"
    return None


def _f32(x: Any) -> Any:
    """The dump holds Python floats; the flatbuffer stores ``float`` fields as binary32."""
    if isinstance(x, float):
        return float(np.float32(x))
    if isinstance(x, dict):
        return {k: _f32(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_f32(v) for v in x]
    return x


def _check_against_dumps(path: Path) -> None:
    program = pte.load(path)
    graphs = program.xnn_graphs
    dumps = sorted(path.parent.glob(path.stem + ".xnngraph.*.json"))
    assert len(graphs) == len(dumps) >= 1, path.name
    for k, graph in enumerate(graphs):
        ref = _f32(json.loads((path.parent / f"{path.stem}.xnngraph.{k}.json").read_text()))
        got = _f32(json.loads(json.dumps(graph_to_dict(graph))))
        assert got.keys() == ref.keys()
        for key in ("version", "num_externs", "input_ids", "output_ids", "constant_data"):
            assert got[key] == ref[key], (path.name, key)
        assert len(got["xnodes"]) == len(ref["xnodes"]) and len(got["xvalues"]) == len(ref["xvalues"])
        for i, (g, r) in enumerate(zip(got["xnodes"], ref["xnodes"], strict=True)):
            assert g == r, (path.name, "xnodes", i)
        for i, (g, r) in enumerate(zip(got["xvalues"], ref["xvalues"], strict=True)):
            assert g == r, (path.name, "xvalues", i)


def test_fixtures_present() -> None:
    assert len(PROGRAMS) >= 41
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    assert total < 2_000_000


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_fixture_reads_equal_to_its_dump(path: Path) -> None:
    _check_against_dumps(path)


def test_external_corpus_reads_equal_to_its_dumps() -> None:
    corpus = _corpus_dir()
    if corpus is None:
        pytest.skip("no external .pte corpus (set KLEIDIREF_PTE_CORPUS to a directory holding programs/)")
    paths = sorted(corpus.glob("*.pte"))
    assert paths
    for path in paths:
        _check_against_dumps(path)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_program_level(path: Path) -> None:
    side = json.loads(path.with_suffix(".sidecar.json").read_text())
    program = pte.load(path)
    plan = program.plan()
    assert plan.name == "forward"
    assert [v.sizes for v in plan.input_values] == [tuple(i["shape"]) for i in side["inputs"]]
    dtypes = {"float32": "FLOAT", "float16": "HALF"}
    assert [v.scalar_type_name for v in plan.input_values] == [dtypes[i["dtype"]] for i in side["inputs"]]
    assert [v.sizes for v in plan.output_values] == [tuple(o["shape"]) for o in side["outputs"]]
    assert len(plan.delegate_calls) == side["delegation"]["num_delegates"]
    assert all(d.id == pte.XNNPACK_BACKEND_ID for d in plan.delegate_calls)
    assert sorted(set(plan.non_delegated_ops)) == sorted(side["delegation"]["non_delegated_ops"])
    for gn in side["gemm_nodes"]:
        graph = program.xnn_graphs[gn["delegate_index"]]
        node = graph.nodes[gn["node_index"]]
        assert (node.type, node.debug_handle, node.fields["flags"]) == (
            gn["node_type"],
            gn["debug_handle"],
            gn["flags"],
        )
        producer = graph.producer(node.inputs[0])
        assert (producer.type if producer else None) == gn["input_producer"]
        for role, fid in (("input", "input1_id"), ("filter", "filter_id"), ("bias", "bias_id")):
            v = gn[role]
            if v is None:
                continue
            value = graph.value(node.fields[fid] if fid in node.fields else node.fields["input2_id"])
            assert (value.id, value.datatype_name, list(value.dims)) == (v["id"], v["dtype"], v["dims"])
            assert value.is_constant == v["constant"]
            assert (value.data is not None) == v["constant"]


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_runtime_shapes_match_the_runtime_outputs(path: Path) -> None:
    program = pte.load(path)
    io = np.load(path.with_suffix(".io.npz"))
    graph = program.xnn_graphs[0]
    inputs = [io[f"input_{i}"].shape for i in range(len(graph.input_ids))]
    shapes = pte.runtime_shapes(graph, inputs)
    assert [shapes[i] for i in graph.output_ids] == [io[f"output_{i}"].shape for i in range(len(graph.output_ids))]
    for v in graph.values:
        if v.datatype_name == "qdint8" and len(v.dims) == 4:
            # the stored dims of a dynamically quantized conv input are NCHW; at run time it is NHWC
            n, c, h, w = v.dims
            assert shapes[v.id] == (n, h, w, c)
        else:
            assert shapes[v.id] == v.dims
    # the same from the program's inputs, through the delegate call's arguments
    by_program = pte.program_shapes(program, [io[f"input_{i}"].shape for i in range(len(program.plan().inputs))])
    assert by_program == {0: shapes}


def test_program_shapes_follow_new_input_shapes() -> None:
    program = pte.load(FIXTURES / "conv3x3_p1_c16_o24__fp32.pte")
    shapes = pte.program_shapes(program, [(2, 16, 10, 12)])[0]
    graph = program.xnn_graphs[0]
    assert shapes[graph.output_ids[0]] == (2, 24, 10, 12)
    with pytest.raises(ValueError, match="input shapes"):
        pte.program_shapes(program, [(1, 16, 8, 8), (1,)])


def _dequantized(value: pte.XnnValue) -> np.ndarray:
    assert value.data is not None
    w = value.data.astype(np.float32)
    q = value.quant
    if q is None:
        return w
    assert q.scale is not None
    s = q.scale.astype(np.float32)
    if q.kind == "PerChannelGroupQuant":
        n, groups = s.shape
        return (w.reshape(n, groups, -1) * s[:, :, None]).reshape(w.shape)
    if q.kind == "PerChannelQuant":
        return w * s.reshape(-1, *([1] * (w.ndim - 1)))
    return (w - q.zero_point) * s


@pytest.mark.parametrize(
    ("recipe", "tol"),
    [
        ("fp32", 1e-6),
        ("fp16", 2e-3),
        ("pt2e_dyn_pc4", 2e-2),
        ("pt2e_dyn_pc8", 2e-2),
        ("ao_8da4w_g32", 2e-2),
        ("ao_8da4w_g64", 2e-2),
        ("ao_8da4w_axis", 2e-2),
        ("ao_8da8w", 2e-2),
        ("pt2e_static_pc", 3e-2),
        ("pt2e_static_pt", 3e-2),
    ],
)
def test_linear_weights_recompute_the_output(recipe: str, tol: float) -> None:
    """The decoded weights, scales (fp32, bf16 blockwise) and bias give back the model's output."""
    path = FIXTURES / f"linear_k64_n32__{recipe}.pte"
    graph = pte.load(path).xnn_graphs[0]
    fc = next(n for n in graph.nodes if n.type == "XNNFullyConnected")
    w = _dequantized(graph.value(fc.fields["filter_id"]))
    b = _dequantized(graph.value(fc.fields["bias_id"]))
    io = np.load(path.with_suffix(".io.npz"))
    y = io["input_0"].astype(np.float32) @ w.T + b
    assert np.abs(y - io["eager_output_0"].astype(np.float32)).max() < tol


def test_weights_dtypes_and_scales() -> None:
    g = pte.load(FIXTURES / "linear_k64_n32__ao_8da4w_g32.pte").xnn_graphs[0]
    w = g.value(2)
    assert (w.datatype_name, w.data.dtype, w.data.shape) == ("qbint4", np.int8, (32, 64))  # type: ignore[union-attr]
    assert w.raw is not None and len(w.raw) == 32 * 32
    assert w.quant is not None and w.quant.scale is not None
    assert (w.quant.scale.dtype.name, w.quant.scale.shape, w.quant.group_size) == ("bfloat16", (32, 2), 32)
    packed = np.frombuffer(w.raw, np.uint8).reshape(32, 32)
    assert np.array_equal(w.data[:, 0::2], (packed & 15).astype(np.int8) - 8)  # type: ignore[index]
    assert np.array_equal(w.data[:, 1::2], (packed >> 4).astype(np.int8) - 8)  # type: ignore[index]
    conv = pte.load(FIXTURES / "conv3x3_p1_c16_o24__fp16.pte").xnn_graphs[0]
    node = next(n for n in conv.nodes if n.type == "XNNConv2d")
    f = conv.value(node.fields["filter_id"])
    assert (f.datatype_name, f.data.dtype, f.data.shape) == ("fp32", np.float32, (24, 3, 3, 16))  # type: ignore[union-attr]


def test_unpack_int4_odd_k() -> None:
    vals = np.array([[-8, 7, 0], [1, -1, 3]], np.int8)
    padded = np.pad(vals, ((0, 0), (0, 1))).astype(np.int16) + 8
    packed = (padded[:, 0::2] | (padded[:, 1::2] << 4)).astype(np.uint8)
    assert np.array_equal(pte.unpack_int4(packed, (2, 3)), vals)


# ---- hostile bytes -------------------------------------------------------------------------------------

SMALL = (FIXTURES / "linear_k64_n32__pt2e_dyn_pc4.pte").read_bytes()
CONV = (FIXTURES / "conv3x3_p1_c16_o24__pt2e_static_pc.pte").read_bytes()


def _load_with_shapes(data: bytes) -> None:
    for g in pte.load(data).xnn_graphs:
        pte.runtime_shapes(g)


def test_good_bytes_load() -> None:
    assert pte.load(SMALL).xnn_graphs[0].nodes[1].type == "XNNFullyConnected"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([SMALL, CONV]), st.data())
def test_truncated(base: bytes, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, len(base) - 1))
    with pytest.raises(PteError):
        pte.load(base[:n])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([SMALL, CONV]), BIT_FLIPS)
def test_bit_flips(base: bytes, flips: list[tuple[int, int]]) -> None:
    loads_or_clear_error(_load_with_shapes, flip_bits(base, flips))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([SMALL, CONV]), st.integers(0, 1 << 20), FORGED_WORDS, st.booleans())
def test_forged_words(base: bytes, pos: int, value: int, wide: bool) -> None:
    """Any aligned 4- or 8-byte word replaced by an extreme offset, size or length."""
    loads_or_clear_error(_load_with_shapes, forge_word(base, pos, value, 8 if wide else 4))


def _xnn_vector_length_pos(data: bytes, slot: int) -> int:
    """Where, in the file, the length of the first XNNGraph's vector in ``slot`` is stored."""
    program = pte.load(data)
    off, size = program.segments[0]
    delegate = program.delegates[0]
    assert delegate.location == "segment" and delegate.graph is not None and delegate.graph.header is not None
    off, size = program.segments[delegate.data_index]
    fb = off + delegate.graph.header.flatbuffer_offset
    root = Buffer(data[fb : off + size], "blob").root((b"XN01", b"XN00"), "XNNGraph")
    start, _ = root.vector(slot, 4, "vector")
    return fb + start - 4


@pytest.mark.parametrize(("slot", "field"), [(1, "xnodes"), (2, "xvalues"), (4, "input_ids"), (8, "constant_data")])
@pytest.mark.parametrize("length", [2**31, 2**32 - 1, 10**6])
def test_forged_vector_length_is_named(slot: int, field: str, length: int) -> None:
    pos = _xnn_vector_length_pos(SMALL, slot)
    b = bytearray(SMALL)
    b[pos : pos + 4] = struct.pack("<I", length)
    with pytest.raises(PteError, match=rf"XNNGraph\.{field}: vector at offset \d+ claims {length} elements"):
        pte.load(bytes(b))


def test_forged_headers() -> None:
    b = bytearray(SMALL)
    b[4:8] = b"ET99"
    with pytest.raises(PteError, match="file identifier"):
        pte.load(bytes(b))
    b = bytearray(SMALL)
    b[16:24] = struct.pack("<Q", 2**63)  # program size
    with pytest.raises(PteError, match="program size"):
        pte.load(bytes(b))
    b = bytearray(SMALL)
    b[24:32] = struct.pack("<Q", 2**40)  # segment base offset
    with pytest.raises(PteError, match="segment base offset"):
        pte.load(bytes(b))
    program = pte.load(SMALL)
    off, _ = program.segments[program.delegates[0].data_index]
    b = bytearray(SMALL)
    b[off + 18 : off + 22] = struct.pack("<I", 2**31)  # XNNHeader constant data offset
    with pytest.raises(PteError, match="XNNHeader"):
        pte.load(bytes(b))
    b = bytearray(SMALL)
    b[off + 10 : off + 14] = struct.pack("<I", 2**32 - 1)  # XNNHeader flatbuffer offset
    with pytest.raises(PteError, match="XNNHeader"):
        pte.load(bytes(b))


def test_memory_limit_is_checked_first() -> None:
    with pytest.raises(ValueError, match="memory limit"):
        pte.load(SMALL, max_bytes=100)


def test_errors_are_value_errors() -> None:
    assert issubclass(PteError, ValueError)
    with pytest.raises(ValueError, match="outside"):
        pte.load(b"\x00" * 7)


def _conv_nhwc(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int, groups: int) -> np.ndarray:
    """A direct stride-1 convolution: x [N, H, W, C], w [Cout, kh, kw, C / groups]."""
    n, h, wd, _ = x.shape
    cout, kh, kw, gic = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    y = np.zeros((n, oh, ow, cout), np.float64)
    goc = cout // groups
    for g in range(groups):
        xs = xp[..., g * gic : (g + 1) * gic]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i : i + oh, j : j + ow, :]
                y[..., g * goc : (g + 1) * goc] += patch @ w[g * goc : (g + 1) * goc, i, j, :].T.astype(np.float64)
    return y + b  # type: ignore[no-any-return]


@pytest.mark.parametrize("model", ["conv3x3_p1_c16_o24", "dwconv3x3_c32", "convT_k2s2_c16_o8"])
def test_conv_weights_recompute_the_output(model: str) -> None:
    """Filter layouts: conv [Cout, kh, kw, Cin], depthwise [1, kh, kw, C], deconv [Cout, kh, kw, Cin]."""
    path = FIXTURES / f"{model}__fp32.pte"
    graph = pte.load(path).xnn_graphs[0]
    node = next(n for n in graph.nodes if n.type.endswith(("Conv2d", "ConvTranspose2d")))
    f = node.fields
    w, b = graph.value(f["filter_id"]).data, graph.value(f["bias_id"]).data
    assert w is not None and b is not None
    io = np.load(path.with_suffix(".io.npz"))
    x = io["input_0"].transpose(0, 2, 3, 1).astype(np.float64)
    if node.type == "XNNDepthwiseConv2d":
        y = _conv_nhwc(x, w.transpose(3, 1, 2, 0), b, f["padding_top"], f["groups"])
    elif node.type == "XNNConv2d":
        y = _conv_nhwc(x, w, b, f["padding_top"], f["groups"])
    else:  # stride 2, kernel 2, no padding: each input pixel writes its own 2x2 output block
        n, h, wd, _ = x.shape
        s = f["subsampling_height"]
        y = np.einsum("nhwc,okjc->nhkwjo", x, w).reshape(n, h * s, wd * s, w.shape[0]) + b
    expected = io["output_0"].transpose(0, 2, 3, 1)
    assert np.abs(y - expected).max() < 1e-4
