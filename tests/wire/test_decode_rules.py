"""What the decoder accepts (be liberal) and what it refuses, with which A-ABORT reason."""

from __future__ import annotations

import struct

import pytest

from aiodimse.errors import LocalProtocolError, RemoteProtocolError
from aiodimse.wire import (
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AbortReason,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    SOPClassCommonExtendedNegotiation,
    UnknownItem,
    UserIdentityRQ,
    UserInformation,
    decode_pdu,
    encode_pdu,
)
from tests.wire.builders import (
    APP_CONTEXT,
    MINIMAL_PC,
    MINIMAL_UI,
    associate,
    item,
    pc_ac,
    pc_rq,
    pdu,
    user_info,
)

INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE
UNEXPECTED = AbortReason.UNEXPECTED_PDU_PARAMETER


def _refused(data: bytes, reason: int) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        decode_pdu(data)
    assert info.value.abort_source == 2
    assert info.value.abort_reason == reason
    return info.value


def _rq(data: bytes) -> AAssociateRQ:
    decoded = decode_pdu(data)
    assert isinstance(decoded, AAssociateRQ)
    return decoded


def _ui(*sub_items: bytes) -> UserInformation:
    return _rq(associate(APP_CONTEXT + MINIMAL_PC + user_info(*sub_items))).user_information


# --- the PDU header and fixed-length PDUs ----------------------------------------
@pytest.mark.parametrize("pdu_type", [0x00, 0x08, 0x10, 0xFF])
def test_unknown_pdu_type_is_unrecognized_pdu(pdu_type: int) -> None:
    _refused(pdu(pdu_type, b"\x00" * 4), AbortReason.UNRECOGNIZED_PDU)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x05\x00\x00\x00",  # shorter than a header
        pdu(0x05, b"\x00" * 4, length=5),  # declares more than follows
        pdu(0x05, b"\x00" * 4, length=3),  # declares less than follows
        pdu(0x05, b"\x00" * 5),  # fixed-length PDUs have length 4
        pdu(0x06, b"\x00" * 3),
        pdu(0x03, b""),
        pdu(0x07, b"\x00" * 8),
        pdu(0x01, b"\x00" * 67),  # shorter than the A-ASSOCIATE fixed part
    ],
)
def test_inconsistent_lengths_are_invalid(data: bytes) -> None:
    _refused(data, INVALID)


def test_reserved_bytes_of_fixed_pdus_are_not_tested() -> None:
    assert decode_pdu(pdu(0x05, b"\xff" * 4, reserved=0xFF)) == AReleaseRQ()
    assert decode_pdu(pdu(0x06, b"\x12\x34\x56\x78", reserved=1)) == AReleaseRP()
    assert decode_pdu(pdu(0x03, b"\xff\x01\x03\x02")) == AAssociateRJ(result=1, source=3, reason=2)
    assert decode_pdu(pdu(0x07, b"\xff\xff\x02\x01")) == AAbort(source=2, reason=1)


# --- P-DATA-TF -------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"",  # no PDV at all
        struct.pack(">IBB", 1, 1, 3)[:5],  # PDV item-length 1 < 2
        struct.pack(">IBB", 0, 1, 3)[:4],  # truncated PDV header
        struct.pack(">IBB", 0, 1, 3),  # item-length 0
        struct.pack(">IBB", 1, 1, 3),  # item-length 1
        struct.pack(">IBB", 5, 1, 3) + b"ab",  # overruns the PDU
        struct.pack(">IBB", 4, 1, 3) + b"ab" + b"\x00",  # trailing partial PDV
        struct.pack(">IBB", 0xFFFFFFFF, 1, 3),
    ],
)
def test_bad_pdv_lengths_are_invalid(body: bytes) -> None:
    _refused(pdu(0x04, body), INVALID)


def test_empty_pdv_fragment_is_accepted() -> None:
    decoded = decode_pdu(pdu(0x04, struct.pack(">IBB", 2, 7, 2)))
    assert decoded == PDataTF(pdvs=(PDV(context_id=7, control=2, data=b""),))


