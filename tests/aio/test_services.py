"""Our SCU against our SCP over loopback: C-ECHO, the six N-services and the handler contract."""

from __future__ import annotations

import asyncio
import copy
import pickle
import struct
import threading
import warnings
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import generate_uid

import aiodimse.answering as answering_module
from aiodimse import AE, Association, Event, evt
from aiodimse.datasets import DatasetDecodeError
from aiodimse.dimse import DIMSEMessage
from aiodimse.requests import status_dataset
from tests.dimse._helpers import all_messages
from tests.examples import examples

from ._helpers import (
    FILM_SESSION,
    IMPLICIT_LE,
    MPPS,
    PRINTER,
    PRINTER_INSTANCE,
    STGCMT,
    STGCMT_INSTANCE,
    VERIFICATION,
    RawDataset,
    bounded,
    ds_of,
    make_scu_ae,
    serving,
    session,
)


async def _echo_ok(assoc: Association) -> None:
    """The association still works: a C-ECHO answers success."""
    status = await bounded(assoc.send_c_echo())
    assert status.Status == 0x0000


# -- C-ECHO ---------------------------------------------------------------------------


async def test_c_echo_without_handler_succeeds() -> None:
    async with serving() as server:
        async with make_scu_ae().associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            assert assoc.is_established
            status = await bounded(assoc.send_c_echo())
            assert status.Status == 0x0000
            assert status.AffectedSOPClassUID == VERIFICATION
        assert assoc.is_released
        assert not assoc.is_established


async def test_c_echo_handler_status_reaches_scu() -> None:
    seen: list[Event] = []

    async def on_echo(event: Event) -> int:
        seen.append(event)
        return 0x0122

    async with serving([(evt.EVT_C_ECHO, on_echo)]) as server:
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        try:
            status = await bounded(assoc.send_c_echo())
        finally:
            await bounded(assoc.release())
    assert status.Status == 0x0122
    assert len(seen) == 1
    assert seen[0].name == "EVT_C_ECHO"
    assert seen[0].request.AffectedSOPClassUID == VERIFICATION


# -- the six N-services, data sets both ways -------------------------------------------


async def test_n_action_information_and_reply() -> None:
    seen: list[tuple[int, Dataset]] = []

    async def on_action(event: Event) -> tuple[int, Dataset]:
        info = event.action_information
        seen.append((event.action_type, info))
        return 0x0000, ds_of(TransactionUID=info.TransactionUID, PatientID="REPLY")

    transaction = generate_uid()
    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        status, reply = await bounded(
            assoc.send_n_action(
                ds_of(TransactionUID=transaction, PatientName="Doe^J"), 3, STGCMT,
                STGCMT_INSTANCE,
            )
        )
    assert status.Status == 0x0000
    assert status.ActionTypeID == 3
    assert status.AffectedSOPClassUID == STGCMT
    assert status.AffectedSOPInstanceUID == STGCMT_INSTANCE
    assert reply is not None
    assert reply.TransactionUID == transaction
    assert reply.PatientID == "REPLY"
    (action_type, info), = seen
    assert action_type == 3
    assert info.PatientName == "Doe^J"


