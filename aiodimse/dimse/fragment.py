"""Fragmentation of one DIMSE message into ready-to-write P-DATA-TF PDUs (PS3.8 E.1).

The whole message comes out as one ``bytes`` so that the adapter writes it with a
single call. The data set is copied exactly once (by the final join); headers are
packed separately and the payload is referenced through memoryview slices.
"""

from __future__ import annotations

import struct

from aiodimse.errors import LocalProtocolError

__all__ = [
    "DEFAULT_UNLIMITED_PDU_LENGTH",
    "MIN_PDU_LENGTH",
    "encode_message",
    "encode_data",
]

DEFAULT_UNLIMITED_PDU_LENGTH = 1 << 20
"""PDU-length used when the peer declared no maximum (Maximum Length 0).

PS3.8 D.1 allows any size then, but 1 MiB PDUs keep the peer's (and any
middlebox's) buffering bounded at no measurable cost in throughput.
"""

MIN_PDU_LENGTH = 8
"""Smallest usable maximum: one PDV header (6 bytes) plus a 2-byte fragment."""

# PDU type 0x04, reserved, PDU-length, then the first PDV: item-length, context, control.
_PDU_AND_PDV = struct.Struct(">BBIIBB")
_PDV = struct.Struct(">IBB")

_CMD, _CMD_LAST, _DATA, _DATA_LAST = 0x01, 0x03, 0x00, 0x02


def _fragments(
    payload: memoryview, max_fragment: int, control: int, last: int, first: int | None = None
) -> list[tuple[int, memoryview]]:
    """Split ``payload`` into (control, slice) pairs; ``first`` sizes the first one."""
    total = len(payload)
    out: list[tuple[int, memoryview]] = []
    pos = 0
    size = max_fragment if first is None else first
    while True:
        end = pos + size
        if end >= total:
            out.append((last, payload[pos:]))
            return out
        out.append((control, payload[pos:end]))
        pos = end
        size = max_fragment


def encode_message(
    context_id: int,
    command: bytes,
    dataset: bytes | bytearray | memoryview | None,
    max_pdu_length: int,
    *,
    pack_command_with_dataset: bool = False,
) -> bytes:
    """Return the P-DATA-TF PDUs carrying ``command`` (and ``dataset``) back to back.

    ``max_pdu_length`` is the peer's Maximum Length (PS3.8 D.1): no PDU-length field
    exceeds it (PDV headers included); 0 means unlimited, for which
    :data:`DEFAULT_UNLIMITED_PDU_LENGTH` is used. Every fragment except possibly the
    data set's last one is even (max fragment = max_pdu_length - 6, rounded down to
    even); an odd-length data set thus gives an odd last fragment, which pydicom
    never produces. Command and data set go in separate PDVs, one PDV per PDU,
    unless ``pack_command_with_dataset``: then the last command PDV shares its PDU
    with the first data PDV when there is room (dcm4che does this; some peers choke
    on it, hence off by default). A ``dataset`` of ``b""`` gives one empty last data
    PDV, matching a command that announced a data set.
    """
    if max_pdu_length == 0:
        max_pdu_length = DEFAULT_UNLIMITED_PDU_LENGTH
    if max_pdu_length < MIN_PDU_LENGTH:
        raise LocalProtocolError(
            f"maximum PDU length {max_pdu_length} leaves no room for a fragment"
        )
    if not 1 <= context_id <= 255:
        raise LocalProtocolError(f"presentation context ID {context_id} not in 1..255")
    if not command:
        raise LocalProtocolError("empty command set")
    max_fragment = (max_pdu_length - 6) & ~1
    size = len(command)
    if size <= max_fragment and (type(dataset) is bytes or dataset is None):
        # The usual small message: one PDU for the command, one for the data set.
        head = _PDU_AND_PDV.pack(0x04, 0, size + 6, size + 2, context_id, _CMD_LAST)
        if dataset is None:
            return head + command
        data_size = len(dataset)
        if data_size <= max_fragment and not pack_command_with_dataset:
            data_head = _PDU_AND_PDV.pack(
                0x04, 0, data_size + 6, data_size + 2, context_id, _DATA_LAST
            )
            return b"".join((head, command, data_head, dataset))
    pdus: list[list[tuple[int, memoryview]]] = [
        [frag] for frag in _fragments(memoryview(command), max_fragment, _CMD, _CMD_LAST)
    ]
    if dataset is not None:
        data = memoryview(dataset).cast("B")
        room = (max_pdu_length - 6 - len(pdus[-1][0][1]) - 6) & ~1
        if pack_command_with_dataset and room > 0:
            frags = _fragments(data, max_fragment, _DATA, _DATA_LAST, first=room)
            pdus[-1].append(frags[0])
            pdus.extend([frag] for frag in frags[1:])
        else:
            pdus.extend([frag] for frag in _fragments(data, max_fragment, _DATA, _DATA_LAST))

    parts: list[bytes | memoryview] = []
    append = parts.append
    pack_first = _PDU_AND_PDV.pack
    for pdu in pdus:
        if len(pdu) == 1:
            control, chunk = pdu[0]
            size = len(chunk)
            append(pack_first(0x04, 0, size + 6, size + 2, context_id, control))
            append(chunk)
            continue
        length = sum(len(chunk) + 6 for _, chunk in pdu)
        (control, chunk), *rest = pdu
        append(pack_first(0x04, 0, length, len(chunk) + 2, context_id, control))
        append(chunk)
        for control, chunk in rest:
            append(_PDV.pack(len(chunk) + 2, context_id, control))
            append(chunk)
    return b"".join(parts)


def encode_data(context_id: int, chunk: bytes | bytearray | memoryview, last: bool,
                max_pdu_length: int) -> bytes:
    """P-DATA-TF PDUs of a data set, or of one piece of a data set sent in pieces (a
    file streamed), as :func:`encode_message` sends them after a one-PDU command: for
    a response whose command PDU is reused (dimse/memo.py), the command PDU plus
    ``encode_data(..., last=True, ...)`` are ``encode_message``'s bytes.

    Every fragment but the very last of the data set must be even, so a piece that
    is not ``last`` must have an even length.
    """
    if max_pdu_length == 0:
        max_pdu_length = DEFAULT_UNLIMITED_PDU_LENGTH
    if max_pdu_length < MIN_PDU_LENGTH:
        raise LocalProtocolError(
            f"maximum PDU length {max_pdu_length} leaves no room for a fragment")
    max_fragment = (max_pdu_length - 6) & ~1
    size = len(chunk)
    pack = _PDU_AND_PDV.pack
    if last and size <= max_fragment and type(chunk) is bytes:  # (the usual reply)
        return pack(0x04, 0, size + 6, size + 2, context_id, _DATA_LAST) + chunk
    data = memoryview(chunk).cast("B")
    if not last and len(data) & 1:
        raise LocalProtocolError("a data set piece before the last must be even")
    parts: list[bytes | memoryview] = []
    for control, piece in _fragments(data, max_fragment, _DATA, _DATA_LAST if last else _DATA):
        n = len(piece)
        parts += (pack(0x04, 0, n + 6, n + 2, context_id, control), piece)
    return b"".join(parts)
