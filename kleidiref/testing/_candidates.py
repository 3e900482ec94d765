"""Wrong-but-close references that users write, each computed exactly so a match can be named."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.interface import BlockwiseKernel
from ..numerics import canonical_nan_f32, fclamp, fmin_fmax, rn16
from ..quant.qai8dx import qai8dx_params
from ..quant.qd8 import quantize_qd8
from ._problem import Problem, kernels_of

__all__ = ["Candidate", "candidates"]

F32 = np.float32
F64 = np.float64


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A named alternative reference and what it gets wrong."""

    name: str
    why: str
    compute: Callable[[], NDArray[Any]]


def _clamp_like(p: Problem, y: NDArray[Any]) -> NDArray[Any]:
    """Clamp ``y`` as the problem's kernel does (kind and bound precision)."""
    kind = getattr(p.kernel_obj(), "clamp_kind", "fclamp")
    if y.dtype == np.float16:
        lo, hi = rn16(np.float32(p.clamp_min)), rn16(np.float32(p.clamp_max))
    else:
        lo, hi = F32(p.clamp_min), F32(p.clamp_max)
    out = fclamp(y, lo, hi) if kind == "fclamp" else fmin_fmax(y, lo, hi)
    return out


def _float_bias(p: Problem) -> NDArray[np.float64]:
    return np.zeros(p.n) if p.bias is None else p.bias.astype(F64)


def _f32_per_element(p: Problem, fused: bool) -> NDArray[np.float32]:
    """KleidiAI's ``matmul_any_type``-like loop: f32 accumulator from the bias, k in order."""
    a = p.lhs.astype(F32)
    w = p.rhs.astype(F32)
    acc = np.broadcast_to(_float_bias(p).astype(F32), (p.m, p.n)).copy()
    with np.errstate(all="ignore"):
        for kk in range(p.k):
            prod = a[:, kk : kk + 1].astype(F64) * w[:, kk][None, :].astype(F64)
            if fused:  # fma emulated in float64 then rounded: double rounding
                acc = (prod + acc.astype(F64)).astype(F32)
            else:
                acc = (acc + prod.astype(F32)).astype(F32)
    out: NDArray[np.float32] = acc
    return out


def _float_candidates(p: Problem) -> list[Candidate]:
    f16 = p.variant == "pf16_gemm"

    def fin(acc: NDArray[Any]) -> NDArray[Any]:
        y = acc.astype(np.float16) if f16 else canonical_nan_f32(acc.astype(F32))
        return _clamp_like(p, y)

    def f64() -> NDArray[Any]:
        with np.errstate(all="ignore"):
            return fin(p.lhs.astype(F64) @ p.rhs.astype(F64).T + _float_bias(p))

    def blas32() -> NDArray[Any]:
        with np.errstate(all="ignore"):
            return fin(p.lhs.astype(F32) @ p.rhs.astype(F32).T + _float_bias(p).astype(F32))

    out = [
        Candidate(
            "numpy float64 matmul",
            "accumulates in float64 and rounds once at the end; the kernel "
            "rounds every k step in binary32 (FMOPA), so results differ by a few ULP",
            f64,
        ),
        Candidate(
            "float32 BLAS matmul",
            "BLAS sums in its own (blocked) order; the kernel sums k in order with one rounding per step",
            blas32,
        ),
        Candidate(
            "per-element float32 accumulation, unfused (KleidiAI test reference matmul_any_type)",
            "RN32(acc + RN32(a*w)) rounds the product separately; FMOPA is fused (one rounding per k)",
            lambda: fin(_f32_per_element(p, fused=False)),
        ),
    ]
    if not f16:
        out.append(
            Candidate(
                "fma32 emulated as float32(float64(a)*b + acc) (double rounding)",
                "rounding the exact float64 sum to binary32 after a float64 rounding can round twice; the "
                "kernel's FMOPA rounds once (kleidiref uses round-to-odd)",
                lambda: fin(_f32_per_element(p, fused=True)),
            )
        )
    else:

        def f16_acc() -> NDArray[Any]:
            with np.errstate(all="ignore"):
                return _clamp_like(p, (p.lhs @ p.rhs.T + (p.bias if p.bias is not None else 0)).astype(np.float16))

        out.append(
            Candidate(
                "numpy float16 matmul",
                "numpy's float16 matmul is a non-BLAS loop of its own "
                "precision; the kernel accumulates f16 pairs in binary32",
                f16_acc,
            )
        )
    return out