async def test_repeated_requests_each_get_their_own_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Identical N-ACTIONs (the reused-response path) keep every status, ID and reply."""
    outcomes: list[Any] = [
        (0x0000, None), (0x0000, None), (0x0000, None), (0x0000, None),
        (0x0110, None), (0x0110, None), (0x0000, ds_of(PatientID="R")), (0x0000, None),
        (0xB000, None), (0x0000, None), (0x0000, None),
    ]
    seen_ids: list[int] = []

    async def on_action(event: Event) -> Any:
        seen_ids.append(event.message_id or 0)
        return outcomes[len(seen_ids) - 1]

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        for i, expected in enumerate(outcomes):
            if i == len(outcomes) - 1:  # the DEBUG summary still names the response
                caplog.set_level("DEBUG", logger="aiodimse.association")
            status, reply = await bounded(
                assoc.send_n_action(ds_of(TransactionUID="1.2.3"), 1, STGCMT, STGCMT_INSTANCE)
            )
            assert status.Status == expected[0]
            assert status.AffectedSOPInstanceUID == STGCMT_INSTANCE
            assert status.ActionTypeID == 1
            assert (reply is not None) == (expected[1] is not None)
        assert len(set(seen_ids)) == len(outcomes)  # one Message ID each, all answered
    assert any("sent NActionRSP" in r.getMessage() for r in caplog.records)


async def test_repeated_n_actions_still_validate_and_vary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Repeated requests (the templated command path) keep validation and every field."""
    seen: list[tuple[int, int, str, str, bool]] = []

    async def on_action(event: Event) -> int:
        rq = event.request
        seen.append((rq.MessageID, event.action_type, rq.RequestedSOPClassUID,
                     rq.RequestedSOPInstanceUID, "TransactionUID" in event.action_information))
        return 0x0000

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        for action, ds in ((1, None), (1, None), (2, None), (1, ds_of(TransactionUID="1.2"))):
            status, _ = await bounded(assoc.send_n_action(ds, action, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0x0000 and status.ActionTypeID == action
        # equal to a cached key, but invalid: bool is not an int Action Type ID
        with pytest.raises(ValueError, match="ActionTypeID"):
            await assoc.send_n_action(None, True, STGCMT, STGCMT_INSTANCE)
        with pytest.raises(ValueError, match="RequestedSOPInstanceUID"):
            await assoc.send_n_action(None, 1, STGCMT, "1.2.\xe9")
        caplog.set_level("DEBUG", logger="aiodimse.association")
        await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
    ids = [s[0] for s in seen]
    assert len(set(ids)) == len(ids) == 5
    assert [s[1:] for s in seen] == [
        (1, STGCMT, STGCMT_INSTANCE, False), (1, STGCMT, STGCMT_INSTANCE, False),
        (2, STGCMT, STGCMT_INSTANCE, False), (1, STGCMT, STGCMT_INSTANCE, True),
        (1, STGCMT, STGCMT_INSTANCE, False),
    ]
    assert any(f"sent NActionRQ id={ids[-1]}" in r.getMessage() for r in caplog.records)


async def test_n_action_without_dataset_gives_empty_information() -> None:
    seen: list[Dataset] = []

    async def on_action(event: Event) -> tuple[int, None]:
        seen.append(event.action_information)
        return 0x0000, None

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        status, reply = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
    assert status.Status == 0x0000
    assert reply is None
    assert len(seen) == 1
    assert isinstance(seen[0], Dataset)
    assert len(seen[0]) == 0


async def test_n_create_with_instance_uid() -> None:
    seen: list[tuple[str | None, Dataset]] = []

    async def on_create(event: Event) -> tuple[int, Dataset]:
        seen.append((event.request.AffectedSOPInstanceUID, event.attribute_list))
        reply = Dataset()
        reply.update(event.attribute_list)
        reply.PerformedProcedureStepStatus = "IN PROGRESS"
        return 0x0000, reply

    uid = generate_uid()
    async with session([(evt.EVT_N_CREATE, on_create)]) as assoc:
        status, reply = await bounded(
            assoc.send_n_create(ds_of(PatientID="P1"), MPPS, uid)
        )
    assert status.Status == 0x0000
    assert status.AffectedSOPClassUID == MPPS
    assert status.AffectedSOPInstanceUID == uid
    assert reply is not None
    assert reply.PatientID == "P1"
    assert reply.PerformedProcedureStepStatus == "IN PROGRESS"
    assert seen[0][0] == uid
    assert seen[0][1].PatientID == "P1"


async def test_n_create_without_instance_uid_uid_from_reply() -> None:
    new_uid = generate_uid()
    requested: list[str | None] = []

    async def on_create(event: Event) -> tuple[int, Dataset]:
        requested.append(event.request.AffectedSOPInstanceUID)
        return 0x0000, ds_of(AffectedSOPInstanceUID=new_uid, PatientID="P2")

    async with session([(evt.EVT_N_CREATE, on_create)]) as assoc:
        status, reply = await bounded(assoc.send_n_create(ds_of(PatientID="P2"), MPPS))
    assert requested == [None]
    assert status.Status == 0x0000
    assert status.AffectedSOPInstanceUID == new_uid
    assert reply is not None
    assert reply.PatientID == "P2"
    # a command element, not an attribute: it is not repeated in the reply data set
    assert "AffectedSOPInstanceUID" not in reply


async def test_n_create_without_instance_uid_uid_from_status_dataset() -> None:
    new_uid = generate_uid()

    async def on_create(event: Event) -> tuple[Dataset, None]:
        return ds_of(Status=0x0000, AffectedSOPInstanceUID=new_uid), None

    async with session([(evt.EVT_N_CREATE, on_create)]) as assoc:
        status, reply = await bounded(assoc.send_n_create(ds_of(PatientID="P3"), MPPS))
    assert status.Status == 0x0000
    assert status.AffectedSOPInstanceUID == new_uid
    assert reply is None


async def test_n_create_without_instance_uid_reply_only_uid() -> None:
    """The reply held nothing but the new UID: no (empty) data set goes to the peer."""
    new_uid = generate_uid()

    async def on_create(event: Event) -> tuple[int, Dataset]:
        return 0x0000, ds_of(AffectedSOPInstanceUID=new_uid)

    async with session([(evt.EVT_N_CREATE, on_create)]) as assoc:
        status, reply = await bounded(assoc.send_n_create(None, MPPS))
        await _echo_ok(assoc)
    assert status.Status == 0x0000
    assert status.AffectedSOPInstanceUID == new_uid
    assert reply is None


async def test_n_create_without_any_uid_is_processing_failure() -> None:
    async def on_create(event: Event) -> tuple[int, Dataset]:
        return 0x0000, ds_of(PatientID="no uid here")

    async with session([(evt.EVT_N_CREATE, on_create)]) as assoc:
        status, reply = await bounded(assoc.send_n_create(ds_of(PatientID="x"), MPPS))
        await _echo_ok(assoc)
    assert status.Status == 0x0110
    assert reply is None


async def test_n_set_modification_list_and_reply() -> None:
    seen: list[Dataset] = []

    async def on_set(event: Event) -> tuple[int, Dataset]:
        mods = event.modification_list
        seen.append(mods)
        return 0x0000, ds_of(PerformedProcedureStepStatus=mods.PerformedProcedureStepStatus)

    uid = generate_uid()
    async with session([(evt.EVT_N_SET, on_set)]) as assoc:
        status, reply = await bounded(
            assoc.send_n_set(ds_of(PerformedProcedureStepStatus="COMPLETED"), MPPS, uid)
        )
    assert status.Status == 0x0000
    assert status.AffectedSOPInstanceUID == uid
    assert reply is not None
    assert reply.PerformedProcedureStepStatus == "COMPLETED"
    assert seen[0].PerformedProcedureStepStatus == "COMPLETED"


async def test_n_get_attribute_identifiers_and_reply() -> None:
    seen: list[Any] = []

    async def on_get(event: Event) -> tuple[int, Dataset]:
        seen.append(event.attribute_identifiers)
        store = ds_of(PrinterStatus="NORMAL", PrinterName="P1", Manufacturer="ACME")
        reply = Dataset()
        for tag in event.attribute_identifiers or [e.tag for e in store]:
            if tag in store:
                reply[tag] = store[tag]
        return 0x0000, reply

    async with session([(evt.EVT_N_GET, on_get)]) as assoc:
        status, reply = await bounded(
            assoc.send_n_get([0x21100010, 0x21100030], PRINTER, PRINTER_INSTANCE)
        )
        status_all, reply_all = await bounded(
            assoc.send_n_get(None, PRINTER, PRINTER_INSTANCE)
        )
    assert status.Status == 0x0000
    assert status.AffectedSOPInstanceUID == PRINTER_INSTANCE
    assert reply is not None
    assert reply.PrinterStatus == "NORMAL"
    assert reply.PrinterName == "P1"
    assert "Manufacturer" not in reply
    assert seen[0] == [Tag(0x21100010), Tag(0x21100030)]
    assert seen[1] == []
    assert status_all.Status == 0x0000
    assert reply_all is not None
    assert reply_all.Manufacturer == "ACME"


async def test_n_delete() -> None:
    seen: list[tuple[str, str]] = []

    async def on_delete(event: Event) -> int:
        seen.append((event.request.RequestedSOPClassUID, event.request.RequestedSOPInstanceUID))
        return 0x0000

    uid = generate_uid()
    async with session([(evt.EVT_N_DELETE, on_delete)]) as assoc:
        status = await bounded(assoc.send_n_delete(FILM_SESSION, uid))
    assert isinstance(status, Dataset)
    assert status.Status == 0x0000
    assert status.AffectedSOPClassUID == FILM_SESSION
    assert status.AffectedSOPInstanceUID == uid
    assert seen == [(FILM_SESSION, uid)]


async def test_n_event_report_information_and_reply() -> None:
    seen: list[tuple[int, Dataset]] = []

    async def on_report(event: Event) -> tuple[int, Dataset]:
        seen.append((event.event_type, event.event_information))
        return 0x0000, ds_of(PatientID="ACK")

    async with session([(evt.EVT_N_EVENT_REPORT, on_report)]) as assoc:
        status, reply = await bounded(
            assoc.send_n_event_report(
                ds_of(TransactionUID="1.2.3.4"), 2, STGCMT, STGCMT_INSTANCE
            )
        )
    assert status.Status == 0x0000
    assert status.EventTypeID == 2
    assert status.AffectedSOPInstanceUID == STGCMT_INSTANCE
    assert reply is not None
    assert reply.PatientID == "ACK"
    assert seen[0][0] == 2
    assert seen[0][1].TransactionUID == "1.2.3.4"


# -- lazy decoding ----------------------------------------------------------------------


async def test_untouched_dataset_is_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = answering_module.decode_dataset

    def counting(data: Any, ts: str, **kwargs: Any) -> Dataset:
        calls.append(len(data))
        return real(data, ts, **kwargs)

    monkeypatch.setattr(answering_module, "decode_dataset", counting)

    async def lazy(event: Event) -> tuple[int, None]:
        return 0x0000, None

    async def eager(event: Event) -> tuple[int, None]:
        # a second access is served from the cache: one decode per event
        assert event.modification_list.PatientID == "X"
        assert event.modification_list.PatientID == "X"
        return 0x0000, None

    handlers = [(evt.EVT_N_ACTION, lazy), (evt.EVT_N_SET, eager)]
    async with session(handlers) as assoc:
        status, _ = await bounded(
            assoc.send_n_action(ds_of(PatientID="X"), 1, STGCMT, STGCMT_INSTANCE)
        )
        assert status.Status == 0x0000
        assert calls == []
        status, _ = await bounded(assoc.send_n_set(ds_of(PatientID="X"), MPPS, "1.2.3"))
        assert status.Status == 0x0000
        assert len(calls) == 1


async def test_dataset_edits_persist_within_event() -> None:
    seen: list[str] = []

    async def on_action(event: Event) -> tuple[int, Dataset]:
        event.action_information.PatientID = "EDITED"
        seen.append(event.action_information.PatientID)
        return 0x0000, event.action_information

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        _, reply = await bounded(
            assoc.send_n_action(ds_of(PatientID="ORIG"), 1, STGCMT, STGCMT_INSTANCE)
        )
    assert seen == ["EDITED"]
    assert reply is not None
    assert reply.PatientID == "EDITED"


# Bytes that pydicom cannot read at all (a sequence of undefined length, no item tag).
_UNREADABLE = struct.pack("<HHI", 0x0008, 0x1115, 0xFFFFFFFF) + bytes(range(1, 9))
# Bytes that read, but one element's value is broken: FD (0018,9087) of 6 bytes.
_BAD_ELEMENT = struct.pack("<HHI", 0x0010, 0x0020, 2) + b"ID" + struct.pack(
    "<HHI", 0x0018, 0x9087, 6
) + b"abcdef"


@pytest.mark.usefixtures("raw_encoding")
async def test_broken_dataset_untouched_still_succeeds() -> None:
    async def ignore(event: Event) -> tuple[int, None]:
        return 0x0000, None

    async with session([(evt.EVT_N_ACTION, ignore)]) as assoc:
        status, _ = await bounded(
            assoc.send_n_action(RawDataset(_UNREADABLE), 1, STGCMT, STGCMT_INSTANCE)
        )
    assert status.Status == 0x0000


@pytest.mark.usefixtures("raw_encoding")
async def test_broken_dataset_raises_when_read() -> None:
    errors: list[BaseException] = []

    async def reads(event: Event) -> tuple[int, None]:
        try:
            event.action_information  # noqa: B018 - the read is the test
        except Exception as exc:
            errors.append(exc)
            raise
        return 0x0000, None

    async with session([(evt.EVT_N_ACTION, reads)]) as assoc:
        status, reply = await bounded(
            assoc.send_n_action(RawDataset(_UNREADABLE), 1, STGCMT, STGCMT_INSTANCE)
        )
        await _echo_ok(assoc)
    assert status.Status == 0x0110  # the handler raised
    assert reply is None
    assert len(errors) == 1
    assert isinstance(errors[0], DatasetDecodeError)


@pytest.mark.usefixtures("raw_encoding")
async def test_broken_element_raises_only_when_that_element_is_read() -> None:
    got: list[str] = []
    errors: list[BaseException] = []

    async def reads(event: Event) -> tuple[int, None]:
        info = event.action_information  # decodes fine: values are deferred
        got.append(info.PatientID)
        try:
            info.DiffusionBValue  # noqa: B018 - the broken element
        except Exception as exc:
            errors.append(exc)
        return 0x0000, None

    async with session([(evt.EVT_N_ACTION, reads)]) as assoc:
        status, _ = await bounded(
            assoc.send_n_action(RawDataset(_BAD_ELEMENT), 1, STGCMT, STGCMT_INSTANCE)
        )
    assert status.Status == 0x0000
    assert got == ["ID"]
    assert len(errors) == 1


# -- what the peer receives: the handler-outcome table ----------------------------------


def _unencodable() -> Dataset:
    ds = Dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.add_new(0x00280010, "US", "not a number")
    return ds


_REPLY = ds_of(PatientID="REPLY")

OUTCOMES: list[tuple[str, Any, int, bool]] = [
    # (id, handler result or exception, status the peer gets, reply dataset received)
    ("success-with-dataset", (0x0000, _REPLY), 0x0000, True),
    ("warning-with-dataset", (0x0001, _REPLY), 0x0001, True),
    ("warning-b000-with-dataset", (0xB000, _REPLY), 0xB000, True),
    ("raises", RuntimeError("boom"), 0x0110, False),
    ("status-neither-int-nor-dataset", ("bad", _REPLY), 0xC002, False),
    ("status-float", (1.5, None), 0xC002, False),
    ("status-dataset-without-status", (ds_of(ErrorComment="x"), _REPLY), 0xC001, False),
    ("unknown-status", (0xFFF0, _REPLY), 0xFFF0, False),
    ("failure-with-dataset", (0x0112, _REPLY), 0x0112, False),
    ("failure-c-range-with-dataset", (0xC123, _REPLY), 0xC123, False),
    ("unencodable-reply", (0x0000, "UNENCODABLE"), 0x0110, False),
    ("bare-int", 0x0000, 0x0000, False),
    ("bare-failure-int", 0x0124, 0x0124, False),
    ("bare-status-dataset", ds_of(Status=0xB007), 0xB007, False),
    ("none", None, 0x0110, False),
    ("wrong-length-tuple", (0x0000, None, None), 0x0110, False),
    ("reply-not-a-dataset", (0x0000, "not a dataset"), 0x0110, False),
]


@pytest.mark.parametrize("suspends", [False, True], ids=["at-once", "after-suspending"])
@pytest.mark.parametrize(
    ("result", "expected_status", "has_reply"),
    [pytest.param(r, s, d, id=i) for i, r, s, d in OUTCOMES],
)
async def test_handler_outcome_table(
    result: Any, expected_status: int, has_reply: bool, suspends: bool
) -> None:
    """The same answer whether the handler returns in its first step or in its Task."""

    async def on_action(event: Event) -> Any:
        if suspends:
            await asyncio.sleep(0)
        if isinstance(result, Exception):
            raise result
        if isinstance(result, tuple) and len(result) == 2 and result[1] == "UNENCODABLE":
            return result[0], _unencodable()
        return result

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        status, reply = await bounded(
            assoc.send_n_action(ds_of(PatientID="X"), 1, STGCMT, STGCMT_INSTANCE)
        )
        # the association is kept in every row
        await _echo_ok(assoc)
        status2, _ = await bounded(
            assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE)
        )
        assert status2.Status == expected_status
    assert status.Status == expected_status
    if has_reply:
        assert reply is not None
        assert reply.PatientID == "REPLY"
    else:
        assert reply is None


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("action", 0x0110),
        ("create", 0x0110),
        ("set", 0x0110),
        ("get", 0x0110),
        ("delete", 0x0110),
        ("event_report", 0x0110),
        ("echo", 0x0000),
    ],
)
async def test_no_handler_bound(service: str, expected: int) -> None:
    async with session() as assoc:
        status, reply = await bounded(_call(assoc, service))
        await _echo_ok(assoc)
    assert status.Status == expected
    assert reply is None


