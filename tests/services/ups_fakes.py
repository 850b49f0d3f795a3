"""Test doubles for the UPS subscription side: an in-memory ``WorkitemSource``, an
event receiver (an AE accepting the SCP role of UPS Event) and a running Watch SCP."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse import AE, Event, Server, evt
from aiodimse.services.base import ServiceSet
from aiodimse.services.delivery import Deliverer, DeliveryPolicy, Peer
from aiodimse.services.ups.uids import UPS_EVENT, UPS_PUSH, UPS_WATCH
from aiodimse.services.ups.watch import UPSWatchService
from aiodimse.store.sqlite import SQLiteStore

__all__ = ["FakeSource", "workitem", "Inbox", "listen", "WatchSCP", "watch_scp",
           "subscribe_info", "FAST"]

FAST = DeliveryPolicy(retry_initial=0.05, retry_max=0.3, poll_interval=0.3, lease=30.0)


def workitem(uid: str, state: str = "SCHEDULED", **attrs: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = UPS_PUSH
    ds.SOPInstanceUID = uid
    ds.ProcedureStepState = state
    ds.InputReadinessState = "READY"
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


class FakeSource:
    """Workitems in a dict; matching: each non-empty key equal (``*``/``?`` wildcards)."""

    def __init__(self, *items: Dataset) -> None:
        self.items = {str(ds.SOPInstanceUID): ds for ds in items}

    def put(self, ds: Dataset) -> Dataset:
        self.items[str(ds.SOPInstanceUID)] = ds
        return ds

    async def workitem(self, uid: str) -> Dataset | None:
        return self.items.get(uid)

    async def workitems(self, identifier: Dataset | None) -> AsyncIterator[Dataset]:
        for ds in list(self.items.values()):
            if identifier is None or self.matches(identifier, ds):
                yield ds

    def matches(self, identifier: Dataset, workitem: Dataset) -> bool:
        for element in identifier:
            wanted = str(element.value or "")
            if wanted and not fnmatch.fnmatchcase(str(workitem.get(element.keyword, "")),
                                                  wanted):
                return False
        return True


@dataclass
class Inbox:
    """What one receiving AE got: (event type, SOP instance, event information)."""

    reports: list[tuple[int, str, Dataset]] = field(default_factory=list)
    command_classes: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    refuse: int = 0  # answer this many with 0x0110 first
    associations: int = 0  # established by senders

    async def on_established(self, event: Event) -> None:
        self.associations += 1

    async def on_report(self, event: Event) -> tuple[int, None]:
        self.command_classes.add(str(event.request.AffectedSOPClassUID))
        if self.refuse:
            self.refuse -= 1
            return 0x0110, None
        self.reports.append((event.event_type, str(event.request.AffectedSOPInstanceUID),
                             event.event_information))
        self.changed.set()
        return 0, None

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        async def until() -> None:
            while len(self.reports) < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), timeout)

    def of(self, event_type: int) -> list[tuple[int, str, Dataset]]:
        return [r for r in self.reports if r[0] == event_type]


async def listen(inbox: Inbox, title: str = "RIS", port: int = 0) -> Server:
    ae = AE(title)
    ae.add_supported_context(UPS_EVENT, scp_role=True)  # the requestor sends the reports
    return await ae.start_server(("127.0.0.1", port),
                                 evt_handlers=[(evt.EVT_N_EVENT_REPORT, inbox.on_report),
                                               (evt.EVT_ESTABLISHED, inbox.on_established)])


@dataclass
class WatchSCP:
    server: Server
    service: UPSWatchService
    store: SQLiteStore
    services: ServiceSet

    async def action(self, action_type: int, instance: str, info: Dataset | None,
                     title: str = "SUBSCRIBER") -> tuple[int, Dataset]:
        ae = AE(title)
        ae.add_requested_context(UPS_WATCH)
        assoc = await ae.associate("127.0.0.1", self.server.port, ae_title="UPS_SCP")
        try:
            status, _ = await assoc.send_n_action(info, action_type, UPS_PUSH, instance,
                                                  UPS_WATCH)
        finally:
            await assoc.release()
        return int(status.Status), status


def subscribe_info(receiving: str, lock: bool = False, **keys: str) -> Dataset:
    ds = Dataset()
    ds.ReceivingAE = receiving
    ds.DeletionLock = "TRUE" if lock else "FALSE"
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@asynccontextmanager
async def watch_scp(data: Path, source: FakeSource, peers: dict[str, Peer],
                    policy: DeliveryPolicy = FAST) -> AsyncIterator[WatchSCP]:
    store = SQLiteStore.in_directory(data)
    reporter = AE("UPS_SCP")
    reporter.acse_timeout = reporter.dimse_timeout = reporter.connection_timeout = 5
    service = UPSWatchService(store, source, Deliverer(store, reporter, peers, policy))
    services = ServiceSet([service])
    server = await services.start_server(AE("UPS_SCP"), ("127.0.0.1", 0))
    try:
        yield WatchSCP(server, service, store, services)
    finally:
        await services.shutdown(server, 2.0)
        await store.aclose()
