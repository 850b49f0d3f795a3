"""The durable N-EVENT-REPORT deliverer: queued reports to their destination AEs.

A service queues a ``Delivery`` in the store (in the transaction that records the
request it reports on, so an acknowledged request survives a crash) and calls
``queued``. The deliverer claims due items from the queue under a lease in its
owner's name, and delivers them: first on the association that asked, if still
open (``origin``), else on an association of its own to the destination (address
from the AE table, ``Peer``), proposing the SCP role for the report's SOP class
(the requestor of that association sends the N-EVENT-REPORT). A failed attempt is
retried with exponential backoff until the item's deadline; items a worker still
held when it stopped are taken by the next start, or by another worker once the
lease runs out. A report acknowledged while the store cannot be reached is
recorded as delivered once it answers again (tried until then, not given up to
the lease: a report acknowledged is not sent again, unless the worker stops first).
Acknowledged reports are recorded several at a time (``delivery_record``): each
waits at most for the store call in progress, and is held here until recorded.

Delivery is bounded: ``max_per_destination`` associations to one AE and
``max_concurrent`` in all, each carrying up to ``batch_size`` reports and then
the next ones due for that AE while it lasts. Items of one destination with the
same ordering key go in queue order: the queue hands them out in order, and a
failure holds back the rest of its group (they are released, not attempted).

Each report kind (``ReportKind``: a name, a SOP class) builds its reports from the
queued payloads when they are sent and hears of each outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.dataset import Dataset

from ..ae import AE
from ..association import Association
from ..errors import AiodimseError
from ..logs import get_logger
from ..observe import Observer, tell
from ..presentation import build_role
from ..status import is_performed
from ..store.interface import Delivery, DeliveryQueue, StoreError
from .delivery_record import Recorder

__all__ = ["Peer", "DeliveryPolicy", "Report", "ReportKind", "StoredReports", "Deliverer"]

log = get_logger("aiodimse.delivery")

Report = tuple[int, Dataset]
"""(Event Type ID, Event Information) of one N-EVENT-REPORT."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """Where an AE listens: one row of the AE table."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How reports are delivered; times in seconds."""

    same_association: bool = True  # try the requesting association first
    # Propose only the SCP role and send only if the peer accepted it (J.3.3). False:
    # propose both roles and send on whatever the peer accepted (for SCUs that do not
    # handle role selection, dcm4che #463).
    require_scp_role: bool = True
    retry_initial: float = 2.0  # first backoff; doubles per failed attempt
    retry_max: float = 300.0  # backoff ceiling
    deadline: float = 86400.0  # give up this long after the request was received
    lease: float = 180.0  # how long a worker owns a report it is delivering
    poll_interval: float = 5.0  # look for reports left by others (or a restart) this often
    max_concurrent: int = 8  # associations delivering reports at once, all destinations
    max_per_destination: int = 2  # ... to one calling AE (a modality is a small device)
    # Reports taken at a time for one association (sent one after another); the
    # association is kept for the next batch while more for that AE are due.
    batch_size: int = 32
    # Refuse (0x0124) a request from an AE that is not in the AE table: its report
    # can go only on the requesting association, and is lost if that is released first.
    refuse_unlisted_ae: bool = False

    def __post_init__(self) -> None:
        for name in ("max_concurrent", "max_per_destination", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")


class ReportKind(Protocol):
    """One service's reports: what ``Delivery.kind`` names, and their SOP class."""

    name: str
    sop_class: str

    async def build(self, items: Sequence[Delivery]) -> Sequence[Report]:
        """The report for each item, in order, just before they are sent."""
        ...

    def delivered(self, item: Delivery, report: Report) -> Mapping[str, Any] | None:
        """The destination took it; returns what to record as the result."""
        ...

    def failed(self, item: Delivery, error: str, *, expired: bool) -> None:
        """An attempt failed (``expired``: the last one, the deadline has passed)."""
        ...


class StoredReports:
    """Reports queued whole: ``payload`` is the Event Information as DICOM JSON and
    ``event_type`` the Event Type ID (what UPS event reports need)."""

    def __init__(self, name: str, sop_class: str) -> None:
        self.name, self.sop_class = name, sop_class

    async def build(self, items: Sequence[Delivery]) -> Sequence[Report]:
        return [(item.event_type, Dataset.from_json(item.payload)) for item in items]

    def delivered(self, item: Delivery, report: Report) -> Mapping[str, Any] | None:
        return None

    def failed(self, item: Delivery, error: str, *, expired: bool) -> None:
        return None


_SEND_ERRORS = (AiodimseError, TimeoutError, ValueError)  # a send that did not happen


class Deliverer:
    """Delivers the queued reports of its kinds: ``add_kind``, ``await start()``,
    ``queued(...)`` per item queued, ``await stop()``.

    ``reporter`` is the AE used for associations of our own (its title is the
    calling AE title; its timeouts apply); ``peers`` is the AE table.
    """

    def __init__(
        self,
        queue: DeliveryQueue,
        reporter: AE,
        peers: Mapping[str, Peer],
        policy: DeliveryPolicy | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self.queue = queue
        self.reporter = reporter
        self.peers = dict(peers)
        self.policy = policy or DeliveryPolicy()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.kinds: dict[str, ReportKind] = {}
        # The running couriers (one association each) per destination, the ids of the
        # items they hold (or that are acknowledged and being recorded: _recording), and
        # the requesting association of each fresh item.
        self._couriers: dict[str, set[asyncio.Task[None]]] = {}
        self._held: set[int] = set()
        self._recording: set[int] = set()
        self._recorder = Recorder(queue, self._recorded)
        self._origins: weakref.WeakValueDictionary[tuple[str, str], Association] = (
            weakref.WeakValueDictionary()
        )
        # Held while claiming: items claimed are leased to this owner, which other
        # claims of ours may take, until they are in _held.
        self._claiming = asyncio.Lock()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._users = 0  # services that started it and have not stopped it
        # Told of each attempt and its end (aiodimse.observe; key and destination as
        # the transaction UID and calling AE title of a commitment report).
        self.observer: Observer | None = None
        # While this says True, nothing is claimed (``aiodimse serve``: until its
        # start-up index scan is done, so no commitment report is built from an
        # index still being filled); asked each poll until it first says False.
        self.hold: Callable[[], Awaitable[bool]] | None = None

    def add_kind(self, kind: ReportKind) -> None:
        """Deliver ``kind``'s items too; the reporter proposes its SOP class."""
        if kind.name in self.kinds:
            raise ValueError(f"report kind {kind.name!r} is added already")
        self.kinds[kind.name] = kind
        if not any(c.abstract_syntax == kind.sop_class
                   for c in self.reporter.requested_contexts):
            self.reporter.add_requested_context(kind.sop_class)

    def queued(self, kind: str, key: str, origin: Association | None = None) -> None:
        """An item was queued: it is due now. ``origin``: the association it answers,
        tried first (``same_association``) while it is open."""
        if origin is not None and self.policy.same_association:
            self._origins[kind, key] = origin
        self._wake.set()

    def wake(self) -> None:
        """Look at the queue now (e.g. ``hold`` has just ended)."""
        self._wake.set()

    @property
    def delivering(self) -> int:
        """Associations delivering reports now."""
        return sum(len(group) for group in self._couriers.values())

    async def start(self) -> None:
        """Start delivering: pending items in the queue are picked up at once.

        Services sharing one deliverer each start and stop it: it runs until the
        last of them has stopped it."""
        self._users += 1
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="aiodimse-delivery")
            try:  # woken by other workers and nodes too, where the store can tell
                await self.queue.watch(self._wake.set)
            except StoreError as exc:  # the poll finds their work anyway
                log.warning("report queue notifications unavailable: %s", exc)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop; deliveries still running after ``grace`` s stay pending in the queue."""
        self._users = max(self._users - 1, 0)
        if self._users:
            return  # another service still uses it
        runner, self._runner = self._runner, None
        if runner is not None:
            await self.queue.unwatch(self._wake.set)
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        deadline = time.monotonic() + grace
        tasks = [t for group in self._couriers.values() for t in group]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # what was acknowledged is recorded before the leases go (else sent again);
        # given the rest of the grace, and half a second at least
        await self._recorder.drain(max(deadline - time.monotonic(), 0.5))
        try:
            await self.queue.release_leases(self.owner)
        except StoreError as exc:  # they run out by themselves
            log.error("report leases not released: %s", exc)

    # -- the runner: claims due items, hands them to couriers per destination ----------

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before polling: an item queued meanwhile wakes us
            try:
                delay = await self._poll()
            except StoreError as exc:  # e.g. locked past busy_timeout: try again later
                # an outage (unavailable) is logged once by the store, not each poll
                log.log(logging.DEBUG if exc.unavailable else logging.ERROR,
                        "report queue unavailable: %s", exc)
                delay = self.policy.poll_interval
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Until woken or ``delay`` s. Not ``wait_for``: before Python 3.12 it can
        swallow a cancellation that comes as the wake-up does (``stop()`` then hung)."""
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([waiter], timeout=delay)
        finally:
            waiter.cancel()

    async def _poll(self) -> float:
        """Start couriers for the due items; returns how long to sleep before looking again."""
        policy, queue = self.policy, self.queue
        if self.hold is not None:
            if await self.hold():
                return policy.poll_interval
            self.hold = None
        room = policy.max_concurrent - self.delivering
        if room > 0:
            full = frozenset(aet for aet, group in self._couriers.items()
                             if len(group) >= policy.max_per_destination)
            async with self._claiming:
                due = await queue.claim_due(
                    self.owner, time.time(), policy.lease, room * policy.batch_size,
                    per_destination=policy.batch_size, max_destinations=room,
                    skip_destinations=full, held=frozenset(self._held),
                )
                batches: dict[str, list[Delivery]] = {}
                for item in due:
                    batches.setdefault(item.destination, []).append(item)
                for aet, batch in batches.items():
                    self._start_courier(aet, batch)
        next_due = await queue.next_due()
        if next_due is None:
            return policy.poll_interval
        return min(max(next_due - time.time(), 0.02), policy.poll_interval)

    def _start_courier(self, aet: str, batch: list[Delivery]) -> None:
        self._held.update(item.id for item in batch)
        task = asyncio.create_task(self._courier(aet, batch), name=f"reports to {aet}")
        self._couriers.setdefault(aet, set()).add(task)

    # -- a courier: one association to one destination ---------------------------------

    async def _courier(self, aet: str, batch: list[Delivery]) -> None:
        """Deliver ``batch`` (and what else falls due for ``aet``) over one association,
        or a new one when what falls due needs a SOP class the first did not propose."""
        trip = _Trip(self, aet, self._classes(batch))
        try:
            while batch:
                marks = await self._deliver_batch(trip, batch)
                if not (trip.back is not None and trip.back.is_established):
                    break
                if marks:  # recorded first: the next of their ordered groups can go now
                    await asyncio.wait(marks)
                async with self._claiming:
                    batch = await self.queue.claim_due(
                        self.owner, time.time(), self.policy.lease, self.policy.batch_size,
                        destination=aet, held=frozenset(self._held),
                    )
                    self._held.update(item.id for item in batch)
                classes = self._classes(batch)
                if not set(classes) <= set(trip.classes):
                    await trip.close()
                    trip = _Trip(self, aet, classes)
        except StoreError as exc:  # the items stay pending; retried when the lease ends
            # an outage (unavailable) is logged once by the store, not per courier
            log.log(logging.DEBUG if exc.unavailable else logging.ERROR,
                    "reports to %r: store failed: %s", aet, exc)
        finally:
            for item in batch:
                if item.id not in self._recording:
                    self._held.discard(item.id)
            await trip.close()
            group = self._couriers.get(aet)
            if group is not None:
                group.discard(asyncio.current_task())
                if not group:
                    del self._couriers[aet]
            self._wake.set()

    def _classes(self, batch: Sequence[Delivery]) -> tuple[str, ...]:
        """The SOP classes an association for ``batch`` proposes: its kinds' only (a
        UPS subscriber need not know Storage Commitment, nor a modality UPS Event)."""
        return tuple(dict.fromkeys(self.kinds[item.kind].sop_class
                                   for item in batch if item.kind in self.kinds))

    async def _reports(self, batch: Sequence[Delivery]) -> list[Report | str]:
        """Each item's report, built by its kind (or why there is none)."""
        out: list[Report | str] = [f"no report kind {item.kind!r} here" for item in batch]
        by_kind: dict[str, list[int]] = {}
        for index, item in enumerate(batch):
            if item.kind in self.kinds:
                by_kind.setdefault(item.kind, []).append(index)
        for name, indexes in by_kind.items():
            built = await self.kinds[name].build([batch[i] for i in indexes])
            for index, report in zip(indexes, built, strict=True):
                out[index] = report
        return out

    async def _deliver_batch(self, trip: _Trip, batch: list[Delivery]
                             ) -> list[asyncio.Future[bool]]:
        """Each item once; returns the marks of those delivered (being recorded)."""
        reports = await self._reports(batch)
        renew_at = time.monotonic() + self.policy.lease / 3
        stopped: set[tuple[str, str]] = set()  # ordered groups with a failure in this batch
        marks: list[asyncio.Future[bool]] = []
        for index, item in enumerate(batch):
            if time.monotonic() >= renew_at:  # a long batch: keep the rest leased
                rest = [i.id for i in batch[index:]]
                await self.queue.renew_leases(self.owner, rest, time.time() + self.policy.lease)
                renew_at = time.monotonic() + self.policy.lease / 3
            mark = None
            try:
                group = None if item.ordering is None else (item.destination, item.ordering)
                if group is not None and group in stopped:
                    await self.queue.release_leases(self.owner, [item.id])
                    continue  # after the one that failed, not before it
                mark = await self._deliver(trip, item, reports[index])
                if mark is None and group is not None:
                    stopped.add(group)
            finally:
                if mark is None:  # else held until recorded (_recorded)
                    self._held.discard(item.id)
                else:
                    marks.append(mark)
        return marks

    async def _deliver(self, trip: _Trip, item: Delivery, report: Report | str
                       ) -> asyncio.Future[bool] | None:
        """One attempt; a failure recorded (None), a delivery handed to the recorder
        (its mark: whether it was recorded)."""
        observer = self.observer
        if observer is not None:
            tell(observer, "report_sending", item.key, item.destination)
        error = report if isinstance(report, str) else await self._send(trip, item, report)
        if error is not None:
            if observer is not None:
                tell(observer, "report_failed", item.key, item.destination, error)
            await self._failed(item, error)
            return None
        assert not isinstance(report, str)
        self._origins.pop((item.kind, item.key), None)
        result = self.kinds[item.kind].delivered(item, report)
        self._recording.add(item.id)
        return self._recorder.add(item, result)

    def _recorded(self, items: Sequence[Delivery], ok: bool) -> None:
        """The recorder is done with ``items`` (``ok``: recorded as delivered)."""
        now, observer = time.time(), self.observer
        for item in items:
            self._recording.discard(item.id)
            self._held.discard(item.id)
            if ok and observer is not None:
                tell(observer, "report_delivered", item.key, item.destination,
                     now - item.created_at)
        self._wake.set()  # the next items of their ordered groups may be claimed now

    async def _send(self, trip: _Trip, item: Delivery, report: Report) -> str | None:
        """One delivery attempt; None when the destination acknowledged it, else why not.

        Only a success status in an N-EVENT-REPORT-RSP counts. A report sent on the
        requesting association while the requester releases it is not answered
        (PS3.8 7.2.2: the releaser may send nothing but A-ABORT) and goes again on a
        new association, at once.
        """
        event_type, info = report
        error = None
        # The kind's SOP class is the presentation context's; the item's goes in the
        # command (UPS: Push in the command, on a UPS Event context, PS3.4 CC.3.1).
        context = self.kinds[item.kind].sop_class
        meta = None if context == item.sop_class else context
        assoc = self._origins.get((item.kind, item.key))
        if assoc is not None and assoc.is_established:
            try:
                status, _ = await assoc.send_n_event_report(
                    info, event_type, item.sop_class, item.sop_instance, meta
                )
                if is_performed(int(status.Status)):
                    return None
                error = f"status 0x{int(status.Status):04X} on the requesting association"
            except _SEND_ERRORS as exc:
                error = f"requesting association: {exc}"
            log.debug("report %s %s: %s; trying a new association", item.kind, item.key, error)
        self._origins.pop((item.kind, item.key), None)  # gone, or it did not take it
        if item.destination not in self.peers:
            return f"AE {item.destination!r} is not in the AE table"
        back = await trip.association(context)
        if isinstance(back, str):
            return back
        try:
            status, _ = await back.send_n_event_report(
                info, event_type, item.sop_class, item.sop_instance, meta
            )
        except _SEND_ERRORS as exc:
            return f"{trip.where}: {exc or type(exc).__name__}"
        if is_performed(int(status.Status)):
            return None
        return f"status 0x{int(status.Status):04X} from {item.destination}"

    async def _failed(self, item: Delivery, error: str) -> None:
        now = time.time()
        attempts = item.attempts + 1
        kind = self.kinds.get(item.kind)
        if now >= item.deadline:
            log.error("report expired kind=%s key=%s destination=%r attempts=%d: %s",
                      item.kind, item.key, item.destination, attempts, error)
            await self.queue.expire(item.id, error)
            if self.observer is not None:
                tell(self.observer, "report_expired", item.key, item.destination,
                     now - item.created_at)
            if kind is not None:
                kind.failed(item, error, expired=True)
            return
        delay = min(self.policy.retry_initial * 2 ** (attempts - 1), self.policy.retry_max)
        when = min(now + delay, item.deadline)
        # A destination not in the AE table was warned about by its service when the
        # item came: its retries (which can succeed only on the requesting
        # association, or after a restart with an entry) log at DEBUG.
        level = logging.WARNING if item.destination in self.peers else logging.DEBUG
        log.log(level, "report not delivered kind=%s key=%s destination=%r attempt=%d "
                "retry_in=%.1fs: %s", item.kind, item.key, item.destination, attempts,
                when - now, error)
        await self.queue.reschedule(item.id, when, error)
        if kind is not None:
            kind.failed(item, error, expired=False)


class _Trip:
    """A courier's association to one destination: opened when first needed, once.

    It proposes ``classes`` (the SOP classes of the reports it is opened for), each
    with the SCP role for us (the requestor), and also the SCU role unless
    ``require_scp_role``.
    """

    def __init__(self, deliverer: Deliverer, aet: str, classes: Sequence[str]) -> None:
        self.deliverer, self.aet = deliverer, aet
        self.classes = tuple(classes)
        self.back: Association | None = None
        self.error: str | None = None  # why it could not be opened (not tried again)
        peer = deliverer.peers.get(aet)
        self.where = f"{peer.host}:{peer.port}" if peer is not None else aet

    def _refused(self, back: Association, sop_class: str) -> bool:
        """Whether the peer did not accept our SCP role for ``sop_class``."""
        return self.deliverer.policy.require_scp_role and not any(
            ctx.abstract_syntax == sop_class and ctx.as_scp for ctx in back.accepted_contexts
        )

    def _refusal(self, sop_class: str) -> str:
        names = [k.name for k in self.deliverer.kinds.values() if k.sop_class == sop_class]
        return f"{self.where}: the peer did not accept the SCP role for " \
               f"{names[0] if names else sop_class}"

    async def association(self, sop_class: str) -> Association | str:
        """The open association for a report of ``sop_class``, or why there is none."""
        if self.back is not None:
            if not self.back.is_established:
                return f"{self.where}: the association ended"
            return self._refusal(sop_class) if self._refused(self.back, sop_class) else self.back
        if self.error is not None:
            return self.error
        deliverer = self.deliverer
        peer, policy = deliverer.peers[self.aet], deliverer.policy
        if sop_class not in self.classes:
            self.classes = (*self.classes, sop_class)
        classes = self.classes
        contexts = [c for c in deliverer.reporter.requested_contexts
                    if c.abstract_syntax in classes]
        try:
            back = await deliverer.reporter.associate(
                peer.host,
                peer.port,
                contexts,
                ae_title=self.aet,
                ext_neg=[build_role(c, scu_role=not policy.require_scp_role, scp_role=True)
                         for c in classes],
                ssl_context=peer.ssl_context,
            )
        except (AiodimseError, OSError, TimeoutError, ValueError) as exc:
            self.error = f"{self.where}: {exc or type(exc).__name__}"
            return self.error
        self.back = back
        if all(self._refused(back, c) for c in classes):
            self.error = self._refusal(sop_class)
            await self.close()
            return self.error
        return self._refusal(sop_class) if self._refused(back, sop_class) else back

    async def close(self) -> None:
        back, self.back = self.back, None
        if back is None:
            return
        try:
            await back.release()
        except (AiodimseError, OSError, TimeoutError):  # it was delivered or not already
            back.abort()
