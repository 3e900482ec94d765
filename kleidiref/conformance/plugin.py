"""pytest plugin of the conformance suite: options, the implementation fixture, skip/xfail files, bundles.

Registered by kleidiref's ``pytest11`` entry point (an installed kleidiref), or with
``-p kleidiref.conformance.plugin``. Without ``--kleidiref-*`` options it changes nothing. See
:mod:`kleidiref.conformance` for the options and formats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._harness import Impl, Outcome, kernel_names, load_impl, write_bundle


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kleidiref", "kleidiref conformance suite")
    g.addoption(
        "--kleidiref-impl", default=None, help="implementation under test, module:callable (or $KLEIDIREF_IMPL)"
    )
    g.addoption("--kleidiref-svl", type=int, default=512, help="SVL in bits the SME kernels run at (default 512)")
    g.addoption("--kleidiref-kernels", default=None, help="comma-separated kernel names or globs (default: all)")
    g.addoption("--kleidiref-skips", action="append", default=[], help="skip/xfail file (text or .json); repeatable")
    g.addoption("--kleidiref-repro-dir", default=None, help="write a repro bundle per failure under this directory")
    g.addoption("--kleidiref-full", action="store_true", help="every golden file at every SVL, 200 examples")
    g.addoption("--kleidiref-quick", action="store_true", help="the default budget (explicit form)")
    g.addoption("--kleidiref-max-examples", type=int, default=None, help="hypothesis examples per property test")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kleidiref_conformance: a test of the kleidiref conformance suite")


_IMPL = pytest.StashKey[Impl]()


def _impl(config: pytest.Config) -> Impl:
    try:
        config.getoption("--kleidiref-svl")
    except ValueError:
        raise pytest.UsageError(
            "the kleidiref conformance plugin is not loaded: pip install kleidiref (it registers the plugin) "
            "or run: pytest -p kleidiref.conformance.plugin --pyargs kleidiref.conformance"
        ) from None
    if _IMPL not in config.stash:
        config.stash[_IMPL] = load_impl(config.getoption("--kleidiref-impl"))
    return config.stash[_IMPL]


def provided_kernels(config: pytest.Config) -> list[str]:
    """The kernels the implementation provides at the chosen SVL (with FZ off or on)."""
    impl = _impl(config)
    svl = int(config.getoption("--kleidiref-svl"))
    names = kernel_names(config.getoption("--kleidiref-kernels"))
    return [n for n in names if impl.get(n, svl, False) is not None or impl.get(n, svl, True) is not None]


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Impl:
    return _impl(request.config)


@pytest.fixture(scope="session")
def svl(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--kleidiref-svl"))


@pytest.fixture(scope="session")
def full(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--kleidiref-full"))


@pytest.fixture
def check(request: pytest.FixtureRequest, impl: Impl) -> Iterator[Any]:
    """``check(outcome)``: fail with the diagnosis (writing a repro bundle) unless it matched."""

    def run(o: Outcome | None) -> None:
        __tracebackhide__ = True
        if o is None:
            pytest.skip("the implementation does not provide this kernel at this SVL/FZ")
        if o.ok:
            return
        root = request.config.getoption("--kleidiref-repro-dir")
        where = ""
        if root:
            d = write_bundle(Path(root), request.node.nodeid.split("::")[-1], impl, o)
            where = f"\nrepro bundle: {d}\nreproduce: {(d / 'reproduce.txt').read_text().strip()}"
        # AssertionError, not pytest.fail: hypothesis shrinks on it (the last bundle written is
        # the minimal example, which hypothesis runs last).
        raise AssertionError(f"{o.report}{where}")

    yield run


# ------------------------------------------------------------------------------------------------
# skip / xfail files
# ------------------------------------------------------------------------------------------------


def _rules(path: Path) -> list[tuple[str, str, str]]:
    """(action, glob, reason) rules of a skip file."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return [(a, pat, str(r)) for a in ("skip", "xfail") for pat, r in data.get(a, {}).items()]
    rules: list[tuple[str, str, str]] = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line, _, reason = raw.partition("#")
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[0] not in ("skip", "xfail"):
            raise pytest.UsageError(f"{path}:{n}: expected 'skip|xfail <glob> [# reason]', got {raw!r}")
        rules.append((parts[0], parts[1], reason.strip() or f"listed in {path.name}"))
    return rules


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` are wildcards; everything else (brackets included) is literal."""
    return re.compile(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--kleidiref-skips"):
        return
    rules = [r for f in config.getoption("--kleidiref-skips") for r in _rules(Path(f))]
    compiled = [(a, _glob(pat), reason) for a, pat, reason in rules]
    for item in items:
        for action, pat, reason in compiled:
            if pat.fullmatch(item.name) or pat.fullmatch(item.nodeid):
                mark = pytest.mark.skip(reason=reason) if action == "skip" else pytest.mark.xfail(reason=reason)
                item.add_marker(mark)
                break
