"""What a workitem must hold, and how its state may change (PS3.4 CC.1.1, CC.2.5).

Pure functions over pydicom data sets: the handlers ask, the store keeps. Each
refusal is a ``Refusal`` carrying the status of ``statuses`` and the attribute at
fault. The attribute lists are the subset of Table CC.2.5-3 this SCP holds the SCU
to (docs/ups.md lists them); other attributes are kept as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from . import statuses as st

__all__ = ["SCHEDULED", "IN_PROGRESS", "COMPLETED", "CANCELED", "FINAL", "STATES",
           "Refusal", "CREATE_TYPE1", "CREATE_TYPE2", "check_create", "check_set",
           "change_state", "final_state_missing", "final_filled", "FINAL_STATE", "state_of",
           "now_dt", "NOT_SETTABLE", "UNSPECIFIED_REASON"]

SCHEDULED = "SCHEDULED"
IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
CANCELED = "CANCELED"
FINAL = frozenset({COMPLETED, CANCELED})
STATES = frozenset({SCHEDULED, IN_PROGRESS, COMPLETED, CANCELED})

STATE_TAG = 0x00741000
TRANSACTION_UID_TAG = 0x00081195

# N-CREATE, SCU Type 1: present with a value (Procedure Step State is checked apart).
CREATE_TYPE1: tuple[tuple[str, int], ...] = (
    ("ScheduledProcedureStepPriority", 0x00741200),
    ("ScheduledProcedureStepStartDateTime", 0x00404005),
    ("InputReadinessState", 0x00404041),
)
# N-CREATE, SCU Type 2: present, perhaps empty.
CREATE_TYPE2: tuple[tuple[str, int], ...] = (
    ("PatientName", 0x00100010),
    ("PatientID", 0x00100020),
    ("PatientBirthDate", 0x00100030),
    ("PatientSex", 0x00100040),
    ("ScheduledWorkitemCodeSequence", 0x00404018),
    ("InputInformationSequence", 0x00404021),
    ("ScheduledStationNameCodeSequence", 0x00404025),
)
# Type 1 values the SCP fills in when the SCU sent them empty (answered 0xB300).
_FILLED = (("ProcedureStepLabel", 0x00741204, "UNNAMED"),
           ("WorklistLabel", 0x00741202, "DEFAULT"))
_ENUMS = {
    "ScheduledProcedureStepPriority": frozenset({"HIGH", "MEDIUM", "LOW"}),
    "InputReadinessState": frozenset({"READY", "UNAVAILABLE", "INCOMPLETE"}),
}
NOT_SETTABLE = frozenset({0x00741000, 0x00080016, 0x00080018})
"""N-SET may not change these: the state (N-ACTION does) and the SOP identity."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused: its status, why, and the attribute at fault if one."""

    status: int
    comment: str
    offending: int | None = None


def state_of(ds: Dataset) -> str:
    return str(ds.get("ProcedureStepState", "") or "").strip().upper()


def now_dt() -> str:
    """Now as a DT value (UTC offset included)."""
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def _empty(ds: Dataset, keyword: str) -> bool:
    value = ds.get(keyword)
    return value is None or value == "" or (isinstance(value, list) and not value) or (
        hasattr(value, "__len__") and not isinstance(value, str) and len(value) == 0)


def check_create(attrs: Dataset) -> Refusal | bool:
    """Check (and coerce in place) an N-CREATE attribute list: a Refusal, else
    whether something was coerced (the answer is then 0xB300)."""
    if "ProcedureStepState" not in attrs:
        return Refusal(st.MISSING_ATTRIBUTE, "Procedure Step State missing", STATE_TAG)
    if state_of(attrs) != SCHEDULED:
        return Refusal(st.STATE_NOT_SCHEDULED, "Procedure Step State must be SCHEDULED",
                       STATE_TAG)
    for keyword, tag in CREATE_TYPE1:
        if keyword not in attrs:
            return Refusal(st.MISSING_ATTRIBUTE, f"{keyword} missing", tag)
        if _empty(attrs, keyword):
            return Refusal(st.MISSING_ATTRIBUTE_VALUE, f"{keyword} empty", tag)
    for keyword, tag in CREATE_TYPE2:
        if keyword not in attrs:
            return Refusal(st.MISSING_ATTRIBUTE, f"{keyword} missing", tag)
    for keyword, allowed in _ENUMS.items():
        if str(attrs.get(keyword, "")).strip().upper() not in allowed:
            return Refusal(st.INVALID_ATTRIBUTE_VALUE, f"{keyword} not one of "
                           f"{', '.join(sorted(allowed))}", attrs[keyword].tag)
    coerced = False
    for keyword, _tag, default in _FILLED:
        if _empty(attrs, keyword):
            setattr(attrs, keyword, default)
            coerced = True
    if TRANSACTION_UID_TAG in attrs:  # a lock is the claimer's to set, not the creator's
        del attrs[TRANSACTION_UID_TAG]
        coerced = True
    return coerced


