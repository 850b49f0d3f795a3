"""UPS subscriptions in SQL (PS3.4 CC.2.3), each change with its reports in one
transaction: ``ups_subscriptions`` holds one row per (workitem, AE) with its
deletion lock, ``ups_global_subscriptions`` one row per AE with a global
subscription (its filter for a filtered one, and whether it is suspended).

Functions over an open connection; ``SQLiteDatabase`` runs each write in its
``BEGIN IMMEDIATE`` transaction (``insert`` queues a report there).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from ..interface import Delivery, UPSGlobalSubscription

__all__ = ["subscribe", "subscribe_global", "unsubscribe", "unsubscribe_global",
           "suspend_global", "subscribers", "global_subscriptions", "created", "locked",
           "subscriber_aets"]

Insert = Callable[[sqlite3.Connection, Delivery], bool]
"""Queues one report in the open transaction; False if its (kind, key) was queued."""

_SUBSCRIBE = ("INSERT OR REPLACE INTO ups_subscriptions (workitem, aet, deletion_lock) "
              "VALUES (?, ?, ?)")


def _queue(conn: sqlite3.Connection, insert: Insert, reports: Sequence[Delivery]) -> int:
    return sum(1 for item in reports if insert(conn, item))


def subscribe(conn: sqlite3.Connection, insert: Insert, aet: str, workitem: str, *,
              deletion_lock: bool, reports: Sequence[Delivery]) -> None:
    conn.execute(_SUBSCRIBE, (workitem, aet, int(deletion_lock)))
    _queue(conn, insert, reports)


def subscribe_global(conn: sqlite3.Connection, insert: Insert, sub: UPSGlobalSubscription,
                     workitems: Sequence[str], reports: Sequence[Delivery]) -> None:
    conn.execute("INSERT OR REPLACE INTO ups_global_subscriptions (aet, deletion_lock, "
                 "filter, suspended) VALUES (?, ?, ?, ?)",
                 (sub.aet, int(sub.deletion_lock), sub.filter, int(sub.suspended)))
    conn.executemany(_SUBSCRIBE, [(uid, sub.aet, int(sub.deletion_lock)) for uid in workitems])
    _queue(conn, insert, reports)


def unsubscribe(conn: sqlite3.Connection, aet: str, workitem: str) -> bool:
    cursor = conn.execute("DELETE FROM ups_subscriptions WHERE workitem = ? AND aet = ?",
                          (workitem, aet))
    return cursor.rowcount > 0


def unsubscribe_global(conn: sqlite3.Connection, aet: str) -> int:
    gone = conn.execute("DELETE FROM ups_global_subscriptions WHERE aet = ?", (aet,)).rowcount
    return gone + conn.execute("DELETE FROM ups_subscriptions WHERE aet = ?", (aet,)).rowcount


def suspend_global(conn: sqlite3.Connection, aet: str) -> bool:
    cursor = conn.execute("UPDATE ups_global_subscriptions SET suspended = 1 WHERE aet = ?",
                          (aet,))
    return cursor.rowcount > 0


def subscribers(conn: sqlite3.Connection, workitem: str) -> list[tuple[str, bool]]:
    rows = conn.execute("SELECT aet, deletion_lock FROM ups_subscriptions WHERE workitem = ? "
                        "ORDER BY aet", (workitem,))
    return [(str(r[0]), bool(r[1])) for r in rows]


def global_subscriptions(conn: sqlite3.Connection) -> list[UPSGlobalSubscription]:
    rows = conn.execute("SELECT aet, deletion_lock, filter, suspended "
                        "FROM ups_global_subscriptions ORDER BY aet")
    return [UPSGlobalSubscription(aet=str(r[0]), deletion_lock=bool(r[1]), filter=r[2],
                                  suspended=bool(r[3])) for r in rows]


def created(conn: sqlite3.Connection, insert: Insert, workitem: str,
            subs: Sequence[tuple[str, bool]], reports: Sequence[Delivery]) -> None:
    conn.executemany(_SUBSCRIBE, [(workitem, aet, int(lock)) for aet, lock in subs])
    _queue(conn, insert, reports)


def locked(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT DISTINCT workitem FROM ups_subscriptions "
                        "WHERE deletion_lock <> 0")
    return {str(r[0]) for r in rows}


def subscriber_aets(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT aet FROM ups_subscriptions UNION "
                        "SELECT aet FROM ups_global_subscriptions ORDER BY aet")
    return [str(r[0]) for r in rows]
