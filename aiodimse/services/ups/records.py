"""Between a stored ``WorkitemRow`` and the workitem's data set, and the answers
every UPS handler shares (status data sets, the store's failures)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from ...datasets import DatasetDecodeError, decode_dataset, encode_dataset, refusal_status
from ...events import Event
from ...logs import get_logger
from ...store.interface import StoreError, UPSWorkitems, WorkitemRow
from ..answers import status
from ..quotas import over
from ..store_status import store_comment, store_log_level, store_status
from ..values import first_invalid
from . import statuses as st
from .hooks import WorkitemEvents
from .matching import indexed
from .uids import UPS_PUSH
from .workitems import TRANSACTION_UID_TAG, Refusal, state_of

log = get_logger("aiodimse.ups")

__all__ = ["Answer", "Context", "to_dataset", "to_row", "status", "refused",
           "store_failed", "told", "log", "decoded", "too_big"]

Answer = tuple[int | Dataset, Dataset | None]


class Context:
    """What every UPS handler works with: the store, the hooks, counters."""

    def __init__(self, store: UPSWorkitems, events: WorkitemEvents,
                 max_workitem: int = 0) -> None:
        self.store = store
        self.events = events
        self.max_workitem = max_workitem  # bytes of one workitem; 0: no limit
        self.changed = 0  # durable changes made (created, set, state changed)
        self.refused = 0


def to_dataset(row: WorkitemRow) -> Dataset:
    """The workitem as stored (never with its Transaction UID)."""
    return decode_dataset(row.dataset, ExplicitVRLittleEndian)


def to_row(uid: str, ds: Dataset, transaction_uid: str | None,
           calling_aet: str | None) -> WorkitemRow:
    """The row for a workitem data set (the SOP identity set, the lock kept apart)."""
    ds.SOPClassUID = UPS_PUSH
    ds.SOPInstanceUID = uid
    if TRANSACTION_UID_TAG in ds:
        del ds[TRANSACTION_UID_TAG]
    return WorkitemRow(sop_instance_uid=uid, state=state_of(ds),
                       transaction_uid=transaction_uid,
                       dataset=encode_dataset(ds, ExplicitVRLittleEndian),
                       calling_aet=calling_aet, **indexed(ds))


def decoded(read: Callable[[], Dataset]) -> Dataset | Answer:
    """The request's data set (``read``: an event member that decodes it), or the
    answer refusing it: one that does not decode, or holds a value pydicom would
    warn about (0x0106 with the Offending Element)."""
    try:
        ds = read()
    except DatasetDecodeError as exc:
        return status(refusal_status(exc), str(exc)), None
    bad = first_invalid(ds)
    if bad is not None:
        return status(st.INVALID_ATTRIBUTE_VALUE, "invalid attribute value", bad), None
    return ds


def refused(refusal: Refusal) -> Answer:
    return status(refusal.status, refusal.comment, refusal.offending), None


def store_failed(ctx: Context, event: Event, what: str, exc: StoreError) -> Answer:
    """The answer when the store failed (``store_status``), the cause logged."""
    code = store_status(exc, event.request.command_field)
    log.log(store_log_level(exc), "ups %s not done: %s (answered 0x%04X)", what, exc, code)
    ctx.refused += 1
    return status(code, store_comment(exc, "UPS")), None


async def told(call: Awaitable[None], hook: str) -> None:
    """Await one hook call. The change is stored already, so the peer is answered as
    done even if the hook fails: the failure is logged with its traceback, for the
    operator, and goes no further (a hook is the subscription side's code)."""
    try:
        await call
    except Exception:
        log.exception("ups: the %s hook failed (the change is stored)", hook)


def too_big(ctx: Context, size: int, what: str) -> Refusal | None:
    """0x0213 when ``size`` bytes pass ``[quotas] ups_max_workitem`` (quotas.py's
    convention: resource limitation, the limit named), else None."""
    if not over(ctx.max_workitem, size):
        return None
    return Refusal(st.RESOURCE_LIMITATION,
                   f"{what} over {ctx.max_workitem} bytes: ups_max_workitem")
