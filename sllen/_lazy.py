"""Lazy re-exports for package __init__ files: names load on first use, so importing a
package does not import torch or onnxruntime behind the user's back."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: dict[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """(__all__, __getattr__, __dir__) for ``package`` re-exporting ``exports``
    (submodule -> names); a loaded name is cached in the package's ``namespace``."""
    module_of = {name: module for module, names in exports.items() for name in names}
    names = sorted(module_of)

    def getattr_(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later look-ups skip __getattr__
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(names))

    return names, getattr_, dir_
