"""The memory limit: shapes needing more than 10 GB are refused before anything is allocated."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import kleidiref as kr
from kleidiref import limits, ops
from kleidiref.kai import matmul_clamp_qai8_qai8p_qsi8cxp
from kleidiref.quant import qai8, qai8dx, qb4, qd8
from kleidiref.variants import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm, qp8_f32_qb4w_gemm, qp8_f32_qc4w_gemm
from kleidiref.variants import qp8_f32_qc8w_gemm as qc8w
from kleidiref.variants.igemm import conv2d, prepare_conv2d

F32 = np.float32
SME2 = kr.Target(svl_bits=512)
BIG = 120_000  # 120k x 120k float32 = 57.6 GB; as a broadcast view it holds 4 bytes


def _view(shape: tuple[int, ...], dtype: Any, value: float = 1.0) -> Any:
    return np.broadcast_to(np.array(value, dtype=dtype), shape)


def _small(shape: tuple[int, ...], dtype: Any) -> Any:
    return np.ones(shape, dtype=dtype)


_CALLS: dict[str, Callable[[], Any]] = {
    "pf32 gemm": lambda: pf32_gemm.gemm(_view((BIG, 64), F32), _view((BIG, 64), F32), target=SME2),
    "pf32 pack_weights (broadcast view)": lambda: pf32_gemm.pack_weights(_view((BIG, BIG), F32), target=SME2),
    "pf16 gemm": lambda: pf16_gemm.gemm(_view((BIG, 64), np.float16), _view((BIG, 64), np.float16), target=SME2),
    "qc8w gemm": lambda: qc8w.gemm(_view((BIG, 64), F32), _view((BIG, 64), np.int8), np.ones(BIG, F32), target=SME2),
    "qc8w pack_weights": lambda: qc8w.pack_weights(_view((BIG, BIG), np.int8), np.ones(BIG, F32), target=SME2),
    "qc4w gemm": lambda: qp8_f32_qc4w_gemm.gemm(
        _view((BIG, 64), F32), _view((BIG, 64), np.int8), np.ones(BIG, F32), target=SME2
    ),
    "qb4w gemm": lambda: qp8_f32_qb4w_gemm.gemm(
        _view((4, BIG * 32), F32),
        _view((BIG, BIG * 32), np.int8, 0),
        _view((BIG, BIG), np.uint16, 0x3F80),
        bl=32,
        target=SME2,
    ),
    "pqs8 pack_weights": lambda: pqs8_qc8w_gemm.pack_weights(
        _view((BIG, BIG), np.int8), np.ones(BIG, F32), input_zero_point=0, target=SME2
    ),
    "pqs8 gemm_packed": lambda: pqs8_qc8w_gemm.gemm_packed(
        _view((BIG * 100, 8), np.int8),
        pqs8_qc8w_gemm.pack_weights(_small((BIG, 8), np.int8), np.ones(BIG, F32), input_zero_point=0, target=SME2),
        output_zero_point=0,
        target=SME2,
    ),
    "fully_connected": lambda: ops.fully_connected(_view((BIG, 64), F32), _view((BIG, 64), F32), target=SME2),
    "batch_matrix_multiply": lambda: ops.batch_matrix_multiply(
        _view((BIG, 64), F32), _view((64, BIG), F32), target=SME2
    ),
    "convolution_2d": lambda: ops.convolution_2d(
        _view((1, 2000, 2000, 3), F32), _view((1000, 3, 3, 3), F32), target=SME2
    ),
    "igemm conv2d": lambda: conv2d(
        _view((1, 2000, 2000, 3), F32), _small((1000, 3, 3, 3), F32), variant="pf32", target=SME2
    ),
    "igemm prepare_conv2d (broadcast filter)": lambda: prepare_conv2d(
        _view((100_000, 3, 3, 20_000), F32), variant="pf32", target=SME2
    ),
    "fully_connected qb4w scales": lambda: ops.fully_connected(
        _view((4, 320_000), F32),
        _view((100_000, 320_000), np.int8, 0),
        filter_quant=ops.QuantParams(_view((100_000, 10_000), np.uint16, 0x3F80), 8, block_size=32, bits=4),
        dynamic=True,
        target=SME2,
    ),
    "quantize_qd8": lambda: qd8.quantize_qd8(_view((BIG, BIG), F32)),
    "quantize_qai8": lambda: qai8.quantize_qai8(_view((BIG, BIG), F32), 1.0, 0),
    "dequantize_qai8": lambda: qai8.dequantize_qai8(_view((BIG, BIG), np.int8, 0), 1.0, 0),
    "quantize_qai8dx": lambda: qai8dx.quantize_qai8dx(_view((BIG, BIG), F32)),
    "quantize_qb4": lambda: qb4.quantize_qb4(_view((BIG, BIG * 32 // 32 * 32), F32), 32),
}


@pytest.mark.parametrize("name", sorted(_CALLS))
def test_refused_before_allocating(name: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="above the memory limit"):
            _CALLS[name]()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{name} allocated {peak:,} bytes before refusing"


def test_limit_can_be_raised_and_lowered(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.ones((64, 64), F32)
    pf32_gemm.gemm(a, a, target=SME2)
    monkeypatch.setenv(limits.ENV_VAR, "64K")
    with pytest.raises(ValueError, match="KLEIDIREF_MAX_BYTES"):
        pf32_gemm.gemm(a, a, target=SME2)
    monkeypatch.setenv(limits.ENV_VAR, "1G")
    assert pf32_gemm.gemm(a, a, target=SME2).shape == (64, 64)


def test_pqs8_row_blocks_bound_temporaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """pqs8 computes blocks of rows (same bits): its int32/float32 temporaries stay near the block size."""
    rng = np.random.default_rng(1)
    lhs = rng.integers(-128, 128, (300, 40), dtype=np.int8)
    w = pqs8_qc8w_gemm.pack_weights(
        rng.integers(-127, 128, (50, 40), dtype=np.int8), np.full(50, 0.01, F32), input_zero_point=3, target=SME2
    )
    ref = pqs8_qc8w_gemm.gemm_packed(lhs, w, output_zero_point=-2, target=SME2)
    monkeypatch.setattr(matmul_clamp_qai8_qai8p_qsi8cxp, "_ROW_BLOCK_BYTES", 7 * 4 * 50)
    assert np.array_equal(pqs8_qc8w_gemm.gemm_packed(lhs, w, output_zero_point=-2, target=SME2), ref)
    tracemalloc.start()
    try:
        big = np.zeros((20000, 40), np.int8)
        tracemalloc.reset_peak()
        pqs8_qc8w_gemm.gemm_packed(big, w, output_zero_point=0, target=SME2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out_bytes = 20000 * 50
    assert peak < 3 * out_bytes + (1 << 20), peak
