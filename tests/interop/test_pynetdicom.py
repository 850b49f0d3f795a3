"""pynetdicom 3.x as the peer in both roles over loopback.

pynetdicom blocks, so its calls run in a worker thread (``asyncio.to_thread``) while
the event loop keeps serving our side; its servers run with ``block=False`` and are
shut down in teardown.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import pynetdicom
import pytest
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from aiodimse import AE, Event, build_role, evt

from ..aio._helpers import (
    FILM_SESSION,
    STGCMT,
    STGCMT_INSTANCE,
    VERIFICATION,
    bounded,
    ds_of,
    make_scp_ae,
    make_scu_ae,
    serving,
)

T = TypeVar("T")

PN_CLASSES = (VERIFICATION, STGCMT, FILM_SESSION)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def in_thread(func: Callable[..., T], *args: Any, timeout: float = 20.0, **kw: Any) -> T:
    """Run a blocking pynetdicom call in a thread, bounded."""
    return await asyncio.wait_for(asyncio.to_thread(func, *args, **kw), timeout)


def _pn_ae(title: str, *, supported: Sequence[str] = (), requested: Sequence[str] = ()) -> Any:
    ae = pynetdicom.AE(ae_title=title)
    ae.acse_timeout = 5
    ae.dimse_timeout = 10
    ae.network_timeout = 10
    for uid in supported:
        ae.add_supported_context(uid)
    for uid in requested:
        ae.add_requested_context(uid)
    return ae


@contextmanager
def pn_server(ae: Any, handlers: Sequence[Any] = ()) -> Iterator[int]:
    """A pynetdicom server on a free port, not blocking; shut down on exit."""
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=list(handlers))
    try:
        yield port
    finally:
        server.shutdown()


@asynccontextmanager
async def pn_association(
    port: int,
    *,
    handlers: Sequence[Any] = (),
    ext_neg: Sequence[Any] | None = None,
    classes: Sequence[str] = PN_CLASSES,
    title: str = "PN_SCU",
) -> AsyncIterator[Any]:
    """A pynetdicom requestor association with our server; released (or aborted) on exit."""
    ae = _pn_ae(title, requested=classes)
    assoc = await in_thread(
        ae.associate, "127.0.0.1", port, ae_title="TEST_SCP", evt_handlers=list(handlers),
        ext_neg=list(ext_neg) if ext_neg else None,
    )
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            await in_thread(assoc.release)
        else:
            assoc.abort()


# -- our SCU, pynetdicom's SCP ----------------------------------------------------------


def _pn_service_handlers(seen: dict[str, Any]) -> list[Any]:
    def on_echo(event: Any) -> int:
        seen["echo"] = event.assoc.requestor.ae_title
        return 0x0000

    def on_action(event: Any) -> tuple[int, Dataset]:
        seen["action"] = (event.action_type, event.action_information.PatientID)
        return 0x0000, ds_of(PatientID="ACTION-REPLY")

    def on_create(event: Any) -> tuple[int, Dataset]:
        seen["create"] = (event.request.AffectedSOPInstanceUID, event.attribute_list.PatientID)
        reply = ds_of(PatientID="CREATED")
        if event.request.AffectedSOPInstanceUID is None:
            reply.AffectedSOPInstanceUID = seen["new_uid"]
        return 0x0000, reply

    def on_set(event: Any) -> tuple[int, Dataset]:
        seen["set"] = event.modification_list.PatientID
        return 0x0000, ds_of(PatientID="SET-REPLY")

    def on_get(event: Any) -> tuple[int, Dataset]:
        seen["get"] = list(event.attribute_identifiers)
        return 0x0000, ds_of(PatientID="GET-REPLY", PatientName="Get^Reply")

    def on_delete(event: Any) -> int:
        seen["delete"] = event.request.RequestedSOPInstanceUID
        return 0x0000

    def on_report(event: Any) -> tuple[int, Dataset]:
        seen["report"] = (event.event_type, event.event_information.PatientID)
        return 0x0000, ds_of(PatientID="REPORT-REPLY")

    return [
        (pynetdicom.evt.EVT_C_ECHO, on_echo),
        (pynetdicom.evt.EVT_N_ACTION, on_action),
        (pynetdicom.evt.EVT_N_CREATE, on_create),
        (pynetdicom.evt.EVT_N_SET, on_set),
        (pynetdicom.evt.EVT_N_GET, on_get),
        (pynetdicom.evt.EVT_N_DELETE, on_delete),
        (pynetdicom.evt.EVT_N_EVENT_REPORT, on_report),
    ]


async def test_our_scu_against_pynetdicom_scp_all_services() -> None:
    seen: dict[str, Any] = {"new_uid": generate_uid()}
    pn = _pn_ae("PN_SCP", supported=PN_CLASSES)
    with pn_server(pn, _pn_service_handlers(seen)) as port:
        scu = make_scu_ae("OUR_SCU", classes=PN_CLASSES)
        async with scu.associate("127.0.0.1", port, ae_title="PN_SCP") as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0
            uid = generate_uid()
            status, reply = await bounded(
                assoc.send_n_action(ds_of(PatientID="A"), 4, FILM_SESSION, uid)
            )
            assert status.Status == 0 and reply is not None
            assert reply.PatientID == "ACTION-REPLY"
            assert status.ActionTypeID == 4

            status, reply = await bounded(
                assoc.send_n_create(ds_of(PatientID="C"), FILM_SESSION, uid)
            )
            assert status.Status == 0 and reply is not None
            assert status.AffectedSOPInstanceUID == uid
            assert reply.PatientID == "CREATED"

            status, reply = await bounded(assoc.send_n_create(ds_of(PatientID="C2"), FILM_SESSION))
            assert status.Status == 0 and reply is not None
            assert status.AffectedSOPInstanceUID == seen["new_uid"]  # pynetdicom loses this
            assert reply.PatientID == "CREATED"

            status, reply = await bounded(
                assoc.send_n_set(ds_of(PatientID="S"), FILM_SESSION, uid)
            )
            assert status.Status == 0 and reply is not None
            assert reply.PatientID == "SET-REPLY"

            status, reply = await bounded(
                assoc.send_n_get([0x00100020, 0x00100010], FILM_SESSION, uid)
            )
            assert status.Status == 0 and reply is not None
            assert reply.PatientName == "Get^Reply"

            status, reply = await bounded(
                assoc.send_n_event_report(ds_of(PatientID="E"), 3, STGCMT, STGCMT_INSTANCE)
            )
            assert status.Status == 0 and reply is not None
            assert status.EventTypeID == 3
            assert reply.PatientID == "REPORT-REPLY"

            status = await bounded(assoc.send_n_delete(FILM_SESSION, uid))
            assert status.Status == 0
    assert seen["echo"] == "OUR_SCU"
    assert seen["action"] == (4, "A")
    assert seen["create"] == (None, "C2")
    assert seen["set"] == "S"
    assert seen["get"] == [Tag(0x00100020), Tag(0x00100010)]
    assert seen["delete"] == uid
    assert seen["report"] == (3, "E")


async def test_our_scu_against_pynetdicom_scp_failure_and_unbound() -> None:
    def on_action(event: Any) -> tuple[int, Dataset]:
        return 0x0112, ds_of(PatientID="dropped")

    pn = _pn_ae("PN_SCP", supported=PN_CLASSES)
    with pn_server(pn, [(pynetdicom.evt.EVT_N_ACTION, on_action)]) as port:
        async with make_scu_ae(classes=PN_CLASSES).associate("127.0.0.1", port) as assoc:
            status, reply = await bounded(assoc.send_n_action(None, 1, FILM_SESSION, "1.2.3"))
            assert status.Status == 0x0112
            assert reply is None
            # no N-SET handler bound at pynetdicom
            status, reply = await bounded(assoc.send_n_set(ds_of(PatientID="x"), FILM_SESSION,
                                                           "1.2.3"))
            assert status.Status == 0x0110
            assert reply is None


# -- pynetdicom's SCU, our SCP ----------------------------------------------------------


def _our_service_handlers(seen: dict[str, Any]) -> list[Any]:
    async def on_action(event: Event) -> tuple[int, Dataset]:
        seen["action"] = (event.action_type, event.action_information.PatientID)
        return 0x0000, ds_of(PatientID="ACTION-REPLY")

    async def on_create(event: Event) -> tuple[int, Dataset]:
        seen["create"] = (event.request.AffectedSOPInstanceUID, event.attribute_list.PatientID)
        reply = ds_of(PatientID="CREATED")
        if event.request.AffectedSOPInstanceUID is None:
            reply.AffectedSOPInstanceUID = seen["new_uid"]
        return 0x0000, reply

    async def on_set(event: Event) -> tuple[int, Dataset]:
        seen["set"] = event.modification_list.PatientID
        return 0x0000, ds_of(PatientID="SET-REPLY")

    async def on_get(event: Event) -> tuple[int, Dataset]:
        seen["get"] = event.attribute_identifiers
        return 0x0000, ds_of(PatientID="GET-REPLY", PatientName="Get^Reply")

    def on_delete(event: Event) -> int:  # a sync handler, as pynetdicom's
        seen["delete"] = event.request.RequestedSOPInstanceUID
        return 0x0000

    async def on_report(event: Event) -> tuple[int, Dataset]:
        seen["report"] = (event.event_type, event.event_information.PatientID)
        return 0x0000, ds_of(PatientID="REPORT-REPLY")

    return [
        (evt.EVT_N_ACTION, on_action),
        (evt.EVT_N_CREATE, on_create),
        (evt.EVT_N_SET, on_set),
        (evt.EVT_N_GET, on_get),
        (evt.EVT_N_DELETE, on_delete),
        (evt.EVT_N_EVENT_REPORT, on_report),
    ]


async def test_pynetdicom_scu_against_our_scp_all_services() -> None:
    seen: dict[str, Any] = {"new_uid": generate_uid()}
    uid = generate_uid()
    async with (
        serving(_our_service_handlers(seen), ae=make_scp_ae(classes=PN_CLASSES)) as server,
        pn_association(server.port) as assoc,
    ):
        status = await in_thread(assoc.send_c_echo)
        assert status.Status == 0

        status, reply = await in_thread(
            assoc.send_n_action, ds_of(PatientID="A"), 4, FILM_SESSION, uid
        )
        assert status.Status == 0 and reply.PatientID == "ACTION-REPLY"

        status, reply = await in_thread(
            assoc.send_n_create, ds_of(PatientID="C"), FILM_SESSION, uid
        )
        assert status.Status == 0 and reply.PatientID == "CREATED"

        status, reply = await in_thread(assoc.send_n_create, ds_of(PatientID="C2"), FILM_SESSION)
        assert status.Status == 0 and reply.PatientID == "CREATED"
        assert "AffectedSOPInstanceUID" not in reply

        status, reply = await in_thread(assoc.send_n_set, ds_of(PatientID="S"), FILM_SESSION, uid)
        assert status.Status == 0 and reply.PatientID == "SET-REPLY"

        status, reply = await in_thread(
            assoc.send_n_get, [0x00100020, 0x00100010], FILM_SESSION, uid
        )
        assert status.Status == 0 and reply.PatientName == "Get^Reply"

        status, reply = await in_thread(
            assoc.send_n_event_report, ds_of(PatientID="E"), 3, STGCMT, STGCMT_INSTANCE
        )
        assert status.Status == 0 and reply.PatientID == "REPORT-REPLY"

        status = await in_thread(assoc.send_n_delete, FILM_SESSION, uid)
        assert status.Status == 0
    assert seen["action"] == (4, "A")
    assert seen["create"] == (None, "C2")
    assert seen["set"] == "S"
    assert seen["get"] == [Tag(0x00100020), Tag(0x00100010)]
    assert seen["delete"] == uid
    assert seen["report"] == (3, "E")


def _unencodable() -> Dataset:
    import warnings

    ds = Dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.add_new(0x00280010, "US", "not a number")
    return ds


_REPLY = ds_of(PatientID="REPLY")

PN_OUTCOMES: list[tuple[str, Any, int, bool]] = [
    ("success-with-dataset", (0x0000, _REPLY), 0x0000, True),
    ("warning-with-dataset", (0xB000, _REPLY), 0xB000, True),
    ("raises", RuntimeError("boom"), 0x0110, False),
    ("status-neither-int-nor-dataset", ("bad", _REPLY), 0xC002, False),
    ("status-dataset-without-status", (ds_of(ErrorComment="x"), _REPLY), 0xC001, False),
    ("unknown-status", (0xFFF0, _REPLY), 0xFFF0, False),
    ("failure-with-dataset", (0x0112, _REPLY), 0x0112, False),
    ("unencodable-reply", (0x0000, "UNENCODABLE"), 0x0110, False),
    ("bare-int", 0x0000, 0x0000, False),
    ("none", None, 0x0110, False),
    ("status-dataset-fields", (ds_of(Status=0x0106, ErrorComment="bad", ErrorID=7), None),
     0x0106, False),
]


@pytest.mark.parametrize(
    ("result", "expected", "has_reply"),
    [pytest.param(r, s, d, id=i) for i, r, s, d in PN_OUTCOMES],
)
async def test_outcome_table_seen_from_pynetdicom_scu(
    result: Any, expected: int, has_reply: bool
) -> None:
    async def on_action(event: Event) -> Any:
        if isinstance(result, Exception):
            raise result
        if isinstance(result, tuple) and len(result) == 2 and result[1] == "UNENCODABLE":
            return result[0], _unencodable()
        return result

    async with (
        serving([(evt.EVT_N_ACTION, on_action)], ae=make_scp_ae(classes=PN_CLASSES)) as server,
        pn_association(server.port) as assoc,
    ):
        status, reply = await in_thread(
            assoc.send_n_action, ds_of(PatientID="X"), 1, STGCMT, STGCMT_INSTANCE
        )
        assert status.Status == expected
        if has_reply:
            assert reply is not None
            assert reply.PatientID == "REPLY"
        else:
            # pynetdicom gives an empty Dataset for a success without a data set
            assert reply is None or len(reply) == 0
        if expected == 0x0106:
            assert status.ErrorComment == "bad"
            assert status.ErrorID == 7
        # the association is kept
        assert assoc.is_established
        assert (await in_thread(assoc.send_c_echo)).Status == 0


async def test_no_handler_bound_seen_from_pynetdicom_scu() -> None:
    async with (
        serving(ae=make_scp_ae(classes=PN_CLASSES)) as server,
        pn_association(server.port) as assoc,
    ):
        status, reply = await in_thread(assoc.send_n_action, None, 1, STGCMT, STGCMT_INSTANCE)
        assert status.Status == 0x0110
        assert reply is None
        status = await in_thread(assoc.send_n_delete, FILM_SESSION, "1.2.3")
        assert status.Status == 0x0110
        assert (await in_thread(assoc.send_c_echo)).Status == 0


async def test_event_report_during_action_to_pynetdicom_scu() -> None:
    order: list[str] = []
    lock = threading.Lock()

    async def on_action(event: Event) -> tuple[int, None]:
        status, _ = await event.assoc.send_n_event_report(
            ds_of(TransactionUID=event.action_information.TransactionUID), 1, STGCMT,
            STGCMT_INSTANCE,
        )
        with lock:
            order.append(f"report answered 0x{int(status.Status):04X}")
        return 0x0000, None

    def pn_on_report(event: Any) -> tuple[int, None]:
        with lock:
            order.append(f"report {event.event_type} {event.event_information.TransactionUID}")
        return 0x0000, None

    async with (
        serving([(evt.EVT_N_ACTION, on_action)], ae=make_scp_ae(classes=PN_CLASSES)) as server,
        pn_association(
            server.port, handlers=[(pynetdicom.evt.EVT_N_EVENT_REPORT, pn_on_report)]
        ) as assoc,
    ):
        status, _ = await in_thread(
            assoc.send_n_action, ds_of(TransactionUID="1.2.3.4"), 1, STGCMT, STGCMT_INSTANCE
        )
        with lock:
            order.append(f"action 0x{int(status.Status):04X}")
    assert order == ["report 1 1.2.3.4", "report answered 0x0000", "action 0x0000"]


async def test_storage_commitment_pynetdicom_scu_our_scp_reports_on_new_association() -> None:
    """pynetdicom requests commitment; our SCP connects back with the SCP role."""
    transaction = generate_uid()
    got: list[tuple[int, str, str]] = []
    got_event = threading.Event()
    background: list[asyncio.Task[Any]] = []

    def pn_on_report(event: Any) -> tuple[int, None]:
        got.append(
            (event.event_type, event.event_information.TransactionUID,
             event.assoc.requestor.ae_title)
        )
        got_event.set()
        return 0x0000, None

    modality = _pn_ae("PN_MODALITY", requested=[STGCMT])
    modality.add_supported_context(STGCMT, scu_role=True, scp_role=True)

    with pn_server(modality, [(pynetdicom.evt.EVT_N_EVENT_REPORT, pn_on_report)]) as pn_port:

        async def report(uid: str) -> Dataset:
            reporter = AE("OUR_ARCHIVE")
            reporter.add_requested_context(STGCMT)
            async with reporter.associate(
                "127.0.0.1", pn_port, ae_title="PN_MODALITY",
                ext_neg=[build_role(STGCMT, scp_role=True)],
            ) as back:
                (ctx,) = back.accepted_contexts
                assert ctx.as_scp
                status, _ = await back.send_n_event_report(
                    ds_of(TransactionUID=uid), 1, STGCMT, STGCMT_INSTANCE
                )
                return status

        async def on_action(event: Event) -> tuple[int, None]:
            uid = event.action_information.TransactionUID
            background.append(asyncio.ensure_future(report(uid)))
            return 0x0000, None

        scp = make_scp_ae("OUR_ARCHIVE", classes=[STGCMT])
        async with serving([(evt.EVT_N_ACTION, on_action)], ae=scp) as server:
            pn_scu = _pn_ae("PN_MODALITY", requested=[STGCMT])
            assoc = await in_thread(pn_scu.associate, "127.0.0.1", server.port)
            assert assoc.is_established
            try:
                status, _ = await in_thread(
                    assoc.send_n_action, ds_of(TransactionUID=transaction), 1, STGCMT,
                    STGCMT_INSTANCE,
                )
            finally:
                await in_thread(assoc.release)  # release at once: the report comes later
            assert status.Status == 0
            (report_status,) = await bounded(asyncio.gather(*background))
            assert report_status.Status == 0
            assert await in_thread(got_event.wait, 5)
    assert got == [(1, transaction, "OUR_ARCHIVE")]


async def test_storage_commitment_our_scu_pynetdicom_scp_reports_on_new_association() -> None:
    """We request commitment; pynetdicom connects back to our AE with the SCP role."""
    transaction = generate_uid()
    reported = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    ours = make_scu_ae("OUR_MODALITY", classes=[STGCMT])
    ours.add_supported_context(STGCMT, scp_role=True)

    async def on_report(event: Event) -> tuple[int, None]:
        reported.set_result(
            (event.event_type, event.event_information.TransactionUID,
             event.assoc.requestor.ae_title, event.context.abstract_syntax)
        )
        return 0x0000, None

    our_server = await bounded(
        ours.start_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    )
    our_port = our_server.port

    def report_back(uid: str) -> None:
        try:
            reporter = _pn_ae("PN_ARCHIVE", requested=[STGCMT])
            back = reporter.associate(
                "127.0.0.1", our_port, ae_title="OUR_MODALITY",
                ext_neg=[pynetdicom.build_role(STGCMT, scp_role=True)],
            )
            assert back.is_established
            try:
                status, _ = back.send_n_event_report(
                    ds_of(TransactionUID=uid), 1, STGCMT, STGCMT_INSTANCE
                )
                assert status.Status == 0
            finally:
                back.release()
        except BaseException as exc:
            errors.append(exc)

    def pn_on_action(event: Any) -> tuple[int, None]:
        uid = event.action_information.TransactionUID
        thread = threading.Thread(target=report_back, args=(uid,), daemon=True)
        threads.append(thread)
        thread.start()
        return 0x0000, None

    pn_scp = _pn_ae("PN_ARCHIVE", supported=[STGCMT])
    try:
        with pn_server(pn_scp, [(pynetdicom.evt.EVT_N_ACTION, pn_on_action)]) as pn_port:
            async with ours.associate("127.0.0.1", pn_port, ae_title="PN_ARCHIVE") as assoc:
                status, _ = await bounded(
                    assoc.send_n_action(ds_of(TransactionUID=transaction), 1, STGCMT,
                                        STGCMT_INSTANCE)
                )
                assert status.Status == 0
            event_type, uid, calling, syntax = await bounded(reported)
            for thread in threads:
                await loop.run_in_executor(None, thread.join, 10)
                assert not thread.is_alive()
    finally:
        await bounded(our_server.shutdown(grace=0))
    assert errors == []
    assert (event_type, uid, calling, syntax) == (1, transaction, "PN_ARCHIVE", STGCMT)
