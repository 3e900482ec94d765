"""One module per XNNPACK GEMM variant: its KleidiAI packers and kernels, and a ``gemm`` entry.

Each public module here exposes its ukernels under their exact KleidiAI names, a friendly
``gemm(...)`` (or equivalent), ``select_kernel`` and ``GOLDEN``: golden-vector id -> reproducer.
Modules are discovered, so adding a variant is adding its file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

__all__ = ["VARIANTS", "golden_reproducers"]


def _discover() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            found[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return found


#: Variant module name (``pf32_gemm`` ...) -> module.
VARIANTS: dict[str, ModuleType] = _discover()


def golden_reproducers() -> dict[str, Any]:
    """Golden variant id -> ``reproduce(inputs) -> {field: array}``, over every variant module."""
    out: dict[str, Any] = {}
    for mod in VARIANTS.values():
        out.update(getattr(mod, "GOLDEN", {}))
    return out
