"""The teaching verbs of the ``kleidiref`` command: ``layout``, ``where`` (and ``trace``, ``why``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .views import (
    indirection_text,
    layout_picture,
    layout_text,
    svl_table,
    trace_page,
    trace_picture,
    trace_text,
    where,
    why_text,
)

__all__ = ["VERBS", "add_parsers", "run"]

VERBS = ("layout", "where", "trace", "why")


def _pair(text: str) -> tuple[int, int]:
    a, _, b = text.partition(",")
    try:
        return int(a), int(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two integers 'i,j', got {text!r}") from None


def _svls(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SVL bits like 512 or 256,512, got {text!r}") from None


def _problem(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "kernel", metavar="VARIANT|KERNEL", help="a variant (pf32_gemm ...) or an exact KleidiAI kernel name"
    )
    p.add_argument("--svl", type=_svls, default=[512], help="SVL in bits; several (256,512) side by side")
    p.add_argument("--m", type=int, default=3)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--bl", type=int, default=32, help="quant block length (qb4w)")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the teaching verbs to the command's subparsers."""
    lay = sub.add_parser("layout", help="the packed LHS/RHS of a problem, byte by byte, and the name grammar")
    _problem(lay)
    lay.add_argument("--format", choices=["text", "svg", "html"], default="text")
    lay.add_argument("--max-lines", type=int, default=200, help="lines per operand map")
    lay.add_argument("--conv", metavar="H,W,CIN,KH,KW", help="IGEMM: the indirection of a padded (1) convolution")
    wh = sub.add_parser("where", help="packed byte -> element, or element -> packed bytes")
    _problem(wh)
    wh.add_argument("--lhs-offset", type=int)
    wh.add_argument("--rhs-offset", type=int)
    wh.add_argument("--element", type=_pair, metavar="M,K", help="LHS element (row m, k)")
    wh.add_argument("--rhs-element", type=_pair, metavar="N,K", help="RHS element (column n, k)")
    wh.add_argument("--format", choices=["text", "svg", "html"], default="text", help="svg/html: the bytes outlined")
    add_trace_parsers(sub)


def _layout(args: argparse.Namespace) -> str:
    if len(args.svl) > 1:
        return svl_table(args.kernel, args.svl, m=args.m, n=args.n, k=args.k, bl=args.bl) + "\n"
    if args.conv:
        h, w, cin, kh, kw = (int(x) for x in args.conv.split(","))
        return indirection_text(args.kernel, svl=args.svl[0], h=h, w=w, cin=cin, kh=kh, kw=kw)
    if args.format != "text":
        return layout_picture(args.kernel, svl=args.svl[0], m=args.m, n=args.n, k=args.k, bl=args.bl, fmt=args.format)
    colour = sys.stdout.isatty()
    return layout_text(
        args.kernel, svl=args.svl[0], m=args.m, n=args.n, k=args.k, bl=args.bl, colour=colour, max_lines=args.max_lines
    )


def _where(args: argparse.Namespace) -> str:
    asks = (args.lhs_offset, args.rhs_offset, args.element, args.rhs_element)
    if all(a is None for a in asks):
        raise ValueError("where: give --lhs-offset, --rhs-offset, --element or --rhs-element")
    return where(
        args.kernel,
        svl=args.svl[0],
        m=args.m,
        n=args.n,
        k=args.k,
        bl=args.bl,
        lhs_offset=args.lhs_offset,
        rhs_offset=args.rhs_offset,
        element=args.element,
        rhs_element=args.rhs_element,
        fmt=args.format,
    ) + ("\n" if args.format == "text" else "")


def _traced(args: argparse.Namespace) -> dict[str, Any]:
    """The traced problem as ``trace``, ``why`` and their pictures take it (one SVL)."""
    return {
        "svl": args.svl[0],
        "m": args.m,
        "n": args.n,
        "k": args.k,
        "seed": args.seed,
        "inputs": args.inputs,
        "bl": args.bl,
    }


def _picture(args: argparse.Namespace, element: tuple[int, int] | None) -> str:
    return trace_picture(args.kernel, **_traced(args), element=element)


def _trace(args: argparse.Namespace) -> str:
    if args.format == "svg":
        return _picture(args, None)
    if args.format == "html":
        return trace_page(args.kernel, **_traced(args))
    return trace_text(args.kernel, **_traced(args), rows=args.rows, cols=args.cols, hexa=args.hex)


def _why(args: argparse.Namespace) -> str:
    i, j = args.element
    if args.format == "svg":  # the trace strip with C[i, j] outlined in every panel
        return _picture(args, (i, j))
    if args.format == "html":  # the trace page; hovering C[i, j] shows its provenance
        return trace_page(args.kernel, **_traced(args))
    return why_text(args.kernel, **_traced(args), i=i, j=j)


def run(args: argparse.Namespace) -> int:
    """Run one teaching verb: 0, or 2 with the reason on stderr for a bad request."""
    try:
        text = {"layout": _layout, "where": _where, "trace": _trace, "why": _why}[args.cmd](args)
    except ValueError as exc:
        print(f"kleidiref {args.cmd}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def add_trace_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``trace`` and ``why``: the k loop on real data, and one output's provenance."""
    for verb, helptext in (
        ("trace", "the kernel's k loop step by step with the bit-exact accumulator contents"),
        ("why", "one output's packed bytes, ZA place, k order and rounding events"),
    ):
        p = sub.add_parser(verb, help=helptext)
        _problem(p)
        p.add_argument("--inputs", metavar="FILE.npz", help="a golden file (its packed operands and epilogue)")
        p.add_argument("--seed", type=int, default=0, help="seeded random operands packed by the kernel's layouts")
        p.add_argument("--hex", action="store_true", help="values with their bits in hex")
        p.add_argument("--rows", type=int, default=4)
        p.add_argument("--cols", type=int, default=6)
        p.add_argument(
            "--format",
            choices=["text", "svg", "html"],
            default="text",
            help="svg: one picture, a heat-map panel per k step; html: one self-contained page",
        )
        if verb == "why":
            p.add_argument("--element", type=_pair, metavar="I,J", required=True, help="the output C[i, j]")
