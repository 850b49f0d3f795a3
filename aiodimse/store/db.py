"""The embedded SQLite store: MPPS instances, the instance index, commitment transactions.

One database file, shared by every worker process of ``aiodimse serve``: WAL mode so
readers never block the writer, ``busy_timeout`` so concurrent writers wait instead
of failing, and ``BEGIN IMMEDIATE`` for every read-modify-write. ``Store`` is
blocking; ``AsyncStore`` runs it on one dedicated thread so the event loop never
waits on the disk.

Failures: a full disk or database (SQLITE_FULL) is a resource limitation, answered
0x0213 by the services (``failure_status``); any other ``sqlite3.Error`` is a
processing failure (0x0110). Writes may carry an ``Allowance``: the bytes a calling
AE may write to one service per time window, counted in the same transaction as the
write (so every worker sharing the file sees one count); past it the write raises
``QuotaExceeded`` and nothing is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..observe import tell
from ..status import PROCESSING_FAILURE, RESOURCE_LIMITATION

__all__ = [
    "DB_FILENAME",
    "Allowance",
    "Commitment",
    "MPPSRow",
    "QuotaExceeded",
    "Store",
    "AsyncStore",
    "failure_status",
]

log = logging.getLogger("aiodimse.store")

T = TypeVar("T")

DB_FILENAME = "aiodimse.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    path TEXT,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mpps (
    sop_instance_uid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    dataset TEXT NOT NULL,
    calling_aet TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commitments (
    transaction_uid TEXT PRIMARY KEY,
    calling_aet TEXT NOT NULL,
    refs TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at REAL NOT NULL,
    deadline REAL NOT NULL,
    next_attempt REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    delivered_at REAL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS commitments_due ON commitments (state, next_attempt);
CREATE TABLE IF NOT EXISTS ae_usage (
    calling_aet TEXT NOT NULL,
    service TEXT NOT NULL,
    window_start REAL NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (calling_aet, service)
);
"""

_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, a module constant from Python 3.11 only


