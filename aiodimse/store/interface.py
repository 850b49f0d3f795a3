"""What the services ask of a store, one Protocol per concern; backends implement them.

Every method is async: a backend may run blocking calls in a thread (SQLite) or
talk to a server (PostgreSQL). Records are frozen dataclasses, so no backend's row
type leaks into a service.

Failures: a backend raises ``StoreError`` for any failure of its storage, saying
whether the storage is out of room (``full``) or cannot be reached for now
(``unavailable``: a database server down; the backend reconnects by itself); the
services answer it with one documented mapping (``services/store_status.py``), so
no backend knows DIMSE. A write past an ``Allowance`` raises ``QuotaExceeded`` and
writes nothing. Nothing else escapes a backend for a storage problem.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .records import IndexQuery, InstanceRecord, RetrieveItem, Row

if TYPE_CHECKING:
    from ..observe import Observer

__all__ = [
    "COMMITMENT_KIND",
    "PENDING",
    "DELIVERED",
    "EXPIRED",
    "StoreError",
    "QuotaExceeded",
    "Allowance",
    "Commitment",
    "MPPSRow",
    "WorkitemRow",
    "WorkitemQuery",
    "Delivery",
    "DeliveryState",
    "IndexedFile",
    "InstanceIndex",
    "ArchiveIndex",
    "CommitmentStore",
    "MPPSStore",
    "UPSWorkitems",
    "UPSRetention",
    "DeliveryQueue",
    "Store",
    "UPSGlobalSubscription",
    "UPSSubscriptions",
]

T = TypeVar("T")

COMMITMENT_KIND = "commitment"
"""The ``Delivery.kind`` of storage commitment reports."""

# States of a queued delivery.
PENDING = "pending"
DELIVERED = "delivered"
EXPIRED = "expired"

DeliveryState = tuple[str, int, str | None]
"""(state, attempts, last error) of one queued delivery."""

IndexedFile = tuple[str, str, str, int, int]
"""(SOP Class UID, SOP Instance UID, path, size, mtime in ns) of one file indexed."""


class StoreError(Exception):
    """The store failed. ``full``: it is out of room (disk, database or a backend's
    size limit), which waiting or freeing space cures; ``unavailable``: it cannot be
    reached now (a database server down or unreachable), which waiting cures; else
    anything else. Nothing was written either way."""

    def __init__(self, message: str, *, full: bool = False,
                 unavailable: bool = False) -> None:
        super().__init__(message)
        self.full = full
        self.unavailable = unavailable


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowance:
    """What one calling AE may write to one service: ``max_bytes`` per ``window`` s."""

    calling_aet: str
    service: str
    max_bytes: int
    window: float


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
class Commitment:
    """One accepted storage commitment request (its report is a ``Delivery``)."""

    transaction_uid: str
    calling_aet: str
    refs: tuple[tuple[str, str], ...]  # (SOP Class UID, SOP Instance UID)
    received_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MPPSRow:
    """One stored MPPS instance; ``dataset`` is DICOM JSON."""

    sop_instance_uid: str
    status: str
    dataset: str
    calling_aet: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkitemRow:
    """One stored UPS workitem: its data set encoded (Explicit VR Little Endian,
    without the Transaction UID, which only the lock column holds) and the columns
    queries narrow by."""

    sop_instance_uid: str
    state: str
    transaction_uid: str | None
    dataset: bytes
    patient_id: str = ""
    scheduled_start: str = ""  # Scheduled Procedure Step Start DateTime, as sent
    worklist_label: str = ""
    calling_aet: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkitemQuery:
    """What a store narrows a UPS C-FIND to before the exact matching (which
    ``services/ups/matching.py`` does on each row's data set): any of ``uids`` and
    of ``states`` (empty: any), an exact Patient ID and Worklist Label, and
    ``start_from``/``start_to`` compared with as many leading characters of the
    Scheduled Procedure Step Start DateTime as the bound has."""

    uids: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    patient_id: str | None = None
    worklist_label: str | None = None
    start_from: str | None = None
    start_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One N-EVENT-REPORT in the outbound queue.

    ``kind`` names the service that queued it and builds the report from
    ``payload`` when it is sent (a commitment's references, a UPS event's DICOM
    JSON); ``key`` is unique per kind. Items of one ``destination`` with the same
    ``ordering`` key are delivered in queue order, and one that fails holds back
    those after it; None: no order with any other item. ``id`` is given by the
    queue (0 until then) and orders it.
    """

    kind: str
    key: str
    destination: str  # AE title, looked up in the AE table
    sop_class: str
    sop_instance: str
    payload: str
    event_type: int = 0  # where known when queued; else the kind decides when sending
    ordering: str | None = None
    created_at: float
    deadline: float
    next_attempt: float
    attempts: int = 0
    last_error: str | None = None
    id: int = 0


class InstanceIndex(Protocol):
    """Which instances are held: SOP Instance UID -> SOP Class UID."""

    async def add_instances(self, rows: Iterable[tuple[str, str, str | None]],
                            now: float) -> int:
        """Insert or replace (SOP Class UID, SOP Instance UID, path) rows; the count."""
        ...

    async def find_instances(self, instance_uids: Sequence[str]) -> dict[str, str]:
        """SOP Instance UID -> SOP Class UID for those of ``instance_uids`` indexed."""
        ...

    async def add_files(self, rows: Iterable[IndexedFile], now: float) -> int:
        """``add_instances`` for files, remembering each file's size and mtime (a
        file that held another instance before stops vouching for that one)."""
        ...

    async def file_stats(self, paths: Sequence[str]) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime in ns) when indexed, for those of ``paths`` indexed:
        a file whose stat still says so need not be read again."""
        ...

    async def set_index_complete(self, complete: bool) -> None:
        """Record whether the index is complete (False while ``serve``'s start-up
        scan runs, so reports that rely on it wait: docs/cli.md)."""
        ...

    async def index_complete(self) -> bool:
        """What ``set_index_complete`` recorded last; True if it never was."""
        ...

    async def count_instances(self) -> int: ...


class ArchiveIndex(InstanceIndex, Protocol):
    """The instance index with each instance's Query/Retrieve attributes
    (``records.KEYS``): the archive writer and the indexer fill it, the query
    engine asks it. Matches stream: a backend reads them in bounded batches."""

    async def add_records(self, records: Iterable[InstanceRecord], now: float) -> int:
        """Index (or re-index) each instance with its attributes and its file's stat,
        in one transaction; a patient, study or series left without instances goes."""
        ...

    async def index_instance(self, record: InstanceRecord, now: float) -> str | None:
        """``add_records([record], now)`` that also says where the instance's file
        was before (None if it was not indexed), read in the same transaction: the
        archive writer's one call per stored instance."""
        ...

    async def archived_path(self, sop_instance_uid: str) -> str | None:
        """Where an indexed instance's file is, None if not indexed (or no file)."""
        ...

    async def remove_instance(self, sop_instance_uid: str) -> bool:
        """Forget an instance (and its file's stat); False if it was not indexed."""
        ...

    def match(self, query: IndexQuery) -> AsyncIterator[Row]:
        """The entities of ``query.level`` meeting its conditions, with the values
        of its keys, in a stable order, read in batches as the caller takes them."""
        ...

    def retrieve(self, query: IndexQuery) -> AsyncIterator[RetrieveItem]:
        """The instances under the entities ``query`` matches (files known only)."""
        ...

    async def count_retrieve(self, query: IndexQuery) -> int:
        """How many items ``retrieve(query)`` gives (C-GET/C-MOVE sub-operations)."""
        ...


