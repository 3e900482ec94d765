"""What the pf32 and pf16 kernels share: the bias-led packed RHS as they read it, and their epilogues.

The four KleidiAI matmul families of the float variants (``matmul_clamp_f32_f32p_f32p``,
``matmul_clamp_f32_f32_f32p``, ``matmul_clamp_f16_f16p_f16p``, ``matmul_clamp_f16_f16_f16p``)
read the same :class:`~kleidiref.kai.layouts.SmeBiasRhsLayout` RHS; each family module defines
its kernels on :class:`Pf32Kernel` or :class:`Pf16Kernel`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .. import numerics
from .._buffers import check_count, packed_rhs_columns
from .._engine import flushed_row_lows, gather_rows, row_lows
from ..numerics import Clamp, ftz16, rn16
from .interface import ClampBounds
from .layouts import SmeBiasRhsLayout

__all__ = ["BiasRhs", "BiasRhsKernel", "Pf16Kernel", "Pf32Kernel"]

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)


@dataclasses.dataclass(frozen=True)
class BiasRhs:
    """A bias-led packed RHS as the float kernels read it (their ``decode_rhs``)."""

    #: [n], the bias element type.
    bias: NDArray[Any]
    #: [roundup(K, kr), n] decoded, or the packed blocks' zero-copy view [Kp/kr, kr, nb, nr].
    w: NDArray[Any]
    #: pf32: the per-row smallest magnitudes of W the chain reuses (``_engine.row_lows``), or None.
    w_lows: NDArray[np.int64] | None = None
    #: pf16 under FZ16: the chain reads W through the flush (W was not flushed once).
    flush_w: bool = False


class BiasRhsKernel:
    """Mixin: offsets and decoding of the ``..p2vlx<kr>b`` RHS (an nr-wide bias row, then the data)."""

    name: ClassVar[str]
    #: Element type of weights and bias, and the kr of the layout.
    elem: ClassVar[np.dtype[Any]]
    layout_kr: ClassVar[int]
    svl: int

    def rhs_layout(self, n: int, k: int) -> SmeBiasRhsLayout:
        """The packed RHS format this kernel reads (nr = 2 VL / kr)."""
        return SmeBiasRhsLayout.for_svl(self.elem, self.elem, self.layout_kr, self.svl, n, k)

    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        n_idx, k = check_count("n_idx", n_idx), check_count("k", k)
        fmt = self.rhs_layout(0, k)
        if n_idx % fmt.nr:
            raise ValueError(f"KAI_ASSUME(n_idx % nr == 0) fails in kai_get_rhs_packed_offset_{self.name[4:]}")
        return fmt.offset(n_idx)

    def rhs_packed_size(self, n: int, k: int) -> int:
        return self.rhs_layout(n, k).size()

    def _cached_rhs(
        self,
        rhs_u8: NDArray[np.uint8],
        n: int,
        k: int,
        prepare: Callable[[NDArray[Any]], tuple[NDArray[Any], Any]] | None = None,
    ) -> tuple[NDArray[Any], NDArray[Any], Any] | None:
        """``(bias[n], W[Kp, n], extra)`` decoded once from the :class:`PackedRhs` that ``rhs_u8``
        views whole, else None: read-only arrays, as many bytes again as the packing.

        ``prepare(W) -> (W', extra)``, a named function of the decoded W (all of the buffer's
        columns, not only the first n), also runs once: an input flush of W (not of the bias)
        and what the chain can reuse, e.g. :func:`kleidiref._engine.row_lows`.
        """
        fmt = self.rhs_layout(n, k)
        nr, kr = fmt.nr, fmt.kr
        found = packed_rhs_columns(rhs_u8, fmt.stride, nr, n)
        if found is None:
            return None
        owner, full_n = found

        def decode(buf: bytes) -> tuple[NDArray[Any], NDArray[Any], Any]:
            bias, view = self.rhs_layout(full_n, k).block_view(np.frombuffer(buf, np.uint8))
            w = gather_rows(view, full_n)  # staged: ~3x faster than a transpose copy
            w, extra = (w, None) if prepare is None else prepare(w)
            bias.setflags(write=False)
            w.setflags(write=False)
            return bias, w, extra

        key = ("bias-led rhs", self.elem.str, nr, kr, k, None if prepare is None else prepare.__qualname__)
        bias, w, extra = owner.decoded(key, decode)
        return bias[:n], w[:, :n], extra


def _lows(w: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """A decoded W and its row lows, for the chain (:meth:`BiasRhsKernel._cached_rhs`)."""
    return w, row_lows(w)


class Pf32Kernel(BiasRhsKernel):
    """What the four pf32 kernels share: the packed RHS and the clamp/FZ epilogue."""

    elem = F32
    layout_kr = 1
    fz: bool
    #: ``fclamp`` (SME2 FCLAMP) or ``fmin_fmax`` (SME1).
    clamp_kind: ClassVar[Clamp]

    def bias_rhs(self, rhs_u8: NDArray[np.uint8], n: int, k: int, decode: bool) -> BiasRhs:
        """The RHS for :func:`fma32_chain`: a :class:`PackedRhs`'s decoding (flushed once under FZ,
        with its row lows), else W decoded (``decode``) or the blocks' view."""
        cached = self._cached_rhs(rhs_u8, n, k, flushed_row_lows if self.fz else _lows)
        if cached is not None:
            return BiasRhs(cached[0], cached[1], w_lows=cached[2])
        fmt = self.rhs_layout(n, k)
        bias, w = fmt.decode(rhs_u8) if decode else fmt.block_view(rhs_u8)
        return BiasRhs(bias, w)

    def epilogue(self, acc: NDArray[np.float32], clamp: ClampBounds) -> NDArray[np.float32]:
        """The clamp (FCLAMP or FMIN/FMAX; bounds flushed under FZ); NaNs: the default NaN."""
        lo, hi = clamp
        out: NDArray[np.float32] = numerics.clamp(acc, lo, hi, self.clamp_kind, fz=self.fz)
        return out

    @abc.abstractmethod
    def accumulate(self, lhs: NDArray[np.float32], rhs: BiasRhs) -> NDArray[np.float32]:
        """The binary32 accumulator: one fused multiply-add per k from the bias (see each kernel)."""

    def compute(self, lhs: NDArray[np.float32], rhs: BiasRhs, epilogue: ClampBounds) -> NDArray[np.float32]:
        return self.epilogue(self.accumulate(lhs, rhs), epilogue)


