"""PDUReader: chunking never changes the result; limits bite at the 6-byte header."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import (
    A_RELEASE_RQ_BYTES,
    PDU,
    PDV,
    AbortReason,
    AReleaseRQ,
    PDataTF,
    PDUReader,
    encode_pdu,
)
from tests.examples import examples
from tests.wire import strategies as s
from tests.wire.builders import pdu


def _drain(reader: PDUReader) -> list[PDU]:
    out: list[PDU] = []
    while (next_pdu := reader.next_pdu()) is not None:
        out.append(next_pdu)
    return out


def _feed_in_chunks(data: bytes, cuts: list[int]) -> list[PDU]:
    reader = PDUReader()
    out: list[PDU] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        reader.feed(data[start:cut])
        out.extend(_drain(reader))
        start = cut
    assert reader.buffered == 0
    return out


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(s.pdus(), min_size=1, max_size=4))
def test_byte_at_a_time_equals_whole(pdus: list[PDU]) -> None:
    data = b"".join(encode_pdu(p) for p in pdus)
    whole = PDUReader()
    whole.feed(data)
    assert _drain(whole) == pdus
    one_by_one = PDUReader()
    got: list[PDU] = []
    for index in range(len(data)):
        one_by_one.feed(data[index : index + 1])
        got.extend(_drain(one_by_one))
    assert got == pdus


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(s.pdus(), min_size=1, max_size=5), st.data())
def test_any_chunking_equals_whole(pdus: list[PDU], data: st.DataObject) -> None:
    encoded = b"".join(encode_pdu(p) for p in pdus)
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=10))
    assert _feed_in_chunks(encoded, cuts) == pdus


def test_several_pdus_in_one_feed_and_feed_types() -> None:
    pdata = PDataTF(pdvs=(PDV(context_id=1, control=3, data=b"x" * 100),))
    data = encode_pdu(pdata) + A_RELEASE_RQ_BYTES + encode_pdu(pdata)
    for chunk in (data, bytearray(data), memoryview(data)):
        reader = PDUReader()
        reader.feed(chunk)
        assert _drain(reader) == [pdata, AReleaseRQ(), pdata]


def test_earlier_fragments_survive_later_reads() -> None:
    # PDVs are views into the reader's storage: later feeds must never overwrite them.
    first = PDataTF(pdvs=(PDV(context_id=1, control=0, data=b"A" * 1000),))
    second = PDataTF(pdvs=(PDV(context_id=1, control=2, data=b"B" * 10),))
    reader = PDUReader()
    reader.feed(encode_pdu(first) + encode_pdu(second)[:8])  # small tail: buffer handed off
    got = reader.next_pdu()
    reader.feed(encode_pdu(second)[8:] + encode_pdu(first))  # large tail: PDU copied out
    assert reader.next_pdu() == second
    assert reader.next_pdu() == first
    assert got == first
    assert isinstance(got, PDataTF) and bytes(got.pdvs[0].data) == b"A" * 1000
    assert isinstance(got.pdvs[0].data, memoryview) and got.pdvs[0].data.readonly


def _refused_after_header(header: bytes, reason: int, **limits: int) -> None:
    reader = PDUReader(**limits)
    for byte in header[:5]:
        reader.feed(bytes([byte]))  # nothing to judge before the header is whole
        assert reader.next_pdu() is None
    with pytest.raises(RemoteProtocolError) as info:
        reader.feed(header[5:6])
    assert info.value.abort_source == 2
    assert info.value.abort_reason == reason
    # The reader is dead from now on.
    with pytest.raises(RemoteProtocolError):
        reader.next_pdu()
    with pytest.raises(RemoteProtocolError):
        reader.feed(b"\x00" * 10)
    assert reader.buffered == 0


def test_over_limit_lengths_refused_at_the_header() -> None:
    four_gib = 0xFFFFFFFF
    invalid = AbortReason.INVALID_PDU_PARAMETER_VALUE
    _refused_after_header(struct.pack(">BBI", 0x04, 0, four_gib), invalid)
    _refused_after_header(struct.pack(">BBI", 0x01, 0, four_gib), invalid)
    _refused_after_header(struct.pack(">BBI", 0x02, 0, (1 << 20) + 1), invalid)
    _refused_after_header(struct.pack(">BBI", 0x04, 0, 1001), invalid, max_pdata_length=1000)
    for fixed in (0x03, 0x05, 0x06, 0x07):
        _refused_after_header(struct.pack(">BBI", fixed, 0, 5), invalid)
        _refused_after_header(struct.pack(">BBI", fixed, 0, 0), invalid)


def test_unknown_pdu_type_refused_at_the_header() -> None:
    _refused_after_header(struct.pack(">BBI", 0x08, 0, 4), AbortReason.UNRECOGNIZED_PDU)
    _refused_after_header(struct.pack(">BBI", 0xFF, 0, 0), AbortReason.UNRECOGNIZED_PDU)


def test_refusal_in_one_big_feed() -> None:
    reader = PDUReader()
    with pytest.raises(RemoteProtocolError):
        reader.feed(struct.pack(">BBI", 0x04, 0, 0xFFFFFFFF) + b"\x00" * 4096)
    assert reader.buffered == 0


def test_limits_are_exact_and_adjustable() -> None:
    body = struct.pack(">IBB", 994, 1, 2) + b"z" * 992  # PDU-length exactly 998
    reader = PDUReader(max_pdata_length=998)
    reader.feed(pdu(0x04, body))
    assert isinstance(reader.next_pdu(), PDataTF)
    reader.max_pdata_length = 997  # e.g. after negotiation
    assert reader.max_pdata_length == 997
    with pytest.raises(RemoteProtocolError):
        reader.feed(pdu(0x04, body)[:6])
    with pytest.raises(ValueError):
        PDUReader().max_pdata_length = 0
    with pytest.raises(ValueError):
        PDUReader(max_associate_length=0)


def test_later_header_checked_when_reached() -> None:
    reader = PDUReader()
    reader.feed(A_RELEASE_RQ_BYTES + struct.pack(">BBI", 0x09, 0, 4))
    assert reader.next_pdu() == AReleaseRQ()
    with pytest.raises(RemoteProtocolError) as info:
        reader.next_pdu()
    assert info.value.abort_reason == AbortReason.UNRECOGNIZED_PDU


def test_body_error_kills_the_reader() -> None:
    reader = PDUReader()
    reader.feed(pdu(0x04, struct.pack(">IBB", 1, 1, 2) + b"\x00\x00"))
    with pytest.raises(RemoteProtocolError) as info:
        reader.next_pdu()
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    with pytest.raises(RemoteProtocolError) as again:
        reader.next_pdu()
    assert again.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_max_buffered_bounds_an_undrained_reader() -> None:
    reader = PDUReader(max_buffered=100)
    reader.feed(A_RELEASE_RQ_BYTES * 10)  # exactly 100 bytes: fine
    assert reader.buffered == 100
    with pytest.raises(RemoteProtocolError):
        reader.feed(b"\x05")
    default = PDUReader(max_associate_length=100, max_pdata_length=200)
    assert default.max_buffered == 6 + 200 + (1 << 20)
