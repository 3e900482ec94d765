"""``kleidiref.ops.deconvolution_2d`` and the deconvolution geometry of :mod:`kleidiref.conv`.

The reference is the definition of a transposed convolution, in float64, by scattering every input pixel
through every tap: ``out[iy*sh + ky*dh - top, ix*sw + kx*dw - left] += x[iy, ix] . w[:, ky, kx]``. On
small integers every emulated kernel's sum is exact, so the outputs must equal it bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kleidiref.conv import DeconvGeometry, deconv_geometry, deconv_pieces, gather_piece
from kleidiref.dispatch import NodeRejected
from kleidiref.ops import QuantParams, deconvolution_2d, prepare_deconvolution_2d
from kleidiref.quant.qd8 import quantize_qd8
from kleidiref.targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, Target

X86 = Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)
TARGETS = {"sme2": APPLE_M4, "sme": GENERIC_SME1, "neon": NEON_ONLY, "x86": X86}
F32, F16 = np.float32, np.float16


def scatter_reference(x: Any, w: Any, g: DeconvGeometry, groups: int = 1) -> np.ndarray:
    """float64 [N, Ho, Wo, O]: every input pixel scattered through every tap (no bias)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, o, gic = x.shape[0], w.shape[0], w.shape[3]
    goc = o // groups
    out = np.zeros((n, g.hout, g.wout, o))
    for iy in range(g.h):
        for ix in range(g.w):
            for ky in range(g.kh):
                for kx in range(g.kw):
                    oy, ox = iy * g.sh + ky * g.dh - g.top, ix * g.sw + kx * g.dw - g.left
                    if 0 <= oy < g.hout and 0 <= ox < g.wout:
                        for gi in range(groups):
                            xs = x[:, iy, ix, gi * gic : (gi + 1) * gic]
                            ws = w[gi * goc : (gi + 1) * goc, ky, kx, :]
                            out[:, oy, ox, gi * goc : (gi + 1) * goc] += xs @ ws.T
    return out


@st.composite
def deconv_cases(draw: st.DrawFn, max_side: int = 4) -> dict[str, Any]:
    """Small deconvolution geometries with a non-empty output."""
    while True:
        h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
        adj = (draw(st.integers(0, s[0] - 1)), draw(st.integers(0, s[1] - 1)))
        try:
            deconv_geometry(h, w, kh, kw, upsampling=s, dilation=d, padding=pad, adjustment=adj)
        except ValueError:
            continue
        groups = draw(st.sampled_from([1, 2]))
        return dict(
            shape=(draw(st.integers(1, 2)), h, w, groups * draw(st.integers(1, 3))),
            kernel=(kh, kw),
            cout=groups * draw(st.integers(1, 3)),
            kw=dict(upsampling=s, dilation=d, padding=pad, adjustment=adj, groups=groups),
        )


def _geom(case: dict[str, Any]) -> DeconvGeometry:
    kw = {k: v for k, v in case["kw"].items() if k != "groups"}
    return deconv_geometry(case["shape"][1], case["shape"][2], *case["kernel"], **kw)


def _ints(seed: int, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi + 1, shape)