class CommitmentStore(Protocol):
    """Storage commitment transactions."""

    async def add_commitment(self, commitment: Commitment, report: Delivery, *,
                             owner: str | None = None, lease_until: float | None = None,
                             allowance: Allowance | None = None) -> bool:
        """Record an accepted request and queue its report, in one transaction.

        False (nothing written) if the Transaction UID is known. The report may be
        leased to ``owner`` at once. Raises QuotaExceeded past ``allowance``.
        """
        ...

    async def commitment_state(self, transaction_uid: str) -> DeliveryState | None:
        """The state of a transaction's report, or None if the transaction is unknown."""
        ...


class MPPSStore(Protocol):
    """MPPS instances; a write may be charged to an ``Allowance``."""

    async def mpps_create(self, row: MPPSRow, now: float,
                          allowance: Allowance | None = None) -> bool:
        """Store a new instance; False if its SOP Instance UID exists."""
        ...

    async def mpps_get(self, sop_instance_uid: str) -> MPPSRow | None: ...

    async def mpps_update(self, sop_instance_uid: str,
                          change: Callable[[MPPSRow | None], MPPSRow | T], now: float,
                          allowance: Allowance | None = None) -> MPPSRow | T:
        """Read, change and write one instance in one transaction.

        ``change`` gets the current row (None if absent) and returns the new row, or
        anything else to leave the store as it was (that value is returned).
        """
        ...


