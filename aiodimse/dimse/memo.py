"""Reuse of the last encoded response for a request of the same shape and outcome.

Peers repeat themselves: every C-ECHO, every Storage Commitment N-ACTION on the
well-known instance, every N-EVENT-REPORT of a series has the command set of the one
before but for its Message ID (see ``CommandDecoder.shape``). When the handler's
outcome is also the same bare status, the response is the same P-DATA-TF bytes but
for the two bytes of MessageIDBeingRespondedTo: they are patched in, and no response
message is built or encoded. Each association keeps one memo; memos share what they
learn through a bounded table, so that the first request of a new association with
a known shape (shapes are shared too, see ``CommandDecoder``) is answered the short
way as well: servers see many short associations.
"""

from __future__ import annotations

import struct

from .. import caches
from .commands import id_value_offset
from .messages import DIMSEMessage

__all__ = ["WITH_DATASET", "ResponseMemo", "first_pdu"]

WITH_DATASET = 0x10000
"""Added to a status: the key of a response with a data set, whose command PDU alone is
kept (CommandDataSetType 0x0001; the data set's PDUs follow it). A reply data set
changes nothing else in the command of a reusable kind (``RequestKind.reusable``)."""

_PDU_AND_PDV = struct.Struct(">BxIIBB")
_pack_id = struct.Struct("<H").pack
_HEADERS = 12  # PDU header (6) and PDV header (6) before the command set


def _id_offset(pdus: bytes) -> int | None:
    """Where MessageIDBeingRespondedTo's value is in a one-PDU, one-PDV command message."""
    if len(pdus) < _HEADERS:
        return None
    pdu_type, pdu_length, pdv_length, _context, control = _PDU_AND_PDV.unpack_from(pdus)
    if pdu_type != 0x04 or pdu_length + 6 != len(pdus) or pdv_length + 4 != pdu_length:
        return None
    if control != 0x03:  # not a whole command set in one PDV
        return None
    return id_value_offset(pdus, _HEADERS, responded_to=True)


def first_pdu(pdus: bytes) -> bytes:
    """The first PDU of a run of P-DATA-TF PDUs (a response's command, when it fits one)."""
    if len(pdus) < _HEADERS:
        return pdus
    return pdus[: 6 + int.from_bytes(pdus[2:6], "big")]


_Key = tuple[DIMSEMessage, int, int, int]
_SHARED: dict[_Key, tuple[bytes, bytes]] = {}
SHARED_LIMIT = 512
"""Most responses the memos share (the table is emptied when full)."""
caches.register("dimse.memo.responses", "module", lambda _: len(_SHARED), _SHARED.clear)


class ResponseMemo:
    """The last remembered response: its key and its bytes split around the ID.

    ``max_pdu`` is the peer's Maximum Length (0: none): a response is reused only
    for peers that take it unfragmented, as the long path would have sent it.
    """

    __slots__ = ("_context_id", "_head", "_max_pdu", "_shape", "_status", "_tail")

    def __init__(self, max_pdu: int = 0) -> None:
        self._max_pdu = max_pdu
        self._shape: DIMSEMessage | None = None
        self._status = -1
        self._context_id = -1
        self._head = self._tail = b""

    def holds(self) -> bool:
        """Whether a response is remembered."""
        return self._shape is not None

    def lookup(self, shape: DIMSEMessage, status: int, context_id: int, message_id: int
               ) -> bytes | None:
        """The response PDU for this request, if the remembered one fits it."""
        if shape is self._shape and status == self._status and context_id == self._context_id:
            return self._head + _pack_id(message_id) + self._tail
        parts = _SHARED.get((shape, status, context_id, self._max_pdu))
        if parts is None:
            return None
        self._shape, self._status, self._context_id = shape, status, context_id
        self._head, self._tail = parts
        return parts[0] + _pack_id(message_id) + parts[1]

    def offer(self, shape: DIMSEMessage, status: int, context_id: int, pdus: bytes) -> None:
        """Keep a response built the long way for the requests to come: without a data
        set, or its command PDU alone (``status`` + ``WITH_DATASET``).

        Kept from the first: most associations are short (a few requests each), so
        waiting for a repeat would cost many of them a second long path.
        """
        if not caches.enabled:
            return
        pos = _id_offset(pdus)
        if pos is None:
            return
        self._shape, self._status, self._context_id = shape, status, context_id
        self._head, self._tail = pdus[:pos], pdus[pos + 2 :]
        if len(_SHARED) >= SHARED_LIMIT:
            _SHARED.clear()
        _SHARED[shape, status, context_id, self._max_pdu] = (self._head, self._tail)