async def _call(assoc: Association, service: str) -> tuple[Dataset, Dataset | None]:
    ds = ds_of(PatientID="X")
    if service == "action":
        return await assoc.send_n_action(ds, 1, STGCMT, STGCMT_INSTANCE)
    if service == "create":
        return await assoc.send_n_create(ds, MPPS, generate_uid())
    if service == "set":
        return await assoc.send_n_set(ds, MPPS, "1.2.3")
    if service == "get":
        return await assoc.send_n_get([0x00100020], PRINTER, PRINTER_INSTANCE)
    if service == "delete":
        return await assoc.send_n_delete(FILM_SESSION, "1.2.3"), None
    if service == "event_report":
        return await assoc.send_n_event_report(ds, 1, STGCMT, STGCMT_INSTANCE)
    return await assoc.send_c_echo(), None


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param(0x0000, 0x0000, id="int"),
        pytest.param(0x0112, 0x0112, id="failure-int"),
        pytest.param(ds_of(Status=0x0001), 0x0001, id="status-dataset"),
        pytest.param(None, 0xC002, id="none"),
        pytest.param((0x0000, None), 0xC002, id="pair"),
        pytest.param(ds_of(ErrorComment="x"), 0xC001, id="dataset-without-status"),
        pytest.param(RuntimeError("boom"), 0x0110, id="raises"),
    ],
)
async def test_n_delete_outcomes(result: Any, expected: int) -> None:
    async def on_delete(event: Event) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    async with session([(evt.EVT_N_DELETE, on_delete)]) as assoc:
        status = await bounded(assoc.send_n_delete(FILM_SESSION, "1.2.3"))
        await _echo_ok(assoc)
    assert status.Status == expected


