"""GEMM adapters: one per XNNPACK gemm config, from a :class:`~kleidiref.ops.operands.Call` to its kernel.

Each adapter takes the operands of one GEMM (FC, a 1x1 convolution XNNPACK rewrote to FC, one
BMM batch), converts them as the config's packing does, runs the kernel the decision names and
returns ``(output, emulation)``. Which adapter runs for which config is
:data:`kleidiref.ops.registry.RUNNERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

from .. import fallbacks as F
from ..configs import f16_x86_choice, f32_qcw_choice
from ..dispatch import Decision
from ..kai.registry import UKERNELS
from ..quant.qd8 import quantize_qd8
from ..quant.qd8_f16 import quantize_qd8_f16
from ..targets import Target, X86IsaLevel
from ..variants import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm, qp8_f32_qb4w_gemm, qp8_f32_qc4w_gemm, qp8_f32_qc8w_gemm
from .operands import F16, Call, f16_of, opt_f16, opt_f32, qs8_requant, qu8_requant, to_f32

__all__ = [
    "Prepared",
    "Result",
    "X86F16Kernel",
    "not_emulated",
    "prepare_pf16",
    "prepare_pf32",
    "prepare_pqs8_qc8w",
    "prepare_qd8_f32_qb4w",
    "prepare_qp8_f32_qb4w",
    "prepare_qp8_f32_qc8w",
    "qb4w_kr",
    "qu8_requant_mode",
    "run_f16_gemm",
    "run_f32_gemm",
    "run_f32_gemm_nr2",
    "run_f32_qc4w",
    "run_f32_qc8w",
    "run_pf16",
    "run_pf32",
    "run_pqs8_qc8w",
    "run_qd8_f16_qb4w",
    "run_qd8_f16_qc4w",
    "run_qd8_f16_qc8w",
    "run_qd8_f32_qb4w",
    "run_qd8_f32_qc4w",
    "run_qd8_f32_qc8w",
    "run_qp8_f32_qb4w",
    "run_qp8_f32_qc4w",
    "run_qp8_f32_qc8w",
    "run_qs8_qc8w",
    "run_qu8",
    "x86_f16_kernel",
    "x86_level_unmodelled",
]

#: An adapter's answer: the output and ``OpResult.emulation``.
Result = tuple[NDArray[Any], str]
#: A prepared adapter (weights packed once): a call in, its result out.
Prepared = Callable[[Call], Result]


def not_emulated(d: Decision, what: str) -> NotImplementedError:
    return NotImplementedError(f"{d.config} ({d.kernel}) is not emulated by kleidiref yet: {what}")


def qb4w_kr(t: Target) -> int:
    """The qb4w kernels' kr (c8 on i8mm, c4 on dotprod, 1 otherwise): it sets the block sum order."""
    return 8 if t.i8mm else 4 if t.dotprod else 1


def qu8_requant_mode(t: Target) -> Literal["rndnu", "fp32"]:
    return "rndnu" if t.arch == "arm64" else "fp32"  # x86-64 qu8 kernels requantize in fp32


X86F16Kernel = Literal["avx2", "avx512skx", "avx512fp16"]


def x86_f16_kernel(d: Decision) -> X86F16Kernel:
    """The ``kernel=`` of :mod:`kleidiref.fallbacks.f16_x86` for the x86-64 f16 kernel ``d`` names (the entry of
    XNNPACK's x86 f16_gemm config the decision's target took: AVX512-FP16, AVX512SKX or AVX2)."""
    igemm = d.microkernel == "igemm"
    for isa in _X86_F16_LEVELS:
        key, name, _, _ = f16_x86_choice(d.mr, igemm=igemm, isa=isa)
        if name == d.kernel:  # the one chooser dispatch used
            return cast(X86F16Kernel, key)
    raise AssertionError(f"{d.kernel} is no kernel of XNNPACK's x86 f16_gemm config (mr {d.mr})")


