"""Benchmark the IGEMM (Conv2d) path of pf32, pf16 and pqs8 against float64 BLAS on the im2col GEMM.

A plain script (not a test)::

    python benchmarks/bench_igemm.py [--repeat 7] [--rounds 3] [--svl 512] [--no-fz] [--quick]
                                     [--variants pf32,pf16,pqs8]

Each case times the prepared operator's call (``op = prepare_conv2d(filter, bias, ...)`` once,
then ``op(input)``: what XNNPACK runs per inference once ``xnn_create_convolution2d_nhwc_*`` has
packed the weights, as the GEMM benchmarks time kernels on pre-packed weights; default fast path:
im2col gather and the kernels' arithmetic, bit-identical to the kernel path) and, in the same run
and interleaved, a float64 BLAS GEMM of the equivalent im2col problem (``[M, KH*KW*Cin] @
[KH*KW*Cin, Cout]``, both operands built and converted beforehand, so the baseline is the bare
GEMM). Reported per case: best-of times, the ratio of the best times (operator call / BLAS) and
the median of the per-repeat ratios (each repeat times both, back to back); for comparison the
one-shot ``conv2d`` (argument checks and weight preparation on every call), the kernel path
(``conv2d(..., fast=False)``: indirection buffer, imatmul LHS packing, weight packing, the MOPA
kernel object), the same variant's plain ``gemm`` on the equivalent (per-tap padded) im2col
matrix, and the tracemalloc peak of one operator call (scratch buffers kept between calls are not
counted once warm). ``--rounds`` repeats the whole suite and ends with, per case and for the
MobileNetV2-like set, the ratio of the best times over all rounds and the median of the per-round
ratios.

Shapes: the MobileNetV2 stem (224x224x3 -> 32, stride 2) and full 3x3 convolutions at the
resolutions/widths of MobileNetV2's stages (MobileNetV2's own 3x3 convolutions after the stem are
depthwise, which XNNPACK runs with dwconv kernels, not IGEMM), and the ResNet basic-block 3x3
56x56x64 -> 64. Batch 1, padding 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from _common import best_of, interleaved, machine, peak_bytes

from kleidiref.targets import Target
from kleidiref.variants import igemm as ig
from kleidiref.variants import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm
from kleidiref.variants.igemm.configs import CONFIGS

#: (label, H, W, Cin, Cout, stride)
MOBILENET_V2_LIKE = [
    ("mnv2 stem 224x224x3->32 s2", 224, 224, 3, 32, 2),
    ("mnv2-like 56x56x24->24", 56, 56, 24, 24, 1),
    ("mnv2-like 28x28x32->32", 28, 28, 32, 32, 1),
    ("mnv2-like 14x14x64->64", 14, 14, 64, 64, 1),
    ("mnv2-like 14x14x96->96", 14, 14, 96, 96, 1),
    ("mnv2-like 7x7x160->160", 7, 7, 160, 160, 1),
]
RESNET = [("resnet 56x56x64->64", 56, 56, 64, 64, 1)]


def _interleaved(fn_a: Callable[[], Any], fn_b: Callable[[], Any], repeat: int) -> tuple[list[float], list[float]]:
    """Times of ``fn_a`` and ``fn_b``, measured alternately (shared-machine noise hits both)."""
    return interleaved(fn_a, fn_b, repeat)


def _best(fn: Callable[[], Any], repeat: int) -> float:
    return best_of(fn, repeat)[0]


class Case:
    """One convolution of one variant, with its float64 im2col GEMM baseline."""

    def __init__(
        self, variant: str, label: str, h: int, w: int, cin: int, cout: int, stride: int, target: Target, seed: int = 0
    ) -> None:
        rng = np.random.default_rng(seed)
        self.variant, self.label, self.target = variant, label, target
        self.kw: dict[str, Any] = {
            "variant": variant,
            "stride": (stride, stride),
            "padding": (1, 1, 1, 1),
            "target": target,
        }
        pad_value: float = 0.0
        if variant == "pqs8":
            self.x: Any = rng.integers(-128, 128, (1, h, w, cin), dtype=np.int8)
            self.f: Any = rng.integers(-127, 128, (cout, 3, 3, cin), dtype=np.int8)
            self.b: Any = rng.integers(-1000, 1000, cout).astype(np.int32)
            self.kw.update(
                input_zero_point=3,
                requant_scale=(rng.random(cout) * 1e-3 + 1e-4).astype(np.float32),
                output_zero_point=-2,
            )
            pad_value = 3
        else:
            dt = np.float32 if variant == "pf32" else np.float16
            self.x = rng.standard_normal((1, h, w, cin)).astype(dt)
            self.f = rng.standard_normal((cout, 3, 3, cin)).astype(dt)
            self.b = rng.standard_normal(cout).astype(dt)
        self.geom = ig.conv_geometry(h, w, 3, 3, stride=(stride, stride), padding=(1, 1, 1, 1))
        self.a64 = ig.im2col(self.x, self.geom, pad_value).astype(np.float64)  # [M, 9*Cin]
        self.w64 = np.ascontiguousarray(self.f.reshape(cout, -1).T.astype(np.float64))
        cfg = CONFIGS[variant]
        self.shape = f"M={self.geom.m} K={9 * cin} N={cout}"
        self.op = ig.prepare_conv2d(self.f, self.b, **self.kw)  # the weights prepared once
        # The same variant's plain GEMM on the (per-tap padded) im2col matrix: same kernel, same K.
        kr = cfg.kr
        self._a_gemm = ig.im2col(self.x, self.geom, pad_value, kc_pad_to=kr)
        kcp = -(-cin // kr) * kr
        fp = np.zeros((cout, 9, kcp), dtype=self.f.dtype)
        fp[:, :, :cin] = self.f.reshape(cout, 9, cin)
        self._w_gemm = fp.reshape(cout, -1)

    def run_gemm(self) -> None:
        """The variant's GEMM entry (``gemm``: packs both operands, runs the MOPA kernel)."""
        t = self.target
        if self.variant == "pqs8":
            q = {k: self.kw[k] for k in ("input_zero_point", "requant_scale", "output_zero_point")}
            pqs8_qc8w_gemm.gemm(self._a_gemm, self._w_gemm, bias=self.b, target=t, **q)
        else:
            mod: Any = pf32_gemm if self.variant == "pf32" else pf16_gemm
            mod.gemm(self._a_gemm, self._w_gemm, bias=self.b, target=t, kernel=mod.SME2_MOPA.name)

    def run(self) -> None:
        """The prepared operator's call: the per-inference work."""
        self.op(self.x)

    def run_oneshot(self) -> None:
        """``conv2d``: checks, weight preparation and the call, every time."""
        ig.conv2d(self.x, self.f, self.b, **self.kw)

    def run_base(self) -> None:
        _ = self.a64 @ self.w64

    def run_kernel_path(self) -> None:
        """The kernel path: indirection buffer, imatmul packers, the MOPA kernel object."""
        ig.conv2d(self.x, self.f, self.b, fast=False, **self.kw)


