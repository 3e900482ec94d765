"""The trace viewer in a real headless browser (Debian's chromium): it loads without console
errors, stepping changes the highlighted bytes, and a screenshot is not blank.

Skips where no browser is found (CI installs chromium: .ci/run), unless KLEIDIREF_REQUIRE_BROWSER
is set, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from kleidiref.teach.views import trace_page

BROWSER = next((b for b in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if b), None)
if BROWSER is None:
    if os.environ.get("KLEIDIREF_REQUIRE_BROWSER"):
        raise RuntimeError("KLEIDIREF_REQUIRE_BROWSER is set but no chromium is on PATH")
    pytest.skip("no headless browser (chromium) on PATH: apt-get install chromium", allow_module_level=True)


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BROWSER), "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp / 'profile'}"]
    cmd += ["--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # SVL 128: mr = nr = 8, so a 9 x 9 output spans 2 x 2 blocks of four 4 x 4 ZA tiles.
    path = tmp_path_factory.mktemp("html") / "trace.html"
    path.write_text(trace_page("pf32_gemm", svl=128, m=9, n=9, k=3, seed=1), encoding="utf-8")
    return path


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def _highlighted(dom: str) -> list[str]:
    return re.findall(r'class="run data read"[^>]*>([^<]*)<', dom)


def test_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and " src=" not in text


def test_loads_and_steps(page: Path, tmp_path: Path) -> None:
    doms = {}
    for step in (1, 2):
        res = _chromium(tmp_path, "--dump-dom", f"{page.as_uri()}#step={step}")
        assert res.returncode == 0, res.stderr[-2000:]
        assert _console(res.stderr) == [], _console(res.stderr)
        assert f'data-step="{step}"' in res.stdout
        doms[step] = res.stdout
    first, second = _highlighted(doms[1]), _highlighted(doms[2])
    assert first and second and first != second
    assert all(t.endswith("k0") or t.endswith("k0*") for t in first)
    assert all(t.endswith("k1") or t.endswith("k1*") for t in second)


def _png_pixels(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def test_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path, "--window-size=1200,800", f"--screenshot={shot}", f"{page.as_uri()}#step=1")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = _png_pixels(shot)
    assert len(set(pixels)) > 20  # a blank page compresses to a handful of byte values


def test_hover_highlights_the_same_element_everywhere(page: Path, tmp_path: Path) -> None:
    """C[5, 6] (block (0, 0) at SVL 128: ZA3.s slice 1, lane 2): its accumulator and output cells,
    LHS row 5's packed runs and RHS column 6's packed runs are highlighted, nothing else."""
    res = _chromium(tmp_path, "--dump-dom", f"{page.as_uri()}#step=1&hover=5,6")
    assert _console(res.stderr) == [], _console(res.stderr)
    tags = [t for t in re.findall(r"<td([^>]*)>", res.stdout) if re.search(r'class="[^"]*\bhover\b', t)]
    cells = [re.search(r'data-i="(\d+)" data-j="(\d+)"', t).groups() for t in tags]  # type: ignore[union-attr]
    assert cells == [("5", "6"), ("5", "6")]  # the accumulator and the output
    runs = re.findall(r'<div class="run [^"]*hover[^"]*"[^>]*>([^<]*)<', res.stdout)
    assert runs and all(t.startswith(("r5k", "n6k", "b6")) for t in runs)
    assert {"r5k0", "r5k1", "r5k2", "n6k0", "b6"} <= set(runs)
    assert "ZA3.s horizontal slice 1, lane 2" in res.stdout


def test_qb4w_page_steps_by_quant_block(tmp_path: Path) -> None:
    """A blockwise trace: each step is a quant block; the ZA int32 sums of the block and the float
    accumulator are shown, both change from block to block, and the block's packed bytes are read."""
    path = tmp_path / "qb4w.html"
    path.write_text(trace_page("qp8_f32_qb4w_gemm", svl=128, m=3, n=5, k=64, seed=2), encoding="utf-8")
    tables = {}
    for step in (1, 2):
        res = _chromium(tmp_path, "--dump-dom", f"{path.as_uri()}#step={step}")
        assert res.returncode == 0 and _console(res.stderr) == [], _console(res.stderr)
        assert f'data-step="{step}"' in res.stdout and f"after block {step} of 2" in res.stdout
        ints = re.search(r'<table id="ints">(.*?)</table>', res.stdout, re.S)
        za = re.search(r'<table id="za">(.*?)</table>', res.stdout, re.S)
        assert ints and za and "<td" in ints.group(1)
        tables[step] = (ints.group(1), za.group(1), re.findall(r'class="run data read"[^>]*>([^<]*)<', res.stdout))
    assert tables[1][0] != tables[2][0] and tables[1][1] != tables[2][1]
    assert tables[1][2] and all(int(re.search(r"k(\d+)", t).group(1)) < 32 for t in tables[1][2])  # type: ignore[union-attr]
    assert tables[2][2] and all(int(re.search(r"k(\d+)", t).group(1)) >= 32 for t in tables[2][2])  # type: ignore[union-attr]
