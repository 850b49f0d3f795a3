"""How a handler's return value becomes a DIMSE response (the event contract).

pynetdicom's behaviour is kept row for row, with one deliberate difference: a
handler that returns the wrong shape (a bare status where a pair is expected, or
None) gets a defined answer instead of an aborted association. See docs/handlers.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from . import caches
from .logs import get_logger
from .status import PROCESSING_FAILURE, is_performed

__all__ = ["Outcome", "resolve", "STATUS_DATASET_FIELDS"]

log = get_logger("aiodimse.handlers")

# Status dataset elements (PS3.7 Annex C) copied into the response when present.
STATUS_DATASET_FIELDS = (
    "ErrorComment",
    "ErrorID",
    "OffendingElement",
    "AttributeIdentifierList",
    "AffectedSOPInstanceUID",
    "AffectedSOPClassUID",
)

_NOT_INT_NOR_DATASET = 0xC002
_NO_STATUS_ELEMENT = 0xC001


@dataclass(frozen=True, slots=True)
class Outcome:
    """The response to send: status, status fields, encoded reply data set."""

    status: int
    fields: dict[str, Any] = field(default_factory=dict)
    dataset: bytes | None = None


def _status_of(status: object) -> tuple[int, dict[str, Any]]:
    if isinstance(status, Dataset):
        if "Status" not in status:
            log.error("handler returned a status Dataset without a Status element")
            return _NO_STATUS_ELEMENT, {}
        code = status.Status
        if not isinstance(code, int) or not 0 <= code <= 0xFFFF:
            return _NOT_INT_NOR_DATASET, {}
        fields = {k: status.get(k) for k in STATUS_DATASET_FIELDS if k in status}
        return code, {k: v for k, v in fields.items() if v is not None and v != ""}
    if isinstance(status, int) and not isinstance(status, bool) and 0 <= status <= 0xFFFF:
        return status, {}
    log.error("handler returned a status that is neither an int nor a Dataset: %r", status)
    return _NOT_INT_NOR_DATASET, {}


_BARE: dict[int, Outcome] = {}


caches.register("outcome.bare", "module", lambda _: len(_BARE), _BARE.clear)


def _bare(code: int) -> Outcome:
    """A shared Outcome for a status with no fields and no data set."""
    outcome = _BARE.get(code)
    if outcome is None:
        outcome = Outcome(code)
        if len(_BARE) < 256 and caches.enabled:
            _BARE[code] = outcome
    return outcome


def resolve(
    result: object,
    *,
    with_dataset: bool,
    encode: Callable[[Dataset], bytes],
) -> Outcome:
    """Turn a handler's return value into an Outcome.

    ``with_dataset`` is True for the services whose handlers return
    ``(status, dataset)`` (N-ACTION, N-CREATE, N-EVENT-REPORT, N-GET, N-SET) and
    False for those returning a status alone (N-DELETE, C-ECHO).
    """
    if type(result) is tuple and len(result) == 2 and result[1] is None:
        code = result[0]
        if with_dataset and type(code) is int and 0 <= code <= 0xFFFF:
            return _bare(code)  # the common (status, None): no allocation
    if not with_dataset:
        code, fields = _status_of(result)
        return Outcome(code, fields) if fields else _bare(code)
    if result is None:
        log.error("handler returned None instead of (status, dataset): answering 0x0110")
        return Outcome(PROCESSING_FAILURE)
    if isinstance(result, (int, Dataset)) and not isinstance(result, bool):
        # A bare status: pynetdicom aborts the association here; we answer it.
        code, fields = _status_of(result)
        return Outcome(code, fields)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        log.error("handler returned %r instead of (status, dataset): answering 0x0110", result)
        return Outcome(PROCESSING_FAILURE)
    code, fields = _status_of(result[0])
    reply = result[1]
    if reply is None or not is_performed(code):
        return Outcome(code, fields)
    if not isinstance(reply, Dataset):
        log.error("handler returned a reply that is not a Dataset: %r", type(reply))
        return Outcome(PROCESSING_FAILURE)
    if len(reply) == 0:
        return Outcome(code, fields)
    try:
        data = encode(reply)
    except Exception:  # any failure of the user's data set is a processing failure
        log.exception("the handler's reply data set could not be encoded: answering 0x0110")
        return Outcome(PROCESSING_FAILURE)
    return Outcome(code, fields, data)
