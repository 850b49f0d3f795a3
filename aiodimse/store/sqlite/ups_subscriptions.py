"""UPS subscriptions in SQL (PS3.4 CC.2.3), each change with its reports in one
transaction: ``ups_subscriptions`` holds one row per (workitem, AE) with its
deletion lock, ``ups_global_subscriptions`` one row per AE with a global
subscription (its filter for a filtered one, and whether it is suspended).

Functions over an open connection with ``ups_sql``'s statements (shared with
PostgreSQL); ``SQLiteDatabase`` runs each write in its ``BEGIN IMMEDIATE``
transaction (``insert`` queues a report there).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from .. import ups_sql
from ..interface import Delivery, UPSGlobalSubscription

__all__ = ["subscribe", "subscribe_global", "unsubscribe", "unsubscribe_global",
           "suspend_global", "subscribers", "global_subscriptions", "created", "locked",
           "subscriber_aets"]

Insert = Callable[[sqlite3.Connection, Delivery], bool]
"""Queues one report in the open transaction; False if its (kind, key) was queued."""


def _queue(conn: sqlite3.Connection, insert: Insert, reports: Sequence[Delivery]) -> int:
    return sum(1 for item in reports if insert(conn, item))


def subscribe(conn: sqlite3.Connection, insert: Insert, aet: str, workitem: str, *,
              deletion_lock: bool, reports: Sequence[Delivery]) -> None:
    conn.execute(ups_sql.SUBSCRIBE, (workitem, aet, int(deletion_lock)))
    _queue(conn, insert, reports)


def subscribe_global(conn: sqlite3.Connection, insert: Insert, sub: UPSGlobalSubscription,
                     workitems: Sequence[str], reports: Sequence[Delivery]) -> None:
    conn.execute(ups_sql.SUBSCRIBE_GLOBAL, ups_sql.global_args(sub))
    conn.executemany(ups_sql.SUBSCRIBE,
                     [(uid, sub.aet, int(sub.deletion_lock)) for uid in workitems])
    _queue(conn, insert, reports)


def unsubscribe(conn: sqlite3.Connection, aet: str, workitem: str) -> bool:
    return conn.execute(ups_sql.UNSUBSCRIBE, (workitem, aet)).rowcount > 0


def unsubscribe_global(conn: sqlite3.Connection, aet: str) -> int:
    return sum(conn.execute(sql, (aet,)).rowcount for sql in ups_sql.UNSUBSCRIBE_GLOBAL)


def suspend_global(conn: sqlite3.Connection, aet: str) -> bool:
    return conn.execute(ups_sql.SUSPEND_GLOBAL, (aet,)).rowcount > 0


def subscribers(conn: sqlite3.Connection, workitem: str) -> list[tuple[str, bool]]:
    rows = conn.execute(ups_sql.SUBSCRIBERS, (workitem,))
    return [(str(r[0]), bool(r[1])) for r in rows]


def global_subscriptions(conn: sqlite3.Connection) -> list[UPSGlobalSubscription]:
    return [ups_sql.global_subscription(r) for r in conn.execute(ups_sql.GLOBAL_SUBSCRIPTIONS)]


def created(conn: sqlite3.Connection, insert: Insert, workitem: str,
            subs: Sequence[tuple[str, bool]], reports: Sequence[Delivery]) -> None:
    conn.executemany(ups_sql.SUBSCRIBE, [(workitem, aet, int(lock)) for aet, lock in subs])
    _queue(conn, insert, reports)


def locked(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute(ups_sql.LOCKED)}


def subscriber_aets(conn: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute(ups_sql.SUBSCRIBER_AETS)]
