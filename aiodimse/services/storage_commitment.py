"""Storage Commitment Push Model SCP (PS3.4 Annex J) with durable, retried reports.

Each accepted N-ACTION is written to the store *before* the response goes out, so an
acknowledged request survives a crash. The report (N-EVENT-REPORT) is sent by a
background deliverer: first on the requesting association if it is still open,
else on a new association to the requesting AE (address from the AE table),
proposing the SCP role for the SOP class (PS3.4 J.3.3), and retried with
exponential backoff until it is delivered or the deadline passes. Reports still
pending when the process stops are picked up by the next start (or by another
worker, once this one's lease on them runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import ssl
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from .. import evt
from ..ae import AE
from ..association import Association
from ..dimse.commands import is_valid_uid
from ..errors import AiodimseError
from ..events import Event
from ..handlers import HandlerSpec
from ..logs import get_logger
from ..observe import Observer, tell
from ..presentation import build_role
from ..status import is_performed
from ..store.db import AsyncStore, Commitment, QuotaExceeded, failure_status
from .quotas import RESOURCE_LIMITATION, Quotas, over
from .values import first_invalid

__all__ = [
    "STORAGE_COMMITMENT",
    "STORAGE_COMMITMENT_INSTANCE",
    "NO_SUCH_OBJECT_INSTANCE",
    "CLASS_INSTANCE_CONFLICT",
    "NOT_AUTHORIZED",
    "Peer",
    "DeliveryPolicy",
    "build_report",
    "StorageCommitmentSCP",
]

log = get_logger("aiodimse.commitment")

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
_TRANSACTION_UID_TAG = 0x00081195
NO_SUCH_OBJECT_INSTANCE = 0x0112  # Failure Reason (0008,1197), PS3.3 C.14.1.1
CLASS_INSTANCE_CONFLICT = 0x0119
NOT_AUTHORIZED = 0x0124  # N-ACTION status: refused, calling AE not in the AE table
_WARNED_AES = 1024  # calling AEs remembered for the once-per-AE warning (16 bytes each)


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


def _status(code: int, comment: str, offending: int | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    if offending is not None:
        ds.OffendingElement = [offending]
    return ds


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def build_report(
    transaction_uid: str,
    refs: Sequence[tuple[str, str]],
    found: Mapping[str, str],
    retrieve_ae_title: str | None = None,
) -> tuple[int, Dataset]:
    """(Event Type ID, Event Information) for ``refs``, given the indexed instances.

    ``found`` maps SOP Instance UID to SOP Class UID. An instance not indexed fails
    with 0x0112; one indexed under another SOP class with 0x0119. Event type 1 when
    all are committed, else 2 with the Failed SOP Sequence (J.3.3.1).
    """
    committed: list[Dataset] = []
    failed: list[Dataset] = []
    for sop_class, sop_instance in refs:
        have = found.get(sop_instance)
        if have == sop_class:
            committed.append(_ref(sop_class, sop_instance))
            continue
        item = _ref(sop_class, sop_instance)
        item.FailureReason = NO_SUCH_OBJECT_INSTANCE if have is None else CLASS_INSTANCE_CONFLICT
        failed.append(item)
    info = Dataset()
    info.TransactionUID = transaction_uid
    if committed and retrieve_ae_title:
        info.RetrieveAETitle = retrieve_ae_title
    if committed:
        info.ReferencedSOPSequence = committed
    if failed:
        info.FailedSOPSequence = failed
    return (2 if failed else 1), info


def _ok(status: Dataset) -> bool:
    return is_performed(int(status.Status))


class StorageCommitmentSCP:
    """The SCP: bind ``handlers()`` on a server, ``await start()``, ``await stop()``.

    ``reporter`` is the AE used for reports on new associations (its title is the
    calling AE title; its timeouts apply). ``peers`` is the AE table.
    """

    def __init__(
        self,
        store: AsyncStore,
        reporter: AE,
        peers: Mapping[str, Peer],
        policy: DeliveryPolicy | None = None,
        *,
        owner: str | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.store = store
        self.quotas = quotas or Quotas()
        self.reporter = reporter
        if not any(c.abstract_syntax == STORAGE_COMMITMENT for c in reporter.requested_contexts):
            reporter.add_requested_context(STORAGE_COMMITMENT)
        self.peers = dict(peers)
        self.policy = policy or DeliveryPolicy()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Delivery: the running couriers (one association each) per calling AE, the
        # reports they hold, and the requesting association of each fresh request.
        self._couriers: dict[str, set[asyncio.Task[None]]] = {}
        self._held: set[str] = set()
        self._origins: weakref.WeakValueDictionary[str, Association] = (
            weakref.WeakValueDictionary()
        )
        self._warned: set[str] = set()  # unlisted calling AEs warned about
        # Held while claiming: rows claimed are leased to this owner, which other
        # claims of ours may take, until they are in _held.
        self._claiming = asyncio.Lock()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        # Counters for a summary log line (``aiodimse serve`` logs them at INFO).
        self.accepted = 0
        self.delivered = 0
        self.failed_attempts = 0
        self.expired = 0
        self.observer: Observer | None = None  # told of reports (aiodimse.observe)

    def handlers(self) -> list[HandlerSpec]:
        return [(evt.EVT_N_ACTION, self.on_n_action)]

    # -- the N-ACTION --------------------------------------------------------------------

    async def on_n_action(self, event: Event) -> tuple[int | Dataset, Dataset | None]:
        """Validate, record durably, answer; the report follows from the deliverer.

        Refused before anything is stored: no Action Information, or no Transaction
        UID or references (0x0120); a value pydicom would warn about, a Transaction
        UID that is no UID among them (0x0115 invalid argument value, which PS3.7
        lists for N-ACTION, with the element as Offending Element); a request over
        ``Quotas.commitment_max_request`` bytes or a calling AE past its allowance
        (0x0213); a store that fails (0x0213 when full, else 0x0110; cause logged).
        """
        if event.action_type != 1:
            return 0x0123, None  # no such action
        if str(event.request.RequestedSOPInstanceUID) != STORAGE_COMMITMENT_INSTANCE:
            return _status(0x0112, "use the well-known instance 1.2.840.10008.1.20.1.1"), None
        size, quotas = event.dataset_length, self.quotas
        if not size:
            return _status(0x0120, "Action Information (Transaction UID, Referenced SOP "
                           "Sequence) missing"), None
        if over(quotas.commitment_max_request, size):
            return _status(RESOURCE_LIMITATION,
                           f"Action Information over {quotas.commitment_max_request} bytes"), None
        info = event.action_information
        calling_aet = event.assoc.requestor.ae_title
        bad = first_invalid(info)
        if bad is None and not is_valid_uid(str(info.get("TransactionUID", "") or "0")):
            bad = _TRANSACTION_UID_TAG  # (first_invalid judges by pydicom's rules)
        if bad is not None:
            log.info("commitment refused calling_aet=%r: invalid value in (%04X,%04X)",
                     calling_aet, bad >> 16, bad & 0xFFFF)
            return _status(0x0115, "invalid value", bad), None
        transaction_uid = str(info.get("TransactionUID", "") or "")
        refs: list[tuple[str, str]] = []
        for item in info.get("ReferencedSOPSequence", None) or ():
            sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
            sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "")
            if not sop_class or not sop_instance:
                return _status(0x0120, "Referenced SOP Class/Instance UID missing"), None
            refs.append((sop_class, sop_instance))
        if not transaction_uid or not refs:
            return _status(0x0120, "Transaction UID and Referenced SOP Sequence needed"), None
        refusal = self._check_reachable(event, transaction_uid)
        if refusal is not None:
            return refusal, None
        now = time.time()
        commitment = Commitment(
            transaction_uid=transaction_uid,
            calling_aet=calling_aet,
            refs=tuple(refs),
            received_at=now,
            deadline=now + self.policy.deadline,
            next_attempt=now,
        )
        try:
            added = await self.store.call(
                self.store.store.add_commitment,
                commitment,
                owner=self.owner,
                lease_until=now + self.policy.lease,
                allowance=quotas.allowance(calling_aet, "commitment"),
            )
        except QuotaExceeded as exc:
            log.warning("commitment refused: %s", exc)
            return _status(RESOURCE_LIMITATION, "calling AE over its commitment quota"), None
        except sqlite3.Error as exc:
            code = failure_status(exc)
            log.error("commitment transaction=%s not stored: %s (answered 0x%04X)",
                      transaction_uid, exc, code)
            return _status(code, "the commitment store is full" if code == RESOURCE_LIMITATION
                           else "the commitment store failed"), None
        if not added:
            log.info("commitment refused transaction=%s calling_aet=%s: Transaction UID "
                     "already used", transaction_uid, commitment.calling_aet)
            return _status(0x0110, "Transaction UID already used"), None
        self.accepted += 1
        log.debug("commitment accepted transaction=%s calling_aet=%s instances=%d",
                  transaction_uid, commitment.calling_aet, len(refs))
        self._accepted(commitment, event.assoc)
        if self.observer is not None:
            tell(self.observer, "report_queued", transaction_uid, calling_aet, event.assoc,
                 event.message_id)
        return 0x0000, None

    def _check_reachable(self, event: Event, transaction_uid: str) -> Dataset | None:
        """Say at once when the report may never be deliverable; refuse if so set.

        With no AE-table entry the report can go only on the requesting association;
        if the requester releases first (or ``same_association`` is off), never.
        """
        calling = event.assoc.requestor.ae_title
        if calling in self.peers:
            return None
        if self.policy.refuse_unlisted_ae:
            log.info("commitment refused transaction=%r calling_aet=%r: not in the AE "
                     "table", transaction_uid, calling)
            return _status(NOT_AUTHORIZED, "calling AE not in the AE table of this SCP")
        if calling not in self._warned:
            if len(self._warned) >= _WARNED_AES:
                self._warned.clear()
            self._warned.add(calling)
            where = ("only on the requesting association: lost if it is released first"
                     if self.policy.same_association else "nowhere")
            log.warning("commitment requests from calling_aet=%r, which is not in the AE "
                        "table: its reports can be delivered %s (transaction=%r)",
                        calling, where, transaction_uid)
        return None

    # -- the deliverer -------------------------------------------------------------------
    #
    # One runner claims due reports from the store and hands them, grouped by calling
    # AE, to couriers. A courier delivers its batch over one association (each report
    # first on its requesting association if that is still open), asks for more for
    # the same AE while its association lasts, then releases it. Couriers are bounded
    # per calling AE and overall, so a flood of requests costs a few associations.

    async def start(self) -> None:
        """Start delivering: pending reports in the store are picked up at once."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="aiodimse-commitment")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop; deliveries still running after ``grace`` s stay pending in the store."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        tasks = [t for group in self._couriers.values() for t in group]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.call(self.store.store.release_leases, self.owner)

    def _accepted(self, commitment: Commitment, assoc: Association) -> None:
        """A request was recorded: its report is due now (the runner takes it)."""
        if self.policy.same_association:
            self._origins[commitment.transaction_uid] = assoc
        self._wake.set()

    @property
    def delivering(self) -> int:
        """Associations delivering reports now."""
        return sum(len(group) for group in self._couriers.values())

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before polling: a request accepted meanwhile wakes us
            try:
                delay = await self._poll()
            except sqlite3.Error as exc:  # e.g. locked past busy_timeout: try again later
                log.error("storage commitment store unavailable: %s", exc)
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
        """Start couriers for the due reports; returns how long to sleep before looking again."""
        policy, store = self.policy, self.store
        room = policy.max_concurrent - self.delivering
        if room > 0:
            full = frozenset(aet for aet, group in self._couriers.items()
                             if len(group) >= policy.max_per_destination)
            async with self._claiming:
                due = await store.call(
                    store.store.claim_due, self.owner, time.time(), policy.lease,
                    room * policy.batch_size, per_aet=policy.batch_size, max_aets=room,
                    skip_aets=full, held=frozenset(self._held),
                )
                batches: dict[str, list[Commitment]] = {}
                for commitment in due:
                    batches.setdefault(commitment.calling_aet, []).append(commitment)
                for aet, batch in batches.items():
                    self._start_courier(aet, batch)
        next_due = await store.call(store.store.next_due)
        if next_due is None:
            return policy.poll_interval
        return min(max(next_due - time.time(), 0.02), policy.poll_interval)

    def _start_courier(self, aet: str, batch: list[Commitment]) -> None:
        self._held.update(c.transaction_uid for c in batch)
        task = asyncio.create_task(self._courier(aet, batch), name=f"reports to {aet}")
        self._couriers.setdefault(aet, set()).add(task)

    async def _courier(self, aet: str, batch: list[Commitment]) -> None:
        """Deliver ``batch`` (and what else falls due for ``aet``) over one association."""
        trip = _Trip(self, aet)
        try:
            while batch:
                await self._deliver_batch(trip, batch)
                if not (trip.back is not None and trip.back.is_established):
                    break
                store = self.store
                async with self._claiming:
                    batch = await store.call(
                        store.store.claim_due, self.owner, time.time(), self.policy.lease,
                        self.policy.batch_size, aet=aet, held=frozenset(self._held),
                    )
                    self._held.update(c.transaction_uid for c in batch)
        except sqlite3.Error as exc:  # the rows stay pending; retried when the lease ends
            log.error("reports to %r: store unavailable: %s", aet, exc)
        finally:
            for c in batch:
                self._held.discard(c.transaction_uid)
            await trip.close()
            group = self._couriers.get(aet)
            if group is not None:
                group.discard(asyncio.current_task())
                if not group:
                    del self._couriers[aet]
            self._wake.set()

    async def _deliver_batch(self, trip: _Trip, batch: list[Commitment]) -> None:
        store = self.store
        found = await store.call(
            store.store.find_instances, [inst for c in batch for _cls, inst in c.refs]
        )
        renew_at = time.monotonic() + self.policy.lease / 3
        for index, c in enumerate(batch):
            if time.monotonic() >= renew_at:  # a long batch: keep the rest leased
                rest = [r.transaction_uid for r in batch[index:]]
                await store.call(store.store.renew_leases, self.owner, rest,
                                 time.time() + self.policy.lease)
                renew_at = time.monotonic() + self.policy.lease / 3
            try:
                await self._deliver(trip, c, found)
            finally:
                self._held.discard(c.transaction_uid)

    async def _deliver(self, trip: _Trip, c: Commitment, found: Mapping[str, str]) -> None:
        event_type, info = build_report(c.transaction_uid, c.refs, found, self.reporter.ae_title)
        if self.observer is not None:
            tell(self.observer, "report_sending", c.transaction_uid, c.calling_aet)
        error = await self._send(trip, c, event_type, info)
        if error is None:
            self._origins.pop(c.transaction_uid, None)
            failed = len(info.get("FailedSOPSequence", []))
            log.debug("report delivered transaction=%s calling_aet=%s event_type=%d "
                      "failed=%d instances=%d", c.transaction_uid, c.calling_aet,
                      event_type, failed, len(c.refs))
            result: dict[str, Any] = {"event_type": event_type, "failed": failed}
            await self.store.call(
                self.store.store.mark_delivered, c.transaction_uid, result, time.time()
            )
            self.delivered += 1
            if self.observer is not None:
                tell(self.observer, "report_delivered", c.transaction_uid, c.calling_aet,
                     time.time() - c.received_at)
        else:
            if self.observer is not None:
                tell(self.observer, "report_failed", c.transaction_uid, c.calling_aet, error)
            await self._failed(c, error)

    async def _send(
        self, trip: _Trip, c: Commitment, event_type: int, info: Dataset
    ) -> str | None:
        """One delivery attempt; None when the requester acknowledged it, else why not.

        Only a success status in an N-EVENT-REPORT-RSP counts. A report sent on the
        requesting association while the requester releases it is not answered
        (PS3.8 7.2.2: the releaser may send nothing but A-ABORT) and goes again on a
        new association, at once.
        """
        error = None
        assoc = self._origins.get(c.transaction_uid)
        if assoc is not None and assoc.is_established:
            try:
                status, _ = await assoc.send_n_event_report(
                    info, event_type, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
                )
                if _ok(status):
                    return None
                error = f"status 0x{int(status.Status):04X} on the requesting association"
            except (AiodimseError, TimeoutError, ValueError) as exc:
                error = f"requesting association: {exc}"
            log.debug("report %s: %s; trying a new association", c.transaction_uid, error)
        self._origins.pop(c.transaction_uid, None)  # gone, or it did not take the report
        if c.calling_aet not in self.peers:
            return f"AE {c.calling_aet!r} is not in the AE table"
        back = await trip.association()
        if isinstance(back, str):
            return back
        try:
            status, _ = await back.send_n_event_report(
                info, event_type, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
            )
        except (AiodimseError, TimeoutError, ValueError) as exc:
            return f"{trip.where}: {exc or type(exc).__name__}"
        if _ok(status):
            return None
        return f"status 0x{int(status.Status):04X} from {c.calling_aet}"

    async def _failed(self, c: Commitment, error: str) -> None:
        now = time.time()
        attempts = c.attempts + 1
        store = self.store
        self.failed_attempts += 1
        if now >= c.deadline:
            self.expired += 1
            if self.observer is not None:
                tell(self.observer, "report_expired", c.transaction_uid, c.calling_aet,
                     now - c.received_at)
            log.error("report expired transaction=%s calling_aet=%r attempts=%d: %s",
                      c.transaction_uid, c.calling_aet, attempts, error)
            await store.call(store.store.expire, c.transaction_uid, error)
            return
        delay = min(self.policy.retry_initial * 2 ** (attempts - 1), self.policy.retry_max)
        when = min(now + delay, c.deadline)
        # An AE not in the AE table was warned about when its request came: its
        # retries (which can succeed only after a restart with an entry) log at DEBUG.
        level = logging.DEBUG if c.calling_aet in self._warned else logging.WARNING
        log.log(level, "report not delivered transaction=%s calling_aet=%r attempt=%d "
                "retry_in=%.1fs: %s", c.transaction_uid, c.calling_aet, attempts,
                when - now, error)
        await store.call(store.store.reschedule, c.transaction_uid, when, error)