def failure_status(exc: sqlite3.Error) -> int:
    """The DIMSE status for a store failure: 0x0213 when the disk or database is full."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; else the message
    full = code & 0xFF == _SQLITE_FULL if code is not None else "full" in str(exc)
    return RESOURCE_LIMITATION if full else PROCESSING_FAILURE


class QuotaExceeded(Exception):
    """A write would take a calling AE past its ``Allowance``; nothing was written."""

    def __init__(self, allowance: Allowance, used: int, wanted: int) -> None:
        super().__init__(
            f"calling AE {allowance.calling_aet!r} has written {used} bytes to "
            f"{allowance.service} in the last {allowance.window:g} s; {wanted} more would "
            f"pass its {allowance.max_bytes} bytes"
        )
        self.allowance = allowance


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowance:
    """What one calling AE may write to one service: ``max_bytes`` per ``window`` s."""

    calling_aet: str
    service: str
    max_bytes: int
    window: float


PENDING = "pending"
DELIVERED = "delivered"
EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class Commitment:
    """One accepted storage commitment request (a row of ``commitments``)."""

    transaction_uid: str
    calling_aet: str
    refs: tuple[tuple[str, str], ...]  # (SOP Class UID, SOP Instance UID)
    state: str = PENDING
    received_at: float
    deadline: float
    next_attempt: float
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MPPSRow:
    """One stored MPPS instance; ``dataset`` is DICOM JSON."""

    sop_instance_uid: str
    status: str
    dataset: str
    calling_aet: str | None


def _commitment(row: sqlite3.Row) -> Commitment:
    return Commitment(
        transaction_uid=row["transaction_uid"],
        calling_aet=row["calling_aet"],
        refs=tuple((str(c), str(i)) for c, i in json.loads(row["refs"])),
        state=row["state"],
        received_at=row["received_at"],
        deadline=row["deadline"],
        next_attempt=row["next_attempt"],
        attempts=row["attempts"],
        last_error=row["last_error"],
    )


class Store:
    """Blocking access to the database; use from one thread at a time."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)  # idempotent; executescript manages its own commit

    @classmethod
    def in_directory(cls, directory: str | Path) -> Store:
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
                    "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?)",
                    (sop_instance, sop_class, path, now),
                )
                count += 1
        return count

    def find_instances(self, instance_uids: Sequence[str]) -> dict[str, str]:
        """SOP Instance UID -> SOP Class UID for those of ``instance_uids`` indexed."""
        found: dict[str, str] = {}
        uids = list(dict.fromkeys(instance_uids))
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
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

    # -- storage commitment transactions ------------------------------------------------

    def add_commitment(self, c: Commitment, *, owner: str | None, lease_until: float,
                       allowance: Allowance | None = None) -> bool:
        """Record an accepted request; False if its Transaction UID is already known.

        Raises QuotaExceeded past ``allowance`` (the refs' JSON is what is counted).
        """
        refs = json.dumps(c.refs)
        try:
            with self.transaction() as conn:
                self._charge(conn, allowance, len(refs) + len(c.transaction_uid), c.received_at)
                conn.execute(
                    "INSERT INTO commitments (transaction_uid, calling_aet, refs, state, "
                    "received_at, deadline, next_attempt, attempts, lease_owner, lease_until) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (c.transaction_uid, c.calling_aet, refs, PENDING,
                     c.received_at, c.deadline, c.next_attempt, owner, lease_until),
                )
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
        per_aet: int | None = None,
        max_aets: int | None = None,
        aet: str | None = None,
        skip_aets: Collection[str] = (),
        held: Collection[str] = (),
    ) -> list[Commitment]:
        """Lease up to ``limit`` pending reports that are due and not leased by another.

        Earliest first, at most ``per_aet`` for one calling AE and from at most
        ``max_aets`` calling AEs; only ``aet``'s if given; none for ``skip_aets`` (AEs
        with no delivery slot free) nor those in ``held`` (being delivered here).
        """
        query = ("SELECT transaction_uid, calling_aet FROM commitments WHERE state = ? "
                 "AND next_attempt <= ? "
                 "AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?)")
        params: list[Any] = [PENDING, now, now, owner]
        if aet is not None:
            query += " AND calling_aet = ?"
            params.append(aet)
        chosen: list[str] = []
        counts: dict[str, int] = {}
        with self.transaction() as conn:
            for uid, calling in conn.execute(query + " ORDER BY next_attempt", params):
                if uid in held or calling in skip_aets:
                    continue
                count = counts.get(calling, 0)
                if per_aet is not None and count >= per_aet:
                    continue
                if count == 0 and max_aets is not None and len(counts) >= max_aets:
                    continue
                counts[calling] = count + 1
                chosen.append(uid)
                if len(chosen) >= limit:
                    break
            rows = []
            for uid in chosen:
                conn.execute(
                    "UPDATE commitments SET lease_owner = ?, lease_until = ? "
                    "WHERE transaction_uid = ?",
                    (owner, now + lease, uid),
                )
                rows.append(conn.execute(
                    "SELECT * FROM commitments WHERE transaction_uid = ?", (uid,)
                ).fetchone())
        return [_commitment(r) for r in rows]

    def renew_leases(self, owner: str, transaction_uids: Sequence[str], until: float) -> None:
        """Extend ``owner``'s leases on reports it is still delivering."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE commitments SET lease_until = ? "
                "WHERE transaction_uid = ? AND lease_owner = ? AND state = ?",
                [(until, uid, owner, PENDING) for uid in transaction_uids],
            )

    def next_due(self) -> float | None:
        """When the earliest pending report is due (ignoring leases)."""
        row = self._conn.execute(
            "SELECT min(max(next_attempt, coalesce(lease_until, 0))) FROM commitments "
            "WHERE state = ?",
            (PENDING,),
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_delivered(self, transaction_uid: str, result: Any, now: float) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE commitments SET state = ?, delivered_at = ?, result = ?, "
                "attempts = attempts + 1, lease_owner = NULL, lease_until = NULL "
                "WHERE transaction_uid = ?",
                (DELIVERED, now, json.dumps(result), transaction_uid),
            )

    def reschedule(self, transaction_uid: str, next_attempt: float, error: str) -> None:
        """A failed attempt: try again at ``next_attempt``; the lease is given up."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE commitments SET next_attempt = ?, last_error = ?, "
                "attempts = attempts + 1, lease_owner = NULL, lease_until = NULL "
                "WHERE transaction_uid = ?",
                (next_attempt, error, transaction_uid),
            )

    def expire(self, transaction_uid: str, error: str) -> None:
        """The deadline passed without delivery: stop trying (kept for the record)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE commitments SET state = ?, last_error = ?, attempts = attempts + 1, "
                "lease_owner = NULL, lease_until = NULL WHERE transaction_uid = ?",
                (EXPIRED, error, transaction_uid),
            )

    def reset_for_start(self, now: float) -> int:
        """A fresh start (no other worker running): every pending report is due now,
        whoever leased it before a crash. Returns how many are pending."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE commitments SET lease_owner = NULL, lease_until = NULL, "
                "next_attempt = min(next_attempt, ?) WHERE state = ?",
                (now, PENDING),
            )
            row = conn.execute(
                "SELECT count(*) FROM commitments WHERE state = ?", (PENDING,)
            ).fetchone()
        return int(row[0])

    def release_leases(self, owner: str) -> None:
        """Give up ``owner``'s leases (a clean stop): others may deliver at once."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE commitments SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner = ?",
                (owner,),
            )

    def count_pending(self) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM commitments WHERE state = ?", (PENDING,)
        ).fetchone()
        return int(row[0])

    def commitment_state(self, transaction_uid: str) -> tuple[str, int, str | None] | None:
        """(state, attempts, last error) of one transaction, or None if unknown."""
        row = self._conn.execute(
            "SELECT state, attempts, last_error FROM commitments WHERE transaction_uid = ?",
            (transaction_uid,),
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
        """Read, change and write one MPPS instance in one transaction.

        ``change`` gets the current row (None if absent) and returns the new row, or
        anything else to leave the database as it was (that value is returned).
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


class AsyncStore:
    """A ``Store`` used from asyncio: every call runs on one dedicated thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiodimse-store")
        # aiodimse.observe: told how long each call took (store_call); None: not timed
        self.observer: Any = None

    @classmethod
    def in_directory(cls, directory: str | Path) -> AsyncStore:
        return cls(Store.in_directory(directory))

    async def call(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` (usually a bound ``Store`` method) on the thread."""
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._executor, functools.partial(func, *args, **kwargs))
        if self.observer is None:
            return await call
        started = time.monotonic()  # queueing behind earlier calls included: what callers wait
        try:
            return await call
        finally:
            tell(self.observer, "store_call", getattr(func, "__name__", "?"),
                 time.monotonic() - started)

    async def aclose(self) -> None:
        """Finish queued calls, then close the database."""
        await self.call(self.store.close)
        self._executor.shutdown(wait=False)
