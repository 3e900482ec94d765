"""Bad input gets a ValueError/TypeError naming the constraint, never a silent result (issue 15)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import kleidiref as kr
from kleidiref import ops
from kleidiref.quant import qai8, qai8dx, qb4, qd8
from kleidiref.variants import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm, qp8_f32_qb4w_gemm, qp8_f32_qc4w_gemm
from kleidiref.variants import qp8_f32_qc8w_gemm as qc8w
from kleidiref.variants.igemm import conv2d

F32 = np.float32
SME2 = kr.Target(svl_bits=512)


# -- quantize_qd8 on +-Inf ------------------------------------------------------------------------


def test_qd8_inf_row_gets_xnnpack_zero_point() -> None:
    """+Inf: s = 255/Inf = 0, dmax = Inf*0 = NaN, zpf NaN; math_max_f32 ignores it: zp = -128."""
    x = np.array([[1.0, np.inf], [-np.inf, 1.0], [1.0, 2.0]], F32)
    _, a, zp = qd8.quantize_qd8(x)
    assert zp.tolist()[:2] == [-128, 127]
    assert np.isinf(a[0]) and np.isinf(a[1])
    assert zp[2] == qd8.quantize_qd8(x[2:])[2][0]  # other rows unaffected


# -- operator output ranges ---------------------------------------------------------------------

_A = np.ones((2, 32), F32)
_W = np.ones((3, 32), F32)


def _qb4w(lo: float, hi: float) -> Any:
    return qp8_f32_qb4w_gemm.gemm(
        _A,
        np.zeros((3, 32), np.int8),
        np.full((3, 1), 0x3F80, np.uint16),
        bl=32,
        clamp_min=lo,
        clamp_max=hi,
        target=SME2,
    )


_RANGED: dict[str, Callable[[float, float], Any]] = {
    "pf32": lambda lo, hi: pf32_gemm.gemm(_A, _W, clamp_min=lo, clamp_max=hi, target=SME2),
    "pf16": lambda lo, hi: pf16_gemm.gemm(
        _A.astype(np.float16), _W.astype(np.float16), clamp_min=lo, clamp_max=hi, target=SME2
    ),
    "qc8w": lambda lo, hi: qc8w.gemm(
        _A, np.ones((3, 32), np.int8), np.ones(3, F32), clamp_min=lo, clamp_max=hi, target=SME2
    ),
    "qc4w": lambda lo, hi: qp8_f32_qc4w_gemm.gemm(
        _A, np.ones((3, 32), np.int8), np.ones(3, F32), clamp_min=lo, clamp_max=hi, target=SME2
    ),
    "qb4w": _qb4w,
    "fully_connected": lambda lo, hi: ops.fully_connected(_A, _W, output_min=lo, output_max=hi, target=SME2),
}


@pytest.mark.parametrize("entry", sorted(_RANGED))
@pytest.mark.parametrize(("lo", "hi", "match"), [(1.0, 0.0, "must be <="), (np.nan, 1.0, "NaN"), (0.0, np.nan, "NaN")])
def test_output_range_refused_like_operator_creation(entry: str, lo: float, hi: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _RANGED[entry](lo, hi)


def test_pf16_empty_rounded_range_refused() -> None:
    with pytest.raises(ValueError, match="rounded to f16 is empty"):
        _RANGED["pf16"](1.0, 1.0)


def test_kernel_objects_keep_kernel_clamp_semantics() -> None:
    """A kernel's run_matmul clamps with any pair of floats (no operator-creation check)."""
    k = pf32_gemm.SME2_MOPA(512)
    lp = pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme(512).pack(_A)
    rp = pf32_gemm.kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(512).pack(_W, None)
    dst = np.zeros((2, 3), F32)
    k.run_matmul(2, 3, 32, lp, rp, dst, 12, 4, 1.0, 0.0)
    assert np.isfinite(dst).all()


# -- flags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: pf32_gemm.gemm(_A, _W, transpose_rhs="no"),  # type: ignore[arg-type]
        lambda: pf32_gemm.pack_weights(_W, transpose_rhs=1),  # type: ignore[arg-type]
        lambda: qc8w.pack_weights(np.ones((3, 32), np.int8), np.ones(3, F32), transpose_rhs="no"),  # type: ignore[arg-type]
        lambda: pqs8_qc8w_gemm.pack_weights(
            np.ones((3, 32), np.int8),
            np.ones(3, F32),
            input_zero_point=0,
            transpose_rhs="no",  # type: ignore[arg-type]
        ),
        lambda: ops.fully_connected(_A, _W, transpose_weights="no"),  # type: ignore[arg-type]
        lambda: ops.fully_connected(_A, _W, dynamic="no"),  # type: ignore[arg-type]
        lambda: pf32_gemm.SME2_MOPA(512, fz="no"),  # type: ignore[arg-type]
        lambda: qai8dx.quantize_qai8dx(_A, k_block_len="4"),  # type: ignore[arg-type]
        lambda: qai8dx.quantize_qai8dx(_A, k_block_len=4.0),  # type: ignore[arg-type]
    ],
)
def test_non_bool_flags_and_k_block_len_refused(call: Callable[[], Any]) -> None:
    with pytest.raises(TypeError):
        call()


