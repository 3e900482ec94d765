"""KleidiAI's uniform micro-kernel interface: the base classes every emulated ukernel derives from.

Each KleidiAI matmul kernel ``kai_matmul_clamp_<...>`` is a class of exactly that name; an
instance is the kernel at one SVL (and FPCR.FZ setting) and offers the functions of the C header
as methods without the name suffix::

    k = kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa(svl=512)
    k.get_m_step(), k.get_nr(), k.get_lhs_packed_offset(m_idx, k_), ...
    k.run_matmul(m, n, k_, lhs_packed, rhs_packed, dst, dst_stride_row, dst_stride_col,
                 clamp_min, clamp_max)

Buffers are byte buffers (numpy arrays or bytes-likes), offsets and strides are in bytes, so a
test can point the oracle at any sub-tile exactly as it points the real kernel. Packers follow
the same pattern (``kai_lhs_pack_*``, ``kai_rhs_pack_*``) with ``run_lhs_pack`` /
``run_rhs_pack`` and the size/offset functions of their headers.

Asserts of the C code (``KAI_ASSUME``) become ``ValueError``/``TypeError`` naming the assert.
The registry of every ukernel by name is :mod:`kleidiref.kai.registry`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .._buffers import Buffer, as_u8, check_count, check_float, require_bytes, writable_u8, write_matrix
from ..targets import resolve_svl

__all__ = [
    "MatmulKernel",
    "PackedLhsKernel",
    "RawLhsKernel",
    "TileParams",
    "Ukernel",
]


@dataclasses.dataclass(frozen=True)
class TileParams:
    """The blocking parameters a kernel reports (``kai_get_{mr,nr,kr,sr,m_step,n_step}``)."""

    mr: int
    nr: int
    kr: int
    sr: int
    m_step: int
    n_step: int


class Ukernel:
    """Common base of kernels and packers: an exact KleidiAI name, an SVL, a variant."""

    name: ClassVar[str] = ""
    #: The XNNPACK variant (``pf32_gemm`` ...) this ukernel belongs to.
    variant: ClassVar[str] = ""
    #: ``sme2``, ``sme`` (SME1), ``neon`` or ``c``: what the code needs to run.
    isa: ClassVar[str] = ""
    #: Upstream source path (KleidiAI repository), for the docs and error messages.
    source: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and cls.name and cls.__name__ != cls.name:
            raise TypeError(f"class {cls.__name__} must be named like its ukernel {cls.name}")

    def __init__(self, svl: int | None = None) -> None:
        # NEON kernels and packers ignore the SVL, so a target without SME can run them.
        self._svl = resolve_svl(svl, required=self.isa.startswith("sme"))

    @property
    def svl(self) -> int:
        """Streaming vector length in bits."""
        return self._svl

    @property
    def vlb(self) -> int:
        """Bytes per streaming vector (``kai_get_sme_vector_length_u8``)."""
        return self._svl // 8

    @property
    def vlh(self) -> int:
        """16-bit lanes per streaming vector (``kai_get_sme_vector_length_u16``)."""
        return self._svl // 16

    @property
    def vls(self) -> int:
        """32-bit lanes per streaming vector (``kai_get_sme_vector_length_u32``)."""
        return self._svl // 32

    def __repr__(self) -> str:
        return f"{self.name}(svl={self._svl})"

    def _assume(self, cond: bool, what: str, fn: str) -> None:
        """KAI_ASSUME(what) in kai_<fn>_<name>, as a ValueError."""
        if not cond:
            raise ValueError(f"KAI_ASSUME({what}) fails in kai_{fn}_{self.name.removeprefix('kai_')}")


class MatmulKernel(Ukernel, abc.ABC):
    """A ``kai_matmul_clamp_*`` kernel at one SVL, with KleidiAI's uniform interface.

    Subclasses define the tile parameters, the packed-operand sizes and ``_compute``; this base
    validates arguments like the C asserts do and stores the result with the requested
    destination strides, touching no other byte.
    """

    #: numpy dtype of the destination elements.
    dst_dtype: ClassVar[np.dtype[Any]] = np.dtype(np.float32)
    #: False for kernels that read the unpacked LHS row (the 1xN GEMV kernels).
    lhs_packed: ClassVar[bool] = True

    def __init__(self, svl: int | None = None, *, fz: bool = False) -> None:
        super().__init__(svl)
        if not isinstance(fz, bool):
            raise TypeError("fz must be a bool (FPCR.FZ/FZ16 set while the kernel runs)")
        #: FPCR.FZ (and FZ16) while the kernel runs; KleidiAI's tests run with it clear.
        self.fz = fz

    def __repr__(self) -> str:
        return f"{self.name}(svl={self._svl}{', fz=True' if self.fz else ''})"

    @abc.abstractmethod
    def tile_params(self) -> TileParams:
        """mr, nr, kr, sr, m_step, n_step at this SVL."""

    def get_m_step(self) -> int:
        return self.tile_params().m_step

    def get_n_step(self) -> int:
        return self.tile_params().n_step

    def get_mr(self) -> int:
        return self.tile_params().mr

    def get_nr(self) -> int:
        return self.tile_params().nr

    def get_kr(self) -> int:
        return self.tile_params().kr

    def get_sr(self) -> int:
        return self.tile_params().sr

    @abc.abstractmethod
    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        """Byte offset of row ``m_idx`` in the packed LHS (``m_idx % m_step == 0``)."""

    @abc.abstractmethod
    def get_rhs_packed_offset(self, n_idx: int, k: int) -> int:
        """Byte offset of column ``n_idx`` in the packed RHS (``n_idx % n_step == 0``)."""

    def get_dst_offset(self, m_idx: int, n_idx: int, dst_stride: int) -> int:
        """Byte offset of ``dst[m_idx][n_idx]`` for a row stride of ``dst_stride`` bytes."""
        m_idx, n_idx = check_count("m_idx", m_idx), check_count("n_idx", n_idx)
        dst_stride = check_count("dst_stride", dst_stride)
        p = self.tile_params()
        self._assume(m_idx % p.m_step == 0, "m_idx % m_step == 0", "get_dst_offset")
        self._assume(n_idx % p.n_step == 0, "n_idx % n_step == 0", "get_dst_offset")
        return m_idx * dst_stride + n_idx * self.dst_dtype.itemsize

    def get_dst_size(self, m: int, n: int) -> int:
        """Bytes of a dense m x n destination."""
        return check_count("m", m) * check_count("n", n) * self.dst_dtype.itemsize

    @abc.abstractmethod
    def lhs_packed_size(self, m: int, k: int) -> int:
        """Bytes the kernel reads from ``lhs_packed`` for an m x k problem."""

    @abc.abstractmethod
    def rhs_packed_size(self, n: int, k: int) -> int:
        """Bytes the kernel reads from ``rhs_packed`` for an n x k problem."""

    @abc.abstractmethod
    def _compute(
        self,
        m: int,
        n: int,
        k: int,
        lhs: NDArray[np.uint8],
        rhs_packed: NDArray[np.uint8],
        clamp_min: np.float32,
        clamp_max: np.float32,
    ) -> NDArray[Any]:
        """The m x n result (``dst_dtype``) from the packed operand bytes."""

    def _check_problem(self, m: object, n: object, k: object) -> tuple[int, int, int]:
        return check_count("m", m), check_count("n", n), check_count("k", k, minimum=1)

    def _check_dst_strides(self, dst_stride_row: object, dst_stride_col: object) -> tuple[int, int]:
        row = check_count("dst_stride_row", dst_stride_row)
        col = check_count("dst_stride_col", dst_stride_col)
        item = self.dst_dtype.itemsize
        if col != item:
            # Note: the SME float/pqs8 kernels ignore dst_stride_col and always store contiguous
            # elements; accepting another value would silently disagree with the caller.
            raise ValueError(
                f"dst_stride_col must be {item} (sizeof one output element): {self.name} "
                f"stores contiguous elements and does not support a column stride of {col}"
            )
        return row, col

    def _operands(
        self,
        m: object,
        n: object,
        k: object,
        lhs: Buffer,
        rhs_packed: Buffer,
        dst_stride_row: object,
        dst_stride_col: object,
        *,
        raw_lhs: bool = False,
    ) -> tuple[int, int, int, NDArray[np.uint8], NDArray[np.uint8], int, int]:
        """``run_matmul``'s argument checks, as the C asserts: ``(m, n, k, lhs_u8, rhs_u8, row, col)``.

        ``raw_lhs``: the LHS is one unpacked row (``KAI_ASSUME(m == 1)``) of ``lhs_dtype``.
        """
        m, n, k = self._check_problem(m, n, k)
        if raw_lhs:
            self._assume(m == 1, "m == 1", "run_matmul")
        row, col = self._check_dst_strides(dst_stride_row, dst_stride_col)
        lhs_name = "lhs" if raw_lhs else "lhs_packed"
        lhs_dtype = getattr(self, "lhs_dtype", None)
        if raw_lhs and isinstance(lhs, np.ndarray) and lhs.dtype != lhs_dtype:
            raise TypeError(f"lhs must be {lhs_dtype} for {self.name}, got {lhs.dtype}")
        lhs_u8 = as_u8(lhs, lhs_name)
        rhs_u8 = as_u8(rhs_packed, "rhs_packed")
        where = f"kai_run_{self.name}(k={k})" if raw_lhs else f"kai_run_{self.name}(m={m}, k={k})"
        require_bytes(lhs_u8, self.lhs_packed_size(m, k), lhs_name, where)
        require_bytes(rhs_u8, self.rhs_packed_size(n, k), "rhs_packed", f"kai_run_{self.name}(n={n}, k={k})")
        return m, n, k, lhs_u8, rhs_u8, row, col

    def _store(self, dst: Buffer, values: NDArray[Any], row: int, col: int) -> None:
        out = writable_u8(dst, "dst")
        write_matrix(out, values.astype(self.dst_dtype, copy=False), row, col, "dst", f"kai_run_{self.name}")


class PackedLhsKernel(MatmulKernel):
    """A kernel that reads a packed LHS: ``kai_run_<name>(m, n, k, lhs_packed, rhs_packed, ...)``."""

    def run_matmul(
        self,
        m: int,
        n: int,
        k: int,
        lhs_packed: Buffer,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        dst_stride_col: int,
        clamp_min: float,
        clamp_max: float,
    ) -> None:
        """``kai_run_<name>``: compute the m x n block and store it at ``dst`` with the strides."""
        lo, hi = check_float("clamp_min", clamp_min), check_float("clamp_max", clamp_max)
        m, n, k, lhs_u8, rhs_u8, row, col = self._operands(
            m, n, k, lhs_packed, rhs_packed, dst_stride_row, dst_stride_col
        )
        if m == 0 or n == 0:
            return
        self._store(dst, self._compute(m, n, k, lhs_u8, rhs_u8, lo, hi), row, col)


class RawLhsKernel(MatmulKernel):
    """A 1-row kernel that reads the LHS row unpacked (XNNPACK's ``gemv_noop`` path).

    ``kai_run_<name>(m, n, k, lhs, lhs_stride, rhs_packed, dst, dst_stride_row, dst_stride_col,
    clamp_min, clamp_max)`` with ``m == 1``.
    """

    lhs_packed = False
    #: Element type of the unpacked LHS row.
    lhs_dtype: ClassVar[np.dtype[Any]] = np.dtype(np.float32)

    def get_lhs_offset(self, m_idx: int, k: int) -> int:
        """``kai_get_lhs_offset_<name>``: only row 0 exists (``KAI_ASSUME(m_idx == 0)``)."""
        self._assume(check_count("m_idx", m_idx) == 0, "m_idx == 0", "get_lhs_offset")
        return 0

    def get_lhs_packed_offset(self, m_idx: int, k: int) -> int:
        """Same as :meth:`get_lhs_offset`: the GEMV reads the raw row."""
        return self.get_lhs_offset(m_idx, k)

    def lhs_packed_size(self, m: int, k: int) -> int:
        return m * k * self.lhs_dtype.itemsize

    def get_dst_offset(self, m_idx: int, n_idx: int, dst_stride: int) -> int:
        self._assume(check_count("m_idx", m_idx) == 0, "m_idx == 0", "get_dst_offset")
        return super().get_dst_offset(m_idx, n_idx, dst_stride)

    def run_matmul(
        self,
        m: int,
        n: int,
        k: int,
        lhs: Buffer,
        lhs_stride: int,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        dst_stride_col: int,
        clamp_min: float,
        clamp_max: float,
    ) -> None:
        """``kai_run_<name>`` on the unpacked row ``lhs`` (``lhs_stride`` is unused, as upstream)."""
        check_count("lhs_stride", lhs_stride)
        lo, hi = check_float("clamp_min", clamp_min), check_float("clamp_max", clamp_max)
        m, n, k, lhs_u8, rhs_u8, row, col = self._operands(
            m, n, k, lhs, rhs_packed, dst_stride_row, dst_stride_col, raw_lhs=True
        )
        if n == 0:
            return
        self._store(dst, self._compute(m, n, k, lhs_u8, rhs_u8, lo, hi), row, col)
