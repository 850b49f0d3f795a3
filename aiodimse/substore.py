"""The smallest C-STORE as SCU: one data set, for C-GET/C-MOVE sub-operations.

(A stand-in until the C-STORE service's ``send_c_store`` is merged: encode the data
set, send the C-STORE-RQ, await the C-STORE-RSP.) The context is an accepted one for
the instance's SOP class on which we may act as SCU (for a C-GET, the peer accepted
the SCP role), preferring the data set's own transfer syntax.
"""

from __future__ import annotations

import os
from typing import Any

from pydicom.dataset import Dataset

from .association_log import log
from .dimse.messages import CStoreRQ
from .errors import AiodimseError
from .scu import _Command

__all__ = ["store_instance"]


def _context(assoc: Any, sop_class: str, transfer_syntax: str | None) -> Any:
    """The best accepted context to send a ``sop_class`` instance on, or None."""
    found = None
    for ctx in assoc.accepted_contexts:
        if ctx.abstract_syntax == sop_class and ctx.as_scu:
            if ctx.transfer_syntax == transfer_syntax:
                return ctx
            found = found or ctx
    return found


async def store_instance(assoc: Any, dataset: Any, priority: int,
                         originator: tuple[str, int] | None = None) -> int | None:
    """Send ``dataset`` as a C-STORE-RQ on ``assoc``: the response's status, or None
    if it could not be sent (no context, not a data set, the association ended).

    ``originator``: (Move Originator AE title, Message ID) of a C-MOVE. A file
    (a path: ``os.PathLike`` or ``str``) goes through ``send_c_store``, which
    streams a large one from disk instead of loading it.
    """
    if isinstance(dataset, (str, os.PathLike)):
        return await _store_file(assoc, dataset, priority, originator)
    if not isinstance(dataset, Dataset):
        log.error("a sub-operation needs a Dataset, not %s", type(dataset).__name__)
        return None
    sop_class = str(getattr(dataset, "SOPClassUID", "") or "")
    sop_instance = str(getattr(dataset, "SOPInstanceUID", "") or "")
    meta = getattr(dataset, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") or None
    ctx = _context(assoc, sop_class, syntax)
    if ctx is None or not sop_instance:
        log.error("no accepted context to store %s %s as SCU: sub-operation failed",
                  sop_class or "(no SOP Class UID)", sop_instance)
        return None
    ae_title, message_id = originator if originator is not None else (None, None)

    def build(i: int) -> CStoreRQ:
        return CStoreRQ(MessageID=i, AffectedSOPClassUID=sop_class,
                        AffectedSOPInstanceUID=sop_instance, Priority=priority,
                        MoveOriginatorApplicationEntityTitle=ae_title,
                        MoveOriginatorMessageID=message_id)

    try:
        received = await assoc._request(ctx, _Command(build), dataset)
    except (AiodimseError, ValueError, TypeError) as exc:
        log.error("C-STORE sub-operation for %s failed: %s", sop_instance, exc)
        return None
    return int(received.message.Status)


async def _store_file(assoc: Any, path: str | os.PathLike[str], priority: int,
                      originator: tuple[str, int] | None) -> int | None:
    ae_title, message_id = originator if originator is not None else (None, None)
    try:
        status = await assoc.send_c_store(path, priority=priority, originator_aet=ae_title,
                                          originator_id=message_id)
    except Exception as exc:  # the file went, is no DICOM (pydicom's many types), no context
        log.error("C-STORE sub-operation for %s failed: %s", os.fspath(path), exc)
        return None
    return int(status.Status)
