"""Storage for the services: the interface per concern (``interface``), its backends
(``sqlite``), and ``open_store``, which picks the backend by the URL's scheme.

A backend is the module of this package named for its scheme, with
``open_url(url, *, create=True) -> Store``: ``sqlite:///PATH`` is ``sqlite``'s.
Adding one (PostgreSQL: ``postgresql.py``) is that module and nothing else; the
``database`` setting then names it.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from .index import index_paths, read_uids, scan
from .interface import (
    Allowance,
    Commitment,
    Delivery,
    MPPSRow,
    QuotaExceeded,
    Store,
    StoreError,
)
from .sqlite import DB_FILENAME

__all__ = [
    "DB_FILENAME",
    "Allowance",
    "Commitment",
    "Delivery",
    "MPPSRow",
    "QuotaExceeded",
    "Store",
    "StoreError",
    "backends",
    "database_problem",
    "lacking",
    "index_paths",
    "open_store",
    "read_uids",
    "scan",
]


class _Backend(Protocol):
    def open_url(self, url: str, *, create: bool = True) -> Store: ...


def _scheme(url: str) -> str:
    """A URL's scheme; "sqlite" for a plain path (no ``://``)."""
    scheme, sep, _rest = url.partition("://")
    return scheme.lower() if sep else "sqlite"


def _backend(scheme: str) -> ModuleType | str:
    """The backend module for ``scheme``, or why there is none."""
    name = f"{__name__}.{scheme}"
    if not (scheme.isascii() and scheme.isidentifier()):
        return f"unknown database scheme {scheme!r}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the backend is here, its driver is not installed
            return f"the {scheme} backend cannot be used: {exc}"
        return f"unknown database scheme {scheme!r}"
    if not callable(getattr(module, "open_url", None)):
        return f"unknown database scheme {scheme!r}"
    return module


def backends() -> list[str]:
    """The schemes a backend here opens (the modules of this package with ``open_url``)."""
    names = (info.name for info in pkgutil.iter_modules(__path__))
    return sorted(name for name in names if not isinstance(_backend(name), str))


def database_problem(url: str | Path) -> str | None:
    """Why ``url`` names no database a backend here can open, or None."""
    backend = _backend(_scheme(str(url)))
    if not isinstance(backend, str):
        return None
    return (f"{backend} in {str(url)!r} (known: "
            f"{', '.join(f'{s}://' for s in backends())}; a plain path is SQLite)")


def lacking(url: str | Path) -> tuple[str, ...]:
    """The concerns of the interface the backend for ``url`` does not hold yet (its
    module's ``LACKING``; an unknown scheme lacks nothing here: see database_problem)."""
    backend = _backend(_scheme(str(url)))
    if isinstance(backend, str):
        return ()
    return tuple(getattr(backend, "LACKING", ()))


def open_store(url: str | Path, *, create: bool = True) -> Store:
    """Open the store ``url`` names: ``sqlite:///PATH`` or a path (SQLite).

    Raises ValueError for an unknown scheme, StoreError when the backend cannot
    open it (``create=False``: also when there is no database there).
    """
    backend = _backend(_scheme(str(url)))
    if isinstance(backend, str):
        raise ValueError(database_problem(url))
    return cast(_Backend, backend).open_url(str(url), create=create)
