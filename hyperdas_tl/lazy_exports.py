"""Names a package exports without importing their modules until first use (so importing the
package, the CLI's ``--help`` included, costs no torch import): one mechanism for
:mod:`hyperdas_tl` and :mod:`hyperdas_tl.hyperdas`."""

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[str], Any], Callable[[], list[str]]]:
    """``(load, __getattr__, __dir__)`` for ``package``: ``exports`` maps each exported name to
    the module defining it; ``__getattr__`` imports it on first use and caches it in
    ``namespace`` (the package's ``globals()``); ``load`` imports without caching."""

    def load(name: str) -> Any:
        return getattr(importlib.import_module(exports[name]), name)

    def module_getattr(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = load(name)
        namespace[name] = value
        return value

    def module_dir() -> list[str]:
        return sorted({*namespace, *exports})

    return load, module_getattr, module_dir
