"""Compare an output with the kleidiref reference and say which stage diverged, and how."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.layouts import Qai8dxpLayout
from ._candidates import Candidate, candidates
from ._errors import model
from ._packed import compare_packed, describer, packer_decoder
from ._problem import Problem

__all__ = [
    "KLEIDIAI_TOLERANCES",
    "KernelMismatch",
    "diagnose",
    "equal_mask",
    "kleidiai_tolerance_ok",
    "mismatch",
    "packed_messages",
    "ulp_distance",
]

#: KleidiAI's DefaultMismatchHandler(abs_thr, rel_thr, abs_cnt, rel_cnt) per variant, as its matmul tests
#: (test/tests/matmul_clamp_*_test.cpp, test/common/compare.hpp) construct it.
KLEIDIAI_TOLERANCES: dict[str, tuple[float, float, int, float]] = {
    "pf32_gemm": (0.0, 0.1, 0, 0.1),
    "pf16_gemm": (0.0, 0.1, 0, 0.1),
    "qp8_f32_qc8w_gemm": (0.0, 0.02, 0, 0.05),
    "qp8_f32_qb4w_gemm": (0.0, 0.1, 0, 0.05),
    "pqs8_qc8w_gemm": (1.0, 0.0, 0, 0.0),  # every element within +-1 LSB
}


def equal_mask(actual: NDArray[Any], expected: NDArray[Any], *, nan_payloads: bool = False) -> NDArray[np.bool_]:
    """Elementwise bit equality; two NaNs are equal unless ``nan_payloads``."""
    if expected.dtype.kind != "f":
        return np.asarray(actual == expected)
    ui = np.dtype(f"u{expected.dtype.itemsize}")
    eq = actual.view(ui) == expected.view(ui)
    if not nan_payloads:
        eq |= np.isnan(actual) & np.isnan(expected)
    return np.asarray(eq)


def ulp_distance(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.int64]:
    """Number of representable values between ``a`` and ``b`` (same float dtype; +0 and -0 are 0 apart)."""
    bits = 8 * a.dtype.itemsize
    ui = np.dtype(f"u{a.dtype.itemsize}")

    def ordered(x: NDArray[Any]) -> NDArray[np.int64]:
        u = x.view(ui).astype(np.int64)
        sign = u >> (bits - 1)
        mag = u & ((1 << (bits - 1)) - 1)
        o: NDArray[np.int64] = np.where(sign == 1, -mag, mag)
        return o

    d: NDArray[np.int64] = np.abs(ordered(a) - ordered(b))
    return d


def kleidiai_tolerance_ok(variant: str, actual: NDArray[Any], expected: NDArray[Any]) -> bool:
    """Would KleidiAI's own test (DefaultMismatchHandler with the variant's thresholds) pass?"""
    abs_thr, rel_thr, abs_cnt, rel_cnt = KLEIDIAI_TOLERANCES[variant]
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    with np.errstate(all="ignore"):
        d = np.abs(a - e)
        rel = np.where(e != 0, d / np.abs(e), np.where(d != 0, np.inf, 0.0))
        bad = (d > abs_thr) & (rel > rel_thr)
        bad |= np.isnan(a) != np.isnan(e)
    bad &= ~(np.isnan(a) & np.isnan(e))
    count = int(bad.sum())
    return count <= abs_cnt or count <= rel_cnt * bad.size


def _fmt(x: Any) -> str:
    v = np.asarray(x)
    if v.dtype.kind == "f":
        ui = np.dtype(f"u{v.dtype.itemsize}")
        return f"{float(v)!r} (0x{int(v.reshape(1).view(ui)[0]):0{2 * v.dtype.itemsize}x})"
    return str(int(v))


def _lhs_packer(p: Problem) -> tuple[str, dict[str, Any], Any] | None:
    """(packer name, pack kwargs, decoder or None) of the packed LHS the kernel reads."""
    kern = p.kernel_obj()
    if not getattr(kern, "lhs_packed", True):
        return None  # the 1-row GEMV reads the raw row
    tp = kern.tile_params()
    if p.variant == "pf32_gemm":
        return "kai_lhs_pack_f32p2vlx1_f32_sme", {"lhs": p.lhs}, None
    if p.variant == "pf16_gemm":
        return "kai_lhs_pack_x16p2vlx2_x16_sme", {"lhs": p.lhs}, None
    if p.variant == "pqs8_qc8w_gemm":
        return "kai_lhs_pack_x8p2vlx4_x8_sme", {"lhs": p.lhs}, None
    kw = {"lhs": np.ascontiguousarray(p.lhs), "mr": tp.mr, "kr": tp.kr, "sr": tp.sr}
    return "kai_lhs_quant_pack_qai8dxp_f32", kw, describer(Qai8dxpLayout(tp.mr, tp.kr, tp.sr, p.m, p.k))


def _rhs_reference(p: Problem) -> tuple[NDArray[np.uint8], Any]:
    from ._packed import pack_reference

    tp = p.tiles()
    svl = p.target.svl_bits
    kw: dict[str, Any]
    if p.variant == "pf32_gemm":
        name, kw = "kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme", {"rhs": p.rhs, "bias": p.bias}
    elif p.variant == "pf16_gemm":
        name, kw = "kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme", {"rhs": p.rhs, "bias": p.bias}
    elif p.variant == "qp8_f32_qc8w_gemm":
        name = "kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon"
        kw = {"rhs": p.rhs, "scale": p.scale, "bias": p.bias, "nr": tp.nr, "kr": tp.kr}
    elif p.variant == "pqs8_qc8w_gemm":
        from ..kai.params import kai_rhs_pack_qsi8cx_params

        name = "kai_rhs_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme"
        kw = {
            "rhs_kxn": np.ascontiguousarray(p.rhs.T),
            "scale": p.requant_scale,
            "bias": p.bias,
            "params": kai_rhs_pack_qsi8cx_params(lhs_zero_point=p.input_zero_point, scale_multiplier=1.0),
        }
    else:
        from ..variants.qp8_f32_qb4w_gemm import prepare_weights

        prep = prepare_weights(
            p.rhs,
            p.scales_bf16,  # type: ignore[arg-type]
            bl=p.bl,  # type: ignore[arg-type]
            bias=p.bias,
            target=p.target,
            kernel=p.kernel,
        )
        kern: Any = p.kernel_obj()  # a qb4w kernel: its rhs_layout takes bl
        return prep.rhs_packed, describer(kern.rhs_layout(p.n, p.k, int(p.bl)))  # type: ignore[arg-type]
    packer, ref = pack_reference(name, svl, kw)
    return ref, packer_decoder(packer, kw)


def packed_messages(p: Problem, lhs_packed: Any, rhs_packed: Any) -> list[str]:
    """Messages for the packed operands that differ from kleidiref's packers."""
    from ._packed import pack_reference

    out: list[str] = []
    if lhs_packed is not None:
        spec = _lhs_packer(p)
        if spec is None:
            out.append(f"lhs_packed given, but {p.kernel} reads the raw LHS row (no packed LHS to compare)")
        else:
            name, kw, dec = spec
            packer, ref = pack_reference(name, p.target.svl_bits, kw)
            written = None
            if name == "kai_lhs_quant_pack_qai8dxp_f32":  # rows past M are never written: probe them
                probe = np.full(ref.size, 0xFF, np.uint8)
                lhs = kw["lhs"]
                packer.run_lhs_pack(p.m, p.k, kw["mr"], kw["kr"], kw["sr"], 0, lhs, p.k * 4, probe)  # type: ignore[attr-defined]
                written = ~((probe == 0xFF) & (ref == 0))
            msg = compare_packed(lhs_packed, ref, dec or packer_decoder(packer, kw), f"LHS ({name})", written)
            if msg:
                out.append(msg)
    if rhs_packed is not None:
        ref, dec = _rhs_reference(p)
        msg = compare_packed(rhs_packed, ref, dec, "RHS")
        if msg:
            out.append(msg)
    return out


