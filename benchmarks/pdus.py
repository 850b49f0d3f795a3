"""Hand-built PDU bytes for the benchmark suite (PS3.8 section 9.3, PS3.7 section 9.3/10.3).

Everything the load generator and the ceiling responder put on the wire is computed
here once, with :mod:`struct`, independently of aiodimse, so that the load side is both
cheap and an independent check of the library. pydicom is used once, at start-up, to
encode the Storage Commitment data set (Implicit VR Little Endian).

Per request only the Message ID changes: a :class:`MessageTemplate` holds the bytes
before and after the two Message ID bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "APP_CONTEXT",
    "IMPLICIT_LE",
    "STGCMT_CLASS",
    "STGCMT_INSTANCE",
    "VERIFICATION",
    "CT_IMAGE_STORAGE",
    "MAX_PDU",
    "NO_DATASET",
    "PC_STGCMT",
    "PC_VERIFICATION",
    "MPPS_CLASS",
    "PC_MPPS",
    "A_RELEASE_RQ",
    "A_RELEASE_RP",
    "A_ABORT",
    "MessageTemplate",
    "ParsedCommand",
    "build_associate_rq",
    "build_associate_ac",
    "build_ac_for_rq",
    "encode_command",
    "p_data_pdus",
    "stgcmt_pydicom",
    "stgcmt_dataset",
    "n_action_rq",
    "n_action_rq_for",
    "n_action_rsp",
    "c_echo_rq",
    "c_echo_rsp",
    "response_template",
    "parse_command",
    "scan_command",
    "parse_ac_window",
    "split_pdus",
    "template",
]

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
STGCMT_CLASS = "1.2.840.10008.1.20.1"
STGCMT_INSTANCE = "1.2.840.10008.1.20.1.1"
VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1385.9.1"
IMPLEMENTATION_VERSION = "AIODIMSE_BENCH"
# Both directions use this Maximum Length (0x51); data sets are fragmented to it.
MAX_PDU = 16384
PC_STGCMT = 1
PC_VERIFICATION = 3
PC_MPPS = 5  # proposed for row 8's N-GET and N-CREATE only
MPPS_CLASS = "1.2.840.10008.3.1.2.3.3"

# Command Field values (PS3.7 section 9.3 / 10.3)
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
N_GET_RQ, N_GET_RSP = 0x0110, 0x8110
N_CREATE_RQ, N_CREATE_RSP = 0x0140, 0x8140
NO_DATASET = 0x0101

_HDR = struct.Struct(">BBI")  # PDU type, reserved, PDU length
_ITEM = struct.Struct(">BBH")  # item type, reserved, item length
_PDV = struct.Struct(">IBB")  # item length, presentation context ID, message control header
_ELEM = struct.Struct("<HHI")  # group, element, value length (Implicit VR LE)
_US = struct.Struct("<H")
_UL = struct.Struct("<I")

A_RELEASE_RQ = _HDR.pack(0x05, 0, 4) + bytes(4)
A_RELEASE_RP = _HDR.pack(0x06, 0, 4) + bytes(4)
# A-ABORT, source 0 (service user), reason 0
A_ABORT = _HDR.pack(0x07, 0, 4) + bytes(4)


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return _HDR.pack(pdu_type, 0, len(body)) + body


def _item(item_type: int, body: bytes) -> bytes:
    return _ITEM.pack(item_type, 0, len(body)) + body


def _ae(title: str) -> bytes:
    raw = title.encode("ascii")
    if not 0 < len(raw) <= 16:
        raise ValueError(f"bad AE title {title!r}")
    return raw.ljust(16, b" ")


def _user_info(max_pdu: int, window: tuple[int, int] | None) -> bytes:
    sub = [
        _item(0x51, struct.pack(">I", max_pdu)),
        _item(0x52, IMPLEMENTATION_UID.encode()),
    ]
    if window is not None:
        sub.append(_item(0x53, struct.pack(">HH", *window)))
    sub.append(_item(0x55, IMPLEMENTATION_VERSION.encode()))
    return _item(0x50, b"".join(sub))


def build_associate_rq(
    *,
    called: str = "BENCH_SCP",
    calling: str = "BENCH_SCU",
    contexts: tuple[tuple[int, str], ...] = (
        (PC_STGCMT, STGCMT_CLASS),
        (PC_VERIFICATION, VERIFICATION),
    ),
    max_pdu: int = MAX_PDU,
    window: tuple[int, int] | None = None,
) -> bytes:
    """A-ASSOCIATE-RQ proposing each (context ID, abstract syntax) with Implicit VR LE.

    `window` is (max ops invoked, max ops performed) for the Asynchronous Operations
    Window sub-item (0x53); ``None`` leaves it out (the default, PS3.7 D.3.3.3).
    """
    fixed = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)
    items = [_item(0x10, APP_CONTEXT.encode())]
    for pcid, abstract in contexts:
        sub = _item(0x30, abstract.encode()) + _item(0x40, IMPLICIT_LE.encode())
        items.append(_item(0x20, bytes((pcid, 0, 0, 0)) + sub))
    items.append(_user_info(max_pdu, window))
    return _pdu(0x01, fixed + b"".join(items))


def build_associate_ac(
    *,
    called: bytes,
    calling: bytes,
    results: list[tuple[int, int, str]],
    max_pdu: int = MAX_PDU,
    window: tuple[int, int] | None = None,
) -> bytes:
    """A-ASSOCIATE-AC; `results` is [(context ID, result, transfer syntax)]."""
    fixed = struct.pack(">HH", 1, 0) + called + calling + bytes(32)
    items = [_item(0x10, APP_CONTEXT.encode())]
    for pcid, result, ts in results:
        items.append(_item(0x21, bytes((pcid, 0, result, 0)) + _item(0x40, ts.encode())))
    items.append(_user_info(max_pdu, window))
    return _pdu(0x02, fixed + b"".join(items))


def build_ac_for_rq(
    rq: bytes | bytearray | memoryview,
    supported: frozenset[str] = frozenset({STGCMT_CLASS, VERIFICATION, MPPS_CLASS}),
    max_pdu: int = MAX_PDU,
) -> bytes:
    """Answer an A-ASSOCIATE-RQ PDU (with its 6-byte header): accept every supported
    abstract syntax offered with Implicit VR LE, echo the async ops window if proposed
    (the ceiling performs any number of operations)."""
    body = memoryview(rq)[6:]
    called, calling = bytes(body[4:20]), bytes(body[20:36])
    pos, end = 68, len(body)
    results: list[tuple[int, int, str]] = []
    window: tuple[int, int] | None = None
    while pos + 4 <= end:
        itype, _, ilen = _ITEM.unpack_from(body, pos)
        ibody = body[pos + 4 : pos + 4 + ilen]
        pos += 4 + ilen
        if itype == 0x20:
            pcid = ibody[0]
            abstract, tss = "", []
            spos = 4
            while spos + 4 <= len(ibody):
                stype, _, slen = _ITEM.unpack_from(ibody, spos)
                value = bytes(ibody[spos + 4 : spos + 4 + slen]).decode("ascii").rstrip("\0 ")
                spos += 4 + slen
                if stype == 0x30:
                    abstract = value
                elif stype == 0x40:
                    tss.append(value)
            if abstract not in supported:
                results.append((pcid, 3, IMPLICIT_LE))
            elif IMPLICIT_LE in tss:
                results.append((pcid, 0, IMPLICIT_LE))
            else:
                results.append((pcid, 4, IMPLICIT_LE))
        elif itype == 0x50:
            spos = 0
            while spos + 4 <= len(ibody):
                stype, _, slen = _ITEM.unpack_from(ibody, spos)
                if stype == 0x53 and slen == 4:
                    inv, perf = struct.unpack_from(">HH", ibody, spos + 4)
                    window = (inv, perf)
                spos += 4 + slen
    return build_associate_ac(
        called=called, calling=calling, results=results, max_pdu=max_pdu, window=window
    )


def parse_ac_window(ac: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """The Asynchronous Operations Window of an A-ASSOCIATE-AC PDU, or None if absent."""
    body = memoryview(ac)[6:]
    pos, end = 68, len(body)
    while pos + 4 <= end:
        itype, _, ilen = _ITEM.unpack_from(body, pos)
        if itype == 0x50:
            spos, send = pos + 4, pos + 4 + ilen
            while spos + 4 <= send:
                stype, _, slen = _ITEM.unpack_from(body, spos)
                if stype == 0x53 and slen == 4:
                    inv, perf = struct.unpack_from(">HH", body, spos + 4)
                    return (inv, perf)
                spos += 4 + slen
        pos += 4 + ilen
    return None


# --- command sets (group 0000, always Implicit VR LE, PS3.7 section 6.3.1) ---------

_UI, _US_VR, _AT = "UI", "US", "AT"
_VR = {
    0x0002: _UI,  # AffectedSOPClassUID
    0x0003: _UI,  # RequestedSOPClassUID
    0x0100: _US_VR,  # CommandField
    0x0110: _US_VR,  # MessageID
    0x0120: _US_VR,  # MessageIDBeingRespondedTo
    0x0800: _US_VR,  # CommandDataSetType
    0x0900: _US_VR,  # Status
    0x1000: _UI,  # AffectedSOPInstanceUID
    0x1001: _UI,  # RequestedSOPInstanceUID
    0x1005: _AT,  # AttributeIdentifierList
    0x1008: _US_VR,  # ActionTypeID
}
_MESSAGE_ID_ELEMENTS = (0x0110, 0x0120)


def encode_command(elements: Mapping[int, int | str | tuple[int, ...]]) -> tuple[bytes, int]:
    """Encode group-0000 elements (keyed by element number) with CommandGroupLength.

    Returns the bytes and the offset of the Message ID / Message ID Being Responded To
    value (-1 if neither is present).
    """
    parts: list[bytes] = []
    mid_offset = -1
    offset = 12  # after the CommandGroupLength element
    for elem in sorted(elements):
        value = elements[elem]
        if _VR[elem] == _UI:
            assert isinstance(value, str)
            raw = value.encode("ascii")
            if len(raw) % 2:
                raw += b"\0"
        elif _VR[elem] == _AT:
            assert isinstance(value, tuple)
            raw = b"".join(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in value)
        else:
            assert isinstance(value, int)
            raw = _US.pack(value)
        if elem in _MESSAGE_ID_ELEMENTS:
            mid_offset = offset + 8
        encoded = _ELEM.pack(0, elem, len(raw)) + raw
        parts.append(encoded)
        offset += len(encoded)
    body = b"".join(parts)
    return _ELEM.pack(0, 0, 4) + _UL.pack(len(body)) + body, mid_offset


def p_data_pdus(pcid: int, payload: bytes, *, command: bool, max_pdu: int = MAX_PDU) -> bytes:
    """Fragment `payload` into P-DATA-TF PDUs of one PDV each, none over `max_pdu`
    (PDU-length field, PDV header included), every fragment of even length."""
    if len(payload) % 2:
        raise ValueError("DIMSE payloads are even-length")
    max_frag = (max_pdu - 6) & ~1
    base = 0x01 if command else 0x00
    out = []
    pos = 0
    while True:
        frag = payload[pos : pos + max_frag]
        pos += len(frag)
        last = pos >= len(payload)
        mch = base | (0x02 if last else 0)
        out.append(_HDR.pack(0x04, 0, 6 + len(frag)) + _PDV.pack(2 + len(frag), pcid, mch) + frag)
        if last:
            return b"".join(out)


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """The bytes of a whole DIMSE message (all its PDUs) around its 2 Message ID bytes."""

    head: bytes
    tail: bytes

    def render(self, message_id: int) -> bytes:
        return self.head + _US.pack(message_id) + self.tail

    def __len__(self) -> int:
        return len(self.head) + 2 + len(self.tail)


def template(
    pcid: int, cmd: Mapping[int, int | str | tuple[int, ...]], dataset: bytes | None,
    max_pdu: int = MAX_PDU,
) -> MessageTemplate:
    """A whole DIMSE message (command set and data set) around its Message ID."""
    encoded, mid_offset = encode_command(cmd)
    if len(encoded) + 12 > max_pdu:
        raise ValueError("command set does not fit one PDU")
    cmd_pdu = p_data_pdus(pcid, encoded, command=True, max_pdu=max_pdu)
    pos = 12 + mid_offset  # 6-byte PDU header + 6-byte PDV header
    data = p_data_pdus(pcid, dataset, command=False, max_pdu=max_pdu) if dataset else b""
    return MessageTemplate(cmd_pdu[:pos], cmd_pdu[pos + 2 :] + data)


def stgcmt_pydicom(n_refs: int) -> Any:
    """The Storage Commitment action information as a pydicom Dataset (PS3.4 J.3.2.1):
    Transaction UID and a Referenced SOP Sequence of `n_refs` CT instances."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = Dataset()
    ds.TransactionUID = "1.2.826.0.1.3680043.10.1385.1.1"
    items = []
    for i in range(n_refs):
        item = Dataset()
        item.ReferencedSOPClassUID = CT_IMAGE_STORAGE
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.10.1385.2.{i + 1}"
        items.append(item)
    ds.ReferencedSOPSequence = Sequence(items)
    return ds


