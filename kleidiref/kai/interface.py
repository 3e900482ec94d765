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

Every kernel runs in three public stages, which ``run_matmul`` chains after checking its
arguments as the C asserts do, and which fast paths and diagnostics call directly:

    decode_lhs(lhs_bytes, m, k)  decode_rhs(rhs_bytes, n, k)   -> the operands the kernel reads
    compute(lhs, rhs, epilogue)                                -> the m x n result (dst_dtype)

``compute`` is ``accumulate`` then ``epilogue`` in every family whose arithmetic splits there
(the float, qc8w and pqs8 kernels); the blockwise qb4w kernels interleave the block scales with
the accumulation, so their ``compute`` is one stage. ``epilogue`` arguments: ``(clamp_min,
clamp_max)`` as float32 for the float-output kernels, :class:`kai_matmul_requantize32_params`
for the requantizing (int8-output) ones.

Asserts of the C code (``KAI_ASSUME``) become ``ValueError``/``TypeError`` naming the assert.
The registry of every ukernel by name is :mod:`kleidiref.kai.registry`.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .._buffers import Buffer, as_u8, check_count, check_float, require_bytes, writable_u8, write_matrix
from ..targets import resolve_svl
from .params import kai_matmul_requantize32_params

__all__ = [
    "BlockwiseKernel",
    "Branch",
    "ClampBounds",
    "MatmulKernel",
    "PackedLhsKernel",
    "RawLhsKernel",
    "RawLhsRow",
    "RequantizingKernel",
    "TileParams",
    "Ukernel",
]


#: The ISA branches of XNNPACK's KleidiAI gemm configs, most capable first (``gemm-config.c``);
#: :mod:`kleidiref.configs` orders them per config.
Branch = Literal["sme2", "sme", "i8mm", "dotprod"]

#: The float kernels' epilogue argument: ``(clamp_min, clamp_max)`` as float32.
ClampBounds: TypeAlias = "tuple[np.float32, np.float32]"


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

    def c_name(self, fn: str) -> str:
        """The C function ``kai_<fn>_<name without kai_>``: ``c_name("run")`` is ``kai_run_matmul_clamp_...``."""
        return f"kai_{fn}_{self.name.removeprefix('kai_')}"

    def _assume(self, cond: bool, what: str, fn: str) -> None:
        """KAI_ASSUME(what) in kai_<fn>_<name>, as a ValueError."""
        if not cond:
            raise ValueError(f"KAI_ASSUME({what}) fails in {self.c_name(fn)}")