def _flushed(w: NDArray[np.float16]) -> tuple[NDArray[np.float16], None]:
    """A decoded W as FZ16 reads it (:meth:`BiasRhsKernel._cached_rhs`)."""
    return ftz16(w), None


class Pf16Kernel(BiasRhsKernel):
    """What the four pf16 kernels share: the packed RHS (FZ16-flushed on read) and the f16 epilogue."""

    elem = F16
    layout_kr = 2
    fz: bool
    clamp_kind: ClassVar[Clamp]
    dst_dtype = F16

    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> BiasRhs:
        """Under FZ16 the chains read W through the flush (``flush_w``), or W is a
        :class:`PackedRhs`'s decoding flushed once. The bias is read unflushed (the GEMV widens it
        with FCVT, which ignores FZ16; the MOPA kernels flush it themselves)."""
        cached = self._cached_rhs(rhs, n, k, _flushed if self.fz else None)
        if cached is not None:
            return BiasRhs(cached[0], cached[1])
        bias, w = self.rhs_layout(n, k).block_view(rhs)
        return BiasRhs(bias, w, flush_w=self.fz)

    @abc.abstractmethod
    def accumulate(self, lhs: NDArray[np.float16], rhs: BiasRhs) -> NDArray[np.float32]:
        """The binary32 accumulator from the bias (see each kernel)."""

    def compute(self, lhs: NDArray[np.float16], rhs: BiasRhs, epilogue: ClampBounds) -> NDArray[np.float16]:
        return self.epilogue(self.accumulate(lhs, rhs), epilogue)

    def epilogue(self, acc: NDArray[np.float32], clamp: ClampBounds) -> NDArray[np.float16]:
        """RN16, then the f16 clamp (operands through FZ16 when set), default NaN: :meth:`epilogue_exact`.

        Fast form: RN16 is monotonic and the (flushed) f16 bounds L <= H lie on the f16 grid, so
        with no NaN, clamp16(ftz16(RN16(acc)), L, H) == RN16(clamp32(acc, L, H)) wherever the latter
        is a normal f16 or an infinity (both clamp orders agree when L <= H); zeros and subnormals,
        where FZ16 and the sign of zero matter, are redone exactly. numpy's float16 min/max are
        slow, so the clamp runs in float32.
        """
        lo, hi = clamp
        lo16, hi16 = rn16(lo), rn16(hi)
        if self.fz:
            lo16, hi16 = ftz16(lo16), ftz16(hi16)
        lo_a, hi_a = np.float32(lo16), np.float32(hi16)
        if not lo_a <= hi_a or (lo_a == hi_a == 0 and np.signbit(hi_a) != np.signbit(lo_a)) or np.isnan(acc).any():
            return self.epilogue_exact(acc, clamp)
        clamped = acc if (lo_a == -np.inf and hi_a == np.inf) else np.minimum(np.maximum(acc, lo_a), hi_a)
        res: NDArray[np.float16] = rn16(clamped)
        redo = (res.view(np.uint16) & np.uint16(0x7C00)) == 0  # zeros and subnormals
        if redo.any():
            res[redo] = self.epilogue_exact(acc[redo], clamp)
        return res

    def epilogue_exact(self, acc: NDArray[np.float32], clamp: ClampBounds) -> NDArray[np.float16]:
        """:meth:`epilogue` step by step, as the kernels run it (the reference of its fast form)."""
        lo, hi = clamp
        # The wrappers narrow the float bounds with one FCVT; the clamp then runs in f16.
        # FZ16: the f16 clamp reads its operands through the flush.
        out: NDArray[np.float16] = numerics.clamp(rn16(acc), rn16(lo), rn16(hi), self.clamp_kind, fz=self.fz)
        return out
