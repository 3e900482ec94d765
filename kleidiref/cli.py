"""The ``kleidiref`` command line.

``kleidiref selfcheck``                       reproduce the bundled golden vectors, print a table
``kleidiref golden check PATH...``            reproduce and compare files or directories
``kleidiref golden reproduce --out-dir D F..`` write the recomputed arrays to D/<same name>
``kleidiref explain [--json] CASE.json...``   XNNPACK's dispatch decision for each node (docs/dispatch.md)
``kleidiref layout|where ...``                 SME tiling from the real kernels (docs/sme-tiling.md)
``kleidiref inspect [--cpu C]... [--json] P.pte`` per node of a real program, what XNNPACK runs (docs/inspect.md)
``kleidiref sweep P.pte [--cpu ..] [--svl ..]``  every (node, CPU, SVL): decision, kernel, output digest (docs/run.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, dispatch, golden, inspection, pte, runner
from .sweep import add_parser as add_sweep_parser
from .sweep import cli_main as sweep_main
from .teach import cli as teach_cli

__all__ = ["CASE_HELP", "main"]

#: ``kleidiref explain --help``: the CASE.json contract (parsed by kleidiref.dispatch.parse_case).
CASE_HELP = """\
A CASE.json file describes one XNNPACK node and the CPU it runs on:

  {"target": {"arch": "arm64", "kleidiai": true, "sme2": true, "sme": true, "i8mm": true,
              "dotprod": true, "fp16_arith": true, "svl_bits": 512},
   "node": {"op": "fully_connected",
            "input":  {"dtype": "qdint8", "shape": [1, 2048]},
            "filter": {"dtype": "qcint8", "shape": [512, 2048], "static": true},
            "bias":   {"dtype": "fp32", "shape": [512]},
            "output": {"dtype": "fp32", "shape": [1, 512]},
            "flags": []}}

