"""Documentation references only what ships: docs/kernels.md sections that exist, no spec files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shipped() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted(p for p in (ROOT / "kleidiref").rglob("*") if p.suffix in (".py", ".md"))
    return files


def _sections() -> set[str]:
    heads = re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", (ROOT / "docs" / "kernels.md").read_text(), re.M)
    return set(heads)


def test_kernels_md_references_name_existing_sections() -> None:
    sections = _sections()
    assert {"1", "2", "4", "7.1", "7.2", "9"} <= sections
    for f in _shipped():
        text = f.read_text()
        for m in re.finditer(r"docs/kernels\.md\s+((?:§[\d.]+(?:,\s*)?)+)", text):
            for sec in re.findall(r"§([\d.]*\d)", m.group(1)):
                assert sec in sections, f"{f.relative_to(ROOT)} cites docs/kernels.md §{sec}, which does not exist"


def test_no_reference_to_unshipped_spec_files() -> None:
    bad = re.compile(r"(?<!docs/)\b(kernels|dispatch)\.md\s+§|/work/shared|shared/spec|spec: kernels")
    for f in _shipped():
        rel = str(f.relative_to(ROOT))
        for n, line in enumerate(f.read_text().splitlines(), 1):
            assert not bad.search(line), f"{rel}:{n} cites a file users do not have: {line.strip()}"
