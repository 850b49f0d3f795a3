"""Library hooks (aiodimse.observe): a server tells an attached observer what happened."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiodimse import AssociationRejectedError, Event, evt
from aiodimse.observe import AssociationRecord, Observer, Observers, Rejection, RequestRecord

from ._helpers import (
    MPPS,
    STGCMT,
    STGCMT_INSTANCE,
    VERIFICATION,
    bounded,
    ds_of,
    make_scp_ae,
    make_scu_ae,
)


class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.ended: list[AssociationRecord] = []
        self.answered: list[RequestRecord] = []
        self.rejections: list[Rejection] = []

    def association_opened(self, record: AssociationRecord) -> None:
        self.calls.append(("opened", record.peer_address))

    def association_accepted(self, record: AssociationRecord) -> None:
        self.calls.append(("accepted", record.calling_ae_title))

    def association_rejected(self, record: AssociationRecord, rejection: Rejection) -> None:
        self.calls.append(("rejected", record.calling_ae_title))
        self.rejections.append(rejection)

    def association_ended(self, record: AssociationRecord) -> None:
        self.calls.append(("ended", record.outcome))
        self.ended.append(record)

    def request_started(self, record: AssociationRecord, request: RequestRecord) -> None:
        self.calls.append(("started", request.service))

    def request_answered(self, record: AssociationRecord, request: RequestRecord) -> None:
        self.calls.append(("answered", request.service))
        self.answered.append(request)


async def _wait(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_observer_sees_associations_requests_and_bytes() -> None:
    recorder = Recorder()
    scp = make_scp_ae()
    scp.observer = recorder

    async def slow_action(event: Event) -> tuple[int, None]:
        await asyncio.sleep(0.05)  # suspends: answered from a task
        return 0x0000, None

    async def refuse_create(event: Event) -> tuple[int, None]:
        return 0x0106, None

    server = await bounded(scp.start_server(("127.0.0.1", 0), evt_handlers=[
        (evt.EVT_N_ACTION, slow_action), (evt.EVT_N_CREATE, refuse_create)]))
    try:
        async with make_scu_ae("CT1").associate("127.0.0.1", server.port) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0
            assert (await bounded(assoc.send_c_echo())).Status == 0  # the reused response
            status, _ = await bounded(assoc.send_n_action(ds_of(PatientID="1"), 1, STGCMT,
                                                          STGCMT_INSTANCE))
            assert status.Status == 0
            status, _ = await bounded(assoc.send_n_create(ds_of(PatientID="1"), MPPS,
                                                          "1.2.3.4"))
            assert status.Status == 0x0106
        await _wait(lambda: recorder.ended)
    finally:
        await server.shutdown(grace=0)
    names = [name for name, _ in recorder.calls]
    assert names == ["opened", "accepted", "started", "answered", "started", "answered",
                     "started", "answered", "started", "answered", "ended"]
    assert recorder.calls[0] == ("opened", "127.0.0.1")
    assert recorder.calls[1] == ("accepted", "CT1")
    assert [(r.service, r.sop_class, r.status) for r in recorder.answered] == [
        ("C-ECHO", VERIFICATION, 0), ("C-ECHO", VERIFICATION, 0),
        ("N-ACTION", STGCMT, 0), ("N-CREATE", MPPS, 0x0106)]
    action = recorder.answered[2]
    assert action.latency is not None and action.latency >= 0.04  # the handler's sleep
    record = recorder.ended[0]
    assert record.outcome == "released"
    assert record.requests == 4
    assert record.duration is not None and record.duration > 0.04
    # 4 requests and a release each way, as P-DATA-TF and A-RELEASE PDUs at least
    assert record.bytes_in > 4 * 80 and record.bytes_out > 4 * 80
    assert not record.in_flight


async def test_rejection_with_reason_and_abort_outcome() -> None:
    recorder = Recorder()
    scp = make_scp_ae()
    scp.require_calling_aet = ["CT1"]
    scp.observer = recorder
    server = await bounded(scp.start_server(("127.0.0.1", 0)))
    try:
        with pytest.raises(AssociationRejectedError):
            await bounded(make_scu_ae("INTRUDER").associate("127.0.0.1", server.port))
        assoc = await bounded(make_scu_ae("CT1").associate("127.0.0.1", server.port))
        assoc.abort()
        await _wait(lambda: len(recorder.ended) == 2)
    finally:
        await server.shutdown(grace=0)
    assert [r.reason for r in recorder.rejections] == ["calling AE title not recognized"]
    assert (recorder.rejections[0].result, recorder.rejections[0].source,
            recorder.rejections[0].reason_code) == (1, 1, 3)
    assert ("rejected", "INTRUDER") in recorder.calls
    assert sorted(r.outcome for r in recorder.ended) == ["aborted", "rejected"]


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
async def test_malformed_and_refused_requests_are_counted_without_latency() -> None:
    recorder = Recorder()
    scp = make_scp_ae()
    scp.observer = recorder
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_action(event: Event) -> tuple[int, None]:
        entered.set()
        await release.wait()
        return 0x0000, None

    server = await bounded(scp.start_server(("127.0.0.1", 0), evt_handlers=[
        (evt.EVT_N_ACTION, slow_action)]))
    assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
    idle = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
    try:
        # an Affected SOP Instance UID that is no UID: 0x0117 before any handler
        status, _ = await bounded(assoc.send_n_create(ds_of(PatientID="1"), MPPS, "1.02.3"))
        assert status.Status == 0x0117
        busy = asyncio.ensure_future(assoc.send_n_action(ds_of(PatientID="1"), 1, STGCMT,
                                                         STGCMT_INSTANCE))
        await bounded(entered.wait())
        server.drain()  # stopping: a new request is refused, the one in flight goes on
        assert (await bounded(idle.send_c_echo())).Status == 0x0213
        release.set()
        assert (await bounded(busy))[0].Status == 0
    finally:
        await server.shutdown(grace=1)
    answered = [(r.service, r.status, r.latency is None) for r in recorder.answered]
    assert answered == [("N-CREATE", 0x0117, True), ("C-ECHO", 0x0213, True),
                        ("N-ACTION", 0, False)]


async def test_an_observer_that_raises_changes_nothing() -> None:
    class Broken(Observer):
        def request_answered(self, record: AssociationRecord, request: RequestRecord) -> None:
            raise RuntimeError("observer bug")

    recorder = Recorder()
    scp = make_scp_ae()
    scp.observer = Observers(Broken(), recorder)
    server = await bounded(scp.start_server(("127.0.0.1", 0)))
    try:
        async with make_scu_ae().associate("127.0.0.1", server.port) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0
    finally:
        await server.shutdown(grace=1)
    assert [r.status for r in recorder.answered] == [0]  # the second observer still told


async def test_no_observer_builds_plain_connections() -> None:
    from aiodimse.aio.counting import CountingProtocol
    from aiodimse.aio.protocol import DULProtocol

    scp = make_scp_ae()
    server = await bounded(scp.start_server(("127.0.0.1", 0)))
    try:
        proto = server._new_connection()
        assert type(proto) is DULProtocol
        assert proto.user.observer is None  # type: ignore[attr-defined]
        server.observer = Recorder()
        assert type(server._new_connection()) is CountingProtocol
    finally:
        await server.shutdown(grace=0)


async def test_store_calls_are_timed_by_operation_even_when_they_raise(tmp_path: Any) -> None:
    from aiodimse.store.sqlite import SQLiteStore

    class Timings(Observer):
        def __init__(self) -> None:
            self.calls: list[tuple[str, float]] = []

        def store_call(self, operation: str, seconds: float) -> None:
            self.calls.append((operation, seconds))

    class Broken(Observer):
        def store_call(self, operation: str, seconds: float) -> None:
            raise RuntimeError("observer bug")

    store = SQLiteStore.in_directory(tmp_path)
    try:
        assert await store.call(store.db.count_pending) == 0  # not timed: no observer
        timings = store.observer = Timings()
        assert await store.call(store.db.count_pending) == 0

        def fails() -> None:
            raise ValueError("disk on fire")

        with pytest.raises(ValueError, match="disk on fire"):
            await store.call(fails)
        assert [name for name, _ in timings.calls] == ["count_pending", "fails"]
        assert all(seconds >= 0 for _, seconds in timings.calls)
        store.observer = Broken()  # its bug changes neither the result nor the error
        assert await store.call(store.db.count_pending) == 0
        with pytest.raises(ValueError, match="disk on fire"):
            await store.call(fails)
    finally:
        store.observer = None
        await store.aclose()