_X86_F16_LEVELS: tuple[X86IsaLevel, ...] = ("avx512fp16", "avx512skx", "avx2")
#: Configs whose x86 kernels below AVX2 kleidiref models: f32_qc8w / f32_qc4w per ISA (x86_fma / x86_avx /
#: x86_sse41); at FMA3 the f32 configs too (their __fma3 kernels are the AVX2 CPU's).
_BELOW_AVX2: Mapping[str, frozenset[str]] = {
    "fma3": frozenset({"f32_qc8w_gemm", "f32_qc4w_gemm", "f32_gemm", "f32_igemm", "f32_gemm_nr2", "f32_dwconv"}),
    "avx": frozenset({"f32_qc8w_gemm", "f32_qc4w_gemm"}),
    "sse41": frozenset({"f32_qc8w_gemm", "f32_qc4w_gemm"}),
}


def x86_level_unmodelled(d: Decision, t: Target) -> NotImplementedError | None:
    """The refusal of a decision whose x86 kernel at ``t``'s ISA level kleidiref does not model, else None.

    Note: the x86 emulations were checked against AVX2 / AVX-512 runs; below AVX2 XNNPACK takes its FMA3, AVX
    or SSE entries, which round products separately (no FMA) or requantize differently: refused, not guessed.
    """
    allowed = _BELOW_AVX2.get(t.x86_isa or "")
    if allowed is None or d.config in allowed:
        return None
    return not_emulated(
        d,
        f"x86 ISA level {t.x86_isa} (Target.x86_isa): XNNPACK runs this config's "
        f"{'SSE/AVX' if t.x86_isa != 'fma3' else 'SSE4.1/AVX/FMA3'} entry, which kleidiref does not emulate "
        "(its x86 kernels are those of AVX2 and AVX-512 CPUs)",
    )


# ---- KleidiAI: the variants (qp8_f32_qc4w_gemm from source) ----------------------------------------------


# Each KleidiAI adapter is a preparer (the RHS packed once, as XNNPACK packs it at operator creation) and
# the one-shot adapter ``prepare_x(c)(c)``. A preparer reads the call's static operands only; the prepared
# adapter reads only the activation ``x`` and the clamp of the call it is given (the op built both calls
# from the same node).


def prepare_pf32(c: Call) -> Prepared:
    w = pf32_gemm.pack_weights(to_f32(c.w), bias=opt_f32(c.bias), target=c.target)
    kernel = c.decision.kernel

    def run(call: Call) -> Result:
        out = pf32_gemm.gemm_packed(
            to_f32(call.x), w, clamp_min=call.lo, clamp_max=call.hi, target=call.target, kernel=kernel
        )
        return out, "variant:pf32_gemm"

    return run


def run_pf32(c: Call) -> Result:
    return prepare_pf32(c)(c)


def prepare_pf16(c: Call) -> Prepared:
    w = pf16_gemm.pack_weights(f16_of(c.w), bias=opt_f16(c.bias), target=c.target)
    kernel = c.decision.kernel

    def run(call: Call) -> Result:
        out = pf16_gemm.gemm_packed(call.x, w, clamp_min=call.lo, clamp_max=call.hi, target=call.target, kernel=kernel)
        return out, "variant:pf16_gemm"

    return run


def run_pf16(c: Call) -> Result:
    return prepare_pf16(c)(c)


def prepare_pqs8_qc8w(c: Call) -> Prepared:
    r = qs8_requant(c)
    w = pqs8_qc8w_gemm.pack_weights(c.w, r.scale, input_zero_point=r.zx, bias=c.bias, target=c.target)
    kernel = c.decision.kernel

    def run(call: Call) -> Result:
        out = pqs8_qc8w_gemm.gemm_packed(
            call.x,
            w,
            output_zero_point=r.zy,
            output_min=r.ymin,
            output_max=r.ymax,
            target=call.target,
            kernel=kernel,
        )
        return out, "variant:pqs8_qc8w_gemm"

    return run


def run_pqs8_qc8w(c: Call) -> Result:
    return prepare_pqs8_qc8w(c)(c)


def prepare_qp8_f32_qc8w(c: Call) -> Prepared:
    kernel = c.decision.kernel
    if kernel not in UKERNELS:
        raise not_emulated(c.decision, "kleidiref has no emulation of this qp8_f32_qc8w kernel")
    w = qp8_f32_qc8w_gemm.pack_weights(c.w, c.w_scale(), bias=opt_f32(c.bias), target=c.target, kernel=kernel)

    def run(call: Call) -> Result:
        out = qp8_f32_qc8w_gemm.gemm_packed(
            to_f32(call.x), w, clamp_min=call.lo, clamp_max=call.hi, target=call.target, kernel=kernel
        )
        return out, "variant:qp8_f32_qc8w_gemm"

    return run


