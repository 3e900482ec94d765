"""``kleidiref sweep``: units, records, resume after an interruption, workers (int and map-like), validation."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kleidiref
from kleidiref import cli, inspect
from kleidiref.runner import Runner
from kleidiref.sweep import Unit, array_digest, load_records, strip_times, sweep

FIXTURES = Path(__file__).parent / "fixtures" / "pte"
LINEAR = FIXTURES / "linear_k64_n32__fp32.pte"
QB4W = FIXTURES / "linear_k64_n32__ao_8da4w_g32.pte"
REFUSED_ON_SME = FIXTURES / "linear_k64_n32__fp16_ao_8da4w_g32.pte"
CPUS = ("sme2", "x86-avx2")
SVLS = (128, 512)

Records = list[dict[str, Any]]


def _inputs(pte: Path) -> list[Any]:
    with np.load(pte.with_suffix(".io.npz")) as z:
        return [z["input_0"]]


def _counting_map(calls: list[str]) -> Callable[[Callable[[Unit], Records], Iterable[Unit]], Iterator[Records]]:
    def m(f: Callable[[Unit], Records], units: Iterable[Unit]) -> Iterator[Records]:
        for u in units:
            calls.append(f"{u.cpu}/{u.svl}")
            yield f(u)

    return m


def _interrupted_map(after: int) -> Callable[[Callable[[Unit], Records], Iterable[Unit]], Iterator[Records]]:
    """A map that runs ``after`` units, then is interrupted (like Ctrl-C between two units)."""

    def m(f: Callable[[Unit], Records], units: Iterable[Unit]) -> Iterator[Records]:
        for i, u in enumerate(units):
            if i == after:
                raise KeyboardInterrupt
            yield f(u)

    return m


def test_units_records_and_digests(tmp_path: Path) -> None:
    recs = sweep(QB4W, CPUS, SVLS, out=tmp_path / "r.jsonl")
    units = [r for r in recs if r["kind"] == "unit"]
    # An SME CPU is one unit per SVL; x86 has no SVL: one unit, svl null.
    assert [(u["cpu"], u["svl"]) for u in units] == [("sme2", 128), ("sme2", 512), ("x86-avx2", None)]
    assert len({r["key"] for r in recs}) == len(recs)
    assert load_records(tmp_path / "r.jsonl") == recs
    ins = inspect(QB4W, list(CPUS), svl=512)
    for u in units:
        assert u["status"] == "ok" and u["input_source"] == {
            "source": "io.npz",
            "file": QB4W.with_suffix(".io.npz").name,
        }
        res = Runner(QB4W, u["cpu"], u["svl"]).run(_inputs(QB4W), keep_node_outputs=True)
        assert [o["sha256"] for o in u["outputs"]] == [array_digest(o) for o in res.outputs]
        nodes = [r for r in recs if r["kind"] == "node" and (r["cpu"], r["svl"]) == (u["cpu"], u["svl"])]
        assert u["nodes"] == len(nodes) == len(res.trace)
        for r, t in zip(nodes, res.trace, strict=True):
            assert t.output is not None
            assert (r["node_type"], r["emulation"], r["sha256"]) == (t.node_type, t.emulation, array_digest(t.output))
            assert r["seconds"] >= 0
        gemm = next(r for r in nodes if r["node_type"] == "XNNFullyConnected")
        decision = next(n for n in ins.nodes if n.gemm_like).decisions[u["cpu"]]
        if u["svl"] == 512 or u["svl"] is None:
            assert (gemm["kernel"], gemm["operator"]) == (decision.kernel, decision.operator_name)
    # The SVL changes the SME2 kernel, not the result (same digests at 128 and 512).
    by_svl = {u["svl"]: u["outputs"] for u in units if u["cpu"] == "sme2"}
    assert by_svl[128] == by_svl[512]


def test_record_digest_is_sha256_of_every_bit() -> None:
    a = np.array([np.nan, 0.0], np.float32)
    b = a.copy()
    b.view(np.uint32)[0] |= 1  # another NaN payload
    c = np.array([np.nan, -0.0], np.float32)
    assert np.array_equal(a, b, equal_nan=True)
    assert len({array_digest(a), array_digest(b), array_digest(c)}) == 3
    assert array_digest(a) == hashlib.sha256(a.tobytes()).hexdigest()
    assert (
        array_digest(np.asfortranarray(np.eye(3, dtype=np.float32)))
        == hashlib.sha256(np.eye(3, dtype=np.float32).tobytes()).hexdigest()
    )


def test_nan_payload_of_an_input_reaches_the_digests() -> None:
    x = _inputs(LINEAR)[0].copy()
    x.view(np.uint32)[0, 0] = 0x7FC00001
    y = x.copy()
    y.view(np.uint32)[0, 0] = 0x7FC00002
    ra = sweep(LINEAR, "x86-avx2", 512, inputs=[x])
    rb = sweep(LINEAR, "x86-avx2", 512, inputs=[y])
    assert ra[0]["inputs"] != rb[0]["inputs"]
    assert np.isnan(Runner(LINEAR, "x86-avx2").run([x]).outputs[0]).any()


def test_refusal_is_a_result_not_a_crash() -> None:
    recs = sweep(REFUSED_ON_SME, ("sme2", "neon-i8mm"), 256)
    units = {r["cpu"]: r for r in recs if r["kind"] == "unit"}
    assert units["sme2"]["status"] == "refused" and "xnn_status_unsupported_hardware" in units["sme2"]["error"]
    assert units["sme2"]["nodes"] == 0 and units["sme2"]["outputs"] == []
    assert units["neon-i8mm"]["status"] == "ok"


def test_not_implemented_is_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unsupported:
        def __init__(self, *args: Any) -> None:
            raise NotImplementedError("XNNSomething (delegate 0, node 3) is not emulated yet")

    # kleidiref.sweep is the function; the module is in sys.modules.
    monkeypatch.setattr(importlib.import_module("kleidiref.sweep"), "Runner", Unsupported)
    (rec,) = sweep(LINEAR, "x86-avx2", 512)
    assert rec["status"] == "not_implemented" and "XNNSomething" in rec["error"]


def test_one_and_two_workers_and_map_like_give_identical_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The pool sets the thread variables only while its workers start: this process's are restored after.
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    files = {}
    for name, workers in (("one", 1), ("two", 2), ("map", map)):
        files[name] = tmp_path / f"{name}.jsonl"
        sweep(QB4W, CPUS, SVLS, out=files[name], workers=workers, times=False)
    text = files["one"].read_bytes()
    assert text and all(f.read_bytes() == text for f in files.values())
    assert b"seconds" not in text
    assert os.environ["OMP_NUM_THREADS"] == "3" and "OPENBLAS_NUM_THREADS" not in os.environ


def test_dask_like_client_map() -> None:
    class Future:
        def __init__(self, f: Callable[[Unit], Records], u: Unit) -> None:
            self.value = f(u)

        def result(self) -> Records:
            return self.value

    class Client:  # the shape of dask.distributed.Client's map / gather
        def map(self, f: Callable[[Unit], Records], items: list[Unit]) -> list[Future]:
            return [Future(f, u) for u in reversed(items)][::-1]

        def gather(self, futures: list[Future]) -> list[Records]:
            return [fu.result() for fu in futures]

    client = Client()
    got = sweep(LINEAR, CPUS, SVLS, workers=lambda f, it: client.gather(client.map(f, list(it))), times=False)
    assert got == sweep(LINEAR, CPUS, SVLS, times=False)


def test_resume_after_an_interruption(tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    sweep(QB4W, CPUS, SVLS, out=full, times=False)
    part = tmp_path / "part.jsonl"
    with pytest.raises(KeyboardInterrupt):
        sweep(QB4W, CPUS, SVLS, out=part, workers=_interrupted_map(2), times=False)
    assert len([r for r in load_records(part) if r["kind"] == "unit"]) == 2
    calls: list[str] = []
    recs = sweep(QB4W, CPUS, SVLS, out=part, workers=_counting_map(calls), times=False)
    assert calls == ["sme2/512"]  # only the missing unit ran (units without SVL run first)
    assert part.read_bytes() == full.read_bytes()
    assert recs == load_records(full)
    calls.clear()
    sweep(QB4W, CPUS, SVLS, out=part, workers=_counting_map(calls), times=False)
    assert calls == [] and part.read_bytes() == full.read_bytes()


@pytest.mark.parametrize("cut", ["mid_line", "after_node_line"])
def test_truncated_tail_is_dropped_and_rerun(tmp_path: Path, cut: str) -> None:
    full = tmp_path / "full.jsonl"
    sweep(QB4W, CPUS, SVLS, out=full, times=False)
    text = full.read_bytes()
    last_unit = text.rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n"  # the last unit line removed
    assert json.loads(last_unit.splitlines()[-1])["kind"] == "node"
    part = tmp_path / "part.jsonl"
    part.write_bytes(last_unit if cut == "after_node_line" else text[: len(text) - 40])
    calls: list[str] = []
    sweep(QB4W, CPUS, SVLS, out=part, workers=_counting_map(calls), times=False)
    assert calls == ["x86-avx2/None"]
    assert part.read_bytes() == text


def test_times_are_recorded_and_strip_times_compares(tmp_path: Path) -> None:
    a = sweep(LINEAR, CPUS, 256, out=tmp_path / "a.jsonl")
    b = sweep(LINEAR, CPUS, 256, out=tmp_path / "b.jsonl", workers=map)
    assert all("seconds" in r for r in a)
    assert strip_times(a) == strip_times(b) == load_records(tmp_path / "b.jsonl", times=False)


def test_random_inputs_when_no_io_npz(tmp_path: Path) -> None:
    prog = tmp_path / "model.pte"
    shutil.copy(LINEAR, prog)
    a = sweep(prog, "x86-avx2", 512)
    assert a[-1]["input_source"] == {"source": "random", "seed": 0}
    assert sweep(prog, "x86-avx2", 512)[-1]["inputs"] == a[-1]["inputs"]
    b = sweep(prog, "x86-avx2", 512, seed=1)
    assert b[-1]["input_source"]["seed"] == 1 and b[-1]["inputs"] != a[-1]["inputs"]
    assert a[-1]["program"] == sweep(LINEAR, "x86-avx2", 512)[-1]["program"]


def test_another_programs_units_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    a = sweep(LINEAR, "x86-avx2", 512, out=out, times=False)
    b = sweep(QB4W, "x86-avx2", 512, out=out, times=False)
    assert sorted(map(json.dumps, a + b)) == sorted(map(json.dumps, load_records(out)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"cpus": ["sme3"]}, ValueError, "unknown CPU 'sme3'"),
        ({"cpus": "sme2,sme2"}, ValueError, "listed twice"),
        ({"cpus": []}, ValueError, "no CPU"),
        ({"svls": [100]}, ValueError, "SVL 100"),
        ({"svls": [384]}, ValueError, "SVL 384"),
        ({"svls": [4096]}, ValueError, "SVL 4096"),
        ({"svls": "128,x"}, ValueError, "'x'"),
        ({"svls": [128, 128]}, ValueError, "listed twice"),
        ({"workers": 0}, ValueError, "workers must be >= 1"),
        ({"workers": -1}, ValueError, "workers must be >= 1"),
        ({"workers": True}, TypeError, "workers must be an int"),
        ({"workers": "2"}, TypeError, "workers must be an int"),
        ({"inputs": []}, ValueError, "takes 1 inputs, got 0"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], exc: type[Exception], word: str) -> None:
    with pytest.raises(exc, match=word):
        sweep(LINEAR, **kwargs)


def test_refuses_to_append_to_another_file(tmp_path: Path) -> None:
    out = tmp_path / "notes.jsonl"
    out.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match=r"notes\.jsonl:1: not a kleidiref sweep record"):
        sweep(LINEAR, "x86-avx2", out=out)
    assert out.read_text() == '{"hello": 1}\n'


def test_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    sweep(LINEAR, CPUS, SVLS, progress=True)
    err = capsys.readouterr().err
    assert "\rsweep 3/3 units" in err and err.endswith("\n")
    sweep(LINEAR, CPUS, SVLS)  # stderr is not a terminal here: no progress line
    assert capsys.readouterr().err == ""


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    args = ["sweep", str(LINEAR), "--cpu", "sme2", "--cpu", "x86-avx2", "--svl", "128,512", "--no-times"]
    assert cli.main([*args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "3 runs (3 ok, 0 refused, 0 not_implemented)" in err and '"source": "io.npz"' in err
    assert cli.main(args) == 0
    assert capsys.readouterr().out.encode() == out.read_bytes()
    assert kleidiref.sweep is sweep
    assert cli.main(["sweep", str(LINEAR), "--cpu", "sme3"]) == 2
    assert "unknown CPU 'sme3'" in capsys.readouterr().err
    assert cli.main(["sweep", str(LINEAR), "--workers", "0"]) == 2


def _env() -> dict[str, str]:
    root = str(Path(kleidiref.__file__).parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_five_svls_four_cpus_two_workers_identical_to_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    r1 = sweep(QB4W, out=one, workers=1)
    r2 = sweep(QB4W, out=two, workers=2)
    assert len([r for r in r1 if r["kind"] == "unit"]) == 5 + 5 + 1 + 1
    assert strip_times(r1) == strip_times(r2)
    assert load_records(one, times=False) == load_records(two, times=False)


@pytest.mark.slow
def test_resume_after_the_process_is_killed(tmp_path: Path) -> None:
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    sweep(QB4W, out=full, times=False)
    cmd = [sys.executable, "-m", "kleidiref", "sweep", str(QB4W), "--out", str(part), "--no-times", "--workers", "2"]
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not part.exists() or part.read_bytes().count(b'"unit"') < 3):
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = len([r for r in load_records(part) if r["kind"] == "unit"])
    assert 3 <= done <= 12
    calls: list[str] = []
    sweep(QB4W, out=part, workers=_counting_map(calls), times=False)
    assert len(calls) == 12 - done
    assert part.read_bytes() == full.read_bytes()
