"""The SQLite backend: one database file (WAL) shared by every worker of ``serve``.

The only place ``sqlite3`` is imported (``tests/test_store_boundary.py`` holds the
rest of the package to that). ``open_url`` is what ``open_store`` calls for a
``sqlite:///PATH`` database (SQLAlchemy's form: ``sqlite:///rel.db``,
``sqlite:////abs.db``) or a plain path.
"""

from __future__ import annotations

from pathlib import Path

from .database import DB_FILENAME, SQLiteDatabase, is_full
from .schema import VERSION as SCHEMA_VERSION
from .schema import SchemaError
from .store import SQLiteStore, open_path

__all__ = ["DB_FILENAME", "SCHEMA_VERSION", "SQLiteDatabase", "SQLiteStore", "SchemaError",
           "is_full", "open_path", "open_url", "url_path"]

PREFIX = "sqlite:///"


def url_path(url: str) -> Path:
    """The file a ``sqlite:///PATH`` URL (or a plain path) names."""
    return Path(url[len(PREFIX):] if url.startswith(PREFIX) else url)


def open_url(url: str, *, create: bool = True) -> SQLiteStore:
    return open_path(url_path(url), create=create)
