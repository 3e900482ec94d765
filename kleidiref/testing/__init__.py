"""Test your own GEMM kernel against kleidiref: bit-exact comparison that explains mismatches.

:func:`assert_matches` recomputes the output through kleidiref and, on a mismatch, raises an
``AssertionError`` whose message names the stage that diverged (packing, integer accumulator,
float epilogue, clamp, tiling), the first differing element with its bits and ULP distance, the
known wrong-but-close reference the output equals if any (float64 matmul, per-element float
accumulation, ties-even qai8dx, XNNPACK qd8, SME1 vs SME2 clamp, MOPA vs GEMV epilogue, ...),
and whether KleidiAI's own test tolerance would have accepted it::

    from kleidiref.testing import assert_matches
    assert_matches(my_out, variant="qp8_f32_qc8w_gemm", target=kr.APPLE_M4,
                   lhs=x, rhs=w, scale=s, bias=b)

:func:`assert_packed_matches` checks a packed buffer byte for byte against a named packer.
:func:`error_bound` / :func:`exact_result` give the documented error model (see
:mod:`kleidiref.testing._errors`) for tests that opt out of bit-exactness. Hypothesis strategies
live in :mod:`kleidiref.testing.strategies` (imports hypothesis; nothing here does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..targets import Target
from ._diagnose import KLEIDIAI_TOLERANCES, KernelMismatch, diagnose, kleidiai_tolerance_ok, mismatch, ulp_distance
from ._errors import model
from ._packed import compare_packed, pack_reference, packer_decoder
from ._problem import VARIANT_NAMES, Problem, kernels_of

__all__ = [
    "KLEIDIAI_TOLERANCES",
    "VARIANT_NAMES",
    "KernelMismatch",
    "Problem",
    "assert_matches",
    "assert_packed_matches",
    "error_bound",
    "exact_result",
    "explain_mismatch",
    "kernels_of",
    "kleidiai_tolerance_ok",
    "reference",
    "ulp_distance",
]

_INF = float("inf")


def _problem(variant: str, target: Target | None, kernel: str | None, inputs: dict[str, Any]) -> Problem:
    allowed = {
        "pf32_gemm": {"bias", "clamp_min", "clamp_max"},
        "pf16_gemm": {"bias", "clamp_min", "clamp_max"},
        "qp8_f32_qc8w_gemm": {"scale", "bias", "clamp_min", "clamp_max"},
        "qp8_f32_qb4w_gemm": {"scales_bf16", "bl", "bias", "clamp_min", "clamp_max"},
        "pqs8_qc8w_gemm": {
            "input_zero_point",
            "requant_scale",
            "bias",
            "output_zero_point",
            "output_min",
            "output_max",
        },
    }
    if variant not in allowed:
        raise ValueError(f"variant must be one of {VARIANT_NAMES}, got {variant!r}")
    given = {k: v for k, v in inputs.items() if v is not None}
    extra = set(given) - allowed[variant] - {"lhs", "rhs"}
    if extra:
        raise TypeError(f"{variant} takes {sorted(allowed[variant])} besides lhs/rhs; unexpected: {sorted(extra)}")
    return Problem.build(variant=variant, target=target, kernel=kernel, **given)


#: Per-output-channel inputs, sliced with the columns of a sub-tile.
_PER_CHANNEL = ("bias", "scale", "scales_bf16", "requant_scale")


def _subtile(p: Problem, actual: Any, m_idx: int | None, n_idx: int | None) -> tuple[Problem, str]:
    """The problem of the rows/columns ``actual`` covers from (m_idx, n_idx), and a line saying so.

    Every output element depends only on its LHS row (quantized per row) and its RHS channel,
    so the sub-tile of the whole result is the whole result of the sliced problem; the kernel
    stays the one the whole problem selects (e.g. the GEMV for M = 1).
    """
    shape = np.shape(actual)
    if len(shape) != 2:
        raise ValueError(f"with m_idx/n_idx, actual must be a 2-D tile [rows, cols] (a view of dst), got shape {shape}")
    m0, n0 = int(m_idx or 0), int(n_idx or 0)
    ms, ns = shape
    if m0 < 0 or n0 < 0 or m0 + ms > p.m or n0 + ns > p.n:
        raise ValueError(
            f"a {ms} x {ns} tile at (m_idx={m0}, n_idx={n0}) does not fit the {p.m} x {p.n} output of these operands"
        )
    cut: dict[str, Any] = {"lhs": p.lhs[m0 : m0 + ms], "rhs": p.rhs[n0 : n0 + ns]}
    for name in _PER_CHANNEL:
        v = getattr(p, name)
        if v is not None:
            cut[name] = v[n0 : n0 + ns]
    where = (
        f"  sub-tile: rows {m0}..{m0 + ms - 1}, cols {n0}..{n0 + ns - 1} of the {p.m} x {p.n} output"
        " (indices below are within the tile)"
    )
    return p.with_(**cut), where


def _no_packed_subtile(lhs_packed: Any, rhs_packed: Any) -> None:
    if lhs_packed is not None or rhs_packed is not None:
        raise TypeError("lhs_packed/rhs_packed hold the whole operands: check them without m_idx/n_idx")


def _with_where(msg: str, where: str) -> str:
    """The report with the sub-tile line after its headline."""
    head, _, rest = msg.partition("\n")
    return f"{head}\n{where}\n{rest}" if rest else f"{head}\n{where}"


def reference(
    *,
    variant: str,
    lhs: NDArray[Any],
    rhs: NDArray[Any],
    target: Target | None = None,
    kernel: str | None = None,
    **inputs: Any,
) -> NDArray[Any]:
    """The kleidiref output for these inputs (the kernel XNNPACK selects on ``target`` unless named).

    ``inputs`` are the variant's ``gemm`` keywords: ``bias``, ``clamp_min``, ``clamp_max``;
    ``scale`` (qp8_f32_qc8w); ``scales_bf16``, ``bl`` (qp8_f32_qb4w, ``rhs`` as int8 codes
    [N, K] in [-8, 7]); ``input_zero_point``, ``requant_scale``, ``output_zero_point``,
    ``output_min``, ``output_max`` (pqs8_qc8w).
    """
    return _problem(variant, target, kernel, {"lhs": lhs, "rhs": rhs, **inputs}).run()


def explain_mismatch(
    actual: Any,
    *,
    variant: str,
    lhs: NDArray[Any],
    rhs: NDArray[Any],
    target: Target | None = None,
    kernel: str | None = None,
    lhs_packed: Any = None,
    rhs_packed: Any = None,
    exact: bool = True,
    nan_payloads: bool = False,
    m_idx: int | None = None,
    n_idx: int | None = None,
    **inputs: Any,
) -> str | None:
    """The report :func:`assert_matches` would raise, or None when ``actual`` matches."""
    p = _problem(variant, target, kernel, {"lhs": lhs, "rhs": rhs, **inputs})
    if m_idx is None and n_idx is None:
        return diagnose(actual, p, lhs_packed=lhs_packed, rhs_packed=rhs_packed, exact=exact, nan_payloads=nan_payloads)
    _no_packed_subtile(lhs_packed, rhs_packed)
    sub, where = _subtile(p, actual, m_idx, n_idx)
    msg = diagnose(actual, sub, exact=exact, nan_payloads=nan_payloads)
    return None if msg is None else _with_where(msg, where)


def assert_matches(
    actual: Any,
    *,
    variant: str,
    lhs: NDArray[Any],
    rhs: NDArray[Any],
    target: Target | None = None,
    kernel: str | None = None,
    lhs_packed: Any = None,
    rhs_packed: Any = None,
    exact: bool = True,
    nan_payloads: bool = False,
    m_idx: int | None = None,
    n_idx: int | None = None,
    **inputs: Any,
) -> None:
    """Assert that ``actual`` is what the KleidiAI kernel computes; explain the difference if not.

    ``actual`` [M, N] is your kernel's output. ``target`` (default: the current target) and
    ``kernel`` (default: the one XNNPACK selects there) say which kernel to model. Optionally
    pass your packed operands as ``lhs_packed`` / ``rhs_packed`` (bytes or uint8 arrays): they are
    compared first, byte for byte, with the first difference decoded as (row, k) or (n, k) and
    field. With ``exact=False`` elements within ``2 * error_bound(...)`` of the reference pass
    (your kernel shares the integer stage and rounds its float stages differently). NaNs compare
    equal whatever their payload unless ``nan_payloads=True`` (the kernels write the default NaN).

    Sub-tiles: with ``m_idx`` and/or ``n_idx`` (default 0), ``actual`` is a 2-D tile (e.g. the
    view ``dst[m_idx:m_idx + rows, n_idx:n_idx + cols]`` of a strided destination, as a kernel
    called at KleidiAI's offsets writes it) of the output of the whole operands ``lhs`` / ``rhs``
    (and per-channel inputs of all N channels); it is compared with that tile of the result of
    the kernel the whole problem selects. Report indices are within the tile.

    Example::

        >>> import numpy as np, kleidiref as kr
        >>> from kleidiref.testing import assert_matches, reference
        >>> a = np.ones((3, 5), np.float32); w = np.ones((4, 5), np.float32)
        >>> out = reference(variant="pf32_gemm", lhs=a, rhs=w, target=kr.APPLE_M4)
        >>> assert_matches(out, variant="pf32_gemm", lhs=a, rhs=w, target=kr.APPLE_M4)
        >>> assert_matches(out[1:, 2:], variant="pf32_gemm", lhs=a, rhs=w, target=kr.APPLE_M4, m_idx=1, n_idx=2)
    """
    __tracebackhide__ = True  # pytest: show the caller's line, not ours
    p = _problem(variant, target, kernel, {"lhs": lhs, "rhs": rhs, **inputs})
    where = None
    if m_idx is not None or n_idx is not None:
        _no_packed_subtile(lhs_packed, rhs_packed)
        p, where = _subtile(p, actual, m_idx, n_idx)
    # The cheap verdict now; the explanation only when the error is shown (once, after shrinking).
    err = mismatch(actual, p, lhs_packed=lhs_packed, rhs_packed=rhs_packed, exact=exact, nan_payloads=nan_payloads)
    if err is not None and where is not None:
        inner = err
        err = KernelMismatch(lambda: _with_where(str(inner), where))
    if err is not None:
        raise err


def assert_packed_matches(
    actual: Any,
    *,
    packer: str,
    svl: int | None = None,
    written: NDArray[np.bool_] | None = None,
    **pack_args: Any,
) -> None:
    """Assert a packed buffer equals what KleidiAI's ``packer`` writes for ``pack_args``.

    ``pack_args`` are the keywords of the kleidiref packer's ``pack`` method (e.g. ``lhs=`` for
    ``kai_lhs_pack_f32p2vlx1_f32_sme``; ``rhs=``, ``bias=`` for the SME RHS packers; ``lhs=``,
    ``mr=``, ``kr=``, ``sr=`` for ``kai_lhs_quant_pack_qai8dxp_f32``; ``rhs=``, ``scale=``,
    ``bias=``, ``nr=``, ``kr=`` for ``kai_rhs_pack_nxk_qsi8cxp_qsi8cx_neon``). ``written``
    restricts the comparison to the bytes the packer writes. The message names the first
    differing byte as (row, k) / (n, k) and field (data, bias, scale, row sum, zero point).

    Example::

        >>> import numpy as np
        >>> from kleidiref.testing import assert_packed_matches
        >>> from kleidiref.variants.pf32_gemm import kai_lhs_pack_f32p2vlx1_f32_sme
        >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
        >>> buf = kai_lhs_pack_f32p2vlx1_f32_sme(128).pack(a)
        >>> assert_packed_matches(buf, packer="kai_lhs_pack_f32p2vlx1_f32_sme", svl=128, lhs=a)
    """
    __tracebackhide__ = True
    obj, ref = pack_reference(packer, svl, pack_args)
    msg = compare_packed(actual, ref, packer_decoder(obj, pack_args), f"{packer} (SVL {obj.svl})", written)
    if msg is not None:
        raise AssertionError(f"kleidiref: {msg}")


def error_bound(
    *,
    variant: str,
    lhs: NDArray[Any],
    rhs: NDArray[Any],
    target: Target | None = None,
    kernel: str | None = None,
    **inputs: Any,
) -> NDArray[np.float64]:
    """Per-element bound on ``|kernel output - exact_result(...)|`` (float64 [M, N]; inf = out of model).

    The integer stages are exact; every float stage contributes a proven bound (see the table in
    :mod:`kleidiref.testing._errors` and docs/testing-your-kernel.md). Use ``2 * error_bound``
    as the tolerance between two kernels that round their float stages differently.
    """
    return model(_problem(variant, target, kernel, {"lhs": lhs, "rhs": rhs, **inputs}))[1]


def exact_result(
    *,
    variant: str,
    lhs: NDArray[Any],
    rhs: NDArray[Any],
    target: Target | None = None,
    kernel: str | None = None,
    **inputs: Any,
) -> NDArray[np.float64]:
    """The exact (float64-evaluated) value of each element on the quantized operands, clamped."""
    return model(_problem(variant, target, kernel, {"lhs": lhs, "rhs": rhs, **inputs}))[0]