async def test_status_dataset_optional_fields_reach_peer() -> None:
    async def on_action(event: Event) -> tuple[Dataset, None]:
        return ds_of(
            Status=0x0106,
            ErrorComment="value out of range",
            ErrorID=0x1234,
            OffendingElement=[0x00100020, 0x00100010],
        ), None

    async def on_set(event: Event) -> tuple[Dataset, Dataset]:
        return ds_of(Status=0x0107, AttributeIdentifierList=[0x00100030]), ds_of(PatientID="W")

    handlers = [(evt.EVT_N_ACTION, on_action), (evt.EVT_N_SET, on_set)]
    async with session(handlers) as assoc:
        status, reply = await bounded(
            assoc.send_n_action(ds_of(PatientID="X"), 1, STGCMT, STGCMT_INSTANCE)
        )
        set_status, set_reply = await bounded(
            assoc.send_n_set(ds_of(PatientID="X"), MPPS, "1.2.3")
        )
    assert status.Status == 0x0106
    assert status.ErrorComment == "value out of range"
    assert status.ErrorID == 0x1234
    assert [int(t) for t in status.OffendingElement] == [0x00100020, 0x00100010]
    assert reply is None
    assert set_status.Status == 0x0107
    # one AT value reads back as a single tag (pydicom), as in pynetdicom
    assert set_status.AttributeIdentifierList == 0x00100030
    assert set_reply is not None
    assert set_reply.PatientID == "W"


