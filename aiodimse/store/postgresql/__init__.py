"""The PostgreSQL backend: every node of a deployment on one database.

``open_url`` is what ``open_store`` calls for ``postgresql://USER@HOST:PORT/DB``
(libpq's URL form; also ``postgres://``). The driver is asyncpg, an optional extra
(``pip install 'aiodimse[postgresql]'``), imported only when such a URL is opened.

Why asyncpg and not psycopg 3: it speaks PostgreSQL's binary protocol from Cython
with prepared statements cached per connection, and measured here (docs/internals.md
"PostgreSQL") one store call is a few hundred microseconds of round trip, of which
the driver is a small part; psycopg 3's async mode is a thinner layer over libpq
and, in the published comparisons, slower per statement. Both are maintained
(asyncpg by MagicStack, releases through 2025); asyncpg needs no libpq.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from ..interface import StoreError

if TYPE_CHECKING:
    from .store import PostgreSQLStore

__all__ = ["DRIVER_MISSING", "LACKING", "open_url"]

LACKING: tuple[str, ...] = ()
"""Concerns of the store interface not held here (``serve`` refuses the services
that need one: cli/config_checks.py): none; the archive index is in
``archive.py``, the UPS workitems and subscriptions in ``ups.py``."""

DRIVER_MISSING = ("a postgresql:// database needs the asyncpg driver: "
                  "pip install 'aiodimse[postgresql]'")


def open_url(url: str, *, create: bool = True) -> PostgreSQLStore:
    """The store on the database ``url`` names; nothing connects until first used
    (the schema is made or upgraded then). ``create`` is not needed: a server's
    database is made by its administrator, the tables by the first node."""
    if importlib.util.find_spec("asyncpg") is None:
        raise StoreError(DRIVER_MISSING)
    from .store import PostgreSQLStore  # noqa: PLC0415  (asyncpg, only now)

    scheme, sep, rest = url.partition("://")
    return PostgreSQLStore(f"postgresql://{rest}" if sep and scheme.lower() == "postgres"
                           else url)
