"""Mutation test of kleidiref.testing: realistic single-bug kernel ports must be caught and named.

Each mutant is a port of one kernel with one bug that ports of KleidiAI kernels really have. The
default strategies (``gemm_problems(variant)``, 100 examples, derandomized) must find an input
where the port differs, and the report of the shrunk example must name the planted cause.
``python tests/test_mutants.py`` prints the kill table of docs/testing-your-kernel.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import kleidiref._engine as engine
from kleidiref.kai import matmul_clamp_f16_f16_f16p as f16_gemv_mod
from kleidiref.kai import matmul_clamp_f16_f16p_f16p as f16_mopa_mod
from kleidiref.kai import matmul_clamp_qai8_qai8p_qsi8cxp as pqs8_kai_mod
from kleidiref.kai.pack import lhs_quant_pack_qai8dxp_f32 as qai8dxp_mod
from kleidiref.kai.params import kai_matmul_requantize32_params
from kleidiref.kai.registry import UKERNELS, list_ukernels
from kleidiref.numerics import clamp, fadd32, fma32, ftz32
from kleidiref.quant.qai8dx import qai8dx_params, quantize_qai8dx
from kleidiref.testing import assert_matches
from kleidiref.testing import reference as kref
from kleidiref.testing.strategies import GemmProblem, gemm_problems, targets
from kleidiref.variants import pqs8_qc8w_gemm as pqs8_mod
from kleidiref.variants import qp8_f32_qb4w_gemm as qb4w_mod
from kleidiref.variants import qp8_f32_qc8w_gemm as qc8w_mod

F32, F64 = np.float32, np.float64
Port = Callable[[GemmProblem], Any]


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    variant: str
    port: Port
    #: A phrase the report must contain (the planted cause).
    cause: str
    sme2: bool | None = None


# ------------------------------------------------------------------------------------------------
# pf32: a port written from scratch (an FMA chain per output), with one bug each
# ------------------------------------------------------------------------------------------------


def _fma_double_rounding(a: Any, b: Any, c: Any, *, fz: bool) -> Any:
    if fz:
        a, b, c = ftz32(a), ftz32(b), ftz32(c)
    with np.errstate(all="ignore"):
        r = (np.asarray(a, F64) * np.asarray(b, F64) + np.asarray(c, F64)).astype(F32)
    return ftz32(r) if fz else r


def _pf32_port(
    p: GemmProblem,
    *,
    fma: Callable[..., Any] = fma32,
    reverse: bool = False,
    bias_last: bool = False,
    fz: bool | None = None,
    clamp_kind: str | None = None,
) -> Any:
    x = p.inputs
    a, w = x["lhs"], x["rhs"]
    m, k, n = a.shape[0], a.shape[1], w.shape[0]
    fz_ = p.target.flush_to_zero if fz is None else fz
    b = np.zeros(n, F32) if x.get("bias") is None else x["bias"].astype(F32)
    acc = np.array(np.broadcast_to(F32(0) if bias_last else b, (m, n)), F32)
    if m > 1:  # the MOPA kernel (XNNPACK runs the GEMV for M = 1)
        acc = fma32(F32(1), acc, F32(0), fz=fz_)  # the MOPA's bias injection (1.0 * bias + 0)
    for kk in range(k - 1, -1, -1) if reverse else range(k):
        acc = fma(a[:, kk : kk + 1], w[:, kk][None, :], acc, fz=fz_)
    if bias_last:
        acc = fadd32(acc, np.broadcast_to(b, acc.shape), fz=fz_)
    kind = clamp_kind or ("fclamp" if p.target.sme2 else "fmin_fmax")
    return clamp(acc, F32(x.get("clamp_min", -np.inf)), F32(x.get("clamp_max", np.inf)), kind, fz=fz_)


# ------------------------------------------------------------------------------------------------
# Quantizer mutants (patched into kleidiref's qai8dxp packer: the rest of the port is right)
# ------------------------------------------------------------------------------------------------


def _ties_even(x: Any, *, k_block_len: int = 4) -> Any:
    q, dq, zp = quantize_qai8dx(x, k_block_len=k_block_len)
    if not np.isfinite(x).all():
        return q, dq, zp
    v = np.multiply(x, qai8dx_params(x)[0][:, None], dtype=F32).astype(F64)
    return np.clip(np.rint(v) + zp[:, None], -128, 127).astype(np.int8), dq, zp


def _symmetric(x: Any, *, k_block_len: int = 4) -> Any:
    q0, dq0, zp0 = quantize_qai8dx(x, k_block_len=k_block_len)
    if not np.isfinite(x).all():
        return q0, dq0, zp0
    amax = np.abs(x).max(axis=1).astype(F32)
    scale0 = np.where(amax > 0, F32(127) / amax, F32(1)).astype(F32)
    with np.errstate(all="ignore"):
        dq = np.where(scale0 != 0, F32(1) / scale0, F32(0)).astype(F32)
        v = np.multiply(x, scale0[:, None], dtype=F32).astype(F64)
    q = np.clip(np.trunc(v + np.copysign(0.5, v)), -127, 127).astype(np.int8)
    return q, dq, np.zeros_like(zp0)


def _range_dq(x: Any, *, k_block_len: int = 4) -> Any:
    q, dq, zp = quantize_qai8dx(x, k_block_len=k_block_len)
    if not np.isfinite(x).all():
        return q, dq, zp
    rmin = np.fmin(F32(0), x.min(axis=1)).astype(F32)
    rmax = np.fmax(F32(0), x.max(axis=1)).astype(F32)
    return q, np.where(rmax == rmin, F32(1), (rmax - rmin) / F32(255)).astype(F32), zp


def _patched(patches: list[tuple[Any, str, Any]]) -> Port:
    def port(p: GemmProblem) -> Any:
        with contextlib.ExitStack() as stack:
            for obj, attr, val in patches:
                stack.enter_context(mock.patch.object(obj, attr, val))
            return p.reference()

    return port


def _quantizer(fn: Callable[..., Any]) -> list[tuple[Any, str, Any]]:
    """Patch a quantizer into every place kleidiref's qai8dx path calls it (packer and fast paths)."""
    return [(mod, "quantize_qai8dx", fn) for mod in (qai8dxp_mod, qc8w_mod, qb4w_mod)]


