"""UPS workitems in SQLite: one row per workitem, changed only inside a transaction.

The statements are ``ups_sql``'s (shared with PostgreSQL). The data set is kept
whole (encoded bytes); ``state``, ``transaction_uid`` and the keys a C-FIND
narrows by (Patient ID, Worklist Label, Scheduled Procedure Step Start DateTime)
are columns beside it.
"""

from __future__ import annotations

import sqlite3

from .. import ups_sql
from ..interface import WorkitemQuery, WorkitemRow
from .archive import SQLITE

__all__ = ["insert", "get", "update", "match_batch", "purge"]


def insert(conn: sqlite3.Connection, row: WorkitemRow, now: float) -> bool:
    """Add a workitem (in the caller's transaction); False if its UID exists."""
    return conn.execute(ups_sql.INSERT_WORKITEM, ups_sql.insert_args(row, now)).rowcount > 0


def get(conn: sqlite3.Connection, uid: str) -> WorkitemRow | None:
    r = conn.execute(ups_sql.GET_WORKITEM, (uid,)).fetchone()
    return None if r is None else ups_sql.workitem(r)


def update(conn: sqlite3.Connection, row: WorkitemRow, now: float) -> None:
    """Write ``row`` over the stored one (in the caller's transaction)."""
    conn.execute(ups_sql.UPDATE_WORKITEM, ups_sql.update_args(row, now))


def match_batch(conn: sqlite3.Connection, query: WorkitemQuery, after: int, limit: int
                ) -> tuple[list[WorkitemRow], int]:
    """Up to ``limit`` rows ``query`` narrows to with id > ``after``; and the last id."""
    st = ups_sql.match_sql(SQLITE, query, after, limit)
    rows = conn.execute(st.sql, st.params).fetchall()
    return [ups_sql.workitem(r) for r in rows], (rows[-1]["id"] if rows else after)



def purge(conn: sqlite3.Connection, before: float, limit: int) -> int:
    """Delete (in the caller's transaction) up to ``limit`` final workitems changed
    before ``before`` and held by no deletion lock, and their subscriptions (the
    table of ups_subscriptions.py: the lock lives there); how many."""
    rows = conn.execute(ups_sql.PURGEABLE, (before, limit)).fetchall()
    conn.executemany(ups_sql.DELETE_WORKITEM, [(r[0],) for r in rows])
    conn.executemany(ups_sql.DELETE_SUBSCRIPTIONS, [(r[1],) for r in rows])
    return len(rows)
