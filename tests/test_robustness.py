"""Bad settings get errors that name the setting (issue 15's robustness campaign)."""

from __future__ import annotations

import pytest

from kleidiref import _engine


@pytest.mark.parametrize("raw", ["abc", "0", "-2", "1.5", "100000", "2 threads"])
def test_bad_thread_count_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("KLEIDIREF_THREADS", raw)
    with pytest.raises(ValueError, match="KLEIDIREF_THREADS must be an integer from 1 to 256"):
        _engine.worker_threads()


@pytest.mark.parametrize(("raw", "n"), [("1", 1), (" 3 ", 3), ("256", 256)])
def test_thread_count(monkeypatch: pytest.MonkeyPatch, raw: str, n: int) -> None:
    monkeypatch.setenv("KLEIDIREF_THREADS", raw)
    assert _engine.worker_threads() == n