def check_set(state: str, stored_uid: str | None, mods: Dataset) -> Refusal | None:
    """Whether an N-SET may change a workitem in ``state`` locked by ``stored_uid``."""
    given = str(mods.get("TransactionUID", "") or "").strip() or None
    if state in FINAL:
        return Refusal(st.MAY_NO_LONGER_BE_UPDATED, f"the workitem is {state}")
    if state == IN_PROGRESS and given != stored_uid:
        return Refusal(st.WRONG_TRANSACTION_UID,
                       "Transaction UID missing" if given is None else
                       "wrong Transaction UID", TRANSACTION_UID_TAG)
    if state == SCHEDULED and given is not None:
        return Refusal(st.NOT_IN_PROGRESS, "a SCHEDULED workitem has no Transaction UID",
                       TRANSACTION_UID_TAG)
    for tag in NOT_SETTABLE:
        if tag in mods:
            return Refusal(st.INVALID_ATTRIBUTE_VALUE, "N-SET may not change this "
                           "attribute (Procedure Step State: N-ACTION)", tag)
    return None


# Table CC.2.5-3's "Final State" column (PS3.4 CC.2.5.1.3; the codes: CC.2.5.1.1):
# R: needs a value in either final state; P: to be COMPLETED; X: to be CANCELED
# (RC, "if known" or "if an extended character set is used", the SCP cannot judge).
# A path names a nested attribute: every item of each sequence on the way needs it.
# Output Information Sequence may be empty ("no relevant output objects"): present is
# enough. The SCP-maintained ones (SOP Class/Instance UID, the state, the modification
# time) are filled by the SCP before the check (to_row, final_filled).
_R, _P, _X = frozenset({COMPLETED, CANCELED}), frozenset({COMPLETED}), frozenset({CANCELED})
_PERFORMED = "UnifiedProcedureStepPerformedProcedureSequence"
_PROGRESS = "ProcedureStepProgressInformationSequence"
FINAL_STATE: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    (("SOPClassUID",), _R),
    (("SOPInstanceUID",), _R),
    (("ScheduledProcedureStepPriority",), _R),
    (("ScheduledProcedureStepModificationDateTime",), _R),
    (("ScheduledProcedureStepStartDateTime",), _R),
    (("InputReadinessState",), _R),
    (("ProcedureStepState",), _R),
    ((_PROGRESS,), _X),
    ((_PROGRESS, "ProcedureStepCancellationDateTime"), _X),
    ((_PROGRESS, "ProcedureStepDiscontinuationReasonCodeSequence"), _X),
    ((_PERFORMED,), _P),
    ((_PERFORMED, "PerformedStationNameCodeSequence"), _P),
    ((_PERFORMED, "PerformedProcedureStepStartDateTime"), _P),
    ((_PERFORMED, "PerformedWorkitemCodeSequence"), _P),
    ((_PERFORMED, "PerformedProcedureStepEndDateTime"), _P),
    ((_PERFORMED, "OutputInformationSequence"), _P),
)
_MAY_BE_EMPTY = frozenset({"OutputInformationSequence"})
UNSPECIFIED_REASON = ("110513", "DCM", "Discontinued for unspecified reason")
"""CID 9300's code for a cancel the SCP makes without a reason code given."""


