"""kleidiref.teach's trace of the blockwise qb4w kernels: one step per quant block, computed by
the kernels' own stages (block_sums, accumulate, epilogue), ending on every golden output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kleidiref import cli
from kleidiref.golden import bundled_golden_dir
from kleidiref.kai.layouts import Qai8dxpLayout
from kleidiref.kai.pack import Qai8dxpRows
from kleidiref.kai.qb4w_common import rsum_chain
from kleidiref.quant import qb4
from kleidiref.teach import resolve_kernel
from kleidiref.teach.explain import provenance
from kleidiref.teach.trace import random_problem, trace, trace_file
from kleidiref.variants import qp8_f32_qb4w_gemm as q

SME2 = sorted(bundled_golden_dir().glob("qp8_f32_qb4w_gemm__*.npz"))
NEON = sorted(bundled_golden_dir().glob("qp8_f32_qb4w_gemm_neon__*.npz"))


def _kernels(path: Path) -> list[str]:
    """The kernels whose output the file records (SME2: MOPA, + the dot GEMV at M = 1; NEON:
    both branches' main kernels, + their GEMVs at M = 1)."""
    m1 = "__m1_" in path.name
    if path in NEON:
        main = [q.NEON_I8MM, q.NEON_DOT] + ([q.NEON_I8MM_GEMV, q.NEON_DOT_GEMV] if m1 else [])
        return [k.name for k in main]
    return [q.SME2_MOPA.name] + ([q.SME2_DOT.name] if m1 else [])


CASES = [(p, k) for p in SME2 + NEON for k in _kernels(p)]


def test_every_svl_and_kernel_is_covered() -> None:
    svls = {p.name.split("__svl")[-1] for p in SME2}
    assert svls == {"128.npz", "256.npz", "512.npz", "1024.npz", "2048.npz"}
    assert {k for _, k in CASES} == {
        k.name for k in (q.SME2_MOPA, q.SME2_DOT, q.NEON_I8MM, q.NEON_I8MM_GEMV, q.NEON_DOT, q.NEON_DOT_GEMV)
    }


@pytest.mark.parametrize(("path", "name"), CASES, ids=lambda x: x.name if isinstance(x, Path) else x[15:60])
def test_trace_ends_on_the_golden_output(path: Path, name: str) -> None:
    """Every block recorded; the epilogue of the last state is the file's output, bit for bit."""
    t, want = trace_file(path, name)
    assert t.blockwise and t.steps == t.k // t.kstep and t.kstep == t.bl
    np.testing.assert_array_equal(t.out.view(np.uint32), want.view(np.uint32), err_msg=f"{path.name} {name}")
    assert t.block_sums is not None and t.block_sums.dtype == np.int32
    q_, w = t.lhs.q.astype(np.int64), t.rhs.w.astype(np.int64)
    for idx, s in enumerate(t.recorded[1:4], start=1):  # ZA holds the block's exact int32 sums
        blk = slice((s - 1) * t.bl, s * t.bl)
        np.testing.assert_array_equal(t.block_sums[idx], (q_[:, blk] @ w[:, blk].T).astype(np.int32))


def _truncated_run(kern: Any, t: Any, s: int, params: Any) -> np.ndarray:
    """run_matmul on the first s blocks: the same quantized rows (codes, -zp, dq) and the first
    s blocks of weights and scales repacked through the kernel's layouts, the row sums of those
    blocks, the same bias."""
    m, n, bl = t.m, t.n, t.bl
    kk = s * bl
    p = kern.tile_params()
    lay = Qai8dxpLayout(p.mr, p.kr, p.sr, m, kk)
    lhs = np.zeros(lay.size(), np.uint8)
    lay.encode_into(lhs, t.lhs.q[:, :kk], t.lhs.neg_zp, t.lhs.dq)
    rl = kern.rhs_layout(n, kk, bl)
    slots = rl.blocks * rl.nr
    w = np.zeros((slots, kk), np.int8)
    w[:n] = t.rhs.w[:, :kk]
    sc = np.zeros((slots, s), np.uint16)
    sc[:n] = qb4.f32_scales_to_bf16(t.rhs.d[:, :s])
    d = np.zeros((slots, s), np.float32)
    d[:n] = t.rhs.d[:, :s]
    # The packers' row sums: per block, the integer sum of the weights times the block's scale.
    rsum = rsum_chain(w.astype(np.int64).reshape(slots, s, bl).sum(axis=2), d, fused=True)
    bias = np.zeros(slots, np.float32)
    bias[:n] = t.rhs.bias
    rhs = rl.encode(w, sc, rsum, bias)
    dst = np.zeros((m, n), np.float32)
    kern.run_matmul(m, n, kk, bl, lhs, rhs, dst, n * 4, 4, *params)
    got_rhs = kern.decode_rhs(rhs, n, kk, bl)
    want: np.ndarray = kern.epilogue(t.state(s), t.lhs, got_rhs, params)
    np.testing.assert_array_equal(dst.view(np.uint32), want.view(np.uint32), err_msg=f"after {s} blocks")
    return dst


@pytest.mark.parametrize("name", [q.SME2_MOPA.name, q.SME2_DOT.name, q.NEON_I8MM.name, q.NEON_DOT_GEMV.name])
@pytest.mark.parametrize("svl", [128, 2048])
def test_state_after_s_blocks_is_the_kernel_on_the_first_s_blocks(name: str, svl: int) -> None:
    _, kern = resolve_kernel(name, svl)
    m = 1 if kern.tile_params().m_step == 1 else 5
    n, bl = 7, 32
    lhs, rhs, params = random_problem(kern, m, n, 4 * bl, 11, bl=bl)
    t = trace(kern, lhs, rhs, m, n, 4 * bl, params, bl=bl)
    assert t.recorded == [0, 1, 2, 3, 4]
    for s in range(1, 5):
        _truncated_run(kern, t, s, params)


def test_states_and_outputs_do_not_depend_on_the_svl() -> None:
    """The same operands at every SVL: every block's sums, every facc and the output agree."""
    outs = []
    for svl in (128, 256, 512, 1024, 2048):
        _, kern = resolve_kernel("qp8_f32_qb4w_gemm", svl)
        lhs, rhs, params = random_problem(kern, 4, 6, 96, 5, bl=32)
        t = trace(kern, lhs, rhs, 4, 6, 96, params, bl=32)
        outs.append((t.block_sums, t.states, t.out))
    for sums, states, out in outs[1:]:
        np.testing.assert_array_equal(sums, outs[0][0])
        np.testing.assert_array_equal(states.view(np.uint32), outs[0][1].view(np.uint32))
        np.testing.assert_array_equal(out.view(np.uint32), outs[0][2].view(np.uint32))


def test_why_shows_each_block() -> None:
    path = next(p for p in SME2 if "svl512" in p.name and "_m16_" in p.name)
    t, _ = trace_file(path)
    kk: Any = t.kernel
    text = "\n".join(provenance(t, 1, 2, lhs_layout=kk.lhs_layout(t.m, t.k), rhs_layout=kk.rhs_layout(t.n, t.k, t.bl)))
    assert "ZA0.s horizontal slice 1, lane 2" in text
    assert "block 0 (k 0.." in text and "int32 sum" in text and "(bf16 block scale)" in text
    assert "before the clamp:" in text and "n2k0|1@" in text


def test_cli_trace_and_why_qb4w(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trace", "qp8_f32_qb4w_gemm", "--svl", "256", "--m", "2", "--n", "3", "--k", "64"]) == 0
    out = capsys.readouterr().out
    assert "block 1 (k 32..63): int32 sums in ZA at its end:" in out and "output (= run_matmul)" in out
    f = str(NEON[0])
    assert cli.main(["why", q.NEON_DOT.name, "--inputs", f, "--element", "0,0"]) == 0
    out = capsys.readouterr().out
    assert "NEON vector accumulators (no ZA)" in out and "SMMLA / SDOT" in out
    assert cli.main(["trace", "qp8_f32_qb4w_gemm", "--k", "40"]) == 2
    assert "multiple of bl" in capsys.readouterr().err
    page = cli.main(["trace", "qp8_f32_qb4w_gemm", "--k", "64", "--format", "html"])
    assert page == 0 and 'id="ints"' in capsys.readouterr().out


def test_stages_compose_to_compute() -> None:
    """epilogue(accumulate(...)) is compute's bits (the refactor of qb4w_matmul into stages)."""
    for name in (q.SME2_MOPA.name, q.NEON_I8MM.name):
        _, kern = resolve_kernel(name, 512)
        lhs, rhs, params = random_problem(kern, 9, 70, 128, 3, bl=64)
        kk: Any = kern
        L: Qai8dxpRows = kern.decode_lhs(lhs, 9, 128)
        R = kk.decode_rhs(rhs, 70, 128, 64)
        want = kern.compute(L, R, params)
        got = kk.epilogue(kk.accumulate(L, R), L, R, params)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
