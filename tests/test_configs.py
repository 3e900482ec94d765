"""kleidiref.configs: XNNPACK's config choices, the one table dispatch and the variants read."""

from __future__ import annotations

import pytest

from kleidiref import configs, get_ukernel
from kleidiref.targets import APPLE_M4, GENERIC_SME1, NEON_ONLY, SUPPORTED_SVLS, Target
from kleidiref.variants import VARIANTS


@pytest.mark.parametrize("svl", SUPPORTED_SVLS)
def test_every_kernel_a_config_can_return_is_a_registered_ukernel(svl: int) -> None:
    names = configs.kai_kernel_names()
    assert len(names) == sum(len(t) for t in configs.KAI_KERNELS.values())
    for name in names:
        k = get_ukernel(name, svl)
        assert k.name == name and k.svl == svl


TARGETS = [
    APPLE_M4,
    GENERIC_SME1,
    NEON_ONLY,
    NEON_ONLY.replace(i8mm=False),
    NEON_ONLY.replace(i8mm=False, dotprod=False),
    APPLE_M4.replace(kleidiai=False),
    Target(arch="x86_64", sme2=False, sme=False, i8mm=False, dotprod=False, fp16_arith=False),
]


@pytest.mark.parametrize("config", configs.KAI_CONFIGS)
@pytest.mark.parametrize("t", TARGETS, ids=lambda t: f"{t.name}-{t.sme2}{t.sme}{t.i8mm}{t.dotprod}{t.kleidiai}")
@pytest.mark.parametrize("m", [1, 2, 64])
def test_select_kernel_is_the_config_choice(config: str, t: Target, m: int) -> None:
    """Each variant's select_kernel is configs.kai_choice, or a ValueError where the config is NULL."""
    choice = configs.kai_choice(config, t, m)
    if choice is None:
        with pytest.raises(ValueError, match="NULL"):
            VARIANTS[config].select_kernel(t, m)
        return
    cls = VARIANTS[config].select_kernel(t, m)
    assert cls.name == choice.kernel and cls.variant == config
    assert choice.branch == configs.kai_branch(config, t)
    assert (choice.kind == "gemv") == (m == 1 and (choice.branch, "gemv") in configs.KAI_KERNELS[config])


def test_aliases_are_the_config_kernels() -> None:
    for config in ("pf32_gemm", "pf16_gemm", "pqs8_qc8w_gemm", "qp8_f32_qc8w_gemm"):
        mod = VARIANTS[config]
        for (branch, kind), name in configs.KAI_KERNELS[config].items():
            alias = {"sme2": "SME2", "sme": "SME1", "i8mm": "NEON_I8MM", "dotprod": "NEON_DOT"}[branch]
            if branch in ("sme2", "sme"):
                alias += "_" + kind.upper()
            elif kind == "gemv":
                alias += "_GEMV"
            assert getattr(mod, alias).name == name


@pytest.mark.parametrize("svl,tile", [(128, 8), (512, 32), (2048, 128)])
def test_sme_tiles_scale_with_the_svl(svl: int, tile: int) -> None:
    assert configs.xnn_ukernel("pf32_gemm", "sme2", "mopa", svl) == (
        f"xnn_pf32_gemm_minmax_ukernel_{tile}x{tile}__neonsme2",
        tile,
        tile,
    )
    assert configs.xnn_ukernel("pf16_gemm", "sme", "mopa", svl, igemm=True)[1:] == (svl // 16, max(svl // 16, 16))
    assert configs.xnn_ukernel("qp8_f32_qc4w_gemm", "sme2", "gemv", svl) == (
        f"xnn_qp8_f32_qc4w_gemm_minmax_ukernel_1x{svl // 8}c4__neonsme2",
        1,
        svl // 8,
    )


def test_generic_configs() -> None:
    f32 = configs.generic_config("f32_gemm", APPLE_M4)
    assert f32 is not None and (f32.mr, f32.nr, sorted(f32.gemm)) == (7, 8, [1, 4, 7])
    apple = configs.generic_config("f32_gemm", APPLE_M4, "apple")
    assert apple is not None and apple.mr == 6
    qd8 = configs.generic_config("qd8_f32_qc8w_gemm", NEON_ONLY.replace(i8mm=False, dotprod=False))
    assert qd8 is not None and (qd8.mr, qd8.nr) == (2, 8)
    assert configs.generic_config("no_such_gemm", APPLE_M4) is None
