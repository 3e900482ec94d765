"""XNNPACK's float depthwise convolution as :func:`kleidiref.fallbacks.dwconv` emulates it.

The oracle below walks ``xnn_indirection_init_dwconv2d``'s buffer (src/indirection.c) with plain loops: taps
column-first (``t = kx*kh + ky``), the spare taps of a primary tile larger than the window reading the next
pixels' pointers (the last pixel's: its own last tap again) with zero weights; the arithmetic is the exact
rational one of ``_exact``. The property tests pin what follows from that walk: a 1x1 depthwise convolution
runs the 3-tap kernel (XNNPACK never selects vmulcaddc at the pin), so an Inf next door gives NaN, and a
pixel that reads only padding can be -0.
"""

from __future__ import annotations

from fractions import Fraction as Fr
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _exact import clamp, radd, rfma, rmul, rnd, same
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kleidiref import Runner
from kleidiref import fallbacks as F
from kleidiref.conv import conv_geometry
from kleidiref.dispatch import ConvParams, Node, TensorSpec, decide
from kleidiref.fallbacks.dwconv import dwconv_indirection
from kleidiref.targets import APPLE_M4, Target

F32, F16 = np.float32, np.float16
SET = settings(max_examples=40, deadline=None)
ARCHES = ("arm64", "x86_64")
FIXTURES = Path(__file__).parent / "fixtures" / "pte"


def floats(dt: Any, shape: Any, lim: float) -> Any:
    return hnp.arrays(dt, shape, elements=st.floats(-lim, lim, width=32 if dt == F32 else 16, allow_subnormal=True))


def walk(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], dil: tuple[int, int], pad: tuple[int, ...], tile: int
) -> list[list[tuple[int, int] | None]]:
    """Per output pixel, the input pixel (iy, ix) or None (zero buffer) of each of the ``tile`` taps."""
    _, h, w, _ = x.shape
    (sh, sw), (dh, dw), (pt, pr, pb, pl) = stride, dil, pad
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    ks = kh * kw
    step_w = min(sw, kw) if dw == 1 else kw
    step_h = ks + (ow - 1) * step_w * kh
    buf: list[tuple[int, int] | None] = [None] * (oh * step_h + tile - ks)
    for oy in range(oh):
        for ky in range(kh):
            iy = oy * sh + ky * dh - pt
            for ox in range(ow):
                for kx in range(kw):
                    ix = ox * sw + kx * dw - pl
                    inside = 0 <= iy < h and 0 <= ix < w
                    buf[oy * step_h + (ox * step_w + kx) * kh + ky] = (iy, ix) if inside else None
    for t in range(ks, tile):
        buf[oh * step_h - ks + t] = buf[oh * step_h - 1]
    return [[buf[oy * step_h + ox * kh * step_w + t] for t in range(tile)] for oy in range(oh) for ox in range(ow)]


