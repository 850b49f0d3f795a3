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
from aiodimse.observe import Observer
from aiodimse.services import (
    MPPS,
    MPPSSCP,
    STORAGE_COMMITMENT,
    STORAGE_COMMITMENT_INSTANCE,
    StorageCommitmentSCP,
)
from aiodimse.services.delivery import Deliverer, DeliveryPolicy, Peer, StoredReports
from aiodimse.store import Delivery, MPPSRow, StoreError
from aiodimse.store.sqlite import SQLiteDatabase, SQLiteStore

from ._helpers import commit_request

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
        # the last report's handler has run; its response may still be on the way back
        await _until(lambda: _no_pending(store))
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

    def __init__(self, full: bool) -> None:
        self.full = full

    def _fail(self) -> StoreError:
        return StoreError("/var/lib/x: disk I/O error", full=self.full)

    async def mpps_create(self, row: MPPSRow, now: float, allowance: Any = None) -> bool:
        raise self._fail()

    async def mpps_get(self, sop_instance_uid: str) -> MPPSRow | None:
        raise self._fail()

    async def mpps_update(self, sop_instance_uid: str,
                          change: Callable[[MPPSRow | None], MPPSRow | T], now: float,
                          allowance: Any = None) -> MPPSRow | T:
        raise self._fail()


@pytest.mark.parametrize(("full", "status"), [(True, 0x0213), (False, 0x0110)])
async def test_a_store_error_is_answered_with_its_status(full: bool, status: int) -> None:
    ae = AE("ARCHIVE")
    ae.add_supported_context(MPPS)
    server = await ae.start_server(("127.0.0.1", 0),
                                   evt_handlers=MPPSSCP(_BrokenStore(full)).handlers())
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
        comment = str(answer_status.ErrorComment)
        assert comment == f"the MPPS store is {'full' if full else 'unavailable'}"


class _Recorded(StoredReports):
    """UPS-like reports that note each failure (time, expired) as the kind hears it."""

    def __init__(self) -> None:
        super().__init__("ups", UPS_EVENT)
        self.failures: list[tuple[str, float, bool]] = []

    def failed(self, item: Delivery, error: str, *, expired: bool) -> None:
        self.failures.append((item.destination, time.monotonic(), expired))


class _Attempts(Observer):
    """When each attempt began and failed, per destination, on the deliverer's clock
    (``time.time()``, which its retry times are)."""

    def __init__(self) -> None:
        self.began: dict[str, list[float]] = {}
        self.failed: dict[str, list[float]] = {}

    def report_sending(self, transaction_uid: str, calling_ae_title: str) -> None:
        self.began.setdefault(calling_ae_title, []).append(time.time())

    def report_failed(self, transaction_uid: str, calling_ae_title: str, error: str) -> None:
        self.failed.setdefault(calling_ae_title, []).append(time.time())


