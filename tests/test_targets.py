"""kleidiref.targets: validation, presets and the current-target flags."""

from __future__ import annotations

import pytest

from kleidiref import targets as t


def test_svl_validation() -> None:
    for s in t.SUPPORTED_SVLS:
        assert t.validate_svl(s) == s
    for bad in (0, 64, 384, 4096):
        with pytest.raises(ValueError, match="no SME CPU has it"):
            t.validate_svl(bad)
    for bad_type in (512.0, "512", True):
        with pytest.raises(TypeError):
            t.validate_svl(bad_type)


def test_target_consistency_checks() -> None:
    with pytest.raises(ValueError, match="FEAT_SME2 implies FEAT_SME"):
        t.Target(sme2=True, sme=False)
    with pytest.raises(ValueError, match="x86_64"):
        t.Target(arch="x86_64")
    x86 = t.Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False)
    assert not x86.has_sme
    with pytest.raises(TypeError, match="bool"):
        t.Target(sme2=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        t.APPLE_M4.replace(svl_bits=100)


def test_current_target_and_context_managers(monkeypatch: pytest.MonkeyPatch) -> None:
    t.reset_target()
    assert t.get_target().svl_bits == 512
    with t.svl(256):
        assert t.get_target().svl_bits == 256
        with t.target(t.GENERIC_SME1):
            assert not t.get_target().sme2
        assert t.get_target().svl_bits == 256
    assert t.get_target().svl_bits == 512
    t.set_svl(1024)
    assert t.resolve_svl(None) == 1024
    t.reset_target()
    monkeypatch.setenv("KLEIDIREF_SVL", "2048")
    assert t.get_target().svl_bits == 2048
    monkeypatch.setenv("KLEIDIREF_SVL", "300")
    with pytest.raises(ValueError, match="no SME CPU"):
        t.get_target()
    monkeypatch.setenv("KLEIDIREF_SVL", "big")
    with pytest.raises(ValueError, match="KLEIDIREF_SVL"):
        t.get_target()
    with pytest.raises(TypeError):
        t.set_target("apple")  # type: ignore[arg-type]
