"""kleidiref.quant.qb4: nibble orders, zero point 8 vs signed storage, bf16 scales, constraints."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kleidiref.numerics import bf16_to_f32
from kleidiref.quant import qb4
from kleidiref.testing.strategies import int4_weights

CODES = st.integers(-8, 7)


def _enc(c: int, signed: bool) -> int:
    """The stored nibble of code c: two's complement (signed) or c + 8 (zero point 8)."""
    return c & 0xF if signed else c + 8


@given(lo=CODES, hi=CODES, signed=st.booleans())
@settings(max_examples=400, deadline=None)
def test_every_code_in_both_nibble_positions_nxk(lo: int, hi: int, signed: bool) -> None:
    codes = np.array([[lo, hi]], dtype=np.int8)
    packed = qb4.pack_nibbles(codes, "nxk", signed=signed)
    assert packed.shape == (1, 1)
    assert int(packed[0, 0]) == _enc(lo, signed) | (_enc(hi, signed) << 4)  # low nibble = even k
    assert np.array_equal(qb4.unpack_nibbles(packed, 1, 2, "nxk", signed=signed), codes)


@given(lo=CODES, hi=CODES, signed=st.booleans())
@settings(max_examples=400, deadline=None)
def test_every_code_in_both_nibble_positions_kxn(lo: int, hi: int, signed: bool) -> None:
    codes = np.array([[lo], [hi]], dtype=np.int8)  # N = 2, K = 1
    packed = qb4.pack_nibbles(codes, "kxn", signed=signed)
    assert packed.shape == (1, 1)
    assert int(packed[0, 0]) == _enc(lo, signed) | (_enc(hi, signed) << 4)  # low nibble = even n
    assert np.array_equal(qb4.unpack_nibbles(packed, 2, 1, "kxn", signed=signed), codes)


def test_all_256_bytes_decode_consistently() -> None:
    b = np.arange(256, dtype=np.uint8).reshape(256, 1)
    u = qb4.unpack_nibbles(b, 256, 2, "nxk")
    s = qb4.unpack_nibbles(b, 256, 2, "nxk", signed=True)
    assert np.array_equal(u[:, 0], (np.arange(256) & 0xF) - 8)
    assert np.array_equal(u[:, 1], (np.arange(256) >> 4) - 8)
    # signed storage is the unsigned one with the top bit of each nibble flipped (u XOR 8)
    assert np.array_equal(s, qb4.unpack_nibbles(b ^ np.uint8(0x88), 256, 2, "nxk"))


