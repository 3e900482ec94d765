"""Hypothesis: bad input to any public entry point raises ValueError or TypeError, nothing else.

Each entry point has a valid call; one argument at a time is replaced by a hostile value (wrong
dtype, rank or strides, special floats, non-bool flags, out-of-range integers, strings, None,
objects). The call may succeed (the value happened to be acceptable) or raise ValueError /
TypeError; any other exception (ZeroDivisionError, IndexError, MemoryError, numpy internals...)
fails the test. Bounded: small shapes, a few dozen examples per entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kleidiref as kr
from kleidiref import ops
from kleidiref.ops import QuantParams
from kleidiref.quant import qai8, qai8dx, qb4, qd8
from kleidiref.variants import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm, qp8_f32_qb4w_gemm, qp8_f32_qc4w_gemm
from kleidiref.variants import qp8_f32_qc8w_gemm as qc8w
from kleidiref.variants.igemm import conv2d

F32, F16, I8 = np.float32, np.float16, np.int8
T = kr.Target(svl_bits=512)
M, N, K = 3, 5, 64


def _arr(shape: tuple[int, ...], dtype: Any, v: float = 1.0) -> Any:
    return np.full(shape, v, dtype=dtype)


#: Hostile values any argument may receive.
HOSTILE: list[Any] = [
    None,
    "no",
    "1",
    b"\xff",
    True,
    0,
    -1,
    2**70,
    1.5,
    float("nan"),
    float("inf"),
    -float("inf"),
    1e-45,
    -0.0,
    [1, 2],
    object(),
    np.zeros((0,), F32),
    np.zeros((2, 2, 2), F32),
    np.ones((M, K), np.float64),
    np.ones((M, K), object),
    np.ones((N, K), I8)[:, ::2],
    np.full((M, K), np.nan, F32),
    np.full((M, K), np.inf, F32),
    np.full((N,), 0.0, F32),
    np.full((N,), -1.0, F32),
    np.full((N,), 1e-40, F32),
    np.full((N,), np.nan, F32),
    np.full((N, 2), 0x7F80, np.uint16),
    np.full((N, 2), 0, np.uint16),
    np.ones((M, K), I8),
    np.ones((M, K), F16),
    np.ones((K, M), F32).T,
    memoryview(b"abc"),
]

Entry = tuple[Callable[..., Any], dict[str, Any]]

ENTRIES: dict[str, Entry] = {
    "pf32.gemm": (
        pf32_gemm.gemm,
        {
            "lhs": _arr((M, K), F32),
            "rhs": _arr((N, K), F32),
            "bias": _arr((N,), F32),
            "clamp_min": -1.0,
            "clamp_max": 1.0,
            "transpose_rhs": False,
            "target": T,
        },
    ),
    "pf32.pack_weights": (
        pf32_gemm.pack_weights,
        {"rhs": _arr((N, K), F32), "bias": None, "transpose_rhs": False, "target": T},
    ),
    "pf16.gemm": (
        pf16_gemm.gemm,
        {"lhs": _arr((M, K), F16), "rhs": _arr((N, K), F16), "clamp_min": -1.0, "clamp_max": 1.0, "target": T},
    ),
    "qc8w.gemm": (
        qc8w.gemm,
        {
            "lhs": _arr((M, K), F32),
            "rhs": _arr((N, K), I8),
            "scale": _arr((N,), F32, 0.1),
            "bias": None,
            "clamp_min": -9.0,
            "clamp_max": 9.0,
            "transpose_rhs": False,
            "target": T,
        },
    ),
    "qc4w.gemm": (
        qp8_f32_qc4w_gemm.gemm,
        {
            "lhs": _arr((M, K), F32),
            "rhs": _arr((N, K), I8),
            "scale": _arr((N,), F32, 0.1),
            "clamp_min": -9.0,
            "clamp_max": 9.0,
            "target": T,
        },
    ),
    "qb4w.gemm": (
        qp8_f32_qb4w_gemm.gemm,
        {
            "lhs": _arr((M, K), F32),
            "rhs": _arr((N, K), I8),
            "scales_bf16": _arr((N, 2), np.uint16, 0x3F80),
            "bl": 32,
            "clamp_min": -9.0,
            "clamp_max": 9.0,
            "target": T,
        },
    ),
    "pqs8.gemm": (
        pqs8_qc8w_gemm.gemm,
        {
            "lhs": _arr((M, K), I8),
            "rhs": _arr((N, K), I8),
            "input_zero_point": 1,
            "requant_scale": _arr((N,), F32, 0.01),
            "bias": None,
            "output_zero_point": -3,
            "output_min": -100,
            "output_max": 100,
            "transpose_rhs": False,
            "target": T,
        },
    ),
    "quantize_qd8": (qd8.quantize_qd8, {"x": _arr((M, K), F32), "fz": False}),
    "dequantize_qd8": (qd8.dequantize_qd8, {"q": _arr((M, K), I8), "a": _arr((M,), F32), "zp": _arr((M,), np.int32)}),
    "quantize_qai8": (qai8.quantize_qai8, {"x": _arr((M, K), F32), "scale": 0.5, "zero_point": 3}),
    "dequantize_qai8": (qai8.dequantize_qai8, {"q": _arr((M, K), I8), "scale": 0.5, "zero_point": 3}),
    "requantization_scale": (
        qai8.requantization_scale,
        {"input_scale": 0.5, "kernel_scale": _arr((N,), F32, 0.1), "output_scale": 1.0},
    ),
    "choose_qai8_params": (qai8.choose_qai8_params, {"min_val": -1.0, "max_val": 2.0}),
    "quantize_qai8dx": (qai8dx.quantize_qai8dx, {"x": _arr((M, K), F32), "k_block_len": 4}),
    "quantize_qb4": (qb4.quantize_qb4, {"w": _arr((N, K), F32), "bl": 32}),
    "dequantize_qb4": (
        qb4.dequantize_qb4,
        {"codes": _arr((N, K), I8), "scales": _arr((N, 2), np.uint16, 0x3F80), "bl": 32},
    ),
    "check_block_size": (qb4.check_block_size, {"k": 64, "bl": 32, "kr": 4}),
    "fully_connected": (
        ops.fully_connected,
        {
            "input": _arr((M, K), F32),
            "filter": _arr((N, K), F32),
            "bias": None,
            "transpose_weights": False,
            "dynamic": False,
            "output_min": -1.0,
            "output_max": 1.0,
            "target": T,
        },
    ),
    "fully_connected.qs8": (
        ops.fully_connected,
        {
            "input": _arr((M, K), I8),
            "filter": _arr((N, K), I8),
            "input_quant": QuantParams(0.5, 1),
            "filter_quant": QuantParams(_arr((N,), F32, 0.1)),
            "output_quant": QuantParams(1.0, 0),
            "target": T,
        },
    ),
    "batch_matrix_multiply": (
        ops.batch_matrix_multiply,
        {"input1": _arr((2, M, K), F32), "input2": _arr((2, K, N), F32), "transpose_b": False, "target": T},
    ),
    "convolution_2d": (
        ops.convolution_2d,
        {
            "input": _arr((1, 5, 5, 3), F32),
            "filter": _arr((4, 3, 3, 3), F32),
            "stride": (1, 1),
            "padding": (1, 1, 1, 1),
            "groups": 1,
            "output_min": -1.0,
            "output_max": 1.0,
            "target": T,
        },
    ),
    "igemm.conv2d": (
        conv2d,
        {
            "input": _arr((1, 5, 5, 3), F32),
            "filter": _arr((4, 3, 3, 3), F32),
            "variant": "pf32",
            "stride": (1, 1),
            "padding": (1, 1, 1, 1),
            "groups": 1,
            "clamp_min": -1.0,
            "clamp_max": 1.0,
            "target": T,
        },
    ),
}


def _run_matmul(**kw: Any) -> Any:
    kern = pf32_gemm.SME2_MOPA(512)
    return kern.run_matmul(**kw)


_LP = pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme(512).pack(_arr((M, K), F32))
_RP = pf32_gemm.kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(512).pack(_arr((N, K), F32), None)
ENTRIES["run_matmul"] = (
    _run_matmul,
    {
        "m": M,
        "n": N,
        "k": K,
        "lhs_packed": _LP,
        "rhs_packed": _RP,
        "dst": np.zeros((M, N), F32),
        "dst_stride_row": N * 4,
        "dst_stride_col": 4,
        "clamp_min": -1.0,
        "clamp_max": 1.0,
    },
)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_valid_call_runs(name: str) -> None:
    fn, kw = ENTRIES[name]
    fn(**{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()})


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_hostile_argument_gets_value_or_type_error(name: str) -> None:
    fn, base = ENTRIES[name]

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(sorted(base)), bad=st.sampled_from(HOSTILE))
    def check(key: str, bad: Any) -> None:
        kw = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()}
        kw[key] = bad.copy() if isinstance(bad, np.ndarray) and bad.flags.c_contiguous else bad
        try:
            fn(**kw)
        except (ValueError, TypeError):
            pass

    check()
