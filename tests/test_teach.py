"""kleidiref.teach: layout maps, where, the SVL table and their CLI verbs, from the kernels' own layouts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kleidiref import cli
from kleidiref.teach import (
    element_offsets,
    layout_text,
    operands,
    resolve_kernel,
    runs,
    svl_table,
    teachable_variants,
    where,
    where_offset,
)

SVLS = (128, 256, 512, 1024, 2048)


def _problem(variant: str) -> tuple[int, int, int]:
    return (3, 5, 64) if "qb4w" in variant else (3, 5, 7)


@pytest.mark.parametrize("variant", teachable_variants())
@pytest.mark.parametrize("svl", SVLS)
def test_runs_partition_every_packed_byte(variant: str, svl: int) -> None:
    name, kernel = resolve_kernel(variant, svl)
    m, n, k = _problem(variant)
    for op in operands(kernel, name, m, n, k):
        if op.layout is None:
            continue
        rs = list(runs(op.layout))
        assert rs[0].offset == 0
        assert all(a.offset + a.size == b.offset for a, b in itertools.pairwise(rs))
        assert rs[-1].offset + rs[-1].size == op.layout.size()
        # byte -> element -> bytes comes back to the byte
        for r in rs[:: max(1, len(rs) // 40)]:
            info = where_offset(op.layout, r.offset + r.size - 1)
            if info.field == "data" and not info.padding:
                index = info.row if info.row is not None else info.col
                assert index is not None and info.k is not None
                assert r in element_offsets(op.layout, index, info.k)


def test_sizes_are_the_kernels_own() -> None:
    for variant in ("pf32_gemm", "pf16_gemm", "pqs8_qc8w_gemm", "qp8_f32_qc8w_gemm"):
        name, kernel = resolve_kernel(variant, 512)
        lhs, rhs = operands(kernel, name, 9, 70, 33)
        assert lhs.layout.size() == kernel.lhs_packed_size(9, 33)
        assert rhs.layout.size() == kernel.rhs_packed_size(70, 33)


def test_packed_bytes_hold_the_element_the_map_names() -> None:
    """Encode A with distinct values through the layout, then read each data run back."""
    name, kernel = resolve_kernel("pf32_gemm", 256)
    lhs, rhs = operands(kernel, name, 3, 5, 4)
    a = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    buf = lhs.layout.encode(a)
    for r in runs(lhs.layout):
        got = buf[r.offset : r.offset + r.size].view(np.float32)[0]
        assert got == (0 if r.info.padding else a[r.info.row, r.info.k])
    w = np.arange(20, dtype=np.float32).reshape(4, 5) + 100
    bias = np.arange(5, dtype=np.float32) - 7
    buf = rhs.layout.encode(w, bias)
    for r in runs(rhs.layout):
        got = buf[r.offset : r.offset + r.size].view(np.float32)[0]
        want = 0 if r.info.padding else bias[r.info.col] if r.info.field == "bias" else w[r.info.k, r.info.col]
        assert got == want


def test_grammar_decodes_at_the_svl() -> None:
    text = layout_text("pf32_gemm", svl=512, m=2, n=2, k=1)
    assert "f32p2vlx1: element f32, packed (p) in blocks of 32 rows (mr) (2vl = 2 x VL = 32 at SVL 512) x 1" in text
    text = layout_text("pf16_gemm", svl=512, m=2, n=2, k=2)
    assert "blocks of 32 rows (mr) (2vl = 2 x VL = 32 at SVL 512) x 2 consecutive k" in text
    text = layout_text("qp8_f32_qb4w_gemm", svl=256, m=2, n=2, k=32)
    assert "k0|1" in text and "s0q0" in text and "rs0" in text


def test_where_answers_both_ways() -> None:
    out = where("pf32_gemm", svl=512, m=3, n=5, k=4, lhs_offset=200, element=(2, 3), rhs_offset=0)
    assert "data (row 18, k 1) (padding: must be 0)" in out
    assert "LHS element (m 2, k 3) of f32p2vlx1: bytes 392..395" in out
    assert "bias (n 0)" in out
    with pytest.raises(ValueError, match="outside"):
        where("pf32_gemm", svl=512, m=3, n=5, k=4, lhs_offset=10**6)
    with pytest.raises(ValueError, match="not packed"):
        where("kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla", svl=512, m=1, n=5, k=4, lhs_offset=0)


def test_svl_table_scales_mr_nr() -> None:
    text = svl_table("pf32_gemm", [256, 512], m=40, n=40, k=3)
    rows = [line.split() for line in text.splitlines()[2:]]
    assert [r[1] for r in rows] == ["16", "32"]
    assert [r[6] for r in rows] == ["9", "4"]  # ceil(40/16)^2, ceil(40/32)^2


def test_unknown_names_and_every_variant() -> None:
    with pytest.raises(ValueError, match="unknown kernel or variant"):
        resolve_kernel("nope", 512)
    exact, kern = resolve_kernel("qp8_f32_qc4w_gemm", 512)  # qc4w has a packed-buffer interface now
    assert exact.endswith("_sme2_mopa") and kern.get_nr() == 64


def test_cli_layout_and_where(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["layout", "pf16_gemm", "--svl", "128", "--m", "2", "--n", "3", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "r0k0 r0k1 r1k0 r1k1" in out and "\x1b[" not in out
    assert cli.main(["layout", "pqs8_qc8w_igemm", "--svl", "256,512"]) == 0
    assert "tiles" in capsys.readouterr().out
    assert cli.main(["where", "pf32_gemm", "--svl", "512", "--rhs-element", "4,1"]) == 0
    assert "bytes" in capsys.readouterr().out
    assert cli.main(["where", "pf32_gemm"]) == 2
    assert "give --lhs-offset" in capsys.readouterr().err


def test_cli_pictures(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["layout", "qp8_f32_qb4w_gemm", "--svl", "128", "--k", "32", "--format", "svg"]) == 0
    svg = capsys.readouterr().out
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>") and "int4 pair" in svg
    assert cli.main(["layout", "pf32_gemm", "--format", "html"]) == 0
    assert "<svg" in capsys.readouterr().out
    assert cli.main(["trace", "pf16_gemm", "--svl", "256", "--k", "4", "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and 'id="trace-data"' in page


def test_cli_igemm_indirection(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["layout", "pqs8_qc8w_igemm", "--svl", "128", "--conv", "3,3,3,3,3"]) == 0
    out = capsys.readouterr().out
    assert "K = 9 taps x roundup(3, kr 4) = 36" in out
    assert "      4  0    1    2    3    4    5    6    7    8" in out  # the centre pixel sees every tap


def test_teach_is_a_top_layer() -> None:
    """Nothing but the CLI imports kleidiref.teach (it may import everything below it)."""
    import re
    from pathlib import Path

    pkg = Path(cli.__file__).resolve().parent
    offenders = [
        str(p.relative_to(pkg))
        for p in pkg.rglob("*.py")
        if "teach" not in p.relative_to(pkg).parts[:1]
        and p.name != "cli.py"
        and re.search(r"^\s*(from\s+\S*teach\b|import\s+\S*teach\b)", p.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []
