"""The generic ``qd8_f32_qb4w`` GEMM prepared once: its weight half (int4 decode, bf16 block scales, ``ksum``)
is done by :func:`~kleidiref.fallbacks.prepare_qd8_f32_qb4w_weights` and reused, with the bits of the
straightforward per-call formulation (kept below as the reference), and a Runner prepares each node once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from kleidiref import fallbacks as F
from kleidiref.numerics import Clamp, bf16_to_f32, clamp, f32_to_bf16_rne, fadd32, fma32, fmul32
from kleidiref.runner import Runner

F32 = np.float32
FIXTURES = Path(__file__).parent / "fixtures" / "pte"


def _reference(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    scales: NDArray[np.uint16],
    bl: int,
    bias: NDArray[np.float32],
    kr: int,
    lo: float,
    hi: float,
    fz: bool,
) -> NDArray[np.float32]:
    """The per-call formulation: strided block slices of the unprepared weights, fma32 flushing its inputs."""
    k = q.shape[1]
    ksum = F.qb4w_ksum(w, scales, bl, kr=kr)
    sc16 = bf16_to_f32(f32_to_bf16_rne((bf16_to_f32(scales) / F32(16)).astype(F32)))
    zpf = zp.astype(np.int64).astype(F32)
    y = fmul32(ksum[None, :], zpf[:, None], fz=fz)
    q64, w16 = q.astype(np.float64), 16.0 * w.astype(np.float64)
    for j in range(k // bl):
        blk = slice(j * bl, (j + 1) * bl)
        s = np.rint(q64[:, blk] @ w16[:, blk].T).astype(F32)
        y = fma32(s, sc16[None, :, j], y, fz=fz)
    y = fadd32(fmul32(y, a[:, None], fz=fz), bias[None, :], fz=fz)
    return clamp(y, F32(lo), F32(hi), Clamp.FMAX_FMIN, fz=fz)


#: Scale bit patterns with the edges: zeros, subnormals (flushed under FZ; /16 underflows), the smallest
#: normals, large and infinite scales, NaN.
EDGE_SCALES = st.sampled_from([0x0000, 0x8000, 0x0001, 0x807F, 0x0080, 0x0180, 0x0200, 0x7F7F, 0x7F80, 0x7FC0])
SCALES = st.one_of(st.integers(0, 0xFFFF), EDGE_SCALES, st.integers(0x3800, 0x4100))
F32_EDGES = st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 2.0**-149, -(2.0**-126), 2.0**-127, 3.4e38]),
)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    m=st.integers(1, 4),
    n=st.integers(1, 5),
    nb=st.integers(1, 3),
    bl=st.sampled_from([8, 16, 32]),
    kr=st.sampled_from([1, 2, 4]),
    fz=st.booleans(),
    runs=st.integers(1, 3),
)
def test_prepared_equals_per_call(data: Any, m: int, n: int, nb: int, bl: int, kr: int, fz: bool, runs: int) -> None:
    """One preparation, several activations: each gives the per-call formulation's bits (edge values included)."""
    k = nb * bl
    w = data.draw(hnp.arrays(np.int8, (n, k), elements=st.integers(-8, 7)))
    scales = data.draw(hnp.arrays(np.uint16, (n, nb), elements=SCALES))
    bias = data.draw(hnp.arrays(F32, (n,), elements=F32_EDGES))
    lo, hi = data.draw(st.sampled_from([(-np.inf, np.inf), (-1.0, 1.0), (0.0, np.inf)]))
    with np.errstate(all="ignore"):
        prep = F.prepare_qd8_f32_qb4w_weights(w, scales, bl, bias, kr=kr)
    for _ in range(runs):
        q = data.draw(hnp.arrays(np.int8, (m, k), elements=st.integers(-128, 127)))
        a = data.draw(hnp.arrays(F32, (m,), elements=F32_EDGES))
        zp = data.draw(hnp.arrays(np.int32, (m,), elements=st.integers(-128, 127)))
        with np.errstate(all="ignore"):
            got = F.qd8_f32_qb4w_gemm_prepared(q, a, zp, prep, clamp_min=lo, clamp_max=hi, fz=fz)
            one = F.qd8_f32_qb4w_gemm(q, a, zp, w, scales, bl, bias, kr=kr, clamp_min=lo, clamp_max=hi, fz=fz)
            exp = _reference(q, a, zp, w, scales, bl, bias, kr, lo, hi, fz)
        assert got.dtype == F32 and got.tobytes() == exp.tobytes() == one.tobytes()


def test_prepared_rejects_other_k() -> None:
    prep = F.prepare_qd8_f32_qb4w_weights(np.zeros((2, 64), np.int8), np.zeros((2, 2), np.uint16), 32, kr=4)
    assert prep.w16.shape == (2, 32, 2) and prep.w16.flags.c_contiguous
    with pytest.raises(ValueError, match="K mismatch"):
        F.qd8_f32_qb4w_gemm_prepared(np.zeros((1, 32), np.int8), np.ones(1, F32), np.zeros(1, np.int32), prep)


def _inputs(name: str) -> list[NDArray[Any]]:
    with np.load(FIXTURES / f"{name}.io.npz") as z:
        return [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]


@pytest.mark.parametrize("name", ["linear_k64_n32__ao_8da4w_g32", "linear_k64_n32__ao_8da4w_g64"])
def test_runner_prepares_qb4w_weights_once(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On x86 (the generic qd8_f32_qb4w kernel) a Runner decodes each node's 4-bit weights once across runs."""
    counts: Counter[str] = Counter()
    real = F.prepare_qd8_f32_qb4w_weights

    def counted(*args: Any, **kwargs: Any) -> F.Qb4wWeights:
        counts["prepare"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "prepare_qd8_f32_qb4w_weights", counted)
    r = Runner(FIXTURES / f"{name}.pte", "x86-avx2")
    first = r.run(_inputs(name))
    assert any("qd8_f32_qb4w" in t.emulation for t in first.trace)
    assert counts["prepare"] == r.prepared_nodes >= 1
    later = [r.run(_inputs(name)) for _ in range(3)]
    assert counts["prepare"] == r.prepared_nodes
    for res in later:
        for got, exp in zip(res.outputs, first.outputs, strict=True):
            assert got.tobytes() == exp.tobytes()


def test_prepared_weights_respect_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The float64 widening is refused before it is allocated when it would pass KLEIDIREF_MAX_BYTES."""
    monkeypatch.setenv("KLEIDIREF_MAX_BYTES", str(64 * 256 * 8))
    w = np.zeros((64, 256), np.int8)
    scales = np.full((64, 256 // 32), 0x3F80, np.uint16)  # bf16 1.0
    with pytest.raises(ValueError, match="memory limit"):
        F.prepare_qd8_f32_qb4w_weights(w, scales, 32)
