"""``conv2d`` and ``prepare_conv2d``: a 2-D convolution exactly as XNNPACK's KleidiAI IGEMM path
computes it, with XNNPACK's create-time checks.

**Prepared operators.** :func:`prepare_conv2d` splits :func:`conv2d` as XNNPACK splits create
from run: the checks and the weight preparation once, then :class:`PreparedConv2d` calls that do
only the input-dependent work; ``conv2d(input, ...)`` is ``prepare_conv2d(...)(input)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..._buffers import check_count, check_dtype
from ...conv import (
    NO_PADDING,
    ConvGeometry,
    Padding,
    PaddingLike,
    as_padding,
    as_pair,
    conv_channels,
    conv_geometry,
)
from ...kai.pack.imatmul_pack_sme import F32, I32
from ...kai.params import check_i32, kai_matmul_requantize32_params
from ...numerics import rn16
from ...targets import Target, resolve_target
from ...validate import check_alloc, check_output_range
from .configs import CONFIGS, IgemmConfig, Variant
from .plans import FloatPlan, GroupPlan, KernelPathPlan, Pqs8Plan

__all__ = ["PreparedConv2d", "conv2d", "prepare_conv2d"]


def _check_int8(name: str, value: object) -> int:
    v = check_i32(name, value)
    if not -128 <= v <= 127:
        raise ValueError(f"{name} = {v} is not an int8 value (XNNPACK passes it as int8_t)")
    return v


def _array(name: str, value: object, ndim: int, what: str) -> NDArray[Any]:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array ({what}), got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D ({what}), got shape {value.shape}")
    return value


_ELEM_WHAT = {
    "pf32": "pf32 tensors are float32",
    "pf16": "pf16 tensors are float16",
    "pqs8": "pqs8 activations and weights are int8",
}


def conv2d(
    input: NDArray[Any],
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    variant: Variant,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    padding: PaddingLike = NO_PADDING,
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    input_zero_point: int | None = None,
    requant_scale: NDArray[np.float32] | None = None,
    output_zero_point: int | None = None,
    output_min: int = -128,
    output_max: int = 127,
    target: Target | None = None,
    sme1: bool = False,
    fast: bool = True,
) -> NDArray[Any]:
    """A 2-D convolution exactly as XNNPACK's KleidiAI IGEMM path computes it: [N, Hout, Wout, Cout].

    Arguments:
        input: NHWC ``[N, H, W, Cin]``, N >= 0 (N == 0 gives an empty result, as XNNPACK skips
            the operator). float32 (pf32), float16 (pf16) or int8 (pqs8, zero point
            ``input_zero_point``).
        filter: OHWI ``[Cout, KH, KW, Cin / groups]`` (XNNPACK's goki, groups major); same dtype as
            ``input`` (pf16 also accepts float32, converted with RNE as
            ``XNN_FLAG_FP32_STATIC_WEIGHTS`` does); pqs8: int8 symmetric per output channel.
        bias: ``[Cout]`` float32 / float16 (pf16 accepts float32, RNE) / int32 (pqs8, in units
            of ``input_scale * kernel_scale[n]``), or None (zeros, as XNNPACK substitutes).
        variant: ``"pf32"``, ``"pf16"`` or ``"pqs8"``.
        stride, dilation: (height, width), each >= 1.
        padding: (top, right, bottom, left), each >= 0: XNNPACK's order, as everywhere in kleidiref
            (:mod:`kleidiref.conv`); a :class:`~kleidiref.conv.Padding` names the sides. Explicit
            padding: resolve TF SAME first.
        groups: >= 1, dividing Cin and Cout. Group g reads input channels ``g*Cin/groups ..``,
            filters/bias/scales ``g*Cout/groups ..`` and writes those output channels: XNNPACK runs
            the same IGEMM once per group (``a_offset = g * group_input_channels``, weights packed
            per group by its goki packer), so each group is exactly an ungrouped convolution.
        clamp_min, clamp_max: pf32/pf16 output bounds (binary32; pf16 narrows them to f16 with
            RNE, as the wrappers do). NaN or ``min > max`` is refused like XNNPACK's create.
        input_zero_point, requant_scale, output_zero_point, output_min, output_max: pqs8 only.
            ``requant_scale`` is float32 ``[Cout]`` in XNNPACK's convention
            ``RN32(RN32(s_in * s_w[n]) / s_out)`` (see
            :func:`kleidiref.quant.qai8.requantization_scale`), each in (0, 256).
        target: the CPU (default: the current target). Needs SME; FPCR.FZ is its
            ``flush_to_zero``.
        sme1: run the SME1 kernel even when the target has SME2 (XNNPACK picks SME2 first).
        fast: the default computes the kernel's arithmetic on an im2col gather of the input,
            skipping the pointers and the packed buffers (the same bits: the packers only move
            elements; the tests compare both paths); ``fast=False`` runs the steps below through
            the packer and kernel objects.

    Steps per image b and group (XNNPACK ``reshape_igemm`` + ``xnn_compute_hmp_inline_packed_igemm``;
    ``Cin``/``Cout`` below are the group's channel counts):

    1. :func:`conv_geometry` (output size, XNNPACK's checks) and :func:`indirection_conv2d`
       with ``mr`` = the LHS packer's m_step (built once, for image 0).
    2. Padding buffer: ``Cin`` elements of +0.0 (floats) or ``input_zero_point`` (pqs8,
       ``input_padding_bytes``).
    3. The imatmul LHS packer with ``m = M``, ``k_chunk_count = ks``, ``k_chunk_length = Cin``,
       ``lhs_ptr_offset = b * H * W * Cin * elem`` (XNNPACK's ``a_offset``), ``pad_ptr`` = the
       padding buffer (never offset).
    4. Weights: OHWI transposed to ``[ks*Cin][Cout]`` and packed by the imatmul RHS packer (pqs8
       params ``{lhs_zero_point = input_zero_point, scale_multiplier = 1.0}``).
    5. The matmul MOPA kernel (SME2, or SME1 without SME2 / with ``sme1``) with ``m = M``,
       ``n = Cout``, ``k = ks * roundup(Cin, kr)``; arithmetic in :mod:`kleidiref.variants.igemm`.

    ``conv2d(input, filter, bias, **kw)`` is ``prepare_conv2d(filter, bias, **kw)(input)``
    (:func:`prepare_conv2d`): to run one convolution on many inputs, prepare it once.

    XNNPACK's subgraph may route some convolutions elsewhere (1x1 groups=1 -> fully connected;
    1-in/1-out channel per group, i.e. depthwise -> generic dwconv/vmulcaddc); this function is the
    IGEMM path only (for groups too). ``xnnpack_conv_weights_mislaid`` flags the pf16 SVL-128
    weight-layout hazard.
    """
    op, x, geom = _prepare(
        True,
        input,
        filter,
        bias,
        variant=variant,
        stride=stride,
        dilation=dilation,
        padding=padding,
        groups=groups,
        clamp_min=clamp_min,
        clamp_max=clamp_max,
        input_zero_point=input_zero_point,
        requant_scale=requant_scale,
        output_zero_point=output_zero_point,
        output_min=output_min,
        output_max=output_max,
        target=target,
        sme1=sme1,
        fast=fast,
    )
    assert x is not None and geom is not None
    return op._run(x, geom)


def prepare_conv2d(
    filter: NDArray[Any],
    bias: NDArray[Any] | None = None,
    *,
    variant: Variant,
    stride: Sequence[int] = (1, 1),
    dilation: Sequence[int] = (1, 1),
    padding: PaddingLike = NO_PADDING,
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    input_zero_point: int | None = None,
    requant_scale: NDArray[np.float32] | None = None,
    output_zero_point: int | None = None,
    output_min: int = -128,
    output_max: int = 127,
    target: Target | None = None,
    sme1: bool = False,
    fast: bool = True,
) -> PreparedConv2d:
    """A convolution operator with its weights prepared once: XNNPACK's create/run split.

    ``prepare_conv2d(filter, bias, **kw)(input)`` is :func:`conv2d` ``(input, filter, bias, **kw)``
    bit for bit (the arguments mean the same; :func:`conv2d` is exactly this). Here, as in
    ``xnn_create_convolution2d_nhwc_*``, every filter, bias and parameter check runs and the weights
    are prepared once per group (pqs8: the float32 weights with the folded ``bias' = bias - izp *
    sum W`` and the scales checked and flushed; pf32/pf16: the per-tap padded weights and the bias
    FMOPA; ``fast=False``: the imatmul RHS packer's buffer); calling the returned
    :class:`PreparedConv2d` does only the input-dependent work, as ``xnn_reshape_*`` +
    ``xnn_setup_*`` + ``xnn_run_operator`` do. Without an input the channel checks use the
    filter's ``Cin = groups * filter.shape[3]``; the input's are checked per call.
    """
    return _prepare(
        False,
        None,
        filter,
        bias,
        variant=variant,
        stride=stride,
        dilation=dilation,
        padding=padding,
        groups=groups,
        clamp_min=clamp_min,
        clamp_max=clamp_max,
        input_zero_point=input_zero_point,
        requant_scale=requant_scale,
        output_zero_point=output_zero_point,
        output_min=output_min,
        output_max=output_max,
        target=target,
        sme1=sme1,
        fast=fast,
    )[0]


def _prepare(
    have_input: bool,
    input: object,
    filter: NDArray[Any],
    bias: NDArray[Any] | None,
    *,
    variant: Variant,
    stride: Sequence[int],
    dilation: Sequence[int],
    padding: PaddingLike,
    groups: int,
    clamp_min: float,
    clamp_max: float,
    input_zero_point: int | None,
    requant_scale: NDArray[np.float32] | None,
    output_zero_point: int | None,
    output_min: int,
    output_max: int,
    target: Target | None,
    sme1: bool,
    fast: bool,
) -> tuple[PreparedConv2d, NDArray[Any] | None, ConvGeometry | None]:
    """Every check of :func:`conv2d` in its order and the weight preparation; with ``have_input``
    also the input's checks and geometry (returned with the operator)."""
    cfg, t, n_groups = _check_options(variant, target, sme1, groups, fast)
    x = _array("input", input, 4, "NHWC [N, H, W, Cin]") if have_input else None
    f = _array("filter", filter, 4, "OHWI [Cout, KH, KW, Cin]")
    # The packed weights and their float32 decodings (a broadcast view is sized by its shape).
    check_alloc(f"preparing conv2d weights {f.shape}", (f.shape, F32), factor=4)
    elem_what = _ELEM_WHAT[variant]
    if x is not None:
        check_dtype("input", x, cfg.elem, elem_what)
    if variant == "pf16" and f.dtype == F32:
        # Note: XNN_FLAG_FP32_STATIC_WEIGHTS: xnn_pack_f32_to_f16_conv_goki_w converts with
        # xnn_float16_from_float (RNE).
        f = rn16(f)
    check_dtype("filter", f, cfg.elem, elem_what)
    cout, kh, kw, fcin = f.shape
    conv_channels(fcin * n_groups if x is None else x.shape[3], cout, fcin, n_groups)
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel {kh}x{kw}: kernel dimensions must be non-zero (xnn_create_convolution2d_nhwc)")
    geom: ConvGeometry | None = None
    if x is None:
        conv = (as_pair("stride", stride), as_pair("dilation", dilation), as_padding(padding))
    else:
        geom = conv_geometry(x.shape[1], x.shape[2], kh, kw, stride=stride, dilation=dilation, padding=padding)
        conv = (geom.stride, geom.dilation, geom.padding)
    b = _check_bias(variant, cfg, bias, cout)
    kern = (cfg.sme1 if (sme1 or not t.sme2) else cfg.sme2)(t.svl_bits, fz=t.flush_to_zero)
    izp = 0
    scale: NDArray[np.float32] | None = None
    params: Any
    if variant == "pqs8":
        if input_zero_point is None or requant_scale is None or output_zero_point is None:
            raise ValueError("pqs8 needs input_zero_point, requant_scale and output_zero_point")
        izp = _check_int8("input_zero_point", input_zero_point)
        scale, params = _pqs8_params(cout, requant_scale, output_zero_point, output_min, output_max)
    else:
        for label, v in (
            ("input_zero_point", input_zero_point),
            ("requant_scale", requant_scale),
            ("output_zero_point", output_zero_point),
        ):
            if v is not None:
                raise ValueError(f"{label} is a pqs8 parameter; {variant} clamps with clamp_min/clamp_max")
        params = _float_bounds(variant, clamp_min, clamp_max)
    og = cout // n_groups
    plans: list[GroupPlan] = []
    for g in range(n_groups):
        # XNNPACK packs each group's weights on their own: its Cout/groups filters and bias/scale
        # slice (goki: group-major).
        fs, bs = f[g * og : (g + 1) * og], b[g * og : (g + 1) * og]
        ss = None if scale is None else scale[g * og : (g + 1) * og]
        if not fast:
            plans.append(KernelPathPlan(cfg, variant, kern, fs, bs, ss, izp, params))
        elif variant == "pqs8":
            assert ss is not None
            plans.append(Pqs8Plan(kern, fs, bs, ss, izp, params))
        else:
            plans.append(FloatPlan(variant, kern, fs, bs, params))
    op = PreparedConv2d(variant, kern, (cout, kh, kw, fcin), n_groups, *conv, fast, izp, params, plans)
    return op, x, geom


def _check_options(
    variant: Variant, target: Target | None, sme1: bool, groups: int, fast: bool
) -> tuple[IgemmConfig, Target, int]:
    """The variant, target and flags, checked in :func:`conv2d`'s order: (config, target, groups)."""
    if variant not in CONFIGS:
        raise ValueError(f"variant must be one of {sorted(CONFIGS)}, got {variant!r}")
    t = resolve_target(target)
    if not t.has_sme:
        raise ValueError(
            f"the KleidiAI IGEMM path needs SME; target {t.name!r} has none (XNNPACK runs its generic "
            "f32/f16/qs8 IGEMM there: see kleidiref.dispatch)"
        )
    if not isinstance(sme1, bool):
        raise TypeError("sme1 must be a bool")
    n_groups = check_count("groups", groups, minimum=1)
    if not isinstance(fast, bool):
        raise TypeError("fast must be a bool")
    return CONFIGS[variant], t, n_groups


def _check_bias(variant: Variant, cfg: IgemmConfig, bias: NDArray[Any] | None, cout: int) -> NDArray[Any]:
    """The bias as the kernel reads it (zeros when None, as XNNPACK substitutes)."""
    bias_dtype = I32 if variant == "pqs8" else cfg.elem
    if bias is None:
        return np.zeros(cout, dtype=bias_dtype)  # Note: XNNPACK substitutes a zero bias
    bias_name = "int32" if variant == "pqs8" else cfg.elem_name  # Note: dtype.name costs ~5 us a call
    b = _array("bias", bias, 1, f"[Cout] {bias_name}")
    if variant == "pf16" and b.dtype == F32:
        b = rn16(b)  # Note: XNN_FLAG_FP32_STATIC_BIASES: xnn_float16_from_float (RNE)
    check_dtype("bias", b, bias_dtype, f"the {variant} bias is {bias_name}")
    if b.shape != (cout,):
        raise ValueError(f"bias must have shape ({cout},) (one per output channel), got {b.shape}")
    return b


def _pqs8_params(
    cout: int, requant_scale: object, output_zero_point: int, output_min: int, output_max: int
) -> tuple[NDArray[np.float32], kai_matmul_requantize32_params]:
    """pqs8's output quantization, checked as ``xnn_create_convolution2d_nhwc_qs8_qc8w`` does."""
    zp_out = _check_int8("output_zero_point", output_zero_point)
    lo_q, hi_q = _check_int8("output_min", output_min), _check_int8("output_max", output_max)
    if lo_q > hi_q:
        raise ValueError(f"output_min {lo_q} must be <= output_max {hi_q} (xnn_create_convolution2d_nhwc_qs8)")
    scale = check_dtype("requant_scale", requant_scale, F32, "XNNPACK requantization scales are float32")
    if scale.shape != (cout,):
        raise ValueError(f"requant_scale must have shape ({cout},), got {scale.shape}")
    with np.errstate(invalid="ignore"):
        bad = ~((scale > 0) & (scale < np.float32(256)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"requant_scale[{i}] = {float(scale[i])!r} must be > 0 and < 256: XNNPACK's "
            "init_requantization_scale_qx8_qc8w refuses to create the operator"
        )
    return scale, kai_matmul_requantize32_params(lo_q, hi_q, zp_out)


def _float_bounds(variant: Variant, clamp_min: float, clamp_max: float) -> tuple[np.float32, np.float32]:
    """pf32/pf16 clamp bounds, checked as ``xnn_create_convolution2d_nhwc_f32/_f16`` do."""
    return check_output_range(
        clamp_min, clamp_max, op=f"xnn_create_convolution2d_nhwc_{variant[1:]}", f16=variant == "pf16"
    )


class PreparedConv2d:
    """A 2-D convolution operator made by :func:`prepare_conv2d`: call it with NHWC inputs.

    ``op(input)`` gives ``[N, Hout, Wout, Cout]`` exactly as :func:`conv2d` does for the same
    arguments; the input may change shape (N, H, W) from call to call, as XNNPACK's reshape allows,
    but not its channel count or dtype (both checked per call, as the geometry is). The operator is
    immutable: it holds copies of what it needs of the filter, bias and scales (later changes to the
    caller's arrays do not reach it, as XNNPACK's packed weights do not see them). Calls from several
    threads are safe (the scratch buffers are per thread).
    """

    __slots__ = (
        "_dilation",
        "_fast",
        "_filter_shape",
        "_geoms",
        "_groups",
        "_izp",
        "_kern",
        "_padding",
        "_params",
        "_plans",
        "_stride",
        "_variant",
    )

    _variant: Variant
    _kern: Any
    _filter_shape: tuple[int, int, int, int]
    _groups: int
    _stride: tuple[int, int]
    _dilation: tuple[int, int]
    _padding: Padding
    _fast: bool
    _izp: int
    _params: Any
    _plans: tuple[GroupPlan, ...]
    _geoms: dict[tuple[int, int], ConvGeometry]

    def __init__(
        self,
        variant: Variant,
        kern: Any,
        filter_shape: tuple[int, int, int, int],
        groups: int,
        stride: tuple[int, int],
        dilation: tuple[int, int],
        padding: Padding,
        fast: bool,
        izp: int,
        params: Any,
        plans: Sequence[GroupPlan],
    ) -> None:
        """Internal: use :func:`prepare_conv2d` (which checks the arguments)."""
        for name, value in (
            ("_variant", variant),
            ("_kern", kern),
            ("_filter_shape", filter_shape),
            ("_groups", groups),
            ("_stride", stride),
            ("_dilation", dilation),
            ("_padding", padding),
            ("_fast", fast),
            ("_izp", izp),
            ("_params", params),
            ("_plans", tuple(plans)),
            ("_geoms", {}),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a PreparedConv2d is immutable: prepare another one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a PreparedConv2d is immutable: prepare another one")

    def __repr__(self) -> str:
        cout, kh, kw, fcin = self._filter_shape
        return (
            f"PreparedConv2d({self._variant}, {self._kern.name}, Cin={fcin * self._groups}, Cout={cout}, "
            f"kernel={kh}x{kw}, stride={self._stride}, dilation={self._dilation}, padding={self._padding}, "
            f"groups={self._groups}, fast={self._fast})"
        )

    @property
    def variant(self) -> Variant:
        """``"pf32"``, ``"pf16"`` or ``"pqs8"``."""
        return self._variant

    @property
    def kernel_name(self) -> str:
        """The MOPA kernel whose arithmetic runs (SME2, or SME1 without SME2 / with ``sme1``)."""
        name: str = self._kern.name
        return name

    @property
    def in_channels(self) -> int:
        """Cin: the input's channel count (``groups * filter.shape[3]``)."""
        return self._filter_shape[3] * self._groups

    @property
    def out_channels(self) -> int:
        """Cout."""
        return self._filter_shape[0]

    @property
    def groups(self) -> int:
        return self._groups

    @property
    def dtype(self) -> np.dtype[Any]:
        """The input, filter and output element type."""
        dt: np.dtype[Any] = self._kern.dst_dtype
        return dt

    def geometry(self, h: int, w: int) -> ConvGeometry:
        """The geometry of an H x W input (:func:`conv_geometry`'s checks), cached per (H, W)."""
        key = (h, w)
        geom = self._geoms.get(key)
        if geom is None:
            _, kh, kw, _ = self._filter_shape
            geom = conv_geometry(h, w, kh, kw, stride=self._stride, dilation=self._dilation, padding=self._padding)
            if len(self._geoms) >= 16:  # Note: a bounded cache (inputs of ever new sizes)
                self._geoms.clear()
            self._geoms[key] = geom
        return geom

    def __call__(self, input: NDArray[Any]) -> NDArray[Any]:
        """The convolution of ``input`` (NHWC ``[N, H, W, Cin]``, N >= 0): ``[N, Hout, Wout, Cout]``."""
        x = _array("input", input, 4, "NHWC [N, H, W, Cin]")
        check_dtype("input", x, CONFIGS[self._variant].elem, _ELEM_WHAT[self._variant])
        cout, _, _, fcin = self._filter_shape
        conv_channels(x.shape[3], cout, fcin, self._groups)
        return self._run(x, self.geometry(x.shape[1], x.shape[2]))

    def _run(self, x: NDArray[Any], geom: ConvGeometry) -> NDArray[Any]:
        """The per-inference work on a checked input: per group, the prepared plan's route."""
        n_img = x.shape[0]
        cout, ng = self._filter_shape[0], self._groups
        _, kh, kw, fcin = self._filter_shape
        pixels = (n_img, geom.hout, geom.wout)
        # The output with the kernels' float32/int32 temporaries and the gathered input patches.
        check_alloc(
            f"conv2d output {(*pixels, cout)}", ((*pixels, cout), F32), ((*pixels, kh * kw * fcin), F32), factor=4
        )
        # Note: empty, not zeros: every route writes every output element (no zeroing pass).
        out = np.empty((n_img, geom.hout, geom.wout, cout), dtype=self._kern.dst_dtype)
        if n_img == 0:
            return out  # Note: XNNPACK marks a batch of 0 as xnn_run_state_skip
        if ng == 1:
            self._plans[0].run(self._kern, geom, x, out)
            return out
        cg, og = x.shape[3] // ng, cout // ng
        for g, plan in enumerate(self._plans):
            # XNNPACK runs one IGEMM per group: its Cin/groups input channels (a_offset = g * cg) and
            # its output channel slice.
            plan.run(self._kern, geom, x[..., g * cg : (g + 1) * cg], out[..., g * og : (g + 1) * og])
        return out