async def _until(check: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_ae_table_role_backoff_and_deadline(tmp_path: Path) -> None:
    """An AE not in the table, and one that does not accept the SCP role we propose
    for the report's class, are retried with doubling waits until the deadline."""
    refuser = AE("NOROLE")
    refuser.add_supported_context(UPS_EVENT)  # the requestor (us) may not be SCP
    server = await refuser.start_server(("127.0.0.1", 0))
    store = SQLiteStore.in_directory(tmp_path)
    kind = _Recorded()
    deliverer = Deliverer(store, AE("UPS_SCP"),
                          {"NOROLE": Peer(host="127.0.0.1", port=server.port)},
                          DeliveryPolicy(retry_initial=0.1, deadline=1.0))
    deliverer.add_kind(kind)
    attempts = deliverer.observer = _Attempts()
    try:
        now = time.time()
        for key, destination in (("gone", "GONE"), ("norole", "NOROLE")):
            item = _event(key, None, now)
            assert await store.enqueue(Delivery(
                kind=item.kind, key=key, destination=destination, sop_class=UPS_EVENT,
                sop_instance=UPS_INSTANCE, payload=item.payload, event_type=1,
                created_at=now, deadline=now + 1.0, next_attempt=now))
        await deliverer.start()
        await _until(lambda: _no_pending(store))
        gone = await store.delivery_state("ups", "gone")
        norole = await store.delivery_state("ups", "norole")
    finally:
        await deliverer.stop(1.0)
        await server.shutdown(1.0)
        await store.aclose()
    assert gone is not None and norole is not None
    assert (gone[0], gone[2]) == ("expired", "AE 'GONE' is not in the AE table")
    assert norole[0] == "expired" and "did not accept the SCP role" in str(norole[2])
    for destination, state in (("GONE", gone), ("NOROLE", norole)):
        times = [t for d, t, _ in kind.failures if d == destination]
        expired = [e for d, _, e in kind.failures if d == destination]
        assert len(times) == state[1] >= 4  # 0, 0.1, 0.3, 0.7, then the deadline
        assert expired == [False] * (len(times) - 1) + [True]
        # the backoff, load-independent: attempt n+1 begins no sooner than
        # 0.1 * 2**n s after attempt n failed (or at the deadline, if sooner); a
        # loaded machine only makes the waits longer
        began, failed = attempts.began[destination], attempts.failed[destination]
        assert len(began) == len(failed) == len(times)
        for n in range(len(began) - 1):
            due = min(failed[n] + 0.1 * 2 ** n, now + 1.0)
            assert began[n + 1] >= due, (destination, n, began, failed)


async def _no_pending(store: SQLiteStore) -> bool:
    return await store.count_pending() == 0


async def test_a_fresh_start_takes_what_a_dead_worker_held(tmp_path: Path) -> None:
    """Another worker takes items only once the dead one's lease has run out; a fresh
    start (``reset_for_start``) takes them all at once."""
    got: list[str] = []
    ae = AE("RIS")
    ae.add_supported_context(UPS_EVENT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        got.append(str(event.event_information.TextString))
        return 0, None

    server = await ae.start_server(("127.0.0.1", 0),
                                   evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    store = SQLiteStore.in_directory(tmp_path)
    peers = {"RIS": Peer(host="127.0.0.1", port=server.port)}
    policy = DeliveryPolicy(poll_interval=0.05)
    now = time.time()
    assert await store.enqueue(_event("ran-out", None, now), owner="dead", lease_until=now - 1)
    assert await store.enqueue(_event("held", None, now), owner="dead", lease_until=now + 600)
    try:
        worker = Deliverer(store, AE("UPS_SCP"), peers, policy)
        worker.add_kind(StoredReports("ups", UPS_EVENT))
        await worker.start()
        await _until(lambda: _delivered(store, "ran-out"))
        await asyncio.sleep(0.3)  # several polls: "held" is still the dead worker's
        await worker.stop(1.0)
        assert got == ["ran-out"]
        assert await store.delivery_state("ups", "held") == ("pending", 0, None)
        assert await store.reset_for_start(time.time()) == 1
        restarted = Deliverer(store, AE("UPS_SCP"), peers, policy)
        restarted.add_kind(StoredReports("ups", UPS_EVENT))
        await restarted.start()
        try:
            await _until(lambda: _delivered(store, "held"))
        finally:
            await restarted.stop(1.0)
    finally:
        await server.shutdown(1.0)
        await store.aclose()
    assert got == ["ran-out", "held"]


async def _delivered(store: SQLiteStore, key: str) -> bool:
    state = await store.delivery_state("ups", key)
    return state is not None and state[0] == "delivered"


async def test_associations_bounded_per_destination_and_in_all(tmp_path: Path) -> None:
    """Two destinations, 12 reports each, one per association turn: at most
    ``max_per_destination`` associations to one AE, ``max_concurrent`` in all."""
    open_now: dict[str, set[int]] = {"RIS1": set(), "RIS2": set()}
    peak = {"RIS1": 0, "RIS2": 0, "all": 0}
    got: list[str] = []

    def track(event: Event) -> None:
        title = event.assoc.acceptor.ae_title
        open_now[title].add(id(event.assoc))
        peak[title] = max(peak[title], len(open_now[title]))
        peak["all"] = max(peak["all"], sum(len(s) for s in open_now.values()))

    def untrack(event: Event) -> None:
        for group in open_now.values():
            group.discard(id(event.assoc))

    async def on_report(event: Event) -> tuple[int, None]:
        got.append(str(event.event_information.TextString))
        await asyncio.sleep(0.02)
        return 0, None

    ae = AE("RIS")
    ae.require_called_aet = False
    ae.add_supported_context(UPS_EVENT, scp_role=True)
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=[
        (evt.EVT_N_EVENT_REPORT, on_report), (evt.EVT_ACCEPTED, track),
        (evt.EVT_CONN_CLOSE, untrack)])
    store = SQLiteStore.in_directory(tmp_path)
    peer = Peer(host="127.0.0.1", port=server.port)
    deliverer = Deliverer(store, AE("UPS_SCP"), {"RIS1": peer, "RIS2": peer},
                          DeliveryPolicy(max_concurrent=3, max_per_destination=2,
                                         batch_size=1))
    deliverer.add_kind(StoredReports("ups", UPS_EVENT))
    try:
        now = time.time()
        keys = [f"{title}-{n}" for n in range(12) for title in ("RIS1", "RIS2")]
        for key in keys:
            item = _event(key, None, now)
            assert await store.enqueue(Delivery(
                kind="ups", key=key, destination=key.split("-")[0], sop_class=UPS_EVENT,
                sop_instance=UPS_INSTANCE, payload=item.payload, event_type=1,
                created_at=now, deadline=now + 60, next_attempt=now))
        await deliverer.start()
        await _until(lambda: _no_pending(store))
    finally:
        await deliverer.stop(1.0)
        await server.shutdown(1.0)
        await store.aclose()
    assert sorted(got) == sorted(keys)  # each once
    assert 1 <= peak["RIS1"] <= 2 and 1 <= peak["RIS2"] <= 2
    assert 2 <= peak["all"] <= 3, peak


class _Flaky(SQLiteStore):
    """A store whose queue and commitment writes fail ``failures`` times first."""

    def __init__(self, directory: Path, failures: int) -> None:
        super().__init__(SQLiteDatabase.in_directory(directory))
        self.failures = failures

    def _fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")

    async def claim_due(self, *args: Any, **kwargs: Any) -> list[Delivery]:
        self._fail()
        return await super().claim_due(*args, **kwargs)

    async def add_commitment(self, *args: Any, **kwargs: Any) -> bool:
        self._fail()
        return await super().add_commitment(*args, **kwargs)


async def test_a_failing_store_is_answered_and_outlived(tmp_path: Path) -> None:
    """A commitment the store cannot take is answered 0x0110, not lost in a crash; a
    queue that fails is tried again, and what was queued is delivered."""
    store = _Flaky(tmp_path, failures=1)
    got: asyncio.Queue[str] = asyncio.Queue()
    modality = AE("CT1")
    modality.add_supported_context(STORAGE_COMMITMENT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        await got.put(str(event.event_information.TransactionUID))
        return 0, None

    back = await modality.start_server(("127.0.0.1", 0),
                                       evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    scp = StorageCommitmentSCP(store, AE("ARCHIVE"),
                               {"CT1": Peer(host="127.0.0.1", port=back.port)},
                               DeliveryPolicy(same_association=False, poll_interval=0.1))
    ae = AE("ARCHIVE")
    ae.add_supported_context(STORAGE_COMMITMENT)
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=scp.handlers())
    requester = AE("CT1")
    requester.add_requested_context(STORAGE_COMMITMENT)
    uids = [str(generate_uid()) for _ in range(2)]
    try:
        async with requester.associate("127.0.0.1", server.port,
                                       ae_title="ARCHIVE") as assoc:
            answers = [await assoc.send_n_action(commit_request(uid, [("1.2.3", "1.2.3.4")]),
                                                 1, STORAGE_COMMITMENT,
                                                 STORAGE_COMMITMENT_INSTANCE)
                       for uid in uids]
        assert [(a.Status, str(a.get("ErrorComment", ""))) for a, _ in answers] == [
            (0x0110, "the commitment store is unavailable"), (0, "")]
        assert await store.commitment_state(uids[0]) is None  # nothing half-written
        store.failures = 2  # the runner's next two claims fail
        await scp.start()
        assert await asyncio.wait_for(got.get(), 20) == uids[1]
        assert store.failures == 0
    finally:
        await scp.stop(1.0)
        await server.shutdown(1.0)
        await back.shutdown(1.0)
        await store.aclose()


async def test_an_association_proposes_only_its_reports_classes(tmp_path: Path) -> None:
    """One deliverer with two kinds (``serve``: commitment and UPS): a UPS report's
    association proposes the UPS Event class alone, with a role item making us SCP
    only (PS3.4 CC.3.1), a commitment report's the Storage Commitment class alone;
    then RIS's next report, a commitment one, goes on a new association of its own."""
    proposals: list[tuple[str, list[str], list[tuple[str, bool, bool]]]] = []
    peer = AE("PEER")
    for uid in (UPS_EVENT, STORAGE_COMMITMENT):
        peer.add_supported_context(uid, scp_role=True)

    def on_requested(event: Event) -> None:
        rq = event.assoc.proposal
        assert rq is not None
        proposals.append((rq.called_ae_title.strip(),
                          [c.abstract_syntax for c in rq.presentation_contexts],
                          [(r.sop_class_uid, r.scu_role, r.scp_role)
                           for r in rq.user_information.role_selection]))

    server = await peer.start_server(
        ("127.0.0.1", 0), evt_handlers=[(evt.EVT_REQUESTED, on_requested),
                                        (evt.EVT_N_EVENT_REPORT, lambda e: (0, None))])
    store = SQLiteStore.in_directory(tmp_path)
    table = {aet: Peer(host="127.0.0.1", port=server.port) for aet in ("RIS", "MOD")}
    deliverer = Deliverer(store, AE("ARCHIVE"), table, DeliveryPolicy(batch_size=1))
    deliverer.add_kind(StoredReports("ups", UPS_EVENT))
    deliverer.add_kind(StoredReports("sc", STORAGE_COMMITMENT))
    try:
        now = time.time()
        payload = _event("x", None, now).payload
        for kind, uid, key, destination in (
                ("ups", UPS_EVENT, "u1", "RIS"), ("sc", STORAGE_COMMITMENT, "c1", "RIS"),
                ("sc", STORAGE_COMMITMENT, "c2", "MOD")):
            instance = UPS_INSTANCE if kind == "ups" else STORAGE_COMMITMENT_INSTANCE
            assert await store.enqueue(Delivery(
                kind=kind, key=key, destination=destination, sop_class=uid,
                sop_instance=instance, payload=payload, event_type=1, ordering="o",
                created_at=now, deadline=now + 60, next_attempt=now))
        await deliverer.start()
        await _until(lambda: _no_pending(store))
        states = [await store.delivery_state(k, key)
                  for k, key in (("ups", "u1"), ("sc", "c1"), ("sc", "c2"))]
    finally:
        await deliverer.stop(1.0)
        await server.shutdown(1.0)
        await store.aclose()
    assert [s[:2] for s in states if s is not None] == [("delivered", 1)] * 3
    ups_only = ([UPS_EVENT], [(UPS_EVENT, False, True)])
    sc_only = ([STORAGE_COMMITMENT], [(STORAGE_COMMITMENT, False, True)])
    assert sorted(p[1:] for p in proposals if p[0] == "RIS") == sorted([ups_only, sc_only])
    assert [p[1:] for p in proposals if p[0] == "MOD"] == [sc_only]
