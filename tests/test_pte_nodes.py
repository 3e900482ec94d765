"""GEMM-like nodes of real programs as the dispatcher's node descriptions (``kleidiref.pte.nodes``): the
description carries the node's datatypes, runtime shapes, convolution parameters, quantization and input
producer exactly as the program holds them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kleidiref import dispatch, pte
from kleidiref.pte.nodes import GEMM_NODE_TYPES, gemm_nodes, tensor_spec

FIXTURES = Path(__file__).parent / "fixtures" / "pte"
PROGRAMS = sorted(FIXTURES.glob("*.pte"))


def _gemm_dims(node: dispatch.Node) -> tuple[int, int, int]:
    if node.op == "convolution_2d":
        x, f, y = node.input.shape, node.filter.shape, node.output.shape
        return y[0] * y[1] * y[2], f[1] * f[2] * f[3], f[0] // (node.convolution.groups if node.convolution else 1)
    x, w = node.input.shape, node.filter.shape
    if node.op == "batch_matrix_multiply":
        return x[-2], x[-1], w[-2] if "transpose_b" in node.flags else w[-1]
    return math.prod(x[:-1]), x[-1], w[1] if "transpose_weights" in node.flags else w[0]


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_gemm_nodes_match_the_sidecar(path: Path) -> None:
    side = json.loads(path.with_suffix(".sidecar.json").read_text())["gemm_nodes"]
    program = pte.load(path)
    records = gemm_nodes(program)
    assert len(records) == len(side)
    for rec, ref in zip(records, side, strict=True):
        assert (rec.delegate_index, rec.node_index, rec.debug_handle, rec.node_type, rec.input_producer) == (
            ref["delegate_index"],
            ref["node_index"],
            ref["debug_handle"],
            ref["node_type"],
            ref["input_producer"],
        )
        node = rec.node
        assert node is not None, rec.unsupported
        kinds = {"XNNDepthwiseConv2d": "depthwise_convolution_2d", "XNNConvTranspose2d": "deconvolution_2d"}
        if rec.node_type in kinds:
            assert node.op == kinds[rec.node_type]
        roles = [("input", node.input), ("filter", node.filter), ("output", node.output), ("bias", node.bias)]
        for role, spec in roles:
            if ref[role] is None:
                assert spec is None
                continue
            assert spec is not None and spec.dtype == ref[role]["dtype"]
            assert spec.static == ref[role]["constant"]
        if "conv" in ref:
            c = ref["conv"]
            assert node.convolution == dispatch.ConvParams(
                tuple(c["kernel"]),
                tuple(c["stride"]),
                tuple(c.get("dilation", (1, 1))),
                tuple(c["padding_trbl"]),
                c["groups"],
            )
            assert node.filter.shape[3] == c["group_input_channels"]
            assert node.filter.shape[0] == c["groups"] * c["group_output_channels"]
        if "gemm" not in ref:
            continue
        m, k, n = _gemm_dims(node)
        assert (m, k, n) == (ref["gemm"]["M"], ref["gemm"]["K"], ref["gemm"]["N"])


def test_producer_datatype_and_quantization() -> None:
    rec = gemm_nodes(pte.load(FIXTURES / "linear_k64_n32__fp16_ao_8da4w_g32.pte"))[0]
    assert (rec.input_producer, rec.producer_input_datatype) == ("XNNConvert", "fp16")
    f = rec.node.filter  # type: ignore[union-attr]
    assert (f.dtype, f.zero_point, f.block_size, f.static) == ("qbint4", 8, 32, True)
    assert isinstance(f.scale, tuple) and len(f.scale) == 64
    rec = gemm_nodes(pte.load(FIXTURES / "linear_k64_n32__pt2e_static_pt.pte"))[0]
    assert isinstance(rec.node.input.scale, float) and rec.node.input.zero_point is not None  # type: ignore[union-attr]


def test_depthwise_and_dynamic_conv_shapes() -> None:
    rec = gemm_nodes(pte.load(FIXTURES / "dwconv3x3_c32__fp32.pte"))[0]
    assert rec.node is not None
    assert rec.node.filter.shape == (32, 3, 3, 1)  # stored [1, 3, 3, 32]
    assert rec.node.convolution is not None and rec.node.convolution.groups == 32
    rec = gemm_nodes(pte.load(FIXTURES / "conv3x3_p1_c16_o24__pt2e_dyn_pc8.pte"))[0]
    assert rec.node is not None and rec.node.input.shape == (1, 8, 8, 16)  # stored NCHW [1, 16, 8, 8]


def test_every_fixture_node_kind_is_gemm_or_known() -> None:
    kinds = {n.type for p in PROGRAMS for g in pte.load(p).xnn_graphs for n in g.nodes}
    assert kinds - set(GEMM_NODE_TYPES) == {"XNNConvert", "XNNStaticTranspose"}


def test_tensor_spec_of_a_constant() -> None:
    g = pte.load(FIXTURES / "linear_k64_n32__pt2e_dyn_pc8.pte").xnn_graphs[0]
    w = g.value(2)
    spec = tensor_spec(w, w.dims)
    assert spec.dtype == "qcint8" and spec.static and spec.zero_point is None
    assert spec.scale == tuple(float(s) for s in np.asarray(w.quant.scale))  # type: ignore[union-attr]


CONV = (FIXTURES / "conv3x3_p1_c16_o24__pt2e_static_pc.pte").read_bytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), min_size=1, max_size=6))
def test_hostile_bytes_give_value_errors_only(flips: list[tuple[int, int]]) -> None:
    b = bytearray(CONV)
    for pos, bit in flips:
        b[pos % len(b)] ^= 1 << bit
    try:
        gemm_nodes(pte.load(bytes(b)))
    except ValueError as exc:
        assert str(exc)