def final_state_missing(ds: Dataset, state: str) -> Refusal | None:
    """The first final-state requirement (``FINAL_STATE``) ``ds`` misses for
    ``state``: 0xC304 naming the attribute, or None."""
    for path, states in FINAL_STATE:
        if state not in states:
            continue
        holders = [ds]
        for keyword in path[:-1]:
            holders = [item for holder in holders for item in holder.get(keyword) or ()]
        keyword = path[-1]
        for holder in holders:
            if keyword in holder and (keyword in _MAY_BE_EMPTY or not _empty(holder, keyword)):
                continue
            # (in each item of path[0] when nested: the Error Comment is 64 characters)
            return Refusal(st.FINAL_STATE_NOT_MET, f"{state} needs {keyword}",
                           int(tag_for_keyword(keyword) or 0) or None)
    return None


def final_filled(ds: Dataset, state: str, request: Dataset | None = None,
                 default_reason: bool = False) -> None:
    """Fill in what the SCP itself gives a workitem becoming ``state``, where it is
    not there yet: the modification time (Type -/1 of the SCP), and for CANCELED the
    cancellation time (Table CC.2.5-3: the SCP fills it), the reason and reason code
    of ``request`` (Request UPS Cancel's Action Information), and with
    ``default_reason`` (a cancel the SCP makes: CC.2.2.3) CID 9300's "unspecified"."""
    if _empty(ds, "ScheduledProcedureStepModificationDateTime"):
        ds.ScheduledProcedureStepModificationDateTime = now_dt()
    if state != CANCELED:
        return
    progress = ds.get(_PROGRESS)
    if not progress:
        ds.ProcedureStepProgressInformationSequence = [Dataset()]
        progress = ds.ProcedureStepProgressInformationSequence
    item = progress[0]
    if _empty(item, "ProcedureStepCancellationDateTime"):
        item.ProcedureStepCancellationDateTime = now_dt()
    given = request if request is not None else Dataset()
    reason = str(given.get("ReasonForCancellation", "") or "")
    if reason and _empty(item, "ReasonForCancellation"):
        item.ReasonForCancellation = reason[:1024]
    codes = given.get("ProcedureStepDiscontinuationReasonCodeSequence")
    if _empty(item, "ProcedureStepDiscontinuationReasonCodeSequence"):
        if codes:
            item.ProcedureStepDiscontinuationReasonCodeSequence = codes
        elif default_reason:
            code = Dataset()
            code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = UNSPECIFIED_REASON
            item.ProcedureStepDiscontinuationReasonCodeSequence = [code]


def change_state(state: str, stored_uid: str | None, requested: str,
                 given_uid: str | None, ds: Dataset) -> Refusal | int:
    """N-ACTION Change UPS State from ``state`` to ``requested``: a Refusal, or the
    status to answer (0x0000, or a warning when the workitem is there already and
    nothing changes: the caller checks ``state == requested`` for that)."""
    if requested not in STATES:
        return Refusal(st.INVALID_ATTRIBUTE_VALUE, f"no Procedure Step State {requested!r}",
                       STATE_TAG)
    if requested == SCHEDULED:
        return Refusal(st.ONLY_SCHEDULED_BY_CREATE, "only N-CREATE makes a SCHEDULED workitem")
    if state == CANCELED:
        return st.ALREADY_CANCELED if requested == CANCELED else Refusal(
            st.MAY_NO_LONGER_BE_UPDATED, "the workitem is CANCELED")
    if state == COMPLETED:
        return st.ALREADY_COMPLETED if requested == COMPLETED else Refusal(
            st.MAY_NO_LONGER_BE_UPDATED, "the workitem is COMPLETED")
    if given_uid is None:
        return Refusal(st.WRONG_TRANSACTION_UID, "Transaction UID missing",
                       TRANSACTION_UID_TAG)
    if state == SCHEDULED:
        if requested != IN_PROGRESS:
            return Refusal(st.NOT_IN_PROGRESS, "the workitem is not IN PROGRESS yet")
        return st.SUCCESS
    # IN PROGRESS
    if requested == IN_PROGRESS:
        return Refusal(st.ALREADY_IN_PROGRESS, "the workitem is IN PROGRESS already")
    if given_uid != stored_uid:
        return Refusal(st.WRONG_TRANSACTION_UID, "wrong Transaction UID", TRANSACTION_UID_TAG)
    if requested in FINAL:  # ``ds`` as it would be stored (final_filled applied)
        missing = final_state_missing(ds, requested)
        if missing is not None:
            return missing
    return st.SUCCESS