@lru_cache(maxsize=8)
def stgcmt_dataset(n_refs: int) -> bytes:
    """:func:`stgcmt_pydicom` encoded Implicit VR Little Endian by pydicom."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, stgcmt_pydicom(n_refs))
    return fp.getvalue()


@lru_cache(maxsize=8)
def n_action_rq(n_refs: int, pcid: int = PC_STGCMT, max_pdu: int = MAX_PDU) -> MessageTemplate:
    """N-ACTION-RQ, Action Type 1 on the Storage Commitment well-known instance, with
    `n_refs` referenced instances."""
    return n_action_rq_for(stgcmt_dataset(n_refs), pcid, max_pdu)


def n_action_rq_for(
    dataset: bytes, pcid: int = PC_STGCMT, max_pdu: int = MAX_PDU
) -> MessageTemplate:
    """N-ACTION-RQ carrying already encoded action information (no pydicom needed)."""
    cmd: dict[int, int | str] = {
        0x0003: STGCMT_CLASS,
        0x0100: N_ACTION_RQ,
        0x0110: 0,
        0x0800: 0x0001,
        0x1001: STGCMT_INSTANCE,
        0x1008: 1,
    }
    return template(pcid, cmd, dataset, max_pdu)


@lru_cache(maxsize=8)
def n_action_rsp(pcid: int = PC_STGCMT, status: int = 0) -> MessageTemplate:
    cmd: dict[int, int | str] = {
        0x0002: STGCMT_CLASS,
        0x0100: N_ACTION_RSP,
        0x0120: 0,
        0x0800: NO_DATASET,
        0x0900: status,
        0x1000: STGCMT_INSTANCE,
        0x1008: 1,
    }
    return template(pcid, cmd, None, MAX_PDU)


@lru_cache(maxsize=8)
def c_echo_rq(pcid: int = PC_VERIFICATION) -> MessageTemplate:
    cmd: dict[int, int | str] = {
        0x0002: VERIFICATION,
        0x0100: C_ECHO_RQ,
        0x0110: 0,
        0x0800: NO_DATASET,
    }
    return template(pcid, cmd, None, MAX_PDU)


@lru_cache(maxsize=8)
def c_echo_rsp(pcid: int = PC_VERIFICATION, status: int = 0) -> MessageTemplate:
    cmd: dict[int, int | str] = {
        0x0002: VERIFICATION,
        0x0100: C_ECHO_RSP,
        0x0120: 0,
        0x0800: NO_DATASET,
        0x0900: status,
    }
    return template(pcid, cmd, None, MAX_PDU)


def response_template(command_field: int, pcid: int) -> MessageTemplate | None:
    """The success response to a request command field, on the request's context."""
    if command_field == N_ACTION_RQ:
        return n_action_rsp(pcid)
    if command_field == C_ECHO_RQ:
        return c_echo_rsp(pcid)
    return None


