"""Pack once: a :class:`~kleidiref.runner.Runner` decides and packs each GEMM-shaped node once, on its first run,
and reuses that on every later run, with the same bits as the one-shot (unprepared) path."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from kleidiref import dispatch, ops
from kleidiref.ops import api as ops_api
from kleidiref.runner import RefusedByXnnpack, Runner
from kleidiref.runner import program as runner_program
from kleidiref.variants import igemm, pf16_gemm, pf32_gemm, pqs8_qc8w_gemm, qp8_f32_qb4w_gemm, qp8_f32_qc8w_gemm

FIXTURES = Path(__file__).parent / "fixtures" / "pte"
PROGRAMS = sorted(p.stem for p in FIXTURES.glob("*.pte"))
GEMM_TYPES = ("XNNFullyConnected", "XNNConv2d", "XNNBatchMatrixMultiply", "XNNDepthwiseConv2d", "XNNConvTranspose2d")
#: The KleidiAI RHS packers the ops' preparers call (module, function name).
PACKERS = (
    (pf32_gemm, "pack_weights"),
    (pf16_gemm, "pack_weights"),
    (pqs8_qc8w_gemm, "pack_weights"),
    (qp8_f32_qc8w_gemm, "pack_weights"),
    (qp8_f32_qb4w_gemm, "prepare_weights"),
    (igemm, "prepare_conv2d"),
)


def _inputs(name: str) -> list[NDArray[Any]]:
    with np.load(FIXTURES / f"{name}.io.npz") as z:
        return [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]


def _counting(monkeypatch: pytest.MonkeyPatch, counts: Counter[str]) -> None:
    """Count every packer and dispatch decision (the ops' preparation) by name."""

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return fn(*args, **kwargs)

        return counted

    for mod, attr in PACKERS:
        monkeypatch.setattr(mod, attr, wrap(f"{mod.__name__}.{attr}", getattr(mod, attr)))
    monkeypatch.setattr(ops_api, "decide", wrap("decide", dispatch.decide))


def _runnable(name: str, cpu: str) -> Runner | None:
    try:
        r = Runner(FIXTURES / f"{name}.pte", cpu, 512 if cpu == "sme2" else None)
        r.run(_inputs(name))
    except (NotImplementedError, RefusedByXnnpack):
        return None
    return r


@pytest.mark.parametrize("cpu", ["sme2", "x86-avx2"])
@pytest.mark.parametrize("name", PROGRAMS)
def test_prepared_equals_unprepared(name: str, cpu: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three runs of one runner (prepared once) give the one-shot path's bits on every fixture program."""
    prepared = _runnable(name, cpu)
    if prepared is None:
        pytest.skip(f"{name} does not run on {cpu} (test_run.py checks why)")
    runs = [prepared.run(_inputs(name), keep_node_outputs=True) for _ in range(3)]
    # The unprepared path: every node through its one-shot handler, nothing kept.
    monkeypatch.setattr(runner_program, "PREPARERS", {})
    plain = Runner(FIXTURES / f"{name}.pte", cpu, 512 if cpu == "sme2" else None)
    ref = plain.run(_inputs(name), keep_node_outputs=True)
    assert plain.prepared_nodes == 0
    assert prepared.prepared_nodes == sum(t.node_type in GEMM_TYPES for t in ref.trace) > 0
    for res in runs:
        for got, exp in zip(res.outputs, ref.outputs, strict=True):
            assert got.dtype == exp.dtype and got.tobytes() == exp.tobytes()
        for tg, te in zip(res.trace, ref.trace, strict=True):
            assert tg == te  # node, kernel, shape, dtype
            assert tg.output is not None and te.output is not None
            assert np.asarray(tg.output).tobytes() == np.asarray(te.output).tobytes()


@pytest.mark.parametrize(
    ("name", "cpu", "packer"),
    [
        ("linear_k64_n32__fp32", "sme2", "pf32_gemm.pack_weights"),
        ("linear_k64_n32__fp16", "sme2", "pf16_gemm.pack_weights"),
        ("linear_k64_n32__pt2e_static_pc", "sme2", "pqs8_qc8w_gemm.pack_weights"),
        ("linear_k64_n32__pt2e_dyn_pc8", "sme2", "qp8_f32_qc8w_gemm.pack_weights"),
        ("linear_k64_n32__ao_8da4w_g32", "sme2", "qp8_f32_qb4w_gemm.prepare_weights"),
        ("conv3x3_p1_c16_o24__pt2e_static_pt", "sme2", "igemm.prepare_conv2d"),
        ("conv3x3_p1_c16_o24__fp32", "sme2", "igemm.prepare_conv2d"),
        ("conv3x3_p1_c16_o24__fp16", "sme2", "igemm.prepare_conv2d"),
        ("linear_k64_n32__ao_8da4w_g32", "x86-avx2", None),
    ],
)
def test_packed_once_per_node(name: str, cpu: str, packer: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Across several runs, each GEMM-shaped node is decided once and its weights are packed once."""
    counts: Counter[str] = Counter()
    _counting(monkeypatch, counts)
    r = Runner(FIXTURES / f"{name}.pte", cpu, 512 if cpu == "sme2" else None)
    first = r.run(_inputs(name))
    after_first = Counter(counts)
    n_gemm = sum(t.node_type in GEMM_TYPES for t in first.trace)
    assert n_gemm >= 1 and r.prepared_nodes == n_gemm
    assert after_first["decide"] >= n_gemm  # a BMM decides once per node, a batched one packs per batch
    if packer is not None:
        assert after_first[f"kleidiref.variants.{packer}"] >= 1
    for _ in range(3):
        r.run(_inputs(name))
    assert counts == after_first
    # A second runner packs again: the cache is the runner's, not the module's.
    Runner(FIXTURES / f"{name}.pte", cpu, 512 if cpu == "sme2" else None).run(_inputs(name))
    assert counts["decide"] == 2 * after_first["decide"]


def test_bmm_of_two_activations_packs_b_on_each_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A BMM whose second input is computed has nothing to pack ahead: B is packed per run, as XNNPACK does."""
    counts: Counter[str] = Counter()
    _counting(monkeypatch, counts)
    name = "bmm_b2_m4_k64_n8__fp32"
    r = Runner(FIXTURES / f"{name}.pte", "sme2", 512)
    r.run(_inputs(name))
    once = counts["kleidiref.variants.pf32_gemm.pack_weights"]
    assert once == 2  # one per batch
    r.run(_inputs(name))
    assert counts["kleidiref.variants.pf32_gemm.pack_weights"] == 2 * once


def test_prepared_op_is_for_one_input_shape() -> None:
    """A prepared node is for one activation shape; another shape gets its own (the decision depends on M)."""
    w = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    op = ops.prepare_fully_connected(w, input_shape=(4, 16), input_dtype=np.float32, target=None)
    x = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    assert op(x).output.tobytes() == ops.fully_connected(x, w).output.tobytes()
    with pytest.raises(ValueError, match="prepared for input float32"):
        op(x[:1])


def test_prepared_op_matches_one_shot_fc_bmm_conv() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 32)).astype(np.float32)
    w = rng.standard_normal((24, 32)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    for target in ("sme2", "x86-avx2"):
        t = runner_program.cpu_target(target)
        p = ops.prepare_fully_connected(w, b, input_shape=x.shape, input_dtype=x.dtype, output_min=-1.0, target=t)
        one = ops.fully_connected(x, w, b, output_min=-1.0, target=t)
        assert p(x).output.tobytes() == p(x).output.tobytes() == one.output.tobytes()
        assert p.decision == one.decision
        a = rng.standard_normal((2, 3, 32)).astype(np.float32)
        bm = rng.standard_normal((2, 32, 7)).astype(np.float32)
        pb = ops.prepare_batch_matrix_multiply(bm, input1_shape=a.shape, static_b=True, target=t)
        ob = ops.batch_matrix_multiply(a, bm, static_b=True, target=t)
        assert pb(a).output.tobytes() == ob.output.tobytes()
        xi = rng.standard_normal((1, 6, 6, 4)).astype(np.float32)
        wc = rng.standard_normal((8, 3, 3, 4)).astype(np.float32)
        pc = ops.prepare_convolution_2d(wc, input_shape=xi.shape, padding=(1, 1, 1, 1), target=t)
        oc = ops.convolution_2d(xi, wc, padding=(1, 1, 1, 1), target=t)
        assert pc(xi).output.tobytes() == oc.output.tobytes()


@pytest.mark.parametrize(
    ("name", "cpu"),
    [
        ("linear_k64_n32__ao_8da4w_g32", "sme2"),
        ("conv3x3_p1_c16_o24__fp32", "sme2"),
        ("conv3x3_p1_c16_o24__pt2e_static_pt", "sme2"),
        ("conv3x3_p1_c16_o24__fp16", "x86-avx2"),
    ],
)
def test_runner_from_two_threads(name: str, cpu: str) -> None:
    """Two threads share one runner: each node is still prepared once and both get the one-thread bits."""
    r = Runner(FIXTURES / f"{name}.pte", cpu)
    expected = Runner(FIXTURES / f"{name}.pte", cpu)(_inputs(name))
    results: list[tuple[NDArray[Any], ...]] = []

    def work() -> None:
        for _ in range(3):
            results.append(r(_inputs(name)))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 6 and r.prepared_nodes == 1
    for res in results:
        assert res[0].tobytes() == expected[0].tobytes()
