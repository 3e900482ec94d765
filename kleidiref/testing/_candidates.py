"""Wrong-but-close references that users write, each computed exactly so a match can be named."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.interface import BlockwiseKernel
from ..numerics import canonical_nan_f32, fadd32, fclamp, fma32, fmin_fmax, rn16
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
    #: A whole family of references (a float64 matmul, ...): named only when nothing specific matches.
    generic: bool = False


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


def _f32_chain(p: Problem, *, reverse: bool, bias_first: bool) -> NDArray[np.float32]:
    """The binary32 FMA chain with the k order or the bias position changed (FZ as the target)."""
    fz = p.target.flush_to_zero
    a, w = p.lhs.astype(F32), p.rhs.astype(F32)
    b = _float_bias(p).astype(F32)
    acc = np.array(np.broadcast_to(b if bias_first else F32(0), (p.m, p.n)), dtype=F32)
    ks = range(p.k - 1, -1, -1) if reverse else range(p.k)
    for kk in ks:
        acc = fma32(a[:, kk : kk + 1], w[:, kk][None, :], acc, fz=fz)
    if not bias_first:
        acc = fadd32(acc, np.broadcast_to(b[None, :], acc.shape), fz=fz)
    return acc


def _order_candidates(p: Problem, fin: Callable[[NDArray[Any]], NDArray[Any]]) -> list[Candidate]:
    return [
        Candidate(
            "k order reversed (the FMA chain runs from k = K-1 down to 0)",
            "the kernels accumulate k in ascending order, one rounding per FMOPA/FMLA step; binary32 "
            "addition is not associative, so another order rounds differently",
            lambda: fin(_f32_chain(p, reverse=True, bias_first=True)),
        ),
        Candidate(
            "bias added last (RN32(chain from 0) + bias) instead of first",
            "the kernels start the accumulator from the bias (the RHS packer's bias row, injected into ZA "
            "or read as the first FMLA addend), so every k step rounds with the bias in the sum",
            lambda: fin(_f32_chain(p, reverse=False, bias_first=False)),
        ),
    ]


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
            generic=True,
        ),
        Candidate(
            "float32 BLAS matmul",
            "BLAS sums in its own (blocked) order; the kernel sums k in order with one rounding per step",
            blas32,
            generic=True,
        ),
        Candidate(
            "per-element float32 accumulation, unfused (KleidiAI test reference matmul_any_type)",
            "RN32(acc + RN32(a*w)) rounds the product separately; FMOPA is fused (one rounding per k)",
            lambda: fin(_f32_per_element(p, fused=False)),
        ),
    ]
    if not f16:
        out += _order_candidates(p, fin)
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
                generic=True,
            )
        )
    return out


Quantizer = Callable[[NDArray[np.float32], int], tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]]


def _with_quantizer(p: Problem, quant: Quantizer) -> NDArray[np.float32]:
    """The problem's kernel run on LHS rows quantized by ``quant`` (codes, dq, zp per row)."""
    from ..kai.pack import Qai8dxpRows

    if p.is_gemv() and p.m > 1:  # the 1-row kernel quantizes and runs each row on its own
        return np.concatenate([_with_quantizer(p.with_(lhs=p.lhs[i : i + 1]), quant) for i in range(p.m)])
    tp = p.tiles()
    q, dq, zp = quant(np.ascontiguousarray(p.lhs), tp.kr // tp.sr)
    rows = Qai8dxpRows(q, (-zp.astype(np.int64)).astype(np.int32), dq.astype(F32))
    kern: Any = p.kernel_obj()
    clamp = (F32(p.clamp_min), F32(p.clamp_max))
    if p.variant == "qp8_f32_qc8w_gemm":
        from ..variants.qp8_f32_qc8w_gemm import pack_weights

        w = pack_weights(p.rhs, p.scale, bias=p.bias, target=p.target)  # type: ignore[arg-type]
        rhs = kern.decode_rhs(np.frombuffer(w.rhs_packed, np.uint8), p.n, p.k)
        out: NDArray[np.float32] = kern.compute(rows, rhs, clamp)
        return out
    from ..variants.qp8_f32_qb4w_gemm import prepare_weights

    prep = prepare_weights(
        p.rhs,
        p.scales_bf16,  # type: ignore[arg-type]
        bl=p.bl,  # type: ignore[arg-type]
        bias=p.bias,
        target=p.target,
        kernel=p.kernel,
    )
    res: NDArray[np.float32] = kern.compute(rows, prep.operand, clamp)
    return res


def _ties_even_quant(
    x: NDArray[np.float32], kbl: int
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """qai8dx with x * scale0 rounded half to even (``vcvtnq_s32_f32`` / ``rintf``) instead of away."""
    from ..quant.qai8dx import quantize_qai8dx

    q, dq, zp = quantize_qai8dx(x, k_block_len=kbl)
    scale0, _, _ = qai8dx_params(x)
    with np.errstate(all="ignore"):
        v = np.multiply(x, scale0[:, None], dtype=F32).astype(F64)
    fin = np.isfinite(v)
    tie = fin & (np.abs(v - np.trunc(v)) == 0.5)
    away = np.trunc(v + np.copysign(0.5, v))
    even = np.rint(np.where(fin, v, 0.0))
    delta = np.where(tie, even - np.where(fin, away, 0.0), 0.0)
    return np.clip(q + delta, -128, 127).astype(np.int8), dq, zp


def _row_range(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    with np.errstate(all="ignore"):
        return np.fmin(F32(0), x.min(axis=1)).astype(F32), np.fmax(F32(0), x.max(axis=1)).astype(F32)


def _symmetric_quant(
    x: NDArray[np.float32], kbl: int
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """A symmetric per-row quantizer: scale 127 / max|x|, zero point 0 (qai8dx is asymmetric)."""
    from ..quant.qai8dx import quantize_qai8dx

    q0, dq0, zp0 = quantize_qai8dx(x, k_block_len=kbl)
    with np.errstate(all="ignore"):
        amax = np.abs(x).max(axis=1).astype(F32)
        scale0 = np.where(amax > 0, F32(127) / amax, F32(1)).astype(F32)
        dq = np.where(scale0 != 0, F32(1) / scale0, F32(0)).astype(F32)
        v = np.multiply(x, scale0[:, None], dtype=F32).astype(F64)
        q = np.clip(np.trunc(v + np.copysign(0.5, v)), -127, 127)
    fin = np.isfinite(x).all(axis=1) & np.isfinite(scale0)  # non-finite rows: as qai8dx
    q = np.where(fin[:, None], np.where(np.isfinite(q), q, 0), q0).astype(np.int8)
    return q, np.where(fin, dq, dq0).astype(F32), np.where(fin, 0, zp0).astype(np.int32)


def _range_dq_quant(
    x: NDArray[np.float32], kbl: int
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """qai8dx codes with the stored dequant scale computed as (rmax - rmin) / 255, not 1 / scale0."""
    from ..quant.qai8dx import quantize_qai8dx

    q, dq0, zp = quantize_qai8dx(x, k_block_len=kbl)
    rmin, rmax = _row_range(x)
    with np.errstate(all="ignore"):
        dq = np.where(rmax == rmin, F32(1), (rmax - rmin) / F32(255)).astype(F32)
    return q, np.where(np.isfinite(x).all(axis=1), dq, dq0).astype(F32), zp


def _qp8_candidates(p: Problem) -> list[Candidate]:
    from ..fallbacks.qd8_f32_qc8w import qd8_f32_qc8w_gemm
    from ..quant.qai8dx import quantize_qai8dx

    out: list[Candidate] = []
    tp = p.tiles()
    kbl = tp.kr // tp.sr
    if p.variant == "qp8_f32_qb4w_gemm":
        out.append(
            Candidate(
                "int4 nibble order swapped (k even in the high nibble)",
                "XNNPACK's qb4w weights hold k = 2i in the low nibble and k = 2i + 1 in the high nibble of "
                "each byte (kai_rhs_pack_nxk_qsi4c32p_qsu4c32s1s0 reads them so)",
                lambda: p.with_(
                    rhs=np.ascontiguousarray(p.rhs.reshape(p.n, -1, 2)[:, :, ::-1]).reshape(p.n, p.k)
                ).run(),
            )
        )

    out.append(
        Candidate(
            "ties-even rounding in qai8dx (RNE instead of ties-away)",
            "kai_lhs_quant_pack_qai8dxp_f32 rounds x*scale half away from zero (vcvtaq_s32_f32 / roundf); "
            "rounding half to even changes codes where x*scale is exactly n + 0.5",
            lambda: _with_quantizer(p, _ties_even_quant),
        )
    )
    out.append(
        Candidate(
            "symmetric activation quantizer (scale 127 / max|x|, zero point 0) instead of qai8dx",
            "kai_lhs_quant_pack_qai8dxp_f32 is asymmetric: scale0 = 255 / (rmax - rmin) over [min(x, 0), max(x, 0)] "
            "with a zero point, and stores dq = 1 / scale0",
            lambda: _with_quantizer(p, _symmetric_quant),
        )
    )
    out.append(
        Candidate(
            "qai8dx dequantization scale computed as (rmax - rmin) / 255 instead of 1 / scale0",
            "kai_lhs_quant_pack_qai8dxp_f32 stores dq = RN32(1 / RN32(255 / (rmax - rmin))), which can differ "
            "from RN32((rmax - rmin) / 255) in the last bit",
            lambda: _with_quantizer(p, _range_dq_quant),
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
            generic=True,
        )
    )
    out.append(
        Candidate(
            "float64 matmul on the unquantized activations",
            "ignores the dynamic int8 quantization of the activations (error up to dq/2 per element)",
            unquant_float,
            generic=True,
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

    def zp_flipped() -> NDArray[Any]:
        from ..kai.params import kai_matmul_requantize32_params
        from ..variants.pqs8_qc8w_gemm import requantize

        a = p.lhs.astype(np.int64) + p.input_zero_point
        acc = a @ p.rhs.astype(np.int64).T + (0 if p.bias is None else p.bias.astype(np.int64))
        acc32 = ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)
        params = kai_matmul_requantize32_params(p.output_min, p.output_max, p.output_zero_point)
        return requantize(acc32, p.requant_scale, params, fz=p.target.flush_to_zero)  # type: ignore[arg-type]

    return [
        Candidate(
            "input zero point added instead of subtracted (sum (a + zp) * w)",
            "the pqs8 accumulator is sum (a - input_zero_point) * w + bias: KleidiAI's kxn RHS packer folds "
            "-lhs_zero_point * sum(w) into the bias (kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme)",
            zp_flipped,
        ),
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
        # Note: only the SME 1x4vl GEMVs fuse (FMLA); the NEON one-row kernels share the MOPA's
        # unfused FMUL + FADD, so "one row" and "fused" are different properties.
        fused = [
            bool(getattr(k, "fused", False))
            if p.variant == "qp8_f32_qc8w_gemm"
            else getattr(k, "kind", "") == "sme2_dot"
            for k in (me, other)
        ]
        if fused[0] != fused[1]:
            how = "fused FMLA (one rounding)" if fused[1] else "unfused FMUL then FADD (two roundings)"
            mine = "unfused FMUL then FADD" if fused[1] else "fused FMLA"
            out.append(
                f"MOPA vs GEMV epilogue (fused or not): {other.name} computes the scale/bias step as {how}; "
                f"{me.name} uses {mine}"
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
    found: list[tuple[int, bool, Candidate]] = []
    me = p.kernel_obj()
    for cls in kernels_of(p.variant):
        if cls.name == p.kernel:
            continue
        other = p.kernel_obj(cls.name)
        if p.variant == "qp8_f32_qb4w_gemm" and p.bl is not None:
            if p.k % p.bl or p.bl % other.tile_params().kr:
                continue
        reasons = _kernel_differences(p, me, other)
        why = "; ".join(reasons) or "same tile family, different kernel"
        same_rows = p.is_gemv(cls.name) == p.is_gemv()
        found.append((len(reasons), not same_rows, Candidate(f"kernel {cls.name}", why, _runner(p, cls.name))))
    # The smallest change that explains the output is named first: fewest differences, then the
    # same 1-row-ness (a one-difference kernel of the other shape before a NEON kernel of two).
    return [c for _, _, c in sorted(found, key=lambda t: (t[0], t[1]))]


def _fz_candidate(p: Problem) -> Candidate:
    t = dataclasses.replace(p.target, flush_to_zero=not p.target.flush_to_zero)
    if p.target.flush_to_zero:
        name = "FPCR.FZ ignored: subnormal inputs, products and sums kept (the target flushes them)"
    else:
        name = "flush-to-zero applied, but FPCR.FZ is off on this target"
    why = (
        "with FPCR.FZ (and FZ16 for f16) the kernels' float instructions read subnormal operands as zero "
        "and flush subnormal results; the target's flush_to_zero says which mode XNNPACK runs them in"
    )
    return Candidate(name, why, lambda: p.with_(target=t).run())


def candidates(p: Problem) -> list[Candidate]:
    """Every wrong-but-close reference for ``p``: the kernels nearest to ``p``'s first, then the
    specific bugs, then the generic references (flagged ``generic``)."""
    out = _kernel_candidates(p)
    out.append(_fz_candidate(p))
    if p.variant in ("pf32_gemm", "pf16_gemm"):
        out += _float_candidates(p)
    elif p.variant == "pqs8_qc8w_gemm":
        out += _pqs8_candidates(p)
    else:
        out += _qp8_candidates(p)
    return out
