"""IGEMM conv2d: the fast path (im2col gather) against the kernel path, bit for bit; groups."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref.targets import GENERIC_SME1, SUPPORTED_SVLS, Target
from kleidiref.variants import igemm as ig

#: Values that stress the epilogues and FZ: signed zeros, binary32 and binary16 subnormals,
#: f16-exact values (ties), large values; inf/NaN only when drawn.
_SPECIAL = [0.0, -0.0, 1e-39, -3e-42, 2.0**-20, -(2.0**-24), 1.0, -1.0, 0.5, 65504.0, -3.0e5]
_NONFINITE = [np.inf, -np.inf, np.nan]


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    """A small convolution: geometry (incl. padding-only output pixels), groups, data knobs, target."""
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple(draw(st.integers(0, 4)) for _ in range(4))
    assume(pad[0] + h + pad[2] >= (kh - 1) * dil[0] + 1 and pad[1] + w + pad[3] >= (kw - 1) * dil[1] + 1)
    groups = draw(st.integers(1, 3))
    return {
        "n": draw(st.integers(1, 2)),
        "h": h,
        "w": w,
        "kh": kh,
        "kw": kw,
        "stride": stride,
        "dilation": dil,
        "padding": pad,
        "groups": groups,
        "cg": draw(st.integers(1, 9)),
        "og": draw(st.integers(1, 40)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "svl": draw(st.sampled_from(SUPPORTED_SVLS)),
        "fz": draw(st.booleans()),
        "sme": draw(st.sampled_from(["sme2", "sme1_flag", "sme1_cpu"])),
        "special": draw(st.sampled_from([0.0, 0.1, 0.5])),
        "nonfinite": draw(st.booleans()),
    }


def _target(pr: dict[str, Any]) -> tuple[Target, bool]:
    if pr["sme"] == "sme1_cpu":
        return GENERIC_SME1.replace(svl_bits=pr["svl"], flush_to_zero=pr["fz"]), False
    return Target(svl_bits=pr["svl"], flush_to_zero=pr["fz"]), pr["sme"] == "sme1_flag"


def _float_operands(pr: dict[str, Any], dt: Any) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(pr["seed"])
    cin, cout = pr["cg"] * pr["groups"], pr["og"] * pr["groups"]
    pool = np.array(_SPECIAL + (_NONFINITE if pr["nonfinite"] else []))

    def arr(shape: tuple[int, ...]) -> NDArray[Any]:
        v = rng.standard_normal(shape) * rng.choice([1e-3, 1.0, 1e3], size=shape)
        pick = rng.random(shape) < pr["special"]
        v[pick] = rng.choice(pool, size=int(pick.sum()))
        if dt == np.float16:
            v = np.clip(v, -65504, 65504)  # keep the f16 values finite unless drawn as inf
            v[pick] = rng.choice(pool, size=int(pick.sum()))
        with np.errstate(over="ignore"):
            out: NDArray[Any] = v.astype(dt)
        return out

    x = arr((pr["n"], pr["h"], pr["w"], cin))
    f = arr((cout, pr["kh"], pr["kw"], pr["cg"]))
    b = arr((cout,))
    return x, f, b


def _geo(pr: dict[str, Any]) -> dict[str, Any]:
    return {"stride": pr["stride"], "dilation": pr["dilation"], "padding": pr["padding"], "groups": pr["groups"]}


def _same(a: NDArray[Any], b: NDArray[Any]) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


#: pf32/pf16 clamp bounds: unbounded, ordinary, at zero (both signs), subnormal (flushed under FZ).
_CLAMPS = [
    (-np.inf, np.inf),
    (-1.5, 2.0),
    (0.0, np.inf),
    (-np.inf, -0.0),
    (0.0, 6.0),
    (float(np.float32(1e-39)), 1.0),
    (-(2.0**-20), 2.0**-20),
]


@settings(max_examples=80, deadline=None)
@given(problems(), st.sampled_from([*_CLAMPS, (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0)]))
def test_pf32_fast_path_is_kernel_path(pr: dict[str, Any], clamp: tuple[float, float]) -> None:
    t, sme1 = _target(pr)
    x, f, b = _float_operands(pr, np.float32)
    kw = {"variant": "pf32", "clamp_min": clamp[0], "clamp_max": clamp[1], "target": t, "sme1": sme1, **_geo(pr)}
    assert _same(ig.conv2d(x, f, b, **kw), ig.conv2d(x, f, b, fast=False, **kw))


@settings(max_examples=80, deadline=None)
@given(problems(), st.sampled_from(_CLAMPS))
def test_pf16_fast_path_is_kernel_path(pr: dict[str, Any], clamp: tuple[float, float]) -> None:
    t, sme1 = _target(pr)
    x, f, b = _float_operands(pr, np.float16)
    kw = {"variant": "pf16", "clamp_min": clamp[0], "clamp_max": clamp[1], "target": t, "sme1": sme1, **_geo(pr)}
    assert _same(ig.conv2d(x, f, b, **kw), ig.conv2d(x, f, b, fast=False, **kw))


def _pqs8_operands(pr: dict[str, Any], big: str) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], dict[str, Any]]:
    rng = np.random.default_rng(pr["seed"])
    cin, cout = pr["cg"] * pr["groups"], pr["og"] * pr["groups"]
    x = rng.integers(-128, 128, (pr["n"], pr["h"], pr["w"], cin)).astype(np.int8)
    f = rng.integers(-128, 128, (cout, pr["kh"], pr["kw"], pr["cg"])).astype(np.int8)
    blim = {"bias": 2**31 - 1, "scale": 30000, "none": 30000, "mid": 2**24 - 1}[big]
    b = rng.integers(-blim, blim, cout, endpoint=True).astype(np.int32)
    if big == "mid":  # |bias'| just below 2**24: added in float32, not folded into the GEMM
        b = (np.sign(b) * (2**24 - 1 - (np.abs(b) % 3000))).astype(np.int32)
    if big == "scale":  # large scales: FCVTZS saturates, the zero-point add wraps
        scale = rng.uniform(1.0, 255.0, cout).astype(np.float32)
    else:
        scale = (rng.random(cout) * rng.choice([1e-4, 1e-2, 1.0]) + 1e-6).astype(np.float32)
    scale[::5] = np.float32(1e-40)  # subnormal scales: flushed under FZ
    lo = int(rng.integers(-128, 128))
    q = {
        "input_zero_point": int(rng.choice([-128, -3, 0, 5, 127])),
        "requant_scale": scale,
        "output_zero_point": int(rng.integers(-128, 128)),
        "output_min": lo,
        "output_max": int(rng.integers(lo, 128)),
    }
    return x, f, b, q


@settings(max_examples=80, deadline=None)
@given(problems(), st.sampled_from(["none", "none", "bias", "scale", "mid"]))
def test_pqs8_fast_path_is_kernel_path(pr: dict[str, Any], big: str) -> None:
    """The pqs8 fast routes (bias folded into the float32 GEMM, bias added in float32, and
    int8_matmul + requantize when the data do not bound them: huge bias', huge scales) against the
    packed kernel path."""
    t, sme1 = _target(pr)
    x, f, b, q = _pqs8_operands(pr, big)
    kw = {"variant": "pqs8", "target": t, "sme1": sme1, **q, **_geo(pr)}
    assert _same(ig.conv2d(x, f, b, **kw), ig.conv2d(x, f, b, fast=False, **kw))


@settings(max_examples=60, deadline=None)
@given(problems(), st.sampled_from(["pf32", "pf16", "pqs8"]), st.booleans())
def test_grouped_conv_is_concatenated_per_group_convs(pr: dict[str, Any], variant: str, fast: bool) -> None:
    """groups = g: output channels [j*O/g, (j+1)*O/g) are the ungrouped conv of input channels
    [j*C/g, (j+1)*C/g) with filters and bias [j*O/g, (j+1)*O/g), bitwise (both paths)."""
    t, sme1 = _target(pr)
    g, og = pr["groups"], pr["og"]
    kw: dict[str, Any] = {"variant": variant, "target": t, "sme1": sme1, "fast": fast, **_geo(pr)}
    q: dict[str, Any] = {}
    if variant == "pqs8":
        x, f, b, q = _pqs8_operands(pr, "none")
    else:
        x, f, b = _float_operands(pr, np.float32 if variant == "pf32" else np.float16)
        kw.update(clamp_min=-2.0, clamp_max=3.0)
    whole = ig.conv2d(x, f, b, **kw, **q)
    kw["groups"] = 1
    cg = pr["cg"]
    for j in range(g):
        sl = slice(j * og, (j + 1) * og)
        qj = {**q, "requant_scale": q["requant_scale"][sl]} if q else {}
        part = ig.conv2d(np.ascontiguousarray(x[..., j * cg : (j + 1) * cg]), f[sl], b[sl], **kw, **qj)
        assert _same(np.ascontiguousarray(whole[..., sl]), part)


def test_padding_only_pixels_and_batches_both_paths() -> None:
    """Output pixels whose taps are all padding (3x3 input, padding 4, dilation 2) and a batch of 3."""
    rng = np.random.default_rng(11)
    geo: dict[str, Any] = {"padding": (4, 3, 4, 2), "dilation": (2, 1), "stride": (1, 2)}
    t = Target(svl_bits=256)
    x = rng.standard_normal((3, 3, 3, 5)).astype(np.float32)
    f = rng.standard_normal((7, 3, 2, 5)).astype(np.float32)
    b = np.array([-0.0, 1.0, -2.0, 0.0, 3.5, -0.0, 1e-39], dtype=np.float32)
    for variant, dt in (("pf32", np.float32), ("pf16", np.float16)):
        xx, ff, bb = x.astype(dt), f.astype(dt), b.astype(dt)
        kw: dict[str, Any] = {"variant": variant, "target": t, **geo}
        assert _same(ig.conv2d(xx, ff, bb, **kw), ig.conv2d(xx, ff, bb, fast=False, **kw))
    x8 = rng.integers(-128, 128, (3, 3, 3, 5)).astype(np.int8)
    f8 = rng.integers(-128, 128, (7, 3, 2, 5)).astype(np.int8)
    b8 = rng.integers(-5000, 5000, 7).astype(np.int32)
    q: dict[str, Any] = {
        "input_zero_point": -7,
        "requant_scale": np.full(7, 0.01, np.float32),
        "output_zero_point": 4,
        "target": t,
        **geo,
    }
    assert _same(ig.conv2d(x8, f8, b8, variant="pqs8", **q), ig.conv2d(x8, f8, b8, variant="pqs8", fast=False, **q))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["pf32", "pf16", "pqs8"])
@pytest.mark.parametrize(("h", "cin", "cout", "stride"), [(32, 3, 32, 2), (9, 160, 40, 1), (6, 48, 200, 1)])
def test_fast_path_is_kernel_path_layer_shapes(variant: str, h: int, cin: int, cout: int, stride: int) -> None:
    """Layer-sized shapes: M > N and M < N (both chain orientations), K > 1024 (pqs8 bounds)."""
    rng = np.random.default_rng(h * cin + cout)
    t = Target(svl_bits=512)
    kw: dict[str, Any] = {"variant": variant, "target": t, "stride": (stride, stride), "padding": (1, 1, 1, 1)}
    if variant == "pqs8":
        x: NDArray[Any] = rng.integers(-128, 128, (1, h, h, cin)).astype(np.int8)
        f: NDArray[Any] = rng.integers(-128, 128, (cout, 3, 3, cin)).astype(np.int8)
        b: NDArray[Any] = rng.integers(-2000, 2000, cout).astype(np.int32)
        kw.update(input_zero_point=-128, requant_scale=np.full(cout, 2e-4, np.float32), output_zero_point=1)
    else:
        dt = np.float32 if variant == "pf32" else np.float16
        x, f, b = (rng.standard_normal(s).astype(dt) for s in ((1, h, h, cin), (cout, 3, 3, cin), (cout,)))
        kw.update(clamp_min=-4.0, clamp_max=4.0)
    assert _same(ig.conv2d(x, f, b, **kw), ig.conv2d(x, f, b, fast=False, **kw))


@pytest.mark.parametrize("regime", ["plain", "bias_wraps", "big_scale", "big_m", "izp_min", "scan", "scan_fails"])
def test_pqs8_long_k_routes_are_kernel_path(regime: str) -> None:
    """K >= 1024 (3x3 x 120 channels): the weights' bound (random weights), with extreme weights the
    chunked float route (few pixels) or the input's bound (more pixels), and the integer route when
    nothing bounds the float route."""
    rng = np.random.default_rng(len(regime))
    hw = 17 if regime in ("big_m", "scan", "scan_fails") else 2  # M = 289 (4 M >= K) or 4
    cin, cout = 120, 9
    x = rng.integers(-128, 128, (2, hw, hw, cin)).astype(np.int8)
    f = rng.integers(-128, 128, (cout, 3, 3, cin)).astype(np.int8)
    if regime in ("izp_min", "big_scale", "scan", "scan_fails"):  # the weights' bound fails
        x[...] = -128
        f[...] = -128 if regime == "izp_min" else 127
    if regime == "scan":  # small inputs: the input's bound settles it
        x = rng.integers(-3, 4, x.shape).astype(np.int8)
    b = rng.integers(-50000, 50000, cout).astype(np.int32)
    if regime == "bias_wraps":
        b[::2] = np.int32(2**31 - 5)
    scale = (rng.random(cout) * 1e-3 + 1e-5).astype(np.float32)
    if regime == "big_scale":  # |acc| * scale beyond 2**31: FCVTZS saturates
        scale[:] = np.float32(200.0)
    izp = {"izp_min": -128, "big_scale": 127, "scan": 2}.get(regime, 17)
    q: dict[str, Any] = {
        "input_zero_point": izp,
        "requant_scale": scale,
        "output_zero_point": -3,
        "padding": (1, 1, 1, 1),
        "target": Target(svl_bits=512),
    }
    assert _same(ig.conv2d(x, f, b, variant="pqs8", **q), ig.conv2d(x, f, b, variant="pqs8", fast=False, **q))


# ---------------------------------------------------------------------------------------------
# The prepared operator (prepare_conv2d): XNNPACK's create/run split
# ---------------------------------------------------------------------------------------------


def _operands(pr: dict[str, Any], variant: str) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], dict[str, Any]]:
    """Operands and keyword arguments (without input/filter/bias) for one variant."""
    t, sme1 = _target(pr)
    kw: dict[str, Any] = {"variant": variant, "target": t, "sme1": sme1, **_geo(pr)}
    if variant == "pqs8":
        x, f, b, q = _pqs8_operands(pr, "none")
        return x, f, b, {**kw, **q}
    x, f, b = _float_operands(pr, np.float32 if variant == "pf32" else np.float16)
    return x, f, b, {**kw, "clamp_min": -2.0, "clamp_max": 3.0}


@settings(max_examples=60, deadline=None)
@given(problems(), st.sampled_from(["pf32", "pf16", "pqs8"]), st.booleans())
def test_prepared_is_kernel_path(pr: dict[str, Any], variant: str, fast: bool) -> None:
    """prepare_conv2d(filter, bias, **kw)(input) == conv2d(input, filter, bias, fast=False, **kw), bitwise."""
    x, f, b, kw = _operands(pr, variant)
    op = ig.prepare_conv2d(f, b, fast=fast, **kw)
    assert _same(op(x), ig.conv2d(x, f, b, fast=False, **kw))


@settings(max_examples=40, deadline=None)
@given(
    problems(),
    st.sampled_from(["pf32", "pf16", "pqs8"]),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 2), st.integers(1, 7), st.integers(1, 7)), min_size=2, max_size=4),
)
def test_prepared_reused_over_input_shapes(
    pr: dict[str, Any], variant: str, fast: bool, shapes: list[tuple[int, int, int]]
) -> None:
    """One prepared operator run on inputs of different N, H, W (N = 0 included) stays exact, and
    changing the caller's filter/bias/scales after preparation does not reach it."""
    x0, f, b, kw = _operands(pr, variant)
    want_f, want_b = f.copy(), b.copy()
    want_kw = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    op = ig.prepare_conv2d(f, b, fast=fast, **kw)
    f[...] = 1  # the operator holds its own copies, as XNNPACK's packed weights
    b[...] = 1
    if variant == "pqs8":
        kw["requant_scale"][...] = np.float32(0.5)
    rng = np.random.default_rng(pr["seed"] ^ 0x5EED)
    (pt, pright, pb, pl), (kh, kw_), (dh, dw) = pr["padding"], (pr["kh"], pr["kw"]), pr["dilation"]
    for n, h, w in shapes:
        if pt + h + pb < (kh - 1) * dh + 1 or pl + w + pright < (kw_ - 1) * dw + 1:
            with pytest.raises(ValueError, match="smaller than the effective"):
                op(np.zeros((n, h, w, x0.shape[3]), x0.dtype))
            continue
        if variant == "pqs8":
            x: NDArray[Any] = rng.integers(-128, 128, (n, h, w, x0.shape[3])).astype(np.int8)
        else:
            x = (rng.standard_normal((n, h, w, x0.shape[3])) * 4).astype(x0.dtype)
        assert _same(op(x), ig.conv2d(x, want_f, want_b, fast=False, **want_kw))


def test_prepared_operator_checks_and_immutability() -> None:
    """Input checks run per call with conv2d's messages; filter/parameter checks at preparation."""
    rng = np.random.default_rng(5)
    f = rng.standard_normal((6, 3, 3, 2)).astype(np.float32)
    op = ig.prepare_conv2d(f, None, variant="pf32", groups=2, padding=(1, 1, 1, 1), target=Target(svl_bits=256))
    assert (op.variant, op.in_channels, op.out_channels, op.groups) == ("pf32", 4, 6, 2)
    assert op.dtype == np.dtype(np.float32)
    assert op.kernel_name.endswith("sme2_mopa") and "PreparedConv2d(pf32" in repr(op)
    x = rng.standard_normal((2, 5, 4, 4)).astype(np.float32)
    assert _same(
        op(x), ig.conv2d(x, f, None, variant="pf32", groups=2, padding=(1, 1, 1, 1), target=Target(svl_bits=256))
    )
    assert op.geometry(5, 4) is op.geometry(5, 4)
    with pytest.raises(AttributeError, match="immutable"):
        op.groups = 1  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del op._plans
    with pytest.raises(ValueError, match="channel mismatch"):
        op(np.zeros((1, 5, 4, 6), np.float32))
    with pytest.raises(ValueError, match=r"input channels \(3\) must be divisible by groups \(2\)"):
        op(np.zeros((1, 5, 4, 3), np.float32))
    with pytest.raises(TypeError, match="float32"):
        op(np.zeros((1, 5, 4, 4), np.float16))
    with pytest.raises(ValueError, match="4-D"):
        op(np.zeros((5, 4, 4), np.float32))
    with pytest.raises(TypeError, match="numpy array"):
        op([[1.0]])  # type: ignore[arg-type]
    assert op(np.zeros((0, 5, 4, 4), np.float32)).shape == (0, 5, 4, 6)
    with pytest.raises(ValueError, match=r"input channels \(0\) and output channels \(6\) must be non-zero"):
        ig.prepare_conv2d(np.zeros((6, 3, 3, 0), np.float32), variant="pf32")
    with pytest.raises(ValueError, match=r"output channels \(6\) must be divisible by groups \(4\)"):
        ig.prepare_conv2d(f, variant="pf32", groups=4)
    with pytest.raises(TypeError, match="padding must be 4 integers"):
        ig.prepare_conv2d(f, variant="pf32", padding=(1, 1))
    with pytest.raises(ValueError, match=r"stride\[1\] must be >= 1"):
        ig.prepare_conv2d(f, variant="pf32", stride=(1, 0))
    with pytest.raises(ValueError, match="< 256"):
        ig.prepare_conv2d(
            f.astype(np.int8),
            variant="pqs8",
            input_zero_point=0,
            output_zero_point=0,
            requant_scale=np.full(6, 256, np.float32),
        )


@pytest.mark.parametrize("zp", [-3, 0, 4, 127, -128])
def test_pqs8_output_stage_ties_and_bounds(zp: int) -> None:
    """Scales 0.5 / 0.25 / 0.75 make exact ties (FRINTN: to even) and values far past the int8 range;
    odd and even output zero points, clamps at the int8 extremes: fast == kernel path."""
    rng = np.random.default_rng(zp + 200)
    x = rng.integers(-128, 128, (2, 6, 5, 7)).astype(np.int8)
    f = rng.integers(-128, 128, (12, 3, 3, 7)).astype(np.int8)
    b = rng.integers(-3000, 3000, 12).astype(np.int32)
    for scale in (0.5, 0.25, 0.75, 2.0**-12):
        for lo, hi in ((-128, 127), (-5, 9), (120, 127)):
            q: dict[str, Any] = {
                "input_zero_point": 9,
                "requant_scale": np.full(12, scale, np.float32),
                "output_zero_point": zp,
                "output_min": lo,
                "output_max": hi,
                "padding": (1, 0, 2, 1),
                "target": Target(svl_bits=256),
            }
            assert _same(ig.conv2d(x, f, b, variant="pqs8", **q), ig.conv2d(x, f, b, variant="pqs8", fast=False, **q))
