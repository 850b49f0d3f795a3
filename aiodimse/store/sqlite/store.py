"""``SQLiteStore``: the store interface over one SQLite file, on a thread of its own.

Every call runs on one dedicated thread, in order, so the event loop never waits on
the disk and the blocking ``SQLiteDatabase`` is used from one thread at a time.
``sqlite3.Error`` comes out as ``StoreError``, ``full`` when SQLite says the disk
or database is full (``is_full``).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ...observe import Observer, tell
from ..archive_sql import FIRST_BATCH, MAX_BATCH, batches
from ..interface import (
    Allowance,
    Commitment,
    Delivery,
    DeliveryState,
    IndexedFile,
    MPPSRow,
    StoreError,
    UPSGlobalSubscription,
    WorkitemQuery,
    WorkitemRow,
)
from ..records import IndexQuery, InstanceRecord, RetrieveItem, Row
from .database import SQLiteDatabase, is_full
from .schema import SchemaError

__all__ = ["SQLiteStore", "open_path", "FIRST_BATCH", "MAX_BATCH"]

T = TypeVar("T")
Q = TypeVar("Q")


def open_path(path: str | Path, *, create: bool = True) -> SQLiteStore:
    """Open the database file at ``path`` (made, with its folder, if ``create``)."""
    path = Path(path)
    if not create and not path.is_file():
        raise StoreError(f"no aiodimse database at {path}")
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(SQLiteDatabase(path))
    except (sqlite3.Error, SchemaError, OSError) as exc:
        full = isinstance(exc, sqlite3.Error) and is_full(exc)
        raise StoreError(f"cannot open the database {path}: {exc}", full=full) from exc


class SQLiteStore:
    """Implements ``aiodimse.store.interface.Store``; ``db`` is the blocking database."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiodimse-store")
        # aiodimse.observe: told how long each call took (store_call); None: not timed
        self.observer: Observer | None = None

    @classmethod
    def in_directory(cls, directory: str | Path) -> SQLiteStore:
        return cls(SQLiteDatabase.in_directory(directory))

    async def call(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` (usually a ``db`` method) on the store thread."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()  # queueing behind earlier calls included: what callers wait
        try:
            return await loop.run_in_executor(self._executor,
                                              functools.partial(func, *args, **kwargs))
        except sqlite3.Error as exc:
            raise StoreError(str(exc), full=is_full(exc)) from exc
        finally:
            if self.observer is not None:
                tell(self.observer, "store_call", getattr(func, "__name__", "?"),
                     time.monotonic() - started)

    async def aclose(self) -> None:
        """Finish queued calls, then close the database."""
        await self.call(self.db.close)
        self._executor.shutdown(wait=False)

    # -- instance index

    async def add_instances(self, rows: Iterable[tuple[str, str, str | None]],
                            now: float) -> int:
        return await self.call(self.db.add_instances, list(rows), now)

    async def add_files(self, rows: Iterable[IndexedFile], now: float) -> int:
        return await self.call(self.db.add_files, list(rows), now)

    async def file_stats(self, paths: Sequence[str]) -> dict[str, tuple[int, int]]:
        return await self.call(self.db.file_stats, paths)

    async def set_index_complete(self, complete: bool) -> None:
        await self.call(self.db.set_index_complete, complete)

    async def index_complete(self) -> bool:
        return await self.call(self.db.index_complete)

    async def find_instances(self, instance_uids: Sequence[str]) -> dict[str, str]:
        return await self.call(self.db.find_instances, instance_uids)

    async def count_instances(self) -> int:
        return await self.call(self.db.count_instances)

    # -- the archive index

    async def add_records(self, records: Iterable[InstanceRecord], now: float) -> int:
        return await self.call(self.db.add_records, list(records), now)

    async def index_instance(self, record: InstanceRecord, now: float) -> str | None:
        return await self.call(self.db.index_instance, record, now)

    async def archived_path(self, sop_instance_uid: str) -> str | None:
        return await self.call(self.db.archived_path, sop_instance_uid)

    async def remove_instance(self, sop_instance_uid: str) -> bool:
        return await self.call(self.db.remove_instance, sop_instance_uid)

    def match(self, query: IndexQuery) -> AsyncIterator[Row]:
        return self._batches(self.db.match_batch, query)

    def ups_match(self, query: WorkitemQuery) -> AsyncIterator[WorkitemRow]:
        return self._batches(self.db.ups_match_batch, query)

    def retrieve(self, query: IndexQuery) -> AsyncIterator[RetrieveItem]:
        return self._batches(self.db.retrieve_batch, query)

    def _batches(self, read: Callable[[Q, int, int], tuple[list[T], int]],
                 query: Q) -> AsyncIterator[T]:
        """``read``'s rows in ``archive_sql.batches`` (on the store thread)."""
        return batches(lambda after, size: self.call(read, query, after, size))

    async def count_retrieve(self, query: IndexQuery) -> int:
        return await self.call(self.db.count_retrieve, query)

    # -- commitment transactions

    async def add_commitment(self, commitment: Commitment, report: Delivery, *,
                             owner: str | None = None, lease_until: float | None = None,
                             allowance: Allowance | None = None) -> bool:
        return await self.call(self.db.add_commitment, commitment, report, owner=owner,
                               lease_until=lease_until, allowance=allowance)

    async def commitment_state(self, transaction_uid: str) -> DeliveryState | None:
        return await self.call(self.db.commitment_state, transaction_uid)

    # -- MPPS

    async def mpps_create(self, row: MPPSRow, now: float,
                          allowance: Allowance | None = None) -> bool:
        return await self.call(self.db.mpps_create, row, now, allowance)

    async def mpps_get(self, sop_instance_uid: str) -> MPPSRow | None:
        return await self.call(self.db.mpps_get, sop_instance_uid)

    async def mpps_update(self, sop_instance_uid: str,
                          change: Callable[[MPPSRow | None], MPPSRow | T], now: float,
                          allowance: Allowance | None = None) -> MPPSRow | T:
        return await self.call(self.db.mpps_update, sop_instance_uid, change, now, allowance)

    # -- UPS workitems

    async def ups_create(self, row: WorkitemRow, now: float) -> bool:
        return await self.call(self.db.ups_create, row, now)

    async def ups_get(self, sop_instance_uid: str) -> WorkitemRow | None:
        return await self.call(self.db.ups_get, sop_instance_uid)

    async def ups_update(self, sop_instance_uid: str,
                         change: Callable[[WorkitemRow | None], WorkitemRow | T],
                         now: float) -> WorkitemRow | T:
        return await self.call(self.db.ups_update, sop_instance_uid, change, now)

    async def ups_purge(self, before: float, limit: int) -> int:
        return await self.call(self.db.ups_purge, before, limit)

    # -- UPS subscriptions

    async def ups_subscribe(self, aet: str, workitem: str, deletion_lock: bool,
                            reports: Sequence[Delivery] = ()) -> None:
        await self.call(self.db.ups_subscribe, aet, workitem, deletion_lock, list(reports))

    async def ups_subscribe_global(self, sub: UPSGlobalSubscription,
                                   workitems: Sequence[str],
                                   reports: Sequence[Delivery] = ()) -> None:
        await self.call(self.db.ups_subscribe_global, sub, list(workitems), list(reports))

    async def ups_unsubscribe(self, aet: str, workitem: str) -> bool:
        return await self.call(self.db.ups_unsubscribe, aet, workitem)

    async def ups_unsubscribe_global(self, aet: str) -> int:
        return await self.call(self.db.ups_unsubscribe_global, aet)

    async def ups_suspend_global(self, aet: str) -> bool:
        return await self.call(self.db.ups_suspend_global, aet)

    async def ups_subscribers(self, workitem: str) -> list[tuple[str, bool]]:
        return await self.call(self.db.ups_subscribers, workitem)

    async def ups_global_subscriptions(self) -> list[UPSGlobalSubscription]:
        return await self.call(self.db.ups_global_subscriptions)

    async def ups_created(self, workitem: str, subscribers: Sequence[tuple[str, bool]],
                          reports: Sequence[Delivery] = ()) -> None:
        await self.call(self.db.ups_created, workitem, list(subscribers), list(reports))

    async def ups_queue(self, reports: Sequence[Delivery], *, owner: str | None = None,
                        lease_until: float | None = None) -> int:
        return await self.call(self.db.ups_queue, list(reports), owner, lease_until)

    async def ups_locked(self) -> set[str]:
        return await self.call(self.db.ups_locked)

    async def ups_subscriber_aets(self) -> list[str]:
        return await self.call(self.db.ups_subscriber_aets)

    # -- the delivery queue

    async def enqueue(self, item: Delivery, *, owner: str | None = None,
                      lease_until: float | None = None) -> bool:
        return await self.call(self.db.enqueue, item, owner=owner, lease_until=lease_until)

    async def claim_due(self, owner: str, now: float, lease: float, limit: int, *,
                        per_destination: int | None = None,
                        max_destinations: int | None = None,
                        destination: str | None = None,
                        skip_destinations: Collection[str] = (),
                        held: Collection[int] = ()) -> list[Delivery]:
        return await self.call(
            self.db.claim_due, owner, now, lease, limit, per_destination=per_destination,
            max_destinations=max_destinations, destination=destination,
            skip_destinations=frozenset(skip_destinations), held=frozenset(held),
        )

    async def renew_leases(self, owner: str, ids: Sequence[int], until: float) -> None:
        await self.call(self.db.renew_leases, owner, list(ids), until)

    async def next_due(self) -> float | None:
        return await self.call(self.db.next_due)

    async def mark_delivered(self, id: int, result: Mapping[str, Any] | None,
                             now: float) -> None:
        await self.call(self.db.mark_delivered, id, result, now)

    async def mark_delivered_many(self, marks: Sequence[tuple[int, Mapping[str, Any] | None]],
                                  now: float) -> None:
        await self.call(self.db.mark_delivered_many, list(marks), now)

    async def reschedule(self, id: int, next_attempt: float, error: str) -> None:
        await self.call(self.db.reschedule, id, next_attempt, error)

    async def expire(self, id: int, error: str) -> None:
        await self.call(self.db.expire, id, error)

    async def reset_for_start(self, now: float) -> int:
        return await self.call(self.db.reset_for_start, now)

    async def release_leases(self, owner: str, ids: Sequence[int] | None = None) -> None:
        await self.call(self.db.release_leases, owner, None if ids is None else list(ids))

    async def count_pending(self) -> int:
        return await self.call(self.db.count_pending)

    async def watch(self, wake: Callable[[], None]) -> None:
        """Nothing: workers sharing the file find each other's work by polling."""

    async def unwatch(self, wake: Callable[[], None]) -> None:
        """Nothing to stop (``watch`` started nothing)."""

    async def delivery_state(self, kind: str, key: str) -> DeliveryState | None:
        return await self.call(self.db.delivery_state, kind, key)
