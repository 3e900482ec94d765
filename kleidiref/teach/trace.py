"""The k loop of a kernel, step by step, computed by the kernel's own stages.

A trace decodes the packed operands with the kernel's ``decode_lhs`` / ``decode_rhs``, then, for
every k step (kr k's: one FMOPA / widening FMOPA pair / SMOPA / FDOT / SDOT), the accumulator
after that step is the kernel's own ``accumulate`` on the first k' = (step + 1) kr columns of
the decoded operands (zero steps: the accumulator as the kernel initialises it, e.g. the bias
injected into ZA). The final output is the kernel's ``epilogue`` on the full accumulator, so
the trace ends on exactly ``run_matmul``'s bits (tests/test_teach_trace.py checks the golden
files). Each step is a separate ``accumulate`` call, so a trace costs O(K^2): it is for
teaching-sized problems (``max_steps`` bounds it).

Why the prefix of ``accumulate`` is the ZA state after k' steps: the kernels accumulate in
increasing k order, one rounding (float) or an exact wrapping int32 add (int8) per step, so
stopping the chain after k' steps is running it on the first k' columns. For the qai8dxp
kernels (qc8w) the ``-zp * rsum`` term is added after the k loop (an epilogue MLA), so the
per-step states are the pure dot products and the trace shows the zero-point step separately.
The blockwise qb4w kernels apply each block's scale inside the loop in float: kleidiref computes
them as one stage (``compute``), so they have no per-step trace here.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import roundup
from ..golden import load_golden
from ..kai.bias_rhs import BiasRhs
from ..kai.interface import BlockwiseKernel, MatmulKernel, RequantizingKernel
from ..kai.pack.lhs_quant_pack_qai8dxp_f32 import Qai8dxpRows
from ..kai.params import kai_matmul_requantize32_params
from .kernels import resolve_kernel

__all__ = [
    "Trace",
    "ZaPosition",
    "check_traceable",
    "instruction",
    "random_problem",
    "trace",
    "trace_file",
    "za_position",
]


@dataclasses.dataclass(frozen=True)
class ZaPosition:
    """Where output (i, j) accumulates: its m_step x n_step block, ZA tile (or vector), slice, lane."""

    block: tuple[int, int]
    tile: int
    slice: int
    lane: int
    text: str


def za_position(kernel: MatmulKernel, i: int, j: int) -> ZaPosition:
    """ZA tile, horizontal slice and lane of output (i, j).

    Note: the MOPA kernels' asm gives tile ``ZA<t>.s`` the rows ``(t // (n_step/VL)) VL ..`` and
    columns ``(t % (n_step/VL)) VL ..`` of the m_step x n_step block (2vlx2vl: ZA0 ZA1 / ZA2 ZA3;
    1vlx4vl: ZA0..ZA3 side by side); the GEMVs accumulate one row in n_step/VL vectors.
    """
    p = kernel.tile_params()
    vl = kernel.vls
    ib, jb = i % p.m_step, j % p.n_step
    tile = (ib // vl) * max(1, p.n_step // vl) + jb // vl
    block = (i // p.m_step, j // p.n_step)
    if p.m_step == 1:
        text = f"block {block}, accumulator vector {tile} (32-bit lanes), lane {jb % vl}"
    else:
        text = f"block {block}, ZA{tile}.s horizontal slice {ib % vl}, lane {jb % vl}"
    return ZaPosition(block, tile, ib % vl, jb % vl, text)


def _elem(kernel: MatmulKernel) -> str:
    if isinstance(kernel, RequantizingKernel) or "qai8dxp" in kernel.name:
        return "i8"
    return "f16" if kernel.name.startswith("kai_matmul_clamp_f16") else "f32"


def instruction(kernel: MatmulKernel) -> str:
    """The instruction one k step of the kernel's inner loop is, in words."""
    elem, name = _elem(kernel), kernel.name
    if "mopa" in name:
        return {
            "f32": "FMOPA: ZA.s += outer product of one LHS column and one RHS row (fused, one f32 rounding per lane)",
            "f16": "FMOPA (widening): ZA.s += 2-k f16 dot per lane (FPDot: one f32 rounding per pair)",
            "i8": "SMOPA: ZA.s += 4-k int8 dot per lane (exact int32, wraps)",
        }[elem]
    if elem == "i8":
        return "SDOT: accumulator += 4-k int8 dot per lane (exact int32, wraps)"
    if elem == "f16":
        return (
            "FDOT: += 2-k f16 dot per lane (one f32 rounding per pair)"
            if "_dot" in name
            else ("FMLALB then FMLALT: two fused multiply-adds per pair (two f32 roundings)")
        )
    return "FMLA: accumulator += LHS element x RHS row (fused, one f32 rounding per lane)"


