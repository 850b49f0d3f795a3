"""``PostgreSQLStore``: the store interface over one PostgreSQL database, shared by
every worker of every node.

Each call is one transaction on a pooled connection (``Database.run``); a write
charged to an ``Allowance`` is one statement with its charge (``aiodimse_charge``,
schema step 4), under a row lock of the AE's usage held only while the statement
runs, so nodes sharing the database share one count. Claiming reports locks
the due rows with ``FOR UPDATE SKIP LOCKED``: two nodes claiming at once take
disjoint items, and an item is taken again only once its lease ran out (a node that
died). Work for others is announced with ``NOTIFY`` (``notify.py``).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar

import asyncpg

from ...observe import Observer, tell
from ..archive_sql import batches
from ..claim_plan import ClaimPlan
from ..interface import (
    COMMITMENT_KIND,
    DELIVERED,
    EXPIRED,
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
from ..records import IndexQuery, InstanceRecord, RetrieveItem, Row
from . import archive, ups
from .connection import Database
from .notify import CHANNEL, Listener

__all__ = ["PostgreSQLStore"]

T = TypeVar("T")

_INDEX_COMPLETE = "index_complete"
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', $1)"

_COLUMNS = ("kind, key, destination, ordering, sop_class, sop_instance, event_type, "
            "payload, state, created_at, deadline, next_attempt, attempts, lease_owner, "
            "lease_until")
# One statement (one round trip), the notice with it when the item is free for all
# ($14: this store's id; NULL: none). A conflict on (kind, key) writes nothing.
_INSERT_DELIVERY = (
    f"WITH d AS (INSERT INTO deliveries ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
    "'pending', $9, $10, $11, 0, $12, $13) ON CONFLICT (kind, key) DO NOTHING RETURNING id) "
    f"SELECT id, CASE WHEN $14::text IS NULL THEN NULL ELSE pg_notify('{CHANNEL}', $14) END "
    "FROM d"
)
# A commitment and its report in one statement: a known Transaction UID inserts
# neither; a report key queued already fails the statement whole (unique violation).
_INSERT_COMMITMENT = (
    "WITH c AS (INSERT INTO commitments VALUES ($15, $16, $17) ON CONFLICT DO NOTHING "
    f"RETURNING 1), d AS (INSERT INTO deliveries ({_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, "
    "$7, $8, 'pending', $9, $10, $11, 0, $12, $13 FROM c RETURNING id) "
    f"SELECT id, CASE WHEN $14::text IS NULL THEN NULL ELSE pg_notify('{CHANNEL}', $14) END "
    "FROM d"
)

# Due, not leased by another owner ($1 now, $2 owner), locked as read (others' locks
# skipped); with how many pending items precede it in its (destination, ordering) group,
# and whether any follows (none, and none before: the row is its group, not read again).
_DUE = (
    "SELECT id, destination, ordering, CASE WHEN d.ordering IS NULL THEN 0 ELSE "
    "(SELECT count(*) FROM deliveries e WHERE e.ordering = d.ordering "
    "AND e.destination = d.destination AND e.state = 'pending' AND e.id < d.id) END, "
    "d.ordering IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries e WHERE "
    "e.ordering = d.ordering AND e.destination = d.destination AND e.state = 'pending' "
    "AND e.id > d.id) "
    "FROM deliveries d WHERE state = 'pending' AND next_attempt <= $1 "
    "AND (lease_until IS NULL OR lease_until <= $1 OR lease_owner = $2)"
)
_LOCK = " FOR UPDATE SKIP LOCKED"
_PAGE = 64  # rows per read of the due scan (after the first)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row["id"], kind=row["kind"], key=row["key"], destination=row["destination"],
        ordering=row["ordering"], sop_class=row["sop_class"],
        sop_instance=row["sop_instance"], event_type=row["event_type"],
        payload=row["payload"], created_at=row["created_at"], deadline=row["deadline"],
        next_attempt=row["next_attempt"], attempts=row["attempts"],
        last_error=row["last_error"],
    )


# A write charged to an ``Allowance`` is one statement with its charge (schema step
# 4's ``aiodimse_charge``: the AE's row locked there, and held to the commit that
# ends the statement, no round trip in between; over the allowance the function
# raises and the write is undone). The charge's six parameters are these, after
# the write's own ($n the first).
def _charge_call(n: int) -> str:
    return f"aiodimse_charge(${n}, ${n + 1}, ${n + 2}, ${n + 3}, ${n + 4}, ${n + 5})"


def _charge_args(allowance: Allowance, now: float, nbytes: int) -> tuple[Any, ...]:
    return (allowance.calling_aet, allowance.service, now, nbytes, allowance.window,
            allowance.max_bytes)


@contextlib.contextmanager
def _quota(allowance: Allowance, nbytes: int) -> Iterator[None]:
    """The function's refusal as ``QuotaExceeded`` (the statement wrote nothing)."""
    try:
        yield
    except asyncpg.RaiseError as exc:
        raise QuotaExceeded(allowance, int(exc.detail or 0), nbytes) from None