def _qai8dxp_with_codes(p: Problem, kernel: str, q: NDArray[np.int8]) -> NDArray[np.float32]:
    """A qp8_f32_qc8w kernel's stages on its packed LHS's zero points and scales, with codes ``q``."""
    from ..variants.qp8_f32_qc8w_gemm import Qai8dxpRows, kai_lhs_quant_pack_qai8dxp_f32, pack_weights

    kern = p.kernel_obj(kernel)
    tp = kern.tile_params()
    buf = kai_lhs_quant_pack_qai8dxp_f32(p.target.svl_bits).pack(p.lhs, mr=tp.mr, kr=tp.kr, sr=tp.sr)
    rows = kern.decode_lhs(buf, p.m, p.k)
    w = pack_weights(p.rhs, p.scale, bias=p.bias, target=p.target)  # type: ignore[arg-type]
    rhs = kern.decode_rhs(np.frombuffer(w.rhs_packed, np.uint8), p.n, p.k)
    out: NDArray[np.float32] = kern.compute(
        Qai8dxpRows(q, rows.neg_zp, rows.dq), rhs, (F32(p.clamp_min), F32(p.clamp_max))
    )
    return out


def _ties_even_codes(x: NDArray[np.float32]) -> NDArray[np.int8]:
    scale0, _, zp = qai8dx_params(x)
    with np.errstate(all="ignore"):
        v = np.multiply(x, scale0[:, None], dtype=F32).astype(F64)
    r = np.rint(np.where(np.isfinite(v), v, 0.0)) + zp[:, None]
    return np.clip(r, -128, 127).astype(np.int8)


def _qp8_candidates(p: Problem) -> list[Candidate]:
    from ..fallbacks.qd8_f32_qc8w import qd8_f32_qc8w_gemm
    from ..quant.qai8dx import quantize_qai8dx

    out: list[Candidate] = []
    tp = p.tiles()
    kbl = tp.kr // tp.sr

    def ties_even() -> NDArray[Any]:
        q = _ties_even_codes(p.lhs)
        if p.variant == "qp8_f32_qc8w_gemm":
            if p.is_gemv() and p.m > 1:
                return np.concatenate(
                    [_qai8dxp_with_codes(p.with_(lhs=p.lhs[i : i + 1]), p.kernel, q[i : i + 1]) for i in range(p.m)]
                )
            return _qai8dxp_with_codes(p, p.kernel, q)
        from ..variants.qp8_f32_qb4w_gemm import Qai8dxpRows, prepare_weights

        prep = prepare_weights(
            p.rhs,
            p.scales_bf16,  # type: ignore[arg-type]
            bl=p.bl,  # type: ignore[arg-type]
            bias=p.bias,
            target=p.target,
            kernel=p.kernel,
        )
        _, dq, zp = quantize_qai8dx(np.ascontiguousarray(p.lhs), k_block_len=kbl)
        kern = p.kernel_obj()
        out: NDArray[Any] = kern.compute(
            Qai8dxpRows(q, (-zp).astype(np.int32), dq), prep.operand, (F32(p.clamp_min), F32(p.clamp_max))
        )
        return out

    out.append(
        Candidate(
            "ties-even rounding in qai8dx (RNE instead of ties-away)",
            "kai_lhs_quant_pack_qai8dxp_f32 rounds x*scale half away from zero (vcvtaq_s32_f32 / roundf); "
            "rounding half to even changes codes where x*scale is exactly n + 0.5",
            ties_even,
        )
    )

    if p.variant == "qp8_f32_qc8w_gemm":

        def qd8() -> NDArray[Any]:
            q, a, zp = quantize_qd8(p.lhs, fz=p.target.flush_to_zero)
            return qd8_f32_qc8w_gemm(
                q,
                a,
                zp,
                p.rhs,
                p.scale,  # type: ignore[arg-type]
                p.bias,
                clamp_min=p.clamp_min,
                clamp_max=p.clamp_max,
                fz=p.target.flush_to_zero,
            )

        out.append(
            Candidate(
                "XNNPACK qd8_f32_qc8w (qd8 quantization + qd8 epilogue) instead of KleidiAI qai8dx",
                "XNNPACK's own qd8 quantizer rounds ties to even and its NEON epilogue is "
                "fma(RN32(acc*a), ws, b); KleidiAI's qp8 path rounds ties away and computes "
                "RN32(RN32(acc*RN32(dq*scale)) + b) (MOPA) or fma(RN32(scale*dq), acc, b) (GEMV)",
                qd8,
            )
        )

    def dequant_float() -> NDArray[Any]:
        q, dq, zp = quantize_qai8dx(np.ascontiguousarray(p.lhs), k_block_len=kbl)
        xd = (q.astype(F64) - zp[:, None]) * dq.astype(F64)[:, None]
        return _clamp_like(p, canonical_nan_f32((xd @ _weights_f64(p).T + _float_bias(p)).astype(F32)))

    def unquant_float() -> NDArray[Any]:
        with np.errstate(all="ignore"):
            y = p.lhs.astype(F64) @ _weights_f64(p).T + _float_bias(p)
        return _clamp_like(p, canonical_nan_f32(y.astype(F32)))

    out.append(
        Candidate(
            "dequantize-then-float matmul (KleidiAI test reference matmul_clamp_nt_t)",
            "the KleidiAI tests compare against a float matmul on dequantized operands within a tolerance; "
            "the kernel's integer accumulation and binary32 epilogue round differently",
            dequant_float,
        )
    )
    out.append(
        Candidate(
            "float64 matmul on the unquantized activations",
            "ignores the dynamic int8 quantization of the activations (error up to dq/2 per element)",
            unquant_float,
        )
    )
    return out


