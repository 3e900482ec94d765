"""How far two outputs are apart, in units in the last place."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..testing import ulp_distance as _elementwise_ulp

__all__ = ["max_ulp_distance"]


def max_ulp_distance(a: NDArray[Any], b: NDArray[Any]) -> int:
    """The largest ULP distance between two arrays (0: identical up to +-0 and NaN payloads; -1: NaN mismatch)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"cannot compare {a.dtype}{list(a.shape)} with {b.dtype}{list(b.shape)}")
    if a.dtype.kind != "f":
        return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)), initial=0))
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return -1
    ok = ~np.isnan(a)
    return int(np.max(_elementwise_ulp(a[ok], b[ok]), initial=0))
