"""UPS C-FIND (Pull, Watch, Query) and N-GET (every UPS class): reading workitems.

C-FIND streams: the store's rows come in bounded batches, each judged by
``matching`` and sent before the next is read, and a C-CANCEL stops it (the
library's C-FIND driver, ``serving_query``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from ...events import Event
from ...store.interface import StoreError
from ..store_status import store_comment, store_status
from . import statuses as st
from .matching import MatchError, answer, matches, prefilter, unsupported
from .records import Answer, Context, log, status, store_failed, to_dataset
from .workitems import TRANSACTION_UID_TAG

__all__ = ["n_get", "c_find", "workitem", "workitems"]


def _empty(tag: int) -> DataElement:
    """A zero-length element: N-GET's answer for an attribute the workitem lacks."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "UN"
    return DataElement(tag, vr, [] if vr == "SQ" else None)


async def workitem(ctx: Context, uid: str) -> Dataset | None:
    row = await ctx.store.ups_get(uid)
    return None if row is None else to_dataset(row)


async def workitems(ctx: Context, identifier: Dataset | None) -> AsyncIterator[Dataset]:
    """Every stored workitem ``identifier`` matches (None: all), oldest first."""
    async for row in ctx.store.ups_match(prefilter(identifier)):
        ds = to_dataset(row)
        if identifier is None or matches(identifier, ds):
            yield ds


async def n_get(ctx: Context, event: Event) -> Answer:
    """The workitem's attributes (all, or those asked for), never its Transaction UID."""
    uid = str(event.request.RequestedSOPInstanceUID)
    try:
        ds = await workitem(ctx, uid)
    except StoreError as exc:
        return store_failed(ctx, event, "N-GET", exc)
    if ds is None:
        return status(st.NO_SUCH_WORKITEM, "no such workitem"), None
    wanted = [t for t in event.attribute_identifiers if int(t) != TRANSACTION_UID_TAG]
    if not event.attribute_identifiers:
        return st.SUCCESS, ds
    reply = Dataset()
    for tag in wanted:
        elem: DataElement = ds[tag] if tag in ds else _empty(int(tag))
        reply[tag] = elem
    return st.SUCCESS, reply


async def c_find(ctx: Context, event: Event) -> AsyncIterator[Any]:
    """(0xFF00, identifier) per matching workitem (0xFF01 when the identifier holds
    a key not supported: matching.unsupported), or the refusal's status."""
    try:
        identifier = event.identifier
    except Exception as exc:  # pydicom's many ways of failing on bad bytes
        yield status(st.FIND_NOT_MATCHING, f"identifier does not decode: "
                                           f"{type(exc).__name__}"), None
        return
    pending = st.FIND_PENDING_WARNING if unsupported(identifier) else st.FIND_PENDING
    try:
        async for ds in workitems(ctx, identifier):
            yield pending, answer(identifier, ds)
    except MatchError as exc:
        ctx.refused += 1
        yield status(st.FIND_NOT_MATCHING, str(exc)), None
    except StoreError as exc:
        ctx.refused += 1
        code = store_status(exc, event.request.command_field)
        log.error("ups C-FIND: %s: answering 0x%04X", exc, code)
        yield status(code, store_comment(exc, "UPS")), None
