"""What a prepared convolution runs per call, one plan per group.

**The fast path** (the default): the kernel's arithmetic on an im2col gather of the input
(per-tap padded for pf16, padding taps = the padding value), skipping the indirection buffer and
the packed buffers, which only move elements. The float chains run on the transposed problem when
M > N (each output element is an independent chain of products ``a*w``, and fma32 and the f16
pair dot are symmetric in a and w); pqs8 runs one float32 GEMM with exact integer partial sums
and a float32 epilogue that provably rounds as the kernel's, or else the kernel's own integer
route. **The kernel path** (``fast=False``) runs the packers and kernel objects;
``tests/test_igemm_fast.py`` checks the two paths bit for bit.
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ..._buffers import roundup
from ..._engine import f16_pair_chain, fma32_chain
from ...conv import ConvGeometry, indirection_conv2d
from ...kai.int8_common import int8_matmul
from ...kai.pack.imatmul_pack_sme import F16, F32
from ...kai.params import kai_matmul_requantize32_params
from ...numerics import (
    FLT_MIN,
    FRINTN_MAGIC_BITS,
    fma32,
    frintn_biased_bits,
    ftz16,
    ftz32,
    round_half_even,
    wrap_i32,
)
from ..pqs8_qc8w_gemm import requantize
from .configs import IgemmConfig, pack_lhs, pack_weights

__all__ = ["FloatPlan", "GroupPlan", "KernelPathPlan", "Pqs8Plan"]


class GroupPlan:
    """One group's prepared weights and the route that runs them per call."""

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        raise NotImplementedError


class KernelPathPlan(GroupPlan):
    """``fast=False``: weights packed once by the imatmul RHS packer; per call the indirection
    buffer, the imatmul LHS packer and the MOPA kernel object, as XNNPACK runs them."""

    def __init__(
        self,
        cfg: IgemmConfig,
        variant: str,
        kern: Any,
        f: NDArray[Any],
        b: NDArray[Any],
        scale: NDArray[np.float32] | None,
        izp: int,
        params: Any,
    ) -> None:
        cout, kh, kw, kc = f.shape
        self.cfg, self.variant, self.izp, self.params = cfg, variant, izp, params
        self.kc, self.cout = kc, cout
        # Note: pf32/pf16 weights are packed in the layout the kernel reads (the KleidiAI imatmul
        # packer's, which the golden vectors store). XNNPACK itself packs float conv weights with its
        # generic xnn_pack_f{32,16}_conv_goki_w, identical except for pf16 at SVL 128, where it uses
        # nr = 16 against the kernel's nr = 8 (an upstream hazard, see xnnpack_conv_weights_mislaid).
        self.packed_w = pack_weights(cfg, variant, kern.svl, f, b, kh * kw, kc, scale, izp)

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        cfg, kc, cout = self.cfg, self.kc, self.cout
        n_img, h, w, _ = x.shape
        svl = kern.svl
        ind = indirection_conv2d(geom, cfg.lhs_packer(svl).get_m_step())
        image_bytes = h * w * kc * cfg.elem.itemsize
        pad = np.full(kc, self.izp, dtype=cfg.elem)  # memset(zero_buffer, input_padding_bytes, ...)
        # Note: a group's channels are copied out contiguously (XNNPACK points into the whole pixel
        # with a_offset = g * kc and pixel stride Cin); the packer copies the same kc elements.
        memory = np.concatenate([np.ascontiguousarray(x).reshape(-1).view(np.uint8), pad.view(np.uint8)])
        pad_ptr = n_img * image_bytes
        k = geom.ks * roundup(kc, cfg.kr)
        m = geom.m
        for i in range(n_img):
            lhs_packed = pack_lhs(cfg, svl, geom, ind, memory, kc, pad_ptr, i * image_bytes)
            dst = np.zeros((m, cout), dtype=kern.dst_dtype)
            if self.variant == "pqs8":
                kern.run_matmul(m, cout, k, lhs_packed, self.packed_w, dst, cout, 1, self.params)
            else:
                lo, hi = self.params
                item = cfg.elem.itemsize
                kern.run_matmul(m, cout, k, lhs_packed, self.packed_w, dst, cout * item, item, lo, hi)
            out[i] = dst.reshape(geom.hout, geom.wout, cout)