_STATUS_KEYWORDS = (
    "AffectedSOPClassUID", "Status", "ErrorID", "AffectedSOPInstanceUID", "EventTypeID",
    "ActionTypeID", "ErrorComment", "OffendingElement", "AttributeIdentifierList",
)


# hypothesis makes invalid UIDs on purpose; pydicom warns about each
@pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")
@settings(max_examples=examples(200), deadline=None)
@given(message=all_messages)
def test_status_dataset_is_the_one_pydicom_setattr_builds(message: DIMSEMessage) -> None:
    """Every response class and field mix: the Dataset pynetdicom's way (setattr) would hold."""
    expected = Dataset()
    for keyword in _STATUS_KEYWORDS:
        value = getattr(message, keyword, None)
        if value is not None:
            setattr(expected, keyword, list(value) if isinstance(value, tuple) else value)
    for _ in range(2):  # the second call runs the cached builder
        got = status_dataset(message)
        assert isinstance(got, Dataset) and got == expected
        assert list(got.keys()) == list(expected.keys())
        for theirs in expected:  # DataElements, in tag order
            mine = got[theirs.tag]
            assert type(mine.value) is type(theirs.value)
            assert list(vars(mine).items()) == list(vars(theirs).items())  # and in order
    got.Status = 0xC000  # a fresh Dataset each time: editing one leaves the next alone
    assert status_dataset(message).get("Status") == getattr(message, "Status", None)


