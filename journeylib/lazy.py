"""Lazy package exports: a package names what it re-exports, and each name is imported on first use.

``journeylib``, ``journeylib.reports`` and ``journeylib.widgets`` re-export
names from their modules without importing those modules up front (a
dashboard kernel then pays only for what its page uses). Each package keeps a
``{name: module}`` table and delegates its module-level ``__getattr__`` and
``__dir__`` (PEP 562) here. This module imports nothing from journeylib, so
every layer can use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["export_names", "load_export"]


def load_export(package: str, exports: Mapping[str, str], namespace: MutableMapping[str, Any], name: str) -> Any:
    """Import and return the exported *name* of *package*, keeping it in the package's namespace.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (for the error message).
    exports : mapping of str to str
        The package's exported names and the module each comes from.
    namespace : dict
        The package's ``globals()``; the value is stored there, so the next
        access does not come back here.
    name : str
        The attribute asked for.

    Returns
    -------
    object
        The attribute.

    Raises
    ------
    AttributeError
        If *name* is not one of *exports* (the message names the package).

    Examples
    --------
    >>> space = {}
    >>> load_export("pkg", {"sqrt": "math"}, space, "sqrt")(9.0)
    3.0
    >>> "sqrt" in space
    True
    """
    module = exports.get(name)
    if module is None:
        msg = f"module {package!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value


def export_names(namespace: Mapping[str, Any], exports: Mapping[str, str]) -> list[str]:
    """Return the names a package shows to ``dir()``: what it holds and what it exports, sorted.

    Parameters
    ----------
    namespace : mapping
        The package's ``globals()``.
    exports : mapping of str to str
        The package's exported names and their modules.

    Returns
    -------
    list of str
        The names.

    Examples
    --------
    >>> export_names({"a": 1}, {"b": "m"})
    ['a', 'b']
    """
    return sorted(set(namespace) | set(exports))
