"""One C-STORE sub-operation of a C-GET or C-MOVE, as the SCP sends it.

``send_c_store`` does the work (the context on which we may act as SCU: for a
C-GET, the one whose SCP role the peer took; the data set's own transfer syntax
first; a file sent as stored); here its failures become a failed sub-operation
instead of an exception, since one instance that cannot be sent must not end the
retrieval of the others.
"""

from __future__ import annotations

import os
from typing import Any

from pydicom.dataset import Dataset

from .association_log import log

__all__ = ["store_instance"]


async def store_instance(assoc: Any, dataset: object, priority: int,
                         originator: tuple[str, int] | None = None) -> int | None:
    """Send ``dataset`` (a Dataset or a Part 10 file) as a C-STORE-RQ on ``assoc``:
    the response's status, or None if it could not be sent (no context, not a data
    set, the association ended).

    ``originator``: (Move Originator AE title, Message ID) of a C-MOVE.
    """
    if not isinstance(dataset, (Dataset, str, os.PathLike)):
        log.error("a sub-operation needs a Dataset or a file, not %s", type(dataset).__name__)
        return None
    ae_title, message_id = originator if originator is not None else (None, None)
    try:
        status = await assoc.send_c_store(dataset, priority=priority, originator_aet=ae_title,
                                          originator_id=message_id)
    except Exception as exc:  # no context, the association gone, a file
        # gone or no DICOM (pydicom's many types), a Dataset without its UIDs: one
        # failed sub-operation, the retrieval goes on
        log.error("C-STORE sub-operation failed: %s", exc)
        return None
    return int(status.Status)