# Charged first, as SQLite's transaction does: a Transaction UID or report key
# known already then fails the statement whole (unique violation), undoing the charge.
_CHARGED_COMMITMENT = (
    f"WITH q AS (SELECT {_charge_call(18)}), c AS (INSERT INTO commitments "
    f"SELECT $15, $16, $17 FROM q RETURNING 1), d AS (INSERT INTO deliveries ({_COLUMNS}) "
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, 0, $12, $13 FROM c "
    f"RETURNING id) SELECT id, CASE WHEN $14::text IS NULL THEN NULL ELSE "
    f"pg_notify('{CHANNEL}', $14) END FROM d"
)
# the same for an MPPS instance: a known one fails the statement (unique violation)
_CHARGED_MPPS_CREATE = (
    f"WITH q AS (SELECT {_charge_call(6)}) INSERT INTO mpps "
    "SELECT $1, $2, $3, $4, $5, $5 FROM q"
)
_MPPS_SWAP = ("UPDATE mpps SET status = $1, dataset = $2, updated_at = $3 "
              "WHERE sop_instance_uid = $4 AND xmin::text = $5")
# the compare-and-set and its charge; no row: somebody wrote between, nothing charged
_CHARGED_MPPS_SWAP = (f"WITH m AS ({_MPPS_SWAP} RETURNING 1) SELECT {_charge_call(6)} "
                      "FROM m")


def _state(row: Any) -> DeliveryState | None:
    return None if row is None else (row[0], int(row[1]), row[2])


