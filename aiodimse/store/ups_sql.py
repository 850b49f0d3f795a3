"""UPS workitems and subscriptions as SQL text for both backends.

Both keep the same three tables (``ups_workitems``, ``ups_subscriptions``,
``ups_global_subscriptions``) with the same columns, flags as integers (0 or 1),
so every statement is written once here with ``?`` marks; PostgreSQL numbers them
(``numbered``). What differs stays in the backends: how a read-change-write is
kept whole (SQLite: its write lock; PostgreSQL: a compare-and-set on the row's
version) and how reports are queued with a change.

A match reads by keyset (the next ``limit`` rows after the last id seen), so no
statement stays open between batches.
"""

from __future__ import annotations

import re
from typing import Any

from .archive_sql import Dialect, Statement
from .interface import UPSGlobalSubscription, WorkitemQuery, WorkitemRow

__all__ = ["COLUMNS", "INSERT_WORKITEM", "GET_WORKITEM", "UPDATE_WORKITEM", "match_sql",
           "workitem", "update_args", "insert_args", "SUBSCRIBE", "SUBSCRIBE_GLOBAL",
           "UNSUBSCRIBE", "UNSUBSCRIBE_GLOBAL", "SUSPEND_GLOBAL", "SUBSCRIBERS",
           "GLOBAL_SUBSCRIPTIONS", "LOCKED", "SUBSCRIBER_AETS", "global_subscription",
           "global_args", "numbered"]

COLUMNS = ("sop_instance_uid, state, transaction_uid, patient_id, scheduled_start, "
           "worklist_label, dataset, calling_aet")

INSERT_WORKITEM = (f"INSERT INTO ups_workitems ({COLUMNS}, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                   "ON CONFLICT (sop_instance_uid) DO NOTHING")
GET_WORKITEM = f"SELECT {COLUMNS} FROM ups_workitems WHERE sop_instance_uid = ?"
UPDATE_WORKITEM = ("UPDATE ups_workitems SET state = ?, transaction_uid = ?, patient_id = ?, "
                   "scheduled_start = ?, worklist_label = ?, dataset = ?, updated_at = ? "
                   "WHERE sop_instance_uid = ?")

SUBSCRIBE = ("INSERT INTO ups_subscriptions (workitem, aet, deletion_lock) VALUES (?, ?, ?) "
             "ON CONFLICT (workitem, aet) DO UPDATE SET deletion_lock = excluded.deletion_lock")
SUBSCRIBE_GLOBAL = (
    "INSERT INTO ups_global_subscriptions (aet, deletion_lock, filter, suspended) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (aet) DO UPDATE SET deletion_lock = "
    "excluded.deletion_lock, filter = excluded.filter, suspended = excluded.suspended")
UNSUBSCRIBE = "DELETE FROM ups_subscriptions WHERE workitem = ? AND aet = ?"
UNSUBSCRIBE_GLOBAL = ("DELETE FROM ups_global_subscriptions WHERE aet = ?",
                      "DELETE FROM ups_subscriptions WHERE aet = ?")
SUSPEND_GLOBAL = "UPDATE ups_global_subscriptions SET suspended = 1 WHERE aet = ?"
SUBSCRIBERS = ("SELECT aet, deletion_lock FROM ups_subscriptions WHERE workitem = ? "
               "ORDER BY aet")
GLOBAL_SUBSCRIPTIONS = ("SELECT aet, deletion_lock, filter, suspended "
                        "FROM ups_global_subscriptions ORDER BY aet")
LOCKED = "SELECT DISTINCT workitem FROM ups_subscriptions WHERE deletion_lock <> 0"
# final workitems past their keeping that no deletion lock holds (CC.2.1.3)
PURGEABLE = (
    "SELECT id, sop_instance_uid FROM ups_workitems "
    "WHERE state IN ('COMPLETED', 'CANCELED') AND updated_at < ? AND NOT EXISTS ("
    "SELECT 1 FROM ups_subscriptions s WHERE s.workitem = ups_workitems.sop_instance_uid "
    "AND s.deletion_lock <> 0) ORDER BY id LIMIT ?")
DELETE_WORKITEM = "DELETE FROM ups_workitems WHERE id = ?"
DELETE_SUBSCRIPTIONS = "DELETE FROM ups_subscriptions WHERE workitem = ?"
SUBSCRIBER_AETS = ("SELECT aet FROM ups_subscriptions UNION "
                   "SELECT aet FROM ups_global_subscriptions ORDER BY aet")

_MARK = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` marks as ``$1``, ``$2``, ... (PostgreSQL's); the
    statements here hold no ``?`` but their marks."""
    count = iter(range(1, sql.count("?") + 1))
    return _MARK.sub(lambda _m: f"${next(count)}", sql)


def workitem(r: Any) -> WorkitemRow:
    """A row of ``COLUMNS`` (either driver's, read by name)."""
    return WorkitemRow(
        sop_instance_uid=r["sop_instance_uid"], state=r["state"],
        transaction_uid=r["transaction_uid"], dataset=bytes(r["dataset"]),
        patient_id=r["patient_id"], scheduled_start=r["scheduled_start"],
        worklist_label=r["worklist_label"], calling_aet=r["calling_aet"],
    )


def insert_args(row: WorkitemRow, now: float) -> tuple[Any, ...]:
    return (row.sop_instance_uid, row.state, row.transaction_uid, row.patient_id,
            row.scheduled_start, row.worklist_label, row.dataset, row.calling_aet, now, now)


def update_args(row: WorkitemRow, now: float) -> tuple[Any, ...]:
    return (row.state, row.transaction_uid, row.patient_id, row.scheduled_start,
            row.worklist_label, row.dataset, now, row.sop_instance_uid)


def global_args(sub: UPSGlobalSubscription) -> tuple[Any, ...]:
    return sub.aet, int(sub.deletion_lock), sub.filter, int(sub.suspended)


def global_subscription(r: Any) -> UPSGlobalSubscription:
    return UPSGlobalSubscription(aet=str(r[0]), deletion_lock=bool(r[1]), filter=r[2],
                                 suspended=bool(r[3]))


def _in(dialect: Dialect, column: str, values: tuple[str, ...], where: list[str],
        params: list[Any]) -> None:
    if values:
        where.append(f"{column} IN ({', '.join(dialect.mark(params, v) for v in values)})")


def match_sql(dialect: Dialect, query: WorkitemQuery, after: int, limit: int) -> Statement:
    """The next ``limit`` workitems ``query`` narrows to with id > ``after``: the id,
    then ``COLUMNS``."""
    params: list[Any] = []
    where = [f"id > {dialect.mark(params, after)}"]
    _in(dialect, "sop_instance_uid", query.uids, where, params)
    _in(dialect, "state", query.states, where, params)
    for column, value in (("patient_id", query.patient_id),
                          ("worklist_label", query.worklist_label)):
        if value is not None:
            where.append(f"{column} = {dialect.mark(params, value)}")
    if query.start_from:
        n = dialect.mark(params, len(query.start_from))
        where.append(f"substr(scheduled_start, 1, {n}) >= "
                     f"{dialect.mark(params, query.start_from)}")
    if query.start_to:
        n = dialect.mark(params, len(query.start_to))
        where.append(f"scheduled_start <> '' AND substr(scheduled_start, 1, {n}) <= "
                     f"{dialect.mark(params, query.start_to)}")
    sql = (f"SELECT id, {COLUMNS} FROM ups_workitems WHERE {' AND '.join(where)} "
           f"ORDER BY id LIMIT {dialect.mark(params, limit)}")
    return Statement(sql, params)
