"""The conformance harness without pytest: load an implementation, pack a problem, run it, compare.

Everything pytest-specific lives in ``conftest.py`` and the ``test_*.py`` modules of this
package; this module is importable (and used by ``python -m kleidiref.conformance``) without it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.interface import BlockwiseKernel, MatmulKernel, RawLhsRow, RequantizingKernel
from ..kai.params import kai_matmul_requantize32_params
from ..kai.registry import UKERNELS
from ..targets import Target
from ..testing import VARIANT_NAMES, Problem, explain_mismatch, kernels_of

__all__ = [
    "ENV_IMPL",
    "SENTINEL",
    "Impl",
    "KernelCall",
    "Outcome",
    "golden_problem",
    "kernel_names",
    "load_impl",
    "pack_problem",
    "reference_impl",
    "replay_bundle",
    "run_problem",
    "write_bundle",
]

#: Environment variable naming the implementation when ``--kleidiref-impl`` is not given.
ENV_IMPL = "KLEIDIREF_IMPL"
#: Byte pre-filled in every destination; bytes outside the output must keep it.
SENTINEL = 0xA5


@dataclasses.dataclass(frozen=True)
class Impl:
    """A loaded implementation: ``factory(kernel, svl, fz)`` and its level (``kernel`` or ``gemm``)."""

    spec: str
    factory: Callable[[str, int, bool], Callable[..., Any] | None]
    level: str = "kernel"

    def get(self, kernel: str, svl: int, fz: bool) -> Callable[..., Any] | None:
        return self.factory(kernel, svl, fz)


def reference_impl(kernel: str, svl: int, fz: bool) -> Callable[..., Any] | None:
    """kleidiref's own kernels as an implementation: ``run_matmul`` of the named KleidiAI kernel."""
    cls = UKERNELS.get(kernel)
    if cls is None or not issubclass(cls, MatmulKernel):
        return None
    return cls(svl, fz=fz).run_matmul


def load_impl(spec: str | None) -> Impl:
    """``module:attr`` (or ``module.attr``) -> :class:`Impl`; None reads :data:`ENV_IMPL`."""
    text = spec or os.environ.get(ENV_IMPL, "")
    if not text:
        raise ValueError(
            f"name the implementation under test: --kleidiref-impl module:callable or {ENV_IMPL}=module:callable"
        )
    mod_name, sep, attr = text.partition(":")
    if not sep:
        mod_name, _, attr = text.rpartition(".")
    if not mod_name or not attr:
        raise ValueError(f"implementation {text!r} must be 'module:callable'")
    obj: Any = importlib.import_module(mod_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"implementation {text!r} is a {type(obj).__name__}, not a callable")
    level = str(getattr(obj, "kleidiref_level", "kernel"))
    if level not in ("kernel", "gemm"):
        raise ValueError(f"{text}.kleidiref_level must be 'kernel' or 'gemm', got {level!r}")
    return Impl(text, obj, level)


def kernel_names(pattern: str | None = None) -> list[str]:
    """The KleidiAI matmul kernels the suite knows (every kernel of :data:`VARIANT_NAMES`), filtered."""
    names = [c.name for v in VARIANT_NAMES for c in kernels_of(v)]
    if not pattern:
        return names
    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    return [n for n in names if any(re.fullmatch(p.replace("*", ".*"), n) or p in n for p in pats)]


# ------------------------------------------------------------------------------------------------
# Packing: one problem -> the byte buffers and arguments a kernel-level implementation takes
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class KernelCall:
    """A problem packed for one kernel by kleidiref's packers (the packers are not under test)."""

    kern: MatmulKernel
    m: int
    n: int
    k: int
    lhs: NDArray[Any]  # packed LHS bytes, or the raw typed [M, K] rows of a raw-LHS kernel
    rhs: NDArray[np.uint8]
    epilogue: tuple[Any, ...]  # (clamp_min, clamp_max) or (kai_matmul_requantize32_params,)
    bl: int | None = None

    @property
    def item(self) -> int:
        return self.kern.dst_dtype.itemsize

    def lhs_at(self, m_idx: int) -> NDArray[Any]:
        if isinstance(self.kern, RawLhsRow):
            return np.ascontiguousarray(self.lhs[m_idx : m_idx + 1])
        return self.lhs[self.kern.get_lhs_packed_offset(m_idx, self.k) :]

    def rhs_at(self, n_idx: int) -> NDArray[np.uint8]:
        if isinstance(self.kern, BlockwiseKernel):
            off = self.kern.get_rhs_packed_offset(n_idx, self.k, self.bl)  # type: ignore[call-arg]
        else:
            off = self.kern.get_rhs_packed_offset(n_idx, self.k)
        return self.rhs[off:]

    def args(self, m: int, n: int, m_idx: int, n_idx: int, dst: NDArray[np.uint8], stride: int) -> tuple[Any, ...]:
        """The ``kai_run_<kernel>`` arguments for the m x n block at (m_idx, n_idx)."""
        lhs, rhs = self.lhs_at(m_idx), self.rhs_at(n_idx)
        tail = (dst, stride, self.item, *self.epilogue)
        if isinstance(self.kern, BlockwiseKernel):
            return (m, n, self.k, self.bl, lhs, rhs, *tail)
        if isinstance(self.kern, RawLhsRow) and not isinstance(self.kern, RequantizingKernel):
            return (m, n, self.k, lhs, self.k * lhs.itemsize, rhs, *tail)
        return (m, n, self.k, lhs, rhs, *tail)


