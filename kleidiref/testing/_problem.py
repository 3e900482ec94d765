"""One GEMM problem for a variant: its inputs, the kernel that runs it, and the kleidiref reference."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kai.interface import MatmulKernel, TileParams
from ..kai.registry import UKERNELS, list_ukernels
from ..targets import Target, resolve_target

__all__ = ["VARIANT_NAMES", "Problem", "kernels_of"]

#: The variants kleidiref.testing knows how to check.
VARIANT_NAMES: tuple[str, ...] = (
    "pf32_gemm",
    "pf16_gemm",
    "qp8_f32_qc8w_gemm",
    "pqs8_qc8w_gemm",
    "qp8_f32_qb4w_gemm",
)


def kernels_of(variant: str) -> list[type[MatmulKernel]]:
    """The matmul kernel classes registered for ``variant``."""
    out: list[type[MatmulKernel]] = []
    for name in list_ukernels(variant):
        cls = UKERNELS[name]
        if issubclass(cls, MatmulKernel):
            out.append(cls)
    return out


def _module(variant: str) -> Any:
    from ..variants import VARIANTS

    return VARIANTS[variant]


@dataclasses.dataclass(frozen=True)
class Problem:
    """The inputs of one GEMM as the variant's friendly ``gemm`` takes them."""

    variant: str
    target: Target
    kernel: str
    lhs: NDArray[Any]
    rhs: NDArray[Any]
    bias: NDArray[Any] | None = None
    scale: NDArray[np.float32] | None = None
    scales_bf16: NDArray[np.uint16] | None = None
    bl: int | None = None
    clamp_min: float = -np.inf
    clamp_max: float = np.inf
    input_zero_point: int = 0
    requant_scale: NDArray[np.float32] | None = None
    output_zero_point: int = 0
    output_min: int = -128
    output_max: int = 127

    @classmethod
    def build(cls, *, variant: str, target: Target | None, kernel: str | None, **inputs: Any) -> Problem:
        if variant not in VARIANT_NAMES:
            raise ValueError(f"variant must be one of {VARIANT_NAMES}, got {variant!r}")
        t = resolve_target(target)
        lhs = inputs["lhs"]
        if not isinstance(lhs, np.ndarray) or lhs.ndim != 2:
            raise TypeError("lhs must be a 2-D numpy array [M, K]")
        m = lhs.shape[0]
        if kernel is None:
            kname = _module(variant).select_kernel(t, m).name
        else:
            found = UKERNELS.get(kernel)
            if found is None or found.variant != variant:
                names = ", ".join(c.name for c in kernels_of(variant))
                raise ValueError(f"{kernel!r} is not a {variant} kernel; the {variant} kernels are: {names}")
            kname = kernel
        return cls(variant=variant, target=t, kernel=kname, **inputs)

    @property
    def m(self) -> int:
        return int(self.lhs.shape[0])

    @property
    def k(self) -> int:
        return int(self.lhs.shape[1])

    @property
    def n(self) -> int:
        return int(self.rhs.shape[0])

    def kernel_obj(self, name: str | None = None) -> MatmulKernel:
        cls = UKERNELS[name or self.kernel]
        obj = cls(self.target.svl_bits, fz=self.target.flush_to_zero)  # type: ignore[call-arg]
        assert isinstance(obj, MatmulKernel)
        return obj

    def tiles(self, name: str | None = None) -> TileParams:
        return self.kernel_obj(name).tile_params()

    def is_gemv(self, name: str | None = None) -> bool:
        """True for the 1-row kernels (m_step 1)."""
        return self.tiles(name).m_step == 1

    def with_(self, **changes: Any) -> Problem:
        return dataclasses.replace(self, **changes)

    def run(self, kernel: str | None = None) -> NDArray[Any]:
        """The kleidiref output of ``kernel`` (default: this problem's) on these inputs.

        A 1-row kernel asked for M > 1 rows runs each row on its own (every row is quantized
        independently, so this is what the kernel would compute row by row).
        """
        name = kernel or self.kernel
        if self.m > 1 and self.is_gemv(name):
            rows = [self.with_(lhs=self.lhs[i : i + 1]).run(name) for i in range(self.m)]
            return np.concatenate(rows, axis=0)
        mod = _module(self.variant)
        t = self.target
        v = self.variant
        if v in ("pf32_gemm", "pf16_gemm"):
            return mod.gemm(  # type: ignore[no-any-return]
                self.lhs,
                self.rhs,
                bias=self.bias,
                clamp_min=self.clamp_min,
                clamp_max=self.clamp_max,
                target=t,
                kernel=name,
            )
        if v == "qp8_f32_qc8w_gemm":
            return mod.gemm(  # type: ignore[no-any-return]
                self.lhs,
                self.rhs,
                self.scale,
                bias=self.bias,
                clamp_min=self.clamp_min,
                clamp_max=self.clamp_max,
                target=t,
                kernel=name,
            )
        if v == "qp8_f32_qb4w_gemm":
            return mod.gemm(  # type: ignore[no-any-return]
                self.lhs,
                self.rhs,
                self.scales_bf16,
                bl=self.bl,
                bias=self.bias,
                clamp_min=self.clamp_min,
                clamp_max=self.clamp_max,
                target=t,
                kernel=name,
            )
        return mod.gemm(  # type: ignore[no-any-return]
            self.lhs,
            self.rhs,
            input_zero_point=self.input_zero_point,
            requant_scale=self.requant_scale,
            bias=self.bias,
            output_zero_point=self.output_zero_point,
            output_min=self.output_min,
            output_max=self.output_max,
            target=t,
            kernel=name,
        )

    def describe(self) -> str:
        t = self.target
        return (
            f"{self.variant} M={self.m} N={self.n} K={self.k}"
            f"{f' bl={self.bl}' if self.bl else ''}, kernel {self.kernel} "
            f"(SVL {t.svl_bits}, FZ {'on' if t.flush_to_zero else 'off'})"
        )
