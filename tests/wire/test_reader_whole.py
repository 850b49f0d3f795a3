"""PDUReader.whole_pdu: one whole PDU read in one step, judged as feed + next_pdu judge it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import A_RELEASE_RQ_BYTES, PDU, AbortReason, PDUReader, encode_pdu
from tests.wire import strategies as s
from tests.wire.builders import pdu


@settings(max_examples=100, deadline=None)
@given(s.pdus())
def test_a_whole_pdu_is_what_feed_and_next_pdu_give(one: PDU) -> None:
    data = encode_pdu(one)
    reader = PDUReader()
    assert reader.whole_pdu(data) == one
    assert reader.buffered == 0
    assert reader.next_pdu() is None


def test_anything_but_one_whole_pdu_with_nothing_pending_is_left_to_feed() -> None:
    reader = PDUReader()
    assert reader.whole_pdu(A_RELEASE_RQ_BYTES * 2) is None  # two PDUs
    assert reader.whole_pdu(A_RELEASE_RQ_BYTES[:7]) is None  # a part
    assert reader.whole_pdu(A_RELEASE_RQ_BYTES[:5]) is None  # not even a header
    assert reader.whole_pdu(bytearray(A_RELEASE_RQ_BYTES)) is None  # not bytes
    assert reader.buffered == 0  # nothing was taken
    reader.feed(A_RELEASE_RQ_BYTES[:3])
    assert reader.whole_pdu(A_RELEASE_RQ_BYTES) is None  # bytes are pending
    assert reader.buffered == 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (struct.pack(">BBI", 0x08, 0, 4) + b"\x00" * 4, AbortReason.UNRECOGNIZED_PDU),
        (struct.pack(">BBI", 0x05, 0, 5) + b"\x00" * 5, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        (pdu(0x01, b"\x00" * 10), AbortReason.INVALID_PDU_PARAMETER_VALUE),  # a short RQ
    ],
)
def test_an_invalid_pdu_raises_and_kills_the_reader(data: bytes, reason: int) -> None:
    reader = PDUReader()
    with pytest.raises(RemoteProtocolError) as info:
        reader.whole_pdu(data)
    assert info.value.abort_reason == reason
    with pytest.raises(RemoteProtocolError):
        reader.feed(A_RELEASE_RQ_BYTES)


def test_the_associate_length_limit_holds() -> None:
    reader = PDUReader(max_associate_length=100)
    with pytest.raises(RemoteProtocolError) as info:
        reader.whole_pdu(pdu(0x01, b"\x00" * 101))
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
