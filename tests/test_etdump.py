"""The ETDump reader against ETDumps the real ExecuTorch runtime wrote, and against hostile bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _hostile_bytes import BIT_FLIPS, FORGED_WORDS, flip_bits, forge_word, loads_or_clear_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kleidiref import cli, inspection, pte
from kleidiref.pte import PteError, load_etdump

FIXTURES = Path(__file__).parent / "fixtures"
ETDUMPS = sorted((FIXTURES / "etdump").glob("*.x86.etdp"))
LINEAR = (FIXTURES / "etdump" / "linear_k64_n32__ao_8da8w.x86.etdp").read_bytes()
CONV = (FIXTURES / "etdump" / "conv3x3_p1_c16_o24__pt2e_static_pc.x86.etdp").read_bytes()


def _program(etdump: Path) -> str:
    return etdump.name.removesuffix(".x86.etdp")


def test_fixtures_exist() -> None:
    assert len(ETDUMPS) == 5


@pytest.mark.parametrize("path", ETDUMPS, ids=_program)
def test_operator_names_equal_what_the_harness_recorded(path: Path) -> None:
    """The operator names read from the binary ETDump are the ones the sidecar recorded from ETDump."""
    sidecar = json.loads((FIXTURES / "pte" / f"{_program(path)}.sidecar.json").read_text())
    assert load_etdump(path).operator_names() == sidecar["x86_operator_names"]


def test_runs_and_events() -> None:
    e = load_etdump(LINEAR)
    assert [r.name for r in e.runs] == ["Default", "Execute"]
    ex = e.runs[1].profile_events
    assert [ev.label for ev in ex] == [
        "Fully Connected (NC, QDU8, F32, QC8W) GEMM #1",
        "DELEGATE_CALL",
        "Method::execute",
    ]
    op, call, method = ex
    # the operator ran inside the delegate call, which ran inside Method::execute
    assert method.start_time <= call.start_time <= op.start_time <= op.end_time <= call.end_time <= method.end_time
    assert e.operator_names(0) == [] and e.operator_names(1) == e.operator_names()
    with pytest.raises(ValueError, match="holds 2 run"):
        e.operator_names(2)


@pytest.mark.parametrize("path", ETDUMPS, ids=_program)
def test_inspect_cli_compares_an_etdump(path: Path) -> None:
    """``inspect --etdump run.etdp``: x86 with AVX-512 VNNI predicts what this run did; AVX2 alone does not
    for the dynamically quantized programs (QD8 vs the QDU8 observed)."""
    args = ["inspect", str(FIXTURES / "pte" / f"{_program(path)}.pte"), "--etdump", str(path), "--cpu"]
    assert cli.main([*args, "x86-avx512-vnni"]) == 0
    assert cli.main([*args, "x86-avx512-fp16"]) == 0  # the machine that recorded these ETDumps
    assert cli.main([*args, "x86-avx2"]) == (1 if "QDU8" in "".join(load_etdump(path).operator_names()) else 0)


def test_observed_operator_names_of_an_etdump() -> None:
    names = inspection.observed_operator_names(load_etdump(CONV))
    assert names == ["Convolution (NHWC, QC8) IGEMM"]  # GEMM-like only, without the " #n" suffix


def test_not_an_etdump() -> None:
    assert pte.is_etdump(LINEAR) and not pte.is_etdump(b"[1, 2, 3]")
    with pytest.raises(PteError, match="file identifier"):
        load_etdump(b"\x10\x00\x00\x00PTE0" + bytes(16))


def test_size_prefix_past_the_end() -> None:
    with pytest.raises(PteError, match="truncated"):
        load_etdump(LINEAR[:-8])


def _load_names(data: bytes) -> None:
    load_etdump(data).operator_names()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([LINEAR, CONV]), st.data())
def test_truncated(base: bytes, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, len(base) - 1))
    loads_or_clear_error(_load_names, base[:n])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([LINEAR, CONV]), BIT_FLIPS)
def test_bit_flips(base: bytes, flips: list[tuple[int, int]]) -> None:
    loads_or_clear_error(_load_names, flip_bits(base, flips))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([LINEAR, CONV]), st.integers(0, 1 << 20), FORGED_WORDS)
def test_forged_words(base: bytes, pos: int, value: int) -> None:
    """Any aligned 4-byte word replaced by an extreme offset, size or length."""
    loads_or_clear_error(_load_names, forge_word(base, pos, value))


def test_cli_refuses_binary_that_is_not_an_etdump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    prog = str(FIXTURES / "pte" / "linear_k64_n32__ao_8da8w.pte")
    assert cli.main(["inspect", prog, "--etdump", str(bad)]) == 2
    assert "neither an ETDump" in capsys.readouterr().err


def test_memory_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="above the memory limit of 100 bytes"):
        load_etdump(LINEAR, max_bytes=100)
    p = tmp_path / "x.etdp"
    p.write_bytes(LINEAR)
    with pytest.raises(ValueError, match="above the memory limit of 100 bytes"):
        load_etdump(p, max_bytes=100)
