"""IGEMM (Conv2d): golden vectors, indirection, imatmul packers/kernels, IGEMM vs im2col GEMM, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref import fallbacks as F
from kleidiref.conv import Padding
from kleidiref.golden import bundled_golden_dir, check_file
from kleidiref.kai.params import kai_matmul_requantize32_params as RQ
from kleidiref.kai.params import kai_rhs_pack_qsi8cx_params
from kleidiref.kernel import get_ukernel, list_ukernels
from kleidiref.targets import GENERIC_SME1, NEON_ONLY, SUPPORTED_SVLS, Target
from kleidiref.variants import igemm as ig
from kleidiref.variants import pf16_gemm, pf32_gemm, pqs8_qc8w_gemm
from kleidiref.variants.igemm.configs import CONFIGS, pack_lhs

FAMILIES = ("pf32_igemm", "pf16_igemm", "pqs8_qc8w_igemm")
GOLDEN = sorted(p for fam in FAMILIES for p in bundled_golden_dir().glob(f"{fam}__*.npz"))
VARIANT_OF = {"pf32_igemm": "pf32", "pf16_igemm": "pf16", "pqs8_qc8w_igemm": "pqs8"}
NOFZ = Target(flush_to_zero=False)


def _load(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------------------------------------
# Golden vectors
# ---------------------------------------------------------------------------------------------


def test_golden_file_count() -> None:
    for fam in FAMILIES:
        assert len([p for p in GOLDEN if p.name.startswith(fam + "__")]) == 50


@pytest.mark.parametrize("path", GOLDEN, ids=lambda x: Path(x).stem)
def test_golden(path: Path) -> None:
    res = check_file(path)
    assert res.ok, [(f.name, f.detail) for f in res.fields if not f.ok] or res.message


def _conv_args(d: dict[str, Any]) -> dict[str, Any]:
    variant = VARIANT_OF[str(d["meta_variant"])]
    args: dict[str, Any] = {
        "variant": variant,
        "stride": d["stride"].tolist(),
        "dilation": d["dilation"].tolist(),
        "padding": ig.golden_padding(d),
    }
    if variant == "pqs8":
        args.update(
            input_zero_point=int(d["input_zero_point"]),
            requant_scale=d["scale"],
            output_zero_point=int(d["out_zero_point"]),
            output_min=int(d["out_min"]),
            output_max=int(d["out_max"]),
        )
    else:
        args.update(clamp_min=float(d["clamp_min"]), clamp_max=float(d["clamp_max"]))
    return args


@pytest.mark.parametrize(
    "path", [p for p in GOLDEN if p.stem.endswith(("svl512", "svl128"))], ids=lambda x: Path(x).stem
)
def test_conv2d_api_matches_golden(path: Path) -> None:
    """The friendly conv2d (what ops.convolution_2d calls) gives the golden out / out_sme1."""
    d = _load(path)
    t = Target(svl_bits=int(d["meta_svl_bits"]), flush_to_zero=False)
    args = _conv_args(d)
    out = ig.conv2d(d["input"], d["filter"], d["bias"], target=t, **args)
    assert out.dtype == d["out"].dtype and out.shape == d["out"].shape
    assert np.array_equal(out.view(np.uint8), d["out"].view(np.uint8))
    sme1 = ig.conv2d(d["input"], d["filter"], d["bias"], target=t, sme1=True, **args)
    assert np.array_equal(sme1.view(np.uint8), d["out_sme1"].view(np.uint8))
    only_sme1 = ig.conv2d(
        d["input"],
        d["filter"],
        d["bias"],
        target=GENERIC_SME1.replace(svl_bits=t.svl_bits, flush_to_zero=False),
        **args,
    )
    assert np.array_equal(only_sme1.view(np.uint8), d["out_sme1"].view(np.uint8))


def test_list_ukernels_igemm_is_the_imatmul_packers_and_kernels() -> None:
    """The igemm module's ukernels: 3 LHS and 3 RHS imatmul packers, 6 imatmul kernels."""
    names = list_ukernels("igemm")
    assert len(names) == 12 and all("imatmul" in n for n in names)
    assert sorted(n for fam in FAMILIES for n in list_ukernels(fam)) == names
    assert all(getattr(ig, n) is type(get_ukernel(n, 512)) for n in names)