class UPSWorkitems(Protocol):
    """Unified Procedure Step workitems; each change is one transaction."""

    async def ups_create(self, row: WorkitemRow, now: float) -> bool:
        """Store a new workitem; False (nothing written) if its UID exists."""
        ...

    async def ups_get(self, sop_instance_uid: str) -> WorkitemRow | None: ...

    async def ups_update(self, sop_instance_uid: str,
                         change: Callable[[WorkitemRow | None], WorkitemRow | T],
                         now: float) -> WorkitemRow | T:
        """Read, change and write one workitem as one transaction: ``change`` gets
        the current row (None if absent) and returns the new row, or anything else
        to leave the store as it was (that value is returned). ``change`` must be
        pure: a backend may call it again on the row another worker or node wrote
        meanwhile (PostgreSQL's compare-and-set)."""
        ...

    def ups_match(self, query: WorkitemQuery) -> AsyncIterator[WorkitemRow]:
        """The workitems ``query`` narrows to, oldest first, read in batches."""
        ...


class UPSRetention(Protocol):
    """Deleting workitems past their keeping. Apart from ``UPSWorkitems`` so a
    backend without it still serves UPS (the service then keeps every workitem)."""

    async def ups_purge(self, before: float, limit: int) -> int:
        """Delete, in one transaction, up to ``limit`` COMPLETED or CANCELED workitems
        last changed before ``before`` that no subscriber holds a deletion lock on
        (PS3.4 CC.2.1.3), with their subscriptions; how many were deleted."""
        ...


