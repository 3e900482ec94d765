"""kleidiref.targets: validation, presets and the current-target flags."""

from __future__ import annotations

import asyncio
import threading

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


def test_target_without_sme_has_no_svl() -> None:
    assert t.NEON_ONLY.svl_bits is None and "svl_bits" not in repr(t.NEON_ONLY)
    x86 = t.Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False, svl_bits=0)
    assert x86.svl_bits is None and "svl_bits" not in repr(x86)
    assert t.Target(sme2=False, sme=False, svl_bits=None).svl_bits is None
    assert "svl_bits=512" in repr(t.APPLE_M4)
    assert t.NEON_ONLY.replace(sme=True).svl_bits == 512  # SME again: the default SVL
    with pytest.raises(ValueError, match="no SME CPU has it"):
        t.Target(svl_bits=0)  # an SME target needs a real SVL
    with pytest.raises(ValueError, match="has no SVL"):
        t.target_svl(t.NEON_ONLY, "an SME kernel")
    with t.target(t.NEON_ONLY):
        with pytest.raises(ValueError, match="has no SVL"):
            t.resolve_svl(None)
        assert t.resolve_svl(None, required=False) == 512  # NEON kernels ignore it
        assert t.resolve_svl(256) == 256


def test_non_target_is_a_type_error() -> None:
    assert t.resolve_target(None) == t.get_target()
    assert t.resolve_target(t.NEON_ONLY) is t.NEON_ONLY
    for bad in ("apple-m4", 512, {"sme2": True}):
        with pytest.raises(TypeError, match="Target"):
            t.resolve_target(bad)
        with pytest.raises(TypeError, match="Target"):
            with t.target(bad):  # type: ignore[arg-type]
                pass


def test_context_managers_do_not_leak_across_threads() -> None:
    """``with svl(...)`` / ``with target(...)`` in one thread never changes another's target."""
    t.reset_target()
    inside, checked = threading.Event(), threading.Event()
    seen: list[tuple[int | None, str]] = []

    def holder() -> None:
        with t.svl(256), t.target(t.GENERIC_SME1.replace(svl_bits=128)):
            inside.set()
            checked.wait(5)

    def reader() -> None:
        inside.wait(5)
        cur = t.get_target()
        seen.append((cur.svl_bits, cur.name))
        checked.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert seen == [(512, "default")]


def test_set_target_is_the_process_default_and_scoped_inside_blocks() -> None:
    t.reset_target()
    try:
        t.set_target(t.GENERIC_SME1)  # module-level set_target: every thread sees it
        seen: list[str] = []
        th = threading.Thread(target=lambda: seen.append(t.get_target().name))
        th.start()
        th.join(10)
        assert seen == ["generic-sme1"]
        with t.svl(1024):
            t.set_svl(256)  # inside a block: only this block's target
            assert t.get_target().svl_bits == 256 and not t.get_target().sme2
        assert t.get_target() is t.GENERIC_SME1
    finally:
        t.reset_target()


def test_context_managers_are_per_asyncio_task() -> None:
    async def task(svl: int, go: asyncio.Event, other: asyncio.Event) -> int | None:
        with t.svl(svl):
            go.set()
            await other.wait()
            return t.get_target().svl_bits

    async def main() -> list[int | None]:
        a, b = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(task(128, a, b), task(2048, b, a)))

    t.reset_target()
    assert asyncio.run(main()) == [128, 2048]
    assert t.get_target().svl_bits == 512


def test_sme_kernels_refuse_a_target_without_svl() -> None:
    import numpy as np

    from kleidiref import get_ukernel, pf32_gemm, qp8_f32_qc8w_gemm

    a, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="has no SVL"):
        pf32_gemm.gemm(a, w, target=t.NEON_ONLY, kernel=pf32_gemm.SME2_MOPA.name)
    with pytest.raises(ValueError, match="has no SVL"):
        pf32_gemm.pack_weights(w, target=t.NEON_ONLY.replace(i8mm=False))
    with pytest.raises(TypeError, match="Target"):
        pf32_gemm.gemm(a, w, target="apple-m4")  # type: ignore[arg-type]
    with t.target(t.NEON_ONLY):
        with pytest.raises(ValueError, match="has no SVL"):
            get_ukernel(pf32_gemm.SME2_MOPA.name)
        neon = get_ukernel(qp8_f32_qc8w_gemm.NEON_I8MM.name)  # NEON kernels need no SVL
        assert neon.name == qp8_f32_qc8w_gemm.NEON_I8MM.name
        out = qp8_f32_qc8w_gemm.gemm(a, np.ones((4, 3), np.int8), np.ones(4, np.float32))
        assert out.shape == (2, 4)


def test_public_entry_points_refuse_a_non_target() -> None:
    """Every entry point resolves ``target=`` through targets.resolve_target: a string is a TypeError."""
    import numpy as np

    from kleidiref import fully_connected, igemm, pf16_gemm, pf32_gemm, qp8_f32_qc4w_gemm, qp8_f32_qc8w_gemm

    a, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    w8, s = np.ones((4, 3), np.int8), np.ones(4, np.float32)
    calls = [
        lambda: pf32_gemm.gemm(a, w, target="apple-m4"),  # type: ignore[arg-type]
        lambda: pf16_gemm.gemm(a.astype(np.float16), w.astype(np.float16), target="apple-m4"),  # type: ignore[arg-type]
        lambda: qp8_f32_qc8w_gemm.gemm(a, w8, s, target="apple-m4"),  # type: ignore[arg-type]
        lambda: qp8_f32_qc4w_gemm.gemm(a, w8, s, target="apple-m4"),  # type: ignore[arg-type]
        lambda: igemm.conv2d(
            np.ones((1, 3, 3, 2), np.float32),
            np.ones((2, 1, 1, 2), np.float32),
            None,
            variant="pf32",
            target="m4",  # type: ignore[arg-type]
        ),
        lambda: fully_connected(a, w, target="apple-m4"),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(TypeError, match="Target"):
            call()  # type: ignore[no-untyped-call]
