"""The final-state requirements (PS3.4 Table CC.2.5-3) judged by ``change_state``:
each required attribute missing is refused with 0xC304 naming it; what the SCP
fills itself (cancellation time, modification time) is never asked of the SCU."""

from __future__ import annotations

import copy

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from aiodimse.services.ups.workitems import (
    CANCELED,
    COMPLETED,
    FINAL_STATE,
    IN_PROGRESS,
    Refusal,
    change_state,
    final_filled,
)

from ._ups import cancellation, completion, workitem

LOCK = "1.2.826.0.1.3680043.10.1451.77"


def _claimed() -> Dataset:
    ds = workitem()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.34.6.1"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.1451.78"
    ds.ScheduledProcedureStepModificationDateTime = "20260101100000"
    ds.ProcedureStepState = IN_PROGRESS
    return ds


def _ready(state: str) -> Dataset:
    """An IN PROGRESS workitem holding everything ``state`` needs."""
    ds = _claimed()
    for elem in (completion() if state == COMPLETED else cancellation()):
        ds[elem.tag] = elem
    final_filled(ds, state)
    return ds


def _without(ds: Dataset, path: tuple[str, ...]) -> Dataset:
    ds = copy.deepcopy(ds)
    holder = ds
    for keyword in path[:-1]:
        holder = holder[keyword][0]
    delattr(holder, path[-1])
    return ds


@pytest.mark.parametrize("state", [COMPLETED, CANCELED])
def test_every_final_state_requirement_is_checked(state: str) -> None:
    ready = _ready(state)
    assert change_state(IN_PROGRESS, LOCK, state, LOCK, ready) == 0x0000
    for path, states in FINAL_STATE:
        if state not in states:
            continue
        verdict = change_state(IN_PROGRESS, LOCK, state, LOCK, _without(ready, path))
        assert isinstance(verdict, Refusal), path
        assert verdict.status == 0xC304
        assert verdict.offending == tag_for_keyword(path[-1]), path
        assert path[-1] in verdict.comment


def test_empty_values_and_the_output_sequence() -> None:
    ready = _ready(COMPLETED)
    performed = ready.UnifiedProcedureStepPerformedProcedureSequence[0]
    performed.OutputInformationSequence = []  # no output objects: allowed (may be empty)
    assert change_state(IN_PROGRESS, LOCK, COMPLETED, LOCK, ready) == 0x0000
    performed.PerformedStationNameCodeSequence = []  # present but empty: not enough
    verdict = change_state(IN_PROGRESS, LOCK, COMPLETED, LOCK, ready)
    assert isinstance(verdict, Refusal) and verdict.offending == 0x00404028
    # a second performed item is held to the same requirements
    ready = _ready(COMPLETED)
    ready.UnifiedProcedureStepPerformedProcedureSequence.append(Dataset())
    verdict = change_state(IN_PROGRESS, LOCK, COMPLETED, LOCK, ready)
    assert isinstance(verdict, Refusal) and verdict.status == 0xC304


def test_the_scp_fills_its_own_part_of_a_cancel() -> None:
    ds = _claimed()
    request = Dataset()
    request.ReasonForCancellation = "duplicate order"
    final_filled(ds, CANCELED, request, default_reason=True)
    item = ds.ProcedureStepProgressInformationSequence[0]
    assert item.ProcedureStepCancellationDateTime
    assert item.ReasonForCancellation == "duplicate order"
    (code,) = item.ProcedureStepDiscontinuationReasonCodeSequence
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("110513", "DCM")
    assert change_state(IN_PROGRESS, LOCK, CANCELED, LOCK, ds) == 0x0000
    # a performer's cancel gets no invented reason code: the SCU owes it
    ds = _claimed()
    final_filled(ds, CANCELED)
    verdict = change_state(IN_PROGRESS, LOCK, CANCELED, LOCK, ds)
    assert isinstance(verdict, Refusal) and verdict.offending == 0x0074100E