def _qp8_classes(**where: Any) -> list[type[Any]]:
    classes = [UKERNELS[n] for n in list_ukernels("qp8_f32_qc8w_gemm")]
    return [c for c in classes if all(getattr(c, k, None) == v for k, v in where.items())]


# ------------------------------------------------------------------------------------------------
# pqs8 mutants
# ------------------------------------------------------------------------------------------------


def _frinta(y: Any) -> Any:
    with np.errstate(all="ignore"):
        r = np.trunc(y.astype(F64) + np.copysign(0.5, y.astype(F64)))
    return np.clip(np.where(np.isnan(r), 0, r), -(2**31), 2**31 - 1).astype(np.int32)


def _pqs8_zp_flipped(p: GemmProblem) -> Any:
    x = p.inputs
    acc = (x["lhs"].astype(np.int64) + x["input_zero_point"]) @ x["rhs"].astype(np.int64).T
    if x.get("bias") is not None:
        acc += x["bias"].astype(np.int64)
    acc32 = ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)
    params = kai_matmul_requantize32_params(x.get("output_min", -128), x.get("output_max", 127), x["output_zero_point"])
    return pqs8_mod.requantize(acc32, x["requant_scale"], params, fz=p.target.flush_to_zero)


def _swap_nibbles(p: GemmProblem) -> Any:
    kw = p.kwargs()
    c = kw["rhs"]
    kw["rhs"] = np.ascontiguousarray(c.reshape(c.shape[0], -1, 2)[:, :, ::-1]).reshape(c.shape)
    return kref(**kw)


def _per_k_f16(acc0: Any, a: Any, w: Any, *, flush_w: bool = False) -> Any:
    return engine.f16_mla_chain(acc0, a, w, flush_w=flush_w)


