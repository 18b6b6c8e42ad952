"""Lazy package exports: a package names what it offers, a submodule loads on first use.

The ground floor, like :mod:`ocsnet.units` and :mod:`ocsnet.errors`.  It keeps
``import ocsnet.<package>`` cheap (no networkx, scipy, OR-Tools or matplotlib
until a function that needs them is used); see docs/design.md, "Layout and import rules".
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Callable, Mapping

__all__ = ["exports", "LazyPackage"]


class LazyPackage(types.ModuleType):
    """A package module whose exported names win over same-named submodules.

    When a submodule ``pkg.run`` finishes loading, the import system sets the
    package attribute ``run`` to the module; if the package exports a function
    ``run`` from that submodule, the function is kept instead (as an eager
    ``from .run import run`` in ``__init__`` would do).
    """

    def __setattr__(self, name, value):
        table = self.__dict__.get("_lazy_exports", {})
        if isinstance(value, types.ModuleType) and table.get(name) == name and \
                value.__name__ == f"{self.__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


def exports(package: str, names: Mapping[str, str]) -> tuple[list[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` of a package whose names live in submodules.

    Call it from the package's ``__init__``; it also makes the package a
    :class:`LazyPackage` and caches every name on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping
        Exported name -> submodule (relative to the package) that defines it,
        or ``"submodule:attribute"`` when the submodule calls it otherwise.

    Examples
    --------
    >>> import sys, types
    >>> pkg = sys.modules["demo_pkg"] = types.ModuleType("demo_pkg")
    >>> sub = sys.modules["demo_pkg.sub"] = types.ModuleType("demo_pkg.sub")
    >>> sub.answer = 42
    >>> names, pkg.__getattr__, pkg.__dir__ = exports("demo_pkg", {"answer": "sub"})
    >>> names, pkg.answer, "answer" in vars(pkg)        # resolved on first use, then cached
    (['answer'], 42, True)
    >>> del sys.modules["demo_pkg"], sys.modules["demo_pkg.sub"]
    """
    table = dict(names)
    module = sys.modules.get(package)
    if module is not None:
        module._lazy_exports = table
        module.__class__ = LazyPackage

    def __getattr__(name: str):
        mod = table.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        mod, _, attr = mod.partition(":")
        value = getattr(importlib.import_module(f"{package}.{mod}"), attr or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(table) | set(vars(sys.modules[package])))

    return sorted(table), __getattr__, __dir__