class DeliveryQueue(Protocol):
    """Outbound N-EVENT-REPORTs, shared by every worker (and node) using the store.

    A worker claims due items under a lease (``owner``, until a time); another may
    take an item only once its lease ran out, so a crashed worker's items are
    delivered by the others. Times are wall-clock seconds (``time.time()``).
    """

    async def enqueue(self, item: Delivery, *, owner: str | None = None,
                      lease_until: float | None = None) -> bool:
        """Queue ``item``; False (nothing written) if its (kind, key) is queued already."""
        ...

    async def claim_due(self, owner: str, now: float, lease: float, limit: int, *,
                        per_destination: int | None = None,
                        max_destinations: int | None = None,
                        destination: str | None = None,
                        skip_destinations: Collection[str] = (),
                        held: Collection[int] = ()) -> list[Delivery]:
        """Lease up to ``limit`` due items not leased by another owner, earliest first.

        At most ``per_destination`` for one destination, from at most
        ``max_destinations``; only ``destination``'s if given; none for
        ``skip_destinations`` nor the ids in ``held`` (being delivered here). An
        item with an ``ordering`` key is taken only with every pending item before
        it in its (destination, ordering) group, in queue order.
        """
        ...

    async def renew_leases(self, owner: str, ids: Sequence[int], until: float) -> None:
        """Extend ``owner``'s leases on items it is still delivering."""
        ...

    async def next_due(self) -> float | None:
        """When the earliest pending item is due (or its lease ends), None if none."""
        ...

    async def mark_delivered(self, id: int, result: Mapping[str, Any] | None,
                             now: float) -> None: ...

    async def mark_delivered_many(self, marks: Sequence[tuple[int, Mapping[str, Any] | None]],
                                  now: float) -> None:
        """``mark_delivered`` for each (id, result), in one transaction (one round trip)."""
        ...

    async def reschedule(self, id: int, next_attempt: float, error: str) -> None:
        """A failed attempt: try again at ``next_attempt``; the lease is given up."""
        ...

    async def expire(self, id: int, error: str) -> None:
        """The deadline passed: stop trying (the item is kept for the record)."""
        ...

    async def reset_for_start(self, now: float) -> int:
        """A fresh start (no other worker running): every pending item is due now,
        whoever leased it before. Returns how many are pending. A backend shared by
        nodes (PostgreSQL) keeps the leases: other nodes may be running, and a dead
        one's run out by themselves."""
        ...

    async def release_leases(self, owner: str, ids: Sequence[int] | None = None) -> None:
        """Give up ``owner``'s leases (all, or on ``ids``) without counting an attempt."""
        ...

    async def count_pending(self) -> int: ...

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from the event loop) when work may have come that another
        worker or node queued or gave up, so a deliverer need not poll often. A
        backend without notifications does nothing (the deliverer's poll finds it)."""
        ...

    async def unwatch(self, wake: Callable[[], None]) -> None:
        """Stop calling ``wake``."""
        ...

    async def delivery_state(self, kind: str, key: str) -> DeliveryState | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class UPSGlobalSubscription:
    """One AE's global UPS subscription (PS3.4 CC.2.3): every workitem created from
    now on (``filter``: those matching it, DICOM JSON of the matching keys)."""

    aet: str
    deletion_lock: bool
    filter: str | None = None
    suspended: bool = False  # Suspend Global Subscription: no new workitems


class UPSSubscriptions(Protocol):
    """UPS subscriptions: per workitem, global and filtered global, with their
    deletion locks. A change and the reports it causes (``reports``, queued as by
    ``DeliveryQueue.enqueue``) are written in one transaction."""

    async def ups_subscribe(self, aet: str, workitem: str, deletion_lock: bool,
                            reports: Sequence[Delivery] = ()) -> None:
        """Subscribe ``aet`` to one workitem (again: its deletion lock is replaced)."""
        ...

    async def ups_subscribe_global(self, sub: UPSGlobalSubscription,
                                   workitems: Sequence[str],
                                   reports: Sequence[Delivery] = ()) -> None:
        """Record ``sub`` (replacing the AE's global one) and subscribe the AE to
        each of ``workitems`` (those existing now that it covers)."""
        ...

    async def ups_unsubscribe(self, aet: str, workitem: str) -> bool:
        """End one workitem subscription; False if there was none."""
        ...

    async def ups_unsubscribe_global(self, aet: str) -> int:
        """End the AE's global subscription and every workitem subscription of it;
        how many rows went."""
        ...

    async def ups_suspend_global(self, aet: str) -> bool:
        """Keep the AE's workitem subscriptions, stop the global one gaining new
        workitems; False if it had none."""
        ...

    async def ups_subscribers(self, workitem: str) -> list[tuple[str, bool]]:
        """(AE title, deletion lock) of each subscriber of ``workitem``."""
        ...

    async def ups_global_subscriptions(self) -> list[UPSGlobalSubscription]:
        """Every global subscription, suspended ones included."""
        ...

    async def ups_created(self, workitem: str, subscribers: Sequence[tuple[str, bool]],
                          reports: Sequence[Delivery] = ()) -> None:
        """A new workitem: subscribe each (AE title, deletion lock) to it."""
        ...

    async def ups_queue(self, reports: Sequence[Delivery], *, owner: str | None = None,
                        lease_until: float | None = None) -> int:
        """Queue ``reports`` in one transaction; how many were new. They may be
        leased to ``owner`` at once, as by ``DeliveryQueue.enqueue``."""
        ...

    async def ups_locked(self) -> set[str]:
        """The workitems some subscriber holds a deletion lock on."""
        ...

    async def ups_subscriber_aets(self) -> list[str]:
        """Every AE with a subscription of any kind (SCP Status Change goes to them)."""
        ...


class Store(ArchiveIndex, CommitmentStore, MPPSStore, UPSWorkitems, UPSSubscriptions,
            UPSRetention, DeliveryQueue, Protocol):
    """A backend holding every concern, as ``open_store`` returns it.

    ``observer``, when set, is told how long each call took (``store_call``, with the
    method's name), for the store latency metric.
    """

    observer: Observer | None

    async def aclose(self) -> None:
        """Finish what was asked, then close."""
        ...