# --------------------------------------------------------------------------------------------
# The fast path of conv2d: the same arithmetic on an im2col gather (no pointers, no packing)
# --------------------------------------------------------------------------------------------


_scratch = threading.local()
#: Largest scratch buffer kept between calls (per thread and use).
_SCRATCH_MAX_BYTES = 16 << 20


def _scratch_buffer(tag: str, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
    """An uninitialised array for one internal use (``tag``), reused by the next call of this thread.

    Note: fresh large allocations are returned to the OS and fault their pages in again on every
    call (measured: up to 4x the cost of the im2col gather itself), so the gather's padded image,
    its output and the pqs8 GEMM output are kept (at most one of each per thread, up to 16 MiB).
    Nothing returned to the caller lives in these buffers.
    """
    dt = np.dtype(dtype)
    if math.prod(shape) * dt.itemsize > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype=dt)
    bufs: dict[str, NDArray[Any]] | None = getattr(_scratch, "bufs", None)
    if bufs is None:
        bufs = _scratch.bufs = {}
    arr = bufs.get(tag)
    if arr is None or arr.shape != shape or arr.dtype != dt:
        arr = bufs[tag] = np.empty(shape, dtype=dt)
        views: dict[Any, Any] | None = getattr(_scratch, "views", None)
        if views:
            views.clear()  # views on the replaced buffer would keep it alive
    return arr


class _GatherViews:
    """The views one im2col gather writes and reads, on this thread's scratch buffers ``xp``
    (the padded image) and ``buf`` (the matrix): built once per geometry and layout."""

    __slots__ = ("borders", "buf", "dst", "geom", "interior", "ones", "src", "xp", "zero")

    def __init__(
        self, img_shape: tuple[int, int, int], geom: ConvGeometry, kcp: int, dtype: Any, transposed: bool, ones: bool
    ) -> None:
        h, w, kc = img_shape
        g = self.geom = geom
        need_h, need_w = (g.hout - 1) * g.sh + (g.kh - 1) * g.dh + 1, (g.wout - 1) * g.sw + (g.kw - 1) * g.dw + 1
        xp = self.xp = _scratch_buffer("im2col.padded", (max(need_h, g.top + h), max(need_w, g.left + w), kc), dtype)
        self.interior = xp[g.top : g.top + h, g.left : g.left + w]
        if h * w * kc > 4096:
            # Note: only the border is filled (the image overwrites the rest): a pass fewer over big images
            self.borders = [
                v
                for v in (
                    xp[: g.top],
                    xp[g.top + h :],
                    xp[g.top : g.top + h, : g.left],
                    xp[g.top : g.top + h, g.left + w :],
                )
                if v.size
            ]
        else:
            self.borders = [xp]
        s0, s1, s2 = xp.strides
        taps, taps_st = (g.kh, g.kw), (g.dh * s0, g.dw * s1)
        pix, pix_st = (g.hout, g.wout), (g.sh * s0, g.sw * s1)
        k = g.ks * kcp
        # Note: read-only strided views of the padded image (np.ndarray: as_strided costs ~10 us)
        if transposed:
            buf = self.buf = _scratch_buffer("im2col", (k + ones, g.m), dtype)
            self.ones = buf[k:] if ones else None
            out = buf[:k].reshape(*taps, kcp, *pix)
            self.zero = out[:, :, kc:] if kcp > kc else None
            self.dst = out[:, :, :kc]
            self.src = np.ndarray((*taps, kc, *pix), dtype=xp.dtype, buffer=xp, strides=(*taps_st, s2, *pix_st))
        else:
            buf = self.buf = _scratch_buffer("im2col", (g.m, k + ones), dtype)
            self.ones = buf[:, k:] if ones else None
            out = buf[:, :k].reshape(*pix, *taps, kcp)
            self.zero = out[..., kc:] if kcp > kc else None
            self.dst = out[..., :kc]
            self.src = np.ndarray((*pix, *taps, kc), dtype=xp.dtype, buffer=xp, strides=(*pix_st, *taps_st, s2))
        self.src.flags.writeable = False

    def current(self, geom: ConvGeometry) -> bool:
        """Whether these views are for ``geom`` and still on this thread's scratch buffers."""
        bufs: dict[str, NDArray[Any]] = getattr(_scratch, "bufs", {})
        return geom is self.geom and bufs.get("im2col") is self.buf and bufs.get("im2col.padded") is self.xp