def oracle(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, geo: dict[str, Any], lo: float, hi: float, fz: bool, arch: str
) -> np.ndarray:
    fmt = "f32" if x.dtype == F32 else "f16"
    kh, kw, c = w.shape[1], w.shape[2], x.shape[3]
    tile = F.dwconv_tile(fmt, kh * kw)
    pix = walk(x, kh, kw, geo["stride"], geo["dilation"], geo["padding"], tile)
    ks = [[float(w[ch, t % kh, t // kh, 0]) for t in range(kh * kw)] + [0.0] * (tile - kh * kw) for ch in range(c)]
    x86_f16 = arch == "x86_64" and fmt == "f16"
    acc_fmt = "f32" if x86_f16 else fmt

    def step(r: float) -> float:
        return rnd(Fr(r), "f16", False) if x86_f16 else r

    out = np.empty((x.shape[0], len(pix), c))
    for n in range(x.shape[0]):
        for p, taps in enumerate(pix):
            for ch in range(c):
                xs = [0.0 if q is None else float(x[n, q[0], q[1], ch]) for q in taps]
                if tile == 25 and not (arch == "x86_64" and fmt == "f32"):
                    a = step(rfma(xs[0], ks[ch][0], b[ch], acc_fmt, fz))
                    bb = step(rmul(xs[1], ks[ch][1], acc_fmt, fz))
                    for t in range(2, 25):
                        if t % 2 == 0:
                            a = step(rfma(xs[t], ks[ch][t], a, acc_fmt, fz))
                        else:
                            bb = step(rfma(xs[t], ks[ch][t], bb, acc_fmt, fz))
                    acc = step(radd(a, bb, acc_fmt, fz))
                else:
                    acc = float(b[ch])
                    for t in range(tile):
                        acc = step(rfma(xs[t], ks[ch][t], acc, acc_fmt, fz))
                out[n, p, ch] = clamp(acc, lo, hi)
    return out


@st.composite
def shapes(draw: Any) -> dict[str, Any]:
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if kh * kw > 25:
        kw = 25 // kh
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, (kh - 1) * dil[0] + 1 - pad[0] - pad[2]), 10))
    w = draw(st.integers(max(1, (kw - 1) * dil[1] + 1 - pad[1] - pad[3]), 10))
    return dict(kh=kh, kw=kw, h=h, w=w, geo=dict(stride=stride, dilation=dil, padding=pad))


@SET
@given(
    data=st.data(),
    s=shapes(),
    c=st.integers(1, 3),
    n=st.integers(1, 2),
    dt=st.sampled_from([F32, F16]),
    arch=st.sampled_from(ARCHES),
    fz=st.booleans(),
    bounds=st.sampled_from([(-np.inf, np.inf), (-2.0, 3.0)]),
)
def test_dwconv_matches_the_indirection_walk(
    data: Any, s: dict[str, Any], c: int, n: int, dt: Any, arch: str, fz: bool, bounds: tuple[float, float]
) -> None:
    lim = 100.0 if dt == F32 else 4.0
    x = data.draw(floats(dt, (n, s["h"], s["w"], c), lim))
    w = data.draw(floats(dt, (c, s["kh"], s["kw"], 1), lim))
    b = data.draw(floats(dt, (c,), lim))
    fz = fz and arch == "arm64"  # x86 FTZ/DAZ flushes after rounding: the oracle models Arm's FZ only
    got = F.dwconv(x, w, b, **s["geo"], clamp_min=bounds[0], clamp_max=bounds[1], fz=fz, arch=arch)  # type: ignore[arg-type]
    same(got.reshape(n, -1, c), oracle(x, w, b, s["geo"], *bounds, fz, arch))


@pytest.mark.parametrize("arch", ARCHES)
def test_taps_are_column_first(arch: str) -> None:
    """3x3 window, 9-tap kernel: the sum runs kx outer, ky inner. (ky, kx) = (0, 0), (1, 0), (0, 1) hold
    2**30, -2**30, 1: column-first (2**30 - 2**30) + 1 = 1; row-first (2**30 + 1) - 2**30 = 0 in binary32."""
    x = np.zeros((1, 3, 3, 1), F32)
    x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 0, 1, 0] = 2.0**30, -(2.0**30), 1.0
    assert F.dwconv(x, np.ones((1, 3, 3, 1), F32), arch=arch)[0, 0, 0, 0] == 1.0  # type: ignore[arg-type]


def test_indirection_of_a_strided_window() -> None:
    """stride 2 < kw 3: step_width 2, windows overlap by one column; taps (ky, kx) -> kx*kh + ky."""
    ptr = dwconv_indirection(conv_geometry(3, 5, 3, 3, stride=(1, 2)), 9)
    assert ptr.tolist() == [[0, 5, 10, 1, 6, 11, 2, 7, 12], [2, 7, 12, 3, 8, 13, 4, 9, 14]]


# ---- 1x1 depthwise: the 3-tap kernel with two spare taps ----------------------------------------------------


@SET
@given(data=st.data(), hw=st.tuples(st.integers(1, 3), st.integers(1, 4)), dt=st.sampled_from([F32, F16]),
       arch=st.sampled_from(ARCHES))  # fmt: skip
def test_1x1_inf_next_door_gives_nan(data: Any, hw: tuple[int, int], dt: Any, arch: str) -> None:
    h, w = hw
    x = data.draw(floats(dt, (1, h, w, 2), 4.0))
    k = data.draw(hnp.arrays(dt, (2, 1, 1, 1), elements=st.floats(0.5, 2.0, width=16)))
    q = data.draw(st.integers(0, h * w - 1))
    x.reshape(-1, 2)[q, 0] = np.inf
    y = F.dwconv(x, k, None, arch=arch).reshape(-1, 2)  # type: ignore[arg-type]
    x86_f16 = arch == "x86_64" and dt == F16  # MAXPS(acc, min): a NaN becomes the lower bound
    nan_out = -np.inf if x86_f16 else np.nan
    for p in range(h * w):
        # pixel p reads pixels p, p+1, p+2 (weights w, 0, 0), the last pixel itself three times
        reads = {min(p + t, h * w - 1) for t in range(3)}
        if q in reads and (q != p or p == h * w - 1):
            np.testing.assert_array_equal(y[p, 0], nan_out)  # 0 * Inf
        elif q == p:
            assert y[p, 0] == np.inf
        else:
            assert np.isfinite(y[p, 0])
        assert np.isfinite(y[p, 1])  # channels never mix