def _weights_f64(p: Problem) -> NDArray[np.float64]:
    if p.variant == "qp8_f32_qc8w_gemm":
        return p.rhs.astype(F64) * p.scale.astype(F64)[:, None]  # type: ignore[union-attr]
    from ..numerics import bf16_to_f32

    d = bf16_to_f32(p.scales_bf16).astype(F64)  # type: ignore[arg-type]
    return p.rhs.astype(F64) * np.repeat(d, p.bl, axis=1)  # type: ignore[arg-type]


def _pqs8_acc(p: Problem) -> NDArray[np.int64]:
    a = p.lhs.astype(F64) - p.input_zero_point
    acc = np.rint(a @ p.rhs.astype(F64).T).astype(np.int64)
    if p.bias is not None:
        acc += p.bias.astype(np.int64)[None, :]
    out: NDArray[np.int64] = (acc + 2**31) % 2**32 - 2**31
    return out


def _pqs8_candidates(p: Problem) -> list[Candidate]:
    from ..numerics import round_half_away

    def finish(r: NDArray[Any]) -> NDArray[np.int8]:
        o: NDArray[np.int8] = np.clip(r + p.output_zero_point, p.output_min, p.output_max).astype(np.int8)
        return o

    def ties_away() -> NDArray[Any]:
        assert p.requant_scale is not None
        y = np.multiply(_pqs8_acc(p).astype(F32), p.requant_scale, dtype=F32)
        return finish(round_half_away(y.astype(F64)))

    def f64_scale() -> NDArray[Any]:
        return finish(np.rint(_pqs8_acc(p).astype(F64) * p.requant_scale.astype(F64)))  # type: ignore[union-attr]

    return [
        Candidate(
            "ties-away requantization (roundf / lroundf instead of FRINTN)",
            "the pqs8 kernels round RN32(RN32(acc)*scale) half to even (FRINTN), as xnn_qs8_requantize_fp32's lrintf",
            ties_away,
        ),
        Candidate(
            "requantization in float64 (no binary32 rounding of acc*scale; KleidiAI test reference)",
            "the kernel converts acc to binary32 (SCVTF) and multiplies in binary32 before rounding; "
            "a float64 product can land on the other side of a .5 tie",
            f64_scale,
        ),
    ]