@pytest.mark.parametrize("fam", FAMILIES)
def test_dedicated_imatmul_kernels_match_golden(fam: str) -> None:
    """kai_imatmul_clamp_* on the stored packed buffers give the golden bytes (as upstream found)."""
    kernels = [n for n in list_ukernels(fam) if n.startswith("kai_imatmul_clamp_")]
    assert len(kernels) == 2
    for path in [p for p in GOLDEN if p.name.startswith(fam + "__")][::7]:
        d = _load(path)
        svl = int(d["meta_svl_bits"])
        m, n, ks, kc = (int(d[f"meta_{k}"]) for k in ("M", "N", "ks", "kc"))
        for name in kernels:
            kern: Any = get_ukernel(name, svl)
            assert kern.get_m_step() == int(d["meta_m_step"]) and kern.get_n_step() == int(d["meta_n_step"])
            dst = np.zeros_like(d["out"])
            row = n * dst.itemsize
            if fam == "pqs8_qc8w_igemm":
                rq = RQ(int(d["out_min"]), int(d["out_max"]), int(d["out_zero_point"]))
                kern.run_imatmul(m, n, ks, kc, d["lhs_packed"], d["rhs_packed"], dst, row, rq)
            else:
                kern.run_imatmul(
                    m,
                    n,
                    ks,
                    kc,
                    d["lhs_packed"],
                    d["rhs_packed"],
                    dst,
                    row,
                    float(d["clamp_min"]),
                    float(d["clamp_max"]),
                )
            want = d["out"] if kern.isa == "sme2" else d["out_sme1"]
            assert np.array_equal(dst.view(np.uint8), want.view(np.uint8)), (name, path.name)


# ---------------------------------------------------------------------------------------------
# Indirection buffer
# ---------------------------------------------------------------------------------------------


