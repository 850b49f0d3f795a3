"""The blocking SQLite database behind ``SQLiteStore``: every table, one connection.

One database file, shared by every worker process of ``aiodimse serve``: WAL mode so
readers never block the writer, ``busy_timeout`` so concurrent writers wait instead
of failing, and ``BEGIN IMMEDIATE`` for every read-modify-write. Writes may carry an
``Allowance``, counted in the same transaction as the write (so every worker sharing
the file sees one count); past it the write raises ``QuotaExceeded`` and nothing is
written. ``sqlite3.Error`` is raised as is; ``SQLiteStore`` turns it into
``StoreError`` (``is_full`` says whether it is out of room).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import Any, TypeVar

from ..claim_plan import ClaimPlan
from ..interface import (
    COMMITMENT_KIND,
    DELIVERED,
    EXPIRED,
    PENDING,
    Allowance,
    Commitment,
    Delivery,
    DeliveryState,
    IndexedFile,
    MPPSRow,
    QuotaExceeded,
    UPSGlobalSubscription,
    WorkitemQuery,
    WorkitemRow,
)
from ..records import IndexQuery, InstanceRecord, RetrieveItem
from . import archive, ups, ups_subscriptions
from .schema import prepare

__all__ = ["DB_FILENAME", "SQLiteDatabase", "is_full"]

log = logging.getLogger("aiodimse.store")

T = TypeVar("T")

DB_FILENAME = "aiodimse.sqlite3"

_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, a module constant from Python 3.11 only
_CHUNK = 500  # host parameters per IN (...) list (SQLite's old limit is 999)
_INDEX_COMPLETE = "index_complete"  # meta: "0" while serve's start-up scan runs
_INSERT_INSTANCE = ("INSERT OR REPLACE INTO instances (sop_instance_uid, sop_class_uid, "
                    "path, indexed_at) VALUES (?, ?, ?, ?)")


def is_full(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite's "database or disk is full" (SQLITE_FULL)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; else the message
    return code & 0xFF == _SQLITE_FULL if code is not None else "full" in str(exc)


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"], kind=row["kind"], key=row["key"], destination=row["destination"],
        ordering=row["ordering"], sop_class=row["sop_class"],
        sop_instance=row["sop_instance"], event_type=row["event_type"],
        payload=row["payload"], created_at=row["created_at"], deadline=row["deadline"],
        next_attempt=row["next_attempt"], attempts=row["attempts"],
        last_error=row["last_error"],
    )


_INSERT_DELIVERY = (
    "INSERT INTO deliveries (kind, key, destination, ordering, sop_class, sop_instance, "
    "event_type, payload, state, created_at, deadline, next_attempt, attempts, "
    "lease_owner, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
)

# Due, not leased by another owner; with how many pending items precede it in its
# (destination, ordering) group (0 for an item without ordering).
_DUE = (
    "SELECT id, destination, ordering, CASE WHEN d.ordering IS NULL THEN 0 ELSE "
    "(SELECT count(*) FROM deliveries e WHERE e.ordering = d.ordering "
    "AND e.destination = d.destination AND e.state = ? AND e.id < d.id) END "
    "FROM deliveries d WHERE state = ? AND next_attempt <= ? "
    "AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?)"
)

_Due = tuple[int, str, str | None, int]


def _due_rows(conn: sqlite3.Connection, query: str, params: Sequence[Any],
              wanted: Callable[[str], bool] = lambda dest: True
              ) -> Generator[_Due, None, None]:
    """The due rows, earliest first, read as they are taken (a backlog is not loaded
    whole); an ordered group's due items all where its first one comes, in queue
    order, since a later item may be due before the earlier one it waits for.
    A group of a destination not ``wanted`` (asked when the group comes) is passed
    over without reading it (yielded as id -1): with many destinations due and few
    taken (one UPS report per subscriber), a claim need not read every group."""
    seen: set[tuple[str, str]] = set()
    for row in conn.execute(query + " ORDER BY next_attempt, id", params):
        dest, ordering = row[1], row[2]
        if ordering is None:
            yield row[0], dest, None, 0
        elif (dest, ordering) not in seen:
            seen.add((dest, ordering))
            if not wanted(dest):
                yield -1, dest, ordering, -1  # passed over (the caller may stop here)
                continue
            for item in conn.execute(query + " AND destination = ? AND ordering = ? "
                                     "ORDER BY id", [*params, dest, ordering]):
                yield item[0], item[1], item[2], item[3]


class SQLiteDatabase:
    """Blocking access to the database; use from one thread at a time."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self.upgraded_from = prepare(self._conn)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def in_directory(cls, directory: str | Path) -> SQLiteDatabase:
        """Open (creating if needed) the database of a data directory."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path / DB_FILENAME)

    def close(self) -> None:
        self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken up front."""
        conn = self._conn
        if conn.in_transaction:  # nested: join the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        """Roll back what is still open, keeping the error that got us here.

        SQLite rolls a transaction back by itself on some errors (SQLITE_FULL among
        them); a ROLLBACK then fails with "no transaction is active", which must not
        replace the real cause.
        """
        conn = self._conn
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("rollback failed: %s", exc)

    @staticmethod
    def _charge(conn: sqlite3.Connection, allowance: Allowance | None, nbytes: int,
                now: float) -> None:
        """Count ``nbytes`` against ``allowance`` inside the caller's transaction."""
        if allowance is None:
            return
        row = conn.execute(
            "SELECT window_start, bytes FROM ae_usage WHERE calling_aet = ? AND service = ?",
            (allowance.calling_aet, allowance.service),
        ).fetchone()
        if row is None or now - row[0] >= allowance.window:
            start, used = now, 0
            # a new window: drop every finished one (keeps the table to the active AEs)
            conn.execute("DELETE FROM ae_usage WHERE service = ? AND window_start <= ?",
                         (allowance.service, now - allowance.window))
        else:
            start, used = float(row[0]), int(row[1])
        if used + nbytes > allowance.max_bytes:
            raise QuotaExceeded(allowance, used, nbytes)
        conn.execute(
            "INSERT OR REPLACE INTO ae_usage VALUES (?, ?, ?, ?)",
            (allowance.calling_aet, allowance.service, start, used + nbytes),
        )

    # -- instance index ----------------------------------------------------------------

    def add_instances(self, rows: Iterable[tuple[str, str, str | None]], now: float) -> int:
        """Insert or replace (SOP Class UID, SOP Instance UID, path) rows; returns the count."""
        count = 0
        with self.transaction() as conn:
            for sop_class, sop_instance, path in rows:
                conn.execute(
                    _INSERT_INSTANCE,
                    (sop_instance, sop_class, path, now),
                )
                count += 1
        return count

    def add_files(self, rows: Iterable[IndexedFile], now: float) -> int:
        """Index each file's instance and remember its size and mtime; returns the count.

        A file that held another instance before no longer vouches for that one
        (its row goes, unless another file has put it under its own path since).
        """
        count = 0
        with self.transaction() as conn:
            for sop_class, sop_instance, path, size, mtime_ns in rows:
                old = conn.execute("SELECT sop_instance_uid FROM files WHERE path = ?",
                                   (path,)).fetchone()
                if old is not None and old[0] != sop_instance:
                    conn.execute("DELETE FROM instances WHERE sop_instance_uid = ? "
                                 "AND path = ?", (old[0], path))
                conn.execute(_INSERT_INSTANCE,
                             (sop_instance, sop_class, path, now))
                conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                             (path, size, mtime_ns, sop_instance))
                count += 1
        return count

    def file_stats(self, paths: Sequence[str]) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime in ns) as indexed, for those of ``paths`` indexed."""
        found: dict[str, tuple[int, int]] = {}
        unique = list(dict.fromkeys(paths))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                f"SELECT path, size, mtime_ns FROM files WHERE path IN ({marks})", chunk
            ):
                found[row[0]] = (int(row[1]), int(row[2]))
        return found

    def set_index_complete(self, complete: bool) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                         (_INDEX_COMPLETE, "1" if complete else "0"))

    def index_complete(self) -> bool:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?",
                                 (_INDEX_COMPLETE,)).fetchone()
        return row is None or row[0] == "1"

    def find_instances(self, instance_uids: Sequence[str]) -> dict[str, str]:
        """SOP Instance UID -> SOP Class UID for those of ``instance_uids`` indexed."""
        found: dict[str, str] = {}
        uids = list(dict.fromkeys(instance_uids))
        for start in range(0, len(uids), _CHUNK):
            chunk = uids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(
                f"SELECT sop_instance_uid, sop_class_uid FROM instances "
                f"WHERE sop_instance_uid IN ({marks})",
                chunk,
            ):
                found[row[0]] = row[1]
        return found

    def count_instances(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM instances").fetchone()[0])

    # -- the archive index (SQL in archive.py) -----------------------------------------

    def add_records(self, records: Iterable[InstanceRecord], now: float) -> int:
        with self.transaction() as conn:
            return archive.add_records(conn, records, now)

    def index_instance(self, record: InstanceRecord, now: float) -> str | None:
        with self.transaction() as conn:
            return archive.index_instance(conn, record, now)

    def archived_path(self, sop_instance_uid: str) -> str | None:
        return archive.archived_path(self._conn, sop_instance_uid)

    def remove_instance(self, sop_instance_uid: str) -> bool:
        with self.transaction() as conn:
            return archive.remove_instance(conn, sop_instance_uid)

    def match_batch(self, query: IndexQuery, after: int, limit: int
                    ) -> tuple[list[dict[str, str]], int]:
        return archive.match_batch(self._conn, query, after, limit)

    def retrieve_batch(self, query: IndexQuery, after: int, limit: int
                       ) -> tuple[list[RetrieveItem], int]:
        return archive.retrieve_batch(self._conn, query, after, limit)

    def count_retrieve(self, query: IndexQuery) -> int:
        return archive.count_retrieve(self._conn, query)

    # -- storage commitment transactions ------------------------------------------------

    def add_commitment(self, c: Commitment, report: Delivery, *, owner: str | None = None,
                       lease_until: float | None = None,
                       allowance: Allowance | None = None) -> bool:
        """Record an accepted request and queue its report; False if its Transaction
        UID is already known. Raises QuotaExceeded past ``allowance`` (the report's
        payload, the references, is what is counted)."""
        try:
            with self.transaction() as conn:
                self._charge(conn, allowance, len(report.payload) + len(c.transaction_uid),
                             c.received_at)
                conn.execute("INSERT INTO commitments VALUES (?, ?, ?)",
                             (c.transaction_uid, c.calling_aet, c.received_at))
                self._insert(conn, report, owner, lease_until)
        except sqlite3.IntegrityError:
            return False
        return True

    def commitment_state(self, transaction_uid: str) -> DeliveryState | None:
        """(state, attempts, last error) of a transaction's report, or None if unknown."""
        row = self._conn.execute(
            "SELECT d.state, d.attempts, d.last_error FROM commitments c JOIN deliveries d "
            "ON d.kind = ? AND d.key = c.transaction_uid WHERE c.transaction_uid = ?",
            (COMMITMENT_KIND, transaction_uid),
        ).fetchone()
        return None if row is None else (row[0], int(row[1]), row[2])

    # -- UPS subscriptions (SQL in ups_subscriptions.py) --------------------------------

    def _insert_new(self, conn: sqlite3.Connection, item: Delivery,
                    owner: str | None = None, lease_until: float | None = None) -> bool:
        """Queue ``item`` in the open transaction; False if its (kind, key) is queued."""
        try:
            conn.execute("SAVEPOINT ups_report")
            self._insert(conn, item, owner, lease_until)
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO ups_report")
            return False
        finally:
            conn.execute("RELEASE ups_report")
        return True

    def ups_subscribe(self, aet: str, workitem: str, deletion_lock: bool,
                      reports: Sequence[Delivery]) -> None:
        with self.transaction() as conn:
            ups_subscriptions.subscribe(conn, self._insert_new, aet, workitem,
                                        deletion_lock=deletion_lock, reports=reports)

    def ups_subscribe_global(self, sub: UPSGlobalSubscription, workitems: Sequence[str],
                             reports: Sequence[Delivery]) -> None:
        with self.transaction() as conn:
            ups_subscriptions.subscribe_global(conn, self._insert_new, sub, workitems, reports)

    def ups_unsubscribe(self, aet: str, workitem: str) -> bool:
        with self.transaction() as conn:
            return ups_subscriptions.unsubscribe(conn, aet, workitem)

    def ups_unsubscribe_global(self, aet: str) -> int:
        with self.transaction() as conn:
            return ups_subscriptions.unsubscribe_global(conn, aet)

    def ups_suspend_global(self, aet: str) -> bool:
        with self.transaction() as conn:
            return ups_subscriptions.suspend_global(conn, aet)

    def ups_subscribers(self, workitem: str) -> list[tuple[str, bool]]:
        return ups_subscriptions.subscribers(self._conn, workitem)

    def ups_global_subscriptions(self) -> list[UPSGlobalSubscription]:
        return ups_subscriptions.global_subscriptions(self._conn)

    def ups_created(self, workitem: str, subs: Sequence[tuple[str, bool]],
                    reports: Sequence[Delivery]) -> None:
        with self.transaction() as conn:
            ups_subscriptions.created(conn, self._insert_new, workitem, subs, reports)

    def ups_queue(self, reports: Sequence[Delivery], owner: str | None = None,
                  lease_until: float | None = None) -> int:
        with self.transaction() as conn:
            return sum(1 for item in reports
                       if self._insert_new(conn, item, owner, lease_until))

    def ups_locked(self) -> set[str]:
        return ups_subscriptions.locked(self._conn)

    def ups_subscriber_aets(self) -> list[str]:
        return ups_subscriptions.subscriber_aets(self._conn)

    # -- the delivery queue -------------------------------------------------------------

    @staticmethod
    def _insert(conn: sqlite3.Connection, item: Delivery, owner: str | None,
                lease_until: float | None) -> None:
        conn.execute(_INSERT_DELIVERY, (
            item.kind, item.key, item.destination, item.ordering, item.sop_class,
            item.sop_instance, item.event_type, item.payload, PENDING, item.created_at,
            item.deadline, item.next_attempt, owner, lease_until,
        ))

    def enqueue(self, item: Delivery, *, owner: str | None = None,
                lease_until: float | None = None) -> bool:
        """Queue ``item``; False if its (kind, key) is queued already."""
        try:
            with self.transaction() as conn:
                self._insert(conn, item, owner, lease_until)
        except sqlite3.IntegrityError:
            return False
        return True

    def claim_due(
        self,
        owner: str,
        now: float,
        lease: float,
        limit: int,
        *,
        per_destination: int | None = None,
        max_destinations: int | None = None,
        destination: str | None = None,
        skip_destinations: Collection[str] = (),
        held: Collection[int] = (),
    ) -> list[Delivery]:
        """Lease up to ``limit`` due items (see ``DeliveryQueue.claim_due``)."""
        query = _DUE
        params: list[Any] = [PENDING, PENDING, now, now, owner]
        if destination is not None:
            query += " AND destination = ?"
            params.append(destination)
        plan = ClaimPlan(limit, per_destination=per_destination,
                         max_destinations=max_destinations, destination=destination,
                         skip_destinations=skip_destinations, held=held)
        chosen = plan.chosen
        with self.transaction() as conn:
            due = _due_rows(conn, query, params, plan.wanted)
            full = False  # every destination it may take is chosen: read only theirs now
            for id_, dest, ordering, ahead in due:
                if plan.full(dest):
                    full = True
                    break
                plan.take(id_, dest, ordering, ahead)
                if plan.done():
                    break
            due.close()  # its cursors: the rest of the backlog is not read
            for dest in plan.chosen_destinations() if full else ():
                if plan.done():
                    break
                mine = _due_rows(conn, query + " AND destination = ?", [*params, dest],
                                 plan.wanted)
                for id_, dest_, ordering, ahead in mine:
                    plan.take(id_, dest_, ordering, ahead)
                    if plan.done():
                        break
                mine.close()
            rows: dict[int, sqlite3.Row] = {}
            for start in range(0, len(chosen), _CHUNK):
                chunk = chosen[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"UPDATE deliveries SET lease_owner = ?, lease_until = ? "
                             f"WHERE id IN ({marks})", [owner, now + lease, *chunk])
                for row in conn.execute(f"SELECT * FROM deliveries WHERE id IN ({marks})",
                                        chunk):
                    rows[row["id"]] = row
        return [_delivery(rows[i]) for i in chosen]

    def renew_leases(self, owner: str, ids: Sequence[int], until: float) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE deliveries SET lease_until = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ?",
                [(until, id_, owner, PENDING) for id_ in ids],
            )

    def next_due(self) -> float | None:
        row = self._conn.execute(
            "SELECT min(max(next_attempt, coalesce(lease_until, 0))) FROM deliveries "
            "WHERE state = ?",
            (PENDING,),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_delivered(self, id: int, result: Mapping[str, Any] | None, now: float) -> None:
        self.mark_delivered_many([(id, result)], now)

    def mark_delivered_many(self, marks: Sequence[tuple[int, Mapping[str, Any] | None]],
                            now: float) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE deliveries SET state = ?, delivered_at = ?, result = ?, "
                "attempts = attempts + 1, lease_owner = NULL, lease_until = NULL "
                "WHERE id = ?",
                [(DELIVERED, now, None if result is None else json.dumps(dict(result)), id_)
                 for id_, result in marks],
            )

    def reschedule(self, id: int, next_attempt: float, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET next_attempt = ?, last_error = ?, "
                "attempts = attempts + 1, lease_owner = NULL, lease_until = NULL "
                "WHERE id = ?",
                (next_attempt, error, id),
            )

    def expire(self, id: int, error: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET state = ?, last_error = ?, attempts = attempts + 1, "
                "lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (EXPIRED, error, id),
            )

    def reset_for_start(self, now: float) -> int:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, "
                "next_attempt = min(next_attempt, ?) WHERE state = ?",
                (now, PENDING),
            )
            row = conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = ?", (PENDING,)
            ).fetchone()
        return int(row[0])

    def release_leases(self, owner: str, ids: Sequence[int] | None = None) -> None:
        with self.transaction() as conn:
            if ids is None:
                conn.execute("UPDATE deliveries SET lease_owner = NULL, lease_until = NULL "
                             "WHERE lease_owner = ?", (owner,))
                return
            conn.executemany("UPDATE deliveries SET lease_owner = NULL, lease_until = NULL "
                             "WHERE id = ? AND lease_owner = ?", [(i, owner) for i in ids])

    def count_pending(self) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM deliveries WHERE state = ?", (PENDING,)
        ).fetchone()
        return int(row[0])

    def delivery_state(self, kind: str, key: str) -> DeliveryState | None:
        row = self._conn.execute(
            "SELECT state, attempts, last_error FROM deliveries WHERE kind = ? AND key = ?",
            (kind, key),
        ).fetchone()
        return None if row is None else (row[0], int(row[1]), row[2])

    # -- MPPS ------------------------------------------------------------------------------

    def mpps_create(self, row: MPPSRow, now: float, allowance: Allowance | None = None) -> bool:
        """Store a new MPPS instance; False if the SOP Instance UID exists.

        Raises QuotaExceeded past ``allowance`` (the data set's JSON is counted).
        """
        try:
            with self.transaction() as conn:
                self._charge(conn, allowance, len(row.dataset), now)
                conn.execute(
                    "INSERT INTO mpps VALUES (?, ?, ?, ?, ?, ?)",
                    (row.sop_instance_uid, row.status, row.dataset, row.calling_aet, now, now),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def mpps_get(self, sop_instance_uid: str) -> MPPSRow | None:
        r = self._conn.execute(
            "SELECT * FROM mpps WHERE sop_instance_uid = ?", (sop_instance_uid,)
        ).fetchone()
        if r is None:
            return None
        return MPPSRow(
            sop_instance_uid=r["sop_instance_uid"],
            status=r["status"],
            dataset=r["dataset"],
            calling_aet=r["calling_aet"],
        )

    def mpps_update(
        self,
        sop_instance_uid: str,
        change: Callable[[MPPSRow | None], MPPSRow | T],
        now: float,
        allowance: Allowance | None = None,
    ) -> MPPSRow | T:
        """Read, change and write one MPPS instance in one transaction (see MPPSStore).

        Raises QuotaExceeded past ``allowance`` (the new data set's JSON is counted).
        """
        with self.transaction() as conn:
            current = self.mpps_get(sop_instance_uid)
            new = change(current)
            if isinstance(new, MPPSRow):
                self._charge(conn, allowance, len(new.dataset), now)
                self._conn.execute(
                    "UPDATE mpps SET status = ?, dataset = ?, updated_at = ? "
                    "WHERE sop_instance_uid = ?",
                    (new.status, new.dataset, now, sop_instance_uid),
                )
        return new

    # -- UPS workitems (SQL in ups.py) ------------------------------------------------

    def ups_create(self, row: WorkitemRow, now: float) -> bool:
        with self.transaction() as conn:
            return ups.insert(conn, row, now)

    def ups_get(self, sop_instance_uid: str) -> WorkitemRow | None:
        return ups.get(self._conn, sop_instance_uid)

    def ups_update(self, sop_instance_uid: str,
                   change: Callable[[WorkitemRow | None], WorkitemRow | T],
                   now: float) -> WorkitemRow | T:
        """Read, change and write one workitem in one transaction (UPSWorkitems)."""
        with self.transaction() as conn:
            new = change(ups.get(conn, sop_instance_uid))
            if isinstance(new, WorkitemRow):
                ups.update(conn, new, now)
        return new

    def ups_purge(self, before: float, limit: int) -> int:
        """Delete final workitems past their keeping (UPSRetention)."""
        with self.transaction() as conn:
            return ups.purge(conn, before, limit)

    def ups_match_batch(self, query: WorkitemQuery, after: int, limit: int
                        ) -> tuple[list[WorkitemRow], int]:
        return ups.match_batch(self._conn, query, after, limit)