@given(
    data=st.data(),
    n=st.integers(1, 9),
    k=st.integers(1, 9),
    order=st.sampled_from(["nxk", "kxn"]),
    signed=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_pack_unpack_round_trip(data: st.DataObject, n: int, k: int, order: str, signed: bool) -> None:
    codes = data.draw(int4_weights(shape=(n, k)))
    packed = qb4.pack_nibbles(codes, order, signed=signed)  # type: ignore[arg-type]
    rows, cols = (n, k) if order == "nxk" else (k, n)
    assert packed.shape == (rows, (cols + 1) // 2)
    if cols % 2:  # odd tail holds the zero code
        assert np.all(packed[:, -1] >> 4 == (0 if signed else 8))
    assert np.array_equal(qb4.unpack_nibbles(packed, n, k, order, signed=signed), codes)  # type: ignore[arg-type]


@given(
    n=st.integers(1, 6),
    nb=st.integers(1, 3),
    bl=st.sampled_from([32, 64, 128]),
    mag=st.floats(1e-6, 1e6),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=100, deadline=None)
def test_dequant_quant_error_within_half_step(n: int, nb: int, bl: int, mag: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, nb * bl)) * mag
    w[0, :bl] = 0.0  # an all-zero block
    codes, scales = qb4.quantize_qb4(w, bl)
    assert codes.dtype == np.int8 and codes.min() >= -8 and codes.max() <= 7
    qb4.check_scales_bf16(scales, n=n, num_blocks=nb)
    d = np.repeat(bf16_to_f32(scales).astype(np.float64), bl, axis=1)
    back = qb4.dequantize_qb4(codes, scales, bl).astype(np.float64)
    assert np.array_equal(back, codes * d)  # exact in float32
    assert np.all(np.abs(back - w) <= d / 2)


def test_scale_conversions() -> None:
    x = np.array([1.0, 0.1, 3.0e-3, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-9, 65504.0], dtype=np.float32)
    rne = qb4.f32_scales_to_bf16(x)
    assert np.array_equal(rne, x.astype(ml_dtypes.bfloat16).view(np.uint16))
    h = x.astype(np.float16)
    via_f32 = h.astype(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)
    assert np.array_equal(qb4.f16_scales_to_bf16(h), via_f32)
    legacy = qb4.executorch_legacy_f32_to_bf16(x)
    want = ((x * np.float32(1.00389105)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    assert np.array_equal(legacy, want)
    assert np.all(np.abs(legacy.astype(np.int32) - rne.astype(np.int32)) <= 1)
    assert np.any(legacy != rne)  # truncation after the nudge is not RNE
    with pytest.raises(TypeError):
        qb4.f32_scales_to_bf16(x.astype(np.float64))
    with pytest.raises(TypeError):
        qb4.f16_scales_to_bf16(x)  # type: ignore[arg-type]


@pytest.mark.parametrize("bl", [0, 16, 48, 100])
def test_block_size_multiple_of_32(bl: int) -> None:
    with pytest.raises(ValueError, match="XNN_MIN_BLOCKSIZE"):
        qb4.check_block_size(96 * 32, bl)


def test_k_multiple_of_bl_and_kr() -> None:
    with pytest.raises(ValueError, match=r"k % bl"):
        qb4.check_block_size(96, 64)
    with pytest.raises(ValueError, match=r"bl % kr"):
        qb4.check_block_size(96, 32, kr=64)
    qb4.check_block_size(128, 64, kr=16)
    with pytest.raises(TypeError):
        qb4.check_block_size(128.0, 32)  # type: ignore[arg-type]


def test_zero_point_must_be_8() -> None:
    qb4.check_kernel_zero_point(8)
    for zp in (0, 7, 9):
        with pytest.raises(ValueError, match="check_kernel_zero_point_is_8_qu8"):
            qb4.check_kernel_zero_point(zp)


@pytest.mark.parametrize(
    "bits", [0x0000, 0x8000, 0xBF80, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x007F], ids=lambda b: f"0x{b:04x}"
)
def test_scales_finite_positive_normal(bits: int) -> None:
    sc = np.full((2, 3), 0x3C00, dtype=np.uint16)
    qb4.check_scales_bf16(sc, n=2, num_blocks=3)
    sc[1, 2] = bits
    with pytest.raises(ValueError, match="check_block_size"):
        qb4.check_scales_bf16(sc)


def test_scale_dtype_and_shape_errors() -> None:
    with pytest.raises(TypeError):
        qb4.check_scales_bf16(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        qb4.check_scales_bf16(np.full((2, 3), 0x3C00, dtype=np.uint16), n=2, num_blocks=4)
    with pytest.raises(ValueError):
        qb4.check_scales_bf16(np.full(3, 0x3C00, dtype=np.uint16))


def test_code_range_and_dtype_errors() -> None:
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        qb4.pack_nibbles(np.array([[8]], dtype=np.int8))
    with pytest.raises(TypeError):
        qb4.pack_nibbles(np.array([[1]], dtype=np.int16))
    with pytest.raises(ValueError, match="order"):
        qb4.pack_nibbles(np.array([[1]], dtype=np.int8), "kn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        qb4.unpack_nibbles(np.zeros((2, 2), dtype=np.uint8), 2, 5)
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        qb4.dequantize_qb4(np.full((1, 32), -9, dtype=np.int8), np.full((1, 1), 0x3C00, dtype=np.uint16), 32)
    with pytest.raises(ValueError, match="shape"):
        qb4.dequantize_qb4(np.zeros((1, 64), dtype=np.int8), np.full((1, 1), 0x3C00, dtype=np.uint16), 32)
    with pytest.raises(ValueError, match="finite"):
        qb4.quantize_qb4(np.full((1, 32), np.nan), 32)
    with pytest.raises(ValueError, match="XNN_MIN_BLOCKSIZE"):
        qb4.quantize_qb4(np.ones((1, 48)), 48)
