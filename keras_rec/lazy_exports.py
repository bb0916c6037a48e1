"""Package `__init__`s that import their modules on first use.

`keras-rec --help` and a rejected flag must answer in well under a second,
so importing a subpackage (to reach its config or parser) must not import
TensorFlow. Each package names its public objects and the module holding
each; a module is imported when one of its names is first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for a package exporting `exports`.

    Args:
        package: str. The package's `__name__`.
        exports: `{public name: module name inside the package}`.

    Returns:
        The `(__getattr__, __dir__)` pair to assign in the package `__init__`.

    Example:

    ```python
    _EXPORTS = {"BruteForceTopK": "brute_force_top_k"}
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
    ```
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{exports[name]}")
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
