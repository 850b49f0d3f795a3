"""UPS C-FIND: the matching rules on workitems (single value, wildcard, date/time
range, sequence matching, UID lists), the keys returned, refusals and C-CANCEL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from aiodimse import Association
from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPS_QUERY, UPS_WATCH
from aiodimse.services.ups.matching import (
    MatchError,
    answer,
    matches,
    prefilter,
    unsupported,
)

from ._ups import code_item, connect, running_ups, workitem


def _query(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_matching_rules() -> None:
    item = workitem(patient_id="P7", start="20260315143000", code="RAD1")
    item.SOPInstanceUID = "1.2.3"
    assert matches(_query(PatientID="P7"), item)
    assert not matches(_query(PatientID="P8"), item)
    assert matches(_query(PatientID="P*"), item)
    assert matches(_query(PatientName="doe^*"), item)  # names ignore case
    assert not matches(_query(ProcedureStepLabel="AI?"), item)
    assert matches(_query(ProcedureStepLabel="AI ?riage"), item)
    assert matches(_query(ScheduledProcedureStepStartDateTime="20260315-20260316"), item)
    assert matches(_query(ScheduledProcedureStepStartDateTime="20260315140000-"), item)
    assert not matches(_query(ScheduledProcedureStepStartDateTime="-20260314"), item)
    assert not matches(_query(ScheduledProcedureStepStartDateTime="202603151500-"), item)
    assert matches(_query(SOPInstanceUID=["9.9", "1.2.3"]), item)
    assert not matches(_query(SOPInstanceUID="9.9"), item)
    assert matches(_query(ScheduledWorkitemCodeSequence=[code_item("RAD1", "DCM", "")]), item)
    wanted = Dataset()
    wanted.CodeValue = "RAD2"
    assert not matches(_query(ScheduledWorkitemCodeSequence=[wanted]), item)
    assert matches(_query(ScheduledWorkitemCodeSequence=[Dataset()]), item)  # universal
    assert matches(_query(PatientID="", AdmissionID=""), item)  # universal, even if absent
    assert not matches(_query(AdmissionID="A1"), item)
    with pytest.raises(MatchError):
        matches(_query(PatientID=["P7", "P8"]), item)


def test_answer_and_prefilter() -> None:
    item = workitem(code="RAD1")
    item.SOPInstanceUID = "1.2.3"
    asked = Dataset()
    asked.CodeValue = ""
    got = answer(_query(PatientID="", AdmissionID="", TransactionUID="",
                        ScheduledWorkitemCodeSequence=[asked]), item)
    assert got.PatientID == "P1" and got.AdmissionID in (None, "")
    assert "TransactionUID" not in got
    (code,) = got.ScheduledWorkitemCodeSequence
    assert code.CodeValue == "RAD1" and "CodingSchemeDesignator" not in code
    q = prefilter(_query(ProcedureStepState="SCHEDULED", PatientID="P*",
                         ScheduledProcedureStepStartDateTime="20260101-20260102"))
    assert q.states == ("SCHEDULED",) and q.patient_id is None  # a wildcard: not narrowed
    assert (q.start_from, q.start_to) == ("20260101", "20260102")
    # keys not supported: neither matched nor returned, and said so (0xFF01)
    odd = _query(PatientID="P1")
    odd.add_new(0x00091010, "LO", "no such value")
    assert matches(odd, item) and 0x00091010 not in answer(odd, item)
    assert unsupported(odd) and unsupported(_query(TransactionUID=""))
    nested = Dataset()
    nested.add_new(0x00091010, "LO", "")
    assert unsupported(_query(ScheduledWorkitemCodeSequence=[nested]))
    assert not unsupported(_query(PatientID="", ScheduledWorkitemCodeSequence=[asked]))


async def _found(assoc: Association, query: Dataset, model: str) -> tuple[list[Dataset], int]:
    found, final = [], -1
    async for status, ds in assoc.send_c_find(query, model):
        if status.Status in (0xFF00, 0xFF01):
            found.append(ds)
        else:
            final = int(status.Status)
    return found, final


async def test_find_over_an_association(tmp_path: Path) -> None:
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port)
        try:
            for patient, start, code in (("P1", "20260101080000", "A"),
                                         ("P2", "20260102080000", "B"),
                                         ("P3", "20260103080000", "A")):
                status, _ = await assoc.send_n_create(workitem(patient, start, code), UPS_PUSH)
                assert status.Status == 0
            query = _query(PatientID="", ScheduledProcedureStepStartDateTime="20260102-",
                           ProcedureStepState="SCHEDULED")
            wanted = Dataset()
            wanted.CodeValue = "A"
            query.ScheduledWorkitemCodeSequence = [wanted]
            for model in (UPS_QUERY, UPS_PULL, UPS_WATCH):
                found, final = await _found(assoc, query, model)
                assert final == 0x0000
                assert [str(d.PatientID) for d in found] == ["P3"]
            found, final = await _found(assoc, _query(PatientID=["P1", "P2"]), UPS_QUERY)
            assert (found, final) == ([], 0xA900)
            statuses = [int(s.Status) async for s, _ in assoc.send_c_find(
                _query(PatientID="P1", TransactionUID=""), UPS_QUERY)]
            assert statuses == [0xFF01, 0x0000]  # Transaction UID: cannot be queried
        finally:
            await assoc.release()


async def test_c_cancel_stops_a_ups_find(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port)
        try:
            for n in range(30):
                await assoc.send_n_create(workitem(patient_id=f"P{n}"), UPS_PUSH)
            match = ups.store.ups_match
            pulled = 0

            async def slow(query: Any) -> AsyncIterator[Any]:
                nonlocal pulled
                async for row in match(query):
                    pulled += 1
                    await asyncio.sleep(0.05)
                    yield row

            monkeypatch.setattr(ups.store, "ups_match", slow)
            responses = assoc.send_c_find(_query(PatientID=""), UPS_QUERY)
            statuses = []
            async for status, _ in responses:
                statuses.append(int(status.Status))
                if len(statuses) == 1:
                    assert responses.message_id is not None
                    assoc.send_c_cancel(responses.message_id)
            assert statuses[0] == 0xFF00 and statuses[-1] == 0xFE00
            assert len(statuses) < 30 and pulled < 30
        finally:
            await assoc.release()


async def test_the_service_is_a_workitem_source(tmp_path: Path) -> None:
    """What the subscription side reads: one workitem, the matching ones, a filter."""
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port)
        try:
            status, _ = await assoc.send_n_create(workitem("S1"), UPS_PUSH)
            first = str(status.AffectedSOPInstanceUID)
            await assoc.send_n_create(workitem("S2"), UPS_PUSH)
        finally:
            await assoc.release()
        got = await ups.service.workitem(first)
        assert got is not None and got.PatientID == "S1" and "TransactionUID" not in got
        assert await ups.service.workitem("1.2.3.4") is None
        every = [ds.PatientID async for ds in ups.service.workitems(None)]
        assert every == ["S1", "S2"]
        some = [ds.PatientID async for ds in ups.service.workitems(_query(PatientID="S2"))]
        assert some == ["S2"]
        assert ups.service.matches(_query(PatientID="S*"), got)
        assert not ups.service.matches(_query(PatientID="S2"), got)