class MatmulKernel(Ukernel, abc.ABC):
    """A ``kai_matmul_clamp_*`` kernel at one SVL, with KleidiAI's uniform interface.

    Subclasses define the tile parameters, the packed-operand sizes and the stages
    (:meth:`decode_lhs`, :meth:`decode_rhs`, :meth:`compute`); the calling-convention bases
    below validate ``run_matmul``'s arguments like the C asserts do and store the result with
    the requested destination strides, touching no other byte.
    """

    #: numpy dtype of the destination elements.
    dst_dtype: ClassVar[np.dtype[Any]] = np.dtype(np.float32)
    #: False for kernels that read the unpacked LHS row (the 1xN GEMV kernels).
    lhs_packed: ClassVar[bool] = True
    #: ``kai_run_<name>``: its arguments are those of the calling convention (the bases below).
    run_matmul: Callable[..., None]

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

    # -- the stages --------------------------------------------------------------------------

    @abc.abstractmethod
    def decode_lhs(self, lhs: NDArray[np.uint8], m: int, k: int) -> Any:
        """Stage 1: the LHS operand (as the kernel reads it) from the LHS bytes of an m x k problem."""

    @abc.abstractmethod
    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int) -> Any:
        """Stage 1: the RHS operand (as the kernel reads it) from the packed RHS of an n x k problem."""

    @abc.abstractmethod
    def compute(self, lhs: Any, rhs: Any, epilogue: Any) -> NDArray[Any]:
        """Stages 2 and 3: the m x n result (``dst_dtype``) from decoded operands."""

    # -- argument checks shared by the calling conventions ----------------------------------

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
    ) -> tuple[int, int, int, NDArray[np.uint8], NDArray[np.uint8], int, int]:
        """``run_matmul``'s argument checks, as the C asserts: ``(m, n, k, lhs_u8, rhs_u8, row, col)``.

        Without ``lhs_packed`` the LHS is one unpacked row (``KAI_ASSUME(m == 1)``) of ``lhs_dtype``.
        """
        raw_lhs = not self.lhs_packed
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
        where = f"{self.c_name('run')}(k={k})" if raw_lhs else f"{self.c_name('run')}(m={m}, k={k})"
        require_bytes(lhs_u8, self.lhs_packed_size(m, k), lhs_name, where)
        require_bytes(rhs_u8, self.rhs_packed_size(n, k), "rhs_packed", f"{self.c_name('run')}(n={n}, k={k})")
        return m, n, k, lhs_u8, rhs_u8, row, col

    def _check_dst(self, dst: Buffer, m: int, n: int, row: int) -> None:
        """The destination, before anything is computed: typed as the kernel's output (or raw
        bytes), rows that do not overlap, and room for every element the strides address."""
        if isinstance(dst, np.ndarray) and dst.dtype not in (self.dst_dtype, np.dtype(np.uint8)):
            raise TypeError(
                f"dst must be {self.dst_dtype} (the kernel's output) or uint8 bytes, got {dst.dtype}: "
                "the kernel's bits would be reinterpreted"
            )
        out = writable_u8(dst, "dst")
        item = self.dst_dtype.itemsize
        if m > 1 and n > 0 and row < n * item:
            raise ValueError(
                f"dst_stride_row {row} is smaller than one row of {n} elements ({n * item} bytes): rows would overlap"
            )
        if m and n:
            require_bytes(out, (m - 1) * row + n * item, "dst", f"kai_run_{self.name}(m={m}, n={n})")

    def _run(
        self,
        m: int,
        n: int,
        k: int,
        lhs_u8: NDArray[np.uint8],
        rhs_u8: NDArray[np.uint8],
        epilogue: Any,
        dst: Buffer,
        row: int,
        col: int,
    ) -> None:
        """Chain the stages and store the result (nothing to do for an empty result)."""
        self._check_dst(dst, m, n, row)
        if m == 0 or n == 0:
            return
        res = self.compute(self.decode_lhs(lhs_u8, m, k), self.decode_rhs(rhs_u8, n, k), epilogue)
        self._store(dst, res, row, col)

    def _store(self, dst: Buffer, values: NDArray[Any], row: int, col: int) -> None:
        out = writable_u8(dst, "dst")
        write_matrix(out, values.astype(self.dst_dtype, copy=False), row, col, "dst", self.c_name("run"))


class PackedLhsKernel(MatmulKernel):
    """A float-output kernel on a packed LHS: ``kai_run_<name>(m, n, k, lhs_packed, rhs_packed, ...)``."""

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
        self._run(m, n, k, lhs_u8, rhs_u8, (lo, hi), dst, row, col)


class RawLhsRow(MatmulKernel):
    """A 1-row kernel that reads the LHS row unpacked (XNNPACK's ``gemv_noop`` path): its offsets."""

    lhs_packed = False
    #: Element type of the unpacked LHS row.
    lhs_dtype: ClassVar[np.dtype[Any]] = np.dtype(np.float32)

    def get_lhs_offset(self, m_idx: int, k: int) -> int:
        """``kai_get_lhs_offset_<name>``: only row 0 exists (``KAI_ASSUME(m_idx == 0)``)."""
        del k  # the C signature's k: unused upstream too
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

    def raw_row(self, lhs: NDArray[np.uint8], m: int, k: int) -> NDArray[Any]:
        """The unpacked LHS rows (``m == 1``) as [m, k] of ``lhs_dtype`` (a copy of their bytes)."""
        item = self.lhs_dtype.itemsize
        return np.ascontiguousarray(lhs[: m * k * item]).view(self.lhs_dtype).reshape(m, k)


class RawLhsKernel(RawLhsRow):
    """A float-output 1-row kernel on the unpacked LHS row.

    ``kai_run_<name>(m, n, k, lhs, lhs_stride, rhs_packed, dst, dst_stride_row, dst_stride_col,
    clamp_min, clamp_max)`` with ``m == 1``.
    """

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
        m, n, k, lhs_u8, rhs_u8, row, col = self._operands(m, n, k, lhs, rhs_packed, dst_stride_row, dst_stride_col)
        self._run(m, n, k, lhs_u8, rhs_u8, (lo, hi), dst, row, col)


