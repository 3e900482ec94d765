"""Every teaching view works for every kernel kleidiref emulates (IGEMM included) at every SVL:
nothing is refused. (Where a view has nothing to show, e.g. the GEMV's unpacked LHS bytes, it
says why instead of failing: tested here too.)"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from kleidiref import cli
from kleidiref.kai.registry import UKERNELS
from kleidiref.targets import SUPPORTED_SVLS
from kleidiref.teach import layout_text, resolve_kernel, where
from kleidiref.teach.kernels import teachable_kernels, teachable_variants
from kleidiref.teach.views import trace_page, trace_picture, trace_text, why_text

KERNELS = teachable_kernels()
VERBS = ("layout", "where", "trace", "why")


def _view(name: str, svl: int, verb: str) -> str:
    _, kern = resolve_kernel(name, svl)
    m = 1 if kern.tile_params().m_step == 1 else 3
    n, k = 5, 64 if "qsi4c32p" in name else 9
    if verb == "layout":
        return layout_text(name, svl=svl, m=m, n=n, k=k)
    if verb == "where":
        return where(name, svl=svl, m=m, n=n, k=k, rhs_offset=0, rhs_element=(1, 1))
    if verb == "trace":
        return trace_text(name, svl=svl, m=m, n=n, k=k)
    return why_text(name, svl=svl, m=m, n=n, k=k, i=m - 1, j=4)


def test_the_list_is_complete() -> None:
    """39 kernels of 9 variants (with IGEMM's and the qc4w/qb4w NEON kernels)."""
    assert len(KERNELS) == 39
    assert {UKERNELS[n].variant for n in KERNELS} == set(teachable_variants())
    assert sum(n.startswith("kai_imatmul") for n in KERNELS) == 6


# The default run: every kernel and verb at one SVL (the SVLs rotate); -m slow: every SVL.
FAST = [(n, SUPPORTED_SVLS[i % len(SUPPORTED_SVLS)], v) for i, n in enumerate(KERNELS) for v in VERBS]
FULL = list(itertools.product(KERNELS, SUPPORTED_SVLS, VERBS))


def _check(name: str, svl: int, verb: str) -> None:
    text = _view(name, svl, verb)
    assert text.strip()
    if verb in ("trace", "why"):
        assert "output" in text
    if verb == "trace":  # the picture and the page too
        _, kern = resolve_kernel(name, svl)
        m = 1 if kern.tile_params().m_step == 1 else 3
        k = 64 if "qsi4c32p" in name else 9
        svg = trace_picture(name, svl=svl, m=m, n=5, k=k)
        assert ET.fromstring(svg).tag.endswith("svg")
        assert '<script type="application/json" id="trace-data">' in trace_page(name, svl=svl, m=m, n=5, k=k)


@pytest.mark.parametrize(("name", "svl", "verb"), FAST, ids=lambda x: str(x)[:70])
def test_every_kernel_and_verb(name: str, svl: int, verb: str) -> None:
    _check(name, svl, verb)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "svl", "verb"), FULL, ids=lambda x: str(x)[:70])
def test_every_kernel_verb_and_svl(name: str, svl: int, verb: str) -> None:
    _check(name, svl, verb)


def test_what_cannot_be_shown_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    """The GEMVs read the LHS row unpacked: asking for its packed bytes says so (not a crash)."""
    gemv = "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla"
    assert cli.main(["where", gemv, "--m", "1", "--lhs-offset", "0"]) == 2
    assert "not packed" in capsys.readouterr().err
    assert cli.main(["trace", gemv, "--m", "2"]) == 2
    assert "GEMV" in capsys.readouterr().err


def test_svl_side_by_side_for_every_kernel() -> None:
    """``layout KERNEL --svl 128,...,2048``: one row per SVL, for every kernel."""
    from kleidiref.teach import svl_table

    for name in KERNELS:
        _, kern = resolve_kernel(name, 128)
        m = 1 if kern.tile_params().m_step == 1 else 9
        rows = svl_table(name, SUPPORTED_SVLS, m=m, n=9, k=64).splitlines()[2:]
        assert [int(r.split()[0]) for r in rows] == list(SUPPORTED_SVLS), name