@dataclasses.dataclass
class Trace:
    """A kernel's accumulator after every k step, then its output."""

    kernel: MatmulKernel
    m: int
    n: int
    k: int
    #: k's consumed per step (the kernel's kr).
    kstep: int
    #: ``states[i]``: the m x n accumulator after ``recorded[i]`` steps (0: as initialised).
    states: NDArray[Any]
    #: The accumulator the epilogue reads (qc8w: after the zero-point MLA), and the output.
    acc: NDArray[Any]
    out: NDArray[Any]
    epilogue: list[str]
    recorded: list[int]
    #: The decoded operands (the kernel's ``decode_lhs`` / ``decode_rhs``) and the packed bytes.
    lhs: Any = None
    rhs: Any = None
    #: The epilogue argument (clamp bounds or requantization parameters).
    params: Any = None
    lhs_bytes: NDArray[np.uint8] | None = None
    rhs_bytes: NDArray[np.uint8] | None = None

    @property
    def steps(self) -> int:
        """k steps of the loop: ceil(k / kr)."""
        return self.recorded[-1]

    def state(self, step: int) -> NDArray[Any]:
        """The accumulator after ``step`` steps (a recorded one)."""
        out: NDArray[Any] = self.states[self.recorded.index(step)]
        return out


def _prefix_lhs(lhs: Any, kp: int) -> Any:
    if isinstance(lhs, Qai8dxpRows):
        # The -zp * rsum MLA comes after the k loop: the per-step states are pure dot products.
        return Qai8dxpRows(lhs.q[:, :kp], np.zeros_like(lhs.neg_zp), lhs.dq)
    return lhs[:, :kp]


