"""A conformance suite any GEMM implementation plugs into: ``pytest --pyargs kleidiref.conformance``.

Like array-api-tests for array libraries: name your implementation and the suite runs, for every
KleidiAI matmul kernel it provides, the bundled golden vectors (inputs whose outputs the real
kernels produced), hypothesis property tests (:func:`kleidiref.testing.strategies.gemm_problems`)
and XNNPACK's named edge families, comparing bit for bit with kleidiref and explaining each
difference with :func:`kleidiref.testing.assert_matches`'s diagnosis::

    pytest --pyargs kleidiref.conformance --kleidiref-impl mypkg.kernels:get_kernel \\
        --kleidiref-repro-dir repro/ [--kleidiref-svl 512] [--kleidiref-kernels '*sme2_mopa*']

Requires pytest (and hypothesis for the property tests): ``pip install kleidiref[test]``. The
options come from the plugin :mod:`kleidiref.conformance.plugin`, which an installed kleidiref
registers (``pytest11`` entry point); from a source checkout on ``PYTHONPATH`` add
``-p kleidiref.conformance.plugin``.

The implementation
------------------
``--kleidiref-impl module:callable`` (or the environment variable ``KLEIDIREF_IMPL``) names a
callable ``factory(kernel: str, svl: int, fz: bool)`` returning the kernel's entry point, or None
when the implementation does not provide ``kernel`` at that SVL (bits) with FPCR.FZ/FZ16 = ``fz``
(those tests skip). ``kernel`` is a KleidiAI name, e.g.
``kai_matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa`` (the list:
``kleidiref.kai.list_ukernels()``; the suite covers the pf32, pf16, qp8_f32_qc8w, pqs8_qc8w and
qp8_f32_qb4w kernels). kleidiref's own kernels are ``kleidiref.conformance:reference_impl``.

**Kernel level** (the default): the entry point is KleidiAI's ``kai_run_<kernel>`` with the C
arguments in the C order; the operands come from kleidiref's packers (the packers are not under
test) for the SVL given. Buffers are numpy arrays a ctypes/cffi wrapper passes on with
``arr.ctypes.data``: packed operands are read-only ``uint8`` arrays starting at the operand's
offset; ``dst`` is a writable ``uint8`` array starting at the output block (the suite fills it
with 0xA5 and checks that no byte past N of a row is written); strides are in bytes::

    # pf32 / pf16 / qp8_f32_qc8w with a packed LHS
    run(m, n, k, lhs_packed, rhs_packed, dst, dst_stride_row, dst_stride_col, clamp_min, clamp_max)
    # pf32 / pf16 1-row kernels on the raw LHS row (float32 / float16 [1, K] array, m == 1)
    run(m, n, k, lhs, lhs_stride, rhs_packed, dst, dst_stride_row, dst_stride_col, clamp_min, clamp_max)
    # pqs8_qc8w (lhs: the packed LHS, or the raw int8 [1, K] row of the 1-row kernel)
    run(m, n, k, lhs, rhs_packed, dst, dst_stride_row, dst_stride_col, params)
    #   params: kleidiref.kai.kai_matmul_requantize32_params (min_value, max_value, output_zero_point)
    # qp8_f32_qb4w (bl: the block length, after k, as in C)
    run(m, n, k, bl, lhs_packed, rhs_packed, dst, dst_stride_row, dst_stride_col, scalar_min, scalar_max)

``clamp_min``/``clamp_max`` are Python floats (possibly infinite), ``dst_stride_col`` is the
element size. A 1-row kernel (m_step 1) is called once per row. Wrap a subprocess or an
emulator the same way: write the buffers, run, read ``dst`` back.

**Gemm level**: give the factory an attribute ``kleidiref_level = "gemm"``; the entry point is
then ``gemm(**inputs) -> ndarray [M, N]`` with the keywords of
:func:`kleidiref.testing.reference` (``lhs``, ``rhs`` and the variant's ``bias``, ``scale``,
``scales_bf16``, ``bl``, ``clamp_min``, ``clamp_max``, ``input_zero_point``, ``requant_scale``,
``output_zero_point``, ``output_min``, ``output_max``), computing what ``kernel`` computes.
The strided-dst and sub-tile families need the kernel level and skip.

What runs
---------
* ``test_golden``: golden files of the kernel's variant (``kleidiref/golden_data``); by default
  up to 6 per kernel at ``--kleidiref-svl`` (files of the NEON kernels have no SVL); with
  ``--kleidiref-full`` every file at every SVL (the factory is asked for that SVL). The expected
  output is kleidiref's for that kernel, which ``kleidiref selfcheck`` proves equal to the stored
  hardware outputs. FZ files run with ``fz=True``.
* ``test_property``: 25 derandomized examples per kernel (200 random with ``--kleidiref-full``;
  ``--kleidiref-max-examples N`` overrides), M <= 12, N <= 40, K <= 96 by default.
* ``test_edge``: the families of :data:`kleidiref.conformance._edges.EDGE_FAMILIES`.

Skip and xfail files
--------------------
``--kleidiref-skips FILE`` (repeatable). Text: one rule per line, ``skip <glob>`` or
``xfail <glob>``, an optional ``# reason``; blank lines and ``#`` lines are ignored. JSON (a
``.json`` file): ``{"skip": {"<glob>": "reason"}, "xfail": {"<glob>": "reason"}}``. A glob
(``*`` and ``?`` wildcards; brackets are literal) matches the whole test name or node id, e.g.::

    skip  test_golden[*sme_mopa*]           # no SME1 build yet
    xfail test_edge[*-qmin]                 # clamp order under investigation

Repro bundles
-------------
With ``--kleidiref-repro-dir DIR`` each failure writes ``DIR/<test name>/`` holding
``inputs.npz`` (the gemm inputs), ``expected.npy``, ``got.npy``, ``diagnosis.txt``,
``case.json`` (variant, kernel, svl, fz, dst_stride_row, tiles, M, N, K, impl, level, test) and
``reproduce.txt``: ``python -m kleidiref.conformance DIR/<test name> --impl module:callable``
re-runs the case and prints the diagnosis (exit status 1 while it still fails).
"""

from __future__ import annotations

from ._harness import ENV_IMPL, Impl, load_impl, reference_impl, replay_bundle, run_problem, write_bundle

__all__ = ["ENV_IMPL", "Impl", "load_impl", "reference_impl", "replay_bundle", "run_problem", "write_bundle"]