def _xnn_indirection(g: ig.ConvGeometry, mr: int) -> list[int]:
    """A line-by-line transliteration of XNNPACK's xnn_indirection_init_conv2d (size_t wrap)."""
    wrap = 1 << 64
    m = g.hout * g.wout
    ks = g.kh * g.kw
    buf = [-2] * (((m + mr - 1) // mr) * mr * ks)
    cur_oy, cur_ox = 0, 0
    clamp_oy, clamp_ox = (m - 1) // g.wout, (m - 1) % g.wout
    for start in range(0, m, mr):
        oy, ox = cur_oy, cur_ox
        for off in range(mr):
            index_out = start + off
            clamped = index_out >= m - 1
            out_x, out_y = (clamp_ox, clamp_oy) if clamped else (ox, oy)
            for ky in range(g.kh):
                iy = (out_y * g.sh + ky * g.dh - g.top) % wrap
                for kx in range(g.kw):
                    ix = (out_x * g.sw + kx * g.dw - g.left) % wrap
                    idx = start * ks + (ky * g.kw + kx) * mr + off
                    buf[idx] = iy * g.w + ix if (iy < g.h and ix < g.w) else -1
            if index_out < m - 1:
                ox += 1
                if ox == g.wout:
                    ox, oy = 0, oy + 1
        cur_oy, cur_ox = oy, ox
    return buf


@st.composite
def geometries(draw: st.DrawFn) -> ig.ConvGeometry:
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
    assume(pad[0] + h + pad[2] >= (kh - 1) * dil[0] + 1 and pad[1] + w + pad[3] >= (kw - 1) * dil[1] + 1)
    return ig.conv_geometry(h, w, kh, kw, stride=stride, dilation=dil, padding=pad)


@settings(max_examples=120, deadline=None)
@given(geometries(), st.sampled_from([1, 2, 3, 8, 16, 32]))
def test_indirection_is_xnnpack_loop(g: ig.ConvGeometry, mr: int) -> None:
    got = ig.indirection_conv2d(g, mr)
    assert got.dtype == np.int32
    assert got.tolist() == _xnn_indirection(g, mr)


def test_geometry_formula_and_only_top_left_address() -> None:
    g = ig.conv_geometry(5, 6, 3, 2, stride=(2, 1), dilation=(1, 2), padding=(1, 3, 2, 0))
    assert (g.hout, g.wout) == ((1 + 5 + 2 - 3) // 2 + 1, (0 + 6 + 3 - 3) // 1 + 1)
    g2 = ig.conv_geometry(5, 6, 3, 2, stride=(2, 1), dilation=(1, 2), padding=(1, 4, 3, 0))
    # More bottom/right padding adds output pixels but does not move the existing ones.
    a = ig.indirection_conv2d(g, 1).reshape(g.hout, g.wout, -1)
    b = ig.indirection_conv2d(g2, 1).reshape(g2.hout, g2.wout, -1)
    assert np.array_equal(a, b[: g.hout, : g.wout])


def _sme_and_generic_conv(variant: str, pad: Any, fast: bool) -> tuple[NDArray[Any], NDArray[Any]]:
    """One small convolution (integer data: exact sums) through conv2d and the generic kernel."""
    rng = np.random.default_rng(14)
    x, f = rng.integers(-3, 4, (2, 4, 5, 3)), rng.integers(-3, 4, (4, 2, 3, 3))
    geo: dict[str, Any] = {"padding": pad, "stride": (1, 2)}
    if variant == "pqs8":
        x8, f8, s = x.astype(np.int8), f.astype(np.int8), np.full(4, 0.25, np.float32)
        q: dict[str, Any] = {"input_zero_point": 1, "requant_scale": s, "output_zero_point": 0}
        got = ig.conv2d(x8, f8, None, variant="pqs8", target=NOFZ, fast=fast, **q, **geo)
        return got, F.qs8_qc8w_igemm(x8, f8, None, zx=1, s=s, zy=0, **geo)
    dt = np.float32 if variant == "pf32" else np.float16
    xd, fd = x.astype(dt), f.astype(dt)
    got = ig.conv2d(xd, fd, None, variant="pf32" if variant == "pf32" else "pf16", target=NOFZ, fast=fast, **geo)
    return got, (F.f32_igemm(xd, fd, None, **geo) if variant == "pf32" else F.f16_igemm(xd, fd, None, **geo))  # type: ignore[arg-type]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("variant", ["pf32", "pf16", "pqs8"])
def test_padding_is_xnnpack_order_like_the_generic_kernels(variant: str, fast: bool) -> None:
    """conv2d reads padding as (top, right, bottom, left), as XNNPACK and the generic kernels do.

    Left and right padding differ, so a swap moves every output column (checked); the data are
    small integers, so every sum is exact and the SME and generic results are bit-identical.
    """
    pad = Padding(top=1, right=2, bottom=0, left=0)
    got, want = _sme_and_generic_conv(variant, pad, fast)
    assert got.shape == want.shape == (2, 4, 3, 4)
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
    plain, _ = _sme_and_generic_conv(variant, (1, 2, 0, 0), fast)  # a plain tuple reads the same
    assert np.array_equal(got.view(np.uint8), plain.view(np.uint8))
    swapped, _ = _sme_and_generic_conv(variant, Padding(top=1, right=0, bottom=0, left=2), fast)
    assert not np.array_equal(got, swapped)
    assert ig.conv_geometry(4, 5, 2, 3, padding=pad).padding == pad


# ---------------------------------------------------------------------------------------------
# Packers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        ig.kai_lhs_imatmul_pack_x32p2vlx1_x32p_sme,
        ig.kai_lhs_imatmul_pack_x16p2vlx2_x16p_sme,
        ig.kai_lhs_imatmul_pack_x8p2vlx4_x8p_sme,
    ],
)
def test_lhs_pointer_offset_pad_semantics(cls: Any) -> None:
    packer = cls(128)
    mr, e, kr = packer.get_m_step(), packer.elem.itemsize, packer.kr
    kcc, kcl, m = 2, 3, mr + 1  # two m-blocks, the last one partial
    rng = np.random.default_rng(1)
    mem = rng.integers(1, 100, 4096).astype(np.uint8)
    pad = 4000
    ptrs = rng.integers(0, 200, packer.required_ptrs(m, kcc)) * e
    ptrs[::5] = pad
    offset = 64 * e
    out = np.full(packer.get_lhs_packed_size(m, kcc, kcl), 0xEE, dtype=np.uint8)
    packer.run_lhs_imatmul_pack(m, kcc, kcl, ptrs, offset, pad, out, memory=mem)
    kc = -(-kcl // kr) * kr
    assert out.size == 2 * mr * kcc * kc * e
    for b in range(2):
        for c in range(kcc):
            for y in range(mr):
                for i in range(kc):
                    pos = b * mr * kcc * kc + c * mr * kc + (i // kr) * mr * kr + y * kr + i % kr
                    got = out[pos * e : (pos + 1) * e]
                    if b * mr + y >= m or i >= kcl:
                        assert not got.any()
                        continue
                    p = int(ptrs[b * mr * kcc + c * mr + y])
                    src = p if p == pad else p + offset
                    assert np.array_equal(got, mem[src + i * e : src + (i + 1) * e])
    assert packer.get_lhs_packed_offset(mr, kcc, kcl) == mr * kcc * kc * e
    with pytest.raises(ValueError, match="m_step"):
        packer.get_lhs_packed_offset(1, kcc, kcl)
    with pytest.raises(ValueError, match="pointers"):
        packer.run_lhs_imatmul_pack(m, kcc, kcl, ptrs[:-1], offset, pad, out, memory=mem)
    with pytest.raises(ValueError, match="outside"):
        packer.run_lhs_imatmul_pack(m, kcc, kcl, ptrs, 10**6, pad, out, memory=mem)
    with pytest.raises(ValueError, match="lhs_packed holds"):
        packer.run_lhs_imatmul_pack(m, kcc, kcl, ptrs, offset, pad, out[:-1], memory=mem)
    with pytest.raises(TypeError):
        packer.run_lhs_imatmul_pack(m, kcc, kcl, ptrs.astype(np.float64), offset, pad, out, memory=mem)


@pytest.mark.parametrize("svl", [128, 512])
def test_lhs_packed_equals_plain_packer_of_chunk_padded_im2col(svl: int) -> None:
    """The imatmul packers lay out exactly the plain LHS packers' bytes of the per-tap padded im2col."""
    rng = np.random.default_rng(svl)
    g = ig.conv_geometry(5, 4, 3, 3, stride=(1, 2), padding=(1, 0, 1, 1))
    for cfg, plain in (
        (CONFIGS["pf32"], pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme),
        (CONFIGS["pf16"], pf16_gemm.kai_lhs_pack_x16p2vlx2_x16_sme),
        (CONFIGS["pqs8"], pqs8_qc8w_gemm.kai_lhs_pack_x8p2vlx4_x8_sme),
    ):
        kc = 5
        x = (rng.standard_normal((1, 5, 4, kc)) * 50).astype(cfg.elem)
        padv = 7 if cfg.elem == np.int8 else 0
        mem = np.concatenate([x.reshape(-1).view(np.uint8), np.full(kc, padv, dtype=cfg.elem).view(np.uint8)])
        ind = ig.indirection_conv2d(g, cfg.lhs_packer(svl).get_m_step())
        got = pack_lhs(cfg, svl, g, ind, mem, kc, x.nbytes, 0)
        want = plain(svl).pack(ig.im2col(x, g, padv, kc_pad_to=cfg.kr))
        assert np.array_equal(got, want)


def test_rhs_packers_per_chunk_padding_and_bias_fold() -> None:
    rng = np.random.default_rng(3)
    ks, kc, n, izp = 3, 5, 9, -7
    w = rng.integers(-127, 128, (ks * kc, n)).astype(np.int8)
    bias = rng.integers(-1000, 1000, n).astype(np.int32)
    scale = rng.random(n).astype(np.float32)
    p = ig.kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(128)
    nr = p.get_n_step()
    out = np.zeros(p.get_rhs_packed_size(n, ks, kc), dtype=np.uint8)
    p.run_rhs_imatmul_pack(n, ks, kc, n, w, bias, scale, out, kai_rhs_pack_qsi8cx_params(izp, 2.0))
    stride = p.get_rhs_packed_stride(ks, kc)
    assert stride == nr * (4 + ks * 8 + 4) and out.size == 2 * stride
    blk = out[:stride]
    b0 = blk[: 4 * nr].view(np.int32)
    assert np.array_equal(b0, bias[:nr] - izp * w[:, :nr].astype(np.int32).sum(0))
    wts = blk[4 * nr : 4 * nr + nr * ks * 8].view(np.int8).reshape(ks * 8 // 4, nr, 4)
    kp = wts.transpose(0, 2, 1).reshape(ks * 8, nr)
    for c in range(ks):
        assert np.array_equal(kp[c * 8 : c * 8 + kc], w[c * kc : (c + 1) * kc, :nr])
        assert not kp[c * 8 + kc : (c + 1) * 8].any()
    assert np.array_equal(blk[-4 * nr :].view(np.float32), scale[:nr] * np.float32(2.0))
    # Columns past n: zero bias', weights and scale'.
    tail = out[stride:]
    assert not tail[4 * (n - nr) : 4 * nr].any()
    # K == 0: the bias slots keep what was there.
    out0 = np.full(p.get_rhs_packed_size(n, ks, 0), 0x5A, dtype=np.uint8)
    p.run_rhs_imatmul_pack(n, ks, 0, n, w[:0], bias, scale, out0, kai_rhs_pack_qsi8cx_params(izp, 1.0))
    assert (out0[: 4 * nr] == 0x5A).all()
    f16 = ig.kai_rhs_imatmul_pack_kxn_x16p2vlx2b_x16_x16_sme(128)
    wf = rng.standard_normal((ks * kc, n)).astype(np.float16)
    bf = rng.standard_normal(n).astype(np.float16)
    of = np.zeros(f16.get_rhs_packed_size(n, ks, kc), dtype=np.uint8)
    f16.run_rhs_imatmul_pack(n, ks, kc, n * 2, wf, bf, of)
    assert f16.get_n_step() == 8 and f16.get_rhs_packed_stride(ks, kc) == 8 * 2 * (1 + ks * 6)
    padded = np.zeros((ks, 6, n), dtype=np.float16)
    padded[:, :kc] = wf.reshape(ks, kc, n)
    want = pf16_gemm.kai_rhs_pack_kxn_x16p2vlx2b_x16_x16_sme(128).pack(padded.reshape(ks * 6, n), bf)
    assert np.array_equal(of, want)
    with pytest.raises(ValueError, match="n_idx % n_step"):
        f16.get_rhs_packed_offset(3, ks, kc)
    with pytest.raises(ValueError, match="bias != NULL"):
        f16.run_rhs_imatmul_pack(n, ks, kc, n * 2, wf, None, of)
    with pytest.raises(TypeError):
        f16.run_rhs_imatmul_pack(n, ks, kc, n * 2, wf.astype(np.float32), bf, of)
    empty = np.zeros(0, dtype=np.uint8)
    f16.run_rhs_imatmul_pack(0, ks, kc, 0, wf[:, :0], bf[:0], empty)  # n == 0 writes nothing


def test_imatmul_kernel_interface() -> None:
    k: Any = get_ukernel("kai_imatmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa", 512)
    assert (k.get_m_step(), k.get_n_step()) == (32, 32)
    assert k.get_lhs_packed_offset(32, 9, 3) == 32 * 9 * 4 * 2
    assert k.get_rhs_packed_offset(32, 9, 3) == 32 * 2 * (1 + 9 * 4)
    assert k.get_dst_offset(32, 32, 1000) == 32 * 1000 + 64
    assert k.get_dst_size(3, 5) == 30
    with pytest.raises(ValueError, match="m_idx % m_step"):
        k.get_lhs_packed_offset(1, 9, 3)
    with pytest.raises(ValueError, match="k_chunk_count"):
        k.run_imatmul(1, 1, 0, 3, b"", b"", np.zeros(1, np.float16), 2, 0.0, 1.0)
    q: Any = get_ukernel("kai_imatmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa", 256)
    assert q.get_lhs_packed_offset(16, 2, 5) == 16 * 2 * 8
    assert q.get_rhs_packed_offset(16, 2, 5) == 16 * (4 + 16 + 4)


# ---------------------------------------------------------------------------------------------
# IGEMM convolution vs im2col GEMM through the same variant
# ---------------------------------------------------------------------------------------------


@st.composite
def conv_problems(draw: st.DrawFn) -> dict[str, Any]:
    g = draw(geometries())
    n_img = draw(st.integers(1, 2))
    cin, cout = draw(st.integers(1, 6)), draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**32 - 1))
    svl = draw(st.sampled_from(SUPPORTED_SVLS))
    return {"g": g, "n": n_img, "cin": cin, "cout": cout, "seed": seed, "svl": svl}


def _conv_kwargs(g: ig.ConvGeometry) -> dict[str, Any]:
    return {"stride": (g.sh, g.sw), "dilation": (g.dh, g.dw), "padding": g.padding}


def _float_data(pr: dict[str, Any], dt: Any) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(pr["seed"])
    g = pr["g"]
    x = rng.standard_normal((pr["n"], g.h, g.w, pr["cin"])).astype(dt)
    f = rng.standard_normal((pr["cout"], g.kh, g.kw, pr["cin"])).astype(dt)
    b = rng.standard_normal(pr["cout"]).astype(dt)
    b[::3] = -0.0  # the MOPA bias injection turns -0 into +0
    return x, f, b


@settings(max_examples=40, deadline=None)
@given(conv_problems(), st.booleans())
def test_pf32_igemm_equals_im2col_gemm(pr: dict[str, Any], fz: bool) -> None:
    """pf32 (kr = 1): no padding exists, the k order is the im2col order: bit-identical."""
    g = pr["g"]
    t = Target(svl_bits=pr["svl"], flush_to_zero=fz)
    x, f, b = _float_data(pr, np.float32)
    got = ig.conv2d(x, f, b, variant="pf32", clamp_min=-1.5, clamp_max=2.0, target=t, **_conv_kwargs(g))
    a = ig.im2col(x, g, 0.0)
    for mopa, sme1 in ((pf32_gemm.SME2_MOPA, False), (pf32_gemm.SME1_MOPA, True)):
        want = pf32_gemm.gemm(
            a, f.reshape(pr["cout"], -1), bias=b, clamp_min=-1.5, clamp_max=2.0, target=t, kernel=mopa.name
        )
        res = (
            got
            if not sme1
            else ig.conv2d(
                x, f, b, variant="pf32", clamp_min=-1.5, clamp_max=2.0, target=t, sme1=True, **_conv_kwargs(g)
            )
        )
        assert np.array_equal(res.reshape(want.shape).view(np.uint32), want.view(np.uint32))


@settings(max_examples=40, deadline=None)
@given(conv_problems())
def test_pf16_igemm_equals_chunk_padded_im2col_gemm(pr: dict[str, Any]) -> None:
    """pf16 (kr = 2): equal to the GEMM on the im2col matrix padded per tap to even; for even
    Cin that is the plain im2col matrix."""
    g, cin, cout = pr["g"], pr["cin"], pr["cout"]
    t = Target(svl_bits=pr["svl"], flush_to_zero=False)
    x, f, b = _float_data(pr, np.float16)
    got = ig.conv2d(x, f, b, variant="pf16", target=t, **_conv_kwargs(g))
    kc2 = cin + cin % 2
    fp = np.zeros((cout, g.ks, kc2), dtype=np.float16)
    fp[:, :, :cin] = f.reshape(cout, g.ks, cin)
    a = ig.im2col(x, g, 0.0, kc_pad_to=2)
    want = pf16_gemm.gemm(a, fp.reshape(cout, -1), bias=b, target=t, kernel=pf16_gemm.SME2_MOPA.name)
    assert np.array_equal(got.reshape(want.shape).view(np.uint16), want.view(np.uint16))
    if cin % 2 == 0:
        plain = pf16_gemm.gemm(
            ig.im2col(x, g, 0.0), f.reshape(cout, -1), bias=b, target=t, kernel=pf16_gemm.SME2_MOPA.name
        )
        assert np.array_equal(plain.view(np.uint16), want.view(np.uint16))


def test_pf16_odd_cin_plain_im2col_gemm_differs() -> None:
    """Disproof for odd Cin: the unpadded im2col GEMM pairs channels across taps and rounds differently.

    Cin = 1, 2x2 kernel, bias 1.0; products t0 = 2^-11, t1 = 0, t2 = t3 = 2^-24.
    IGEMM (one tap per pair): acc = 1 + 2^-11, then + 2^-24 twice, each a binary32 tie to even
    that leaves it unchanged; RN16(1 + 2^-11) is an f16 tie -> 1.0.
    im2col GEMM (pairs (t0, t1), (t2, t3)): RN32(2^-24 + 2^-24) = 2^-23 is kept, so the f16 result
    rounds up to 1 + 2^-10.
    """
    x = np.array([2.0**-5, 0.0, 2.0**-12, 2.0**-12], dtype=np.float16).reshape(1, 2, 2, 1)
    f = np.array([2.0**-6, 1.0, 2.0**-12, 2.0**-12], dtype=np.float16).reshape(1, 2, 2, 1)
    b = np.array([1.0], dtype=np.float16)
    conv = ig.conv2d(x, f, b, variant="pf16", target=NOFZ)
    plain = pf16_gemm.gemm(
        ig.im2col(x, ig.conv_geometry(2, 2, 2, 2), 0.0),
        f.reshape(1, 4),
        bias=b,
        target=NOFZ,
        kernel=pf16_gemm.SME2_MOPA.name,
    )
    assert float(conv.reshape(-1)[0]) == 1.0
    assert float(plain.reshape(-1)[0]) == 1.0 + 2.0**-10


@settings(max_examples=40, deadline=None)
@given(conv_problems(), st.sampled_from([-128, -3, 0, 5, 127]))
def test_pqs8_igemm_equals_im2col_gemm(pr: dict[str, Any], izp: int) -> None:
    """pqs8: integers are exact, padding taps read izp (cancelled by -izp * sum W): bit-identical
    to the pqs8 GEMM on the im2col matrix padded with izp, whatever kernel that GEMM picks."""
    g, cin, cout = pr["g"], pr["cin"], pr["cout"]
    rng = np.random.default_rng(pr["seed"])
    x = rng.integers(-128, 128, (pr["n"], g.h, g.w, cin)).astype(np.int8)
    f = rng.integers(-127, 128, (cout, g.kh, g.kw, cin)).astype(np.int8)
    b = rng.integers(-20000, 20000, cout).astype(np.int32)
    scale = (rng.random(cout) * 0.01 + 1e-4).astype(np.float32)
    q = {
        "input_zero_point": izp,
        "requant_scale": scale,
        "output_zero_point": int(rng.integers(-20, 20)),
        "output_min": -100,
        "output_max": 110,
    }
    for t in (Target(svl_bits=pr["svl"]), GENERIC_SME1.replace(svl_bits=pr["svl"])):
        got = ig.conv2d(x, f, b, variant="pqs8", target=t, **q, **_conv_kwargs(g))
        want = pqs8_qc8w_gemm.gemm(ig.im2col(x, g, izp), f.reshape(cout, -1), bias=b, target=t, **q)
        assert np.array_equal(got.reshape(want.shape), want)


def test_batch_is_per_image() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 5, 4)).astype(np.float32)
    f = rng.standard_normal((7, 3, 3, 4)).astype(np.float32)
    kw: dict[str, Any] = {"variant": "pf32", "stride": (2, 1), "padding": (1, 1, 1, 1), "target": NOFZ}
    whole = ig.conv2d(x, f, None, **kw)
    for i in range(3):
        assert np.array_equal(whole[i], ig.conv2d(x[i : i + 1], f, None, **kw)[0])
    empty = ig.conv2d(x[:0], f, None, **kw)
    assert empty.shape == (0, 3, 5, 7)