def _operands(case: dict[str, Any], seed: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = case["shape"][3]
    groups = case["kw"]["groups"]
    x = _ints(seed, case["shape"], lo, hi)
    w = _ints(seed + 1, (case["cout"], *case["kernel"], c // groups), lo, hi)
    return x, w, _ints(seed + 2, (case["cout"],), lo, hi)


# ---- geometry -----------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(deconv_cases(), st.booleans())
def test_pieces_are_the_deconvolution(case: dict[str, Any], subconv: bool) -> None:
    """The pieces (convolutions of gathered inputs, outputs reversed) cover the output once and give the
    scatter definition (float64, so exactly)."""
    g = _geom(case)
    if subconv and not g.subconv_eligible:
        with pytest.raises(ValueError, match="is_subconv2d"):
            deconv_pieces(g, subconv=True)
        return
    x, w, _ = _operands(dict(case, kw=dict(case["kw"], groups=1), shape=(*case["shape"][:3], 2)), 7, -3, 3)
    out = np.full((x.shape[0], g.hout, g.wout, w.shape[0]), np.nan)
    for p in deconv_pieces(g, subconv=subconv):
        xp = gather_piece(x.astype(np.float64), p, 0.0)
        wp = w[:, list(p.taps_y)][:, :, list(p.taps_x)].astype(np.float64)
        ho, wo = len(p.out_rows), len(p.out_cols)
        assert xp.shape[1:3] == (ho + (wp.shape[1] - 1) * p.dilation[0], wo + (wp.shape[2] - 1) * p.dilation[1])
        r = np.zeros((x.shape[0], ho, wo, w.shape[0]))
        for ty in range(wp.shape[1]):
            for tx in range(wp.shape[2]):
                y0, x0 = ty * p.dilation[0], tx * p.dilation[1]
                r += np.einsum("nhwc,oc->nhwo", xp[:, y0 : y0 + ho, x0 : x0 + wo], wp[:, ty, tx])
        assert np.isnan(out[:, p.out_rows[:, None], p.out_cols[None, :]]).all()  # each pixel written once
        out[:, p.out_rows[:, None], p.out_cols[None, :]] = r
    assert np.array_equal(out, scatter_reference(x, w, g))


def test_subkernels_follow_xnnpack_order() -> None:
    """k3 s2, padding top 1: subkernel offset 0 has taps (0, 2) and output rows 1, 3, ...
    (output_y_start = subtract_modulo(0, 1 % 2, 2) = 1); offset 1 has tap (1,) and rows 0, 2, ..."""
    g = deconv_geometry(3, 3, 3, 3, upsampling=(2, 2), padding=(1, 1, 1, 1))
    assert (g.hout, g.wout) == (5, 5)
    pieces = deconv_pieces(g, subconv=True)
    assert [(p.taps_y, p.taps_x) for p in pieces] == [((0, 2), (0, 2)), ((0, 2), (1,)), ((1,), (0, 2)), ((1,), (1,))]
    assert pieces[0].out_rows.tolist() == [3, 1] and pieces[3].out_rows.tolist() == [4, 2, 0]
    # output row 1 (j' = 1 of offset 0) reads input rows 1 (tap 0) and 0 (tap 2): positions 1 and 2.
    assert pieces[0].rows.tolist() == [2, 1, 0]


def test_geometry_errors() -> None:
    with pytest.raises(ValueError, match=r"adjustment .* smaller than the upsampling"):
        deconv_geometry(4, 4, 2, 2, upsampling=(2, 2), adjustment=(2, 0))
    with pytest.raises(ValueError, match="leaves no output"):
        deconv_geometry(1, 1, 1, 1, padding=(1, 0, 0, 0))
    with pytest.raises(ValueError, match="upsampling"):
        deconv_geometry(4, 4, 2, 2, upsampling=(0, 2))
    with pytest.raises(ValueError, match="input height"):
        deconv_geometry(0, 4, 2, 2)


# ---- the op on exactly representable data ------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(deconv_cases(), st.sampled_from(sorted(TARGETS)), st.integers(0, 1000))
def test_fp32_is_exact_on_small_integers(case: dict[str, Any], cpu: str, seed: int) -> None:
    x, w, b = _operands(case, seed, -4, 4)
    r = deconvolution_2d(x.astype(F32), w.astype(F32), b.astype(F32), target=TARGETS[cpu], **case["kw"])
    ref = scatter_reference(x, w, _geom(case), case["kw"]["groups"]) + b
    assert r.output.dtype == F32 and np.array_equal(r.output, ref)
    assert r.decision.microkernel == ("subconv2d" if _geom(case).subconv_eligible else "igemm")


@settings(max_examples=30, deadline=None)
@given(deconv_cases(), st.sampled_from(["sme2", "neon", "x86"]), st.integers(0, 1000))
def test_fp16_is_exact_on_small_integers(case: dict[str, Any], cpu: str, seed: int) -> None:
    x, w, b = _operands(case, seed, -2, 2)
    r = deconvolution_2d(x.astype(F16), w.astype(F32), b.astype(F32), target=TARGETS[cpu], **case["kw"])
    ref = scatter_reference(x, w, _geom(case), case["kw"]["groups"]) + b
    assert r.output.dtype == F16 and np.array_equal(r.output, ref)


@settings(max_examples=40, deadline=None)
@given(deconv_cases(), st.sampled_from(sorted(TARGETS)), st.booleans(), st.integers(0, 1000))
def test_qs8_is_exact_with_unit_scales(case: dict[str, Any], cpu: str, per_channel: bool, seed: int) -> None:
    """Scales 1 (requantization scale 1.0): the output is the integer sum, offset and saturated."""
    x, w, b = _operands(case, seed, -3, 3)
    zx, zy = 2, -5
    ws: Any = np.ones(case["cout"], F32) if per_channel else 1.0
    r = deconvolution_2d(
        (x + zx).astype(np.int8),
        w.astype(np.int8),
        b.astype(np.int32),
        input_quant=QuantParams(1.0, zx),
        filter_quant=QuantParams(ws),
        output_quant=QuantParams(1.0, zy),
        target=TARGETS[cpu],
        **case["kw"],
    )
    ref = np.clip(scatter_reference(x, w, _geom(case), case["kw"]["groups"]) + b + zy, -128, 127)
    assert r.output.dtype == np.int8 and np.array_equal(r.output, ref)
    assert ("pqs8_qc8w_gemm" in r.emulation) == (cpu in ("sme2", "sme"))


@settings(max_examples=25, deadline=None)
@given(deconv_cases(), st.sampled_from(["neon", "x86"]), st.integers(0, 1000))
def test_qu8_is_exact_with_unit_scales(case: dict[str, Any], cpu: str, seed: int) -> None:
    x, w, b = _operands(case, seed, -3, 3)
    zx, zw, zy = 100, 128, 120
    r = deconvolution_2d(
        (x + zx).astype(np.uint8),
        (w + zw).astype(np.uint8),
        b.astype(np.int32),
        input_quant=QuantParams(1.0, zx),
        filter_quant=QuantParams(1.0, zw),
        output_quant=QuantParams(1.0, zy),
        target=TARGETS[cpu],
        **case["kw"],
    )
    ref = np.clip(scatter_reference(x, w, _geom(case), case["kw"]["groups"]) + b + zy, 0, 255)
    assert r.output.dtype == np.uint8 and np.array_equal(r.output, ref)


@settings(max_examples=25, deadline=None)
@given(deconv_cases(), st.sampled_from(sorted(TARGETS)), st.integers(0, 1000))
def test_qd8_is_the_deconvolution_of_the_quantized_image(case: dict[str, Any], cpu: str, seed: int) -> None:
    """Dynamic quantization per image; the integer sums of the codes (minus the image's zero point) are
    exact, the f32 epilogue rounds: within a few ULP of the float64 result on the same codes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["shape"]).astype(F32)
    _, w, _ = _operands(case, seed, -100, 100)
    ws = rng.uniform(0.01, 0.02, case["cout"]).astype(F32)
    b = rng.standard_normal(case["cout"]).astype(F32)
    r = deconvolution_2d(
        x, w.astype(np.int8), b, dynamic=True, filter_quant=QuantParams(ws), target=TARGETS[cpu], **case["kw"]
    )
    q, a, zp = quantize_qd8(x.reshape(x.shape[0], -1), fz=True)
    codes = (q.astype(np.int64) - zp[:, None]).reshape(x.shape)
    acc = scatter_reference(codes, w, _geom(case), case["kw"]["groups"])
    ref = acc * a.astype(np.float64)[:, None, None, None] * ws + b
    assert r.output.dtype == F32
    np.testing.assert_allclose(r.output, ref, rtol=1e-5, atol=1e-5)


# ---- dispatch: which IGEMM kernel, which path ----------------------------------------------------------


def test_subconv_mr_follows_the_batch_size() -> None:
    """reshape_subconv2d_path asks xnn_get_heuristic_mr_igemm for mr with the batch size."""
    w = np.ones((8, 2, 2, 16), F32)
    one = deconvolution_2d(np.ones((1, 4, 4, 16), F32), w, upsampling=(2, 2), target=NEON_ONLY)
    six = deconvolution_2d(np.ones((6, 4, 4, 16), F32), w, upsampling=(2, 2), target=NEON_ONLY)
    assert one.decision.kernel.startswith("xnn_f32_igemm_minmax_ukernel_1x8") and "acc2" in one.emulation
    assert six.decision.kernel.startswith("xnn_f32_igemm_minmax_ukernel_6x8") and "ld128" in six.emulation
    assert "xnn_compute_subconv2d" in one.emulation
    # the IGEMM path (stride 1) picks mr from the output pixels per image
    flat = deconvolution_2d(np.ones((1, 4, 4, 16), F32), w, target=NEON_ONLY)
    assert flat.decision.microkernel == "igemm" and flat.decision.mr == 6
    assert "xnn_indirection_init_deconv2d" in flat.emulation


def test_few_output_channels_take_the_nr2_config() -> None:
    x, w = _ints(3, (1, 3, 3, 4), -3, 3).astype(F32), _ints(4, (3, 3, 3, 4), -3, 3).astype(F32)
    r = deconvolution_2d(x, w, upsampling=(2, 2), padding=(1, 0, 0, 1), target=NEON_ONLY)
    assert r.decision.config == "f32_gemm_nr2" and r.decision.kernel.startswith("xnn_f32_igemm_minmax_ukernel_4x2")
    g = deconv_geometry(3, 3, 3, 3, upsampling=(2, 2), padding=(1, 0, 0, 1))
    assert np.array_equal(r.output, scatter_reference(x, w, g))


def test_packed_qs8_runs_the_kleidiai_imatmul_over_all_taps() -> None:
    x = np.zeros((1, 4, 4, 16), np.int8)
    w = np.ones((8, 2, 2, 16), np.int8)
    q = dict(input_quant=QuantParams(0.5, 0), filter_quant=QuantParams(0.25), output_quant=QuantParams(1.0, 0))
    r = deconvolution_2d(x, w, upsampling=(2, 2), target=APPLE_M4, **q)  # type: ignore[arg-type]
    assert r.decision.operator == "Deconvolution (NHWC, PQS8, QS8, QC8W)" and r.decision.microkernel == "igemm"
    assert r.emulation.startswith("variant:igemm(pqs8_qc8w_gemm)")


# ---- refusals ---------------------------------------------------------------------------------------------


def test_errors_name_the_upstream_check() -> None:
    x, w = np.zeros((1, 4, 4, 4), F32), np.zeros((2, 3, 3, 4), F32)
    with pytest.raises(ValueError, match="xnn_reshape_deconvolution2d_nhwc"):
        deconvolution_2d(x, w, upsampling=(2, 2), adjustment=(2, 0))
    with pytest.raises(ValueError, match="leaves no output"):
        deconvolution_2d(x, w, padding=(6, 0, 0, 0))
    with pytest.raises(ValueError, match="divisible by groups"):
        deconvolution_2d(x, np.zeros((3, 3, 3, 2), F32), groups=2)
    with pytest.raises(ValueError, match="channel mismatch"):
        deconvolution_2d(x, np.zeros((2, 3, 3, 3), F32))
    with pytest.raises(ValueError, match="4-bit"):
        deconvolution_2d(x, np.zeros((2, 3, 3, 4), np.int8), dynamic=True, filter_quant=QuantParams(np.ones(2), bits=4))
    with pytest.raises(NodeRejected, match="no deconvolution operator"):
        deconvolution_2d(x, np.zeros((2, 3, 3, 4), np.int8), filter_quant=QuantParams(np.ones(2, F32)))
    with pytest.raises(ValueError, match="bias must have shape"):
        deconvolution_2d(x, w, np.zeros(3, F32))
    with pytest.raises(ValueError, match="NHWC"):
        deconvolution_2d(x[0], w)
    with pytest.raises(ValueError, match=">= 1"):
        deconvolution_2d(x, w, upsampling=(0, 1))
    with pytest.raises(TypeError, match="adjustment"):
        deconvolution_2d(x, w, adjustment=(0,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="xnn_define_deconvolution_2d"):
        deconvolution_2d(x, w, output_min=1.0, output_max=0.0)
    with pytest.raises(ValueError, match="output_quant"):
        deconvolution_2d(
            np.zeros((1, 4, 4, 4), np.int8),
            w.astype(np.int8),
            input_quant=QuantParams(1.0),
            filter_quant=QuantParams(1.0),
        )


def test_prepared_equals_one_shot() -> None:
    """The prepared form (decision once) gives the one-shot bits, for the shape and dtype it was prepared for."""
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((2, 3, 4, 6)).astype(F32), rng.standard_normal((4, 3, 2, 6)).astype(F32), None
    kw: dict[str, Any] = dict(upsampling=(2, 2), padding=(1, 0, 0, 1), adjustment=(1, 0), target=NEON_ONLY)
    op = prepare_deconvolution_2d(w, b, input_shape=x.shape, input_dtype=F32, **kw)
    assert op(x).output.tobytes() == deconvolution_2d(x, w, b, **kw).output.tobytes()
    with pytest.raises(ValueError, match="prepared for input float32"):
        op(x[:1])
