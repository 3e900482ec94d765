"""``kleidiref sweep``: run one ``.pte`` on every (CPU, SVL) and record, per node, what ran and what it gave.

A *unit* is one program run (:class:`kleidiref.runner.Runner`) on one CPU at one SVL; a CPU without SME has
no SVL, so it is one unit (``svl`` null), not one per SVL. A unit yields one JSON line per executed node
(``kind: "node"``: the node, what ran, the output's dtype, shape and SHA-256, seconds) and then one line for
the unit (``kind: "unit"``: status ``ok`` with the program outputs' digests, or ``refused`` /
``not_implemented`` with the reason: a refusal is a result, not a crash). Every line has a stable ``key``.

Resumable: with ``out``, each finished unit is appended in one write, flushed and fsynced, so an interrupted
sweep leaves only whole units (at most a truncated last line); a rerun keeps the complete units of the same
program and inputs, drops a partial one (rewriting the file) and runs only the rest. The file is finally
rewritten in a deterministic order, so the number of workers never changes it (except the ``seconds``
fields; ``times=False`` leaves them out, :func:`strip_times` removes them).

Parallelism follows scipy's ``workers=`` convention: an int (1: in this process; N > 1: a process pool of N
spawned workers, each with its BLAS pinned to one thread) or a map-like callable ``workers(func, iterable)``
returning the results in order, e.g. ``multiprocessing.Pool(4).map``, or for Dask
``lambda f, it: client.gather(client.map(f, list(it)))``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import hashlib
import importlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import ml_dtypes
import numpy as np
from numpy.typing import NDArray

from . import pte
from .inspection import CPU_NAMES, NodeDecision, decide_node, resolve_cpu
from .pte.nodes import gemm_nodes
from .runner import NodeTrace, RefusedByXnnpack, Runner, read_inputs
from .targets import validate_svl

__all__ = [
    "DEFAULT_CPUS",
    "DEFAULT_SVLS",
    "THREAD_ENV",
    "MapLike",
    "Unit",
    "add_parser",
    "array_digest",
    "cli_main",
    "default_inputs",
    "load_records",
    "run_unit",
    "strip_times",
    "sweep",
]

Record = dict[str, Any]
#: A map-like callable (scipy's ``workers=``): ``workers(func, iterable)`` -> the results, in order.
MapLike = Callable[[Callable[["Unit"], list[Record]], Iterable["Unit"]], Iterable[list[Record]]]

DEFAULT_CPUS: tuple[str, ...] = ("sme2", "sme", "neon-i8mm", "x86-avx2")
DEFAULT_SVLS: tuple[int, ...] = (128, 256, 512, 1024, 2048)
#: Set to 1 in each pool worker before numpy loads: one BLAS / OpenMP thread and one kleidiref engine thread
#: (``KLEIDIREF_THREADS``) per worker process, so N workers use N cores, not N times the CPU count.
THREAD_ENV: tuple[str, ...] = (
    "KLEIDIREF_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
FORMAT = 1

_RANDOM_DTYPES: Mapping[str, Any] = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "DOUBLE": np.float64,
    "BFLOAT16": ml_dtypes.bfloat16,
    "CHAR": np.int8,
    "BYTE": np.uint8,
    "SHORT": np.int16,
    "INT": np.int32,
    "LONG": np.int64,
    "BOOL": np.bool_,
}


@dataclass(frozen=True, eq=False)
class Unit:
    """One program run to do: the program (path and SHA-256), the inputs, the CPU and SVL."""

    path: str
    program: str
    inputs: tuple[NDArray[Any], ...] = field(repr=False)
    inputs_digest: str
    input_source: Mapping[str, Any]
    cpu: str
    svl: int | None
    times: bool = True
    plan: str = "forward"

    @property
    def ident(self) -> tuple[str, str, str, int | None]:
        return (self.program, self.inputs_digest, self.cpu, self.svl)


# ---- digests and inputs --------------------------------------------------------------------------


def array_digest(a: NDArray[Any]) -> str:
    """SHA-256 of an array's bytes in C order (every bit: NaN payloads, signed zeros)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _inputs_digest(inputs: Sequence[NDArray[Any]]) -> str:
    h = hashlib.sha256()
    for x in inputs:
        h.update(f"{x.dtype.str}{list(x.shape)};".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def _random_inputs(program: pte.Program, plan: str, seed: int) -> list[NDArray[Any]]:
    p = program.plan(plan)
    rng = np.random.default_rng(seed)
    out: list[NDArray[Any]] = []
    for i in p.inputs:
        v = p.values[i]
        name = v.scalar_type_name if v.kind == "Tensor" else v.kind
        dt = _RANDOM_DTYPES.get(name or "")
        if dt is None:
            raise ValueError(f"cannot make a random input of type {name} (plan value {i}): pass inputs")
        shape = tuple(v.sizes or ())
        if np.dtype(dt).kind == "f":
            out.append(rng.standard_normal(shape).astype(dt))
        elif np.dtype(dt).kind == "b":
            out.append(rng.integers(0, 2, shape).astype(np.bool_))
        else:
            info = np.iinfo(dt)
            out.append(rng.integers(int(info.min), int(info.max), shape, endpoint=True).astype(dt))
    return out


def default_inputs(
    path: str | Path, program: pte.Program | None = None, *, seed: int = 0, plan: str = "forward"
) -> tuple[list[NDArray[Any]], dict[str, Any]]:
    """The inputs ``run`` uses by default (``input_i`` of the ``MODEL.io.npz`` beside the program), or, when
    there is none, seeded random inputs of the plan's input shapes and dtypes; with where they came from."""
    npz = Path(path).with_suffix(".io.npz")
    if npz.is_file():
        return read_inputs(npz), {"source": "io.npz", "file": npz.name}
    prog = program if program is not None else pte.load(path)
    return _random_inputs(prog, plan, seed), {"source": "random", "seed": seed}


def _resolve_inputs(
    path: Path, program: pte.Program, inputs: str | Path | Sequence[NDArray[Any]] | None, seed: int, plan: str
) -> tuple[list[NDArray[Any]], dict[str, Any]]:
    if inputs is None:
        arrays, source = default_inputs(path, program, seed=seed, plan=plan)
    elif isinstance(inputs, (str, Path)):
        arrays, source = read_inputs(Path(inputs)), {"source": "npz", "file": Path(inputs).name}
    else:
        arrays, source = [np.asarray(x) for x in inputs], {"source": "arrays"}
    n = len(program.plan(plan).inputs)
    if len(arrays) != n:
        raise ValueError(f"the program takes {n} inputs, got {len(arrays)} ({source})")
    return arrays, source


# ---- one unit ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _program(path: str, digest: str) -> pte.Program:
    """The program, read once per process (a pool worker runs many units of it)."""
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"{path} changed since the sweep started (SHA-256 differs)")
    return pte.load(data)