def _u8(buf: Any) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = np.frombuffer(buf, dtype=np.uint8).copy()
    return out


def _pack_float(p: Problem, kern: MatmulKernel) -> tuple[NDArray[Any], NDArray[np.uint8]]:
    spec = _variant(p.variant).SPEC
    rhs = _u8(spec.pack_weights(p.rhs, bias=p.bias, transpose_rhs=False, target=p.target).rhs_packed)
    lhs = np.ascontiguousarray(p.lhs) if isinstance(kern, RawLhsRow) else _u8(spec.lhs_packer(kern.svl).pack(p.lhs))
    return lhs, rhs


def _pack_qai8dx(p: Problem, kern: MatmulKernel, sr: int) -> NDArray[np.uint8]:
    from ..kai.pack import kai_lhs_quant_pack_qai8dxp_f32

    t = kern.tile_params()
    return _u8(kai_lhs_quant_pack_qai8dxp_f32(kern.svl).pack(np.ascontiguousarray(p.lhs), mr=t.mr, kr=t.kr, sr=sr))


def pack_problem(p: Problem) -> KernelCall:
    """``p`` packed for its kernel (``p.kernel``) at ``p.target``'s SVL and FZ."""
    kern = p.kernel_obj()
    m, n, k = p.m, p.n, p.k
    mod = _variant(p.variant)
    if p.variant in ("pf32_gemm", "pf16_gemm"):
        lhs, rhs = _pack_float(p, kern)
        return KernelCall(kern, m, n, k, lhs, rhs, (p.clamp_min, p.clamp_max))
    if p.variant == "qp8_f32_qc8w_gemm":
        w = mod.pack_weights(p.rhs, p.scale, bias=p.bias, target=p.target, kernel=kern.name)
        return KernelCall(kern, m, n, k, _pack_qai8dx(p, kern, 1), _u8(w.rhs_packed), (p.clamp_min, p.clamp_max))
    if p.variant == "qp8_f32_qb4w_gemm":
        prep = mod.prepare_weights(p.rhs, p.scales_bf16, bl=p.bl, bias=p.bias, target=p.target, kernel=kern.name)
        lhs = _pack_qai8dx(p, kern, kern.tile_params().sr)
        return KernelCall(kern, m, n, k, lhs, _u8(prep.rhs_packed), (p.clamp_min, p.clamp_max), bl=p.bl)
    w = mod.pack_weights(p.rhs, p.requant_scale, input_zero_point=p.input_zero_point, bias=p.bias, target=p.target)
    if isinstance(kern, RawLhsRow):
        lhs = np.ascontiguousarray(p.lhs)
    else:
        lhs = _u8(mod.kai_lhs_pack_x8p2vlx4_x8_sme(kern.svl).pack(np.ascontiguousarray(p.lhs)))
    params = kai_matmul_requantize32_params(p.output_min, p.output_max, p.output_zero_point)
    return KernelCall(kern, m, n, k, lhs, _u8(w.rhs_packed), (params,))


def _variant(name: str) -> Any:
    from ..variants import VARIANTS

    return VARIANTS[name]


# ------------------------------------------------------------------------------------------------
# Running an implementation and comparing
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What one check found: the output, the reference, and the report (None when they match)."""

    problem: Problem
    got: NDArray[Any]
    expected: NDArray[Any]
    report: str | None
    stride: int | None = None
    tiles: str = "whole"

    @property
    def ok(self) -> bool:
        return self.report is None


def _blocks(call: KernelCall, tiles: str) -> Iterator[tuple[int, int, int, int]]:
    """(m_idx, m, n_idx, n) of each call: one call (one per row for a 1-row kernel), or every
    m_step x n_step portion at the kernel's offsets (``tiles="steps"``)."""
    tp = call.kern.tile_params()
    ms = tp.m_step if tiles == "steps" or tp.m_step == 1 else max(call.m, 1)
    ns = tp.n_step if tiles == "steps" else max(call.n, 1)
    for m0 in range(0, call.m, ms):
        for n0 in range(0, call.n, ns):
            yield m0, min(ms, call.m - m0), n0, min(ns, call.n - n0)