def test_all_padding_pixels_give_clamped_bias() -> None:
    """3x3 input, 3x3 kernel, padding 3: 24 of the 49 output pixels read only the padding buffer."""
    g = ig.conv_geometry(3, 3, 3, 3, padding=(3, 3, 3, 3))
    ind = ig.indirection_conv2d(g, 1).reshape(g.m, g.ks)
    only_pad = (ind < 0).all(axis=1).reshape(g.hout, g.wout)
    assert only_pad.sum() == 24
    rng = np.random.default_rng(9)
    cout = 5
    kw: dict[str, Any] = {"padding": (3, 3, 3, 3), "target": NOFZ}
    x32 = rng.standard_normal((1, 3, 3, 7)).astype(np.float32) * 100
    f32 = rng.standard_normal((cout, 3, 3, 7)).astype(np.float32)
    b32 = np.array([-0.0, 1.5, -3.0, 0.25, 7.0], dtype=np.float32)
    o32 = ig.conv2d(x32, f32, b32, variant="pf32", clamp_min=-2.0, clamp_max=5.0, **kw)
    want32 = np.clip(b32 + np.float32(0.0), -2.0, 5.0).astype(np.float32)  # -0 bias -> +0
    assert np.array_equal(o32[0][only_pad].view(np.uint32), np.tile(want32, (24, 1)).view(np.uint32))
    x16, f16, b16 = x32.astype(np.float16), f32.astype(np.float16), b32.astype(np.float16)
    o16 = ig.conv2d(x16, f16, b16, variant="pf16", clamp_min=-2.0, clamp_max=5.0, **kw)
    want16 = np.clip(b16 + np.float16(0.0), -2.0, 5.0).astype(np.float16)
    assert np.array_equal(o16[0][only_pad].view(np.uint16), np.tile(want16, (24, 1)).view(np.uint16))
    x8 = rng.integers(-128, 128, (1, 3, 3, 7)).astype(np.int8)
    f8 = rng.integers(-127, 128, (cout, 3, 3, 7)).astype(np.int8)
    b8 = np.array([-5000, 0, 123, 9999, -1], dtype=np.int32)
    scale = np.full(cout, 0.01, dtype=np.float32)
    o8 = ig.conv2d(x8, f8, b8, variant="pqs8", input_zero_point=-9, requant_scale=scale, output_zero_point=3, **kw)
    want8 = pqs8_qc8w_gemm.requantize(b8.reshape(1, cout), scale, RQ(-128, 127, 3))[0]
    assert np.array_equal(o8[0][only_pad], np.broadcast_to(want8, (24, cout)))