# --- A-ASSOCIATE: missing, repeated and malformed items --------------------------
@pytest.mark.parametrize(
    ("items", "reason"),
    [
        (MINIMAL_PC + MINIMAL_UI, INVALID),  # no application context
        (APP_CONTEXT + MINIMAL_UI, INVALID),  # no presentation context
        (APP_CONTEXT + MINIMAL_PC, INVALID),  # no user information
        (APP_CONTEXT + APP_CONTEXT + MINIMAL_PC + MINIMAL_UI, UNEXPECTED),
        (APP_CONTEXT + MINIMAL_PC + MINIMAL_UI + MINIMAL_UI, UNEXPECTED),
        (APP_CONTEXT + pc_rq(1, item(0x40, b"1.2")) + MINIMAL_UI, INVALID),  # no abstract
        (APP_CONTEXT + pc_rq(1, item(0x30, b"1.2")) + MINIMAL_UI, INVALID),  # no transfer
        (
            APP_CONTEXT + pc_rq(1, item(0x30, b"1"), item(0x30, b"2"), item(0x40, b"3")),
            UNEXPECTED,
        ),
        (APP_CONTEXT + pc_rq(2, item(0x30, b"1"), item(0x40, b"2")) + MINIMAL_UI, INVALID),
        (APP_CONTEXT + item(0x20, b"\x01\x00") + MINIMAL_UI, INVALID),  # short PC item
        (APP_CONTEXT + MINIMAL_PC + MINIMAL_UI[:-1], INVALID),  # item overruns the PDU
        (APP_CONTEXT + MINIMAL_PC + MINIMAL_UI + b"\x99\x00", INVALID),  # truncated item header
    ],
)
def test_associate_rq_item_structure(items: bytes, reason: int) -> None:
    _refused(associate(items), reason)


def test_associate_ac_item_structure() -> None:
    ac = APP_CONTEXT + pc_ac(1, 0, item(0x40, b"1.2")) + MINIMAL_UI
    assert isinstance(decode_pdu(associate(ac, pdu_type=0x02)), AAssociateAC)
    _refused(associate(APP_CONTEXT + MINIMAL_UI, pdu_type=0x02), INVALID)
    two_ts = APP_CONTEXT + pc_ac(1, 0, item(0x40, b"1"), item(0x40, b"2")) + MINIMAL_UI
    _refused(associate(two_ts, pdu_type=0x02), UNEXPECTED)
    _refused(associate(APP_CONTEXT + item(0x21, b"\x01") + MINIMAL_UI, pdu_type=0x02), INVALID)


def test_accepted_context_without_transfer_syntax_decodes_to_empty() -> None:
    data = associate(APP_CONTEXT + pc_ac(3, 4) + MINIMAL_UI, pdu_type=0x02)
    decoded = decode_pdu(data)
    assert isinstance(decoded, AAssociateAC)
    assert decoded.presentation_contexts == (
        PresentationContextAC(context_id=3, result=4, transfer_syntax=""),
    )


@pytest.mark.parametrize(
    ("sub_items", "reason"),
    [
        ((item(0x51, b"\x00\x00\x40"),), INVALID),  # maximum length of 3 bytes
        ((item(0x51, b"\x00" * 4), item(0x51, b"\x00" * 4)), UNEXPECTED),
        ((item(0x52, b"1"), item(0x52, b"2")), UNEXPECTED),
        ((item(0x53, b"\x00\x01\x00"),), INVALID),
        ((item(0x54, b"\x00\x05" + b"1.2" + b"\x01\x01"),), INVALID),  # UID length too long
        ((item(0x54, b"\x00\x03" + b"1.2" + b"\x01"),), INVALID),  # a role byte missing
        ((item(0x54, b"\x00\x03" + b"1.2" + b"\x01\x01\x00"),), INVALID),  # one too many
        ((item(0x56, b"\x00"),), INVALID),
        ((item(0x56, b"\x00\x09" + b"1.2"),), INVALID),
        ((item(0x57, b"\x00\x01" + b"1" + b"\x00\x01" + b"2"),), INVALID),  # no related length
        (
            (item(0x57, b"\x00\x01" + b"1" + b"\x00\x01" + b"2" + b"\x00\x03\x00\x05" + b"3"),),
            INVALID,
        ),
        ((item(0x57, b"\x00\x01" + b"1" + b"\x00\x01" + b"2" + b"\x00\x00" + b"x"),), INVALID),
        ((item(0x58, b"\x01"),), INVALID),
        ((item(0x58, b"\x01\x00\x00\x09" + b"abc"),), INVALID),
        ((item(0x58, b"\x02\x00\x00\x01" + b"a" + b"\x00\x05" + b"pw"),), INVALID),
        ((item(0x58, b"\x02\x00\x00\x01" + b"a" + b"\x00\x02" + b"pw" + b"!"),), INVALID),
        ((item(0x59, b"\x00"),), INVALID),
        ((item(0x59, b"\x00\x01" + b"ab"),), INVALID),
        ((item(0x59, b"\x00\x00"), item(0x59, b"\x00\x00")), UNEXPECTED),
    ],
)
def test_user_information_sub_item_errors(sub_items: tuple[bytes, ...], reason: int) -> None:
    _refused(associate(APP_CONTEXT + MINIMAL_PC + user_info(*sub_items)), reason)


