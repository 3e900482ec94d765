"""kleidiref.conv: the one convolution geometry (output size, padding order, indirection, im2col)."""

from __future__ import annotations

import numpy as np
import pytest

from kleidiref import fallbacks as F
from kleidiref.conv import (
    Padding,
    as_padding,
    conv_channels,
    conv_geometry,
    conv_output_size,
    im2col,
    indirection_conv2d,
)


def test_padding_is_top_right_bottom_left() -> None:
    p = Padding(top=1, right=2, bottom=3, left=4)
    assert tuple(p) == (1, 2, 3, 4)
    assert as_padding([1, 2, 3, 4]) == p and as_padding(np.array([1, 2, 3, 4])) == p and as_padding(p) is p
    g = conv_geometry(5, 6, 1, 1, padding=p)
    assert (g.top, g.right, g.bottom, g.left) == (1, 2, 3, 4) and g.padding == p
    assert (g.hout, g.wout) == (1 + 5 + 3, 4 + 6 + 2)
    with pytest.raises(TypeError, match=r"padding must be 4 integers \(top, right, bottom, left\)"):
        as_padding((1, 2, 3))
    with pytest.raises(ValueError, match="padding left must be >= 0"):
        as_padding((0, 0, 0, -1))


def test_output_size_formula() -> None:
    # (padded - ((kernel - 1) * dilation + 1)) // stride + 1; below 1 when the kernel does not fit
    assert conv_output_size(10, 3, 2, 3) == (10 - 5) // 3 + 1
    assert conv_output_size(4, 3, 2, 1) == 0
    with pytest.raises(ValueError, match="smaller than the effective"):
        conv_geometry(2, 2, 3, 1, dilation=(2, 1), padding=(1, 0, 0, 0))


def test_channel_checks() -> None:
    assert conv_channels(6, 9, 2, 3) == (2, 3)
    for args, what in (((0, 1, 1, 1), "non-zero"), ((5, 4, 1, 2), "divisible"), ((4, 4, 3, 2), "mismatch")):
        with pytest.raises(ValueError, match=what):
            conv_channels(*args)


def test_left_padding_moves_the_columns_right_padding_does_not() -> None:
    """Only top and left enter the addresses (XNNPACK's indirection)."""
    x = np.arange(2 * 3 * 4 * 1, dtype=np.float32).reshape(2, 3, 4, 1) + 1
    a = im2col(x, conv_geometry(3, 4, 1, 1, padding=Padding(0, 0, 0, 1)))  # left 1
    b = im2col(x, conv_geometry(3, 4, 1, 1, padding=Padding(0, 1, 0, 0)))  # right 1
    assert a.reshape(2, 3, 5)[:, :, 0].tolist() == [[0, 0, 0]] * 2  # the padding column comes first
    assert b.reshape(2, 3, 5)[:, :, 4].tolist() == [[0, 0, 0]] * 2  # ... or last
    ind = indirection_conv2d(conv_geometry(3, 4, 1, 1, padding=Padding(0, 0, 0, 1)), 1)
    assert ind.reshape(3, 5)[:, 0].tolist() == [-1, -1, -1]


def test_im2col_per_image_padding_value() -> None:
    """A per-image padding value (per-image dynamic quantization zero points), as the fallbacks use."""
    x = np.zeros((2, 1, 1, 2), np.int8)
    a = im2col(x, conv_geometry(1, 1, 1, 2, padding=Padding(0, 1, 0, 0)), np.array([3, -4], np.int8))
    assert a.tolist() == [[0, 0, 3, 3], [0, 0, -4, -4]]


def test_fallbacks_read_the_same_padding_order() -> None:
    rng = np.random.default_rng(1)
    x, w = rng.integers(-3, 4, (1, 3, 4, 2)).astype(np.float32), rng.integers(-3, 4, (2, 1, 2, 2)).astype(np.float32)
    got = F.f32_igemm(x, w, None, padding=Padding(top=0, right=0, bottom=0, left=2))
    want = F.f32_igemm(np.pad(x, ((0, 0), (0, 0), (2, 0), (0, 0))), w, None)
    assert np.array_equal(got, want)