def _im2col(
    img: NDArray[Any],
    geom: ConvGeometry,
    pad_value: float | int,
    kcp: int,
    dtype: Any,
    *,
    transposed: bool,
    ones: bool = False,
) -> NDArray[Any]:
    """The im2col matrix of one HWC image, ``[M, ks*kcp]`` (or its transpose ``[ks*kcp, M]``).

    Row m (output pixel), column ``c*kcp + i`` (tap c, channel i) holds what the imatmul LHS
    packer stores for row m, k' = c*Kc + i: the input element, ``pad_value`` for a padding tap, 0
    for the per-chunk padding ``i >= kc``. One strided copy from a padded copy of the image (no
    Python loop over pixels). ``ones`` appends a column (row) of 1s, to fold a bias into a GEMM.
    Every element of the result and of the padded image it reads is written on every call.
    """
    # Note: the views are kept per thread for the last few (geometry, layout) keys: building them
    # costs more than the gather itself for small images. A prepared operator keeps its geometry
    # objects, so the identity of ``geom`` is the key (the cached views hold it alive).
    key = (id(geom), img.shape, kcp, np.dtype(dtype).char, transposed, ones)
    views: dict[Any, _GatherViews] | None = getattr(_scratch, "views", None)
    if views is None:
        views = _scratch.views = {}
    v = views.get(key)
    if v is None or not v.current(geom):
        v = _GatherViews(img.shape, geom, kcp, dtype, transposed, ones)
        if v.current(geom):  # not for buffers too big to keep
            if len(views) >= 8:
                views.clear()
            views[key] = v
    for b in v.borders:
        b[...] = pad_value
    v.interior[...] = img
    if v.ones is not None:
        v.ones[...] = 1
    if v.zero is not None:
        v.zero[...] = 0
    v.dst[...] = v.src
    return v.buf


#: Below this many channels the transposed gather is faster (the channel runs are short).
_ROW_GATHER_MIN_KC = 8


class FloatPlan(GroupPlan):
    """pf32/pf16, one group: the MOPA kernel's ``_compute`` on the im2col gather, bit for bit.

    Same bits because the kernel path only moves elements: the packed LHS decodes to exactly this
    chunk-padded im2col matrix and the packed RHS to the chunk-padded filter (tests compare the two
    paths). Each output element is an independent chain over k of products ``a*w``, and the float
    steps (fma32, the f16 pair dot) are symmetric in a and w, including their FZ flushes: for
    M > N the chain runs on the transposed problem (output [N, M]), whose long rows suit numpy.
    Prepared once: the per-tap padded weights (FZ16-flushed for pf16 under FZ) in both
    orientations and the bias FMOPA.
    """

    def __init__(
        self, variant: str, kern: Any, f: NDArray[Any], b: NDArray[Any], bounds: tuple[np.float32, np.float32]
    ) -> None:
        cout, kh, kw, kc = f.shape
        fz = kern.fz
        self.variant = variant
        self.kr = kr = 1 if variant == "pf32" else 2
        self.kcp = kcp = roundup(kc, kr)
        self.dt = dt = F32 if variant == "pf32" else F16
        ks = kh * kw
        w_pad = np.zeros((cout, ks, kcp), dtype=dt)  # a copy: the caller's filter may change later
        w_pad[:, :, :kc] = f.reshape(cout, ks, kc)
        w_nk: NDArray[Any] = w_pad.reshape(cout, ks * kcp)
        acc0: NDArray[np.float32]
        if variant == "pf32":
            acc0 = fma32(np.float32(1.0), b, np.float32(0.0), fz=fz)  # the bias FMOPA: -0 -> +0
        else:
            if fz:
                w_nk, b = cast(NDArray[Any], ftz16(w_nk)), ftz16(b)
            acc0 = b.astype(F32) + np.float32(0.0)
        self.w_nk, self.w_kn = w_nk, np.ascontiguousarray(w_nk.T)
        self.acc0 = acc0
        self.bounds = bounds

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        variant, fz = self.variant, kern.fz
        cout = self.w_nk.shape[0]
        m = geom.m
        acc0 = self.acc0
        lo, hi = self.bounds
        res: NDArray[Any]
        for i in range(x.shape[0]):
            a_t: NDArray[Any] = _im2col(x[i], geom, 0.0, self.kcp, self.dt, transposed=True)  # [K, M]
            if variant == "pf16" and fz:
                a_t = ftz16(a_t)
            if m > cout:  # output [N, M], the bias along rows
                acc = _chain(variant, np.broadcast_to(acc0[:, None], (cout, m)), self.w_nk, a_t, fz).T
            else:
                acc = _chain(variant, np.broadcast_to(acc0, (m, cout)), a_t.T, self.w_kn, fz)
            res = _pf32_epilogue(kern, acc, lo, hi) if variant == "pf32" else kern.epilogue(acc, (lo, hi))
            out[i].reshape(m, cout)[...] = res


