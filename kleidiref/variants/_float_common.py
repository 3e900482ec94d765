"""What pf32_gemm and pf16_gemm share at the XNNPACK level: kernel choice, ``gemm`` and golden replay.

Both variants have the same four kernels (SME2/SME1 MOPA on a packed LHS, SME2/SME1 GEMV on the raw
row), the same packers up to the element type and kr, and the same XNNPACK call conventions; only the
arithmetic of each kernel (kleidiref.kai) differs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._buffers import PackedRhs, as_packed_rhs, check_dtype
from ..configs import select_kai_kernel
from ..kai.interface import MatmulKernel, PackedLhsKernel, RawLhsKernel, TileParams
from ..kai.pack import SmeLhsPacker, SmeRhsBiasPacker
from ..targets import Target, resolve_target, target_svl
from ..validate import check_alloc, check_bool, check_output_range

__all__ = ["FloatVariant", "PackedWeights"]


@dataclasses.dataclass(frozen=True)
class PackedWeights:
    """Weights packed once by a float variant's RHS packer, as XNNPACK packs them at model load.

    ``rhs_packed`` is an immutable :class:`~kleidiref._buffers.PackedRhs` (the packed bytes):
    the kernels decode it once, into the bias and a [Kp, N] weight matrix (as many bytes again
    as the packing), and reuse that on every call instead of gathering the packed blocks.
    """

    variant: str
    n: int
    k: int
    svl: int
    rhs_packed: PackedRhs


@dataclasses.dataclass(frozen=True)
class FloatVariant:
    """The ukernels of one float variant and how XNNPACK wires them."""

    name: str
    dtype: np.dtype[Any]
    lhs_packer: type[SmeLhsPacker]
    rhs_packer_nxk: type[SmeRhsBiasPacker]
    rhs_packer_kxn: type[SmeRhsBiasPacker]
    sme2_mopa: type[PackedLhsKernel]
    sme1_mopa: type[PackedLhsKernel]
    sme2_gemv: type[RawLhsKernel]
    sme1_gemv: type[RawLhsKernel]
    #: The generic XNNPACK config used when there is no SME (for error messages).
    fallback: str

    @property
    def _create(self) -> str:
        return f"xnn_create_fully_connected_nc_{'f16' if self.dtype == np.float16 else 'f32'}"

    def select_kernel(self, target: Target, m: int) -> type[PackedLhsKernel] | type[RawLhsKernel]:
        """What XNNPACK's config runs: SME2 before SME; the 1-row kernel when M == 1."""
        cls = select_kai_kernel(self.name, target, m, MatmulKernel, self.fallback)
        assert issubclass(cls, (PackedLhsKernel, RawLhsKernel))
        return cls

    def _kernel_by_name(self, kernel: str) -> type[PackedLhsKernel] | type[RawLhsKernel]:
        for found in (self.sme2_mopa, self.sme1_mopa, self.sme2_gemv, self.sme1_gemv):
            if found.name == kernel:
                return found
        raise ValueError(f"{kernel!r} is not a {self.name} kernel")

    def _check_rhs(
        self, rhs: NDArray[Any], bias: NDArray[Any] | None, transpose_rhs: bool
    ) -> tuple[NDArray[Any], int, int]:
        """``(rhs, N, K)`` of checked weights ([N, K], or [K, N] with ``transpose_rhs``) and bias."""
        what = self.dtype.name
        transpose_rhs = check_bool("transpose_rhs", transpose_rhs)
        w = check_dtype("rhs", rhs, self.dtype, f"{self.name} weights are {what}")
        if w.ndim != 2:
            raise ValueError(f"rhs must be 2-D, got shape {w.shape}")
        n, k = w.shape[::-1] if transpose_rhs else w.shape
        if k < 1:
            raise ValueError("K must be >= 1")
        # The packed RHS, a contiguous copy of a (possibly broadcast) view and the kernels' decoding.
        check_alloc(f"packing {self.name} weights [{n}, {k}]", ((n + 1, k), self.dtype), factor=3)
        if bias is not None:
            check_dtype("bias", bias, self.dtype, f"{self.name} bias is {what}")
            if bias.shape != (n,):
                raise ValueError(f"bias must have shape ({n},), got {bias.shape}")
        return w, n, k

    def gemm(
        self,
        lhs: NDArray[Any],
        rhs: NDArray[Any],
        *,
        bias: NDArray[Any] | None,
        clamp_min: float,
        clamp_max: float,
        transpose_rhs: bool,
        target: Target | None,
        kernel: str | None,
    ) -> NDArray[Any]:
        """Validate, pack with the kernel's parameters and run, as XNNPACK does (docs: the variants)."""
        t = resolve_target(target)
        lo, hi = check_output_range(clamp_min, clamp_max, op=self._create, f16=self.dtype == np.float16)
        a = check_dtype("lhs", lhs, self.dtype, f"{self.name} activations are {self.dtype.name}")
        w, n, k = self._check_rhs(rhs, bias, transpose_rhs)
        if a.ndim != 2:
            raise ValueError(f"lhs must be 2-D, got shape {a.shape}")
        if a.shape[1] != k:
            raise ValueError(f"K mismatch: lhs is {a.shape}, rhs is {w.shape} (transpose_rhs={transpose_rhs})")
        # A plain buffer: one call gathers the packed blocks as it goes (no decoded copy is kept).
        return self._run(
            a, self._pack(w, bias, transpose_rhs, target_svl(t, self.name)), n, float(lo), float(hi), t, kernel
        )

    def pack_weights(
        self, rhs: NDArray[Any], *, bias: NDArray[Any] | None, transpose_rhs: bool, target: Target | None
    ) -> PackedWeights:
        """Pack ``rhs`` and ``bias`` once for :meth:`gemm_packed` (the same packers as :meth:`gemm`)."""
        t = resolve_target(target)
        w, n, k = self._check_rhs(rhs, bias, transpose_rhs)
        svl = target_svl(t, self.name)
        packed = as_packed_rhs(self._pack(w, bias, transpose_rhs, svl))
        return PackedWeights(variant=self.name, n=n, k=k, svl=svl, rhs_packed=packed)

    def _pack(self, w: NDArray[Any], bias: NDArray[Any] | None, transpose_rhs: bool, svl: int) -> NDArray[np.uint8]:
        """The RHS packed by the nxk packer (or, ``transpose_rhs``, the kxn one: same bytes)."""
        packer = self.rhs_packer_kxn if transpose_rhs else self.rhs_packer_nxk
        packed: NDArray[np.uint8] = packer(svl).pack(w, bias)
        return packed

    def gemm_packed(
        self,
        lhs: NDArray[Any],
        weights: PackedWeights,
        *,
        clamp_min: float,
        clamp_max: float,
        target: Target | None,
        kernel: str | None,
    ) -> NDArray[Any]:
        """:meth:`gemm` on weights packed once by :meth:`pack_weights` (same SVL as ``target``)."""
        t = resolve_target(target)
        lo, hi = check_output_range(clamp_min, clamp_max, op=self._create, f16=self.dtype == np.float16)
        if not isinstance(weights, PackedWeights) or weights.variant != self.name:
            raise TypeError(f"weights must come from {self.name}.pack_weights()")
        if weights.svl != t.svl_bits:
            raise ValueError(f"weights were packed for SVL {weights.svl}, the target has SVL {t.svl_bits}")
        a = check_dtype("lhs", lhs, self.dtype, f"{self.name} activations are {self.dtype.name}")
        if a.ndim != 2 or a.shape[1] != weights.k:
            raise ValueError(f"lhs must be [M, {weights.k}], got shape {a.shape}")
        return self._run(a, weights.rhs_packed, weights.n, float(lo), float(hi), t, kernel)

    def _run(
        self,
        a: NDArray[Any],
        rhs_packed: Any,
        n: int,
        clamp_min: float,
        clamp_max: float,
        t: Target,
        kernel: str | None,
    ) -> NDArray[Any]:
        """Run the kernel XNNPACK picks on ``t`` (or ``kernel``) on a checked [M, K] LHS."""
        m, k = a.shape
        # The output, the packed LHS and the kernels' [M, N] temporaries (a few at a time).
        check_alloc(
            f"{self.name} gemm [{m}, {k}] x [{k}, {n}]", ((m, n), self.dtype), ((m + 1, k), self.dtype), factor=4
        )
        kcls = self.select_kernel(t, m) if kernel is None else self._kernel_by_name(kernel)
        svl = target_svl(t, kcls.name)
        item = self.dtype.itemsize
        dst = np.zeros((m, n), dtype=self.dtype)
        if issubclass(kcls, RawLhsKernel):
            if m != 1:
                raise ValueError(f"{kcls.name} computes one row; M = {m}")
            kcls(svl, fz=t.flush_to_zero).run_matmul(
                1, n, k, np.ascontiguousarray(a), k * item, rhs_packed, dst, n * item, item, clamp_min, clamp_max
            )
        else:
            lhs_packed = self.lhs_packer(svl).pack(a)
            kcls(svl, fz=t.flush_to_zero).run_matmul(
                m, n, k, lhs_packed, rhs_packed, dst, n * item, item, clamp_min, clamp_max
            )
        return dst

    def reproduce_golden(self, inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Recompute a ``<variant>`` / ``<variant>_fz`` golden file from its inputs, as the harness ran it."""
        svl = int(inputs["meta_svl_bits"])
        fz = bool(inputs.get("meta_fpcr_fz", np.array(0)))
        lhs, rhs, bias = inputs["lhs"], inputs["rhs"], inputs["bias"]
        lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
        m, k = lhs.shape
        n = rhs.shape[0]
        item = self.dtype.itemsize
        lhs_packed = self.lhs_packer(svl).pack(lhs)
        rhs_packed = self.rhs_packer_nxk(svl).pack(rhs, bias)
        res: dict[str, NDArray[Any]] = {"lhs_packed": lhs_packed, "rhs_packed": rhs_packed}

        def run(cls: type[PackedLhsKernel], fz_: bool) -> NDArray[Any]:
            dst = np.zeros((m, n), dtype=self.dtype)
            cls(svl, fz=fz_).run_matmul(m, n, k, lhs_packed, rhs_packed, dst, n * item, item, lo, hi)
            return dst

        res["out"] = run(self.sme2_mopa, fz)
        res["out_sme1"] = run(self.sme1_mopa, fz)
        if fz:
            res["out_nofz"] = run(self.sme2_mopa, False)
        if m == 1:
            for key, gcls in (("out_gemv", self.sme2_gemv), ("out_gemv_sme1", self.sme1_gemv)):
                dst = np.zeros((1, n), dtype=self.dtype)
                gcls(svl, fz=fz).run_matmul(1, n, k, lhs, k * item, rhs_packed, dst, n * item, item, lo, hi)
                res[key] = dst
        res.update(
            _tile_meta(
                self.sme2_mopa(svl).tile_params(), self.sme2_gemv(svl).tile_params(), self.sme1_mopa(svl).tile_params()
            )
        )
        return res


def _tile_meta(mopa: TileParams, gemv: TileParams, sme1: TileParams) -> dict[str, NDArray[Any]]:
    vals = {
        "meta_mr": mopa.mr,
        "meta_nr": mopa.nr,
        "meta_kr": mopa.kr,
        "meta_sr": mopa.sr,
        "meta_m_step": mopa.m_step,
        "meta_n_step": mopa.n_step,
        "meta_gemv_nr": gemv.nr,
        "meta_gemv_n_step": gemv.n_step,
        "meta_sme1_mr": sme1.mr,
        "meta_sme1_nr": sme1.nr,
    }
    return {key: np.array(v, dtype=np.int64) for key, v in vals.items()}
