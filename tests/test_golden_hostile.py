"""Hostile and malformed golden files: clear errors only, nothing unpickled, nothing inflated
past the limit, a directory check goes on past a bad file, and ``golden reproduce`` output is a
golden file ``golden check`` accepts."""

from __future__ import annotations

import io
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kleidiref import golden, limits
from kleidiref.cli import main

SAMPLE = golden.bundled_golden_dir() / "pf32_gemm__m1_n1_k1__svl128.npz"
SAMPLE_BYTES = SAMPLE.read_bytes()


def _write(tmp_path: Path, data: bytes, name: str = "g.npz") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def test_sample_is_ok() -> None:
    assert golden.check_file(SAMPLE).ok


def test_not_a_zip_is_a_clear_error_without_pickle_advice(tmp_path: Path) -> None:
    p = _write(tmp_path, b"\x80\x04K\x01." + b"x" * 100)  # a pickle, not an archive
    with pytest.raises(ValueError, match=r"not a golden file \(not a well-formed \.npz"):
        golden.load_golden(p)
    r = golden.check_file(p)
    assert r.status == "error" and "pickle" not in r.message


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, meta_variant=np.array("pf32_gemm"), lhs=np.array([object()], dtype=object))
    p = _write(tmp_path, buf.getvalue())
    with pytest.raises(ValueError, match="not a plain numeric"):
        golden.load_golden(p)


def test_forged_header_shape_is_refused(tmp_path: Path) -> None:
    npy = io.BytesIO()
    np.save(npy, np.zeros(4, np.float32))
    raw = npy.getvalue().replace(b"(4,)", b"(400000000,)".ljust(4)[:12], 1)
    # rebuild with a header that declares far more data than the member holds
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (400000000,), }"
    forged = b"\x93NUMPY\x01\x00" + len(hdr.ljust(118) + "\n").to_bytes(2, "little") + (hdr.ljust(118) + "\n").encode()
    forged += raw[-16:]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("lhs.npy", forged)
    p = _write(tmp_path, buf.getvalue())
    with pytest.raises(ValueError, match="header declares 1600000000 data bytes"):
        golden.load_golden(p)


def test_decompression_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lhs.npy", _npy_zeros(8 << 20))  # 8 MiB that deflate to a few KiB
    p = _write(tmp_path, buf.getvalue())
    assert p.stat().st_size < 64 << 10
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="above the memory limit of 1,048,576 bytes"):
            golden.load_golden(p, max_bytes=1 << 20)
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()
    r = golden.check_file(p, max_bytes=1 << 20)
    assert r.status == "error" and "memory limit" in r.message


def _npy_zeros(nbytes: int) -> bytes:
    b = io.BytesIO()
    np.save(b, np.zeros(nbytes, np.uint8))
    return b.getvalue()


def test_missing_input_field_is_named(tmp_path: Path) -> None:
    with np.load(SAMPLE) as z:
        data = {k: z[k] for k in z.files if k != "lhs"}
    p = _write(tmp_path, _npz(data))
    r = golden.check_file(p)
    assert r.status == "error" and "no input field 'lhs'" in r.message


def test_wrong_rank_and_bad_variant_are_errors(tmp_path: Path) -> None:
    with np.load(SAMPLE) as z:
        data = {k: z[k] for k in z.files}
    r = golden.check_file(_write(tmp_path, _npz({**data, "lhs": data["lhs"].reshape(-1)}), "a.npz"))
    assert r.status == "error"
    r = golden.check_file(_write(tmp_path, _npz({**data, "meta_variant": np.arange(3)}), "b.npz"))
    assert r.status == "error" and "meta_variant must be a string" in r.message
    r = golden.check_file(_write(tmp_path, _npz({k: v for k, v in data.items() if k != "meta_variant"}), "c.npz"))
    assert r.status == "error" and "no meta_variant" in r.message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(SAMPLE_BYTES) - 1))
def test_truncated_files_give_errors_only(tmp_path: Path, cut: int) -> None:
    r = golden.check_file(_write(tmp_path, SAMPLE_BYTES[:cut]))
    assert r.status == "error" and r.message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, len(SAMPLE_BYTES) - 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_bit_flips_never_raise(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE_BYTES)
    for pos, x in flips:
        data[pos] ^= x
    p = _write(tmp_path, bytes(data))
    r = golden.check_file(p)  # must not raise, whatever the bytes
    assert r.status in ("ok", "mismatch", "error", "unsupported")
    try:
        golden.load_golden(p)
    except ValueError:
        pass


def test_directory_check_goes_on_past_a_bad_file(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "a.npz")
    _write(tmp_path, b"garbage", "b.npz")
    shutil.copy(SAMPLE, tmp_path / "c.npz")
    results = golden.check_paths([tmp_path])
    assert [r.status for r in results] == ["ok", "error", "ok"]


def test_reproduce_refuses_to_overwrite_its_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / SAMPLE.name
    shutil.copy(SAMPLE, p)
    assert main(["golden", "reproduce", "--out-dir", str(tmp_path), str(p)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert p.read_bytes() == SAMPLE_BYTES


def test_reproduce_into_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, b"x", "not_a_dir")
    assert main(["golden", "reproduce", "--out-dir", str(f), str(SAMPLE)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_reproduce_output_passes_golden_check(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["golden", "reproduce", "--out-dir", str(out), str(SAMPLE)]) == 0
    assert golden.check_file(out / SAMPLE.name).ok
    assert main(["golden", "check", str(out)]) == 0


def test_reproduce_of_a_truncated_zip_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _write(tmp_path, SAMPLE_BYTES[: len(SAMPLE_BYTES) // 2])
    assert main(["golden", "reproduce", "--out-dir", str(tmp_path / "o"), str(p)]) == 1
    assert "g.npz" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "value"), [("123", 123), ("4K", 4096), ("2G", 2 << 30), ("3MiB", 3 << 20)])
def test_limit_from_environment(monkeypatch: pytest.MonkeyPatch, text: str, value: int) -> None:
    monkeypatch.setenv(limits.ENV_VAR, text)
    assert limits.max_bytes() == value


@pytest.mark.parametrize("text", ["lots", "-5", "0", "1.5G", "9" * 40])
def test_bad_limit_names_the_variable(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(limits.ENV_VAR, text)
    with pytest.raises(ValueError, match=limits.ENV_VAR):
        limits.max_bytes()


def test_limit_argument_is_validated() -> None:
    with pytest.raises(TypeError, match="max_bytes"):
        limits.max_bytes(True)
    with pytest.raises(ValueError, match="memory limit"):
        limits.check_bytes(11, "x", 10)
