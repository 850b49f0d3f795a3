"""The deliverer on its own (issue 19): any report kind, order per (destination,
ordering key) kept through a failure, and services over a store that is not SQLite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Event, evt
from aiodimse.services import MPPS, MPPSSCP
from aiodimse.services.delivery import Deliverer, DeliveryPolicy, Peer, StoredReports
from aiodimse.store import Delivery, MPPSRow, StoreError
from aiodimse.store.sqlite import SQLiteStore

T = TypeVar("T")

UPS_EVENT = "1.2.840.10008.5.1.4.34.6.4"  # UPS Event SOP Class: what UPS will queue
UPS_INSTANCE = "1.2.840.10008.5.1.4.34.5"


def _event(key: str, ordering: str | None, now: float) -> Delivery:
    info = Dataset()
    info.ProcedureStepState = "IN PROGRESS"
    info.TextString = key
    return Delivery(kind="ups", key=key, destination="RIS", sop_class=UPS_EVENT,
                    sop_instance=UPS_INSTANCE, payload=info.to_json(), event_type=1,
                    ordering=ordering, created_at=now, deadline=now + 60, next_attempt=now)


async def test_an_ordered_group_waits_for_its_failed_item(tmp_path: Path) -> None:
    """e1 is refused once: e2 and e3 are not sent before e1 is delivered, however the
    batches fall; the item of another group is not held back."""
    arrivals: list[str] = []
    refused = {"e1"}
    done = asyncio.Event()
    ae = AE("RIS")
    ae.add_supported_context(UPS_EVENT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        key = str(event.event_information.TextString)
        assert event.event_type == 1
        arrivals.append(key)
        if key in refused:
            refused.discard(key)
            return 0x0110, None
        if {"e1", "e2", "e3", "x1"} <= set(arrivals) and arrivals.count("e1") == 2:
            done.set()
        return 0, None

    server = await ae.start_server(("127.0.0.1", 0),
                                   evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    store = SQLiteStore.in_directory(tmp_path)
    reporter = AE("UPS_SCP")
    deliverer = Deliverer(store, reporter, {"RIS": Peer(host="127.0.0.1", port=server.port)},
                          DeliveryPolicy(retry_initial=0.2, batch_size=2,
                                         max_per_destination=2))
    deliverer.add_kind(StoredReports("ups", UPS_EVENT))
    with pytest.raises(ValueError, match="added already"):
        deliverer.add_kind(StoredReports("ups", UPS_EVENT))
    try:
        now = time.time()
        for key, ordering in (("e1", "wi-1"), ("e2", "wi-1"), ("x1", "wi-2"), ("e3", "wi-1")):
            assert await store.enqueue(_event(key, ordering, now))
        await deliverer.start()
        deliverer.queued("ups", "e1")
        await asyncio.wait_for(done.wait(), 20)
        assert await store.count_pending() == 0
    finally:
        await deliverer.stop(1.0)
        await server.shutdown(1.0)
        await store.aclose()
    group = [key for key in arrivals if key.startswith("e")]
    assert group == ["e1", "e1", "e2", "e3"], arrivals
    assert arrivals.count("x1") == 1


async def test_states_and_attempts_of_the_delivered_items(tmp_path: Path) -> None:
    """The queue records each outcome: delivered after one refusal is 2 attempts."""
    ae = AE("RIS")
    ae.add_supported_context(UPS_EVENT, scp_role=True)
    seen: list[str] = []

    async def on_report(event: Event) -> tuple[int, None]:
        key = str(event.event_information.TextString)
        seen.append(key)
        return (0x0110 if seen.count(key) == 1 and key == "a" else 0), None

    server = await ae.start_server(("127.0.0.1", 0),
                                   evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    store = SQLiteStore.in_directory(tmp_path)
    deliverer = Deliverer(store, AE("UPS_SCP"),
                          {"RIS": Peer(host="127.0.0.1", port=server.port)},
                          DeliveryPolicy(retry_initial=0.05))
    deliverer.add_kind(StoredReports("ups", UPS_EVENT))
    try:
        now = time.time()
        for key in ("a", "b"):
            await store.enqueue(_event(key, "wi", now))
        await deliverer.start()
        deadline = time.monotonic() + 20
        while await store.count_pending():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert await store.delivery_state("ups", "a") == (
            "delivered", 2, "status 0x0110 from RIS")
        assert await store.delivery_state("ups", "b") == ("delivered", 1, None)
    finally:
        await deliverer.stop(1.0)
        await server.shutdown(1.0)
        await store.aclose()
    assert seen == ["a", "a", "b"]


class _BrokenStore:
    """An MPPS store that is not SQLite and fails as a backend says it does."""

    def __init__(self, status: int) -> None:
        self.status = status

    def _fail(self) -> StoreError:
        return StoreError("the store is unavailable", self.status)

    async def mpps_create(self, row: MPPSRow, now: float, allowance: Any = None) -> bool:
        raise self._fail()

    async def mpps_get(self, sop_instance_uid: str) -> MPPSRow | None:
        raise self._fail()

    async def mpps_update(self, sop_instance_uid: str,
                          change: Callable[[MPPSRow | None], MPPSRow | T], now: float,
                          allowance: Any = None) -> MPPSRow | T:
        raise self._fail()


@pytest.mark.parametrize("status", [0x0213, 0x0110])
async def test_a_store_error_is_answered_with_its_status(status: int) -> None:
    ae = AE("ARCHIVE")
    ae.add_supported_context(MPPS)
    server = await ae.start_server(("127.0.0.1", 0),
                                   evt_handlers=MPPSSCP(_BrokenStore(status)).handlers())
    client = AE("CT1")
    client.add_requested_context(MPPS)
    attrs = Dataset()
    attrs.PerformedProcedureStepStatus = "IN PROGRESS"
    uid = str(generate_uid())
    try:
        async with client.associate("127.0.0.1", server.port, ae_title="ARCHIVE") as assoc:
            answers: Sequence[Any] = [
                await assoc.send_n_create(attrs, MPPS, uid),
                await assoc.send_n_set(attrs, MPPS, uid),
                await assoc.send_n_get(None, MPPS, uid),
            ]
    finally:
        await server.shutdown(1.0)
    for answer_status, _ in answers:
        assert answer_status.Status == status
        assert "store" in str(answer_status.ErrorComment)