def test_pf16_accepts_fp32_static_weights_and_flags_svl128() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 4, 3)).astype(np.float16)
    f = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    a = ig.conv2d(x, f, b, variant="pf16", target=NOFZ)
    c = ig.conv2d(x, f.astype(np.float16), b.astype(np.float16), variant="pf16", target=NOFZ)
    assert np.array_equal(a.view(np.uint16), c.view(np.uint16))
    assert ig.xnnpack_conv_weights_mislaid("pf16", 128)
    assert not any(ig.xnnpack_conv_weights_mislaid(v, s) for v in ("pf32", "pqs8") for s in SUPPORTED_SVLS)
    assert not any(ig.xnnpack_conv_weights_mislaid("pf16", s) for s in SUPPORTED_SVLS if s != 128)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _ok() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "input": rng.standard_normal((1, 4, 4, 3)).astype(np.float32),
        "filter": rng.standard_normal((5, 3, 3, 3)).astype(np.float32),
        "bias": np.zeros(5, dtype=np.float32),
        "variant": "pf32",
        "target": NOFZ,
    }


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        ({"groups": 2}, ValueError, r"input channels \(3\) must be divisible by groups \(2\)"),
        (
            {"groups": 3, "filter": np.zeros((5, 3, 3, 1), np.float32)},
            ValueError,
            r"output channels \(5\) must be divisible by groups \(3\)",
        ),
        (
            {"groups": 3, "filter": np.zeros((6, 3, 3, 3), np.float32), "bias": None},
            ValueError,
            r"channel mismatch.*Cin / groups = 1",
        ),
        ({"groups": 0}, ValueError, "groups must be >= 1"),
        ({"filter": np.zeros((5, 3, 3, 2), np.float32)}, ValueError, "channel mismatch"),
        (
            {"input": np.zeros((1, 4, 4, 0), np.float32), "filter": np.zeros((5, 3, 3, 0), np.float32)},
            ValueError,
            "must be non-zero",
        ),
        ({"filter": np.zeros((0, 3, 3, 3), np.float32), "bias": None}, ValueError, "must be non-zero"),
        ({"input": np.zeros((1, 0, 4, 3), np.float32)}, ValueError, "input height must be >= 1"),
        ({"filter": np.zeros((5, 0, 3, 3), np.float32)}, ValueError, "kernel dimensions must be non-zero"),
        ({"input": np.zeros((1, 2, 4, 3), np.float32)}, ValueError, "smaller than the effective"),
        ({"dilation": (3, 1)}, ValueError, "smaller than the effective"),
        ({"padding": (1, 1, 1)}, TypeError, "padding must be 4 integers"),
        ({"padding": (1, -1, 1, 1)}, ValueError, "padding right must be >= 0"),
        ({"padding": (1.5, 1, 1, 1)}, TypeError, "integer"),
        ({"stride": (0, 1)}, ValueError, r"stride\[0\] must be >= 1"),
        ({"dilation": (1,)}, TypeError, "pair"),
        ({"input": np.zeros((4, 4, 3), np.float32)}, ValueError, "4-D"),
        ({"input": np.zeros((1, 4, 4, 3), np.float64)}, TypeError, "float32"),
        ({"bias": np.zeros(4, np.float32)}, ValueError, "bias must have shape"),
        ({"bias": np.zeros(5, np.float16)}, TypeError, "bias"),
        ({"variant": "f32"}, ValueError, "variant must be one of"),
        ({"target": NEON_ONLY}, ValueError, "needs SME"),
        ({"clamp_min": float("nan")}, ValueError, "non-NaN"),
        ({"clamp_min": 2.0, "clamp_max": 1.0}, ValueError, "clamp_min"),
        ({"clamp_max": 0.1}, ValueError, "not representable in binary32"),
        ({"input_zero_point": 3}, ValueError, "pqs8 parameter"),
        ({"sme1": 1}, TypeError, "sme1 must be a bool"),
        ({"fast": 1}, TypeError, "fast must be a bool"),
    ],
)
def test_conv2d_errors(change: dict[str, Any], exc: type[Exception], match: str) -> None:
    args = {**_ok(), **change}
    with pytest.raises(exc, match=match):
        ig.conv2d(args.pop("input"), args.pop("filter"), args.pop("bias"), **args)


