"""The accumulation chains return C-contiguous arrays whatever the layout of their inputs."""

from __future__ import annotations

import numpy as np
import pytest

from kleidiref._engine import f16_mla_chain, f16_pair_chain, fma32_chain


@pytest.mark.parametrize("m", [1, 3, 40])
def test_chains_return_c_contiguous(m: int) -> None:
    rng = np.random.default_rng(m)
    bias = rng.standard_normal(7).astype(np.float32)
    acc0 = np.broadcast_to(bias, (m, 7))  # strides (0, 4): the usual bias seed
    a = rng.standard_normal((m, 6)).astype(np.float32)
    w = np.asfortranarray(rng.standard_normal((6, 7)).astype(np.float32))
    outs = [
        fma32_chain(acc0, a, w),
        fma32_chain(acc0, a, w, fz=True),
        f16_pair_chain(acc0, a.astype(np.float16), w.astype(np.float16)),
        f16_mla_chain(acc0, a.astype(np.float16), w.astype(np.float16)),
    ]
    for out in outs:
        assert out.shape == (m, 7) and out.flags.c_contiguous
        out.view(np.uint8)  # what bitwise comparisons do
