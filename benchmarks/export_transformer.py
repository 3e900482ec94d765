"""Export the transformer-sized MLP programs ``bench_program.py`` runs (NOT part of kleidiref).

Runs only in a separate environment with torch 2.13.0, executorch 1.5.1 and torchao 0.18.0 (the
versions of the shared programs); kleidiref, its tests and its other benchmarks never import it:

    /path/to/exportenv/bin/python benchmarks/export_transformer.py OUTDIR [--hidden 2048] [--tokens 32 128]

writes ``OUTDIR/mlp_h<H>_m<M>__<recipe>.pte`` and ``.io.npz`` (``input_0``: the seeded input; ``eager_output_0``:
the eager model's output) for each M and each recipe:

* ``fp32``: the float model;
* ``ao_8da4w_g32``: torchao ``Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
  weight_granularity=PerGroup(32))``, as the shared programs' recipe of that name.

The model is a transformer MLP block of four linears, H -> 2H -> H -> 2H -> H, each followed by a ReLU
(fused by XNNPACK into the FC's output clamp, so the delegate holds only GEMMs and their converts). Lowered with
``torch.export.export`` -> ``to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])`` ->
``to_executorch()``; weights seeded with ``torch.manual_seed(0)``, inputs with a ``torch.Generator`` seeded 1234.
"""

# mypy: ignore-errors
# (torch, executorch and torchao are not installed where kleidiref is checked: mypy cannot follow them.)

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower

RECIPES = ("fp32", "ao_8da4w_g32")


class Mlp(torch.nn.Module):
    """Four linears H -> 2H -> H -> 2H -> H with ReLUs."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        h2 = 2 * hidden
        self.layers = torch.nn.ModuleList(
            [
                torch.nn.Linear(hidden, h2),
                torch.nn.Linear(h2, hidden),
                torch.nn.Linear(hidden, h2),
                torch.nn.Linear(h2, hidden),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for lin in self.layers:
            x = torch.relu(lin(x))
        return x


def _quantize(model: torch.nn.Module, recipe: str) -> torch.nn.Module:
    if recipe == "fp32":
        return model
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerGroup
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig

    quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(32)))
    return model


def export(outdir: Path, hidden: int, m: int, recipe: str) -> Path:
    torch.manual_seed(0)
    model = _quantize(Mlp(hidden).eval(), recipe)
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(m, hidden, generator=gen)
    with torch.no_grad():
        eager = model(x)
        ep = torch.export.export(model, (x,))
    prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    stem = outdir / f"mlp_h{hidden}_m{m}__{recipe}"
    pte = stem.with_suffix(".pte")
    pte.write_bytes(prog.buffer)
    np.savez(stem.with_suffix(".io.npz"), input_0=x.numpy(), eager_output_0=eager.numpy())
    return pte


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--tokens", type=int, nargs="+", default=[32, 128])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    args = p.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for recipe in args.recipes:
        for m in args.tokens:
            path = export(args.outdir, args.hidden, m, recipe)
            print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