def _tiling(p: Problem, actual: NDArray[Any], ref: NDArray[Any], eq: NDArray[np.bool_]) -> str | None:
    tp = p.tiles()
    ms, ns = tp.m_step, tp.n_step
    m, n = ref.shape
    nbm, nbn = -(-m // ms), -(-n // ns)
    bad = [(i, j) for i in range(nbm) for j in range(nbn) if not eq[i * ms : (i + 1) * ms, j * ns : (j + 1) * ns].all()]
    shifts = [(0, -ns), (0, ns), (-ms, 0), (ms, 0), (0, -1), (0, 1), (-1, 0), (1, 0)]
    for i, j in bad[:8]:
        r0, r1, c0, c1 = i * ms, min((i + 1) * ms, m), j * ns, min((j + 1) * ns, n)
        blk = actual[r0:r1, c0:c1]
        for dr, dc in shifts:
            if 0 <= r0 + dr and r1 + dr <= m and 0 <= c0 + dc and c1 + dc <= n:
                other = ref[r0 + dr : r1 + dr, c0 + dc : c1 + dc]
                if equal_mask(blk, other).all():
                    step, unit = (ms, "rows") if dr else (ns, "columns")
                    size = abs(dr or dc)
                    how = (
                        f"off by one tile ({size} {unit})"
                        if size == step and step > 1
                        else f"off by {size} {unit[:-1] if size == 1 else unit}"
                    )
                    return (
                        f"tiling: the {ms} x {ns} (m_step x n_step) block ({i}, {j}) = rows [{r0}, {r1}), "
                        f"cols [{c0}, {c1}) holds the reference values of rows [{r0 + dr}, {r1 + dr}), cols "
                        f"[{c0 + dc}, {c1 + dc}): {how} (check get_{'lhs' if dr else 'rhs'}_packed_offset / "
                        "get_dst_offset and the m_idx/n_idx of that tile)"
                    )
    if 1 <= len(bad) < nbm * nbn:
        dens = [1 - eq[i * ms : (i + 1) * ms, j * ns : (j + 1) * ns].mean() for i, j in bad]
        if min(dens) >= 0.5:
            blocks = ", ".join(f"({i}, {j})" for i, j in bad[:6]) + (" ..." if len(bad) > 6 else "")
            return (
                f"tiling: mismatches are confined to {len(bad)} of {nbm * nbn} m_step x n_step = {ms} x {ns} "
                f"blocks [{blocks}] and fill them; the other blocks are exact (a tile computed with wrong "
                "offsets, strides, or edge predicates)"
            )
    return None


def _clamp_stage(p: Problem, actual: NDArray[Any], ref: NDArray[Any], bad: NDArray[np.bool_]) -> str | None:
    if ref.dtype.kind != "f":
        return None
    lo, hi = (np.asarray(p.clamp_min, ref.dtype), np.asarray(p.clamp_max, ref.dtype))
    a, r = actual[bad], ref[bad]
    nan_involved = np.isnan(a) | np.isnan(r)
    with np.errstate(invalid="ignore"):
        at_bound = (r == lo) | (r == hi) | (a == lo) | (a == hi)
        outside = (a < lo) | (a > hi)
    if not (nan_involved | at_bound | outside).all():
        return None
    parts = []
    if nan_involved.any():
        parts.append(
            f"{int(nan_involved.sum())} element(s) involve a NaN: SME2 FCLAMP maps a NaN to clamp_min "
            "(FPMaxNum/FPMinNum), SME1/SVE FMIN/FMAX propagate it as the default NaN"
        )
    if outside.any():
        parts.append(
            f"{int(outside.sum())} actual value(s) lie outside [clamp_min, clamp_max]: the clamp was "
            "skipped or used other bounds"
        )
    if (at_bound & ~nan_involved & ~outside).any():
        parts.append(
            "values at a clamp bound differ: bound precision (f16 bounds are RN16(min)/RN16(max)) or "
            "-0/+0 ordering (FCLAMP orders -0 below +0)"
        )
    return "clamp: " + "; ".join(parts)


def _value_stage(p: Problem, actual: NDArray[Any], ref: NDArray[Any], bad: NDArray[np.bool_]) -> str:
    a64, r64 = actual.astype(np.float64), ref.astype(np.float64)
    with np.errstate(all="ignore"):
        d = np.abs(a64 - r64)
    if ref.dtype.kind != "f":
        if d[bad].max() <= 1:
            return (
                "float epilogue (requantization): outputs differ by 1 code at most; the kernel rounds "
                "RN32(RN32(acc) * scale) half to even (FRINTN) with binary32 arithmetic"
            )
        return (
            f"integer accumulator: outputs differ by up to {int(d[bad].max())} codes, more than the "
            "requantization rounding can explain (check the input zero point, the int32 bias, wraparound, "
            "and the K range)"
        )
    zero_sign = (a64[bad] == 0) & (r64[bad] == 0)
    if zero_sign.all():
        return (
            "float epilogue: only the sign of zero differs (the MOPA bias injection turns a -0 bias into +0; "
            "the GEMV keeps it; FZ flushes keep the sign)"
        )
    _, bound = model(p)
    ulps = ulp_distance(actual[bad], ref[bad])
    ratio = d[bad] / (2 * bound[bad])
    worst = float(np.nanmax(np.where(np.isfinite(ratio), ratio, np.inf)))
    if worst <= 1:
        kinds = (
            "fused vs unfused multiply-add, double rounding, or another accumulation order"
            if p.variant != "pqs8_qc8w_gemm"
            else "rounding"
        )
        return (
            f"float epilogue/accumulation rounding: max {int(ulps.max())} ULP, median {int(np.median(ulps))} "
            f"ULP; within twice the error model's bound (worst |diff| / (2 bound) = {worst:.3g}): {kinds}"
        )
    where = "integer accumulator or quantized operands" if p.variant.startswith("qp8") else "accumulation"
    msg = (
        f"{where}: |diff| exceeds what float rounding can explain (worst |diff| / (2 bound) = {worst:.3g}, "
        f"max {int(ulps.max())} ULP)"
    )
    if p.variant == "qp8_f32_qc8w_gemm":
        from ..quant.qai8dx import quantize_qai8dx

        _, dq, _ = quantize_qai8dx(np.ascontiguousarray(p.lhs), k_block_len=4)
        step = dq.astype(np.float64)[:, None] * p.scale.astype(np.float64)[None, :]  # type: ignore[union-attr]
        with np.errstate(all="ignore"):
            implied = np.rint((a64 - r64) / step)
        i, j = np.argwhere(bad)[0]
        msg += f"; at ({i}, {j}) the actual value implies an int32 accumulator off by {implied[i, j]:+.0f}"
    return msg


def _named_causes(p: Problem, act: NDArray[Any], dtype: Any, nan_payloads: bool) -> list[str]:
    """Every known wrong-but-close reference ``act`` equals: specific ones; generic ones only if none is."""
    specific: list[Candidate] = []
    generic: list[Candidate] = []
    for c in candidates(p):
        try:
            with np.errstate(all="ignore"):
                alt = np.asarray(c.compute()).astype(dtype)
        except Exception:
            # Note: a candidate that cannot run on these inputs (e.g. a kernel's asserts) is
            # skipped; the report about the actual mismatch must never be lost to it.
            continue
        if alt.shape == act.shape and equal_mask(act, alt, nan_payloads=nan_payloads).all():
            (generic if c.generic else specific).append(c)
    named = specific or generic
    out = []
    for n, c in enumerate(named[:3]):  # nearest first (see candidates()); the rest by name only
        head = "actual matches a known wrong-but-close reference" if n == 0 else "it also matches"
        out.append(f"  {head}: {c.name}\n    why it differs: {c.why}")
    if len(named) > 3:
        out.append(f"  {len(named) - 3} more also match: " + "; ".join(c.name for c in named[3:]))
    if not named:
        out.append("  no known wrong-but-close reference matches every element")
    return out


class KernelMismatch(AssertionError):
    """The output differs from kleidiref's; the full report is computed once, when first shown.

    A property-based test framework catches and replays many failing examples while it shrinks;
    only the final one is printed, so the (costly) explanation waits until then.
    """

    def __init__(self, explain: Callable[[], str]) -> None:
        super().__init__()
        self._explain: Callable[[], str] | None = explain
        self._text = ""

    def __str__(self) -> str:
        if self._explain is not None:
            self._text, self._explain = self._explain(), None
        return self._text


def mismatch(
    actual: Any,
    p: Problem,
    *,
    lhs_packed: Any = None,
    rhs_packed: Any = None,
    exact: bool = True,
    nan_payloads: bool = False,
) -> KernelMismatch | None:
    """The cheap verdict: None when ``actual`` matches, else an error that explains itself lazily."""
    if lhs_packed is None and rhs_packed is None:
        ref = p.run()
        act = np.array(actual, copy=True)  # a snapshot: the report may be shown later
        if act.shape == ref.shape and act.dtype == ref.dtype and equal_mask(act, ref, nan_payloads=nan_payloads).all():
            return None
        if exact and act.shape == ref.shape and act.dtype == ref.dtype:
            return KernelMismatch(
                lambda: diagnose(act, p, exact=exact, nan_payloads=nan_payloads, _ref=ref) or "kleidiref: match"
            )
    msg = diagnose(actual, p, lhs_packed=lhs_packed, rhs_packed=rhs_packed, exact=exact, nan_payloads=nan_payloads)
    return None if msg is None else KernelMismatch(lambda: msg)


def diagnose(
    actual: Any,
    p: Problem,
    *,
    lhs_packed: Any = None,
    rhs_packed: Any = None,
    exact: bool = True,
    nan_payloads: bool = False,
    _ref: NDArray[Any] | None = None,
) -> str | None:
    """None when ``actual`` matches (bit-exact, or within ``2*error_bound`` if not ``exact``), else a report."""
    ref = p.run() if _ref is None else _ref
    lines = [f"kleidiref: actual output differs from the reference for {p.describe()}"]
    packed = packed_messages(p, lhs_packed, rhs_packed)
    act = np.asarray(actual)
    if act.shape != ref.shape:
        return "\n".join([*lines, *packed, f"  shape: actual {act.shape}, expected {ref.shape}"])
    if act.dtype != ref.dtype:
        lines.append(f"  dtype: actual {act.dtype}, the kernel writes {ref.dtype} (compared after conversion)")
        with np.errstate(all="ignore"):
            act = act.astype(ref.dtype)
    eq = equal_mask(act, ref, nan_payloads=nan_payloads)
    if not exact and not eq.all():
        _, bound = model(p)
        with np.errstate(all="ignore"):
            within = np.abs(act.astype(np.float64) - ref.astype(np.float64)) <= 2 * bound
        eq = eq | within
    if eq.all() and not packed:
        return None
    for m in packed:
        lines.append(f"  stage: packing: {m}")
    given = [w for w, b in (("LHS", lhs_packed), ("RHS", rhs_packed)) if b is not None]
    if given and not packed:
        lines.append(
            f"  packed {' and '.join(given)} match kleidiref's packers byte for byte: the divergence is "
            "in the kernel arithmetic"
        )
    if not eq.all():
        bad = ~eq
        idx = np.argwhere(bad)
        i, j = (int(v) for v in idx[0])
        lines.append(
            f"  {int(bad.sum())} of {bad.size} elements differ; first at (row {i}, col {j}): "
            f"actual {_fmt(act[i, j])}, expected {_fmt(ref[i, j])}"
        )
        stage = _tiling(p, act, ref, eq) or _clamp_stage(p, act, ref, bad) or _value_stage(p, act, ref, bad)
        lines.append(f"  stage: {stage}")
        lines += _named_causes(p, act, ref.dtype, nan_payloads)
        ok = kleidiai_tolerance_ok(p.variant, act, ref)
        thr = KLEIDIAI_TOLERANCES[p.variant]
        lines.append(
            f"  KleidiAI's own test tolerance for {p.variant} (DefaultMismatchHandler{thr}) would "
            f"{'PASS' if ok else 'FAIL'}; kleidiref expects bit-exact output (use exact=False for "
            "the derived error bound)"
        )
    return "\n".join(lines)