def test_pqs8_and_pf16_errors() -> None:
    x = np.zeros((1, 4, 4, 3), np.int8)
    f = np.zeros((5, 3, 3, 3), np.int8)
    s = np.full(5, 0.5, np.float32)
    ok: dict[str, Any] = {"input_zero_point": 0, "requant_scale": s, "output_zero_point": 0}
    ig.conv2d(x, f, None, variant="pqs8", **ok)
    with pytest.raises(ValueError, match="needs input_zero_point"):
        ig.conv2d(x, f, None, variant="pqs8")
    with pytest.raises(ValueError, match="int8 value"):
        ig.conv2d(x, f, None, variant="pqs8", **{**ok, "input_zero_point": 128})
    with pytest.raises(ValueError, match="< 256"):
        ig.conv2d(x, f, None, variant="pqs8", **{**ok, "requant_scale": np.full(5, 300, np.float32)})
    with pytest.raises(ValueError, match="requant_scale must have shape"):
        ig.conv2d(x, f, None, variant="pqs8", **{**ok, "requant_scale": s[:2]})
    with pytest.raises(ValueError, match="output_min"):
        ig.conv2d(x, f, None, variant="pqs8", output_min=5, output_max=4, **ok)
    with pytest.raises(TypeError, match="int32"):
        ig.conv2d(x, f, np.zeros(5, np.int64), variant="pqs8", **ok)
    h = np.zeros((1, 4, 4, 3), np.float16)
    with pytest.raises(ValueError, match="rounded to f16 is empty"):
        ig.conv2d(h, f.astype(np.float16), None, variant="pf16", clamp_min=1.0, clamp_max=float(np.float32(1.0001)))
    with pytest.raises(ValueError, match="must be >= 1"):
        ig.indirection_conv2d(ig.conv_geometry(2, 2, 1, 1), 0)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(conv_problems(), st.sampled_from(["pf32", "pf16", "pqs8"]))