@pytest.mark.parametrize("dt", [F32, F16])
@pytest.mark.parametrize("arch", ARCHES)
def test_1x1_all_padding_pixel_sign_follows_the_neighbours(dt: Any, arch: str) -> None:
    """A left-border output of a padded 1x1 reads the zero buffer, then its right neighbours with weight +0:
    bias -0 and weight < 0 give -0 + (0 * w = -0) = -0, kept only if both neighbours are negative."""
    x = np.array([[-1.0, -2.0], [3.0, -4.0]], dt).reshape(1, 2, 2, 1)
    w = np.full((1, 1, 1, 1), -1.0, dt)
    y = F.dwconv(x, w, np.full(1, -0.0, dt), padding=(0, 0, 0, 1), arch=arch)  # type: ignore[arg-type]
    border = y[0, :, 0, 0]
    assert border.tolist() == [0.0, 0.0]
    assert np.signbit(border).tolist() == [True, False]  # row 0 reads -1, -2; row 1 reads 3 (+0 * 3 = +0)


def test_1x1_depthwise_never_runs_vmulcaddc() -> None:
    """``init_vmuladdc_params_*`` never store the config, so ``select_microkernel_type`` takes dwconv."""
    x = TensorSpec("fp32", (1, 4, 4, 8))
    x86 = Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)
    for t in (APPLE_M4, x86):
        d = decide(
            Node(
                op="depthwise_convolution_2d",
                input=x,
                filter=TensorSpec("fp32", (8, 1, 1, 1), static=True),
                output=x,
                convolution=ConvParams(kernel=(1, 1), groups=8),
            ),
            t,
        )
        assert d.microkernel == "dwconv" and d.dwconv_tile == 3
        assert any("vmulcaddc_config is never set" in r for r in d.reasons)


# ---- x86 f16: fp16 emulated in f32, rounded to fp16 after every step ---------------------------------------


def test_x86_f16_rounds_twice_per_tap() -> None:
    """1 + x*w = 1 + 2**-11 + 78 * 2**-32: RN32 lands on the fp16 midpoint 1 + 2**-11, RN16 ties to 1.0
    (x86 FMA3); one RN16 (ARM64 FMLA .h) rounds up to 1 + 2**-10."""
    x = np.full((1, 1, 1, 1), 1 + 22 * 2.0**-10, F16)
    w = np.full((1, 1, 1, 1), (1 - 43 * 2.0**-11) * 2.0**-11, F16)
    b = np.ones(1, F16)
    exact = Fr(float(x[0, 0, 0, 0])) * Fr(float(w[0, 0, 0, 0])) + 1
    assert F.dwconv(x, w, b, arch="x86_64")[0, 0, 0, 0] == rnd(Fr(rnd(exact, "f32", False)), "f16", False) == 1.0
    assert F.dwconv(x, w, b, arch="arm64")[0, 0, 0, 0] == rnd(exact, "f16", False) == 1 + 2.0**-10