class _Trip:
    """A courier's association to one calling AE: opened when first needed, once."""

    def __init__(self, scp: StorageCommitmentSCP, aet: str) -> None:
        self.scp, self.aet = scp, aet
        self.back: Association | None = None
        self.error: str | None = None  # why it could not be opened (not tried again)
        peer = scp.peers.get(aet)
        self.where = f"{peer.host}:{peer.port}" if peer is not None else aet

    async def association(self) -> Association | str:
        """The open association, or why there is none."""
        if self.back is not None:
            if self.back.is_established:
                return self.back
            return f"{self.where}: the association ended"
        if self.error is not None:
            return self.error
        scp, peer = self.scp, self.scp.peers[self.aet]
        policy = scp.policy
        try:
            back = await scp.reporter.associate(
                peer.host,
                peer.port,
                ae_title=self.aet,
                ext_neg=[build_role(STORAGE_COMMITMENT, scu_role=not policy.require_scp_role,
                                    scp_role=True)],
                ssl_context=peer.ssl_context,
            )
        except (AiodimseError, OSError, TimeoutError, ValueError) as exc:
            self.error = f"{self.where}: {exc or type(exc).__name__}"
            return self.error
        self.back = back
        if policy.require_scp_role and not any(
            ctx.abstract_syntax == STORAGE_COMMITMENT and ctx.as_scp
            for ctx in back.accepted_contexts
        ):
            self.error = f"{self.where}: the peer did not accept the SCP role for commitment"
            await self.close()
            return self.error
        return back

    async def close(self) -> None:
        back, self.back = self.back, None
        if back is None:
            return
        try:
            await back.release()
        except (AiodimseError, OSError, TimeoutError):  # it was delivered or not already
            back.abort()