MUTANTS: list[Mutant] = [
    Mutant("pf32: fma emulated as float32(float64(a*b) + acc)", "pf32_gemm",
           lambda p: _pf32_port(p, fma=_fma_double_rounding), "double rounding"),
    Mutant("pf32: k loop reversed", "pf32_gemm", lambda p: _pf32_port(p, reverse=True), "k order reversed"),
    Mutant("pf32: bias added after the k loop", "pf32_gemm",
           lambda p: _pf32_port(p, bias_last=True), "bias added last"),
    Mutant("pf32: FPCR.FZ ignored", "pf32_gemm", lambda p: _pf32_port(p, fz=False), "FPCR.FZ ignored"),
    Mutant("pf32: FMIN/FMAX clamp on SME2 (not FCLAMP)", "pf32_gemm",
           lambda p: _pf32_port(p, clamp_kind="fmin_fmax"), "FMIN/FMAX", sme2=True),
    Mutant("pf16: per-k rounding (FMLAL) instead of per f16 pair (FDOT)", "pf16_gemm",
           _patched([(f16_mopa_mod, "f16_pair_chain", _per_k_f16), (f16_gemv_mod, "f16_pair_chain", _per_k_f16)]),
           "per-k vs per-pair rounding", sme2=True),
    Mutant("qp8_qc8w: qai8dx rounds ties to even", "qp8_f32_qc8w_gemm",
           _patched(_quantizer(_ties_even)), "ties-even rounding in qai8dx"),
    Mutant("qp8_qc8w: symmetric activation quantizer", "qp8_f32_qc8w_gemm",
           _patched(_quantizer(_symmetric)), "symmetric activation quantizer"),
    Mutant("qp8_qc8w: dq = (rmax - rmin) / 255", "qp8_f32_qc8w_gemm",
           _patched(_quantizer(_range_dq)), "(rmax - rmin) / 255"),
    Mutant("qp8_qc8w: MOPA (unfused) epilogue for M = 1", "qp8_f32_qc8w_gemm",
           _patched([(c, "fused", False) for c in _qp8_classes(gemv=True, isa="sme2")]),
           "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa", sme2=True),
    Mutant("qp8_qc8w: fused (GEMV) epilogue in the MOPA", "qp8_f32_qc8w_gemm",
           _patched([(c, "fused", True) for c in _qp8_classes(gemv=False, isa="sme2")]),
           "kai_matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot", sme2=True),
    Mutant("qp8_qc8w: FMAX/FMIN clamp on SME2 (not FCLAMP)", "qp8_f32_qc8w_gemm",
           _patched([(c, "clamp_kind", "fmax_fmin") for c in _qp8_classes(isa="sme2")]), "FMIN/FMAX", sme2=True),
    Mutant("qp8_qb4w: qai8dx rounds ties to even", "qp8_f32_qb4w_gemm",
           _patched(_quantizer(_ties_even)), "ties-even rounding in qai8dx"),
    Mutant("qp8_qb4w: int4 nibble order swapped", "qp8_f32_qb4w_gemm", _swap_nibbles, "nibble order swapped"),
    Mutant("pqs8: input zero point added, not subtracted", "pqs8_qc8w_gemm", _pqs8_zp_flipped,
           "input zero point added instead of subtracted"),
    Mutant("pqs8: requantization rounds ties away (FRINTA)", "pqs8_qc8w_gemm",
           _patched([(pqs8_kai_mod, "frintn_fcvtzs", _frinta)]), "ties-away requantization"),
]  # fmt: skip

FAST = {
    "pf32: fma emulated as float32(float64(a*b) + acc)",
    "qp8_qc8w: qai8dx rounds ties to even",
    "qp8_qc8w: MOPA (unfused) epilogue for M = 1",
    "pqs8: input zero point added, not subtracted",
}


@dataclasses.dataclass
class Kill:
    killed: bool
    examples: int | None
    report: str
    seconds: float


def hunt(mut: Mutant, *, max_examples: int = 100) -> Kill:
    """Run the default property test against ``mut``; the examples until the first failure and the report."""
    seen = {"n": 0, "first": None}

    tgt = targets(sme2=mut.sme2)

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(gemm_problems(mut.variant, target=tgt))
    def prop(p: GemmProblem) -> None:
        if seen["first"] is None:
            seen["n"] += 1  # type: ignore[operator]
        with np.errstate(all="ignore"):
            out = mut.port(p)
        try:
            assert_matches(out, **p.kwargs())
        except AssertionError:
            if seen["first"] is None:
                seen["first"] = seen["n"]
            raise

    t0 = time.perf_counter()
    try:
        prop()
    except AssertionError as e:
        return Kill(True, seen["first"], str(e), time.perf_counter() - t0)
    return Kill(False, None, "", time.perf_counter() - t0)


def _params() -> list[Any]:
    return [pytest.param(m, id=m.name, marks=() if m.name in FAST else pytest.mark.slow) for m in MUTANTS]


@pytest.mark.parametrize("mut", _params())
def test_mutant_is_killed_and_named(mut: Mutant) -> None:
    k = hunt(mut)
    assert k.killed, f"{mut.name} survived 100 examples"
    assert mut.cause in k.report, k.report


def test_control_port_passes() -> None:
    """The from-scratch pf32 port without a bug matches: the mutants differ only by their bug."""
    k = hunt(Mutant("pf32 control", "pf32_gemm", _pf32_port, ""))
    assert not k.killed, k.report


def main() -> None:
    print("| mutant | variant | killed | examples to kill | cause named | seconds |")
    print("|---|---|---|---|---|---|")
    for m in MUTANTS:
        k = hunt(m)
        named = "yes" if k.killed and m.cause in k.report else "NO"
        print(f"| {m.name} | {m.variant} | {'yes' if k.killed else 'NO'} | {k.examples} | {named} | {k.seconds:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
