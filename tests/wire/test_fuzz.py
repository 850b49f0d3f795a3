"""Hostile bytes: nothing but RemoteProtocolError may escape the decoder or the reader."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire import PDU, PDUReader, decode_pdu, encode_pdu
from tests.examples import examples
from tests.wire import strategies as s

_SETTINGS = settings(
    max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_REASONS = {1, 5, 6}


def _decode_or_refuse(data: bytes) -> None:
    try:
        decoded = decode_pdu(data)
    except RemoteProtocolError as exc:
        assert exc.abort_source == 2
        assert exc.abort_reason in _REASONS
    else:
        # Whatever decoded must encode again (the values it holds are all representable).
        encode_pdu(decoded)


def _read_or_refuse(data: bytes, chunk: int) -> None:
    reader = PDUReader(max_associate_length=1 << 16, max_pdata_length=1 << 16)
    try:
        for start in range(0, len(data), chunk):
            reader.feed(data[start : start + chunk])
            while reader.next_pdu() is not None:
                pass
    except RemoteProtocolError as exc:
        assert exc.abort_source == 2
        assert exc.abort_reason in _REASONS
        try:
            reader.next_pdu()
        except RemoteProtocolError:
            pass
        else:  # pragma: no cover
            raise AssertionError("a failed reader must stay failed") from None


@_SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _decode_or_refuse(data)
    _read_or_refuse(data, 7)


@_SETTINGS
@given(st.integers(1, 7), st.binary(max_size=300))
def test_random_bodies_behind_a_consistent_header(pdu_type: int, body: bytes) -> None:
    data = struct.pack(">BBI", pdu_type, 0, len(body)) + body
    _decode_or_refuse(data)
    _read_or_refuse(data, 64)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    pdu: PDU = draw(s.pdus())
    data = bytearray(encode_pdu(pdu))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[pos : pos + draw(st.integers(1, 8))]
    if len(data) >= 6 and draw(st.booleans()):
        # Repair the PDU-length so that the damage is found inside the body.
        struct.pack_into(">I", data, 2, len(data) - 6)
    return bytes(data)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated(), st.integers(1, 40))
def test_mutated_valid_pdus(data: bytes, chunk: int) -> None:
    _decode_or_refuse(data)
    _read_or_refuse(data, chunk)
