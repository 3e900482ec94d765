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
    **inputs: Any,
) -> str | None:
    """The report :func:`assert_matches` would raise, or None when ``actual`` matches."""
    p = _problem(variant, target, kernel, {"lhs": lhs, "rhs": rhs, **inputs})
    return diagnose(actual, p, lhs_packed=lhs_packed, rhs_packed=rhs_packed, exact=exact, nan_payloads=nan_payloads)


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

    Example::

        >>> import numpy as np, kleidiref as kr
        >>> from kleidiref.testing import assert_matches, reference
        >>> a = np.ones((3, 5), np.float32); w = np.ones((4, 5), np.float32)
        >>> out = reference(variant="pf32_gemm", lhs=a, rhs=w, target=kr.APPLE_M4)
        >>> assert_matches(out, variant="pf32_gemm", lhs=a, rhs=w, target=kr.APPLE_M4)
    """
    __tracebackhide__ = True  # pytest: show the caller's line, not ours
    p = _problem(variant, target, kernel, {"lhs": lhs, "rhs": rhs, **inputs})
    # The cheap verdict now; the explanation only when the error is shown (once, after shrinking).
    err = mismatch(actual, p, lhs_packed=lhs_packed, rhs_packed=rhs_packed, exact=exact, nan_payloads=nan_payloads)
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