def run_qp8_f32_qc8w(c: Call) -> Result:
    return prepare_qp8_f32_qc8w(c)(c)


def prepare_qp8_f32_qb4w(c: Call) -> Prepared:
    kernel = c.decision.kernel
    prep = qp8_f32_qb4w_gemm.prepare_weights(
        c.w, c.w_scale(), bl=c.block_size(), bias=opt_f32(c.bias), target=c.target, kernel=kernel
    )

    def run(call: Call) -> Result:
        out = qp8_f32_qb4w_gemm.gemm(
            to_f32(call.x), prep, clamp_min=call.lo, clamp_max=call.hi, target=call.target, kernel=kernel
        )
        return out, "variant:qp8_f32_qb4w_gemm"

    return run


def run_qp8_f32_qb4w(c: Call) -> Result:
    return prepare_qp8_f32_qb4w(c)(c)


def run_qp8_f32_qc4w(c: Call) -> Result:
    out = qp8_f32_qc4w_gemm.gemm(
        to_f32(c.x),
        c.w,
        c.w_scale(),
        bias=opt_f32(c.bias),
        clamp_min=c.lo,
        clamp_max=c.hi,
        target=c.target,
        kernel=c.decision.kernel,
    )
    return out, "variant:qp8_f32_qc4w_gemm"


# ---- generic float kernels ---------------------------------------------------------------------


def run_f32_gemm(c: Call) -> Result:
    kernel: Literal["ld128", "acc4"] = "acc4" if "acc4" in c.decision.xnn_kernel else "ld128"
    out = F.f32_gemm(to_f32(c.x), to_f32(c.w), opt_f32(c.bias), **c.clamp(), kernel=kernel)
    return out, f"fallback:f32_gemm({kernel})"


def run_f32_gemm_nr2(c: Call) -> Result:
    out = F.f32_gemm(to_f32(c.x), to_f32(c.w), opt_f32(c.bias), **c.clamp(), kernel="nr2")
    return out, "fallback:f32_gemm(nr2)"


def run_f16_gemm(c: Call) -> Result:
    if c.target.arch == "x86_64":
        kx = x86_f16_kernel(c.decision)
        out = F.f16_x86_gemm(c.x, f16_of(c.w), opt_f16(c.bias), **c.clamp(), kernel=kx)
        return out, f"fallback:f16_x86_gemm({kx})"
    k16: Literal["1x16", "6x16"] = "1x16" if c.decision.mr == 1 else "6x16"
    out = F.f16_gemm(c.x, f16_of(c.w), opt_f16(c.bias), **c.clamp(), kernel=k16)
    return out, f"fallback:f16_gemm({k16})"


def _f32_qcw_kernel(c: Call) -> str:
    d = c.decision
    kq, name, _, _ = f32_qcw_choice(d.config, d.m, c.target, d.platform)
    if name != d.kernel:  # one chooser for both: a mismatch is a kleidiref bug
        raise AssertionError(f"f32_qcw kernel {name} differs from the decision's {d.kernel}")
    return kq


# Note: the weight-only f32_qc8w / f32_qc4w kernels take the bias exactly as the node has it;
# XNNPACK packs it raw and scales the whole accumulator, so y = (bias + sum a*w) * scale (the
# decision's reasons say so).


def run_f32_qc8w(c: Call) -> Result:
    kq = _f32_qcw_kernel(c)
    opts: dict[str, Any] = {**c.clamp(), "kernel": kq}  # the chooser's key: one of the kernel's names
    out = F.f32_qc8w_gemm(to_f32(c.x), c.w, c.w_scale(), opt_f32(c.bias), **opts)
    return out, f"fallback:f32_qc8w_gemm({kq})"


def run_f32_qc4w(c: Call) -> Result:
    kq = _f32_qcw_kernel(c)
    # Note: an ops qcint4 filter holds the logical values (nibble - zero point) as int8, which
    # the fallback reads as codes - 8: kernel_zero_point 8 whatever the node's zero point.
    opts: dict[str, Any] = {**c.clamp(), "kernel": kq}
    out = F.f32_qc4w_gemm(to_f32(c.x), c.w, c.w_scale(), opt_f32(c.bias), kernel_zero_point=8, **opts)
    return out, f"fallback:f32_qc4w_gemm({kq})"


