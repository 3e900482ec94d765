"""kleidiref.teach's trace and why: computed by the kernels' own stages, ending on run_matmul's bits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kleidiref import cli
from kleidiref.golden import bundled_golden_dir, load_golden
from kleidiref.teach import resolve_kernel
from kleidiref.teach.explain import provenance
from kleidiref.teach.trace import random_problem, trace, trace_file, za_position

GOLDEN = sorted(p for p in bundled_golden_dir().glob("*.npz") if "qb4w" not in p.name)
# The default run: one case of every variant at two SVLs (plus the GEMV-sized cases at one).
SAMPLE = [
    p
    for p in GOLDEN
    if (p.name.endswith(("__svl128.npz", "__svl2048.npz")) and "_m6_" in p.name) or "k6_infnan__svl512" in p.name
]
SAMPLE += [
    next(p for p in GOLDEN if p.name.startswith(f"{v}__") and p.name.endswith("svl256.npz"))
    for v in ("pf32_igemm", "pf16_igemm", "pqs8_qc8w_igemm")
]


def _record(path: Path) -> list[int] | None:
    """Every step for short loops; else the first, middle and last (O(K^2) otherwise)."""
    data = load_golden(path)
    k = int(data["meta_K"])
    return None if k <= 64 else [0, 1, k // 8]


def _check_file(path: Path, name: str | None = None) -> None:
    t, want = trace_file(path, name, record=_record(path))
    assert t.out.dtype == want.dtype
    np.testing.assert_array_equal(t.out.view(np.uint8), np.ascontiguousarray(want).view(np.uint8), err_msg=str(path))


def test_sample_covers_every_variant() -> None:
    names = {p.name.split("__")[0] for p in SAMPLE}
    assert names >= {"pf32_gemm", "pf16_gemm", "pqs8_qc8w_gemm", "qp8_f32_qc8w_gemm", "pf32_gemm_fz", "pf16_gemm_fz"}
    assert {"pf32_igemm", "pf16_igemm", "pqs8_qc8w_igemm"} <= names


@pytest.mark.parametrize("path", SAMPLE, ids=lambda p: p.name)
def test_trace_ends_on_the_golden_output(path: Path) -> None:
    _check_file(path)


@pytest.mark.slow
@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_trace_ends_on_every_golden_output(path: Path) -> None:
    _check_file(path)


@pytest.mark.parametrize(
    "name",
    [
        "kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa",
        "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla",
        "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla",
        "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot",
        "kai_matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla",
    ],
)
def test_trace_of_the_other_kernels_on_golden_data(name: str) -> None:
    """The SME1 and GEMV kernels on the same packed data end on the file's out_sme1 / out_gemv*."""
    elem = "pf16" if "_f16_" in name else "pf32"
    _check_file(bundled_golden_dir() / f"{elem}_gemm__m1_n12_k6_infnan__svl512.npz", name)


def _float_prefix_run(variant: str, svl: int, kp: int) -> tuple[np.ndarray, np.ndarray]:
    """(epilogue of the trace's state after kp steps, run_matmul on the first kp columns), no clamp."""
    _, kern = resolve_kernel(variant, svl)
    m, n, k = 5, 7, 9
    dt = np.float16 if "pf16" in variant else np.float32
    rng = np.random.default_rng(7)
    a, w, b = (rng.standard_normal(s).astype(dt) for s in ((m, k), (k, n), (n,)))
    inf = (np.float32(-np.inf), np.float32(np.inf))
    t = trace(kern, kern.lhs_layout(m, k).encode(a), kern.rhs_layout(n, k).encode(w, b), m, n, k, inf)  # type: ignore[attr-defined]
    kr = kern.get_kr()
    kk = min(kp * kr, k)
    dst = np.zeros((m, n), dt)
    lhs = kern.lhs_layout(m, kk).encode(a[:, :kk])  # type: ignore[attr-defined]
    rhs = kern.rhs_layout(n, kk).encode(w[:kk], b)  # type: ignore[attr-defined]
    kern.run_matmul(m, n, kk, lhs, rhs, dst, n * dst.itemsize, dst.itemsize, -np.inf, np.inf)
    return kern.epilogue(t.state(kp), inf), dst  # type: ignore[attr-defined]


@pytest.mark.parametrize("variant", ["pf32_gemm", "pf16_gemm"])
@pytest.mark.parametrize("svl", [128, 512])
def test_state_after_k_steps_is_the_kernel_on_the_first_k(variant: str, svl: int) -> None:
    for kp in range(1, 6):
        got, want = _float_prefix_run(variant, svl, kp)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("variant", ["pqs8_qc8w_gemm", "qp8_f32_qc8w_gemm"])
