"""Shared helpers for the DIMSE tests: message strategies and a tiny PDU splitter."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import strategies as st

from aiodimse.dimse import MESSAGE_CLASSES, DIMSEMessage, MessageAssembler, ReceivedMessage

__all__ = [
    "uids",
    "message_strategy",
    "all_messages",
    "split_pdus",
    "reassemble",
    "example_message",
]

# UIDs as PS3.5 9.1 has them (no leading zero in a component): requests with any
# other instance UID are refused by the decoder.
uids = st.from_regex(r"[1-9][0-9]{0,5}(\.(0|[1-9][0-9]{0,7})){1,6}", fullmatch=True).filter(
    lambda u: len(u) <= 64
)
_lo = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\"),
    min_size=1,
    max_size=64,
).filter(lambda s: s == s.strip(" "))
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "US": st.integers(0, 0xFFFF),
    "UI": uids,
    "LO": _lo,
    "AE": st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="\\"),
        min_size=1,
        max_size=16,
    ),
    "AT": st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=6).map(tuple),
}


def message_strategy(cls: type[DIMSEMessage]) -> st.SearchStrategy[DIMSEMessage]:
    """Every field drawn; optional ones may be None."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, vr, mandatory in cls._field_specs:
        value = _VALUES[vr]
        fields[name] = value if mandatory else st.none() | value
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


all_messages = st.sampled_from(sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)).flatmap(
    message_strategy
)


def example_message(cls: type[DIMSEMessage], *, full: bool = True) -> DIMSEMessage:
    """A deterministic message with every (or only the mandatory) field set."""
    samples = {
        "MessageID": 7,
        "MessageIDBeingRespondedTo": 7,
        "Status": 0x0107,
        "ErrorID": 0x1234,
        "EventTypeID": 2,
        "ActionTypeID": 1,
        "AffectedSOPClassUID": "1.2.840.10008.1.20.1",
        "RequestedSOPClassUID": "1.2.840.10008.1.20.1",
        "AffectedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
        "RequestedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
        "ErrorComment": "odd length",
        "OffendingElement": (0x00100010,),
        "AttributeIdentifierList": (0x00100010, 0x00100020, 0x7FE00010),
        "Priority": 2,
        "MoveDestination": "STORE SCP",
        "MoveOriginatorApplicationEntityTitle": "MOVER",
        "MoveOriginatorMessageID": 3,
        "NumberOfRemainingSuboperations": 4,
        "NumberOfCompletedSuboperations": 3,
        "NumberOfFailedSuboperations": 2,
        "NumberOfWarningSuboperations": 1,
    }
    kwargs = {n: samples[n] for n, _vr, mandatory in cls._field_specs if full or mandatory}
    return cls(**kwargs)


_PDU_HEADER = struct.Struct(">BBI")
_PDV_HEADER = struct.Struct(">IBB")


def split_pdus(stream: bytes) -> list[tuple[int, list[tuple[int, int, bytes]]]]:
    """Parse back-to-back P-DATA-TF PDUs: [(pdu_length, [(context, control, frag)])]."""
    out = []
    pos = 0
    while pos < len(stream):
        pdu_type, _reserved, length = _PDU_HEADER.unpack_from(stream, pos)
        assert pdu_type == 0x04
        body = stream[pos + 6 : pos + 6 + length]
        assert len(body) == length
        pos += 6 + length
        pdvs = []
        q = 0
        while q < length:
            item_length, context_id, control = _PDV_HEADER.unpack_from(body, q)
            assert item_length >= 2
            pdvs.append((context_id, control, body[q + 6 : q + 4 + item_length]))
            q += 4 + item_length
        assert q == length
        out.append((length, pdvs))
    return out


def reassemble(stream: bytes, assembler: MessageAssembler | None = None) -> list[ReceivedMessage]:
    """Feed every PDV of ``stream`` to an assembler, return the completed messages."""
    assembler = assembler or MessageAssembler()
    done = []
    for _length, pdvs in split_pdus(stream):
        for context_id, control, fragment in pdvs:
            received = assembler.feed_pdv(context_id, control, memoryview(fragment))
            if received is not None:
                done.append(received)
    return done