def _chain(variant: str, acc0: NDArray[np.float32], a: NDArray[Any], w: NDArray[Any], fz: bool) -> NDArray[np.float32]:
    """``fma32_chain`` (pf32) or ``f16_pair_chain`` (pf16) of ``a`` [R, K] and ``w`` [K, C] from ``acc0``."""
    # Note: cutting outputs too small for the engine's tiling into column blocks on threads was
    # measured slower (GIL-bound per-k calls), so they stay on one thread.
    if variant == "pf32":
        return fma32_chain(acc0, a, w, fz=fz)
    return f16_pair_chain(acc0, a, w)


def _pf32_epilogue(kern: Any, acc: NDArray[np.float32], lo: np.float32, hi: np.float32) -> NDArray[np.float32]:
    """``kern.epilogue(acc, (lo, hi))``; XNNPACK's default unbounded clamp of a NaN-free ``acc`` is
    ``acc`` itself, returned without a copy (the caller writes it into the output once)."""
    if lo == -np.inf and hi == np.inf and not np.isnan(acc).any():
        return acc
    out: NDArray[np.float32] = kern.epilogue(acc, (lo, hi))
    return out


#: |partial sums| of one float32 GEMM stay exact below this.
_EXACT_F32 = float(2**24)


class Pqs8Plan(GroupPlan):
    """pqs8, one group: the MOPA kernel's ``_requant`` on the im2col gather (padding taps = izp).

    The kernel computes ``bias' + sum_k a*W`` (int32, wraps) with ``bias' = bias - izp * sum_k W``
    (the packer), then requantizes. The im2col rows are the packed LHS rows (the per-chunk padding
    is zero on both sides, so it is left out). Fast case, when the data bound it: one float32 GEMM
    (every partial sum < 2**24 whatever the summation order: exact), ``+ bias'`` in that GEMM or in
    float32 (both addends < 2**24 in magnitude: the one rounding is RN32(acc), which the kernel's
    SCVTF computes too; no int32 wrap possible),
    ``* scale`` (FMUL), ``rint`` (FRINTN), ``+ zp`` and the clamp in float32 (|r| < 2**31 - 256:
    FCVTZS cannot saturate nor the zp add wrap; an inexact r + zp is beyond 2**24, clamped the same).
    When neither the int8 range nor the weights bound the partial sums (K >= 1024), with few
    output pixels :func:`_pqs8_chunked_acc` checks the bound on the result instead of scanning the
    input. Otherwise the kernel's own integer route (``int8_matmul`` in K
    chunks, int32 adds, ``requantize``).

    Prepared once (what depends on the weights only): the float32 weights ``[N, K+1]`` with bias'
    as the last column, bias' (int32 and float32), the flushed scales and their maximum, the
    weights' bound on the partial sums; per call only the decisions that involve M or the input.
    """

    def __init__(
        self,
        kern: Any,
        f: NDArray[np.int8],
        b: NDArray[np.int32],
        scale: NDArray[np.float32],
        izp: int,
        params: kai_matmul_requantize32_params,
    ) -> None:
        cout = f.shape[0]
        k = f.shape[1] * f.shape[2] * f.shape[3]
        self.k, self.cout, self.izp = k, cout, izp
        w32 = np.empty((cout, k + 1), dtype=F32)  # [N, K(+1)], what the kernel decodes (transposed)
        w32[:, :k] = f.reshape(cout, k)
        # The packer's fold, bias' = bias - izp * sum_k W (int32 wrap); the column sums are exact in
        # float32 (|sum| <= 128 K < 2**24) and izp * sum fits int64.
        colsum = w32[:, :k].sum(axis=1).astype(np.int64)
        self.bias64 = bias64 = b.astype(np.int64) - izp * colsum
        self.b_absmax = float(np.abs(bias64).max(initial=0))
        self.bias_p = bias_p = wrap_i32(bias64)
        # Note: the bias' column is always stored; it is used (exact) only when folded.
        w32[:, k] = bias_p
        self.w32 = w32
        self.bias32 = bias_p.astype(F32)
        self.scale = scale.copy()  # the integer route's requantize flushes it itself
        # FMUL under FZ reads a subnormal scale as zero (the scales are > 0: subnormal iff < FLT_MIN)
        self.sc = sc = ftz32(scale).astype(F32) if kern.fz and float(scale.min()) < FLT_MIN else scale.copy()
        self.sc_max = float(sc.max(initial=0.0))
        # |partial sums| <= max|a| * max_n sum_k |W[k][n]| <= 128 * K * 128; the weights' sums of |W|
        # settle the cases the coarse bound does not (float32 sums of |W| are exact for K < 2**17).
        self.part_coarse = 128.0 * 128.0 * k
        self.w_colsum = 0.0
        if self.part_coarse >= _EXACT_F32:
            self.w_colsum = float(
                np.abs(w32[:, :k]).sum(axis=1, dtype=F32 if k < 2**17 else np.float64).max(initial=0.0)
            )
        self.params = params
        self.lo_f, self.hi_f = np.float32(params.min_value), np.float32(params.max_value)
        self.zp_f = np.float32(params.output_zero_point)
        self._sc_rows: dict[int, NDArray[np.float32]] = {}

    def _scale_rows(self, m: int) -> NDArray[np.float32]:
        # Note: the scales tiled over r rows, so that the multiply runs on long rows (a [M, N]
        # times [N] broadcast has N-long inner loops: 2x slower for N = 32).
        rows = math.gcd(m, max(1, 2048 // self.cout))
        sc_rows = self._sc_rows.get(rows)
        if sc_rows is None:
            sc_rows = self._sc_rows[rows] = np.broadcast_to(self.sc, (rows, self.cout)).reshape(-1)
        return sc_rows

    def run(self, kern: Any, geom: ConvGeometry, x: NDArray[Any], out: NDArray[Any]) -> None:
        k, cout, izp = self.k, self.cout, self.izp
        kc = x.shape[3]
        # When the coarse bound does not settle it, the weights' (prepared) bound; then, if the
        # output is much smaller than the weights, per-image checks on the result (``chunked``:
        # cheaper than a scan of the input), else the input's bound.
        part_bound = self.part_coarse
        if part_bound >= _EXACT_F32:
            part_bound = 128.0 * self.w_colsum
        chunked = part_bound >= _EXACT_F32 and 4 * geom.m < k
        if part_bound >= _EXACT_F32 and not chunked:
            x_max = int(np.abs(x.astype(np.int16)).max(initial=0))
            part_bound = float(max(x_max, abs(izp))) * self.w_colsum
        b_absmax, sc_max = self.b_absmax, self.sc_max
        fast = part_bound < _EXACT_F32 and b_absmax < _EXACT_F32 and (part_bound + b_absmax) * sc_max < 2.0**31 - 256
        # Note: with |partial sums| + |bias'| < 2**24 the bias rides in the GEMM as a row of W against
        # a column of 1s in A (every partial sum is still an exact integer): one pass fewer.
        fold = fast and part_bound + b_absmax < _EXACT_F32
        w32 = self.w32 if fold else self.w32[:, :k]
        if fast or chunked:
            sc_rows = self._scale_rows(geom.m)
            lo_z, hi_z, zp_f = self.lo_f - self.zp_f, self.hi_f - self.zp_f, self.zp_f
        # |RN32(y * scale)| < 2**22: the output stage of :func:`_requant_small` (a pass fewer)
        small = fast and not chunked and (part_bound + b_absmax) * sc_max < 2.0**22 - 1
        short = kc < _ROW_GATHER_MIN_KC
        for i in range(x.shape[0]):
            # [M, K(+1)] of int8 values (a transposed view when the channel runs are short)
            a = _im2col(x[i], geom, izp, kc, F32, transposed=short, ones=fold)
            if short:
                a = a.T
            y = _scratch_buffer("pqs8.acc", (a.shape[0], cout), F32)
            if chunked:
                exact = _pqs8_chunked_acc(a, w32, self.bias64, sc_max, y)
            elif fast:
                np.matmul(a, w32.T, out=y)  # exact integers
                if not fold:
                    y += self.bias32  # RN32(acc): exact addends, one rounding
                exact = True
            else:
                exact = False
            if exact:
                y.reshape(-1, sc_rows.size)[...] *= sc_rows  # FMUL
                if small:
                    _requant_small(y, self.params, out[i].reshape(-1, cout))
                    continue
                round_half_even(y, out=y)  # FRINTN
                # clamp(r + zp, lo, hi) as clamp(r, lo - zp, hi - zp) + zp: the same for |r| < 2**24
                # (exact), and both give a bound beyond; the last add writes the int8 result.
                np.clip(y, lo_z, hi_z, out=y)
                np.add(y, zp_f, out=out[i].reshape(-1, cout), casting="unsafe")
            else:  # the data do not bound the float route: the kernel's integer route
                acc = int8_matmul(a, w32.T, w_absmax=128.0)
                acc += self.bias_p[None, :]  # int32 wraps
                out[i] = requantize(acc, self.scale, self.params, fz=kern.fz).reshape(geom.hout, geom.wout, cout)


def _requant_small(v: NDArray[np.float32], params: kai_matmul_requantize32_params, out: NDArray[np.int8]) -> None:
    """``out = clamp(rint(v) + zp, lo, hi)`` (FRINTN, FCVTZS, the zp add, the clamp) for |v| < 2**22.

    ``v + 1.5 * 2**23`` rounds to ``1.5 * 2**23 + rint(v)`` with ties to even (the constant is even
    and the float32 spacing there is 1), whose bits are ``0x4B400000 + rint(v)``: the clamp to
    ``[lo - zp, hi - zp]`` runs on those int32 bits, their low byte is ``rint(v)`` mod 256 and an
    int8 (wrapping) add of zp gives the result, in [lo, hi]. Overwrites ``v``.
    """
    # Note: measured 25% faster than rint, a float clamp and a float add cast to int8 (the float
    # clip and the casting add are the slow passes).
    zp = params.output_zero_point
    bits = frintn_biased_bits(v)
    lo, hi = FRINTN_MAGIC_BITS + params.min_value - zp, FRINTN_MAGIC_BITS + params.max_value - zp
    np.clip(bits, np.int32(lo), np.int32(hi), out=bits)
    np.copyto(out, bits, casting="unsafe")  # the low byte (two's-complement truncation)
    np.add(out, np.int8(zp), out=out)


def _pqs8_chunked_acc(
    a: NDArray[np.float32],
    w32: NDArray[np.float32],
    bias64: NDArray[np.int64],
    sc_max: float,
    y: NDArray[np.float32],
) -> bool:
    """``y = RN32(bias' + a @ W)`` for K >= 1024 when the result bounds itself; False otherwise.

    K is cut into chunks of at most 1024 (|partial sums| <= 1024 * 128 * 128 = 2**24: each float32
    GEMM is exact), added in float64 with the unwrapped bias' (exact integers). If the total is
    below 2**31 in magnitude the kernel's int32 accumulator did not wrap and one cast is its SCVTF;
    the scaled value must also stay below 2**31 - 256 (see :class:`Pqs8Plan`).
    """
    k = a.shape[1]
    nch = -(-k // 1024)
    cuts = [j * k // nch for j in range(nch + 1)]
    acc = np.matmul(a[:, : cuts[1]], w32[:, : cuts[1]].T).astype(np.float64)
    for k0, k1 in itertools.pairwise(cuts[1:]):
        acc += np.matmul(a[:, k0:k1], w32[:, k0:k1].T)
    acc += bias64.astype(np.float64)
    amax = float(np.abs(acc).max(initial=0.0))
    if not (amax < 2.0**31 and amax * sc_max * (1 + 2.0**-20) < 2.0**31 - 256):
        return False
    np.copyto(y, acc, casting="unsafe")  # RN32 (SCVTF)
    return True
