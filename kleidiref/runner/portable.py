"""Non-delegated operators: the ExecuTorch portable kernels a plan runs between delegate calls (``KernelCall``).

Each supported operator is listed in :data:`PORTABLE_OPS` under the name the ``.pte`` stores
(``Operator.name`` + ``.`` + ``overload``) and is run with plain numpy following the portable kernel it names
(ExecuTorch ``kernels/portable/cpu/op_*.cpp``). A ``KernelCall``'s ``args`` are EValue indices: the operator's
arguments in schema order, then its ``out`` tensor, then the returned value (the same ``out``), as
``exir/emit/_emitter.py`` emits them. Any other operator is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import pte
from .nodes.convert import f16_to_f32

__all__ = ["PORTABLE_OPS", "SUPPORTED_PORTABLE_OPS", "run_kernel_call", "unsupported_portable_ops"]

#: ``executorch_flatbuffer.ScalarType`` -> numpy dtype, for the tensors these kernels write.
_DTYPES: Mapping[str, Any] = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "DOUBLE": np.float64,
    "CHAR": np.int8,
    "BYTE": np.uint8,
    "SHORT": np.int16,
    "INT": np.int32,
    "LONG": np.int64,
    "BOOL": np.bool_,
}

_Kernel = Callable[[pte.ExecutionPlan, Sequence[int], Mapping[int, NDArray[Any]], bool], NDArray[Any]]


def _out_spec(plan: pte.ExecutionPlan, index: int, what: str) -> tuple[Any, tuple[int, ...]]:
    v = plan.values[index]
    if v.kind != "Tensor":
        raise ValueError(f"{what}: out EValue {index} is {v.kind}, not a Tensor")
    name = v.scalar_type_name or ""
    if name not in _DTYPES:
        raise NotImplementedError(f"{what}: out tensor of scalar type {name} is not supported")
    if tuple(v.dim_order) != tuple(range(len(v.sizes))):
        raise NotImplementedError(f"{what}: out dim_order {v.dim_order} (only contiguous is supported)")
    return _DTYPES[name], tuple(v.sizes)


def _tensor(env: Mapping[int, NDArray[Any]], index: int, what: str) -> NDArray[Any]:
    if index not in env:
        raise ValueError(f"{what}: input EValue {index} was never written")
    return env[index]


def _checked(y: NDArray[Any], dtype: Any, sizes: tuple[int, ...], what: str) -> NDArray[Any]:
    """The out tensor: the planned dtype and sizes (the portable kernels resize ``out`` only to these)."""
    if y.dtype != dtype:
        raise TypeError(f"{what}: result is {y.dtype}, the out tensor is {np.dtype(dtype)}")
    if tuple(y.shape) != sizes:
        raise ValueError(f"{what}: result shape {tuple(y.shape)}, the out tensor has {sizes}")
    return np.ascontiguousarray(y)


def _unsqueeze_copy(plan: pte.ExecutionPlan, a: Sequence[int], env: Mapping[int, NDArray[Any]], _x86: bool) -> Any:
    """``op_unsqueeze_copy.cpp``: ``dim`` in [-(ndim + 1), ndim], a negative one counted from ``ndim + 1``."""
    what = "aten::unsqueeze_copy.out"
    x, dim = _tensor(env, a[0], what), int(plan.scalar(a[1], "Int"))
    if not -(x.ndim + 1) <= dim <= x.ndim:
        raise ValueError(f"{what}: dim {dim} out of range for a {x.ndim}-D tensor (check_unsqueeze_copy_args)")
    dtype, sizes = _out_spec(plan, a[2], what)
    return _checked(np.expand_dims(x, dim if dim >= 0 else dim + x.ndim + 1), dtype, sizes, what)


def _expand_copy(plan: pte.ExecutionPlan, a: Sequence[int], env: Mapping[int, NDArray[Any]], _x86: bool) -> Any:
    """``op_expand_copy.cpp``: ``size`` aligns to the right; -1 keeps a dimension, a size-1 one repeats;
    ``implicit`` must be false."""
    what = "aten::expand_copy.out"
    x, size = _tensor(env, a[0], what), list(plan.int_list(a[1]))
    if plan.scalar(a[2], "Bool"):
        raise NotImplementedError(f"{what}: implicit=True (check_expand_copy_args refuses it)")
    if len(size) < x.ndim:
        raise ValueError(f"{what}: {len(size)} sizes for a {x.ndim}-D tensor")
    lead = len(size) - x.ndim
    target = []
    for i, s in enumerate(size):
        if i < lead:
            if s < 0:
                raise ValueError(f"{what}: size {s} for a new leading dimension")
            target.append(s)
            continue
        d = x.shape[i - lead]
        if s == -1:
            s = d
        if d != s and d != 1:
            raise ValueError(f"{what}: dimension {i - lead} of size {d} cannot expand to {s}")
        target.append(s)
    dtype, sizes = _out_spec(plan, a[3], what)
    return _checked(np.broadcast_to(x, target).copy(), dtype, sizes, what)


def _to_dim_order_copy(plan: pte.ExecutionPlan, a: Sequence[int], env: Mapping[int, NDArray[Any]], x86: bool) -> Any:
    """``op__to_dim_order_copy.cpp``: a dtype cast per element (``static_cast`` of each value), contiguous only.

    Note: float -> Half is ``c10::Half(float)`` (``runtime/core/portable_type/c10/torch/headeronly/util/Half.h``):
    on x86-64 ``fp16_ieee_from_fp32_value`` (RNE; a NaN becomes ``sign | 0x7E00``: observed, fixture
    ``f16_roundtrip__fp32``), on AArch64 the native conversion (FCVT: RNE; a NaN is quieted and keeps its top
    payload bits; unobserved). Half -> float is exact, a NaN keeps its payload (``fp16_ieee_to_fp32_value`` /
    FCVT).
    """
    what = "dim_order_ops::_to_dim_order_copy.out"
    x = _tensor(env, a[0], what)
    dim_order = plan.values[a[2]]
    if dim_order.kind != "Null" and plan.int_list(a[2]) != tuple(range(x.ndim)):
        raise NotImplementedError(f"{what}: dim_order {plan.int_list(a[2])} (only contiguous is supported)")
    dtype, sizes = _out_spec(plan, a[3], what)
    if x.dtype == np.float16 and dtype == np.float32:
        y = f16_to_f32(x)
    elif x.dtype == np.float32 and dtype == np.float16:
        with np.errstate(over="ignore"):
            y = x.astype(np.float16)  # RNE, overflow to inf
        nan = np.isnan(x)
        if nan.any():
            b = x.view(np.uint32)[nan]
            keep = 0 if x86 else ((b >> 13) & 0x1FF)
            y.view(np.uint16)[nan] = (((b >> 16) & 0x8000) | 0x7E00 | keep).astype(np.uint16)
    elif x.dtype == dtype:
        y = x.copy()
    else:
        raise NotImplementedError(f"{what}: {x.dtype} -> {np.dtype(dtype)} is not supported")
    return _checked(y, dtype, sizes, what)


#: The supported portable operators (their ``.pte`` names): (kernel, number of schema arguments before ``out``).
PORTABLE_OPS: Mapping[str, tuple[_Kernel, int]] = {
    "aten::unsqueeze_copy.out": (_unsqueeze_copy, 2),
    "aten::expand_copy.out": (_expand_copy, 3),
    "dim_order_ops::_to_dim_order_copy.out": (_to_dim_order_copy, 3),
}

_SOURCES: Mapping[str, str] = {
    "aten::unsqueeze_copy.out": "op_unsqueeze_copy.cpp",
    "aten::expand_copy.out": "op_expand_copy.cpp",
    "dim_order_ops::_to_dim_order_copy.out": "op__to_dim_order_copy.cpp",
}

#: Their names, for error messages and docs.
SUPPORTED_PORTABLE_OPS: tuple[str, ...] = tuple(PORTABLE_OPS)


def unsupported_portable_ops(plan: pte.ExecutionPlan) -> list[str]:
    """The plan's non-delegated operators the runner does not emulate, sorted."""
    return sorted({op for op in plan.non_delegated_ops if op not in PORTABLE_OPS})


def run_kernel_call(
    plan: pte.ExecutionPlan, ins: pte.Instruction, env: MutableMapping[int, NDArray[Any]], *, x86: bool
) -> str:
    """Run one ``KernelCall`` on ``env`` (EValue index -> tensor), writing its ``out``; returns what ran."""
    op = ins.operator or ""
    if op not in PORTABLE_OPS:
        raise NotImplementedError(f"non-delegated operator {op} is not emulated (supported: {SUPPORTED_PORTABLE_OPS})")
    kernel, n_args = PORTABLE_OPS[op]
    args = ins.args
    # schema arguments, out, and the returned value (out again)
    if len(args) != n_args + 2 or args[n_args] != args[n_args + 1]:
        raise ValueError(f"{op}: KernelCall args {args} are not {n_args} arguments, out, out")
    for i in args:
        if not 0 <= i < len(plan.values):
            raise ValueError(f"{op}: EValue index {i} of {len(plan.values)}")
    env[args[n_args]] = kernel(plan, args, env, x86)
    return f"portable kernel {_SOURCES[op]} (numpy)"
