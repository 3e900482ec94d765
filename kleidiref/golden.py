"""Reproduce and check the golden vectors produced by the real KleidiAI kernels.

A golden file (``<variant>__<case>[__svl<bits>].npz``, format: docs/golden-format.md) holds the
inputs of one problem and what the real packers and kernels produced from them. Reproducing
reads **only the inputs** (a reproducer that touches a stored packed buffer or output gets a
``KeyError``) and recomputes every packed buffer, output and kernel parameter. Checking
compares them: packed bytes where the ``*_written`` mask is 1 (and the sizes), outputs
bitwise (NaN payloads included), kernel parameters exactly. A golden result field the
reproducer did not produce is a failure, so no stored result goes unchecked.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .limits import check_bytes

__all__ = [
    "TABLE_LEGEND",
    "FieldResult",
    "FileResult",
    "GoldenInputs",
    "bundled_golden_dir",
    "check_file",
    "check_paths",
    "format_table",
    "is_result_field",
    "load_golden",
    "reproduce_file",
    "reproduced_golden_file",
    "reproducers",
]

Reproducer = Callable[[Mapping[str, NDArray[Any]]], dict[str, NDArray[Any]]]

_RESULT_PREFIXES = ("lhs_packed", "rhs_packed", "out", "indirection")
#: meta_* fields that describe the problem (inputs); every other meta_* is a result to check.
_INPUT_META = frozenset(
    {
        "meta_variant",
        "meta_case",
        "meta_split",
        "meta_seed",
        "meta_svl_bits",
        "meta_M",
        "meta_N",
        "meta_K",
        "meta_fpcr_fz",
        "meta_fpcr_fz16",
    }
)


#: Inputs whose names share a result prefix: the pqs8 output quantization (kai_matmul_requantize32_params).
_INPUT_FIELDS = frozenset({"out_min", "out_max", "out_zero_point"})


def is_result_field(key: str) -> bool:
    """True for fields a reproducer must compute (packed buffers, outputs, kernel parameters)."""
    if key.endswith("_written") or key in _INPUT_FIELDS:
        return False
    if key.startswith("meta_"):
        return key not in _INPUT_META
    return key.startswith(_RESULT_PREFIXES)


class GoldenInputs(Mapping[str, NDArray[Any]]):
    """The input fields of a golden file; asking for a stored result raises ``KeyError``."""

    def __init__(self, data: Mapping[str, NDArray[Any]]) -> None:
        self._data = {k: v for k, v in data.items() if not is_result_field(k) and not k.endswith("_written")}
        self._results = frozenset(k for k in data if is_result_field(k) or k.endswith("_written"))

    def __getitem__(self, key: str) -> NDArray[Any]:
        if key in self._data:
            return self._data[key]
        if key in self._results:
            raise KeyError(f"{key!r} is a result of this golden file (or its mask): results must be recomputed")
        raise KeyError(f"this golden file has no input field {key!r}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def reproducers() -> dict[str, Reproducer]:
    """Golden variant id -> reproducer, for every variant implemented so far."""
    from .variants import golden_reproducers

    return golden_reproducers()


#: Golden files are small (the largest bundled one holds about 1.5 MB); a member declaring
#: more than this is refused unless the caller passes a larger ``max_bytes``.
GOLDEN_MAX_BYTES = 256 << 20
_MAX_MEMBERS = 4096
_KINDS = frozenset("biufcUS")
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, struct.error, UnicodeError)


def _read_npy(f: IO[bytes], declared: int, where: str) -> NDArray[Any]:
    """One .npy member, read without pickle and without trusting its header's sizes."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"{where}: unsupported .npy format version {version}")
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
        raise ValueError(f"{where}: dtype {dtype} is not a plain numeric or string dtype")
    if any(d < 0 for d in shape):
        raise ValueError(f"{where}: negative dimension in shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    header_end = f.tell()
    if nbytes != declared - header_end:
        raise ValueError(
            f"{where}: header declares {nbytes} data bytes ({dtype}{shape}) but the member holds "
            f"{declared - header_end}"
        )
    buf = f.read(nbytes)
    if len(buf) != nbytes:
        raise ValueError(f"{where}: truncated data")
    arr: NDArray[Any] = np.frombuffer(buf, dtype).copy()  # writable, owning its bytes
    return arr.reshape(shape, order="F" if fortran else "C")


def load_golden(path: str | Path, *, max_bytes: int | None = None) -> dict[str, NDArray[Any]]:
    """Every array of a golden ``.npz``, read defensively.

    Nothing is unpickled; each member's declared size is checked against ``max_bytes``
    (default :data:`GOLDEN_MAX_BYTES`) before it is inflated, and its ``.npy`` header against that
    size. A file that is not a well-formed ``.npz`` of plain arrays gets a ``ValueError`` naming
    the file and what is wrong.
    """
    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except IsADirectoryError:
        raise ValueError(f"{p}: a directory, not a golden file") from None
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except _ZIP_ERRORS as exc:
        # zipfile reports a forged header with any of these (NotImplementedError: "zip file version").
        raise ValueError(f"{p}: not a golden file (not a well-formed .npz zip archive: {exc})") from None
    out: dict[str, NDArray[Any]] = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise ValueError(f"{p}: {len(infos)} members, more than a golden file holds ({_MAX_MEMBERS})")
        check_bytes(sum(i.file_size for i in infos), f"{p}: the arrays (declared sizes)", max_bytes or GOLDEN_MAX_BYTES)
        for info in infos:
            name = info.filename
            key = name.removesuffix(".npy")
            if key == name or "/" in key or not key or key in out:
                raise ValueError(f"{p}: member {name!r} is not a uniquely named .npy array")
            where = f"{p}: array {key!r}"
            try:
                with zf.open(info) as f:
                    out[key] = _read_npy(f, info.file_size, where)
            except (*_ZIP_ERRORS, OSError) as exc:
                raise ValueError(f"{where}: corrupt member ({exc})") from None
            except ValueError as exc:
                msg = str(exc)
                raise ValueError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    return out


def _variant_of(data: Mapping[str, NDArray[Any]], path: Path) -> str:
    v = data.get("meta_variant")
    if v is None:
        raise ValueError(f"{path}: no meta_variant field: not a golden file")
    if v.shape != () or v.dtype.kind != "U":
        raise ValueError(f"{path}: meta_variant must be a string scalar, got {v.dtype}{v.shape}")
    return str(v)


def _reproduce(data: Mapping[str, NDArray[Any]], path: Path) -> dict[str, NDArray[Any]]:
    variant = _variant_of(data, path)
    repro = reproducers().get(variant)
    if repro is None:
        raise NotImplementedError(f"no reproducer for golden variant {variant!r} yet")
    return repro(GoldenInputs(data))


def reproduce_file(path: str | Path, *, max_bytes: int | None = None) -> dict[str, NDArray[Any]]:
    """Every result field of a golden file, recomputed from its inputs alone."""
    p = Path(path)
    return _reproduce(load_golden(p, max_bytes=max_bytes), p)


def reproduced_golden_file(path: str | Path, *, max_bytes: int | None = None) -> dict[str, NDArray[Any]]:
    """A whole golden file with its results recomputed: its inputs (and ``*_written`` masks) kept,
    every result field replaced by the reproduction, so ``golden check`` reads it like the original."""
    p = Path(path)
    data = load_golden(p, max_bytes=max_bytes)
    kept = {k: v for k, v in data.items() if not is_result_field(k)}
    return {**kept, **_reproduce(data, p)}


@dataclasses.dataclass
class FieldResult:
    """The comparison of one field."""

    name: str
    ok: bool
    compared: int  # bytes (packed) or elements (outputs, meta)
    mismatched: int
    detail: str = ""


@dataclasses.dataclass
class FileResult:
    """The check of one golden file: ``status`` is ok, mismatch, unsupported or error."""

    path: Path
    variant: str
    status: str
    fields: list[FieldResult] = dataclasses.field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _compare(name: str, got: NDArray[Any], want: NDArray[Any], mask: NDArray[Any] | None) -> FieldResult:
    got, want = np.asarray(got), np.asarray(want)
    if mask is not None:
        g, w = got.reshape(-1).view(np.uint8), want.reshape(-1).view(np.uint8)
        if g.size != w.size:
            return FieldResult(name, False, 0, max(g.size, w.size), f"size {g.size} bytes, golden {w.size}")
        sel = mask.reshape(-1).astype(bool)
        bad = np.flatnonzero(sel & (g != w))
        detail = f"first differing written byte at offset {bad[0]}" if bad.size else ""
        return FieldResult(name, bad.size == 0, int(sel.sum()), int(bad.size), detail)
    if got.shape != want.shape or got.dtype != want.dtype:
        return FieldResult(name, False, 0, want.size, f"got {got.dtype}{got.shape}, golden {want.dtype}{want.shape}")
    if got.dtype.kind == "f":
        ubits = np.dtype(f"u{got.dtype.itemsize}")
        diff = got.view(ubits) != want.view(ubits)
    else:
        diff = got != want
    bad = np.flatnonzero(diff.reshape(-1))
    detail = ""
    if bad.size:
        i = int(bad[0])
        detail = f"first mismatch at flat index {i}: got {got.reshape(-1)[i]!r}, golden {want.reshape(-1)[i]!r}"
    return FieldResult(name, bad.size == 0, int(want.size), int(bad.size), detail)


def check_file(path: str | Path, *, max_bytes: int | None = None) -> FileResult:
    """Reproduce one golden file and compare every result field.

    Never raises for a bad file: an unreadable or malformed one is a result with status
    ``error`` and a message saying why, so a directory check goes on past it.
    """
    p = Path(path)
    try:
        data = load_golden(p, max_bytes=max_bytes)
        variant = _variant_of(data, p)
    except ValueError as exc:
        return FileResult(p, "?", "error", message=str(exc))
    try:
        return _check_data(p, variant, data)
    except Exception as exc:  # a hostile file must not abort a directory check
        return FileResult(p, variant, "error", message=f"{type(exc).__name__}: {exc}")


def _check_data(p: Path, variant: str, data: dict[str, NDArray[Any]]) -> FileResult:
    repro = reproducers().get(variant)
    if repro is None:
        return FileResult(p, variant, "unsupported", message=f"no reproducer for {variant!r} yet")
    try:
        got = repro(GoldenInputs(data))
    except Exception as exc:
        return FileResult(p, variant, "error", message=f"{type(exc).__name__}: {exc}")
    fields = []
    for key in sorted(k for k in data if is_result_field(k)):
        if key not in got:
            fields.append(FieldResult(key, False, 0, 0, "not reproduced"))
            continue
        mask = data.get(f"{key}_written")
        if mask is not None and mask.size != data[key].nbytes:
            fields.append(
                FieldResult(key, False, 0, 0, f"{key}_written has {mask.size} entries for {data[key].nbytes} bytes")
            )
            continue
        fields.append(_compare(key, got[key], data[key], mask))
    ok = all(f.ok for f in fields)
    return FileResult(p, variant, "ok" if ok else "mismatch", fields)


def check_paths(paths: Iterable[str | Path]) -> list[FileResult]:
    """Check files and directories (every ``*.npz`` below a directory), in sorted order."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        files.extend(sorted(p.glob("*.npz")) if p.is_dir() else [p])
    return [check_file(f) for f in files]


def bundled_golden_dir() -> Path:
    """The golden vectors shipped inside the package."""
    return Path(str(importlib.resources.files("kleidiref") / "golden_data"))


#: What the columns of :func:`format_table` count (printed under the table).
TABLE_LEGEND: tuple[str, ...] = (
    "  files: golden files of the variant; match: every result field reproduced bit for bit;",
    "  differ: some field differs (listed below); n/a: no reproducer for the variant;",
    "  packed bytes: packed-buffer bytes compared (those the real packer wrote);",
    "  values: output elements and kernel parameters compared (bitwise, NaN payloads included).",
)


def format_table(results: list[FileResult]) -> str:
    """A per-variant summary table, then one line per file that did not match."""
    rows: dict[str, dict[str, int]] = {}
    for r in results:
        row = rows.setdefault(r.variant, {"files": 0, "ok": 0, "bad": 0, "unsupported": 0, "bytes": 0, "elems": 0})
        row["files"] += 1
        row["ok" if r.ok else ("unsupported" if r.status == "unsupported" else "bad")] += 1
        for f in r.fields:
            row["bytes" if "packed" in f.name else "elems"] += f.compared
    head = f"{'variant':<26} {'files':>5} {'match':>5} {'differ':>6} {'n/a':>4} {'packed bytes':>13} {'values':>9}"
    lines = [head, "-" * len(head)]
    for name in sorted(rows):
        c = rows[name]
        lines.append(
            f"{name:<26} {c['files']:>5} {c['ok']:>5} {c['bad']:>6} {c['unsupported']:>4} "
            f"{c['bytes']:>13} {c['elems']:>9}"
        )
    total_ok = sum(r.ok for r in results)
    lines.append("-" * len(head))
    lines.extend(TABLE_LEGEND)
    lines.append(f"{len(results)} files: {total_ok} bit-exact, {len(results) - total_ok} not")
    for r in results:
        if not r.ok:
            why = r.message or "; ".join(f"{f.name}: {f.mismatched} differ ({f.detail})" for f in r.fields if not f.ok)
            lines.append(f"  {r.status.upper():<11} {r.path.name}: {why}")
    return "\n".join(lines)
