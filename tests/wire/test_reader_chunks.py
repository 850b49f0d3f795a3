"""PDUReader's no-copy path: a chunk fed while nothing is pending is read in place."""

from __future__ import annotations

import pytest

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import A_RELEASE_RQ_BYTES, PDV, AReleaseRQ, PDataTF, PDUReader, encode_pdu


def _pdata(fill: bytes, size: int, control: int = 2) -> PDataTF:
    return PDataTF(pdvs=(PDV(context_id=1, control=control, data=fill * size),))


def test_fed_buffers_may_be_reused_by_the_caller() -> None:
    first, second = _pdata(b"A", 10), _pdata(b"B", 10)
    data = bytearray(encode_pdu(first) + encode_pdu(second))
    reader = PDUReader()
    reader.feed(data)
    data[:] = b"\xff" * len(data)  # e.g. a reused receive buffer
    assert reader.next_pdu() == first
    assert reader.next_pdu() == second
    assert reader.next_pdu() is None


def test_buffered_counts_the_unread_rest_of_a_held_chunk() -> None:
    pdata = encode_pdu(_pdata(b"x", 10))
    reader = PDUReader()
    reader.feed(pdata + A_RELEASE_RQ_BYTES + pdata[:9])
    assert reader.buffered == len(pdata) + 10 + 9
    assert isinstance(reader.next_pdu(), PDataTF)
    assert reader.buffered == 10 + 9
    assert reader.next_pdu() == AReleaseRQ()
    assert reader.next_pdu() is None  # the partial tail moves to the buffer
    assert reader.buffered == 9
    reader.feed(pdata[9:] + pdata)
    assert reader.next_pdu() == reader.next_pdu() == _pdata(b"x", 10)
    assert reader.buffered == 0


def test_feeding_again_before_draining_keeps_the_order() -> None:
    one, two, three = (_pdata(bytes([65 + i]), 4) for i in range(3))
    reader = PDUReader()
    reader.feed(encode_pdu(one) + encode_pdu(two))
    reader.feed(encode_pdu(three))
    assert [reader.next_pdu() for _ in range(4)] == [one, two, three, None]


def test_held_chunk_over_max_buffered_is_a_flood() -> None:
    reader = PDUReader(max_buffered=100)
    with pytest.raises(RemoteProtocolError) as info:
        reader.feed(A_RELEASE_RQ_BYTES * 11)
    assert info.value.abort_reason == 0
    assert reader.buffered == 0


def test_multi_pdv_pdata_read_in_place() -> None:
    pdata = PDataTF(
        pdvs=(
            PDV(context_id=3, control=3, data=b"c" * 8),
            PDV(context_id=3, control=0, data=b"d" * 6),
            PDV(context_id=3, control=2, data=b"e" * 2),
        )
    )
    reader = PDUReader()
    reader.feed(A_RELEASE_RQ_BYTES + encode_pdu(pdata))
    assert reader.next_pdu() == AReleaseRQ()
    assert reader.next_pdu() == pdata