def _decisions(program: pte.Program, unit: Unit) -> dict[tuple[int, int], NodeDecision]:
    spec = resolve_cpu(unit.cpu, unit.svl)
    shapes = [x.shape for x in unit.inputs]
    return {(g.delegate_index, g.node_index): decide_node(g, spec) for g in gemm_nodes(program, shapes, unit.plan)}


def _key(unit: Unit, tail: str) -> str:
    svl = "-" if unit.svl is None else str(unit.svl)
    return f"{unit.program[:16]}/{unit.inputs_digest[:16]}/{unit.cpu}/{svl}/{tail}"


def _head(unit: Unit, kind: str, tail: str) -> Record:
    return {
        "key": _key(unit, tail),
        "kind": kind,
        "program": unit.program,
        "inputs": unit.inputs_digest,
        "cpu": unit.cpu,
        "svl": unit.svl,
    }


def _node_record(unit: Unit, t: NodeTrace, d: NodeDecision | None) -> Record:
    out = np.asarray(t.output)
    rec = _head(unit, "node", f"{t.delegate}:{t.index}")
    rec |= {
        "delegate": t.delegate,
        "node": t.index,
        "node_type": t.node_type,
        "emulation": t.emulation,
        "variant": None if d is None else d.variant,
        "config": None if d is None else d.config,
        "kernel": None if d is None else d.kernel,
        "operator": None if d is None else d.operator_name,
        "dtype": t.dtype,
        "shape": list(t.shape),
        "sha256": array_digest(out),
    }
    if unit.times:
        rec["seconds"] = t.seconds
    return rec


