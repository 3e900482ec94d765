"""Regenerate the pictures and text views of docs/sme-tiling.md (tests/test_teach_docs.py checks them).

    PYTHONPATH=. python docs/make_sme_tiling_figures.py

Every file is produced by kleidiref.teach from the kernels' own layout objects and stages.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kleidiref.teach.views import (
    indirection_text,
    layout_picture,
    layout_text,
    svl_table,
    trace_picture,
    trace_text,
    why_text,
)

OUT = Path(__file__).resolve().parent / "sme-tiling"

GEMV = "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla"
QC4W_SME = "kai_matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa"


def figures() -> dict[str, str]:
    """File name (under docs/sme-tiling/) -> its content."""
    return {
        "pf32-mopa-svl512.svg": layout_picture("pf32_gemm", svl=512, m=3, n=5, k=2),
        "pf32-mopa-svl128.txt": layout_text("pf32_gemm", svl=128, m=3, n=5, k=2),
        "pf32-trace-svl128.txt": trace_text("pf32_gemm", svl=128, m=2, n=3, k=3, seed=1, hexa=True),
        "pf32-why-svl128.txt": why_text("pf32_gemm", svl=128, m=2, n=3, k=3, seed=1, i=1, j=2),
        "pf32-svl-table.txt": svl_table("pf32_gemm", [128, 256, 512, 1024, 2048], m=40, n=40, k=3) + "\n",
        "pf32-gemv-svl512.svg": layout_picture(GEMV, svl=512, m=1, n=5, k=2),
        "pf16-mopa-svl256.svg": layout_picture("pf16_gemm", svl=256, m=3, n=5, k=3),
        "pf16-trace-svl128.txt": trace_text("pf16_gemm", svl=128, m=2, n=3, k=5, seed=2, rows=2, cols=3, hexa=True),
        "pqs8-mopa-svl256.svg": layout_picture("pqs8_qc8w_gemm", svl=256, m=3, n=5, k=6),
        "pqs8-trace-svl128.txt": trace_text("pqs8_qc8w_gemm", svl=128, m=2, n=3, k=6, seed=3),
        "qc8w-mopa-svl128.svg": layout_picture("qp8_f32_qc8w_gemm", svl=128, m=3, n=5, k=6, max_lines=24),
        "qc8w-why-svl128.txt": why_text("qp8_f32_qc8w_gemm", svl=128, m=2, n=3, k=6, seed=3, i=1, j=2),
        "pf32-trace-svl128.svg": trace_picture("pf32_gemm", svl=128, m=5, n=9, k=4, seed=1),
        "qb4w-mopa-svl128.svg": layout_picture("qp8_f32_qb4w_gemm", svl=128, m=2, n=3, k=64, max_lines=24),
        "qb4w-trace-svl128.txt": trace_text("qp8_f32_qb4w_gemm", svl=128, m=2, n=3, k=64, seed=4, hexa=True),
        "qb4w-why-svl128.txt": why_text("qp8_f32_qb4w_gemm", svl=128, m=2, n=3, k=64, seed=4, i=1, j=2),
        "qb4w-trace-svl128.svg": trace_picture("qp8_f32_qb4w_gemm", svl=128, m=4, n=8, k=96, seed=4),
        "qc4w-mopa-svl128.svg": layout_picture("qp8_f32_qc4w_gemm", svl=128, m=3, n=5, k=8, max_lines=24),
        "qc4w-trace-svl128.txt": trace_text(QC4W_SME, svl=128, m=2, n=3, k=16, seed=5, rows=2, cols=3),
        "igemm-pf32-svl128.txt": indirection_text("pf32_igemm", svl=128, h=3, w=3, cin=3, kh=3, kw=3),
    }


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, text in figures().items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale (run docs/make_sme_tiling_figures.py):", ", ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
