"""UPS Push: N-CREATE of a SCHEDULED workitem and N-ACTION Request UPS Cancel
(PS3.4 CC.2.5, CC.2.2). The hooks are told after each change is stored."""

from __future__ import annotations

import copy
import time

from pydicom.dataset import Dataset

from ...events import Event
from ...store.interface import StoreError, WorkitemRow
from ...uids import new_uid
from . import statuses as st
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
    CANCELED,
    COMPLETED,
    IN_PROGRESS,
    SCHEDULED,
    Refusal,
    check_create,
    final_filled,
    now_dt,
)

__all__ = ["n_create", "request_cancel", "assigned"]

_ASSIGNING = ("ScheduledStationNameCodeSequence", "ScheduledHumanPerformersSequence")


def assigned(ds: Dataset) -> bool:
    """Whether ``ds`` names a station or human performer (UPS Assigned)."""
    return any(ds.get(keyword) for keyword in _ASSIGNING)


async def n_create(ctx: Context, event: Event) -> Answer:
    """Store a new SCHEDULED workitem; the SCP names it when the SCU did not."""
    if not event.dataset_length:
        return status(st.MISSING_ATTRIBUTE, "N-CREATE needs the workitem's attributes"), None
    big = too_big(ctx, event.dataset_length, "request data set")
    if big is not None:
        return _limited(ctx, big)
    attrs = decoded(lambda: event.attribute_list)
    if not isinstance(attrs, Dataset):
        return attrs
    checked = check_create(attrs)
    if isinstance(checked, Refusal):
        ctx.refused += 1
        log.info("ups N-CREATE refused with 0x%04X: %s", checked.status, checked.comment)
        return refused(checked)
    attrs.ScheduledProcedureStepModificationDateTime = now_dt()  # -/1: time of CREATE
    requested = event.request.AffectedSOPInstanceUID
    uid = str(requested) if requested else new_uid()
    row = to_row(uid, attrs, None, event.assoc.requestor.ae_title)
    big = too_big(ctx, len(row.dataset), "workitem")
    if big is not None:
        return _limited(ctx, big)
    try:
        added = await ctx.store.ups_create(row, time.time())
    except StoreError as exc:
        return store_failed(ctx, event, "N-CREATE", exc)
    if not added:
        return status(st.DUPLICATE_INSTANCE, "a workitem with this UID exists"), None
    ctx.changed += 1
    log.debug("ups created uid=%s", uid)
    await told(ctx.events.created(attrs), "created")
    if assigned(attrs):
        await told(ctx.events.assigned(attrs), "assigned")
    answer = status(st.CREATED_WITH_MODIFICATIONS if checked else st.SUCCESS)
    answer.AffectedSOPInstanceUID = uid
    return answer, attrs


async def request_cancel(ctx: Context, event: Event) -> Answer:
    """Request UPS Cancel: a SCHEDULED workitem is CANCELED at once; for an IN
    PROGRESS one the request goes to its performer (``cancel_requested``)."""
    uid = str(event.request.RequestedSOPInstanceUID)
    request = decoded(lambda: event.action_information)
    if not isinstance(request, Dataset):
        return request
    reason = str(request.get("ReasonForCancellation", "") or "") or None

    def change(current: WorkitemRow | None) -> WorkitemRow | Answer:
        if current is None:
            return status(st.NO_SUCH_WORKITEM, "no such workitem"), None
        if current.state == CANCELED:
            return st.ALREADY_CANCELED, None
        if current.state == COMPLETED:
            return status(st.CANCEL_ALREADY_COMPLETED, "the workitem is COMPLETED"), None
        if current.state == IN_PROGRESS:
            return st.SUCCESS, to_dataset(current)  # the performer decides
        ds = to_dataset(current)
        ds.ProcedureStepState = CANCELED
        final_filled(ds, CANCELED, request, default_reason=True)
        return to_row(uid, ds, None, current.calling_aet)

    try:
        result = await ctx.store.ups_update(uid, change, time.time())
    except StoreError as exc:
        return store_failed(ctx, event, "Request UPS Cancel", exc)
    if isinstance(result, WorkitemRow):
        ctx.changed += 1
        ds = to_dataset(result)
        claimed = copy.deepcopy(ds)  # CC.2.2.3: through IN PROGRESS to CANCELED
        claimed.ProcedureStepState = IN_PROGRESS
        await told(ctx.events.state_changed(claimed, None), "state_changed")
        await told(ctx.events.state_changed(ds, reason), "state_changed")
        log.debug("ups canceled uid=%s (was %s)", uid, SCHEDULED)
        return st.SUCCESS, None
    code, workitem = result
    if code == st.SUCCESS and workitem is not None:
        info = copy.deepcopy(request)
        info.RequestingAE = event.assoc.requestor.ae_title
        await told(ctx.events.cancel_requested(workitem, info), "cancel_requested")
        return st.SUCCESS, None
    if isinstance(code, Dataset):
        ctx.refused += 1
    return code, None


def _limited(ctx: Context, refusal: Refusal) -> Answer:
    ctx.refused += 1
    log.info("ups refused with 0x%04X: %s", refusal.status, refusal.comment)
    return refused(refusal)