def _unit_record(unit: Unit, status: str, n: int, outputs: Sequence[NDArray[Any]], error: str | None) -> Record:
    rec = _head(unit, "unit", "outputs")
    rec |= {
        "format": FORMAT,
        "model": Path(unit.path).name,
        "input_source": dict(unit.input_source),
        "status": status,
        "error": error,
        "nodes": n,
        "outputs": [{"dtype": str(o.dtype), "shape": list(o.shape), "sha256": array_digest(o)} for o in outputs],
    }
    return rec


def run_unit(unit: Unit) -> list[Record]:
    """Run one unit: its node records in execution order, then its unit record (picklable for any pool)."""
    t0 = time.perf_counter()
    program = _program(unit.path, unit.program)
    try:
        res = Runner(program, unit.cpu, unit.svl, unit.plan).run(unit.inputs, keep_node_outputs=True)
    except (RefusedByXnnpack, NotImplementedError) as exc:
        status = "refused" if isinstance(exc, RefusedByXnnpack) else "not_implemented"
        rec = _unit_record(unit, status, 0, (), f"{type(exc).__name__}: {exc}")
    else:
        decisions = _decisions(program, unit)
        nodes = [_node_record(unit, t, decisions.get((t.delegate, t.index))) for t in res.trace]
        rec = _unit_record(unit, "ok", len(nodes), res.outputs, None)
    if unit.times:
        rec["seconds"] = time.perf_counter() - t0
    return ([] if rec["status"] != "ok" else nodes) + [rec]


# ---- the results file ----------------------------------------------------------------------------


def _ident(rec: Record) -> tuple[str, str, str, int | None]:
    return (rec["program"], rec["inputs"], rec["cpu"], rec["svl"])


def _order(rec: Record) -> tuple[Any, ...]:
    cpu = rec["cpu"]
    rank = CPU_NAMES.index(cpu) if cpu in CPU_NAMES else len(CPU_NAMES)
    last = rec["kind"] == "unit"
    return (rec["program"], rec["inputs"], rank, cpu, rec["svl"] or 0, last, rec.get("delegate", 0), rec.get("node", 0))


def _parse(path: Path) -> tuple[list[Record], bool]:
    """The records of a results file, and whether its last line was truncated."""
    lines = path.read_bytes().split(b"\n")
    truncated = lines.pop() != b""
    recs = []
    for no, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
            _ident(rec)
            if rec["kind"] not in ("node", "unit"):
                raise KeyError("kind")
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}:{no}: not a kleidiref sweep record; refusing to append to it") from None
        recs.append(rec)
    return recs, truncated


def _complete_units(recs: Sequence[Record]) -> dict[tuple[str, str, str, int | None], list[Record]]:
    """Group records by unit; keep only the units whose unit record closes all their node records."""
    groups: dict[tuple[str, str, str, int | None], list[Record]] = {}
    for rec in recs:
        groups.setdefault(_ident(rec), []).append(rec)
    done = {}
    for ident, g in groups.items():
        closing = [r for r in g if r["kind"] == "unit"]
        if len(closing) == 1 and g[-1] is closing[0] and closing[0].get("nodes") == len(g) - 1:
            done[ident] = g
    return done


