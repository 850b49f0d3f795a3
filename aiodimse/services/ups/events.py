"""UPS event reports (PS3.4 CC.2.4): who gets which, queued durably for delivery.

``SubscriptionEvents`` implements the workitem service's ``WorkitemEvents``: at
each change it reads the workitem's subscribers from the store and queues one
N-EVENT-REPORT per subscriber in one transaction (the reports go out through the
shared ``Deliverer``: at least once, in order per workitem and subscriber, since
each report's ordering key is its workitem). A new workitem first gains the global
subscribers whose subscription covers it (a filtered one: its matching keys match).

Reports are queued whole (Event Information as DICOM JSON, the Event Type ID
beside it), so a restart sends exactly what was decided before it. The command
names the UPS Push SOP class, as every UPS instance's class is; the association
carries the UPS Event class, proposed with the SCP role for us (we are the SCP of
UPS Event that sends the reports; the subscriber, SCU, accepts that role).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydicom.dataset import Dataset

from ...logs import get_logger
from ...store.interface import Delivery, DeliveryQueue, StoreError, UPSSubscriptions
from ..delivery import Deliverer, Report
from .hooks import WorkitemSource
from .uids import (
    EVENT_ASSIGNED,
    EVENT_CANCEL_REQUESTED,
    EVENT_PROGRESS_REPORT,
    EVENT_SCP_STATUS_CHANGE,
    EVENT_STATE_REPORT,
    GLOBAL_SUBSCRIPTION,
    UPS_EVENT,
    UPS_PUSH,
)

__all__ = ["UPS_KIND", "UPSStores", "UPSReports", "SubscriptionEvents", "state_report",
           "cancel_requested_report", "progress_report", "assigned_report",
           "scp_status_report"]

log = get_logger("aiodimse.ups")

UPS_KIND = "ups"
"""The ``Delivery.kind`` of UPS event reports."""

_STATUS_ORDERING = "scp-status"  # SCP Status Change reports keep their own order per AE


class UPSStores(UPSSubscriptions, DeliveryQueue, Protocol):
    """What the subscription side needs of a store."""


def _copy(source: Dataset, keywords: Iterable[str], into: Dataset | None = None) -> Dataset:
    out = Dataset() if into is None else into
    for keyword in keywords:
        if keyword in source:
            out[keyword] = source[keyword]
    return out


def _cancel_details(workitem: Dataset) -> Dataset | None:
    """The progress item that says why a workitem was canceled, if any."""
    for item in workitem.get("ProcedureStepProgressInformationSequence", None) or ():
        return item  # type: ignore[no-any-return]
    return None


def state_report(workitem: Dataset, reason: str | None = None) -> Report:
    """UPS State Report: the state, the input readiness, why it was canceled."""
    info = _copy(workitem, ("ProcedureStepState", "InputReadinessState"))
    if str(workitem.get("ProcedureStepState", "")).strip() == "CANCELED":
        details = _cancel_details(workitem)
        if details is not None:
            _copy(details, ("ReasonForCancellation",
                            "ProcedureStepDiscontinuationReasonCodeSequence"), info)
        if reason:
            info.ReasonForCancellation = reason[:1024]
    return EVENT_STATE_REPORT, info


def cancel_requested_report(workitem: Dataset, request: Dataset) -> Report:
    """UPS Cancel Requested: who asked, why, and how to reach them."""
    info = _copy(request, ("RequestingAE", "ReasonForCancellation",
                           "ProcedureStepDiscontinuationReasonCodeSequence",
                           "ContactURI", "ContactDisplayName"))
    return EVENT_CANCEL_REQUESTED, info


def progress_report(workitem: Dataset) -> Report:
    """UPS Progress Report: the Procedure Step Progress Information Sequence."""
    return EVENT_PROGRESS_REPORT, _copy(workitem, (
        "ProcedureStepProgressInformationSequence",))


def assigned_report(workitem: Dataset) -> Report:
    """UPS Assigned: the station and the human performers it is scheduled for."""
    return EVENT_ASSIGNED, _copy(workitem, (
        "ScheduledStationNameCodeSequence", "ScheduledHumanPerformersSequence",
        "InputReadinessState"))


def scp_status_report(status: str) -> Report:
    """SCP Status Change (Event Type ID 4, PS3.4 Table CC.2.4-1): SCP Status
    (0074,1242) ``GOING DOWN`` or ``RESTARTED``, and Subscription List Status
    (0074,1244) and Unified Procedure Step List Status (0074,1246), Type -/1 in every
    report. CC.2.4.3 gives their values for RESTARTED: WARM START when the list was
    preserved, as ours are (stored); GOING DOWN says the same of the restart to come."""
    info = Dataset()
    info.SCPStatus = status
    info.SubscriptionListStatus = "WARM START"
    info.UnifiedProcedureStepListStatus = "WARM START"
    return EVENT_SCP_STATUS_CHANGE, info


class UPSReports:
    """The UPS report kind: queued whole; counts outcomes, tells waiters."""

    name = UPS_KIND
    sop_class = UPS_EVENT

    def __init__(self) -> None:
        self.delivered_count = 0
        self.failed_attempts = 0
        self.expired = 0
        self._waiting: dict[str, asyncio.Event] = {}  # key -> set when delivered

    async def build(self, items: Sequence[Delivery]) -> Sequence[Report]:
        return [(item.event_type, Dataset.from_json(item.payload)) for item in items]

    def delivered(self, item: Delivery, report: Report) -> Mapping[str, Any] | None:
        self.delivered_count += 1
        waiter = self._waiting.pop(item.key, None)
        if waiter is not None:
            waiter.set()
        return None

    def failed(self, item: Delivery, error: str, *, expired: bool) -> None:
        self.failed_attempts += 1
        if expired:
            self.expired += 1
            waiter = self._waiting.pop(item.key, None)
            if waiter is not None:
                waiter.set()

    def watch(self, keys: Iterable[str]) -> list[asyncio.Event]:
        """An event per key, set once its report is delivered (or expires)."""
        return [self._waiting.setdefault(key, asyncio.Event()) for key in keys]


class SubscriptionEvents:
    """``WorkitemEvents`` over a subscription store: the reports of CC.2.4 queued
    for every subscriber whose subscription covers the workitem."""

    def __init__(self, store: UPSStores, source: WorkitemSource, deliverer: Deliverer
                 ) -> None:
        self.store, self.source, self.deliverer = store, source, deliverer
        self.reports = UPSReports()
        deliverer.add_kind(self.reports)
        self.queued = 0  # reports queued (a counter for logs and benchmarks)
        # This start of the SCP: the processes sharing it (serve's workers, told by
        # their supervisor) queue one SCP Status Change per status, not one each.
        self.run = uuid.uuid4().hex
        # CC.2.4.3's fallback list: AEs told of SCP status changes even when no
        # subscription names them (the lists may be lost, or not yet made)
        self.status_aets: tuple[str, ...] = ()

    # -- building the queue items ------------------------------------------------------

    def item(self, aet: str, instance: str, report: Report, *, ordering: str | None,
             now: float, key: str | None = None) -> Delivery:
        """One queued report of ``report`` to ``aet`` about ``instance`` (``key``:
        its key in the queue; a new one if None)."""
        event_type, info = report
        return Delivery(
            kind=UPS_KIND, key=key or uuid.uuid4().hex, destination=aet, sop_class=UPS_PUSH,
            sop_instance=instance, payload=info.to_json(), event_type=event_type,
            ordering=ordering, created_at=now, deadline=now + self.deliverer.policy.deadline,
            next_attempt=now,
        )

    def items(self, aets: Iterable[str], workitem: Dataset, report: Report) -> list[Delivery]:
        now, uid = time.time(), _uid(workitem)
        return [self.item(aet, uid, report, ordering=uid, now=now) for aet in aets]

    async def _fan_out(self, workitem: Dataset, report: Report) -> None:
        uid = _uid(workitem)
        subscribers = await self.store.ups_subscribers(uid)
        if not subscribers:
            return
        items = self.items((aet for aet, _lock in subscribers), workitem, report)
        self.queued += await self.store.ups_queue(items)
        self.deliverer.wake()

    # -- WorkitemEvents ----------------------------------------------------------------

    async def created(self, workitem: Dataset) -> None:
        """Global subscribers (not suspended; filtered: matching) gain the workitem,
        each with a UPS State Report, in one transaction."""
        uid = _uid(workitem)
        subs = []
        for sub in await self.store.ups_global_subscriptions():
            if sub.suspended:
                continue
            if sub.filter is not None and not self.source.matches(
                    Dataset.from_json(sub.filter), workitem):
                continue
            subs.append((sub.aet, sub.deletion_lock))
        if not subs:
            return
        items = self.items([aet for aet, _lock in subs], workitem, state_report(workitem))
        await self.store.ups_created(uid, subs, items)
        self.queued += len(items)
        self.deliverer.wake()

    async def state_changed(self, workitem: Dataset, reason: str | None) -> None:
        await self._fan_out(workitem, state_report(workitem, reason))

    async def cancel_requested(self, workitem: Dataset, request: Dataset) -> None:
        await self._fan_out(workitem, cancel_requested_report(workitem, request))

    async def progress(self, workitem: Dataset) -> None:
        await self._fan_out(workitem, progress_report(workitem))

    async def assigned(self, workitem: Dataset) -> None:
        await self._fan_out(workitem, assigned_report(workitem))

    async def deletion_locked(self, uid: str) -> bool:
        """Asked of the store each time: another worker or node may have subscribed
        or unsubscribed since (a copy here would be this process's view only)."""
        return any(lock for _aet, lock in await self.store.ups_subscribers(uid))

    # -- SCP status --------------------------------------------------------------------

    async def scp_status(self, status: str) -> list[str]:
        """Queue an SCP Status Change to every subscribed AE and every AE of the
        fallback list (``status_aets``), once each; the keys, if queued here.

        PS3.4 CC.2.4.3: one each time the SCP restarts (GOING DOWN: may, before it
        stops). Each key names ``run`` and the status, so the workers of one
        ``serve`` queue it once between them (the others find it queued and return
        no keys), and a worker restarted after a crash sends none. The reports are
        leased to this process's deliverer: the SCP that changes status (a node,
        with its AE title) sends them, before it stops. CC.2.4.3 names no UID for a
        report about the SCP itself: its Affected SOP Instance UID is the UPS Global
        Subscription instance."""
        try:
            aets = list(dict.fromkeys([*self.status_aets,
                                       *await self.store.ups_subscriber_aets()]))
            now = time.time()
            items = [self.item(aet, GLOBAL_SUBSCRIPTION, scp_status_report(status),
                               ordering=_STATUS_ORDERING, now=now,
                               key=f"scp-status:{self.run}:{status}:{aet}") for aet in aets]
            new = await self.store.ups_queue(items, owner=self.deliverer.owner,
                                             lease_until=now + self.deliverer.policy.lease)
        except StoreError as exc:
            log.error("SCP Status Change %s not queued: %s", status, exc)
            return []
        self.queued += new
        if not new:
            return []
        self.deliverer.wake()
        return [item.key for item in items]


def _uid(workitem: Dataset) -> str:
    return str(workitem.get("SOPInstanceUID", "") or "")
