"""How far two outputs are apart, in units in the last place; and where two runs of a program part ways.

:func:`compare_runs` compares two runs node by node (both kept their node outputs: ``Runner.run(...,
keep_node_outputs=True)``), e.g. the same program on two CPUs; :func:`compare_to_reference` compares one run
with per-node reference values keyed ``d<delegate>_n<index>`` (what :func:`node_outputs` gives and
``kleidiref run --dump-nodes`` writes). :func:`first_divergence` names the first node, in execution order, whose
output differs: what a model developer looks at first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..testing import ulp_distance as _elementwise_ulp
from .program import NodeTrace, RunResult

__all__ = [
    "NodeDiff",
    "compare_runs",
    "compare_to_reference",
    "diff_arrays",
    "first_divergence",
    "is_node_key",
    "max_ulp_distance",
    "node_key",
    "node_outputs",
]

_NODE_KEY = re.compile(r"^d(\d+)_n(\d+)$")


def diff_arrays(a: NDArray[Any], b: NDArray[Any]) -> tuple[int, int]:
    """``(max ULP distance, number of differing elements)`` of two arrays of one dtype and shape.

    Floats: +0 and -0 are equal, so are two NaNs (any payload); a NaN against a number makes the distance -1.
    Integers: the largest absolute difference of the codes.
    """
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"cannot compare {a.dtype}{list(a.shape)} with {b.dtype}{list(b.shape)}")
    if a.dtype.kind != "f":
        d = np.abs(a.astype(np.int64) - b.astype(np.int64))
        return int(np.max(d, initial=0)), int(np.count_nonzero(d))
    na, nb = np.isnan(a), np.isnan(b)
    ok = ~(na | nb)
    d = _elementwise_ulp(a[ok], b[ok])
    nan_mismatch = int(np.count_nonzero(na != nb))
    count = int(np.count_nonzero(d)) + nan_mismatch
    return (-1 if nan_mismatch else int(np.max(d, initial=0))), count


def max_ulp_distance(a: NDArray[Any], b: NDArray[Any]) -> int:
    """The largest ULP distance between two arrays (0: identical up to +-0 and NaN payloads; -1: NaN mismatch)."""
    return diff_arrays(a, b)[0]


def node_key(t: NodeTrace) -> str:
    """A node's key in a per-node ``.npz``: ``d<delegate>_n<index>``."""
    return f"d{t.delegate}_n{t.index}"


def is_node_key(key: str) -> bool:
    return _NODE_KEY.match(key) is not None


def node_outputs(res: RunResult) -> dict[str, NDArray[Any]]:
    """Every node's output of a run that kept them, keyed ``d<delegate>_n<index>``."""
    out = {}
    for t in res.trace:
        if t.output is None:
            raise ValueError("the run did not keep its node outputs: Runner.run(..., keep_node_outputs=True)")
        out[node_key(t)] = np.asarray(t.output)
    return out


@dataclass(frozen=True)
class NodeDiff:
    """One node of a comparison: what ran on each side and how far the outputs are apart.

    ``max_ulp`` is -1 for a NaN against a number; ``differing`` counts the elements that are not equal (+0 and
    -0 equal, NaNs equal); ``size`` is the number of elements. ``emulation_b`` is empty for a reference file.
    """

    delegate: int
    index: int
    node_type: str
    emulation_a: str
    emulation_b: str
    shape: tuple[int, ...]
    dtype: str
    max_ulp: int
    differing: int
    size: int

    @property
    def differs(self) -> bool:
        return self.differing > 0

    def describe(self) -> str:
        where = f"[{self.delegate}:{self.index}] {self.node_type} {self.dtype}{list(self.shape)}"
        if not self.differs:
            return f"{where}: same"
        ulp = "NaN vs number" if self.max_ulp < 0 else f"max {self.max_ulp} ULP"
        same = self.emulation_b in ("", self.emulation_a)
        kern = self.emulation_a if same else f"{self.emulation_a} vs {self.emulation_b}"
        return f"{where}: differs ({ulp}, {self.differing} of {self.size} elements) [{kern}]"


def _diff(ta: NodeTrace, emulation_b: str, a: NDArray[Any], b: NDArray[Any]) -> NodeDiff:
    ulp, count = diff_arrays(a, b)
    return NodeDiff(
        ta.delegate, ta.index, ta.node_type, ta.emulation, emulation_b, a.shape, str(a.dtype), ulp, count, a.size
    )


def compare_runs(a: RunResult, b: RunResult) -> list[NodeDiff]:
    """Node by node (execution order): how far run ``b``'s outputs are from run ``a``'s (same program)."""
    if [(t.delegate, t.index) for t in a.trace] != [(t.delegate, t.index) for t in b.trace]:
        raise ValueError("the two runs did not execute the same nodes (not the same program?)")
    diffs = []
    for ta, tb in zip(a.trace, b.trace, strict=True):
        if ta.output is None or tb.output is None:
            raise ValueError("both runs must keep their node outputs: Runner.run(..., keep_node_outputs=True)")
        diffs.append(_diff(ta, tb.emulation, np.asarray(ta.output), np.asarray(tb.output)))
    return diffs


def compare_to_reference(a: RunResult, ref: Mapping[str, NDArray[Any]]) -> list[NodeDiff]:
    """Node by node: how far run ``a``'s outputs are from per-node reference values (``d<delegate>_n<index>``).

    Nodes without a reference value are left out; a reference key naming no node of the run is an error.
    """
    keys = {node_key(t) for t in a.trace}
    unknown = sorted(k for k in ref if is_node_key(k) and k not in keys)
    if unknown:
        raise ValueError(f"reference values for nodes the run does not have: {', '.join(unknown[:5])}")
    diffs = []
    for t in a.trace:
        k = node_key(t)
        if k not in ref:
            continue
        if t.output is None:
            raise ValueError("the run must keep its node outputs: Runner.run(..., keep_node_outputs=True)")
        diffs.append(_diff(t, "", np.asarray(t.output), np.asarray(ref[k])))
    return diffs


def first_divergence(diffs: Sequence[NodeDiff]) -> NodeDiff | None:
    """The first node, in execution order, whose output differs (None: every node agrees)."""
    return next((d for d in diffs if d.differs), None)
