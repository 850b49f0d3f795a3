"""PDUReader.whole_pdu: one whole PDU read in one step, judged as feed + next_pdu judge it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import A_RELEASE_RQ_BYTES, PDU, AbortReason, PDUReader, encode_pdu
from tests.examples import examples
from tests.wire import strategies as s
from tests.wire.builders import pdu


@settings(max_examples=examples(100), deadline=None)
@given(s.pdus())
def test_a_whole_pdu_is_read_in_one_step(one: PDU) -> None:
    data = encode_pdu(one)
    reader = PDUReader()
    assert reader.whole_pdu(data) == one
    assert reader.buffered == 0
    assert reader.next_pdu() is None


def _judged(reader: PDUReader, data: bytes, *, whole: bool) -> tuple[object, ...]:
    """What the reader makes of ``data``: PDUs, or the abort an error carries."""
    try:
        if whole:
            pdu = reader.whole_pdu(data)
            if pdu is not None:
                return ("pdus", pdu)
        reader.feed(data)
        out = []
        while (pdu := reader.next_pdu()) is not None:
            out.append(pdu)
        return ("pdus", *out)
    except RemoteProtocolError as exc:
        return ("abort", exc.abort_source, exc.abort_reason)


@settings(max_examples=examples(300), deadline=None)
@given(
    base=s.pdus(),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
    cut=st.integers(-3, 3),
    limits=st.tuples(st.integers(74, 400), st.integers(6, 400), st.none() | st.integers(1, 500)),
)
def test_whole_pdu_then_feed_judges_any_bytes_as_feed_and_next_pdu_do(
    base: PDU, flips: list[tuple[int, int]], cut: int, limits: tuple[int, int, int | None]
) -> None:
    """Mutated, cut and padded bytes under random limits: same PDUs, or the same abort."""
    data = bytearray(encode_pdu(base))
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    raw = bytes(data[:cut]) if cut < 0 else bytes(data) + b"\x00" * cut
    associate, pdata, buffered = limits

    def reader() -> PDUReader:
        return PDUReader(
            max_associate_length=associate, max_pdata_length=pdata, max_buffered=buffered
        )

    assert _judged(reader(), raw, whole=True) == _judged(reader(), raw, whole=False)


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


def test_the_buffered_limit_holds() -> None:
    reader = PDUReader(max_buffered=8)  # less than the 10 bytes of an A-RELEASE-RQ
    assert reader.whole_pdu(A_RELEASE_RQ_BYTES) is None  # left to feed, which refuses
    with pytest.raises(RemoteProtocolError):
        reader.feed(A_RELEASE_RQ_BYTES)


def test_the_associate_length_limit_holds() -> None:
    reader = PDUReader(max_associate_length=100)
    with pytest.raises(RemoteProtocolError) as info:
        reader.whole_pdu(pdu(0x01, b"\x00" * 101))
    assert info.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
