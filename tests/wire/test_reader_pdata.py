"""PDUReader.feed_pdata: the data-state fast path gives what feed + next_pdu give.

Compared PDV by PDV: feed_pdata hands over the PDVs of consecutive P-DATA-TF PDUs
together, which is all the DIMSE layer sees of them.
"""

from __future__ import annotations

import itertools
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import A_RELEASE_RQ_BYTES, PDV, Fragment, PDataTF, PDUReader, encode_pdu
from aiodimse.wire import reader as reader_module
from tests.examples import examples

Item = tuple[str, object]


def _slow(chunks: list[bytes], max_pdata: int) -> list[Item]:
    """The reference: feed() and next_pdu() only."""
    reader = PDUReader(max_pdata_length=max_pdata)
    out: list[Item] = []
    try:
        for chunk in chunks:
            reader.feed(chunk)
            while (pdu := reader.next_pdu()) is not None:
                out.extend(_items(pdu))
    except RemoteProtocolError as exc:
        out.append(("error", (exc.abort_source, exc.abort_reason)))
    return out


def _fast(chunks: list[bytes], max_pdata: int) -> list[Item]:
    reader = PDUReader(max_pdata_length=max_pdata)
    out: list[Item] = []
    try:
        for chunk in chunks:
            pdvs, held = reader.feed_pdata(chunk)
            out.extend(_plain(pdvs))
            if not held:  # nothing held: next_pdu has nothing to give
                assert reader.next_pdu() is None
            while (pdu := reader.next_pdu()) is not None:
                out.extend(_items(pdu))
    except RemoteProtocolError as exc:
        out.append(("error", (exc.abort_source, exc.abort_reason)))
    return out


def _plain(pdvs: tuple[Fragment, ...]) -> list[Item]:
    return [("pdv", (c, m, bytes(d))) for c, m, d in pdvs]


def _items(pdu: object) -> list[Item]:
    if isinstance(pdu, PDataTF):
        return _plain(pdu.pdvs)
    return [(type(pdu).__name__, None)]


pdvs = st.lists(
    st.tuples(st.integers(1, 255), st.integers(0, 3), st.binary(min_size=0, max_size=40)),
    min_size=1,
    max_size=3,
)
pieces = st.one_of(
    pdvs.map(lambda items: encode_pdu(PDataTF(pdvs=tuple(PDV(c, m, d) for c, m, d in items)))),
    st.just(A_RELEASE_RQ_BYTES),
    st.just(b"\x09\x00\x00\x00\x00\x04abcd"),  # unknown PDU type
    st.just(b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x09\x01\x03ab"),  # PDV overruns its PDU
    st.just(b"\x04\x00\x00\x00\x00\x03\x00\x00\x00"),  # P-DATA-TF too short for a PDV
)


@settings(max_examples=examples(300), deadline=None)
@given(
    parts=st.lists(pieces, min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 400), max_size=4),
    max_pdata=st.sampled_from([40, 1 << 16]),
    bulk=st.sampled_from([0, reader_module._BULK]),
)
def test_feed_pdata_matches_feed_and_next_pdu(
    parts: list[bytes], cuts: list[int], max_pdata: int, bulk: int
) -> None:
    """``bulk`` 0: every chunk is taken for a bulk one (a held PDU completed in
    place), as the large chunks of a C-STORE are; else the small ones are not."""
    stream = b"".join(parts)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    with mock.patch.object(reader_module, "_BULK", bulk):
        assert _fast(chunks, max_pdata) == _slow(chunks, max_pdata)


def test_a_whole_message_in_one_chunk_is_read_in_place() -> None:
    command = encode_pdu(PDataTF(pdvs=(PDV(1, 3, b"cmd!"),)))
    data = encode_pdu(PDataTF(pdvs=(PDV(1, 2, b"data" * 1000),)))
    chunk = command + data
    reader = PDUReader()
    (first, second), held = reader.feed_pdata(chunk)
    assert not held
    assert first == (1, 3, b"cmd!") and type(first[2]) is bytes  # small: copied out
    assert isinstance(second[2], memoryview) and second[2].obj is chunk  # large: no copy
    assert bytes(second[2]) == b"data" * 1000
    assert reader.buffered == 0 and reader.next_pdu() is None


@pytest.mark.parametrize("size", [2, 1012, 1013, 5000])
def test_one_pdu_chunks_are_copied_out_only_when_small(size: int) -> None:
    chunk = encode_pdu(PDataTF(pdvs=(PDV(3, 2, b"d" * size),)))
    (pdv,), held = PDUReader().feed_pdata(chunk)
    assert not held and pdv[:2] == (3, 2) and bytes(pdv[2]) == b"d" * size
    if len(chunk) <= 1024:
        assert type(pdv[2]) is bytes
    else:
        assert isinstance(pdv[2], memoryview) and pdv[2].obj is chunk and pdv[2].readonly


