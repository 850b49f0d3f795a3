"""Storage for the services: the interface per concern (``interface``), its backends
(``sqlite``), and ``open_store``, which picks the backend by the URL's scheme.

A backend is a module with ``open_url(url, *, create=True) -> Store``; adding one
(PostgreSQL) is that module plus its scheme in ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
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
    "BACKENDS",
    "DB_FILENAME",
    "Allowance",
    "Commitment",
    "Delivery",
    "MPPSRow",
    "QuotaExceeded",
    "Store",
    "StoreError",
    "database_problem",
    "index_paths",
    "open_store",
    "read_uids",
    "scan",
]

BACKENDS: dict[str, str] = {"sqlite": "aiodimse.store.sqlite"}
"""URL scheme -> the module implementing it (imported when used)."""


class _Backend(Protocol):
    def open_url(self, url: str, *, create: bool = True) -> Store: ...


def _scheme(url: str) -> str:
    """A URL's scheme; "sqlite" for a plain path (no ``://``)."""
    scheme, sep, _rest = url.partition("://")
    return scheme.lower() if sep else "sqlite"


def database_problem(url: str | Path) -> str | None:
    """Why ``url`` names no database a backend here can open, or None."""
    scheme = _scheme(str(url))
    if scheme in BACKENDS:
        return None
    return (f"unknown database scheme {scheme!r} in {str(url)!r} (known: "
            f"{', '.join(f'{s}://' for s in sorted(BACKENDS))} or a file path)")


def open_store(url: str | Path, *, create: bool = True) -> Store:
    """Open the store ``url`` names: ``sqlite:///PATH`` or a path (SQLite).

    Raises ValueError for an unknown scheme, StoreError when the backend cannot
    open it (``create=False``: also when there is no database there).
    """
    problem = database_problem(url)
    if problem is not None:
        raise ValueError(problem)
    module = cast(_Backend, importlib.import_module(BACKENDS[_scheme(str(url))]))
    return module.open_url(str(url), create=create)
