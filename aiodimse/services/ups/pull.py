"""UPS Pull: N-SET under the Transaction UID lock and N-ACTION Change UPS State
(PS3.4 CC.2.6, CC.2.1). Each is one read-check-write transaction of the store, so
two SCUs claiming at once cannot both win."""

from __future__ import annotations

import time

from pydicom.dataset import Dataset

from ...events import Event
from ...store.interface import StoreError, WorkitemRow
from . import statuses as st
from .push import assigned
from .records import (
    Answer,
    Context,
    decoded,
    log,
    refused,
    status,
    store_failed,
    to_dataset,
    to_row,
    told,
    too_big,
)
from .workitems import (
    FINAL,
    IN_PROGRESS,
    TRANSACTION_UID_TAG,
    Refusal,
    change_state,
    check_set,
    final_filled,
    now_dt,
)

__all__ = ["n_set", "change_state_action"]

_PROGRESS = "ProcedureStepProgressInformationSequence"


async def n_set(ctx: Context, event: Event) -> Answer:
    """Apply the Modification List (a SCHEDULED workitem without Transaction UID, an
    IN PROGRESS one with its own); a sequence is replaced whole (CC.2.6.2)."""
    if not event.dataset_length:
        return status(st.PROCESSING_FAILURE, "empty Modification List"), None
    big = too_big(ctx, event.dataset_length, "request data set")
    if big is not None:
        ctx.refused += 1
        return refused(big)
    mods = decoded(lambda: event.modification_list)
    if not isinstance(mods, Dataset):
        return mods
    uid = str(event.request.RequestedSOPInstanceUID)
    before = Dataset()  # what the change replaced that the reports compare with

    def change(current: WorkitemRow | None) -> WorkitemRow | Refusal:
        if current is None:
            return Refusal(st.NO_SUCH_WORKITEM, "no such workitem")
        refusal = check_set(current.state, current.transaction_uid, mods)
        if refusal is not None:
            return refusal
        ds = to_dataset(current)
        before.InputReadinessState = ds.get("InputReadinessState", "")
        for elem in mods:
            if elem.tag != TRANSACTION_UID_TAG:
                ds[elem.tag] = elem
        ds.ScheduledProcedureStepModificationDateTime = now_dt()  # -/1: time of SET
        row = to_row(uid, ds, current.transaction_uid, current.calling_aet)
        return too_big(ctx, len(row.dataset), "workitem") or row

    try:
        result = await ctx.store.ups_update(uid, change, time.time())
    except StoreError as exc:
        return store_failed(ctx, event, "N-SET", exc)
    if isinstance(result, Refusal):
        ctx.refused += 1
        log.info("ups N-SET refused with 0x%04X: %s", result.status, result.comment)
        return refused(result)
    ctx.changed += 1
    ds = to_dataset(result)
    if "InputReadinessState" in mods and (str(mods.InputReadinessState).strip() !=
                                          str(before.get("InputReadinessState", "")).strip()):
        # CC.2.4.3: a changed Input Readiness State is told as a UPS State Report
        await told(ctx.events.state_changed(ds, None), "state_changed")
    if _PROGRESS in mods:
        await told(ctx.events.progress(ds), "progress")
    if assigned(mods):
        await told(ctx.events.assigned(ds), "assigned")
    return st.SUCCESS, None


async def change_state_action(ctx: Context, event: Event) -> Answer:
    """Change UPS State: claim (SCHEDULED -> IN PROGRESS, recording the SCU's
    Transaction UID), then COMPLETED or CANCELED under that UID once the workitem
    meets the final-state requirements (0xC304 naming the first one missing). A
    Reason For Cancellation or reason code sent beside the state is kept (a
    courtesy: Table CC.2.1-1 has neither; the standard way is an N-SET first)."""
    info = decoded(lambda: event.action_information)
    if not isinstance(info, Dataset):
        return info
    if "ProcedureStepState" not in info:
        return status(st.INVALID_ARGUMENT, "Procedure Step State missing (N-ACTION has "
                      "no Missing Attribute status: PS3.7 10.1.4)", 0x00741000), None
    requested = str(info.ProcedureStepState or "").strip().upper()
    given = str(info.get("TransactionUID", "") or "").strip() or None
    uid = str(event.request.RequestedSOPInstanceUID)

    def change(current: WorkitemRow | None) -> WorkitemRow | Refusal | int:
        if current is None:
            return Refusal(st.NO_SUCH_WORKITEM, "no such workitem")
        ds = to_dataset(current)
        if requested in FINAL:  # the SCP's own part first, then the check of the rest
            # a performer's cancel without a reason code gets CID 9300's "unspecified":
            # CC.1 lets a performer cancel with two N-ACTIONs and no N-SET, which
            # Table CC.2.5-3's X for the code would otherwise refuse (0xC304)
            final_filled(ds, requested, info, default_reason=True)
        verdict = change_state(current.state, current.transaction_uid, requested, given, ds)
        if isinstance(verdict, Refusal) or verdict != st.SUCCESS:
            return verdict
        ds.ProcedureStepState = requested
        lock = given if requested == IN_PROGRESS else current.transaction_uid
        return to_row(uid, ds, lock, current.calling_aet)

    try:
        result: WorkitemRow | Refusal | int = await ctx.store.ups_update(uid, change,
                                                                          time.time())
    except StoreError as exc:
        return store_failed(ctx, event, "Change UPS State", exc)
    if isinstance(result, Refusal):
        ctx.refused += 1
        log.info("ups Change UPS State refused with 0x%04X: %s", result.status,
                 result.comment)
        return refused(result)
    if isinstance(result, int):  # already in the state asked for: a warning
        return result, None
    ctx.changed += 1
    log.debug("ups uid=%s is %s", uid, requested)
    ds = to_dataset(result)
    reason = str(info.get("ReasonForCancellation", "") or "") or None
    await told(ctx.events.state_changed(ds, reason), "state_changed")
    return st.SUCCESS, None
