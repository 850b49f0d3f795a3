"""A P-DATA-TF packed with empty PDVs must not become one Python object per 6 bytes."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import PDataTF, PDUReader

EMPTY_PDV = struct.pack(">IBB", 2, 1, 0x00)  # item-length 2: a context ID, a header, no data


def _pdata(body: bytes) -> bytes:
    return struct.pack(">BxI", 0x04, len(body)) + body


def test_a_pdu_of_a_hundred_thousand_empty_pdvs_is_refused() -> None:
    pdu = _pdata(EMPTY_PDV * 100_000)
    reader = PDUReader(max_pdata_length=1 << 24)
    tracemalloc.start()
    try:
        with pytest.raises(RemoteProtocolError) as info:
            reader.feed_pdata(pdu)
            reader.next_pdu()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.value.abort_source, info.value.abort_reason) == (2, 0)
    assert peak < 2 * len(pdu)


def test_a_few_small_pdvs_in_one_pdu_are_fine() -> None:
    body = EMPTY_PDV * 15 + struct.pack(">IBB", 4, 1, 0x02) + b"ab"
    reader = PDUReader()
    reader.feed(_pdata(body))
    pdu = reader.next_pdu()
    assert isinstance(pdu, PDataTF) and len(pdu.pdvs) == 16


def test_many_pdvs_carrying_data_are_fine() -> None:
    pdv = struct.pack(">IBB", 258, 1, 0x00) + bytes(256)
    reader = PDUReader()
    reader.feed(_pdata(pdv * 60))
    pdu = reader.next_pdu()
    assert isinstance(pdu, PDataTF) and len(pdu.pdvs) == 60