# --- parsing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    command_field: int
    message_id: int  # MessageID, or MessageIDBeingRespondedTo for a response
    status: int  # -1 if absent
    dataset_type: int


def scan_command(cmd: bytes | bytearray | memoryview) -> tuple[int, int, int, int]:
    """(CommandField, MessageID or MessageIDBeingRespondedTo, Status or -1,
    CommandDataSetType) of an Implicit VR LE command set; only US values are read."""
    pos, end = 0, len(cmd)
    field = mid = dst = -1
    status = -1
    unpack_elem, unpack_us = _ELEM.unpack_from, _US.unpack_from
    while pos + 8 <= end:
        _, elem, vlen = unpack_elem(cmd, pos)
        pos += 8
        if vlen == 2:
            if elem == 0x0100:
                field = unpack_us(cmd, pos)[0]
            elif elem in {0x0110, 0x0120}:
                mid = unpack_us(cmd, pos)[0]
            elif elem == 0x0800:
                dst = unpack_us(cmd, pos)[0]
            elif elem == 0x0900:
                status = unpack_us(cmd, pos)[0]
        pos += vlen
    return field, mid, status, dst


def parse_command(cmd: bytes | bytearray | memoryview) -> ParsedCommand:
    return ParsedCommand(*scan_command(cmd))


def split_pdus(data: bytes) -> list[tuple[int, bytes]]:
    """[(PDU type, body)] of a byte string of whole PDUs (for tests and checks)."""
    out = []
    pos = 0
    while pos < len(data):
        ptype, _, plen = _HDR.unpack_from(data, pos)
        out.append((ptype, data[pos + 6 : pos + 6 + plen]))
        pos += 6 + plen
    if pos != len(data):
        raise ValueError("trailing partial PDU")
    return out