# --- be liberal ---------------------------------------------------------------------
def test_unknown_items_are_kept_and_ignored() -> None:
    data = associate(
        item(0x77, b"future")
        + APP_CONTEXT
        + pc_rq(1, item(0x30, b"1.2"), item(0x99, b"skipped"), item(0x40, b"1.2.3"))
        + item(0x21, b"\x01\x00\x00\x00")  # a known item at the wrong place
        + user_info(
            item(0x51, b"\x00\x00\x10\x00"),
            item(0x5A, b"new sub-item"),
            item(0x52, b"1.2.3"),
            item(0x20, b"odd"),
        )
    )
    rq = _rq(data)
    assert rq.unknown_items == (
        UnknownItem(item_type=0x77, data=b"future"),
        UnknownItem(item_type=0x21, data=b"\x01\x00\x00\x00"),
    )
    assert rq.presentation_contexts == (
        PresentationContextRQ(context_id=1, abstract_syntax="1.2", transfer_syntaxes=("1.2.3",)),
    )
    assert rq.user_information.unknown == (
        UnknownItem(item_type=0x5A, data=b"new sub-item"),
        UnknownItem(item_type=0x20, data=b"odd"),
    )
    assert rq.user_information.maximum_length == 4096
    # Kept items are sent on again unchanged.
    assert decode_pdu(encode_pdu(rq)) == rq


def test_nonzero_reserved_fields_are_accepted() -> None:
    data = associate(
        item(0x10, b"1.2.840.10008.3.1.1.1", reserved=0xAA)
        + pc_rq(
            5,
            item(0x30, b"1.2", reserved=1),
            item(0x40, b"1.2.3", reserved=0xFF),
            reserved=b"\xff\xff\xff",
        )
        + item(0x50, item(0x51, b"\x00\x00\x00\x00", reserved=9), reserved=0x50),
        reserved2=b"\xff\xff",
        reserved32=b"\xee" * 32,
    )
    data = data[:1] + b"\x7f" + data[2:]  # the PDU header's reserved byte
    rq = _rq(data)
    assert rq.presentation_contexts[0].context_id == 5
    assert rq.user_information.maximum_length == 0
    ac = associate(
        APP_CONTEXT + pc_ac(1, 0, item(0x40, b"1.2"), reserved=b"\xff") + MINIMAL_UI,
        pdu_type=0x02,
    )
    decoded = decode_pdu(ac)
    assert isinstance(decoded, AAssociateAC)
    assert decoded.presentation_contexts[0].transfer_syntax == "1.2"


@pytest.mark.parametrize("version", [0x0000, 0x0002, 0x0003, 0xFFFF])
def test_protocol_version_is_kept_for_the_upper_layer(version: int) -> None:
    data = associate(APP_CONTEXT + MINIMAL_PC + MINIMAL_UI, version=version)
    assert _rq(data).protocol_version == version