class PostgreSQLStore:
    """Implements ``aiodimse.store.interface.Store`` on PostgreSQL (asyncpg)."""

    def __init__(self, dsn: str) -> None:
        self.db = Database(dsn)
        self.me = uuid.uuid4().hex  # this store's NOTIFY payload: its own are not heard
        self._listener = Listener(dsn, self.me)
        # aiodimse.observe: told how long each call took (store_call); None: not timed
        self.observer: Observer | None = None

    async def _run(self, name: str, fn: Callable[[Any], Any], *,
                   transaction: bool = False) -> Any:
        """``fn(conn)``, in a transaction if asked (several statements; one statement
        is a transaction of its own, a round trip less each way); timed."""
        started = time.monotonic()

        async def body(conn: Any) -> Any:
            if not transaction:
                return await fn(conn)
            async with conn.transaction():
                return await fn(conn)

        try:
            return await self.db.run(body)
        except asyncpg.UniqueViolationError:  # a key known already: nothing written
            raise _Known from None
        finally:
            if self.observer is not None:
                tell(self.observer, "store_call", name, time.monotonic() - started)

    async def aclose(self) -> None:
        await self._listener.close()
        await self.db.close()

    # -- instance index

    async def add_instances(self, rows: Iterable[tuple[str, str, str | None]],
                            now: float) -> int:
        args = [(inst, cls, path, now) for cls, inst, path in rows]

        async def do(conn: Any) -> int:
            await conn.executemany(
                "INSERT INTO instances VALUES ($1, $2, $3, $4) ON CONFLICT (sop_instance_uid) "
                "DO UPDATE SET sop_class_uid = EXCLUDED.sop_class_uid, path = EXCLUDED.path, "
                "indexed_at = EXCLUDED.indexed_at", args)
            return len(args)
        return int(await self._run("add_instances", do, transaction=True))

    async def add_files(self, rows: Iterable[IndexedFile], now: float) -> int:
        rows = list(rows)

        async def do(conn: Any) -> int:
            for sop_class, sop_instance, path, size, mtime_ns in rows:
                old = await conn.fetchval("SELECT sop_instance_uid FROM files WHERE path = $1",
                                          path)
                if old is not None and old != sop_instance:
                    await conn.execute("DELETE FROM instances WHERE sop_instance_uid = $1 "
                                       "AND path = $2", old, path)
                await conn.execute(
                    "INSERT INTO instances VALUES ($1, $2, $3, $4) ON CONFLICT "
                    "(sop_instance_uid) DO UPDATE SET sop_class_uid = EXCLUDED.sop_class_uid, "
                    "path = EXCLUDED.path, indexed_at = EXCLUDED.indexed_at",
                    sop_instance, sop_class, path, now)
                await conn.execute(
                    "INSERT INTO files VALUES ($1, $2, $3, $4) ON CONFLICT (path) DO UPDATE "
                    "SET size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, "
                    "sop_instance_uid = EXCLUDED.sop_instance_uid",
                    path, size, mtime_ns, sop_instance)
            return len(rows)
        return int(await self._run("add_files", do, transaction=True))

    async def file_stats(self, paths: Sequence[str]) -> dict[str, tuple[int, int]]:
        async def do(conn: Any) -> dict[str, tuple[int, int]]:
            rows = await conn.fetch("SELECT path, size, mtime_ns FROM files "
                                    "WHERE path = ANY($1::text[])", list(paths))
            return {r[0]: (int(r[1]), int(r[2])) for r in rows}
        found: dict[str, tuple[int, int]] = await self._run("file_stats", do)
        return found

    async def set_index_complete(self, complete: bool) -> None:
        await self._run("set_index_complete", lambda conn: conn.execute(
            "INSERT INTO meta VALUES ($1, $2) ON CONFLICT (name) DO UPDATE "
            "SET value = EXCLUDED.value", _INDEX_COMPLETE, "1" if complete else "0"))

    async def index_complete(self) -> bool:
        value = await self._run("index_complete", lambda conn: conn.fetchval(
            "SELECT value FROM meta WHERE name = $1", _INDEX_COMPLETE))
        return value is None or value == "1"

    async def find_instances(self, instance_uids: Sequence[str]) -> dict[str, str]:
        async def do(conn: Any) -> dict[str, str]:
            rows = await conn.fetch("SELECT sop_instance_uid, sop_class_uid FROM instances "
                                    "WHERE sop_instance_uid = ANY($1::text[])",
                                    list(instance_uids))
            return {r[0]: r[1] for r in rows}
        found: dict[str, str] = await self._run("find_instances", do)
        return found

    async def count_instances(self) -> int:
        return int(await self._run("count_instances", lambda conn: conn.fetchval(
            "SELECT count(*) FROM instances")))

    # -- the archive index (SQL in archive.py)

    async def add_records(self, records: Iterable[InstanceRecord], now: float) -> int:
        rows = list(records)
        return int(await self._run("add_records",
                                   lambda conn: archive.add_records(conn, rows, now)))

    async def index_instance(self, record: InstanceRecord, now: float) -> str | None:
        before: str | None = await self._run(
            "index_instance", lambda conn: archive.index_instance(conn, record, now))
        return before

    async def archived_path(self, sop_instance_uid: str) -> str | None:
        path: str | None = await self._run(
            "archived_path", lambda conn: archive.archived_path(conn, sop_instance_uid))
        return path

    async def remove_instance(self, sop_instance_uid: str) -> bool:
        return bool(await self._run(
            "remove_instance", lambda conn: archive.remove_instance(conn, sop_instance_uid)))

    def match(self, query: IndexQuery) -> AsyncIterator[Row]:
        return batches(lambda after, size: self._run(
            "match", lambda conn: archive.match_batch(conn, query, after, size)))

    def retrieve(self, query: IndexQuery) -> AsyncIterator[RetrieveItem]:
        return batches(lambda after, size: self._run(
            "retrieve", lambda conn: archive.retrieve_batch(conn, query, after, size)))

    async def count_retrieve(self, query: IndexQuery) -> int:
        return int(await self._run(
            "count_retrieve", lambda conn: archive.count_retrieve(conn, query)))

    # -- commitment transactions

    async def add_commitment(self, commitment: Commitment, report: Delivery, *,
                             owner: str | None = None, lease_until: float | None = None,
                             allowance: Allowance | None = None) -> bool:
        c = commitment
        args = (*self._item(report, owner, lease_until), c.transaction_uid, c.calling_aet,
                c.received_at)

        async def do(conn: Any) -> bool:
            if allowance is None:
                return await conn.fetchrow(_INSERT_COMMITMENT, *args) is not None
            nbytes = len(report.payload) + len(c.transaction_uid)
            with _quota(allowance, nbytes):
                return await conn.fetchrow(_CHARGED_COMMITMENT, *args, *_charge_args(
                    allowance, c.received_at, nbytes)) is not None
        try:  # one round trip, with or without an allowance
            return bool(await self._run("add_commitment", do))
        except _Known:
            return False

    async def commitment_state(self, transaction_uid: str) -> DeliveryState | None:
        row = await self._run("commitment_state", lambda conn: conn.fetchrow(
            "SELECT d.state, d.attempts, d.last_error FROM commitments c JOIN deliveries d "
            "ON d.kind = $1 AND d.key = c.transaction_uid WHERE c.transaction_uid = $2",
            COMMITMENT_KIND, transaction_uid))
        return _state(row)

    # -- MPPS

    async def mpps_create(self, row: MPPSRow, now: float,
                          allowance: Allowance | None = None) -> bool:
        values = (row.sop_instance_uid, row.status, row.dataset, row.calling_aet, now)

        async def do(conn: Any) -> bool:
            if allowance is None:
                return bool(await conn.fetchval(
                    "INSERT INTO mpps VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING "
                    "RETURNING true", *values))
            nbytes = len(row.dataset)
            with _quota(allowance, nbytes):
                await conn.execute(_CHARGED_MPPS_CREATE, *values,
                                   *_charge_args(allowance, now, nbytes))
            return True
        try:  # one round trip, with or without an allowance
            return bool(await self._run("mpps_create", do))
        except _Known:  # (with an allowance) the instance exists: nothing charged
            return False

    async def mpps_get(self, sop_instance_uid: str) -> MPPSRow | None:
        r = await self._run("mpps_get", lambda conn: conn.fetchrow(
            "SELECT * FROM mpps WHERE sop_instance_uid = $1", sop_instance_uid))
        return None if r is None else _mpps(r)

    async def mpps_update(self, sop_instance_uid: str,
                          change: Callable[[MPPSRow | None], MPPSRow | T], now: float,
                          allowance: Allowance | None = None) -> MPPSRow | T:
        swapped: MPPSRow | T = await self._run(
            "mpps_update", lambda conn: _swap(conn, sop_instance_uid, change, now, allowance))
        return swapped

    # -- UPS workitems and subscriptions (SQL in ups.py)

    async def ups_create(self, row: WorkitemRow, now: float) -> bool:
        return bool(await self._run("ups_create", lambda conn: ups.insert(conn, row, now)))

    async def ups_get(self, sop_instance_uid: str) -> WorkitemRow | None:
        row: WorkitemRow | None = await self._run(
            "ups_get", lambda conn: ups.get(conn, sop_instance_uid))
        return row

    async def ups_update(self, sop_instance_uid: str,
                         change: Callable[[WorkitemRow | None], WorkitemRow | T],
                         now: float) -> WorkitemRow | T:
        result: WorkitemRow | T = await self._run(
            "ups_update", lambda conn: ups.update(conn, sop_instance_uid, change, now))
        return result

    def ups_match(self, query: WorkitemQuery) -> AsyncIterator[WorkitemRow]:
        return batches(lambda after, size: self._run(
            "ups_match", lambda conn: ups.match_batch(conn, query, after, size)))

    async def ups_purge(self, before: float, limit: int) -> int:
        return int(await self._run("ups_purge", lambda conn: ups.purge(conn, before, limit),
                                   transaction=True))

    async def ups_subscribe(self, aet: str, workitem: str, deletion_lock: bool,
                            reports: Sequence[Delivery] = ()) -> None:
        await self._run("ups_subscribe", lambda conn: ups.subscribe(
            conn, aet, workitem, deletion_lock, reports=reports, me=self.me),
            transaction=bool(reports))

    async def ups_subscribe_global(self, sub: UPSGlobalSubscription,
                                   workitems: Sequence[str],
                                   reports: Sequence[Delivery] = ()) -> None:
        await self._run("ups_subscribe_global", lambda conn: ups.subscribe_global(
            conn, sub, workitems, reports, self.me), transaction=True)

    async def ups_unsubscribe(self, aet: str, workitem: str) -> bool:
        return bool(await self._run("ups_unsubscribe",
                                    lambda conn: ups.unsubscribe(conn, aet, workitem)))

    async def ups_unsubscribe_global(self, aet: str) -> int:
        return int(await self._run("ups_unsubscribe_global",
                                   lambda conn: ups.unsubscribe_global(conn, aet),
                                   transaction=True))

    async def ups_suspend_global(self, aet: str) -> bool:
        return bool(await self._run("ups_suspend_global",
                                    lambda conn: ups.suspend_global(conn, aet)))

    async def ups_subscribers(self, workitem: str) -> list[tuple[str, bool]]:
        found: list[tuple[str, bool]] = await self._run(
            "ups_subscribers", lambda conn: ups.subscribers(conn, workitem))
        return found

    async def ups_global_subscriptions(self) -> list[UPSGlobalSubscription]:
        found: list[UPSGlobalSubscription] = await self._run(
            "ups_global_subscriptions", ups.global_subscriptions)
        return found

    async def ups_created(self, workitem: str, subscribers: Sequence[tuple[str, bool]],
                          reports: Sequence[Delivery] = ()) -> None:
        subs = [(workitem, aet, lock) for aet, lock in subscribers]
        await self._run("ups_created", lambda conn: ups.created(conn, subs, reports, self.me),
                        transaction=True)

    async def ups_queue(self, reports: Sequence[Delivery], *, owner: str | None = None,
                        lease_until: float | None = None) -> int:
        return int(await self._run("ups_queue", lambda conn: ups.queue(
            conn, reports, self.me, owner=owner, lease_until=lease_until)))

    async def ups_locked(self) -> set[str]:
        found: set[str] = await self._run("ups_locked", ups.locked)
        return found

    async def ups_subscriber_aets(self) -> list[str]:
        found: list[str] = await self._run("ups_subscriber_aets", ups.subscriber_aets)
        return found

    # -- the delivery queue

    def _item(self, item: Delivery, owner: str | None, lease_until: float | None
              ) -> tuple[Any, ...]:
        """``_INSERT_DELIVERY``'s arguments; announced unless leased here at once."""
        return (item.kind, item.key, item.destination, item.ordering, item.sop_class,
                item.sop_instance, item.event_type, item.payload, item.created_at,
                item.deadline, item.next_attempt, owner, lease_until,
                self.me if owner is None else None)

    async def enqueue(self, item: Delivery, *, owner: str | None = None,
                      lease_until: float | None = None) -> bool:
        row = await self._run("enqueue", lambda conn: conn.fetchrow(
            _INSERT_DELIVERY, *self._item(item, owner, lease_until)))
        return row is not None

    async def claim_due(self, owner: str, now: float, lease: float, limit: int, *,
                        per_destination: int | None = None,
                        max_destinations: int | None = None,
                        destination: str | None = None,
                        skip_destinations: Collection[str] = (),
                        held: Collection[int] = ()) -> list[Delivery]:
        query, params = _DUE, [now, owner]
        if destination is not None:
            query += " AND destination = $3"
            params.append(destination)
        held, skip = frozenset(held), frozenset(skip_destinations)
        if held:  # not locked either: their couriers record them meanwhile, unblocked
            query += f" AND id <> ALL(${len(params) + 1}::bigint[])"
            params.append(sorted(held))

        async def do(conn: Any) -> list[Delivery]:
            plan = ClaimPlan(limit, per_destination=per_destination,
                             max_destinations=max_destinations, destination=destination,
                             skip_destinations=skip, held=held)
            full = False  # every destination it may take is chosen: read only theirs now
            seen: set[tuple[str, str]] = set()  # groups read (both scans)
            # a claim among many destinations stops at the first one too many
            first = _PAGE if max_destinations is None else min(_PAGE, max_destinations + 1)
            due = _due_rows(conn, query, params, plan.wanted, seen, first=first)
            async with contextlib.aclosing(due) as rows:
                async for id_, dest, ordering, ahead in rows:
                    if plan.full(dest):
                        full = True
                        break
                    plan.take(id_, dest, ordering, ahead)
                    if plan.done():
                        break
            chosen_dests = plan.chosen_destinations() if full else []
            if chosen_dests and not plan.done():  # theirs, in one scan (earliest first)
                mine = _due_rows(conn, query + f" AND destination = ANY(${len(params) + 1}"
                                 "::text[])", [*params, chosen_dests], plan.wanted, seen)
                async with contextlib.aclosing(mine) as theirs:
                    async for id_, dest_, ordering, ahead in theirs:
                        plan.take(id_, dest_, ordering, ahead)
                        if plan.done():
                            break
            chosen = plan.chosen
            if not chosen:
                return []
            rows = await conn.fetch(
                "UPDATE deliveries SET lease_owner = $1, lease_until = $2 "
                "WHERE id = ANY($3::bigint[]) RETURNING *", owner, now + lease, chosen)
            by_id = {row["id"]: row for row in rows}
            return [_delivery(by_id[i]) for i in chosen]
        claimed: list[Delivery] = await self._run("claim_due", do, transaction=True)
        return claimed

    async def renew_leases(self, owner: str, ids: Sequence[int], until: float) -> None:
        await self._run("renew_leases", lambda conn: conn.execute(
            "UPDATE deliveries SET lease_until = $1 WHERE id = ANY($2::bigint[]) "
            "AND lease_owner = $3 AND state = 'pending'", until, list(ids), owner))

    async def next_due(self) -> float | None:
        value = await self._run("next_due", lambda conn: conn.fetchval(
            "SELECT min(greatest(next_attempt, coalesce(lease_until, 0))) FROM deliveries "
            "WHERE state = 'pending'"))
        return None if value is None else float(value)

    async def mark_delivered(self, id: int, result: Mapping[str, Any] | None,
                             now: float) -> None:
        await self._mark("mark_delivered", [(id, result)], now)

    async def mark_delivered_many(self, marks: Sequence[tuple[int, Mapping[str, Any] | None]],
                                  now: float) -> None:
        await self._mark("mark_delivered_many", marks, now)

    async def _mark(self, name: str, marks: Sequence[tuple[int, Mapping[str, Any] | None]],
                    now: float) -> None:
        ids = [id_ for id_, _ in marks]
        texts = [None if result is None else json.dumps(dict(result)) for _, result in marks]
        await self._run(name, lambda conn: conn.execute(  # one statement
            "UPDATE deliveries AS d SET state = $1, delivered_at = $2, result = m.result, "
            "attempts = d.attempts + 1, lease_owner = NULL, lease_until = NULL "
            "FROM unnest($3::bigint[], $4::text[]) AS m(id, result) WHERE d.id = m.id",
            DELIVERED, now, ids, texts))

    async def reschedule(self, id: int, next_attempt: float, error: str) -> None:
        await self._run("reschedule", lambda conn: conn.execute(
            "UPDATE deliveries SET next_attempt = $1, last_error = $2, "
            "attempts = attempts + 1, lease_owner = NULL, lease_until = NULL WHERE id = $3",
            next_attempt, error, id))

    async def expire(self, id: int, error: str) -> None:
        await self._run("expire", lambda conn: conn.execute(
            "UPDATE deliveries SET state = $1, last_error = $2, attempts = attempts + 1, "
            "lease_owner = NULL, lease_until = NULL WHERE id = $3", EXPIRED, error, id))

    async def reset_for_start(self, now: float) -> int:
        """Every pending item due now; but leases are kept: other nodes may be running
        (a start of one node is no start of all), and a dead one's run out by
        themselves, when any node takes its items."""
        async def do(conn: Any) -> int:
            await conn.execute("UPDATE deliveries SET next_attempt = least(next_attempt, $1) "
                               "WHERE state = 'pending' AND next_attempt > $1", now)
            count = int(await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE state = 'pending'"))
            if count:
                await conn.execute(_NOTIFY, self.me)
            return count
        return int(await self._run("reset_for_start", do, transaction=True))

    async def release_leases(self, owner: str, ids: Sequence[int] | None = None) -> None:
        # one statement; others are told only when something was given up
        which = "" if ids is None else " AND id = ANY($3::bigint[])"
        args = (owner, self.me) if ids is None else (owner, self.me, list(ids))
        await self._run("release_leases", lambda conn: conn.fetch(
            "WITH u AS (UPDATE deliveries SET lease_owner = NULL, lease_until = NULL "
            f"WHERE lease_owner = $1{which} RETURNING 1) "
            f"SELECT pg_notify('{CHANNEL}', $2) FROM (SELECT 1 FROM u LIMIT 1) s", *args))

    async def count_pending(self) -> int:
        return int(await self._run("count_pending", lambda conn: conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE state = 'pending'")))

    async def watch(self, wake: Callable[[], None]) -> None:
        self._listener.add(wake)

    async def unwatch(self, wake: Callable[[], None]) -> None:
        await self._listener.remove(wake)

    async def delivery_state(self, kind: str, key: str) -> DeliveryState | None:
        row = await self._run("delivery_state", lambda conn: conn.fetchrow(
            "SELECT state, attempts, last_error FROM deliveries WHERE kind = $1 AND key = $2",
            kind, key))
        return _state(row)


class _Known(Exception):
    """Rolls back a write whose key is known already (the call then returns False)."""


async def _swap(conn: Any, uid: str, change: Callable[[MPPSRow | None], MPPSRow | T],
                now: float, allowance: Allowance | None) -> MPPSRow | T:
    """Read, change, write if nobody wrote between (the row's ``xmin`` is the same),
    else again: two round trips, no transaction held open while ``change`` runs,
    the write charged to ``allowance`` in its own statement. ``change`` is pure
    (MPPSStore), so calling it again is safe."""
    while True:
        r = await conn.fetchrow("SELECT *, xmin::text AS seen FROM mpps "
                                "WHERE sop_instance_uid = $1", uid)
        new = change(None if r is None else _mpps(r))
        if not isinstance(new, MPPSRow):
            return new
        if allowance is None:
            if r is None or await conn.execute(
                    _MPPS_SWAP, new.status, new.dataset, now, uid, r["seen"]) == "UPDATE 1":
                return new
            continue
        nbytes = len(new.dataset)
        with _quota(allowance, nbytes):
            if r is None:  # nothing to write, but charged as SQLite's transaction is
                await conn.execute(f"SELECT {_charge_call(1)}",
                                   *_charge_args(allowance, now, nbytes))
                return new
            if await conn.fetchrow(_CHARGED_MPPS_SWAP, new.status, new.dataset, now, uid,
                                   r["seen"], *_charge_args(allowance, now, nbytes)):
                return new


def _mpps(r: Any) -> MPPSRow:
    return MPPSRow(sop_instance_uid=r["sop_instance_uid"], status=r["status"],
                   dataset=r["dataset"], calling_aet=r["calling_aet"])


async def _due_rows(conn: Any, query: str, params: list[Any],
                    wanted: Callable[[str], bool], seen: set[tuple[str, str]], *,
                    first: int = _PAGE) -> Any:
    """The due rows, earliest first, locked as they are read (a backlog is neither
    loaded nor locked whole); an ordered group's due items all where its first one
    comes, in queue order (a later item may be due before the one it waits for). A
    group of a destination not ``wanted`` (asked when it comes) is passed over
    unread and unlocked (id -1), as SQLite's claim does (``claim_plan``). Groups in
    ``seen`` are not yielded again (added to as they come). A group of one pending
    item (a UPS fan-out: one per subscriber) is that row: no round trip to read it.
    The first page is ``first`` rows (each read is locked, a write, so no more than
    the claim is likely to use), the next ones ``_PAGE``."""
    group = query + f" AND destination = ${len(params) + 1} AND ordering = " \
                    f"${len(params) + 2} ORDER BY id" + _LOCK
    async for row in _pages(conn, query + " ORDER BY next_attempt, id" + _LOCK, params,
                            first):
        dest, ordering = row[1], row[2]
        if ordering is None:
            yield row[0], dest, None, 0
        elif (dest, ordering) not in seen:
            seen.add((dest, ordering))
            if not wanted(dest):
                yield -1, dest, ordering, -1
                continue
            if row[3] == 0 and not row[4]:
                yield row[0], dest, ordering, 0
                continue
            for item in await conn.fetch(group, *params, dest, ordering):
                yield item[0], item[1], item[2], item[3]


async def _pages(conn: Any, query: str, params: list[Any], first: int) -> Any:
    """The rows of ``query``, read ``first`` and then ``_PAGE`` at a time."""
    cursor = await conn.cursor(query, *params)
    size = first
    while True:
        rows = await cursor.fetch(size)
        for row in rows:
            yield row
        if len(rows) < size:
            return
        size = _PAGE