def _runner(p: Problem, name: str) -> Callable[[], NDArray[Any]]:
    return lambda: p.run(name)


def _clamp_of(k: Any) -> str | None:
    if hasattr(k, "clamp_kind"):
        return str(k.clamp_kind)
    if isinstance(k, BlockwiseKernel):  # qb4w: SME2 FCLAMP, NEON FMAX then FMIN
        return "fclamp" if k.isa == "sme2" else "fmax_fmin"
    return None


def _kernel_differences(p: Problem, me: Any, other: Any) -> list[str]:
    """What differs between two kernels of a variant, arithmetic first."""
    out: list[str] = []
    names = (me.name, other.name)
    gemv_differs = p.is_gemv(me.name) != p.is_gemv(other.name)
    if p.variant == "pf16_gemm" and any(n.endswith("_1x8vl_sme_mla") for n in names):
        out.append(
            "per-k vs per-pair rounding: the pf16 SME1 GEMV rounds once per k (FMLALB/FMLALT); the other "
            "pf16 kernels round each f16 pair sum, then its addition (FDOT / widening FMOPA)"
        )
    elif gemv_differs and p.variant == "pf32_gemm":
        out.append("MOPA vs GEMV: the same FMA chain, but the MOPA's bias injection turns a -0 bias into +0")
    elif gemv_differs and p.variant == "pf16_gemm":
        out.append("MOPA vs GEMV: the same pair arithmetic, but under FZ16 the GEMV keeps a subnormal f16 bias")
    elif p.variant in ("qp8_f32_qc8w_gemm", "qp8_f32_qb4w_gemm"):
        fused = [
            getattr(k, "gemv", False) if p.variant == "qp8_f32_qc8w_gemm" else getattr(k, "kind", "") == "sme2_dot"
            for k in (me, other)
        ]
        if fused[0] != fused[1]:
            out.append(
                "MOPA vs GEMV epilogue: the GEMV fuses its last multiply-add into the bias (one rounding), "
                "the MOPA rounds FMUL then FADD (two)"
            )
        bbl = [getattr(k, "rhs_bbl", None) for k in (me, other)]
        if p.variant == "qp8_f32_qb4w_gemm" and bbl[0] != bbl[1]:
            out.append(
                "the packed row sums are accumulated in another order (i8mm vs dotprod vs SME2 packers), "
                "which can change their last bit"
            )
    kinds = [_clamp_of(k) for k in (me, other)]
    if other.isa != me.isa or kinds[0] != kinds[1]:
        out.append(
            f"{other.isa.upper()} instead of {me.isa.upper()}"
            + (
                ": the clamp differs (SME2 FCLAMP maps a NaN to clamp_min; SME1/SVE/NEON FMIN/FMAX propagate NaN)"
                if p.variant != "pqs8_qc8w_gemm"
                else " (same integer clamp)"
            )
        )
    return out


def _kernel_candidates(p: Problem) -> list[Candidate]:
    """The variant's other kernels: SME1 vs SME2 clamp, MOPA vs GEMV epilogue, NEON branches."""
    out: list[Candidate] = []
    me = p.kernel_obj()
    # Same 1-row-ness first: the smallest change that explains the output is named first.
    for cls in sorted(kernels_of(p.variant), key=lambda c: p.is_gemv(c.name) != p.is_gemv()):
        if cls.name == p.kernel:
            continue
        other = p.kernel_obj(cls.name)
        if p.variant == "qp8_f32_qb4w_gemm" and p.bl is not None:
            if p.k % p.bl or p.bl % other.tile_params().kr:
                continue
        reasons = _kernel_differences(p, me, other)
        why = "; ".join(reasons) or "same tile family, different kernel"
        out.append(Candidate(f"kernel {cls.name}", why, _runner(p, cls.name)))
    return out


def candidates(p: Problem) -> list[Candidate]:
    """Every wrong-but-close reference for ``p``, most specific first."""
    out = _kernel_candidates(p)
    if p.variant in ("pf32_gemm", "pf16_gemm"):
        out += _float_candidates(p)
    elif p.variant == "pqs8_qc8w_gemm":
        out += _pqs8_candidates(p)
    else:
        out += _qp8_candidates(p)
    return out
