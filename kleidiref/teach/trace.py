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
The blockwise qb4w kernels step by quant block (``kstep = bl``): in each block ZA (or the vector
accumulators) is zeroed, bl / 4 SMOPA / SDOT steps (bl / 8 SMMLA) sum int8 x int4 products
exactly, then the block's int32 sums are converted (SCVTF) and multiplied by the block's bf16
scale into a float accumulator (FMUL for the MOPA's first block, FMLA after; in the MOPA kernel
that accumulator lives in the destination rows between blocks). The trace records, per block,
the int32 sums (``block_sums``: the kernel's ``block_sums``) and the float accumulator after it
(the kernel's ``accumulate`` on the first s blocks, :func:`~kleidiref.kai.qb4w_common.first_blocks`),
and ends on the kernel's ``epilogue`` (the ``-zp * rsum`` FMLA, row scale, bias, clamp).
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
from ..kai.matmul_clamp_f32_qai8dxp_qsi4cxp import Qc4wKernel
from ..kai.pack import kai_lhs_quant_pack_qai8dxp_f32
from ..kai.pack.lhs_quant_pack_qai8dxp_f32 import Qai8dxpRows
from ..kai.params import kai_matmul_requantize32_params
from ..kai.qb4w_common import first_blocks
from ..quant.qb4 import f32_scales_to_bf16, pack_nibbles
from ..variants import qp8_f32_qb4w_gemm as qb4w
from .kernels import resolve_kernel

__all__ = [
    "Trace",
    "ZaPosition",
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

    Note: tile ``ZA<t>.s`` holds rows ``(t // (n_step/VL)) VL ..`` and columns
    ``(t % (n_step/VL)) VL ..`` of the m_step x n_step block, checked against KleidiAI's asm at
    b87ef9c9: in ``kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa_asm.S`` the K loop
    loads LHS ``{z4-z7}`` (z4, z5: rows 0..VL-1, VL..2VL-1 of one k) and RHS ``{z20-z23}``
    (z20, z21: columns 0..VL-1, VL..2VL-1) and issues ``fmopa za0.s, z4, z20``, ``za1.s, z4,
    z21``, ``za2.s, z5, z20``, ``za3.s, z5, z21``; the store loop writes ``za0h``/``za1h``
    slices side by side into row block 0 and ``za2h``/``za3h`` into row block 1 (2vlx2vl: ZA0
    ZA1 / ZA2 ZA3). In ``kai_matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa_asm.S``
    (and the qsi4c32p sibling) ``smopa za<t>.s, z4.b, z<8+t>.b`` pairs one LHS vector with RHS
    vector t, and the epilogue's ``mova {z12-z15}, za0h.b[w14, 0:3]`` reads slice i of ZA0..ZA3
    as columns 0..4VL-1 (1vlx4vl: ZA0..ZA3 side by side). The GEMVs accumulate one row in
    n_step/VL vectors; the NEON kernels have no ZA.
    """
    p = kernel.tile_params()
    vl = kernel.vls
    ib, jb = i % p.m_step, j % p.n_step
    if kernel.isa == "neon":  # no ZA: the NEON kernels accumulate in 128-bit vector registers
        block = (i // p.m_step, j // p.n_step)
        text = f"block {block}, NEON vector accumulators (no ZA): row {ib}, column {jb} of the block"
        return ZaPosition(block, 0, ib, jb, text)
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
    if isinstance(kernel, BlockwiseKernel):
        return _blockwise_instruction(kernel)
    text = _instruction(kernel)
    if isinstance(kernel, Qc4wKernel):
        widen = "SHL #4 / AND #0xF0 to 16 w" if kernel.x16 else "LUTI4 to w"
        text += f"; int4 nibbles widened by {widen}"
    return text


def _instruction(kernel: MatmulKernel) -> str:
    elem, name = _elem(kernel), kernel.name
    if "mopa" in name:
        return {
            "f32": "FMOPA: ZA.s += outer product of one LHS column and one RHS row (fused, one f32 rounding per lane)",
            "f16": "FMOPA (widening): ZA.s += 2-k f16 dot per lane (FPDot: one f32 rounding per pair)",
            "i8": "SMOPA: ZA.s += 4-k int8 dot per lane (exact int32, wraps)",
        }[elem]
    if elem == "i8" and "i8mm" in name:
        return "SMMLA: each 128-bit accumulator += a 2 x 2 block of 8-k int8 dots (exact int32, wraps)"
    if elem == "i8":
        return "SDOT: accumulator += 4-k int8 dot per lane (exact int32, wraps)"
    if elem == "f16":
        return (
            "FDOT: += 2-k f16 dot per lane (one f32 rounding per pair)"
            if "_dot" in name
            else ("FMLALB then FMLALT: two fused multiply-adds per pair (two f32 roundings)")
        )
    return "FMLA: accumulator += LHS element x RHS row (fused, one f32 rounding per lane)"


def _blockwise_instruction(kernel: BlockwiseKernel) -> str:
    kind: Any = getattr(kernel, "kind", "")
    dot = {
        "mopa": "SMOPA (nibbles expanded by LUTI4): ZA.s += 4-k int8 dot per lane, bl/4 per block",
        "sme2_dot": "SDOT (ZA vgx4, nibbles expanded by LUTI4): += 4-k int8 dot per lane, bl/4 per block",
        "neon": "SMMLA / SDOT on (byte << 4, byte & 0xF0): += int8 dots per lane (16 x the sum; SCVTF #4 undoes it)",
    }[kind]
    first = "FMUL (first block) / FMLA" if kind == "mopa" else "FMLA (from +0)"
    return (
        f"per quant block: accumulators zeroed; {dot}, exact int32; then SCVTF and {first} by the "
        "block's bf16 scale into the float accumulator (one rounding per block)"
    )


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
    #: Blockwise (qb4w) kernels: ``block_sums[i]`` is the int32 ZA / accumulator contents at the
    #: end of block ``recorded[i]`` (before its SCVTF; zeros for 0), ``states`` the float
    #: accumulator after it; ``bl`` the block length (= ``kstep``).
    block_sums: NDArray[np.int32] | None = None
    bl: int | None = None

    @property
    def blockwise(self) -> bool:
        """True for a qb4w trace (steps are quant blocks)."""
        return self.block_sums is not None

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


def _blockwise_epilogue(kernel: BlockwiseKernel, params: Any) -> list[str]:
    kind: Any = getattr(kernel, "kind", "")
    final = (
        "FMLA into the bias: y = bias + facc x dq (one rounding)"
        if kind == "sme2_dot"
        else "FMUL by the row's dq, FADD bias (a rounding each)"
    )
    clamp = "FMAX, FMIN" if kind == "neon" else "FCLAMP"
    return [
        "SCVTF of the row's -zp, FMLA: facc += (-zp) x (the column's f32 row sum) (one rounding)",
        final,
        f"clamp ({clamp}) to [{params[0]}, {params[1]}]",
    ]


def _trace_blockwise(
    kernel: BlockwiseKernel,
    lhs_u8: NDArray[np.uint8],
    rhs_u8: NDArray[np.uint8],
    shape: tuple[int, int, int, int],
    params: Any,
    max_steps: int,
    record: list[int] | None,
) -> Trace:
    m, n, k, bl = shape
    nsteps = k // bl
    if nsteps > max_steps:
        raise ValueError(f"k = {k} is {nsteps} blocks of {bl}: more than max_steps = {max_steps}")
    kk: Any = kernel
    lhs = kernel.decode_lhs(lhs_u8, m, k)
    rhs = kernel.decode_rhs(rhs_u8, n, k, bl)
    sums = kk.block_sums(lhs, rhs)
    wanted = sorted({s for s in (record or range(nsteps + 1)) if 0 <= s <= nsteps} | {nsteps})
    states = [kk.accumulate(dataclasses.replace(lhs, q=lhs.q[:, : s * bl]), first_blocks(rhs, s)) for s in wanted]
    ints = np.stack([sums[s - 1] if s else np.zeros((m, n), np.int32) for s in wanted])
    out = kk.epilogue(states[-1], lhs, rhs, params)
    steps = _blockwise_epilogue(kernel, params)
    return Trace(
        kernel,
        m,
        n,
        k,
        bl,
        np.stack(states),
        states[-1],
        out,
        steps,
        wanted,
        lhs,
        rhs,
        params,
        lhs_u8,
        rhs_u8,
        block_sums=ints,
        bl=bl,
    )


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
    bl: int | None = None,
) -> Trace:
    """Trace ``kernel`` on packed operands; ``params`` is its epilogue argument (the clamp
    ``(lo, hi)`` as float32, or :class:`kai_matmul_requantize32_params`).

    ``record``: the step counts whose states to compute (default: every one); the last step is
    always computed, and ``Trace.recorded`` lists the step count of each state. ``bl``: the
    quant block length of a blockwise (qb4w) kernel, whose steps are its blocks.
    """
    if isinstance(kernel, BlockwiseKernel):
        b = kernel.check_bl(bl, "run_matmul")
        if k % b:
            raise ValueError(f"k = {k} is not a multiple of bl = {b} (KAI_ASSUME((k % bl) == 0))")
        lhs_b = np.asarray(lhs_bytes, np.uint8).reshape(-1)
        rhs_b = np.asarray(rhs_bytes, np.uint8).reshape(-1)
        return _trace_blockwise(kernel, lhs_b, rhs_b, (m, n, k, b), params, max_steps, record)
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


def _qb4w_fields(kernel: MatmulKernel, data: dict[str, NDArray[Any]]) -> tuple[str, str, str]:
    """(LHS, RHS, output) fields of a qb4w golden file for ``kernel`` (the *_neon files hold
    both NEON branches: the dotprod one's fields end in ``_dotprod``)."""
    kk: Any = kernel
    suffix = "_dotprod" if type(kernel) in (qb4w.NEON_DOT, qb4w.NEON_DOT_GEMV) else ""
    gemv = "_gemv" if kk.gemv else ""
    if kernel.isa != "neon" and "meta_bl" in data:
        raise ValueError(f"{kernel.name} is an SME2 kernel: this file holds XNNPACK's NEON kernels' data")
    if kernel.isa == "neon" and "meta_bl" not in data:
        raise ValueError(f"{kernel.name} is a NEON kernel: this file holds the SME2 kernels' data")
    return f"lhs_packed{gemv}{suffix}", f"rhs_packed{suffix}", f"out{gemv}{suffix}"


def trace_file(
    path: str | Path, name: str | None = None, *, max_steps: int = 4096, record: list[int] | None = None
) -> tuple[Trace, NDArray[Any]]:
    """Trace a golden file's packed operands with ``name`` (default: the file's variant, i.e. its
    SME2 MOPA kernel; for XNNPACK's NEON qb4w files the i8mm kernel): ``(trace, the file's
    recorded output for that kernel)``."""
    data = load_golden(path)
    variant = str(data["meta_variant"]).removesuffix("_fz")
    fz = bool(int(data.get("meta_fpcr_fz", 0)))
    if name is None and variant == "qp8_f32_qb4w_gemm_neon":
        name = qb4w.NEON_I8MM_GEMV.name if int(data["meta_M"]) == 1 else qb4w.NEON_I8MM.name
    elif name is None and variant == "qp8_f32_qb4w_gemm" and int(data["meta_M"]) == 1:
        name = qb4w.SME2_DOT.name
    svl = int(data["meta_svl_bits"]) or 512  # 0: a NEON-only file (the NEON kernels ignore the SVL)
    _, kernel = resolve_kernel(name or variant.removesuffix("_neon"), svl, fz=fz)
    if isinstance(kernel, BlockwiseKernel):
        lhs_key, rhs_key, field = _qb4w_fields(kernel, data)
        m, n, k = (int(data[f"meta_{x}"]) for x in "MNK")
        bl: int | None = int(data["bl"])
    else:
        field = _golden_out_field(kernel)
        m, n, k, lhs_key, rhs_key = _golden_problem(data, "_gemv" in field)
        bl = None
    if field not in data:
        raise ValueError(f"{path}: no {field} (the output of {kernel.name}) in this file")
    lhs = np.ascontiguousarray(data[lhs_key]).reshape(-1).view(np.uint8)
    t = trace(kernel, lhs, data[rhs_key], m, n, k, _golden_params(data), max_steps=max_steps, record=record, bl=bl)
    return t, np.asarray(data[field]).reshape(m, n)


def random_problem(
    kernel: MatmulKernel, m: int, n: int, k: int, seed: int, *, bl: int = 32
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], Any]:
    """Seeded operands packed through the kernel's own layouts (qb4w: its packers, blocks of
    ``bl``): ``(lhs bytes, rhs bytes, epilogue params)``."""
    rng = np.random.default_rng(seed)
    if isinstance(kernel, BlockwiseKernel):
        return _random_qb4w(kernel, rng, (m, n, k, bl))
    if isinstance(kernel, Qc4wKernel):
        return _random_qc4w(kernel, rng, m, n, k)
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


def _random_qb4w(
    kernel: BlockwiseKernel, rng: np.random.Generator, shape: tuple[int, int, int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], Any]:
    """qb4w operands packed by the packers of the kernel's path (SME2: KleidiAI's
    ``qsi4c32ps1s0nrx4`` packer; NEON: XNNPACK's ``xnn_pack_kai_qb4_weights_and_biases``)."""
    m, n, k, bl = shape
    b = kernel.check_bl(bl, "run_matmul")
    if k % b:
        raise ValueError(f"k = {k} is not a multiple of bl = {b} (XNNPACK check_block_size: K % bl == 0)")
    p = kernel.tile_params()
    a = (rng.standard_normal((m, k)) * 2).astype(np.float32)
    codes = rng.integers(-8, 8, (n, k)).astype(np.int8)
    scales = f32_scales_to_bf16(rng.uniform(0.005, 0.05, (n, k // b)).astype(np.float32))
    bias = rng.standard_normal(n).astype(np.float32)
    lhs = kai_lhs_quant_pack_qai8dxp_f32(kernel.svl).pack(a, mr=p.mr, kr=p.kr, sr=p.sr)
    u = pack_nibbles(codes)
    if kernel.isa == "sme2":
        packer = qb4w.kai_rhs_pack_nxk_qsi4c32ps1s0nrx4_qsu4c32s1s0_neon(kernel.svl)
        rhs = packer.pack(u, scales, bias, nr=p.nr, kr=p.kr, sr=p.sr, bl=b)
    else:
        rhs = qb4w.xnn_pack_kai_qb4_weights_and_biases(u, scales, bias, n=n, k=k, bl=b, kr=p.kr, sr=p.sr, nr=p.nr)
    return lhs, np.asarray(rhs, np.uint8).reshape(-1), (np.float32(-30.0), np.float32(30.0))


def _random_qc4w(
    kernel: Qc4wKernel, rng: np.random.Generator, m: int, n: int, k: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], Any]:
    """qc4w operands: the LHS through ``kai_lhs_quant_pack_qai8dxp_f32``, the RHS through the
    kernel's packer (:meth:`~kleidiref.kai.matmul_clamp_f32_qai8dxp_qsi4cxp.Qc4wKernel.pack_rhs`)."""
    p = kernel.tile_params()
    a = (rng.standard_normal((m, k)) * 2).astype(np.float32)
    lhs = kai_lhs_quant_pack_qai8dxp_f32(kernel.svl).pack(a, mr=p.mr, kr=p.kr, sr=p.sr)
    w = rng.integers(-8, 8, (n, k)).astype(np.int8)
    rhs = kernel.pack_rhs(w, rng.uniform(0.01, 0.1, n).astype(np.float32), rng.standard_normal(n).astype(np.float32))
    return lhs, rhs, (np.float32(-30.0), np.float32(30.0))