def test_dwconv_rejects_bad_input() -> None:
    x = np.zeros((1, 3, 3, 2), F32)
    with pytest.raises(TypeError, match="same dtype"):
        F.dwconv(x, np.zeros((2, 3, 3, 1), F16))
    with pytest.raises(ValueError, match="groups = channels"):
        F.dwconv(x, np.zeros((2, 3, 3, 2), F32))
    with pytest.raises(ValueError, match="arch"):
        F.dwconv(x, np.zeros((2, 3, 3, 1), F32), arch="riscv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="IGEMM"):
        F.dwconv(np.zeros((1, 7, 7, 2), F32), np.zeros((2, 7, 7, 1), F32))


@SET
@given(data=st.data(), s=shapes(), dt=st.sampled_from([F32, F16]), arch=st.sampled_from(ARCHES))
def test_an_output_reads_only_its_window_and_spare_taps(data: Any, s: dict[str, Any], dt: Any, arch: str) -> None:
    """An input value set to Inf moves exactly the outputs whose taps read it, in its channel and image."""
    lim = 100.0 if dt == F32 else 4.0
    x = data.draw(floats(dt, (2, s["h"], s["w"], 2), lim))
    w = data.draw(floats(dt, (2, s["kh"], s["kw"], 1), lim))
    before = F.dwconv(x, w, **s["geo"], arch=arch)  # type: ignore[arg-type]
    n, iy, ix, ch = (data.draw(st.integers(0, d - 1)) for d in x.shape)
    x2 = x.copy()
    x2[n, iy, ix, ch] = np.inf
    after = F.dwconv(x2, w, **s["geo"], arch=arch)  # type: ignore[arg-type]
    tile = F.dwconv_tile("f32" if dt == F32 else "f16", s["kh"] * s["kw"])
    g = s["geo"]
    reads = [(iy, ix) in taps for taps in walk(x, s["kh"], s["kw"], g["stride"], g["dilation"], g["padding"], tile)]
    moved = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    expect = np.zeros_like(moved)
    expect[n, :, :, ch] = np.asarray(reads).reshape(before.shape[1:3])
    # every reader becomes Inf or NaN (0 * Inf on a spare or zero-weight tap), nothing else moves
    np.testing.assert_array_equal(moved, expect)


@pytest.mark.parametrize(
    "name,cpu,kernel",
    [
        ("fp32", "sme2", "xnn_f32_dwconv_minmax_ukernel_9p8c__neonfma"),
        ("fp32", "x86-avx2", "xnn_f32_dwconv_minmax_ukernel_9p16c__fma3"),
        ("fp16", "sme2", "xnn_f16_dwconv_minmax_ukernel_9p16c__neonfp16arith"),
        ("fp16", "x86-avx2", "xnn_f16_dwconv_minmax_ukernel_9p16c__fma3"),
    ],
)
def test_runner_names_the_dwconv_kernel(name: str, cpu: str, kernel: str) -> None:
    path = FIXTURES / f"dwconv3x3_c32__{name}.pte"
    with np.load(path.with_suffix(".io.npz")) as z:
        x = z["input_0"]
    trace = Runner(path, cpu).run([x]).trace
    assert [t.emulation for t in trace if t.node_type == "XNNDepthwiseConv2d"] == [f"fallback:dwconv({kernel})"]


X86_OBSERVED = sorted(p.stem for p in (FIXTURES.parent / "dwconv_x86").glob("*.pte"))


@pytest.mark.parametrize("cpu", ["x86-avx512-fp16", "x86-avx512-vnni"])
@pytest.mark.parametrize("name", X86_OBSERVED)
def test_x86_observed_depthwise_outputs(name: str, cpu: str) -> None:
    """ExecuTorch 1.5.1 on x86-64 (tests/fixtures/dwconv_x86/README.md): every bit, -0 and NaN positions too.
    ``x86-avx512-fp16`` is the observing machine; ``x86-avx512-vnni`` gives the same bits."""
    path = FIXTURES.parent / "dwconv_x86" / f"{name}.pte"
    with np.load(path.with_suffix(".io.npz")) as z:
        x, e = z["input_0"], z["output_0"]
    g = Runner(path, cpu).run([x]).outputs[0]  # AVX512F: the __avx512f f32 kernels
    assert g.dtype == e.dtype and g.shape == e.shape
    np.testing.assert_array_equal(np.isnan(g), np.isnan(e))
    ok = ~np.isnan(e)
    np.testing.assert_array_equal(g[ok].view(np.uint8), e[ok].view(np.uint8))


def test_x86_observed_1x1_spare_taps_read_the_next_pixels() -> None:
    """The observation itself: 0 * Inf of the next two pixels (across the row end too) is a NaN."""
    with np.load(FIXTURES.parent / "dwconv_x86" / "k1x1__fp32.io.npz") as z:
        e = z["output_0"]  # NCHW [2, 5, 6, 7]
    nan = {tuple(i) for i in np.argwhere(np.isnan(e)).tolist()}
    assert {(0, 2, 3, 2), (0, 2, 3, 3)} <= nan and (0, 2, 3, 4) not in nan  # Inf at (3, 4): its two predecessors
    assert {(0, 4, 1, 6), (0, 4, 2, 0)} <= nan  # NaN at (2, 1): read by (1, 6) across the row end
    assert (1, 3, 5, 6) in nan  # the last pixel repeats its own pointer: Inf * w + 0 * Inf