class RequantizingKernel(MatmulKernel):
    """An int8-output kernel whose epilogue requantizes with :class:`kai_matmul_requantize32_params`.

    ``kai_run_<name>(m, n, k, lhs, rhs_packed, dst, dst_stride_row, dst_stride_col, params)``;
    ``lhs`` is the packed LHS, or the raw row (``m == 1``) for a :class:`RawLhsRow` kernel.
    """

    dst_dtype = np.dtype(np.int8)

    def run_matmul(
        self,
        m: int,
        n: int,
        k: int,
        lhs: Buffer,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        dst_stride_col: int,
        params: kai_matmul_requantize32_params,
    ) -> None:
        """``kai_run_<name>``; ``params`` is the C ``const struct kai_matmul_requantize32_params*``."""
        if not isinstance(params, kai_matmul_requantize32_params):
            raise TypeError(f"params must be a kai_matmul_requantize32_params, got {type(params).__name__}")
        m, n, k, lhs_u8, rhs_u8, row, col = self._operands(m, n, k, lhs, rhs_packed, dst_stride_row, dst_stride_col)
        self._run(m, n, k, lhs_u8, rhs_u8, params, dst, row, col)


class BlockwiseKernel(MatmulKernel):
    """A kernel on blockwise-quantized weights: ``bl`` (the quant block length) follows ``k``.

    ``kai_run_<name>(m, n, k, bl, lhs_packed, rhs_packed, dst, dst_stride_row, dst_stride_col,
    scalar_min, scalar_max)``; the RHS functions take ``bl`` too (``decode_rhs(rhs, n, k, bl)``).
    """

    #: True for kernels that assert k > 0, n > 0 and m > 0 (m == 1 for a GEMV), as the SME2 ones;
    #: False for those that return at m == 0 (the NEON ones).
    asserts_shape: ClassVar[bool] = False
    #: A 1-row (GEMV) kernel.
    gemv: ClassVar[bool] = False

    def check_bl(self, bl: object, fn: str) -> int:
        """``bl`` as the C asserts it: given, and a multiple of 32 (``kai_bl``)."""
        if bl is None:
            raise TypeError(f"{self.c_name(fn)} needs bl (the quant block length)")
        b = check_count("bl", bl, minimum=1)
        self._assume(b % 32 == 0, "(bl % kai_bl) == 0", fn)
        return b

    @abc.abstractmethod
    def rhs_packed_size(self, n: int, k: int, bl: int | None = None) -> int:
        """Bytes the kernel reads from ``rhs_packed`` for an n x k problem in blocks of ``bl``."""

    @abc.abstractmethod
    def decode_rhs(self, rhs: NDArray[np.uint8], n: int, k: int, bl: int | None = None) -> Any:
        """Stage 1: the RHS operand from the packed RHS of an n x k problem in blocks of ``bl``."""

    def run_matmul(
        self,
        m: int,
        n: int,
        k: int,
        bl: int,
        lhs_packed: Buffer,
        rhs_packed: Buffer,
        dst: Buffer,
        dst_stride_row: int,
        dst_stride_col: int,
        scalar_min: float,
        scalar_max: float,
    ) -> None:
        """``kai_run_<name>(m, n, k, bl, lhs_packed, rhs_packed, dst, dst_stride_row, dst_stride_col,
        scalar_min, scalar_max)``."""
        m, n, k = check_count("m", m), check_count("n", n), check_count("k", k)
        b = self.check_bl(bl, "run_matmul")
        self._assume(k % b == 0, "(k % bl) == 0", "run_matmul")
        row, col = self._check_dst_strides(dst_stride_row, dst_stride_col)
        lo, hi = check_float("scalar_min", scalar_min), check_float("scalar_max", scalar_max)
        if self.asserts_shape:
            self._assume(k > 0, "k > 0", "run_matmul")
            self._assume(n > 0, "n > 0", "run_matmul")
            self._assume(m == 1 if self.gemv else m > 0, "m == 1" if self.gemv else "m > 0", "run_matmul")
        lhs_u8 = as_u8(lhs_packed, "lhs_packed")
        rhs_u8 = as_u8(rhs_packed, "rhs_packed")
        self._check_dst(dst, m, n, row)
        if m == 0 or n == 0:
            return
        require_bytes(lhs_u8, self.lhs_packed_size(m, k), "lhs_packed", f"{self.c_name('run')}(m={m}, k={k})")
        require_bytes(rhs_u8, self.rhs_packed_size(n, k, b), "rhs_packed", f"{self.c_name('run')}(n={n}, k={k})")
        res = self.compute(self.decode_lhs(lhs_u8, m, k), self.decode_rhs(rhs_u8, n, k, b), (lo, hi))
        self._store(dst, res, row, col)
