"""Text forms of a trace (the loop nest with ZA contents per k step) and of one output's provenance.

Everything printed is read off a :class:`~kleidiref.teach.trace.Trace` (the kernel's own stages)
and the kernel's layout objects; values are shown in decimal and as their bits in hex.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.interface import RequantizingKernel
from ..numerics import frintn_fcvtzs, ftz32
from .layout_map import Run, runs, token
from .trace import Trace, instruction, za_position

__all__ = ["Event", "format_trace", "operand_values", "provenance", "value_text"]


def value_text(v: Any) -> str:
    """``v`` in decimal and hex bits (``1.5 (0x3fc00000)``, ``-3 (0xfffffffd)``)."""
    a = np.asarray(v)
    if a.dtype.kind == "f":
        bits = a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize])
        return f"{float(a):.9g} (0x{int(bits):0{2 * a.itemsize}x})"
    return f"{int(a)} (0x{int(a) & ((1 << (8 * a.itemsize)) - 1):0{2 * a.itemsize}x})"


def _init_text(t: Trace) -> str:
    if t.blockwise:
        where = " (the MOPA kernel keeps it in the destination rows between blocks)" if "mopa" in t.kernel.name else ""
        return (
            "each block starts from zeroed ZA / accumulators; the float accumulator facc is written by "
            f"the first block's scale step{where}"
        )
    if isinstance(t.kernel, RequantizingKernel):
        if t.kernel.tile_params().m_step == 1:
            return "accumulators start from each column's int32 bias' (the input zero point folded in)"
        return "ZA zeroed, then ADDHA adds each column's int32 bias' (the input zero point folded in)"
    if "qai8dxp" in t.kernel.name:
        where = "accumulators" if t.kernel.isa == "neon" or t.kernel.tile_params().m_step == 1 else "ZA"
        return f"{where} zeroed (the zero point and scales come after the k loop)"
    if t.kernel.tile_params().m_step == 1:
        return "accumulators = the bias row"
    return "ZA zeroed, then the bias injected by one FMOPA of an all-1.0 column with the bias row"


def _block_lines(t: Trace, state: NDArray[Any], rows: int, cols: int, hexa: bool) -> list[str]:
    out = []
    for i in range(min(rows, t.m)):
        vals = [
            value_text(state[i, j]) if hexa else value_text(state[i, j]).split(" ")[0] for j in range(min(cols, t.n))
        ]
        more = " ..." if t.n > cols else ""
        out.append(f"    row {i:>3}: " + "  ".join(vals) + more)
    if t.m > rows:
        out.append("    ...")
    return out


def _per_step(t: Trace) -> str:
    """How many multiply instructions one step is, when more than one (kr > the instruction's depth)."""
    if t.blockwise:
        return ""
    name = t.kernel.name
    int8 = "qai8" in name
    depth = (8 if "i8mm" in name else 4) if int8 else 2 if name.startswith("kai_matmul_clamp_f16") else 1
    count = t.kstep // depth
    return f" ({count} instructions of {depth} k each)" if count > 1 else ""


def format_trace(t: Trace, *, rows: int = 4, cols: int = 6, hexa: bool = False) -> str:
    """The loop nest, the accumulator after every recorded k step (first rows x cols), the epilogue."""
    p = t.kernel.tile_params()
    mb, nb = math.ceil(t.m / p.m_step), math.ceil(t.n / p.n_step)
    last = za_position(t.kernel, min(t.m, p.m_step) - 1, min(t.n, p.n_step) - 1)
    lines = [
        f"{t.kernel.name} at SVL {t.kernel.svl}: m {t.m}, n {t.n}, k {t.k}",
        f"loop nest: {mb} x {nb} blocks of m_step {p.m_step} x n_step {p.n_step} "
        f"(block (0, 0) uses accumulators 0..{last.tile}); in each block:",
        f"  init: {_init_text(t)}",
        f"  {t.steps} {'quant blocks of bl' if t.blockwise else 'k steps of kr'} = {t.kstep}{_per_step(t)}: "
        f"{instruction(t.kernel)}",
        "  epilogue: " + "; ".join(t.epilogue),
        "",
    ]
    for idx, s in enumerate(t.recorded):
        if t.block_sums is not None:
            if s == 0:
                lines.append("  before the first block: facc not yet written (shown as 0)")
                continue
            lines.append(f"  block {s - 1} (k {(s - 1) * t.kstep}..{s * t.kstep - 1}): int32 sums in ZA at its end:")
            lines += _block_lines(t, t.block_sums[idx], rows, cols, hexa)
            lines.append(f"  facc after block {s - 1} (SCVTF, x the block's bf16 scale, +):")
            lines += _block_lines(t, t.states[idx], rows, cols, hexa)
            continue
        head = "after init" if s == 0 else f"after step {s} (k {(s - 1) * t.kstep}..{min(s * t.kstep, t.k) - 1})"
        lines.append(f"  {head}:")
        lines += _block_lines(t, t.states[idx], rows, cols, hexa)
    lines.append("  accumulator the epilogue reads:")
    lines += _block_lines(t, t.acc, rows, cols, hexa)
    lines.append("  output (= run_matmul):")
    lines += _block_lines(t, t.out, rows, cols, hexa)
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Event:
    """One step on the way to an output: what happened and the value after it."""

    step: str
    value: str
    note: str = ""


def _step_event(t: Trace, ops: tuple[NDArray[np.float64], NDArray[np.float64]], i: int, j: int, idx: int) -> Event:
    s = t.recorded[idx]
    prev, cur = t.states[idx - 1][i, j], t.states[idx][i, j]
    k0, k1 = (s - 1) * t.kstep, min(s * t.kstep, t.k)
    note = ""
    if cur.dtype.kind == "f":
        exact = float(prev) + _dot(ops, i, j, k0, s * t.kstep)
        if math.isfinite(exact) and float(cur) != exact:
            note = "rounded" if cur != 0 or exact == 0 else "flushed to zero"
    else:
        exact_i = int(prev) + round(_dot(ops, i, j, k0, s * t.kstep))
        if exact_i != int(cur):
            note = "wrapped (int32)"
    return Event(f"step {s} (k {k0}..{k1 - 1})", value_text(cur), note)


def operand_values(t: Trace) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The decoded operands as the kernel multiplies them: ``(A [M, K'], W [K', N])`` (int8
    codes, int4 weights as widened, floats), from the trace's ``decode_lhs`` / ``decode_rhs``."""
    lhs = t.lhs.q if hasattr(t.lhs, "q") else t.lhs
    a = np.asarray(lhs, np.float64)
    kk: Any = t.kernel
    if t.blockwise:  # PreparedRhs: int4 weights [N, K]
        return a, np.asarray(t.rhs.w, np.float64).T
    w = np.asarray(t.rhs.w, np.float64)
    if w.ndim == 4:  # a block view [Kp/kr, kr, nb, nr]: decode through the kernel's layout
        w = np.asarray(kk.rhs_layout(t.n, t.k).decode(t.rhs_bytes)[1], np.float64)
    return a, w


def _dot(ops: tuple[NDArray[np.float64], NDArray[np.float64]], i: int, j: int, k0: int, k1: int) -> float:
    a, w = ops
    k1 = min(k1, a.shape[1], w.shape[0])
    return float(np.dot(a[i, k0:k1], w[k0:k1, j])) if k1 > k0 else 0.0


def _bytes_of(layout: Any, index: int, is_lhs: bool) -> list[Run]:
    if layout is None:
        return []
    key = "row" if is_lhs else "col"
    return [r for r in runs(layout) if getattr(r.info, key) == index and not r.info.padding]


def provenance(t: Trace, i: int, j: int, *, lhs_layout: Any = None, rhs_layout: Any = None) -> list[str]:
    """Where C[i, j] came from: its packed bytes, its ZA place, the k order and each step's value."""
    if not (0 <= i < t.m and 0 <= j < t.n):
        raise ValueError(f"element ({i}, {j}) is outside the {t.m} x {t.n} output")
    lines = [f"C[{i}, {j}] of {t.kernel.name} at SVL {t.kernel.svl}", f"  {za_position(t.kernel, i, j).text}"]
    for role, lay, idx, is_lhs in (("LHS row", lhs_layout, i, True), ("RHS column", rhs_layout, j, False)):
        rs = _bytes_of(lay, idx, is_lhs)
        if rs:
            shown = ", ".join(f"{token(r.info)}@{r.offset}" for r in rs[:24])
            lines.append(f"  {role} {idx}: {len(rs)} packed runs: {shown}{' ...' if len(rs) > 24 else ''}")
    lines.append(f"  k order: increasing, {t.kstep} k per step ({instruction(t.kernel)})")
    if t.blockwise:
        lines.append(f"  init: {_init_text(t)}")
        lines += _block_events(t, i, j)
        lines += _epilogue_events(t, i, j)
        return lines
    lines.append(f"  after init: {value_text(t.states[0][i, j])}  [{_init_text(t)}]")
    ops = operand_values(t)
    for idx in range(1, len(t.recorded)):
        e = _step_event(t, ops, i, j, idx) if t.recorded[idx] == t.recorded[idx - 1] + 1 else None
        if e is not None:
            lines.append(f"  {e.step}: {e.value}" + (f"  <- {e.note}" if e.note else ""))
    lines += _epilogue_events(t, i, j)
    return lines


def _block_events(t: Trace, i: int, j: int) -> list[str]:
    """Per recorded quant block: the exact int32 sum, SCVTF, the bf16 scale, facc and whether
    that step rounded (compared with the exact rational value)."""
    assert t.block_sums is not None
    out = []
    for idx in range(1, len(t.recorded)):
        s = t.recorded[idx]
        isum = t.block_sums[idx][i, j]
        f = np.float32(isum)  # SCVTF (round to nearest even)
        d = np.float32(t.rhs.d[j, s - 1])
        cur = t.states[idx][i, j]
        head = f"  block {s - 1} (k {(s - 1) * t.kstep}..{s * t.kstep - 1}): int32 sum {value_text(isum)}"
        out.append(head + ("" if float(f) == int(isum) else f"; SCVTF rounds it to {value_text(f)}"))
        if t.recorded[idx - 1] != s - 1:
            out.append(f"    x scale {value_text(d)} into facc: {value_text(cur)}")
            continue
        prev = t.states[idx - 1][i, j]
        note = ""
        if all(math.isfinite(float(x)) for x in (prev, f, d, cur)):
            exact = Fraction(float(prev)) + Fraction(float(f)) * Fraction(float(d))
            if Fraction(float(cur)) != exact:
                note = "  <- rounded" if cur != 0 or exact == 0 else "  <- flushed to zero"
        out.append(f"    x scale {value_text(d)} (bf16 block scale) + facc: {value_text(cur)}{note}")
    return out


def _row(lhs: Any, i: int) -> Any:
    """Row i of decoded qai8dxp rows (codes, -zp, dq)."""
    return dataclasses.replace(lhs, q=lhs.q[i : i + 1], neg_zp=lhs.neg_zp[i : i + 1], dq=lhs.dq[i : i + 1])


def _float_note(acc: float, out: Any, fz: bool) -> str:
    """What the float epilogue did to one value: rounded to f16, flushed, clamped, or nothing."""
    if float(out) == acc and not (acc == 0 and np.signbit(out) != np.signbit(acc)):
        return ""
    if out.dtype == np.float16:
        r16 = np.float16(acc)  # RN16 (numpy's float32 -> float16 cast rounds to nearest even)
        if r16.view(np.uint16) == out.view(np.uint16):
            return "  <- rounded to f16"
    if float(out) == 0 and acc != 0 and fz and abs(acc) < 2**-14:
        return "  <- flushed to zero (FZ)"
    return "  <- clamped"


def _requant_events(t: Trace, j: int, acc: Any) -> list[str]:
    """The pqs8 output stage of one value, step by step with the numerics steps the kernel uses."""
    scale = np.float32(t.rhs.scale[j])
    if t.kernel.fz:
        scale = ftz32(scale)
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.multiply(np.float32(acc), scale, dtype=np.float32)  # SCVTF then FMUL: the kernel's order
    r = frintn_fcvtzs(np.asarray([y], np.float32))[0]
    sat = "  <- saturated (outside int32)" if np.isfinite(y) and abs(float(np.rint(y))) >= 2**31 else ""
    p = t.params
    o = np.int32(r) + np.int32(p.output_zero_point)
    clamped = "  <- clamped" if not p.min_value <= int(o) <= p.max_value else ""
    return [
        f"  SCVTF, FMUL by scale' {value_text(scale)}: {value_text(y)}",
        f"  FRINTN, FCVTZS: {value_text(np.int32(r))}{sat}",
        f"  + output zero point: {value_text(o)}{clamped}",
    ]


def _epilogue_events(t: Trace, i: int, j: int) -> list[str]:
    acc, out = t.acc[i, j], t.out[i, j]
    lines = [f"  accumulator the epilogue reads: {value_text(acc)}"]
    lines += [f"  epilogue: {s}" for s in t.epilogue]
    note = ""
    if isinstance(t.kernel, RequantizingKernel):
        lines += _requant_events(t, j, acc)
    elif t.blockwise:
        kk: Any = t.kernel  # the same epilogue stage without the clamp: the value the clamp reads
        free = (np.float32(-np.inf), np.float32(np.inf))
        y = kk.epilogue(t.acc[i : i + 1], _row(t.lhs, i), t.rhs, free)[0, j]
        lines.append(f"  before the clamp: {value_text(y)}")
        if y.view(np.uint32) != out.view(np.uint32):
            note = "  <- clamped"
    elif acc.dtype.kind == "f":
        note = _float_note(float(acc), out, t.kernel.fz)
    lines.append(f"  output: {value_text(out)}{note}")
    return lines
