"""UPSService over a real association: push, find, claim, progress, complete; the
Transaction UID lock; cancel requests; the hooks called after each stored change."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from aiodimse import Association
from aiodimse.services import Quotas
from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPS_QUERY, UPS_WATCH
from aiodimse.uids import new_uid

from ._ups import Recorder, cancellation, code_item, completion, connect, running_ups, workitem


def _state(state: str, transaction_uid: str | None = None) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    if transaction_uid is not None:
        ds.TransactionUID = transaction_uid
    return ds


async def _find(assoc: Association, identifier: Dataset, model: str = UPS_QUERY
                ) -> list[Dataset]:
    found = []
    async for status, ds in assoc.send_c_find(identifier, model):
        if status.Status in (0xFF00, 0xFF01):
            found.append(ds)
        else:
            assert status.Status == 0x0000, hex(status.Status)
    return found


async def test_full_lifecycle(tmp_path: Path) -> None:
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port)
        try:
            status, _ = await assoc.send_n_create(workitem(), UPS_PUSH)
            assert status.Status == 0x0000
            uid = str(status.AffectedSOPInstanceUID)

            query = Dataset()
            query.ProcedureStepState = "SCHEDULED"
            query.PatientID = ""
            query.SOPInstanceUID = ""
            found = await _find(assoc, query, UPS_PULL)
            assert [str(d.SOPInstanceUID) for d in found] == [uid]
            assert found[0].PatientID == "P1"

            lock = new_uid()
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0x0000
            # a second claimer loses
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", new_uid()), 1,
                                                  UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC302

            progress = Dataset()
            item = Dataset()
            item.ProcedureStepProgress = 50
            progress.ProcedureStepProgressInformationSequence = [item]
            progress.TransactionUID = lock
            status, _ = await assoc.send_n_set(progress, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0000

            status, got = await assoc.send_n_get(None, UPS_PUSH, uid, UPS_QUERY)
            assert status.Status == 0x0000 and got is not None
            assert got.ProcedureStepState == "IN PROGRESS"
            assert got.ProcedureStepProgressInformationSequence[0].ProcedureStepProgress == 50
            assert "TransactionUID" not in got  # the lock is never given away

            # COMPLETED before the final-state attributes: refused
            status, _ = await assoc.send_n_action(_state("COMPLETED", lock), 1, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0xC304
            mods = completion()
            mods.TransactionUID = lock
            status, _ = await assoc.send_n_set(mods, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0000
            status, _ = await assoc.send_n_action(_state("COMPLETED", lock), 1, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0x0000
            status, _ = await assoc.send_n_action(_state("COMPLETED", lock), 1, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0xB306  # already
            status, _ = await assoc.send_n_set(mods, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC300  # no more changes

            status, got = await assoc.send_n_get([0x00741000], UPS_PUSH, uid, UPS_WATCH)
            assert got is not None and got.ProcedureStepState == "COMPLETED"
        finally:
            await assoc.release()
        assert [c[0] for c in ups.events.calls] == [
            "created", "state_changed", "progress", "state_changed"]
        assert [c[2] for c in ups.events.calls if c[0] == "state_changed"] == [
            "IN PROGRESS", "COMPLETED"]


async def test_transaction_uid_rules(tmp_path: Path) -> None:
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port)
        try:
            status, _ = await assoc.send_n_create(workitem(), UPS_PUSH)
            uid = str(status.AffectedSOPInstanceUID)
            change = Dataset()
            change.ProcedureStepLabel = "renamed"
            # a SCHEDULED workitem is set without a Transaction UID ...
            status, _ = await assoc.send_n_set(change, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0000
            assign = Dataset()
            assign.ScheduledStationNameCodeSequence = [code_item("WS1")]
            status, _ = await assoc.send_n_set(assign, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0000
            assert ups.events.calls[-1][0] == "assigned"  # UPS Assigned for the watchers
            readiness = Dataset()
            readiness.InputReadinessState = "UNAVAILABLE"
            status, _ = await assoc.send_n_set(readiness, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0000  # a changed readiness: UPS State Report
            assert ups.events.calls[-1] == ("state_changed", uid, "SCHEDULED")
            calls = len(ups.events.calls)
            await assoc.send_n_set(readiness, UPS_PUSH, uid, UPS_PULL)
            assert len(ups.events.calls) == calls  # the same value again: nothing to tell
            state = Dataset()
            state.ProcedureStepState = "CANCELED"
            status, _ = await assoc.send_n_set(state, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0106  # the state changes by N-ACTION only
            # ... and refuses one
            change.TransactionUID = new_uid()
            status, _ = await assoc.send_n_set(change, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC310
            # COMPLETED straight from SCHEDULED: not IN PROGRESS yet
            status, _ = await assoc.send_n_action(_state("COMPLETED", new_uid()), 1,
                                                  UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC310
            status, _ = await assoc.send_n_action(_state("SCHEDULED", new_uid()), 1,
                                                  UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC303
            status, _ = await assoc.send_n_action(_state("IN PROGRESS"), 1, UPS_PUSH, uid,
                                                  UPS_PULL)
            assert status.Status == 0xC301  # a claim needs a Transaction UID
            lock = new_uid()
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0x0000
            del change.TransactionUID
            status, _ = await assoc.send_n_set(change, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC301  # missing
            change.TransactionUID = new_uid()
            status, _ = await assoc.send_n_set(change, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC301  # wrong
            status, _ = await assoc.send_n_action(_state("CANCELED", new_uid()), 1,
                                                  UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC301
            state = Dataset()
            state.ProcedureStepState = "CANCELED"
            state.TransactionUID = lock
            state.ReasonForCancellation = "patient left"
            status, _ = await assoc.send_n_action(state, 1, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0000  # no reason code: the SCP gives "unspecified"
            status, got = await assoc.send_n_get(None, UPS_PUSH, uid, UPS_PULL)
            assert got is not None and got.ProcedureStepState == "CANCELED"
            item = got.ProcedureStepProgressInformationSequence[0]
            code = item.ProcedureStepDiscontinuationReasonCodeSequence[0]
            assert (code.CodeValue, code.CodingSchemeDesignator) == ("110513", "DCM")
            assert item.ReasonForCancellation == "patient left"
            assert item.ProcedureStepCancellationDateTime  # the SCP's final-state part
            status, _ = await assoc.send_n_action(_state("CANCELED", lock), 1, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0xB304
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0xC300
            # unknown workitem; unknown action type on each class
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH,
                                                  new_uid(), UPS_PULL)
            assert status.Status == 0xC307
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 2, UPS_PUSH,
                                                  uid, UPS_PULL)
            assert status.Status == 0x0123
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 3, UPS_PUSH,
                                                  uid)
            assert status.Status == 0x0123
            # Change UPS State on a Push context (as pynetdicom sends it): the same rules
            status, _ = await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH,
                                                  uid)
            assert status.Status == 0xC300
            status, _ = await assoc.send_n_get(None, UPS_PUSH, new_uid(), UPS_PULL)
            assert status.Status == 0xC307
        finally:
            await assoc.release()


async def test_cancel_requests(tmp_path: Path) -> None:
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port, "REQUESTER")
        try:
            status, _ = await assoc.send_n_create(workitem(), UPS_PUSH)
            scheduled = str(status.AffectedSOPInstanceUID)
            status, _ = await assoc.send_n_create(workitem(patient_id="P2"), UPS_PUSH)
            claimed = str(status.AffectedSOPInstanceUID)
            lock = new_uid()
            await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH, claimed,
                                      UPS_PULL)
            ups.events.calls.clear()
            request = Dataset()
            request.ReasonForCancellation = "not needed"
            # SCHEDULED: canceled at once, through IN PROGRESS
            status, _ = await assoc.send_n_action(request, 2, UPS_PUSH, scheduled)
            assert status.Status == 0x0000
            status, got = await assoc.send_n_get(None, UPS_PUSH, scheduled)
            assert got is not None and got.ProcedureStepState == "CANCELED"
            assert got.ProcedureStepProgressInformationSequence[0].ReasonForCancellation \
                == "not needed"
            status, _ = await assoc.send_n_action(request, 2, UPS_PUSH, scheduled)
            assert status.Status == 0xB304
            # IN PROGRESS: the performer is asked, the workitem stays
            status, _ = await assoc.send_n_action(request, 2, UPS_PUSH, claimed)
            assert status.Status == 0x0000
            status, got = await assoc.send_n_get(None, UPS_PUSH, claimed)
            assert got is not None and got.ProcedureStepState == "IN PROGRESS"
            # COMPLETED: refused
            mods = completion()
            mods.TransactionUID = lock
            await assoc.send_n_set(mods, UPS_PUSH, claimed, UPS_PULL)
            status, _ = await assoc.send_n_action(_state("COMPLETED", lock), 1, UPS_PUSH,
                                                  claimed, UPS_PULL)
            assert status.Status == 0x0000
            status, _ = await assoc.send_n_action(request, 2, UPS_PUSH, claimed)
            assert status.Status == 0xC311
            status, _ = await assoc.send_n_action(request, 2, UPS_PUSH, new_uid())
            assert status.Status == 0xC307
        finally:
            await assoc.release()
        assert ups.events.calls[:4] == [
            ("state_changed", scheduled, "IN PROGRESS"),
            ("state_changed", scheduled, "CANCELED"),
            ("cancel_requested", claimed, "REQUESTER"),
            ("state_changed", claimed, "COMPLETED"),
        ]


async def test_n_create_requirements(tmp_path: Path) -> None:
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port)
        try:
            status, _ = await assoc.send_n_create(None, UPS_PUSH)
            assert status.Status == 0x0120
            for keyword, tag in (("ScheduledProcedureStepPriority", 0x00741200),
                                 ("InputReadinessState", 0x00404041),
                                 ("PatientName", 0x00100010),
                                 ("ScheduledWorkitemCodeSequence", 0x00404018)):
                ds = workitem()
                delattr(ds, keyword)
                status, _ = await assoc.send_n_create(ds, UPS_PUSH)
                assert status.Status == 0x0120, keyword
                assert status.OffendingElement == tag
            ds = workitem()
            ds.ScheduledProcedureStepStartDateTime = ""
            status, _ = await assoc.send_n_create(ds, UPS_PUSH)
            assert status.Status == 0x0121
            ds = workitem()
            ds.ProcedureStepState = "IN PROGRESS"
            status, _ = await assoc.send_n_create(ds, UPS_PUSH)
            assert status.Status == 0xC309
            ds = workitem()
            ds.ScheduledProcedureStepPriority = "URGENT"
            status, _ = await assoc.send_n_create(ds, UPS_PUSH)
            assert status.Status == 0x0106
            # an empty Worklist Label is filled in: created with modifications
            ds = workitem()
            ds.WorklistLabel = ""
            uid = new_uid()
            status, _ = await assoc.send_n_create(ds, UPS_PUSH, uid)
            assert status.Status == 0xB300
            assert status.AffectedSOPInstanceUID == uid
            status, got = await assoc.send_n_get([0x00741202], UPS_PUSH, uid)
            assert got is not None and got.WorklistLabel == "DEFAULT"
            status, _ = await assoc.send_n_create(workitem(), UPS_PUSH, uid)
            assert status.Status == 0x0111
        finally:
            await assoc.release()
        assert [c[0] for c in ups.events.calls] == ["created"]


async def test_restart_keeps_workitems(tmp_path: Path) -> None:
    lock = new_uid()
    async with running_ups(tmp_path) as ups:
        assoc = await connect(ups.server.port)
        try:
            status, _ = await assoc.send_n_create(workitem(), UPS_PUSH)
            uid = str(status.AffectedSOPInstanceUID)
            await assoc.send_n_action(_state("IN PROGRESS", lock), 1, UPS_PUSH, uid, UPS_PULL)
        finally:
            await assoc.release()
    async with running_ups(tmp_path) as ups:  # the same SQLite file
        assoc = await connect(ups.server.port)
        try:
            status, got = await assoc.send_n_get(None, UPS_PUSH, uid)
            assert got is not None and got.ProcedureStepState == "IN PROGRESS"
            status, _ = await assoc.send_n_action(_state("CANCELED", new_uid()), 1,
                                                  UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0xC301  # the lock survived too
            mods = cancellation()
            mods.TransactionUID = lock
            await assoc.send_n_set(mods, UPS_PUSH, uid, UPS_PULL)
            status, _ = await assoc.send_n_action(_state("CANCELED", lock), 1, UPS_PUSH, uid,
                                                  UPS_PULL)
            assert status.Status == 0x0000
        finally:
            await assoc.release()


async def test_workitem_size_limit(tmp_path: Path) -> None:
    async with running_ups(tmp_path, quotas=Quotas(ups_max_workitem=2048)) as ups:
        assoc = await connect(ups.server.port)
        try:
            status, _ = await assoc.send_n_create(workitem(), UPS_PUSH)
            assert status.Status == 0x0000  # well under the limit
            uid = str(status.AffectedSOPInstanceUID)
            big = workitem()
            big.CommentsOnTheScheduledProcedureStep = "x" * 4000
            status, _ = await assoc.send_n_create(big, UPS_PUSH)
            assert status.Status == 0x0213 and "ups_max_workitem" in status.ErrorComment
            # an N-SET that would grow the stored workitem past the limit, in small steps
            grow = Dataset()
            grow.CommentsOnTheScheduledProcedureStep = "y" * 1000
            status, _ = await assoc.send_n_set(grow, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0000
            more = Dataset()
            more.ProcedureStepLabel = "z" * 60
            more.ScheduledProcedureStepPriority = "HIGH"
            item = Dataset()
            item.ProcedureStepProgressDescription = "w" * 1000
            more.ProcedureStepProgressInformationSequence = [item]
            status, _ = await assoc.send_n_set(more, UPS_PUSH, uid, UPS_PULL)
            assert status.Status == 0x0213
            status, got = await assoc.send_n_get([0x00741200], UPS_PUSH, uid)
            assert got is not None and got.ScheduledProcedureStepPriority == "MEDIUM"  # kept
        finally:
            await assoc.release()
        assert [c[0] for c in ups.events.calls] == ["created"]  # nothing refused was told


class _Failing(Recorder):
    async def created(self, workitem: Dataset) -> None:
        raise RuntimeError("the subscription side is broken")


async def test_a_failing_hook_does_not_undo_a_stored_change(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running_ups(tmp_path, _Failing()) as ups:
        assoc = await connect(ups.server.port)
        try:
            status, _ = await assoc.send_n_create(workitem(), UPS_PUSH)
            assert status.Status == 0x0000  # stored: the peer is told so
            status, got = await assoc.send_n_get(None, UPS_PUSH,
                                                 str(status.AffectedSOPInstanceUID))
            assert status.Status == 0x0000 and got is not None
        finally:
            await assoc.release()
    assert "the created hook failed" in caplog.text