def _deferred(ds: Dataset) -> bool:
    """Whether ``ds``'s elements are still to be made (a StatusDataset not yet used)."""
    return "_dict" not in vars(ds)


# hypothesis makes invalid UIDs on purpose; pydicom warns about each
@pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")
@settings(max_examples=examples(200), deadline=None)
@given(message=all_messages)
def test_a_deferred_status_dataset_is_the_built_one_whatever_is_done_first(
    message: DIMSEMessage,
) -> None:
    """Reading Status alone makes no element; any other use gives the full Dataset."""
    expected = Dataset()
    for keyword in _STATUS_KEYWORDS:
        value = getattr(message, keyword, None)
        if value is not None:
            setattr(expected, keyword, list(value) if isinstance(value, tuple) else value)
    status = getattr(message, "Status", None)
    rare = any(getattr(message, k, None) is not None for k in _STATUS_KEYWORDS[-3:])

    ds = status_dataset(message)
    assert _deferred(ds) is not rare  # the rare fields take pydicom's setattr at once
    assert getattr(ds, "Status", None) == status
    assert type(getattr(ds, "Status", None)) is type(status)
    # Still deferred after reading a Status (no Status: the read made the elements).
    assert _deferred(ds) is (status is not None and not rare)
    assert ds == expected and _deferred(ds) is False
    assert getattr(ds, "Status", None) == status  # read from the element now

    uses = [
        lambda d: d == expected,
        lambda d: expected == d,
        lambda d: list(d.keys()) == list(expected.keys()),
        lambda d: ("Status" in d) is (status is not None),
        lambda d: d.to_json_dict() == expected.to_json_dict(),
        lambda d: str(d) == str(expected),
        lambda d: copy.deepcopy(d) == expected,
        lambda d: copy.copy(d) == expected,
        lambda d: pickle.loads(pickle.dumps(d)) == expected,
        lambda d: ("Status" in dir(d)) is (status is not None),
        lambda d: [e.tag for e in d] == [e.tag for e in expected],
    ]
    for use in uses:
        assert use(status_dataset(message))
    edited = status_dataset(message)
    edited.Status = 0xA700  # before anything was made
    assert edited.Status == 0xA700 and edited[0x00000900].value == 0xA700
    assert len(edited) == len(expected) + (status is None)
    removed = status_dataset(message)
    if status is not None:
        del removed.Status
        assert getattr(removed, "Status", None) is None and "Status" not in removed
        assert len(removed) == len(expected) - 1


