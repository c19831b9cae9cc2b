"""A package's public names imported on first use (PEP 562), so importing the package stays cheap (no torch)."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]], *, subpackages: bool = False):
    """(__getattr__, __dir__, __all__) for `package`: `exports` maps a submodule (relative, dotted) to the names it
    gives; each is imported on its first use and kept. `subpackages`: an unknown attribute that names a subpackage
    is imported too (`madx.data` after a bare `import madx`)."""
    where = {name: module for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(f".{where[name]}", package), name)
            namespace[name] = value
            return value
        if subpackages:
            try:
                return importlib.import_module(f".{name}", package)
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    def __dir__():
        return sorted({*namespace, *where})

    return __getattr__, __dir__, sorted(where)
