"""KleidiAI's parameter structs (``kai/kai_common.h``), as frozen dataclasses checked like C ints."""

from __future__ import annotations

import dataclasses

import numpy as np

from .._buffers import check_float

__all__ = ["check_i32", "kai_matmul_requantize32_params", "kai_rhs_pack_qsi8cx_params"]

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def check_i32(name: str, value: object) -> int:
    """An ``int32_t`` C argument: a Python/numpy integer in [-2**31, 2**31 - 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer (int32_t), got {type(value).__name__}")
    v = int(value)
    if not _I32_MIN <= v <= _I32_MAX:
        raise ValueError(f"{name}={v} does not fit in int32_t")
    return v


@dataclasses.dataclass(frozen=True)
class kai_rhs_pack_qsi8cx_params:
    """``struct kai_rhs_pack_qsi8cx_params`` (kai/kai_common.h).

    ``lhs_zero_point`` (int32) multiplies the weight sums; ``scale_multiplier`` (float) is folded
    into the scales by the SME pqs8 packer and ignored by the qsi8cxp NEON packer.
    """

    lhs_zero_point: int = 1
    scale_multiplier: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lhs_zero_point", check_i32("lhs_zero_point", self.lhs_zero_point))
        object.__setattr__(self, "scale_multiplier", float(check_float("scale_multiplier", self.scale_multiplier)))


@dataclasses.dataclass(frozen=True)
class kai_matmul_requantize32_params:
    """``struct kai_matmul_requantize32_params {min_value, max_value, output_zero_point}`` (int32 each)."""

    min_value: int
    max_value: int
    output_zero_point: int

    def __post_init__(self) -> None:
        for f in ("min_value", "max_value", "output_zero_point"):
            object.__setattr__(self, f, check_i32(f, getattr(self, f)))
