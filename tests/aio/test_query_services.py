"""C-FIND, C-GET, C-MOVE and C-CANCEL between two of our AEs over loopback.

Handlers are (async) generators as in pynetdicom; the SCU's calls are async
iterators of (status, identifier).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, evt
from aiodimse.events import Event
from aiodimse.presentation import build_role
from aiodimse.scu_query import PENDING_LIMIT, QueryResponses
from aiodimse.services.delivery import Peer
from aiodimse.serving_query import move_destination

from ._helpers import VERIFICATION, bounded, ds_of, serving

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
PATIENT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
QR = (VERIFICATION, STUDY_FIND, STUDY_MOVE, STUDY_GET, PATIENT_FIND)


def qr_scp(title: str = "QR_SCP", storage_roles: bool = True) -> AE:
    ae = AE(title)
    for uid in QR:
        ae.add_supported_context(uid)
    for uid in (CT, MR):  # C-GET: the requestor may be the storage SCP
        ae.add_supported_context(uid, scu_role=True, scp_role=storage_roles)
    for uid in (CT, MR):  # C-MOVE: we are the storage SCU on the sub-association
        ae.add_requested_context(uid)
    return ae


def qr_scu(storage: tuple[str, ...] = (CT,)) -> AE:
    ae = AE("QR_SCU")
    for uid in (*QR, *storage):
        ae.add_requested_context(uid)
    return ae


def query(**keys: Any) -> Dataset:
    return ds_of(QueryRetrieveLevel="STUDY", **keys)


def instance(sop_class: str = CT, n: int = 0) -> Dataset:
    return ds_of(SOPClassUID=sop_class, SOPInstanceUID=generate_uid(),
               PatientID=f"P{n}", StudyInstanceUID="1.2.3", InstanceNumber=n)


def uids(ds: Dataset) -> list[str]:
    value = ds.FailedSOPInstanceUIDList
    return [value] if isinstance(value, str) else list(value)


async def collect(responses: Any) -> list[tuple[int, Dataset | None]]:
    return [(int(status.Status), ident) async for status, ident in responses]


@pytest.mark.asyncio
async def test_find_streams_each_match_before_the_handler_makes_the_next() -> None:
    gate = asyncio.Event()
    produced: list[int] = []

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        assert event.identifier.QueryRetrieveLevel == "STUDY"
        for n in range(3):
            if n == 2:
                await gate.wait()  # the last only once the SCU has seen the first
            produced.append(n)
            yield 0xFF00, ds_of(PatientID=f"P{n}", QueryRetrieveLevel="STUDY")

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        responses = assoc.send_c_find(query(PatientID="*"), STUDY_FIND)
        status, first = await bounded(responses.__anext__())
        assert status.Status == 0xFF00 and first is not None and first.PatientID == "P0"
        assert produced in ([0], [0, 1])  # the handler is still short of its last match
        gate.set()
        rest = await bounded(collect(responses))
        assert [(s, i.PatientID if i is not None else None) for s, i in rest] == [
            (0xFF00, "P1"), (0xFF00, "P2"), (0x0000, None)]


@pytest.mark.asyncio
@pytest.mark.parametrize("model", ["S", STUDY_FIND])
async def test_find_with_a_plain_generator_and_query_model_letters(model: str) -> None:
    def on_find(event: Event) -> Iterator[tuple[int, Dataset | None]]:
        for n in range(int(event.identifier.NumberOfStudyRelatedInstances)):
            yield 0xFF01, ds_of(PatientID=f"P{n}")

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        got = await bounded(collect(assoc.send_c_find(
            query(NumberOfStudyRelatedInstances=4), model)))
    assert [s for s, _ in got] == [0xFF01] * 4 + [0x0000]
    assert [i.PatientID for _, i in got[:-1]] == ["P0", "P1", "P2", "P3"]  # type: ignore[union-attr]
    assert got[-1][1] is None


@pytest.mark.asyncio
async def test_cancel_mid_stream_stops_the_generator_and_answers_fe00() -> None:
    closed = asyncio.Event()
    seen_cancel: list[bool] = []

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        n = 0
        try:
            while True:  # for ever, unless cancelled
                seen_cancel.append(event.is_cancelled)
                yield 0xFF00, ds_of(PatientID=f"P{n}")
                n += 1
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        responses = assoc.send_c_find(query(), STUDY_FIND)
        assert isinstance(responses, QueryResponses)
        statuses = []
        async for status, _ident in responses:
            statuses.append(int(status.Status))
            if len(statuses) == 3:
                assert responses.message_id is not None
                assoc.send_c_cancel(responses.message_id)
        await bounded(closed.wait())
        assert statuses[:3] == [0xFF00] * 3
        assert statuses[-1] == 0xFE00
        assert len(statuses) < 10  # stopped, not run on
        assert seen_cancel and not any(seen_cancel[:3])
        echo = await bounded(assoc.send_c_echo())  # the association is kept
        assert echo.Status == 0x0000


@pytest.mark.asyncio
async def test_leaving_the_iteration_early_cancels_and_waits_for_the_final() -> None:
    closed = asyncio.Event()
    yielded = 0

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        nonlocal yielded
        try:
            while not event.is_cancelled:
                yielded += 1
                yield 0xFF00, ds_of(PatientID="X")
        finally:
            closed.set()

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        responses = assoc.send_c_find(query(), STUDY_FIND)
        async with responses:
            async for _status, _ident in responses:
                break
        await bounded(closed.wait())
        assert assoc.in_flight == 0  # the final response came: nothing outstanding
        assert (await bounded(assoc.send_c_echo())).Status == 0x0000
    assert yielded < 10_000  # bounded by the cancel, not by the handler


@pytest.mark.asyncio
async def test_a_slow_consumer_stops_reading_past_the_pending_bound() -> None:
    total = PENDING_LIMIT * 8

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        for n in range(total):  # 10 kB each: one read holds a few dozen at most
            yield 0xFF00, ds_of(PatientID=f"P{n}", PatientComments="x" * 10_000)

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        responses = assoc.send_c_find(query(), STUDY_FIND)
        assert isinstance(responses, QueryResponses)
        stream = responses._stream
        for _ in range(200):
            await asyncio.sleep(0.01)
            if stream.held:
                break
        assert stream.held
        assert assoc.proto is not None and not assoc.proto.transport.is_reading()
        await asyncio.sleep(0.05)
        held = len(stream.queue)
        assert PENDING_LIMIT <= held < total // 2  # bounded, however many the SCP has
        got = await bounded(collect(responses))
        assert [s for s, _ in got] == [0xFF00] * total + [0x0000]
        assert assoc.proto.transport.is_reading()


@pytest.mark.asyncio
async def test_a_raising_handler_is_answered_c311_and_the_association_kept() -> None:
    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        yield 0xFF00, ds_of(PatientID="A")
        raise RuntimeError("index broken")

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        got = await bounded(collect(assoc.send_c_find(query(), STUDY_FIND)))
        assert [s for s, _ in got] == [0xFF00, 0xC311]
        assert (await bounded(assoc.send_c_echo())).Status == 0x0000


@pytest.mark.asyncio
async def test_a_failure_status_ends_the_find() -> None:
    def on_find(event: Event) -> Iterator[tuple[Any, Dataset | None]]:
        status = Dataset()
        status.Status = 0xA900
        status.ErrorComment = "no such level"
        yield status, None
        raise AssertionError("pulled after the final status")

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        got = [(s, i) async for s, i in assoc.send_c_find(query(), STUDY_FIND)]
    assert len(got) == 1
    assert got[0][0].Status == 0xA900 and got[0][0].ErrorComment == "no such level"


@pytest.mark.asyncio
async def test_get_stores_sub_operations_into_the_requestors_handler() -> None:
    instances = [instance(CT, n) for n in range(3)] + [instance(MR, 9)]  # MR: no context
    stored: list[tuple[str, int]] = []

    async def on_get(event: Event) -> AsyncIterator[Any]:
        yield len(instances)
        for ds in instances:
            yield 0xFF00, ds

    async def on_store(event: Event) -> int:
        stored.append((event.dataset.SOPInstanceUID, event.dataset.InstanceNumber))
        assert event.request.MoveOriginatorApplicationEntityTitle is None
        return 0x0000

    ae = qr_scu()
    async with serving([(evt.EVT_C_GET, on_get)], ae=qr_scp()) as server, \
            ae.associate("127.0.0.1", server.port, ext_neg=[build_role(CT, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        got = [(s, i) async for s, i in assoc.send_c_get(query(), STUDY_GET)]
        assert (await bounded(assoc.send_c_echo())).Status == 0x0000
    assert stored == [(ds.SOPInstanceUID, n) for n, ds in enumerate(instances[:3])]
    pendings, (final, failed) = got[:-1], got[-1]
    assert [(s.Status, s.NumberOfRemainingSuboperations, s.NumberOfCompletedSuboperations)
            for s, _ in pendings] == [(0xFF00, 3, 1), (0xFF00, 2, 2), (0xFF00, 1, 3)]
    assert final.Status == 0xB000  # one failed: no context with the SCP role for MR
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations,
            final.NumberOfWarningSuboperations) == (3, 1, 0)
    assert "NumberOfRemainingSuboperations" not in final
    assert failed is not None and uids(failed) == [instances[3].SOPInstanceUID]


@pytest.mark.asyncio
async def test_get_without_the_scp_role_fails_every_sub_operation_a702() -> None:
    async def on_get(event: Event) -> AsyncIterator[Any]:
        yield 2
        yield 0xFF00, instance(CT, 1)
        yield 0xFF00, instance(CT, 2)

    async with serving([(evt.EVT_C_GET, on_get)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:  # no role selection
        got = await bounded(collect(assoc.send_c_get(query(), "S")))
    final, failed = got[-1]
    assert final == 0xA702
    assert failed is not None and len(uids(failed)) == 2


@pytest.mark.asyncio
async def test_move_opens_a_sub_association_to_the_destination() -> None:
    received: list[tuple[str, str | None, int | None]] = []

    async def on_store(event: Event) -> int:
        rq = event.request
        received.append((event.dataset.SOPInstanceUID,
                         rq.MoveOriginatorApplicationEntityTitle, rq.MoveOriginatorMessageID))
        return 0x0000

    dest_ae = AE("DEST")
    dest_ae.add_supported_context(CT)
    instances = [instance(CT, n) for n in range(2)]
    async with serving([(evt.EVT_C_STORE, on_store)], ae=dest_ae) as dest:

        table = {"DEST": Peer(host="127.0.0.1", port=dest.port)}

        async def on_move(event: Event) -> AsyncIterator[Any]:
            assert event.move_destination == "DEST"
            yield move_destination(table, event.move_destination)
            yield len(instances)
            for ds in instances:
                yield 0xFF00, ds

        async with serving([(evt.EVT_C_MOVE, on_move)], ae=qr_scp()) as server, \
                qr_scu().associate("127.0.0.1", server.port) as assoc:
            responses = assoc.send_c_move(query(), "DEST", STUDY_MOVE)
            got = [(s, i) async for s, i in responses]
            message_id = responses.message_id
    final, ident = got[-1]
    assert final.Status == 0x0000 and ident is None
    assert final.NumberOfCompletedSuboperations == 2
    assert received == [(ds.SOPInstanceUID, "QR_SCU", message_id) for ds in instances]


@pytest.mark.asyncio
async def test_move_to_an_unknown_destination_is_a801() -> None:
    pulled_after = False

    def on_move(event: Event) -> Iterator[Any]:
        nonlocal pulled_after
        yield move_destination({}, event.move_destination)
        pulled_after = True
        yield 1

    async with serving([(evt.EVT_C_MOVE, on_move)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        got = await bounded(collect(assoc.send_c_move(query(), "NOWHERE", "S")))
        assert (await bounded(assoc.send_c_echo())).Status == 0x0000
    assert [s for s, _ in got] == [0xA801]
    assert not pulled_after


@pytest.mark.asyncio
@pytest.mark.parametrize(("operation", "code"), [("get", 0xC411), ("move", 0xC511)])
async def test_a_result_that_is_no_status_pair_fails_with_its_services_code(
        operation: str, code: int) -> None:
    """A sub-operation result that is not ``(status, dataset)`` ends the request with
    the failure code of its own service (C-GET 0xC4xx, C-MOVE 0xC5xx)."""
    dest_ae = AE("DEST")
    dest_ae.add_supported_context(CT)
    async with serving([], ae=dest_ae) as dest:
        table = {"DEST": Peer(host="127.0.0.1", port=dest.port)}

        def on_retrieve(event: Event) -> Iterator[Any]:
            if operation == "move":
                yield move_destination(table, event.move_destination)
            yield 1
            yield "not a pair"

        event = evt.EVT_C_GET if operation == "get" else evt.EVT_C_MOVE
        async with serving([(event, on_retrieve)], ae=qr_scp()) as server, \
                qr_scu().associate("127.0.0.1", server.port,
                                   ext_neg=[build_role(CT, scp_role=True)]) as assoc:
            responses = (assoc.send_c_get(query(), STUDY_GET) if operation == "get"
                         else assoc.send_c_move(query(), "DEST", STUDY_MOVE))
            got = await bounded(collect(responses))
            assert (await bounded(assoc.send_c_echo())).Status == 0x0000  # kept
    assert [s for s, _ in got] == [code]


@pytest.mark.asyncio
async def test_cancel_during_a_get_answers_fe00_with_the_remaining_count() -> None:
    started = asyncio.Event()

    async def on_get(event: Event) -> AsyncIterator[Any]:
        yield 5
        for n in range(5):
            if n == 1:
                started.set()
                while not event.is_cancelled:
                    await asyncio.sleep(0.01)
            yield 0xFF00, instance(CT, n)

    async def on_store(event: Event) -> int:
        return 0x0000

    async with serving([(evt.EVT_C_GET, on_get)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port, ext_neg=[build_role(CT, scp_role=True)],
                               evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
        responses = assoc.send_c_get(query(), STUDY_GET)
        got = []
        async for status, ident in responses:
            got.append((status, ident))
            if status.Status == 0xFF00:
                await bounded(started.wait())
                assoc.send_c_cancel(responses.message_id,
                                    query_model=STUDY_GET)
    final = got[-1][0]
    assert final.Status == 0xFE00
    assert final.NumberOfRemainingSuboperations == 4
    assert final.NumberOfCompletedSuboperations == 1


@pytest.mark.asyncio
async def test_no_find_handler_is_answered_0211() -> None:
    async with serving([], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        got = await bounded(collect(assoc.send_c_find(query(), STUDY_FIND)))
    assert got == [(0x0211, None)]


def test_unknown_query_models_raise() -> None:
    from aiodimse.scu_query import query_model_uid

    assert query_model_uid("P", "move") == "1.2.840.10008.5.1.4.1.2.1.2"
    assert query_model_uid("W", "find") == "1.2.840.10008.5.1.4.31"
    with pytest.raises(ValueError, match="query model"):
        query_model_uid("W", "get")


@pytest.mark.asyncio
async def test_the_dimse_timeout_restarts_on_each_pending_response() -> None:
    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        for n in range(4):  # 4 x 0.3 s: over the 0.6 s timeout in all, never per gap
            await asyncio.sleep(0.3)
            yield 0xFF00, ds_of(PatientID=f"P{n}")

    scu = qr_scu()
    scu.dimse_timeout = 0.6
    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            scu.associate("127.0.0.1", server.port) as assoc:
        got = await bounded(collect(assoc.send_c_find(query(), STUDY_FIND)))
    assert [s for s, _ in got] == [0xFF00] * 4 + [0x0000]


@pytest.mark.asyncio
async def test_a_silent_gap_past_the_dimse_timeout_raises() -> None:
    from aiodimse.errors import DIMSETimeoutError

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        yield 0xFF00, ds_of(PatientID="P0")
        await asyncio.sleep(3)
        yield 0xFF00, ds_of(PatientID="P1")

    scu = qr_scu()
    scu.dimse_timeout = 0.3
    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            scu.associate("127.0.0.1", server.port) as assoc:
        responses = assoc.send_c_find(query(), STUDY_FIND)
        status, _ = await bounded(responses.__anext__())
        assert status.Status == 0xFF00
        with pytest.raises(DIMSETimeoutError):
            await bounded(responses.__anext__())


@pytest.mark.asyncio
async def test_a_result_over_the_handler_time_limit_fails_the_request() -> None:
    closed = asyncio.Event()

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        try:
            yield 0xFF00, ds_of(PatientID="P0")
            await asyncio.sleep(30)
            yield 0xFF00, ds_of(PatientID="P1")
        finally:
            closed.set()

    scp = qr_scp()
    scp.handler_timeout = 0.3
    async with serving([(evt.EVT_C_FIND, on_find)], ae=scp) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        got = await bounded(collect(assoc.send_c_find(query(), STUDY_FIND)), 5)
        await bounded(closed.wait())
    assert [s for s, _ in got] == [0xFF00, 0xC311]


@pytest.mark.asyncio
async def test_dropping_the_iterator_early_cancels_the_request() -> None:
    closed = asyncio.Event()
    cancelled: list[bool] = []

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        try:
            while True:
                yield 0xFF00, ds_of(PatientID="X")
                await asyncio.sleep(0.01)
        finally:
            cancelled.append(event.is_cancelled)
            closed.set()

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:
        async for _status, _ident in assoc.send_c_find(query(), STUDY_FIND):
            break  # no aclose: the dropped iterator sends the C-CANCEL-RQ
        await bounded(closed.wait())
        assert cancelled == [True]
        assert (await bounded(assoc.send_c_echo())).Status == 0x0000
        for _ in range(100):
            if assoc.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        assert assoc.in_flight == 0  # the final 0xFE00 came and was let go


@pytest.mark.asyncio
async def test_a_server_stopping_closes_a_generator_that_never_ends() -> None:
    closed = asyncio.Event()

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        try:
            while True:
                yield 0xFF00, ds_of(PatientID="X")
                await asyncio.sleep(0.05)
        finally:
            closed.set()

    scu = qr_scu()
    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server:
        assoc = await bounded(scu.associate("127.0.0.1", server.port))
        responses = assoc.send_c_find(query(), STUDY_FIND)
        for _ in range(2):
            status, _ident = await bounded(responses.__anext__())
            assert status.Status == 0xFF00
    await bounded(closed.wait())  # the shutdown cancelled the driver, which closed it
    await bounded(assoc.wait_closed())


@pytest.mark.asyncio
async def test_closing_a_request_still_waiting_for_the_window_cancels_it_once_sent() -> None:
    gate = asyncio.Event()
    closed = asyncio.Event()

    async def on_find(event: Event) -> AsyncIterator[tuple[int, Dataset]]:
        if event.identifier.PatientID == "A":
            yield 0xFF00, ds_of(PatientID="A1")
            await gate.wait()
            return
        try:
            while True:  # B: for ever unless cancelled
                yield 0xFF00, ds_of(PatientID="B")
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    async with serving([(evt.EVT_C_FIND, on_find)], ae=qr_scp()) as server, \
            qr_scu().associate("127.0.0.1", server.port) as assoc:  # one outstanding
        first = assoc.send_c_find(query(PatientID="A"), STUDY_FIND)
        second = assoc.send_c_find(query(PatientID="B"), STUDY_FIND)
        assert first.message_id is not None and second.message_id is None
        closing = asyncio.ensure_future(second.aclose())
        await asyncio.sleep(0.05)
        gate.set()
        assert [s for s, _ in await bounded(collect(first))] == [0xFF00, 0x0000]
        await bounded(closing)
        await bounded(closed.wait())
        assert second.message_id is not None  # it was sent, then cancelled
        assert assoc.in_flight == 0