def _run_kernel(fn: Callable[..., Any], call: KernelCall, stride: int, tiles: str) -> tuple[NDArray[Any], str | None]:
    """Run ``fn`` over the blocks into a sentinel-filled dst of row ``stride`` bytes: (out, problem)."""
    item = call.item
    dst = np.full(max(call.m * stride, 1), SENTINEL, np.uint8)
    for m0, mm, n0, nn in _blocks(call, tiles):
        off = m0 * stride + n0 * item
        if tiles == "steps":  # the offset the kernel reports (a raw-row kernel's rows are the caller's)
            raw = isinstance(call.kern, RawLhsRow)
            off = (
                m0 * stride + call.kern.get_dst_offset(0, n0, stride)
                if raw
                else call.kern.get_dst_offset(m0, n0, stride)
            )
        fn(*call.args(mm, nn, m0, n0, dst[off:], stride))
    rows = dst[: call.m * stride].reshape(call.m, stride)
    width = call.n * item
    out = np.ascontiguousarray(rows[:, :width]).view(call.kern.dst_dtype).reshape(call.m, call.n)
    if np.any(rows[:, width:] != SENTINEL):
        r, c = (int(x[0]) for x in np.nonzero(rows[:, width:] != SENTINEL))
        return out, f"byte {width + c} of dst row {r} (past the N = {call.n} outputs, row stride {stride}) was written"
    return out, None


def _inputs(p: Problem) -> dict[str, Any]:
    keys = {
        "pf32_gemm": ("bias", "clamp_min", "clamp_max"),
        "pf16_gemm": ("bias", "clamp_min", "clamp_max"),
        "qp8_f32_qc8w_gemm": ("scale", "bias", "clamp_min", "clamp_max"),
        "qp8_f32_qb4w_gemm": ("scales_bf16", "bl", "bias", "clamp_min", "clamp_max"),
        "pqs8_qc8w_gemm": (
            "input_zero_point",
            "requant_scale",
            "bias",
            "output_zero_point",
            "output_min",
            "output_max",
        ),
    }[p.variant]
    out: dict[str, Any] = {"lhs": p.lhs, "rhs": p.rhs}
    out.update({key: getattr(p, key) for key in keys if getattr(p, key) is not None})
    return out


def run_problem(impl: Impl, p: Problem, *, pad: int = 0, tiles: str = "whole") -> Outcome | None:
    """Run ``impl``'s ``p.kernel`` on ``p`` and compare with kleidiref; None if impl lacks it.

    ``pad`` extra elements per dst row (a strided C), ``tiles="steps"``: every m_step x n_step
    portion at the offsets the kernel reports (KleidiAI's sub-tile calls).
    """
    fz = p.target.flush_to_zero
    svl = p.target.svl_bits or 512
    fn = impl.get(p.kernel, svl, fz)
    if fn is None:
        return None
    expected = p.run()
    stride = None
    extra: str | None = None
    if impl.level == "gemm":
        got = np.asarray(fn(**_inputs(p)))
    else:
        call = pack_problem(p)
        stride = (p.n + pad) * call.item
        got, extra = _run_kernel(fn, call, stride, tiles)
    kw = {"variant": p.variant, "target": p.target, "kernel": p.kernel, **_inputs(p)}
    report = explain_mismatch(got, **kw)
    if extra is not None:
        report = f"{report}\n{extra}" if report else f"kleidiref: {p.describe()}: {extra}"
    return Outcome(p, got, expected, report, stride, tiles)


# ------------------------------------------------------------------------------------------------
# Golden files -> problems
# ------------------------------------------------------------------------------------------------