def test_a_pdu_cut_across_chunks_copies_only_its_own_bytes() -> None:
    """The usual stream of a large data set: 16 kB PDUs in chunks that end inside one.
    The held PDU is completed from the next chunk; the PDUs after it are read in
    place, not copied through the buffer."""
    pdus = [encode_pdu(PDataTF(pdvs=(PDV(1, 0, bytes([n]) * 4000),))) for n in range(4)]
    stream = b"".join(pdus)
    cut = len(pdus[0]) + 100  # the second PDU starts in the first chunk
    first, second = stream[:cut], stream[cut:]
    reader = PDUReader()
    pdvs, held = reader.feed_pdata(first)
    assert len(pdvs) == 1 and held and reader.buffered == 100
    assert reader.next_pdu() is None  # the partial PDU is held
    pdvs, held = reader.feed_pdata(second)
    assert not held and reader.buffered == 0
    assert [bytes(data) for _, _, data in pdvs] == [bytes([n]) * 4000 for n in (1, 2, 3)]
    assert pdvs[0][2].obj is not second  # the completed PDU: in its own storage
    assert all(isinstance(d, memoryview) and d.obj is second for _, _, d in pdvs[1:])


def test_what_follows_the_data_is_left_for_next_pdu() -> None:
    data = encode_pdu(PDataTF(pdvs=(PDV(1, 2, b"xy"),)))
    reader = PDUReader()
    pdvs, held = reader.feed_pdata(data + A_RELEASE_RQ_BYTES + data[:5])
    assert len(pdvs) == 1 and held
    assert type(reader.next_pdu()).__name__ == "AReleaseRQ"
    assert reader.next_pdu() is None
    assert reader.buffered == 5


def test_an_invalid_header_after_the_data_still_fails_the_stream() -> None:
    data = encode_pdu(PDataTF(pdvs=(PDV(1, 2, b"xy"),)))
    reader = PDUReader()
    pdvs, held = reader.feed_pdata(data + b"\x09\x00\x00\x00\x00\x04")
    assert len(pdvs) == 1 and held
    with pytest.raises(RemoteProtocolError):
        reader.next_pdu()
    with pytest.raises(RemoteProtocolError):
        reader.feed_pdata(data)  # a failed stream stays failed


@pytest.mark.parametrize(
    ("first_size", "second_size"), [(4, 4), (4, 2000), (2000, 4), (2000, 2000)]
)
def test_two_pdu_chunks_copy_out_only_their_small_pdvs(first_size: int, second_size: int) -> None:
    first = encode_pdu(PDataTF(pdvs=(PDV(1, 3, b"c" * first_size),)))
    second = encode_pdu(PDataTF(pdvs=(PDV(1, 2, b"d" * second_size),)))
    chunk = first + second
    pdvs, held = PDUReader().feed_pdata(chunk)
    assert not held and [(c, m, bytes(d)) for c, m, d in pdvs] == [
        (1, 3, b"c" * first_size), (1, 2, b"d" * second_size)
    ]
    for (_c, _m, data), pdu in zip(pdvs, (first, second), strict=True):
        if len(pdu) <= 1024:
            assert type(data) is bytes
        else:
            assert isinstance(data, memoryview) and data.obj is chunk and data.readonly


@settings(max_examples=examples(300), deadline=None)
@given(
    parts=st.lists(pieces, min_size=1, max_size=3),
    cut=st.integers(0, 400),
    pending=st.booleans(),
    max_pdata=st.sampled_from([40, 1 << 16]),
)
def test_pdata_at_once_is_feed_pdata_or_consumes_nothing(
    parts: list[bytes], cut: int, pending: bool, max_pdata: int
) -> None:
    """A chunk read at once gives what feed_pdata gives; else the reader is untouched."""
    stream = b"".join(parts)
    chunk = stream[: cut % (len(stream) + 1)] if cut % 3 == 0 else stream
    reader, reference = PDUReader(max_pdata_length=max_pdata), PDUReader(max_pdata_length=max_pdata)
    if pending:  # half a PDU held from before: never the usual chunk
        for r in (reader, reference):
            r.feed(A_RELEASE_RQ_BYTES[:3])
    try:
        expected: object = reference.feed_pdata(chunk)
    except RemoteProtocolError as exc:
        expected = exc.abort_reason
    at_once = reader.pdata_at_once(chunk)
    if at_once is not None:
        assert not pending and 1 <= len(at_once) <= 2
        assert (_plain(at_once), False) == (_plain(expected[0]), expected[1])  # type: ignore[index]
        assert reader.buffered == 0 and reader.next_pdu() is None
        return
    # nothing consumed: the same chunk then reads as on a reader that never saw it
    try:
        got: object = reader.feed_pdata(chunk)
    except RemoteProtocolError as exc:
        got = exc.abort_reason
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and _plain(got[0]) == _plain(expected[0])
        assert got[1] == expected[1]
    else:
        assert got == expected


def test_pdata_at_once_takes_one_or_two_pdus_only() -> None:
    one = encode_pdu(PDataTF(pdvs=(PDV(1, 3, b"cmd!"),)))
    two = encode_pdu(PDataTF(pdvs=(PDV(1, 2, b"data"),)))
    reader = PDUReader()
    assert _plain(reader.pdata_at_once(one) or ()) == [("pdv", (1, 3, b"cmd!"))]
    assert len(reader.pdata_at_once(one + two) or ()) == 2
    assert reader.pdata_at_once(one + two + one) is None  # three: the general scan
    assert reader.pdata_at_once(one[:-1]) is None  # partial
    assert reader.pdata_at_once(A_RELEASE_RQ_BYTES) is None  # not P-DATA
    assert reader.pdata_at_once(one + A_RELEASE_RQ_BYTES) is None
    assert reader.pdata_at_once(bytearray(one)) is None  # only bytes are read in place
    assert reader.buffered == 0 and reader.next_pdu() is None
