"""Node-level quantization parameters and CASE files: XNNPACK's tensor definitions refuse them (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kleidiref import ops
from kleidiref.dispatch import Node, NodeRejected, TensorSpec, decide
from kleidiref.ops import QuantParams
from kleidiref.targets import APPLE_M4

ROOT = Path(__file__).resolve().parents[1]
F32 = np.float32


def _fc(in_dt: str, k_dt: str, out_dt: str, **kw: Any) -> Node:
    ins = kw.pop("input", {})
    outs = kw.pop("output", {})
    return Node(
        op="fully_connected",
        input=TensorSpec(in_dt, (2, 64), **ins),
        filter=TensorSpec(k_dt, (8, 64), static=True, **kw),
        output=TensorSpec(out_dt, (2, 8), **outs),
    )


@pytest.mark.parametrize("bad", [0.0, -1.0, 1e-40, float("nan"), float("inf")])
def test_channel_scales_refused(bad: float) -> None:
    with pytest.raises(NodeRejected, match="finite, normal and > 0"):
        decide(_fc("qdint8", "qcint8", "fp32", scale=(1.0,) * 7 + (bad,)), APPLE_M4)
    with pytest.raises(NodeRejected, match="finite, normal and > 0"):
        decide(_fc("qint8", "qcint8", "qint8", input={"scale": bad}), APPLE_M4)


@pytest.mark.parametrize(
    ("dt", "zp"), [("qint8", 128), ("qint8", -129), ("qint8", 300), ("quint8", -1), ("quint8", 256)]
)
def test_zero_points_outside_the_datatype_refused(dt: str, zp: int) -> None:
    k_dt = "qcint8" if dt == "qint8" else "quint8"
    with pytest.raises(NodeRejected, match="outside the"):
        decide(_fc(dt, k_dt, dt, input={"zero_point": zp}), APPLE_M4)


def test_scale_counts() -> None:
    with pytest.raises(NodeRejected, match="expected 8"):
        decide(_fc("qdint8", "qcint8", "fp32", scale=(1.0,) * 3), APPLE_M4)
    with pytest.raises(NodeRejected, match="expected 16"):
        decide(_fc("qdint8", "qbint4", "fp32", zero_point=8, block_size=32, scale=(1.0,) * 5), APPLE_M4)
    decide(_fc("qdint8", "qbint4", "fp32", zero_point=8, block_size=32, scale=(1.0,) * 16), APPLE_M4)


def test_fully_connected_goes_through_the_same_check() -> None:
    x = np.ones((2, 64), np.int8)
    w = np.ones((8, 64), np.int8)
    good = (QuantParams(0.5, 0), QuantParams(np.full(8, 0.1, F32)), QuantParams(1.0, 0))
    ops.fully_connected(x, w, input_quant=good[0], filter_quant=good[1], output_quant=good[2], target=APPLE_M4)
    with pytest.raises(NodeRejected, match="finite, normal and > 0"):
        bad_w = QuantParams(np.array([0.1] * 7 + [0.0], F32))
        ops.fully_connected(x, w, input_quant=good[0], filter_quant=bad_w, output_quant=good[2], target=APPLE_M4)
    with pytest.raises(NodeRejected, match="outside the qint8 range"):
        ops.fully_connected(
            x, w, input_quant=QuantParams(0.5, 300), filter_quant=good[1], output_quant=good[2], target=APPLE_M4
        )
    with pytest.raises(NodeRejected, match="expected 8"):
        ops.fully_connected(
            x,
            w,
            input_quant=good[0],
            filter_quant=QuantParams(np.full(3, 0.1, F32)),
            output_quant=good[2],
            target=APPLE_M4,
        )


def _case(tmp: Path, name: str, data: bytes) -> str:
    p = tmp / name
    p.write_bytes(data)
    return str(p)


def test_explain_reports_each_bad_case_and_goes_on(tmp_path: Path) -> None:
    good = {
        "target": {
            "arch": "arm64",
            "kleidiai": True,
            "sme2": True,
            "sme": True,
            "i8mm": True,
            "dotprod": True,
            "fp16_arith": True,
            "svl_bits": 512,
        },
        "node": {
            "op": "fully_connected",
            "input": {"dtype": "fp32", "shape": [1, 64]},
            "filter": {"dtype": "fp32", "shape": [8, 64], "static": True},
            "output": {"dtype": "fp32", "shape": [1, 8]},
        },
    }
    text = json.dumps(good)
    files = [
        _case(tmp_path, "utf.json", b"\xff\xfe{"),
        _case(tmp_path, "deep.json", b"[" * 100000 + b"]" * 100000),
        _case(tmp_path, "digits.json", b'{"a": ' + b"9" * 5000 + b"}"),
        _case(
            tmp_path,
            "bigscale.json",
            text.replace('"shape": [1, 64]', '"shape": [1, 64], "scale": ' + "9" * 400).encode(),
        ),
        _case(tmp_path, "huge.json", b" " * (2 << 20)),
        _case(tmp_path, "good.json", text.encode()),
    ]
    r = subprocess.run(
        [sys.executable, "-m", "kleidiref", "explain", "--json", *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 6
    assert all("invalid CASE" in x["error"] for x in lines[:5])
    assert lines[5]["variant"] == "pf32_gemm"