# -- the event object -------------------------------------------------------------------

_PROPS = {
    "action_information": evt.EVT_N_ACTION,
    "action_type": evt.EVT_N_ACTION,
    "attribute_list": evt.EVT_N_CREATE,
    "event_information": evt.EVT_N_EVENT_REPORT,
    "event_type": evt.EVT_N_EVENT_REPORT,
    "attribute_identifiers": evt.EVT_N_GET,
    "modification_list": evt.EVT_N_SET,
}


async def test_event_members() -> None:
    events: dict[str, Event] = {}
    wrong: dict[str, list[str]] = {}

    async def record(event: Event) -> Any:
        events[event.name] = event
        missing = []
        for prop, owner in _PROPS.items():
            if owner is event.event:
                getattr(event, prop)  # must not raise
                continue
            try:
                getattr(event, prop)
            except AttributeError:
                missing.append(prop)
        wrong[event.name] = missing
        return 0x0000 if event.event is evt.EVT_N_DELETE else (0x0000, None)

    bound = [
        (e, record)
        for e in (
            evt.EVT_N_ACTION,
            evt.EVT_N_CREATE,
            evt.EVT_N_SET,
            evt.EVT_N_GET,
            evt.EVT_N_DELETE,
            evt.EVT_N_EVENT_REPORT,
        )
    ]
    before = datetime.now()
    async with serving(bound) as server:
        scu = make_scu_ae("EVENT_SCU")
        async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
            await bounded(assoc.send_n_action(ds_of(PatientID="A"), 7, STGCMT, STGCMT_INSTANCE))
            await bounded(assoc.send_n_create(ds_of(PatientID="C"), MPPS, "1.2.3.9"))
            await bounded(assoc.send_n_set(ds_of(PatientID="S"), MPPS, "1.2.3.9"))
            await bounded(assoc.send_n_get([0x00100020], PRINTER, PRINTER_INSTANCE))
            await bounded(assoc.send_n_delete(FILM_SESSION, "1.2.3.8"))
            await bounded(
                assoc.send_n_event_report(ds_of(PatientID="E"), 5, STGCMT, STGCMT_INSTANCE)
            )
            proposed = {c.abstract_syntax: c.context_id for c in assoc.accepted_contexts}
    after = datetime.now()

    assert set(events) == {
        "EVT_N_ACTION",
        "EVT_N_CREATE",
        "EVT_N_SET",
        "EVT_N_GET",
        "EVT_N_DELETE",
        "EVT_N_EVENT_REPORT",
    }
    descriptions = {
        "EVT_N_ACTION": "N-ACTION request received",
        "EVT_N_CREATE": "N-CREATE request received",
        "EVT_N_SET": "N-SET request received",
        "EVT_N_GET": "N-GET request received",
        "EVT_N_DELETE": "N-DELETE request received",
        "EVT_N_EVENT_REPORT": "N-EVENT-REPORT request received",
    }
    classes = {
        "EVT_N_ACTION": STGCMT,
        "EVT_N_CREATE": MPPS,
        "EVT_N_SET": MPPS,
        "EVT_N_GET": PRINTER,
        "EVT_N_DELETE": FILM_SESSION,
        "EVT_N_EVENT_REPORT": STGCMT,
    }
    message_ids = []
    for name, event in events.items():
        assert event.name == name
        assert event.event.name == name
        assert event.description == descriptions[name]
        assert event.event.description == descriptions[name]
        assert isinstance(event.assoc, Association)
        assert event.assoc.is_acceptor
        assert event.assoc.requestor.ae_title == "EVENT_SCU"
        assert event.assoc.acceptor.ae_title == "TEST_SCP"
        assert event.context is not None
        assert event.context.abstract_syntax == classes[name]
        assert event.context.context_id == proposed[classes[name]]
        assert event.context.context_id % 2 == 1
        assert event.context.transfer_syntax == IMPLICIT_LE
        assert isinstance(event.timestamp, datetime)
        assert before - timedelta(seconds=1) <= event.timestamp <= after
        assert event.message_id == event.request.MessageID
        message_ids.append(event.message_id)
        # every property of another event type raises AttributeError
        expected_missing = sorted(p for p, owner in _PROPS.items() if owner is not event.event)
        assert sorted(wrong[name]) == expected_missing
    assert len(set(message_ids)) == 6

    action = events["EVT_N_ACTION"]
    assert action.action_type == 7
    assert action.request.ActionTypeID == 7
    assert action.request.RequestedSOPClassUID == STGCMT
    assert action.request.RequestedSOPInstanceUID == STGCMT_INSTANCE
    assert action.action_information.PatientID == "A"
    create = events["EVT_N_CREATE"]
    assert create.request.AffectedSOPClassUID == MPPS
    assert create.request.AffectedSOPInstanceUID == "1.2.3.9"
    assert create.attribute_list.PatientID == "C"
    assert events["EVT_N_SET"].modification_list.PatientID == "S"
    assert events["EVT_N_GET"].attribute_identifiers == [Tag(0x00100020)]
    report = events["EVT_N_EVENT_REPORT"]
    assert report.event_type == 5
    assert report.request.EventTypeID == 5
    assert report.event_information.PatientID == "E"