def test_int8_states_are_the_integer_partial_sums(variant: str) -> None:
    """int8: the state after s steps is (bias' +) the dot of the first 4s codes, mod 2**32.

    Not a kernel run on the first k columns: qai8dxp quantizes each row over all of K, and the
    pqs8 packer folds the input zero point over all of K into bias'."""
    _, kern = resolve_kernel(variant, 256)
    m, n, k = 3, 5, 11
    lhs, rhs, params = random_problem(kern, m, n, k, 3)
    t = trace(kern, lhs, rhs, m, n, k, params)
    q = np.asarray(t.lhs.q if hasattr(t.lhs, "q") else t.lhs, np.int64)
    w = np.asarray(t.rhs.w, np.int64)
    base = np.asarray(t.rhs.bias, np.int64)[None, :] if variant.startswith("pqs8") else 0
    for s in t.recorded:
        want = (
            (base + q[:, : 4 * s] @ w[: 4 * s]).astype(np.int32)
            if s
            else np.broadcast_to(base, (m, n)).astype(np.int32)
        )
        np.testing.assert_array_equal(t.state(s), want)


@pytest.mark.parametrize("variant", ["pf32_gemm", "pf16_gemm", "pqs8_qc8w_gemm", "qp8_f32_qc8w_gemm"])
def test_outputs_and_states_do_not_depend_on_the_svl(variant: str) -> None:
    """The SME kernels accumulate every output in the same k order whatever the tile: every
    state and the output are SVL-independent; what the SVL changes is the blocking (mr, nr, the
    tiles, padding and where each element sits in the packed bytes)."""
    outs = []
    for svl in (128, 256, 512, 1024, 2048):
        _, kern = resolve_kernel(variant, svl)
        lhs, rhs, params = random_problem(kern, 4, 6, 10, 5)
        t = trace(kern, lhs, rhs, 4, 6, 10, params)
        outs.append((t.states, t.out))
    for states, out in outs[1:]:
        np.testing.assert_array_equal(states, outs[0][0])
        np.testing.assert_array_equal(out.view(np.uint8), outs[0][1].view(np.uint8))


def test_za_positions_tile_the_block() -> None:
    _, kern = resolve_kernel("pf32_gemm", 512)  # 2vlx2vl, VL 16: ZA0 ZA1 / ZA2 ZA3
    assert [za_position(kern, i, j).tile for i, j in ((0, 0), (0, 16), (16, 0), (31, 31), (32, 0))] == [0, 1, 2, 3, 0]
    assert za_position(kern, 33, 40).block == (1, 1)
    _, kern = resolve_kernel("qp8_f32_qc8w_gemm", 512)  # 1vlx4vl: ZA0..ZA3 side by side
    assert [za_position(kern, 3, j).tile for j in (0, 16, 32, 63)] == [0, 1, 2, 3]


def test_why_names_bytes_steps_and_events() -> None:
    path = bundled_golden_dir() / "pf16_gemm_fz__m7_n13_k5_subnormal_products__svl1024.npz"
    t, _ = trace_file(path)
    kk = t.kernel
    lines = provenance(t, 1, 2, lhs_layout=kk.lhs_layout(t.m, t.k), rhs_layout=kk.rhs_layout(t.n, t.k))  # type: ignore[attr-defined]
    text = "\n".join(lines)
    assert "ZA0.s horizontal slice 1, lane 2" in text
    assert "r1k0@" in text and "b2@" in text and "step 3 (k 4..4)" in text
    assert "flushed to zero (FZ)" in text
    with pytest.raises(ValueError, match="outside"):
        provenance(t, 99, 0)


def test_trace_bounds_and_sparse_records() -> None:
    _, kern = resolve_kernel("qp8_f32_qb4w_gemm", 512)
    with pytest.raises(TypeError, match="needs bl"):
        trace(kern, np.zeros(1, np.uint8), np.zeros(1, np.uint8), 1, 1, 32, None)
    with pytest.raises(ValueError, match="multiple of bl"):
        random_problem(kern, 1, 1, 48, 0, bl=32)
    _, kern = resolve_kernel("pf32_gemm", 512)
    lhs, rhs, params = random_problem(kern, 2, 2, 40, 0)
    with pytest.raises(ValueError, match="max_steps"):
        trace(kern, lhs, rhs, 2, 2, 40, params, max_steps=10)
    assert dataclasses.is_dataclass(trace(kern, lhs, rhs, 2, 2, 40, params, record=[0, 3]))


def test_cli_trace_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trace", "pf32_gemm", "--svl", "256", "--m", "2", "--n", "3", "--k", "3", "--hex"]) == 0
    out = capsys.readouterr().out
    assert "after step 3 (k 2..2)" in out and "(0x" in out and "output (= run_matmul)" in out
    f = str(bundled_golden_dir() / "pqs8_qc8w_gemm__m6_n8_k24_saturate__svl1024.npz")
    assert cli.main(["why", "pqs8_qc8w_gemm", "--inputs", f, "--element", "0,0"]) == 0
    out = capsys.readouterr().out
    assert "SMOPA" in out and "FRINTN, FCVTZS: -3442 (0xfffff28e)" in out
    assert "+ output zero point: -3570 (0xfffff20e)  <- clamped" in out and "output: -128 (0x80)" in out
    assert cli.main(["trace", "kai_matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla", "--m", "2"]) == 2
    assert "GEMV" in capsys.readouterr().err