def test_k_block_len_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k_block_len"):
        qai8dx.quantize_qai8dx(_A, k_block_len=0)


# -- quantization parameters ----------------------------------------------------------------------

_BAD_SCALES = [0.0, -1.0, 1e-40, np.nan, np.inf]


@pytest.mark.parametrize("s", _BAD_SCALES)
def test_qai8_scales_refused(s: float) -> None:
    with pytest.raises(ValueError, match="finite, > 0 and normal"):
        qai8.quantize_qai8(np.zeros(3, F32), s, 0)
    with pytest.raises(ValueError, match="finite, > 0 and normal"):
        qai8.dequantize_qai8(np.zeros(3, np.int8), s, 0)
    with pytest.raises(ValueError, match="finite, > 0 and normal"):
        qai8.requantization_scale(1.0, np.array([1.0, s], F32), 1.0)
    with pytest.raises(ValueError, match="finite, > 0 and normal"):
        qai8.requantization_scale(s, np.array([1.0], F32), 1.0)


def test_choose_qai8_params_refuses_inverted_range() -> None:
    """The range was widened to contain 0 before ``lo > hi`` was tested: it could never fire."""
    with pytest.raises(ValueError, match="min_val"):
        qai8.choose_qai8_params(5.0, 1.0)
    assert qai8.choose_qai8_params(1.0, 5.0)[1] == -128


def test_check_block_size_kr_zero() -> None:
    with pytest.raises(ValueError, match="kr=0"):
        qb4.check_block_size(64, 32, kr=0)


def test_dequantize_qd8_shapes() -> None:
    with pytest.raises(ValueError, match="one per row"):
        qd8.dequantize_qd8(np.zeros((2, 4), np.int8), np.ones(3, F32), np.zeros(2, np.int32))
    with pytest.raises(TypeError):
        qd8.dequantize_qd8(np.zeros((2, 4), np.int8), 1.0, np.zeros(2, np.int32))  # type: ignore[arg-type]


# -- run_matmul destinations and buffers ----------------------------------------------------------


def _mopa_args() -> tuple[Any, Any, Any]:
    k = pf32_gemm.SME2_MOPA(512)
    lp = pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme(512).pack(_A)
    rp = pf32_gemm.kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(512).pack(_W, None)
    return k, lp, rp


def test_run_matmul_refuses_wrongly_typed_destination() -> None:
    k, lp, rp = _mopa_args()
    for dt in (np.float64, np.int32, np.float16, object):
        with pytest.raises(TypeError, match="dst must be float32"):
            k.run_matmul(2, 3, 32, lp, rp, np.zeros((2, 3), dt), 12, 4, -np.inf, np.inf)
    raw = np.zeros(24, np.uint8)  # raw bytes are what a void* dst is: accepted
    k.run_matmul(2, 3, 32, lp, rp, raw, 12, 4, -np.inf, np.inf)
    assert raw.view(F32).tolist() == [32.0] * 6


def test_run_matmul_refuses_overlapping_rows() -> None:
    k, lp, rp = _mopa_args()
    dst = np.zeros((2, 3), F32)
    with pytest.raises(ValueError, match="rows would overlap"):
        k.run_matmul(2, 3, 32, lp, rp, dst, 4, 4, -np.inf, np.inf)
    assert not dst.any()


def test_run_matmul_buffers_object_and_strided_memoryview() -> None:
    k, lp, rp = _mopa_args()
    dst = np.zeros((2, 3), F32)
    with pytest.raises(TypeError, match="Python objects"):
        k.run_matmul(2, 3, 32, np.zeros(10000, object), rp, dst, 12, 4, -np.inf, np.inf)
    strided = memoryview(bytearray(1 << 16))[::2]
    with pytest.raises(ValueError, match="C-contiguous memoryview"):
        k.run_matmul(2, 3, 32, strided, rp, dst, 12, 4, -np.inf, np.inf)
    with pytest.raises(ValueError, match="C-contiguous memoryview"):
        k.run_matmul(2, 3, 32, lp, rp, strided, 12, 4, -np.inf, np.inf)


def test_igemm_conv2d_range_refused() -> None:
    x = np.ones((1, 4, 4, 2), F32)
    w = np.ones((3, 1, 1, 2), F32)
    with pytest.raises(ValueError, match="must be <="):
        conv2d(x, w, variant="pf32", clamp_min=1.0, clamp_max=0.0, target=SME2)