def _prefix_rhs(rhs: Any, kp: int, kr: int) -> Any:
    if isinstance(rhs, BiasRhs):
        w = rhs.w[:kp] if rhs.w.ndim == 2 else rhs.w[: kp // kr]
        return dataclasses.replace(rhs, w=w, w_lows=None)
    return rhs  # the int8 kernels read as many W rows as the LHS has columns


def _epilogue(kernel: MatmulKernel, lhs: Any, rhs: Any, acc: NDArray[Any], params: Any) -> tuple[Any, Any, list[str]]:
    """``(accumulator, output, description)`` of the kernel's epilogue stage."""
    k: Any = kernel
    if isinstance(lhs, Qai8dxpRows):
        full = k.accumulate(lhs, rhs)
        steps = [
            "MLA: acc += (-zp of the row) x (row sum of the column): int32, wraps",
            "SCVTF: int32 -> f32 (round to nearest even); "
            + (
                "FMUL scale x dq, then FMLA acc x that + bias (one rounding)"
                if getattr(k, "fused", False)
                else "FMUL dq x scale, FMUL by acc, FADD bias (a rounding each)"
            ),
            f"clamp ({k.clamp_kind}) to [{params[0]}, {params[1]}]",
        ]
        return full, k.epilogue(full, lhs.dq, rhs, params), steps
    if isinstance(kernel, RequantizingKernel):
        steps = [
            "SCVTF: int32 -> f32, FMUL by the column's scale' (a rounding each); FRINTN (ties to even), "
            "FCVTZS (saturating)",
            f"+ output zero point {params.output_zero_point} (int32, wraps); clamp to "
            f"[{params.min_value}, {params.max_value}]; store the low byte",
        ]
        return acc, k.epilogue(acc, rhs.scale, params), steps
    narrow = "; FCVT to f16 (round to nearest even)" if kernel.dst_dtype == np.float16 else ""
    steps = [f"clamp ({k.clamp_kind}) to [{params[0]}, {params[1]}]{narrow}" + ("; FZ: flush" if kernel.fz else "")]
    return acc, k.epilogue(acc, params), steps


def check_traceable(kernel: MatmulKernel) -> None:
    """ValueError for a kernel kleidiref computes as one stage (the blockwise qb4w kernels)."""
    if isinstance(kernel, BlockwiseKernel):
        raise ValueError(f"{kernel.name}: the blockwise scales are applied inside the k loop; no per-step trace")


def trace(
    kernel: MatmulKernel,
    lhs_bytes: NDArray[np.uint8],
    rhs_bytes: NDArray[np.uint8],
    m: int,
    n: int,
    k: int,
    params: Any,
    *,
    max_steps: int = 4096,
    record: list[int] | None = None,
) -> Trace:
    """Trace ``kernel`` on packed operands; ``params`` is its epilogue argument (the clamp
    ``(lo, hi)`` as float32, or :class:`kai_matmul_requantize32_params`).

    ``record``: the step counts whose states to compute (default: every one); the last step is
    always computed, and ``Trace.recorded`` lists the step count of each state.
    """
    check_traceable(kernel)
    kr = kernel.tile_params().kr
    nsteps = math.ceil(k / kr)
    if nsteps > max_steps:
        raise ValueError(f"k = {k} is {nsteps} steps of {kr}: more than max_steps = {max_steps}")
    lhs_u8 = np.asarray(lhs_bytes, np.uint8).reshape(-1)
    rhs_u8 = np.asarray(rhs_bytes, np.uint8).reshape(-1)
    lhs = kernel.decode_lhs(lhs_u8, m, k)
    rhs = kernel.decode_rhs(rhs_u8, n, k)
    k_acc: Any = kernel
    wanted = sorted({s for s in (record or range(nsteps + 1)) if 0 <= s <= nsteps} | {nsteps})
    states = [k_acc.accumulate(_prefix_lhs(lhs, s * kr), _prefix_rhs(rhs, s * kr, kr)) for s in wanted]
    acc, out, steps = _epilogue(kernel, lhs, rhs, states[-1], params)
    return Trace(kernel, m, n, k, kr, np.stack(states), acc, out, steps, wanted, lhs, rhs, params, lhs_u8, rhs_u8)


# ---------------------------------------------------------------------------------------------
# Inputs: a golden file, or a seeded random problem packed through the kernel's layouts
# ---------------------------------------------------------------------------------------------


def _golden_problem(data: dict[str, NDArray[Any]], gemv: bool) -> tuple[int, int, int, str, str]:
    m, n, k = (int(data[f"meta_{x}"]) for x in "MNK")
    if "meta_ks" in data:  # IGEMM: the matmul's K is k_chunk_count * roundup(k_chunk_length, kr)
        k = int(data["meta_ks"]) * roundup(int(data["meta_kc"]), int(data["meta_kr"]))
    lhs = "lhs_packed_gemv" if gemv and "lhs_packed_gemv" in data else "lhs" if gemv else "lhs_packed"
    return m, n, k, lhs, "rhs_packed"


def _golden_params(data: dict[str, NDArray[Any]]) -> Any:
    if "out_zero_point" in data:
        return kai_matmul_requantize32_params(int(data["out_min"]), int(data["out_max"]), int(data["out_zero_point"]))
    return (np.float32(data["clamp_min"]), np.float32(data["clamp_max"]))


def _golden_out_field(kernel: MatmulKernel) -> str:
    gemv = not kernel.lhs_packed or kernel.tile_params().m_step == 1
    sme1 = kernel.isa == "sme"
    return "out" + ("_gemv" if gemv else "") + ("_sme1" if sme1 else "")


def trace_file(
    path: str | Path, name: str | None = None, *, max_steps: int = 4096, record: list[int] | None = None
) -> tuple[Trace, NDArray[Any]]:
    """Trace a golden file's packed operands with ``name`` (default: the file's variant, i.e. its
    SME2 MOPA kernel): ``(trace, the file's recorded output for that kernel)``."""
    data = load_golden(path)
    variant = str(data["meta_variant"]).removesuffix("_fz")
    fz = bool(int(data.get("meta_fpcr_fz", 0)))
    _, kernel = resolve_kernel(name or variant, int(data["meta_svl_bits"]), fz=fz)
    field = _golden_out_field(kernel)
    gemv = "_gemv" in field
    m, n, k, lhs_key, rhs_key = _golden_problem(data, gemv)
    lhs = np.ascontiguousarray(data[lhs_key]).reshape(-1).view(np.uint8)
    t = trace(kernel, lhs, data[rhs_key], m, n, k, _golden_params(data), max_steps=max_steps, record=record)
    return t, np.asarray(data[field]).reshape(m, n)


def random_problem(
    kernel: MatmulKernel, m: int, n: int, k: int, seed: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], Any]:
    """Seeded operands packed through the kernel's own layouts: ``(lhs bytes, rhs bytes, epilogue params)``."""
    check_traceable(kernel)
    rng = np.random.default_rng(seed)
    kk: Any = kernel
    rhs_lay = kk.rhs_layout(n, k)
    if _elem(kernel) != "i8":
        dt = np.float16 if _elem(kernel) == "f16" else np.float32
        a = rng.standard_normal((m, k)).astype(dt)
        lhs = kk.lhs_layout(m, k).encode(a) if kernel.lhs_packed else a.reshape(-1).view(np.uint8)
        rhs = rhs_lay.encode(rng.standard_normal((k, n)).astype(dt), rng.standard_normal(n).astype(dt))
        return lhs, rhs, (np.float32(-2.0), np.float32(2.0))
    return _random_int8(kk, rng, m, n, k)