Times = dict[tuple[str, str], tuple[list[float], list[float]]]


def _run_suite(args: argparse.Namespace, target: Target) -> Times:
    """One round: the per-case table; returns every case's interleaved (emulation, BLAS) times."""
    shapes = RESNET if args.quick else MOBILENET_V2_LIKE + RESNET
    head = (
        f"{'variant':<6} {'case':<28} {'shape':<22} {'op ms':>8} {'BLAS ms':>8} {'ratio':>6} "
        f"{'median':>6} {'conv2d ms':>9} {'kernel path ms':>14} {'GEMM ms':>8} {'peak MiB':>9}"
    )
    print(head)
    print("-" * len(head))
    times: Times = {}
    oneshots: dict[tuple[str, str], float] = {}
    for variant in args.variants.split(","):
        for label, h, w, cin, cout, stride in shapes:
            c = Case(variant, label, h, w, cin, cout, stride, target)
            c.run()  # warm-up
            emu, base = _interleaved(c.run, c.run_base, args.repeat)
            oneshot = _best(c.run_oneshot, args.repeat)
            kpath = _best(c.run_kernel_path, max(1, args.repeat // 2))
            gemm = _best(c.run_gemm, max(1, args.repeat // 2))
            peak = peak_bytes(c.run)
            times[variant, label] = (emu, base)
            oneshots[variant, label] = oneshot
            med = statistics.median(e / b for e, b in zip(emu, base, strict=True))
            print(
                f"{variant:<6} {label:<28} {c.shape:<22} {min(emu) * 1e3:>8.3f} {min(base) * 1e3:>8.3f} "
                f"{min(emu) / min(base):>6.2f} {med:>6.2f} {oneshot * 1e3:>9.3f} {kpath * 1e3:>14.2f} "
                f"{gemm * 1e3:>8.2f} "
                f"{peak / 2**20:>9.1f}"
            )
    for variant in args.variants.split(","):
        mine = [v for (var, label), v in times.items() if var == variant and label.startswith("mnv2")]
        if mine:
            emu_b, base_b = sum(min(e) for e, _ in mine), sum(min(b) for _, b in mine)
            one_b = sum(v for (var, label), v in oneshots.items() if var == variant and label.startswith("mnv2"))
            print(
                f"{variant:<6} {'mnv2-like set (sum of bests)':<28} {'':<22} {emu_b * 1e3:>8.3f} "
                f"{base_b * 1e3:>8.3f} {emu_b / base_b:>6.2f} {'':>6} {one_b * 1e3:>9.3f}"
            )
    return times


def _summary(rounds: list[Times]) -> None:
    """Over all rounds: best emulation time / best BLAS time per case and for the set, and the
    median over rounds of each round's ratio (load spikes inflate single rounds either way)."""
    print(f"\nsummary over {len(rounds)} rounds: ratio of the best times of all rounds; median of the per-round ratios")
    variants = sorted({v for r in rounds for v, _ in r}, key=["pf32", "pf16", "pqs8"].index)
    for variant in variants:
        labels = [label for v, label in rounds[0] if v == variant]
        set_e = set_b = 0.0
        set_rounds = [[0.0, 0.0] for _ in rounds]
        for label in labels:
            e = min(min(r[variant, label][0]) for r in rounds)
            b = min(min(r[variant, label][1]) for r in rounds)
            per_round = [min(r[variant, label][0]) / min(r[variant, label][1]) for r in rounds]
            print(
                f"{variant:<6} {label:<28} {e * 1e3:>8.3f} ms / {b * 1e3:>7.3f} ms: best {e / b:>6.2f}  "
                f"median {statistics.median(per_round):>6.2f}"
            )
            if label.startswith("mnv2"):
                set_e, set_b = set_e + e, set_b + b
                for i, r in enumerate(rounds):
                    set_rounds[i][0] += min(r[variant, label][0])
                    set_rounds[i][1] += min(r[variant, label][1])
        if set_b:
            med = statistics.median(e / b for e, b in set_rounds)
            print(
                f"{variant:<6} {'mnv2-like set':<28} {set_e * 1e3:>8.3f} ms / {set_b * 1e3:>7.3f} ms: "
                f"best {set_e / set_b:>6.2f}  median {med:>6.2f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="interleaved repeats per case")
    ap.add_argument("--rounds", type=int, default=1, help="run the whole suite this many times")
    ap.add_argument("--svl", type=int, default=512)
    ap.add_argument("--no-fz", action="store_true", help="run with FPCR.FZ clear (default: set, as XNNPACK)")
    ap.add_argument("--quick", action="store_true", help="only the ResNet convolution")
    ap.add_argument("--variants", default="pf32,pf16,pqs8")
    args = ap.parse_args()
    target = Target(svl_bits=args.svl, flush_to_zero=not args.no_fz)
    print(f"SVL {args.svl}, FZ {'off' if args.no_fz else 'on'}, {args.repeat} interleaved repeats; {machine()}")
    rounds: list[Times] = []
    for r in range(args.rounds):
        if args.rounds > 1:
            print(f"\nround {r + 1} of {args.rounds}")
        rounds.append(_run_suite(args, target))
    if args.rounds > 1:
        _summary(rounds)


if __name__ == "__main__":
    main()