target (required: arch, kleidiai, sme2, sme, i8mm, dotprod, fp16_arith, svl_bits)
  arch          "arm64" or "x86_64"
  kleidiai      XNNPACK built with KleidiAI (XNN_ENABLE_KLEIDIAI)
  sme2, sme, i8mm, dotprod, fp16_arith
                the CPU features XNNPACK's hardware config detects (true/false)
  svl_bits      streaming vector length in bits (128..2048); may be omitted, null or 0
                when sme2 and sme are false
  flush_to_zero optional, default true (XNNPACK runs with FPCR.FZ = FZ16 = 1)
  platform      optional, "linux" (default; Linux/Android builds) or "apple" (iOS/macOS)
  name          optional label
  x86_isa       optional, x86_64 only: "avx512fp16", "avx512skx", "avx2" (default), "fma3",
                "avx" or "sse41" (the best rung of XNNPACK's x86 config ladders the CPU reaches)
node
  op            "fully_connected", "convolution_2d" or "batch_matrix_multiply"
  input, filter, output (required), bias (optional): tensors with
    dtype       fp32 fp16 bf16 qint8 quint8 qcint8 qdint8 qbint4 qcint4 qint32 qcint32
    shape       list of ints (fully_connected: input [.., K], filter [N, K], output [.., N])
    static      optional, true for weights known at creation (packed once)
    zero_point, scale, block_size
                optional quantization parameters; when given, XNNPACK's creation checks run
                (qs8 requantization scale < 256, qbint4 bf16 scales normal and > 0, bl % 32)
  flags         optional list: "transpose_weights" (fully_connected filter [K, N]),
                "transpose_b" (batch_matrix_multiply input2 [.., N, K])
  convolution   for convolution_2d: {"kernel": [kh, kw], "stride": [1, 1],
                "dilation": [1, 1], "padding": [top, left, bottom, right], "groups": 1}
For batch_matrix_multiply, input is input1 [.., M, K] and filter is input2 [.., K, N].
More in docs/dispatch.md.
"""


def _check(paths: Sequence[str | Path]) -> int:
    results = golden.check_paths(paths)
    if not results:
        print("no golden files found", file=sys.stderr)
        return 2
    print(golden.format_table(results))
    return 0 if all(r.ok for r in results) else 1


def _reproduce(out_dir: Path, files: Sequence[str]) -> int:
    """Write each file's recomputed golden file to ``out_dir``: exit 1 if any failed, 2 on usage errors."""
    if out_dir.exists() and not out_dir.is_dir():
        print(f"--out-dir {out_dir}: exists and is not a directory", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for f in files:
        target = out_dir / Path(f).name
        if target.resolve() == Path(f).resolve():
            print(f"{f}: refusing to overwrite the input file (choose another --out-dir)", file=sys.stderr)
            status = 1
            continue
        try:
            arrays = golden.reproduced_golden_file(f)
        except (NotImplementedError, ValueError, TypeError, KeyError) as exc:
            print(f"{f}: {exc}", file=sys.stderr)
            status = 1
            continue
        tmp = target.with_name(f".{target.name}.partial")
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        tmp.replace(target)  # never leave a half-written golden file
        print(f"{target}: {len(arrays)} arrays")
    return status


def _explain(files: Sequence[str], as_json: bool) -> int:
    """One decision per CASE file, in order; exit 0 when every file parsed (rejections included).

    ``--json``: one object per line, ``{"variant", "config", "microkernel", "kernel", "reasons"}``
    or ``{"error": "..."}`` (a node XNNPACK rejects, or a CASE that cannot be read); exit 2 if any
    CASE file was malformed.
    """
    status = 0
    for i, f in enumerate(files):
        try:
            node, tgt, platform = dispatch.load_case(f)
        # Note: one bad CASE never stops the others: whatever it raises is reported and the run goes on.
        except (dispatch.CaseError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            status = 2
            if as_json:
                print(json.dumps({"error": f"invalid CASE {f}: {exc}"}), flush=True)
            else:
                print(f"{f}: invalid CASE: {exc}", file=sys.stderr)
            continue
        try:
            d = dispatch.decide(node, tgt, platform=platform)
        except dispatch.NodeRejected as exc:
            if as_json:
                print(json.dumps({"error": exc.message}), flush=True)
            else:
                print(f"{'' if i == 0 else chr(10)}{f}: XNNPACK rejects this node")
                print(f"  error: {exc.message}")
                if exc.reasons:
                    print("  rules applied before the refusal:")
                    for r in exc.reasons:
                        print(f"    - {r}")
            continue
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            status = 2
            if as_json:
                print(json.dumps({"error": f"invalid CASE {f}: {exc}"}), flush=True)
            else:
                print(f"{f}: invalid CASE: {exc}", file=sys.stderr)
            continue
        if as_json:
            print(json.dumps(d.to_json()), flush=True)
        else:
            print(f"{'' if i == 0 else chr(10)}{f}")
            print(d.describe())
    return status


def _observed(path: str) -> list[str]:
    data = Path(path).read_bytes()
    obj: object
    if pte.is_etdump(data):
        obj = pte.load_etdump(data)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: neither an ETDump (.etdp) nor a UTF-8 list of operator names") from exc
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = text
    return inspection.observed_operator_names(obj)


def _inspect(args: argparse.Namespace) -> int:
    """Inspect each program; exit 1 if ``--etdump`` names differ, 2 on unreadable input."""
    cpus = args.cpu or ["sme2"]
    try:
        observed = None if args.etdump is None else _observed(args.etdump)
        results = [inspection.inspect(f, cpus, svl=args.svl) for f in args.programs]
    except (OSError, ValueError) as exc:  # PteError is a ValueError
        print(f"kleidiref inspect: {exc}", file=sys.stderr)
        return 2
    status = 0
    for i, r in enumerate(results):
        if args.json:
            print(json.dumps(r.to_json()), flush=True)
        else:
            print(("\n" if i else "") + r.table(reasons=not args.no_reasons))
        if observed is not None:
            diffs = inspection.compare_operator_names(r.operator_names(r.cpus[0]), observed)
            status |= 1 if diffs else 0
            head = f"--etdump {args.etdump} vs [{r.cpus[0]}]: "
            print(head + (f"{len(diffs)} difference(s)" if diffs else "all operator names match"), file=sys.stderr)
            for d in diffs:
                print("  " + d, file=sys.stderr)
    return status


def _add_inspect(sub: Any) -> None:
    ins = sub.add_parser("inspect", help="which XNNPACK operator / KleidiAI kernel runs each node of a .pte")
    ins.add_argument("programs", nargs="+", metavar="MODEL.pte")
    ins.add_argument(
        "--cpu",
        action="append",
        help=f"{', '.join(inspection.CPU_NAMES)} or a CPU .json (repeat for a side-by-side table; default sme2)",
    )
    ins.add_argument("--svl", type=int, default=None, help="SVL in bits of SME CPUs (default 512)")
    ins.add_argument("--json", action="store_true", help="one JSON object per program (docs/inspect.md)")
    ins.add_argument("--no-reasons", action="store_true", help="the table only")
    ins.add_argument(
        "--etdump",
        metavar="FILE",
        help="what a real run recorded, to compare with the first --cpu: an ETDump file (.etdp) or operator "
        "names (JSON list, {operator_names: [...]}, or one per line)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    desc = __doc__.splitlines()[0] if __doc__ else None
    parser = argparse.ArgumentParser(prog="kleidiref", description=desc)
    parser.add_argument("--version", action="version", version=f"kleidiref {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selfcheck", help="reproduce every bundled golden vector bit-exactly")
    g = sub.add_parser("golden", help="golden-vector tools")
    gsub = g.add_subparsers(dest="gcmd", required=True)
    gc = gsub.add_parser("check", help="reproduce golden files and compare them")
    gc.add_argument("paths", nargs="+", help=".npz files or directories")
    gr = gsub.add_parser("reproduce", help="write recomputed arrays under the golden field names")
    gr.add_argument("--out-dir", required=True, type=Path)
    gr.add_argument("files", nargs="+")
    ex = sub.add_parser(
        "explain",
        help="which XNNPACK kernel runs a node on a target, and why",
        description="Which XNNPACK kernel runs each CASE.json node on its target, and why.",
        epilog=CASE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("--json", action="store_true", help="one JSON object per CASE file, one per line")
    ex.add_argument("cases", nargs="+", metavar="CASE.json")
    teach_cli.add_parsers(sub)
    _add_inspect(sub)
    runner.add_parser(sub)
    add_sweep_parser(sub)
    args = parser.parse_args(argv)
    if args.cmd == "inspect":
        return _inspect(args)
    if args.cmd in teach_cli.VERBS:
        return teach_cli.run(args)
    if args.cmd == "run":
        return runner.cli_main(args)
    if args.cmd == "sweep":
        return sweep_main(args)
    if args.cmd == "explain":
        return _explain(args.cases, args.json)
    if args.cmd == "selfcheck":
        return _check([golden.bundled_golden_dir()])
    if args.gcmd == "check":
        return _check(args.paths)
    return _reproduce(args.out_dir, args.files)


if __name__ == "__main__":
    raise SystemExit(main())