async def test_handler_extra_args_are_passed() -> None:
    seen: list[Any] = []

    async def on_action(event: Event, tag: str, number: int) -> tuple[int, None]:
        seen.append((tag, number))
        return 0x0000, None

    async with session([(evt.EVT_N_ACTION, on_action, ["extra", 42])]) as assoc:
        await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
    assert seen == [("extra", 42)]


# -- sync handlers ------------------------------------------------------------------------


async def test_sync_handlers_run_in_a_thread() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def on_action(event: Event) -> tuple[int, Dataset]:
        threads.append(threading.get_ident())
        return 0x0000, ds_of(PatientID=event.action_information.PatientID + "!")

    def on_delete(event: Event) -> int:
        threads.append(threading.get_ident())
        return 0x0112

    def on_get(event: Event) -> tuple[int, None]:
        raise RuntimeError("sync failure")

    handlers = [
        (evt.EVT_N_ACTION, on_action),
        (evt.EVT_N_DELETE, on_delete),
        (evt.EVT_N_GET, on_get),
    ]
    async with session(handlers) as assoc:
        status, reply = await bounded(
            assoc.send_n_action(ds_of(PatientID="sync"), 1, STGCMT, STGCMT_INSTANCE)
        )
        delete_status = await bounded(assoc.send_n_delete(FILM_SESSION, "1.2.3"))
        get_status, _ = await bounded(assoc.send_n_get(None, PRINTER, PRINTER_INSTANCE))
    assert status.Status == 0x0000
    assert reply is not None
    assert reply.PatientID == "sync!"
    assert delete_status.Status == 0x0112
    assert get_status.Status == 0x0110
    assert len(threads) == 2
    assert all(t != loop_thread for t in threads)


async def test_blocking_sync_handler_does_not_block_the_loop() -> None:
    """A sync handler that blocks (as pynetdicom ones may) leaves the loop serving."""
    release = threading.Event()

    def on_action(event: Event) -> tuple[int, None]:
        release.wait(5)
        return 0x0000, None

    async with serving([(evt.EVT_N_ACTION, on_action)]) as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port) as first:
            task = asyncio.ensure_future(first.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
            try:
                # another association is served while the handler blocks its thread
                async with scu.associate("127.0.0.1", server.port) as second:
                    await _echo_ok(second)
                assert not task.done()
            finally:
                release.set()
            status, _ = await bounded(task)
    assert status.Status == 0x0000


async def test_association_is_reusable_for_many_requests() -> None:
    count = 0

    async def on_action(event: Event) -> tuple[int, Dataset]:
        nonlocal count
        count += 1
        return 0x0000, ds_of(PatientID=str(event.action_type))

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        for i in range(1, 51):
            status, reply = await bounded(assoc.send_n_action(None, i, STGCMT, STGCMT_INSTANCE))
            assert status.Status == 0
            assert reply is not None
            assert reply.PatientID == str(i)
    assert count == 50


def test_ae_rejects_bad_titles() -> None:
    with pytest.raises(ValueError, match="AE title"):
        AE("")
    with pytest.raises(ValueError, match="AE title"):
        AE("X" * 17)


async def test_unusable_status_field_is_dropped_and_status_kept() -> None:
    """An ErrorComment over 64 characters cannot go on the wire: the status still does."""

    async def on_action(event: Event) -> tuple[Dataset, None]:
        status = Dataset()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status.Status = 0x0106
            status.ErrorComment = "x" * 100
        return status, None

    async with session([(evt.EVT_N_ACTION, on_action)]) as assoc:
        status, reply = await bounded(assoc.send_n_action(None, 1, STGCMT, STGCMT_INSTANCE))
        await _echo_ok(assoc)
    assert status.Status == 0x0106
    assert "ErrorComment" not in status
    assert reply is None
