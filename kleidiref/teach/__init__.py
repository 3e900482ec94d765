"""Teach SME tiling from the real kernels: packed-layout maps, byte <-> element, blocking per SVL.

Every view is generated from the objects the golden-verified kernels use: the kernel class from
:mod:`kleidiref.kai.registry`, its :class:`~kleidiref.kai.interface.TileParams` and its
``lhs_layout`` / ``rhs_layout`` objects (:mod:`kleidiref.kai.layouts`) with their ``describe``.
A top layer: nothing but :mod:`kleidiref.cli` imports it.

    >>> from kleidiref import teach
    >>> print(teach.layout_text("pf32_gemm", svl=512, m=3, n=5, k=2))   # doctest: +SKIP
    >>> teach.where("pf32_gemm", svl=512, m=3, n=5, k=2, lhs_offset=8)  # doctest: +SKIP
"""

from __future__ import annotations

from .kernels import Operand, grammar, operands, resolve_kernel, teachable_kernels, teachable_variants
from .layout_map import Run, Summary, element_offsets, format_map, runs, summarize, token, where_offset
from .views import layout_text, svl_table, where

__all__ = [
    "Operand",
    "Run",
    "Summary",
    "element_offsets",
    "format_map",
    "grammar",
    "layout_text",
    "operands",
    "resolve_kernel",
    "runs",
    "summarize",
    "svl_table",
    "teachable_kernels",
    "teachable_variants",
    "token",
    "where",
    "where_offset",
]
