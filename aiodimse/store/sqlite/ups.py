"""UPS workitems in SQL: one row per workitem, changed only inside a transaction.

The data set is kept whole (encoded bytes); ``state``, ``transaction_uid`` and the
keys a C-FIND narrows by (Patient ID, Worklist Label, Scheduled Procedure Step
Start DateTime) are columns beside it. A match reads by keyset (the next ``limit``
rows after the last id seen), so no statement stays open between batches.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..interface import WorkitemQuery, WorkitemRow

__all__ = ["insert", "get", "update", "match_batch", "purge"]

_COLUMNS = ("sop_instance_uid, state, transaction_uid, patient_id, scheduled_start, "
            "worklist_label, dataset, calling_aet")


def _row(r: sqlite3.Row) -> WorkitemRow:
    return WorkitemRow(
        sop_instance_uid=r["sop_instance_uid"], state=r["state"],
        transaction_uid=r["transaction_uid"], dataset=bytes(r["dataset"]),
        patient_id=r["patient_id"], scheduled_start=r["scheduled_start"],
        worklist_label=r["worklist_label"], calling_aet=r["calling_aet"],
    )


def insert(conn: sqlite3.Connection, row: WorkitemRow, now: float) -> bool:
    """Add a workitem (in the caller's transaction); False if its UID exists."""
    try:
        conn.execute(
            f"INSERT INTO ups_workitems ({_COLUMNS}, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.sop_instance_uid, row.state, row.transaction_uid, row.patient_id,
             row.scheduled_start, row.worklist_label, row.dataset, row.calling_aet, now, now),
        )
    except sqlite3.IntegrityError:
        return False
    return True


def get(conn: sqlite3.Connection, uid: str) -> WorkitemRow | None:
    r = conn.execute(f"SELECT {_COLUMNS} FROM ups_workitems WHERE sop_instance_uid = ?",
                     (uid,)).fetchone()
    return None if r is None else _row(r)


def update(conn: sqlite3.Connection, row: WorkitemRow, now: float) -> None:
    """Write ``row`` over the stored one (in the caller's transaction)."""
    conn.execute(
        "UPDATE ups_workitems SET state = ?, transaction_uid = ?, patient_id = ?, "
        "scheduled_start = ?, worklist_label = ?, dataset = ?, updated_at = ? "
        "WHERE sop_instance_uid = ?",
        (row.state, row.transaction_uid, row.patient_id, row.scheduled_start,
         row.worklist_label, row.dataset, now, row.sop_instance_uid),
    )


def _in(column: str, values: tuple[str, ...], where: list[str], params: list[Any]) -> None:
    if values:
        where.append(f"{column} IN ({', '.join('?' * len(values))})")
        params.extend(values)


def match_batch(conn: sqlite3.Connection, query: WorkitemQuery, after: int, limit: int
                ) -> tuple[list[WorkitemRow], int]:
    """Up to ``limit`` rows ``query`` narrows to with id > ``after``; and the last id."""
    where: list[str] = ["id > ?"]
    params: list[Any] = [after]
    _in("sop_instance_uid", query.uids, where, params)
    _in("state", query.states, where, params)
    for column, value in (("patient_id", query.patient_id),
                          ("worklist_label", query.worklist_label)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.start_from:
        where.append("substr(scheduled_start, 1, ?) >= ?")
        params += [len(query.start_from), query.start_from]
    if query.start_to:
        where.append("scheduled_start <> '' AND substr(scheduled_start, 1, ?) <= ?")
        params += [len(query.start_to), query.start_to]
    rows = conn.execute(
        f"SELECT id, {_COLUMNS} FROM ups_workitems WHERE {' AND '.join(where)} "
        "ORDER BY id LIMIT ?", [*params, limit]).fetchall()
    return [_row(r) for r in rows], (rows[-1]["id"] if rows else after)


_PURGEABLE = (
    "SELECT id, sop_instance_uid FROM ups_workitems "
    "WHERE state IN ('COMPLETED', 'CANCELED') AND updated_at < ? AND NOT EXISTS ("
    "SELECT 1 FROM ups_subscriptions s WHERE s.workitem = ups_workitems.sop_instance_uid "
    "AND s.deletion_lock <> 0) ORDER BY id LIMIT ?")


def purge(conn: sqlite3.Connection, before: float, limit: int) -> int:
    """Delete (in the caller's transaction) up to ``limit`` final workitems changed
    before ``before`` and held by no deletion lock, and their subscriptions (the
    table of ups_subscriptions.py: the lock lives there); how many."""
    rows = conn.execute(_PURGEABLE, (before, limit)).fetchall()
    conn.executemany("DELETE FROM ups_workitems WHERE id = ?", [(r[0],) for r in rows])
    conn.executemany("DELETE FROM ups_subscriptions WHERE workitem = ?",
                     [(r[1],) for r in rows])
    return len(rows)
