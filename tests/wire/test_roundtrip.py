"""encode -> decode gives back every PDU; the fixed-layout PDUs match the standard byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from aiodimse.wire import (
    A_RELEASE_RP_BYTES,
    A_RELEASE_RQ_BYTES,
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationContextRQ,
    UserInformation,
    decode_pdu,
    encode_pdata,
    encode_pdu,
    encode_single_pdv,
)
from tests.examples import examples
from tests.wire import strategies as s

_SETTINGS = settings(max_examples=examples(150), deadline=None)


def _round_trip(pdu: PDU) -> None:
    encoded = encode_pdu(pdu)
    decoded = decode_pdu(encoded)
    assert decoded == pdu
    assert type(decoded) is type(pdu)
    # Re-encoding what was decoded is byte-identical (memoryview data included).
    assert encode_pdu(decoded) == encoded
    # A memoryview input decodes the same as bytes.
    assert decode_pdu(memoryview(encoded)) == pdu


@_SETTINGS
@given(s.a_associate_rqs())
def test_round_trip_associate_rq(pdu: AAssociateRQ) -> None:
    _round_trip(pdu)


@_SETTINGS
@given(s.a_associate_acs())
def test_round_trip_associate_ac(pdu: AAssociateAC) -> None:
    _round_trip(pdu)


@_SETTINGS
@given(s.a_associate_rjs())
def test_round_trip_associate_rj(pdu: AAssociateRJ) -> None:
    _round_trip(pdu)


@_SETTINGS
@given(s.p_data_tfs())
def test_round_trip_p_data_tf(pdu: PDataTF) -> None:
    _round_trip(pdu)
    assert encode_pdata(pdu.pdvs) == encode_pdu(pdu)


@_SETTINGS
@given(s.a_aborts())
def test_round_trip_abort(pdu: AAbort) -> None:
    _round_trip(pdu)


def test_round_trip_release() -> None:
    _round_trip(AReleaseRQ())
    _round_trip(AReleaseRP())


@settings(max_examples=examples(50), deadline=None)
@given(s.pdus())
def test_round_trip_any(pdu: PDU) -> None:
    _round_trip(pdu)


@settings(max_examples=examples(100), deadline=None)
@given(s.pdvs(max_size=300))
def test_single_pdv_helper_matches_general_encoder(pdv: PDV) -> None:
    single = encode_single_pdv(pdv.context_id, pdv.control, pdv.data)
    assert single == encode_pdu(PDataTF(pdvs=(pdv,)))
    assert encode_single_pdv(pdv.context_id, pdv.control, memoryview(pdv.data)) == single


def test_fixed_pdu_bytes() -> None:
    # PS3.8 9.3.4-9.3.8: a 6-byte header, then a 4-byte body.
    assert bytes.fromhex("05 00 00000004 00000000") == A_RELEASE_RQ_BYTES
    assert bytes.fromhex("06 00 00000004 00000000") == A_RELEASE_RP_BYTES
    assert encode_pdu(AReleaseRQ()) == A_RELEASE_RQ_BYTES
    assert encode_pdu(AReleaseRP()) == A_RELEASE_RP_BYTES
    assert encode_pdu(AAssociateRJ(result=1, source=2, reason=3)) == bytes.fromhex(
        "03 00 00000004 00 01 02 03"
    )
    assert encode_pdu(AAbort(source=2, reason=6)) == bytes.fromhex("07 00 00000004 00 00 02 06")


def test_p_data_tf_layout_and_zero_copy() -> None:
    pdu = PDataTF(
        pdvs=(
            PDV(context_id=1, control=0x03, data=b"\x01\x02"),
            PDV(context_id=3, control=0x00, data=b""),
        )
    )
    encoded = encode_pdu(pdu)
    assert encoded == bytes.fromhex("04 00 0000000e 00000004 01 03 0102 00000002 03 00")
    decoded = decode_pdu(encoded)
    assert isinstance(decoded, PDataTF)
    first = decoded.pdvs[0]
    assert isinstance(first.data, memoryview)
    assert first.data.obj is encoded  # a view of the input, not a copy
    assert first.is_command and first.is_last
    with pytest.raises(AttributeError):  # immutable
        first.control = 0  # type: ignore[misc]
    assert not decoded.pdvs[1].is_command and not decoded.pdvs[1].is_last


def test_ae_titles_are_padded_to_16_bytes() -> None:
    rq = AAssociateRQ(
        called_ae_title="ANY-SCP",
        calling_ae_title="X",
        presentation_contexts=(
            PresentationContextRQ(
                context_id=1,
                abstract_syntax="1.2.840.10008.1.1",
                transfer_syntaxes=("1.2.840.10008.1.2",),
            ),
        ),
        user_information=UserInformation(),
    )
    encoded = encode_pdu(rq)
    assert encoded[10:26] == b"ANY-SCP         "
    assert encoded[26:42] == b"X               "
    assert encoded[42:74] == bytes(32)