def test_conv2d_against_golden_formula_many_shapes(pr: dict[str, Any], variant: str) -> None:
    """Slow sweep: IGEMM == the chunk-padded im2col GEMM (MOPA kernel) for every variant and SVL."""
    g, cin, cout = pr["g"], pr["cin"], pr["cout"]
    t = Target(svl_bits=pr["svl"])
    if variant == "pqs8":
        rng = np.random.default_rng(pr["seed"])
        x = rng.integers(-128, 128, (pr["n"], g.h, g.w, cin)).astype(np.int8)
        f = rng.integers(-127, 128, (cout, g.kh, g.kw, cin)).astype(np.int8)
        q: dict[str, Any] = {
            "input_zero_point": 11,
            "requant_scale": np.full(cout, 0.003, np.float32),
            "output_zero_point": -1,
        }
        got = ig.conv2d(x, f, None, variant="pqs8", target=t, **q, **_conv_kwargs(g))
        want = pqs8_qc8w_gemm.gemm(ig.im2col(x, g, 11), f.reshape(cout, -1), target=t, **q)
        assert np.array_equal(got.reshape(want.shape), want)
        return
    mod: Any = pf32_gemm if variant == "pf32" else pf16_gemm
    dt, kr = (np.float32, 1) if variant == "pf32" else (np.float16, 2)
    x, f, b = _float_data(pr, dt)
    got = ig.conv2d(x, f, b, variant=variant, target=t, **_conv_kwargs(g))  # type: ignore[arg-type]
    kcp = -(-cin // kr) * kr
    fp = np.zeros((cout, g.ks, kcp), dtype=dt)
    fp[:, :, :cin] = f.reshape(cout, g.ks, cin)
    want = mod.gemm(
        ig.im2col(x, g, 0.0, kc_pad_to=kr), fp.reshape(cout, -1), bias=b, target=t, kernel=mod.SME2_MOPA.name
    )
    assert np.array_equal(got.reshape(want.shape).view(np.uint8), want.view(np.uint8))
