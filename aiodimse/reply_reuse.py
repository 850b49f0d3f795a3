"""A handler's ``(status, Dataset)`` answered without building its response again.

For the kinds whose response depends on nothing but the request and the status
(``RequestKind.reusable``: N-ACTION, N-GET, N-SET, N-EVENT-REPORT), a reply data set
changes one thing in the command: CommandDataSetType. So the command PDU sent with
the first such reply for a request shape and status is kept by the session's memo
(dimse/memo.py, ``WITH_DATASET``) and reused, Message ID patched, for the next ones;
only the data set is encoded per response. Anything else (status fields, a status
that is not performed, an empty reply, an encoding failure) goes the usual way
(requests.build_response), which also reports the failures.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from .datasets import encode_dataset
from .presentation import PresentationContext
from .requests import RequestKind
from .status import is_performed

__all__ = ["encoded_reply"]


def encoded_reply(kind: RequestKind, result: object, context: PresentationContext
                  ) -> tuple[int, bytes] | None:
    """(status, encoded reply) of a result answered as a bare status and a data set.

    None: the result is not one (or its data set does not encode): build the
    response the usual way.
    """
    if not kind.reusable or not kind.with_dataset or type(result) is not tuple \
            or len(result) != 2:
        return None
    status: Any = result[0]
    reply = result[1]
    if type(status) is not int or not 0 <= status <= 0xFFFF or not is_performed(status) \
            or not isinstance(reply, Dataset) or not len(reply):
        return None
    try:
        return status, encode_dataset(reply, context.transfer_syntax)
    except Exception:  # the usual path encodes it again and answers 0x0110
        return None
