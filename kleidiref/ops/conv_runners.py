"""Convolution adapters: IGEMM and DWConv configs, from a :class:`~kleidiref.ops.operands.Call`.

A convolution that XNNPACK rewrites to a fully-connected node never gets here (it runs the GEMM
adapters of :mod:`kleidiref.ops.gemm_runners`). Which adapter runs for which (microkernel,
config) is :data:`kleidiref.ops.registry.RUNNERS`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .. import fallbacks as F
from ..quant.qd8 import quantize_qd8
from ..quant.qd8_f16 import quantize_qd8_f16
from ..variants import igemm
from .gemm_runners import Prepared, Result, qu8_requant_mode, x86_f16_kernel
from .operands import Call, f16_of, opt_f16, opt_f32, qs8_requant, qu8_requant, to_f32

__all__ = [
    "prepare_kai_igemm_pf16",
    "prepare_kai_igemm_pf32",
    "prepare_kai_igemm_pqs8",
    "run_dwconv_f16",
    "run_dwconv_f32",
    "run_dwconv_qs8",
    "run_f16_igemm",
    "run_f32_igemm",
    "run_kai_igemm_pf16",
    "run_kai_igemm_pf32",
    "run_kai_igemm_pqs8",
    "run_qd8_f16_qc8w_igemm",
    "run_qd8_f32_qc8w_igemm",
    "run_qs8_qc8w_igemm",
    "run_qu8_conv",
]


# ---- DWConv ----------------------------------------------------------------------------------------


def run_dwconv_f32(c: Call) -> Result:
    geo = c.geometry(groups=False)
    out = F.dwconv(to_f32(c.x), to_f32(c.w), opt_f32(c.bias), **c.clamp(), **geo, arch=c.target.arch)
    return out, f"fallback:dwconv({c.decision.kernel})"


def run_dwconv_f16(c: Call) -> Result:
    # An fp32 static filter / bias is rounded to fp16 at packing (xnn_pack_f32_to_f16_dwconv_hwg_w, RNE).
    geo = c.geometry(groups=False)
    out = F.dwconv(c.x, f16_of(c.w), opt_f16(c.bias), **c.clamp(), **geo, arch=c.target.arch)
    return out, f"fallback:dwconv({c.decision.kernel})"


def run_dwconv_qs8(c: Call) -> Result:
    r = qs8_requant(c)
    geo = c.geometry(groups=False)
    out = F.dwconv_qs8(c.x, c.w, c.bias, zx=r.zx, s=r.scale, zy=r.zy, ymin=r.ymin, ymax=r.ymax, **geo)
    return out, "fallback:dwconv_qs8"


def run_qu8_conv(c: Call) -> Result:
    # IGEMM and DWConv give the same bits (integer sums, then the same rndnu requantization).
    rq = qu8_requant_mode(c.target)
    out = F.qu8_igemm(c.x, c.w, c.bias, **qu8_requant(c), requant=rq, **c.geometry())
    return out, f"fallback:qu8_igemm({c.decision.microkernel}, {rq})"


# ---- KleidiAI IGEMM (kleidiref.variants.igemm) -----------------------------------------------------
# Note: grouped convolutions run as XNNPACK runs them on the KleidiAI IGEMM: the same IGEMM once
# per group (igemm.conv2d does that).


def _kai_igemm_geometry(c: Call) -> dict[str, Any]:
    """``variants.igemm.conv2d``'s geometry and target keywords."""
    return {**c.geometry(), "target": c.target}


# Each is a preparer (``igemm.prepare_conv2d``: the weights prepared once per group, as
# ``xnn_create_convolution2d_nhwc_*`` packs them) and the one-shot adapter ``prepare_x(c)(c)``
# (``igemm.conv2d`` is exactly prepare-then-call).


def prepare_kai_igemm_pf32(c: Call) -> Prepared:
    op = igemm.prepare_conv2d(
        to_f32(c.w), opt_f32(c.bias), variant="pf32", clamp_min=c.lo, clamp_max=c.hi, **_kai_igemm_geometry(c)
    )

    def run(call: Call) -> Result:
        return np.asarray(op(to_f32(call.x))), "variant:igemm(pf32_gemm)"

    return run


def run_kai_igemm_pf32(c: Call) -> Result:
    return prepare_kai_igemm_pf32(c)(c)