def _random_int8(
    kk: Any, rng: np.random.Generator, m: int, n: int, k: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], Any]:
    rhs_lay = kk.rhs_layout(n, k)
    lhs_layout = getattr(kk, "lhs_layout", None)
    if isinstance(kk, RequantizingKernel):
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        lhs = lhs_layout(m, k).encode(a) if lhs_layout is not None and kk.lhs_packed else a.reshape(-1).view(np.uint8)
        slots = rhs_lay.blocks * rhs_lay.nr
        w = np.zeros((rhs_lay.k4, slots), np.int8)
        w[:k, :n] = rng.integers(-128, 128, (k, n), dtype=np.int8)
        rhs = np.zeros(rhs_lay.size(), np.uint8)
        scale = np.full(slots, 2.0**-10, np.float32)
        rhs_lay.encode_into(rhs, rng.integers(-5000, 5000, slots).astype(np.int32), w, scale)
        return lhs, rhs, kai_matmul_requantize32_params(-128, 127, 3)
    assert lhs_layout is not None  # every qai8dxp kernel reads a packed LHS
    lay = lhs_layout(m, k)
    lhs = np.zeros(lay.size(), np.uint8)
    q = rng.integers(-128, 128, (m, k), dtype=np.int8)
    lay.encode_into(lhs, q, rng.integers(-20, 20, m).astype(np.int32), np.full(m, 0.01, np.float32))
    slots = rhs_lay.blocks * rhs_lay.nr
    w = np.zeros((slots, rhs_lay.k32), np.int8)
    w[:n, :k] = rng.integers(-128, 128, (n, k), dtype=np.int8)
    rsum = w.astype(np.int32).sum(axis=1)  # the packer's row sums with lhs_zero_point 1 (XNNPACK's)
    rhs = rhs_lay.encode(w, rsum, np.full(slots, 0.02, np.float32), rng.standard_normal(slots).astype(np.float32))
    return lhs, rhs, (np.float32(-50.0), np.float32(50.0))