# ---- dynamically quantized (qd8) -----------------------------------------------------------------


def run_qd8_f32_qc8w(c: Call) -> Result:
    q, a, zp = quantize_qd8(to_f32(c.x), fz=c.fz)
    out = F.qd8_f32_qc8w_gemm(q, a, zp, c.w, c.w_scale(), opt_f32(c.bias), **c.clamp())
    return out, "fallback:qd8_f32_qc8w_gemm"


def run_qd8_f32_qc4w(c: Call) -> Result:
    q, a, zp = quantize_qd8(to_f32(c.x), fz=c.fz)
    out = F.qd8_f32_qc4w_gemm(q, a, zp, c.w, c.w_scale(), opt_f32(c.bias), **c.clamp())
    return out, "fallback:qd8_f32_qc4w_gemm"


def prepare_qd8_f32_qb4w(c: Call) -> Prepared:
    # The generic kernel's weights (int4 decode, bf16 scales, ksum) prepared once, as XNNPACK packs them.
    kr = qb4w_kr(c.target)
    prep = F.prepare_qd8_f32_qb4w_weights(c.w, c.w_scale(), c.block_size(), opt_f32(c.bias), kr=kr)

    def run(call: Call) -> Result:
        q, a, zp = quantize_qd8(to_f32(call.x), fz=call.fz)
        out = F.qd8_f32_qb4w_gemm_prepared(q, a, zp, prep, **call.clamp())
        return out, f"fallback:qd8_f32_qb4w_gemm(kr={kr})"

    return run


def run_qd8_f32_qb4w(c: Call) -> Result:
    return prepare_qd8_f32_qb4w(c)(c)


# qd8_f16_*: fp16 rows quantized by the fp16 qd8 quantizer, binary32 epilogue, one RN16.
# Note: the qd8_f16 operators take an f32 bias (ExecuTorch serializes it fp32); an fp16 bias
# array is widened exactly.


def run_qd8_f16_qc8w(c: Call) -> Result:
    q, a, zp = quantize_qd8_f16(np.asarray(c.x, dtype=F16), fz=c.fz)
    kern: Literal["c", "asm_ld128"] = "asm_ld128" if c.decision.kernel.endswith("_ld128") else "c"
    out = F.qd8_f16_qc8w_gemm(q, a, zp, c.w, c.w_scale(), opt_f32(c.bias), kernel=kern, **c.clamp())
    return out, f"fallback:qd8_f16_qc8w_gemm({kern})"


def run_qd8_f16_qc4w(c: Call) -> Result:
    q, a, zp = quantize_qd8_f16(np.asarray(c.x, dtype=F16), fz=c.fz)
    out = F.qd8_f16_qc4w_gemm(q, a, zp, c.w, c.w_scale(), opt_f32(c.bias), **c.clamp())
    return out, "fallback:qd8_f16_qc4w_gemm"


def run_qd8_f16_qb4w(c: Call) -> Result:
    q, a, zp = quantize_qd8_f16(np.asarray(c.x, dtype=F16), fz=c.fz)
    kr = qb4w_kr(c.target)
    out = F.qd8_f16_qb4w_gemm(q, a, zp, c.w, c.w_scale(), c.block_size(), opt_f32(c.bias), kr=kr, **c.clamp())
    return out, f"fallback:qd8_f16_qb4w_gemm(kr={kr})"


# ---- statically quantized (qs8, qu8) -------------------------------------------------------------


def run_qs8_qc8w(c: Call) -> Result:
    r = qs8_requant(c)
    out = F.qs8_qc8w_gemm(c.x, c.w, c.bias, zx=r.zx, s=r.scale, zy=r.zy, ymin=r.ymin, ymax=r.ymax)
    return out, "fallback:qs8_qc8w_gemm"


def run_qu8(c: Call) -> Result:
    rq = qu8_requant_mode(c.target)
    out = F.qu8_gemm(c.x, c.w, c.bias, **qu8_requant(c), requant=rq)
    return out, f"fallback:qu8_gemm({rq})"