def load_records(path: str | Path, *, times: bool = True) -> list[Record]:
    """The records of the complete units in a results file (``times=False``: without ``seconds``)."""
    recs, _ = _parse(Path(path))
    done = [r for g in _complete_units(recs).values() for r in g]
    return done if times else strip_times(done)


def strip_times(records: Iterable[Record]) -> list[Record]:
    """The records without their ``seconds`` fields (what differs between two runs of the same sweep)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _dumps(recs: Iterable[Record]) -> str:
    return "".join(json.dumps(r, allow_nan=False) + "\n" for r in recs)


def _rewrite(path: Path, recs: Iterable[Record]) -> None:
    """Replace the file atomically (a temporary beside it, fsynced, then renamed)."""
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(_dumps(recs))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _append(fh: TextIO, recs: Sequence[Record]) -> None:
    fh.write(_dumps(recs))  # one write per unit
    fh.flush()
    os.fsync(fh.fileno())


# ---- workers and progress ------------------------------------------------------------------------


def _pin_threads() -> None:
    """Pool-worker initializer: one BLAS thread (the environment already says so; threadpoolctl if present)."""
    for k in THREAD_ENV:
        os.environ[k] = "1"
    try:
        tpc = importlib.import_module("threadpoolctl")
    except ImportError:
        return
    tpc.threadpool_limits(1)


def _warm(path: str, digest: str) -> None:
    """Pool warm-up task: read the program in the worker before its first unit."""
    _program(path, digest)


@contextlib.contextmanager
def _process_pool(n: int, path: str, digest: str) -> Iterator[MapLike]:
    """``n`` spawned workers, each reading the program at once; the thread variables are set while they start,
    so numpy sees them at import."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update(dict.fromkeys(THREAD_ENV, "1"))
    # Note: spawn, not fork (threads and BLAS state do not survive fork) nor forkserver (its server process keeps
    # the environment it started with).
    ctx = multiprocessing.get_context("spawn")
    ex = concurrent.futures.ProcessPoolExecutor(n, mp_context=ctx, initializer=_pin_threads)
    try:
        for _ in range(n):  # each submit starts a worker while none is idle
            ex.submit(_warm, path, digest)
        yield functools.partial(ex.map, chunksize=1)
    except BaseException:
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        ex.shutdown(wait=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _mapper(workers: int | MapLike, path: str, digest: str) -> Iterator[MapLike]:
    if callable(workers):
        yield workers
    elif workers == 1:
        yield map
    else:
        with _process_pool(workers, path, digest) as m:
            yield m


class _Progress:
    """``sweep 3/16 units, 12 s, ~52 s left`` on one stderr line, rewritten in place."""

    def __init__(self, total: int, done: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.done, self.stream, self.enabled = total, done, stream, enabled
        self.start, self.ran = time.monotonic(), 0
        self._show("")

    def advance(self, label: str) -> None:
        self.done += 1
        self.ran += 1
        self._show(label)

    def _show(self, label: str) -> None:
        if not self.enabled:
            return
        el = time.monotonic() - self.start
        left = f", ~{el / self.ran * (self.total - self.done):.0f} s left" if self.ran else ""
        self.stream.write(f"\rsweep {self.done}/{self.total} units, {el:.0f} s{left} {label}".ljust(79))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# ---- the sweep -----------------------------------------------------------------------------------


def _names(value: str | Iterable[str], what: str) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [s.strip() if isinstance(s, str) else s for s in items]
    if not items:
        raise ValueError(f"no {what} given")
    if len(set(items)) != len(items):
        raise ValueError(f"a {what} is listed twice: {items}")
    return items


def _check_cpus(cpus: str | Iterable[str]) -> list[tuple[str, bool]]:
    """Each CPU name with whether it has SME (``resolve_cpu`` raises ValueError for an unknown name)."""
    out = []
    for c in _names(cpus, "CPU"):
        if not isinstance(c, str):
            raise TypeError(f"a CPU is a name of {', '.join(CPU_NAMES)} or a .json path, got {c!r}")
        out.append((c, resolve_cpu(c).target.has_sme))
    return out


def _check_svls(svls: int | str | Iterable[int]) -> list[int]:
    """Each SVL as ``targets.validate_svl`` checks it: a power of two from 128 to 2048 bits (SME's rule)."""
    items: list[Any] = [svls] if isinstance(svls, int) else _names(svls, "SVL")  # type: ignore[arg-type]
    out = []
    for s in items:
        if isinstance(s, str):
            try:
                s = int(s)
            except ValueError:
                raise ValueError(f"SVL {s!r} is not a number of bits") from None
        out.append(validate_svl(s))
    if len(set(out)) != len(out):
        raise ValueError(f"an SVL is listed twice: {out}")
    return out


def _check_workers(workers: int | MapLike) -> int | MapLike:
    if callable(workers):
        return workers
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int >= 1 or a map-like callable, got {type(workers).__name__}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1 (the number of processes), got {workers}")
    return workers


def _units(
    path: Path,
    digest: str,
    cpus: Sequence[tuple[str, bool]],
    svls: Sequence[int],
    inputs: tuple[Sequence[NDArray[Any]], Mapping[str, Any]],
    times: bool,
    plan: str,
) -> list[Unit]:
    arrays, source = inputs
    ind = _inputs_digest(arrays)
    out = []
    for cpu, sme in cpus:
        for s in svls if sme else [None]:
            out.append(Unit(str(path.resolve()), digest, tuple(arrays), ind, source, cpu, s, times, plan))
    return out


def _resume(out: Path | None) -> dict[tuple[str, str, str, int | None], list[Record]]:
    """The complete units already in ``out``; a truncated or partial tail is dropped (the file rewritten)."""
    if out is None or not out.exists():
        return {}
    recs, truncated = _parse(out)
    done = _complete_units(recs)
    if truncated or sum(len(g) for g in done.values()) != len(recs):
        _rewrite(out, sorted((r for g in done.values() for r in g), key=_order))
    return done


def sweep(
    path: str | Path,
    cpus: str | Iterable[str] = DEFAULT_CPUS,
    svls: int | str | Iterable[int] = DEFAULT_SVLS,
    *,
    inputs: str | Path | Sequence[NDArray[Any]] | None = None,
    out: str | Path | None = None,
    workers: int | MapLike = 1,
    progress: bool | None = None,
    seed: int = 0,
    times: bool = True,
    plan: str = "forward",
) -> list[Record]:
    """Run the program at ``path`` on every CPU of ``cpus`` (each SME CPU at every SVL of ``svls``).

    ``inputs``: an ``.npz`` with ``input_0``, ... or the arrays; default the ``MODEL.io.npz`` beside the program,
    else random inputs seeded with ``seed`` (each unit record says which). ``out``: a JSON-lines file, appended
    unit by unit and resumed (units already complete in it are not rerun). ``workers``: an int (processes) or a
    map-like callable (see the module docstring). ``progress``: a progress line on stderr (default: when stderr
    is a terminal). ``times=False`` leaves the ``seconds`` fields out. Returns the records of the swept units
    (resumed ones included) in the file's order.
    """
    cpu_list = _check_cpus(cpus)
    svl_list = _check_svls(svls)
    pool = _check_workers(workers)
    src = Path(path)
    where = str(src.resolve())
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = None if out is None else Path(out)
    with contextlib.ExitStack() as stack:
        # Note: a pool starts first, its workers importing kleidiref and reading the program while this process
        # reads it and the inputs (the start-up is what keeps 2 workers from twice the speed).
        m = stack.enter_context(_mapper(pool, where, digest))
        program = _program(where, digest)  # cached: in-process units reuse it
        program.plan(plan)
        units = _units(src, digest, cpu_list, svl_list, _resolve_inputs(src, program, inputs, seed, plan), times, plan)
        done = _resume(dest)
        # Note: units without SVL (generic XNNPACK kernels, the slowest to emulate: 2.6x an SME unit for x86 here)
        # go first, so that no worker is left with the longest unit at the end; the file's order does not change.
        todo = sorted((u for u in units if u.ident not in done), key=lambda u: u.svl is not None)
        bar = _Progress(
            len(units), len(units) - len(todo), sys.stderr, sys.stderr.isatty() if progress is None else progress
        )
        stack.callback(bar.close)
        fh = None if dest is None else stack.enter_context(dest.open("a", encoding="utf-8"))
        new: dict[tuple[str, str, str, int | None], list[Record]] = {}
        for recs in m(run_unit, todo):
            if fh is not None:
                _append(fh, recs)
            new[_ident(recs[-1])] = recs
            bar.advance(f"{recs[-1]['cpu']} {recs[-1]['svl'] or ''}")
    every = {**done, **new}
    if dest is not None:
        _rewrite(dest, sorted((r for g in every.values() for r in g), key=_order))
    return sorted((r for u in units for r in every[u.ident]), key=_order)


# ---- the command line ----------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Add ``sweep`` to the CLI's subparsers."""
    p = sub.add_parser(
        "sweep",
        help="run a .pte on every (CPU, SVL): per node what ran and its output digest, as resumable JSON lines",
        description="Run MODEL.pte on every CPU (each SME CPU at every SVL) and write one JSON line per node "
        "and per run: the dispatcher's decision, the kernel, the output's SHA-256 and the time (docs/run.md).",
    )
    p.add_argument("model", type=Path, metavar="MODEL.pte")
    p.add_argument("--cpu", action="append", help=f"comma-separated, of {', '.join(CPU_NAMES)} or .json files "
                   f"(repeatable; default {','.join(DEFAULT_CPUS)})")  # fmt: skip
    p.add_argument("--svl", default=",".join(map(str, DEFAULT_SVLS)), help="comma-separated SVLs in bits of the "
                   "SME CPUs (default %(default)s)")  # fmt: skip
    p.add_argument("--inputs", type=Path, help=".npz with input_0, ... (default: <model>.io.npz, else random)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--out", type=Path, help="JSON-lines results file, resumed if it exists (default: stdout)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--no-times", action="store_true", help="leave out the seconds (files comparable byte for byte)")
    p.add_argument("--no-progress", action="store_true", help="no progress line (default: on when stderr is a tty)")


def cli_main(args: argparse.Namespace) -> int:
    """``kleidiref sweep``: exit 0 when every unit ran or was refused, 2 on bad arguments or unreadable files."""
    cpus = [c for arg in (args.cpu or [",".join(DEFAULT_CPUS)]) for c in arg.split(",") if c]
    try:
        recs = sweep(
            args.model,
            cpus,
            args.svl,
            inputs=args.inputs,
            out=args.out,
            workers=args.workers,
            progress=False if args.no_progress else None,
            seed=args.seed,
            times=not args.no_times,
        )
    except (ValueError, TypeError, OSError) as exc:
        print(f"kleidiref sweep: {exc}", file=sys.stderr)
        return 2
    units = [r for r in recs if r["kind"] == "unit"]
    if args.out is None:
        sys.stdout.write(_dumps(recs))
    statuses = {s: sum(u["status"] == s for u in units) for s in ("ok", "refused", "not_implemented")}
    src = units[0]["input_source"] if units else {}
    print(
        f"kleidiref sweep: {len(units)} runs ({', '.join(f'{v} {k}' for k, v in statuses.items())}), "
        f"{len(recs) - len(units)} node records; inputs: {json.dumps(src)}" + (f" -> {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 0
