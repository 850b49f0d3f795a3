"""Embedded storage for ``aiodimse serve``: one SQLite database in a data directory."""

from __future__ import annotations

from .db import DB_FILENAME, AsyncStore, Commitment, MPPSRow, Store
from .index import index_paths, read_uids, scan

__all__ = [
    "DB_FILENAME",
    "Store",
    "AsyncStore",
    "Commitment",
    "MPPSRow",
    "index_paths",
    "read_uids",
    "scan",
]