def test_padding_is_stripped_and_odd_bytes_never_fail() -> None:
    data = associate(
        item(0x10, b"1.2.840.10008.3.1.1.1\x00")
        + pc_rq(1, item(0x30, b"1.2.840.10008.1.1\x00"), item(0x40, b"1.2.840.10008.1.2 "))
        + user_info(item(0x52, b"1.2.3\x00\x00"), item(0x55, b"VER 1 \x00")),
        called=b"  ANY SCP\x00\x00\x00\x00\x00\x00\x00",
        calling=b"\xe9\xff\x80" + b" " * 13,
    )
    rq = _rq(data)
    assert rq.application_context_name == "1.2.840.10008.3.1.1.1"
    assert rq.presentation_contexts[0].abstract_syntax == "1.2.840.10008.1.1"
    assert rq.presentation_contexts[0].transfer_syntaxes == ("1.2.840.10008.1.2",)
    assert rq.user_information.implementation_class_uid == "1.2.3"
    assert rq.user_information.implementation_version_name == "VER 1"
    assert rq.called_ae_title == "ANY SCP"
    assert rq.calling_ae_title == "\xe9\xff\x80"
    assert rq.user_information.maximum_length is None  # absent is allowed (means 0)


def test_user_identity_liberal_forms() -> None:
    # Type 1 with a (meaningless) secondary field, and a type 1 without the field at all.
    with_secondary = _ui(item(0x58, b"\x01\x07\x00\x03bob\x00\x02pw")).user_identity_rq
    assert with_secondary == UserIdentityRQ(
        identity_type=1, positive_response_requested=True, primary_field=b"bob"
    )
    without = _ui(item(0x58, b"\x01\x00\x00\x03bob")).user_identity_rq
    assert without == UserIdentityRQ(
        identity_type=1, positive_response_requested=False, primary_field=b"bob"
    )
    # The encoder writes the secondary length field as zero for types other than 2.
    encoded = encode_pdu(
        _rq(associate(APP_CONTEXT + MINIMAL_PC + user_info(item(0x58, b"\x01\x00\x00\x03bob"))))
    )
    assert item(0x58, b"\x01\x00\x00\x03bob\x00\x00") in encoded


def test_role_bytes_other_than_one_read_as_true() -> None:
    roles = _ui(item(0x54, b"\x00\x03" + b"1.2" + b"\x02\x00")).role_selection
    assert roles[0].scu_role is True
    assert roles[0].scp_role is False


def test_common_extended_negotiation_version_byte() -> None:
    body = b"\x00\x01" + b"1" + b"\x00\x01" + b"2" + b"\x00\x03" + b"\x00\x01" + b"3"
    common = _ui(item(0x57, body, reserved=1)).common_extended_negotiation
    assert common == (
        SOPClassCommonExtendedNegotiation(
            sop_class_uid="1", service_class_uid="2", related_general_sop_classes=("3",)
        ),
    )
    rq = _rq(associate(APP_CONTEXT + MINIMAL_PC + user_info(item(0x57, body, reserved=1))))
    assert item(0x57, body, reserved=0) in encode_pdu(rq)  # we send sub-item version 0


# --- local errors on encode -----------------------------------------------------------
def _rq_with(info: UserInformation, **fields: object) -> AAssociateRQ:
    base: dict[str, object] = {
        "called_ae_title": "A",
        "calling_ae_title": "B",
        "presentation_contexts": (
            PresentationContextRQ(context_id=1, abstract_syntax="1.2", transfer_syntaxes=("1",)),
        ),
        "user_information": info,
    }
    base.update(fields)
    return AAssociateRQ(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        _rq_with(
            UserInformation(
                user_identity_rq=UserIdentityRQ(
                    identity_type=3, positive_response_requested=False, primary_field=b"x" * 70000
                )
            )
        ),
        _rq_with(UserInformation(implementation_class_uid="1." + "2" * 65534)),
        _rq_with(UserInformation(), called_ae_title="\u20ac"),
        _rq_with(UserInformation(), protocol_version=0x10000),
        PDataTF(pdvs=(PDV(context_id=256, control=0, data=b""),)),
    ],
)
def test_unencodable_values_raise_local_protocol_error(value: AAssociateRQ | PDataTF) -> None:
    with pytest.raises(LocalProtocolError):
        encode_pdu(value)


def test_dataclass_validation() -> None:
    with pytest.raises(ValueError):
        PDataTF(pdvs=())
    with pytest.raises(ValueError):
        AAbort(source=256)
    with pytest.raises(ValueError):
        AAssociateRJ(result=1, source=1, reason=-1)
    with pytest.raises(ValueError):
        UserIdentityRQ(
            identity_type=1,
            positive_response_requested=False,
            primary_field=b"a",
            secondary_field=b"b",
        )