def _golden_inputs(variant: str, d: Mapping[str, NDArray[Any]]) -> dict[str, Any] | str:
    """The friendly ``gemm`` inputs of a golden file, or why the file has none for the suite."""
    if variant in ("pf32_gemm", "pf16_gemm", "qp8_f32_qc8w_gemm", "qp8_f32_qb4w_gemm"):
        out: dict[str, Any] = {"lhs": d["lhs"], "bias": d["bias"]}
        out["clamp_min"], out["clamp_max"] = float(d["clamp_min"]), float(d["clamp_max"])
        if variant == "qp8_f32_qc8w_gemm":
            out["rhs"], out["scale"] = d["rhs"], d["scale"]
        elif variant == "qp8_f32_qb4w_gemm":
            out["rhs"], out["scales_bf16"], out["bl"] = d["rhs_int4"], d["scale_bf16"], int(d["bl"])
        else:
            out["rhs"] = d["rhs"]
        return out
    if float(d["scale_multiplier"]) != 1.0:
        return "scale_multiplier != 1 (XNNPACK always packs pqs8 with 1.0)"
    return {
        "lhs": d["lhs"],
        "rhs": d["rhs"],
        "bias": d["bias"],
        "requant_scale": d["scale"],
        "input_zero_point": int(d["lhs_zero_point"]),
        "output_zero_point": int(d["out_zero_point"]),
        "output_min": int(d["out_min"]),
        "output_max": int(d["out_max"]),
    }


def golden_problem(path: Path, kernel: str, svl: int) -> Problem | str:
    """The problem of golden file ``path`` for ``kernel`` (SVL of the file, else ``svl``), or why not."""
    from ..golden import load_golden

    cls = UKERNELS[kernel]
    d = load_golden(path)
    variant = str(d["meta_variant"]).removesuffix("_fz").removesuffix("_neon")
    if variant != cls.variant:
        return f"{path.name} is a {variant} file, not {cls.variant}"
    inputs = _golden_inputs(variant, d)
    if isinstance(inputs, str):
        return inputs
    file_svl = int(d["meta_svl_bits"]) or svl
    fz = bool(int(d.get("meta_fpcr_fz", np.array(0))))
    target = Target(svl_bits=file_svl, flush_to_zero=fz)
    return Problem.build(variant=variant, target=target, kernel=kernel, **inputs)


# ------------------------------------------------------------------------------------------------
# Repro bundles
# ------------------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150] or "case"


def write_bundle(root: Path, test_id: str, impl: Impl, o: Outcome) -> Path:
    """Write one failure's repro bundle under ``root``; returns its directory.

    Files: ``inputs.npz`` (the ``gemm`` inputs), ``expected.npy``, ``got.npy``, ``diagnosis.txt``
    (the :func:`kleidiref.testing.assert_matches` report), ``case.json`` (variant, kernel, SVL,
    FZ, dst row stride, tiling, implementation, test id) and ``reproduce.txt`` (one command line).
    """
    d = root / _safe(test_id)
    d.mkdir(parents=True, exist_ok=True)
    p = o.problem
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in _inputs(p).items()}
    np.savez(d / "inputs.npz", **arrays)
    np.save(d / "expected.npy", o.expected)
    np.save(d / "got.npy", o.got)
    (d / "diagnosis.txt").write_text((o.report or "") + "\n")
    case = {
        "test": test_id,
        "impl": impl.spec,
        "level": impl.level,
        "variant": p.variant,
        "kernel": p.kernel,
        "svl": p.target.svl_bits,
        "fz": p.target.flush_to_zero,
        "dst_stride_row": o.stride,
        "tiles": o.tiles,
        "M": p.m,
        "N": p.n,
        "K": p.k,
    }
    (d / "case.json").write_text(json.dumps(case, indent=2) + "\n")
    (d / "reproduce.txt").write_text(f"python -m kleidiref.conformance {d} --impl {impl.spec}\n")
    return d


def replay_bundle(bundle: Path, impl_spec: str | None = None) -> Outcome | None:
    """Re-run a repro bundle's case on its implementation (or ``impl_spec``); None if impl lacks it."""
    case = json.loads((bundle / "case.json").read_text())
    impl = load_impl(impl_spec or case["impl"])
    with np.load(bundle / "inputs.npz") as z:
        inputs: dict[str, Any] = {k: z[k] for k in z.files}
    for key in ("clamp_min", "clamp_max"):
        if key in inputs:
            inputs[key] = float(inputs[key])
    for key in ("bl", "input_zero_point", "output_zero_point", "output_min", "output_max"):
        if key in inputs:
            inputs[key] = int(inputs[key])
    target = Target(svl_bits=case["svl"], flush_to_zero=bool(case["fz"]))
    p = Problem.build(variant=case["variant"], target=target, kernel=case["kernel"], **inputs)
    stride = case.get("dst_stride_row")
    pad = 0 if stride is None else stride // UKERNELS[case["kernel"]].dst_dtype.itemsize - p.n  # type: ignore[attr-defined]
    return run_problem(impl, p, pad=pad, tiles=str(case.get("tiles", "whole")))
