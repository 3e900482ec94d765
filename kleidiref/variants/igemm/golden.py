"""The ``pf32_igemm`` / ``pf16_igemm`` / ``pqs8_qc8w_igemm`` golden files: their reproducer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..._buffers import roundup
from ...conv import Padding, conv_geometry, indirection_conv2d
from ...kai.pack.imatmul_pack_sme import kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme
from ...kai.params import kai_matmul_requantize32_params, kai_rhs_pack_qsi8cx_params
from .configs import CONFIGS, pack_lhs, pack_weights

__all__ = ["GOLDEN", "golden_padding", "reproduce_golden"]


def golden_padding(inputs: Mapping[str, NDArray[Any]]) -> Padding:
    """The padding of an IGEMM golden file as a :class:`~kleidiref.conv.Padding`.

    Note: the files store ``padding`` as (top, left, bottom, right), the order of the original
    capture; everything else in kleidiref uses XNNPACK's (top, right, bottom, left).
    """
    top, left, bottom, right = (int(v) for v in inputs["padding"].tolist())
    return Padding(top=top, right=right, bottom=bottom, left=left)


def reproduce_golden(inputs: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Recompute a ``pf32_igemm`` / ``pf16_igemm`` / ``pqs8_qc8w_igemm`` golden file from its inputs.

    The files run one image with ``lhs_ptr_offset = 0`` and the padding buffer as the pad
    pointer; ``out`` is the SME2 kernel's and ``out_sme1`` the SME1 kernel's, with FPCR.FZ clear.
    """
    gid = str(inputs["meta_variant"])
    variant = {"pf32_igemm": "pf32", "pf16_igemm": "pf16", "pqs8_qc8w_igemm": "pqs8"}[gid]
    cfg = CONFIGS[variant]
    svl = int(inputs["meta_svl_bits"])
    x, f, b = inputs["input"], inputs["filter"], inputs["bias"]
    _, h, w, cin = x.shape
    cout, kh, kw, _ = f.shape
    geom = conv_geometry(
        h,
        w,
        kh,
        kw,
        stride=inputs["stride"].tolist(),
        dilation=inputs["dilation"].tolist(),
        padding=golden_padding(inputs),
    )
    ks, kc, m = geom.ks, cin, geom.m
    k = ks * roundup(kc, cfg.kr)
    izp = int(inputs["input_zero_point"]) if variant == "pqs8" else 0
    lhs_packer = cfg.lhs_packer(svl)
    mr = lhs_packer.get_m_step()
    ind = indirection_conv2d(geom, mr)
    pad = np.full(cin, izp, dtype=cfg.elem)
    memory = np.concatenate([np.ascontiguousarray(x).reshape(-1).view(np.uint8), pad.view(np.uint8)])
    lhs_packed = pack_lhs(cfg, svl, geom, ind, memory, kc, x.nbytes, 0)
    res: dict[str, NDArray[Any]] = {"indirection": ind, "lhs_packed": lhs_packed}
    if variant == "pqs8":
        params = kai_rhs_pack_qsi8cx_params(izp, float(inputs["scale_multiplier"]))
        packer = kai_rhs_imatmul_pack_kxn_qsi8cxp2vlx4sb_qs8cx_f32_i32_sme(svl)
        rhs_packed = np.zeros(packer.get_rhs_packed_size(cout, ks, kc), dtype=np.uint8)
        w_kn = np.ascontiguousarray(f.reshape(cout, ks * kc).T)
        packer.run_rhs_imatmul_pack(cout, ks, kc, cout, w_kn, b, inputs["scale"], rhs_packed, params)
        rq = kai_matmul_requantize32_params(
            int(inputs["out_min"]), int(inputs["out_max"]), int(inputs["out_zero_point"])
        )
    else:
        rhs_packed = pack_weights(cfg, variant, svl, f, b, ks, kc, None, 0)
        lo, hi = float(inputs["clamp_min"]), float(inputs["clamp_max"])
    res["rhs_packed"] = rhs_packed
    for key, cls in (("out", cfg.sme2), ("out_sme1", cfg.sme1)):
        kern = cls(svl)
        dst = np.zeros((1, geom.hout, geom.wout, cout), dtype=kern.dst_dtype)
        if variant == "pqs8":
            kern.run_matmul(m, cout, k, lhs_packed, rhs_packed, dst, cout, 1, rq)
        else:
            item = cfg.elem.itemsize
            kern.run_matmul(m, cout, k, lhs_packed, rhs_packed, dst, cout * item, item, lo, hi)
        res[key] = dst
    tp, sp = cfg.sme2(svl).tile_params(), cfg.sme1(svl).tile_params()
    meta = {
        "H": h,
        "W": w,
        "Cin": cin,
        "Cout": cout,
        "KH": kh,
        "KW": kw,
        "Hout": geom.hout,
        "Wout": geom.wout,
        "M": m,
        "N": cout,
        "K": k,
        "ks": ks,
        "kc": kc,
        "mr": tp.mr,
        "nr": tp.nr,
        "kr": tp.kr,
        "sr": tp.sr,
        "m_step": tp.m_step,
        "n_step": tp.n_step,
        "sme1_mr": sp.mr,
        "sme1_nr": sp.nr,
        "lhs_packer_mr": mr,
    }
    res.update({f"meta_{key}": np.array(v, dtype=np.int64) for key, v in meta.items()})
    return res


#: Golden variant ids this module reproduces.
GOLDEN = {"pf32_igemm": reproduce_golden, "pf16_igemm": reproduce_golden, "pqs8_qc8w_igemm": reproduce_golden}