def prepare_kai_igemm_pf16(c: Call) -> Prepared:
    geo = _kai_igemm_geometry(c)
    op = igemm.prepare_conv2d(f16_of(c.w), opt_f16(c.bias), variant="pf16", clamp_min=c.lo, clamp_max=c.hi, **geo)

    def run(call: Call) -> Result:
        return np.asarray(op(call.x)), "variant:igemm(pf16_gemm)"

    return run


def run_kai_igemm_pf16(c: Call) -> Result:
    return prepare_kai_igemm_pf16(c)(c)


def prepare_kai_igemm_pqs8(c: Call) -> Prepared:
    r = qs8_requant(c)
    op = igemm.prepare_conv2d(
        c.w,
        c.bias,
        variant="pqs8",
        input_zero_point=r.zx,
        requant_scale=r.scale,
        output_zero_point=r.zy,
        output_min=r.ymin,
        output_max=r.ymax,
        **_kai_igemm_geometry(c),
    )

    def run(call: Call) -> Result:
        return np.asarray(op(call.x)), "variant:igemm(pqs8_qc8w_gemm)"

    return run


def run_kai_igemm_pqs8(c: Call) -> Result:
    return prepare_kai_igemm_pqs8(c)(c)


# ---- generic IGEMM ---------------------------------------------------------------------------------


def run_f32_igemm(c: Call) -> Result:
    d = c.decision
    k32: Literal["ld128", "acc2"] = "acc2" if d.mr == 1 or d.config == "f32_gemm_nr2" else "ld128"
    if c.target.arch == "x86_64":
        # x86-64's f32 IGEMMs (fma3/avx broadcast, 1xN included) keep one accumulator and walk k in order:
        # the ld128 arithmetic, whatever mr (a 1x8 IGEMM with two accumulators is 124 ULP off convT x86 outputs).
        k32 = "ld128"
    out = F.f32_igemm(to_f32(c.x), to_f32(c.w), opt_f32(c.bias), **c.clamp(), kernel=k32, **c.geometry())
    return out, f"fallback:f32_igemm({k32})"


def run_f16_igemm(c: Call) -> Result:
    if c.target.arch == "x86_64":
        kx = x86_f16_kernel(c.decision)
        out = F.f16_x86_igemm(c.x, f16_of(c.w), opt_f16(c.bias), **c.clamp(), kernel=kx, **c.geometry())
        return out, f"fallback:f16_x86_igemm({kx})"
    kh16: Literal["1x16", "6x16"] = "1x16" if c.decision.mr == 1 else "6x16"
    out = F.f16_igemm(c.x, f16_of(c.w), opt_f16(c.bias), **c.clamp(), kernel=kh16, **c.geometry())
    return out, f"fallback:f16_igemm({kh16})"


def run_qd8_f32_qc8w_igemm(c: Call) -> Result:
    x = c.x
    q, a, zp = quantize_qd8(to_f32(x).reshape(x.shape[0], -1), fz=c.fz)
    out = F.qd8_f32_qc8w_igemm(
        q.reshape(x.shape), a, zp, c.w, c.w_scale(), opt_f32(c.bias), **c.clamp(), **c.geometry()
    )
    return out, "fallback:qd8_f32_qc8w_igemm (qd8 per image)"


def run_qd8_f16_qc8w_igemm(c: Call) -> Result:
    # The fp16 images are quantized per image by the fp16 qd8 quantizer (ExecuTorch: num_nonbatch_dims = 3).
    x = np.asarray(c.x, dtype=np.float16)
    q, a, zp = quantize_qd8_f16(x.reshape(x.shape[0], -1), fz=c.fz, x86=c.target.arch == "x86_64")
    kern: Literal["c", "asm_ld128"] = "asm_ld128" if c.decision.kernel.endswith("_ld128") else "c"
    out = F.qd8_f16_qc8w_igemm(
        q.reshape(x.shape), a, zp, c.w, c.w_scale(), opt_f32(c.bias), kernel=kern, **c.clamp(), **c.geometry()
    )
    return out, f"fallback:qd8_f16_qc8w_igemm({kern}, qd8 per image)"


def run_qs8_qc8w_igemm(c: Call) -> Result:
    r = qs8_requant(c)
    out = F.qs8_qc8w_igemm(c.x, c.w, c.bias, zx=r.zx, s=r.scale, zy=r.zy, ymin=r.ymin, ymax=r.ymax, **c.geometry())
    return out, "fallback:qs8_qc8w_igemm"
