"""Command-set codec and message classes: round trips, tolerance, error statuses."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.dimse import (
    ELEMENT_TAGS,
    MESSAGE_CLASSES,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CommandDecodeError,
    CStoreRQ,
    CStoreRSP,
    DIMSEMessage,
    NActionRQ,
    NActionRSP,
    NCreateRQ,
    NCreateRSP,
    NDeleteRQ,
    NDeleteRSP,
    NEventReportRQ,
    NEventReportRSP,
    NGetRQ,
    NGetRSP,
    NSetRQ,
    NSetRSP,
    decode_command,
    encode_command,
    make_response,
)
from aiodimse.errors import DIMSEError, LocalProtocolError
from tests.examples import examples

from ._helpers import all_messages, example_message

ALL_CLASSES = sorted(MESSAGE_CLASSES.values(), key=lambda c: c.__name__)


def element(elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, elem, len(value)) + value


def us(elem: int, value: int) -> bytes:
    return element(elem, struct.pack("<H", value))


def with_group_length(body: bytes) -> bytes:
    return element(0x0000, struct.pack("<I", len(body))) + body


def parse_elements(data: bytes) -> list[tuple[int, int, int]]:
    """(group, element, length) of every element, in order."""
    out = []
    pos = 0
    while pos < len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        out.append((group, elem, length))
        pos += 8 + length
    assert pos == len(data)
    return out


# -- round trips ---------------------------------------------------------------------


@settings(max_examples=examples(300), deadline=None)
@given(message=all_messages, has_dataset=st.booleans())
def test_round_trip_every_class(message: DIMSEMessage, has_dataset: bool) -> None:
    has_dataset = has_dataset and message.dataset_allowed
    if type(message) in (NSetRQ, CStoreRQ):
        has_dataset = True  # without its data set it is refused (tested apart)
    data = encode_command(message, has_dataset=has_dataset)
    decoded = decode_command(data)
    assert decoded.message == message
    assert type(decoded.message) is type(message)
    assert decoded.has_dataset is has_dataset
    assert decoded.data_set_type == (0x0001 if has_dataset else 0x0101)
    # Structure: group length first and correct, ascending tags, even lengths.
    elements = parse_elements(data)
    assert elements[0] == (0, 0, 4)
    assert struct.unpack_from("<I", data, 8)[0] == len(data) - 12
    tags = [e for _g, e, _l in elements]
    assert tags == sorted(tags) and len(set(tags)) == len(tags)
    assert all(g == 0 and length % 2 == 0 for g, _e, length in elements)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_minimal_messages_round_trip(cls: type[DIMSEMessage]) -> None:
    message = example_message(cls, full=False)
    has_dataset = cls in (NSetRQ, CStoreRQ)  # their data sets are mandatory
    assert decode_command(encode_command(message, has_dataset=has_dataset)).message == message


def test_uid_padding_and_stripping() -> None:
    message = CEchoRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.1.1")  # 17 chars
    data = encode_command(message, has_dataset=False)
    assert b"1.2.840.10008.1.1\x00" in data
    # Peers may pad with spaces or several NULs.
    body = us(0x0100, 0x0030) + us(0x0110, 1) + us(0x0800, 0x0101)
    body = element(0x0002, b"1.2.840.10008.1.1 ") + body
    assert decode_command(with_group_length(body)).message == message


def test_lo_space_padding_and_at_encoding() -> None:
    message = NGetRSP(
        MessageIDBeingRespondedTo=3,
        Status=0x0107,
        ErrorComment="odd",
        AttributeIdentifierList=(0x00100010, 0x7FE00010),
    )
    data = encode_command(message, has_dataset=False)
    assert element(0x0902, b"odd ") in data
    assert element(0x1005, bytes.fromhex("1000 1000 e07f 1000")) in data


@pytest.mark.parametrize("value", [0x0000, 0x0001, 0x0102, 0x0202, 0xFEFE])
def test_any_data_set_type_but_0101_means_a_data_set(value: int) -> None:
    body = us(0x0100, 0x0030) + us(0x0110, 1) + us(0x0800, value)
    body = element(0x0002, b"1.2.840.10008.1.1\x00") + body
    decoded = decode_command(with_group_length(body))
    assert decoded.has_dataset is True
    assert decoded.data_set_type == value


def test_unknown_retired_and_foreign_elements_are_ignored() -> None:
    body = (
        element(0x0001, struct.pack("<I", 99))  # CommandLengthToEnd (retired)
        + element(0x0002, b"1.2.840.10008.1.1\x00")
        + element(0x0010, b"RECOGNITION ")  # CommandRecognitionCode (retired)
        + us(0x0100, 0x0030)
        + us(0x0110, 5)
        + us(0x0700, 2)  # Priority does not belong to C-ECHO
        + us(0x0800, 0x0101)
        + element(0x4000, b"whatever")  # unknown
    )
    # Wrong group length value: tolerated (the PDV framing delimits the set).
    data = element(0x0000, struct.pack("<I", 3)) + body
    assert decode_command(data).message == CEchoRQ(
        MessageID=5, AffectedSOPClassUID="1.2.840.10008.1.1"
    )
    # Missing group length is tolerated too, and a memoryview is accepted.
    assert decode_command(memoryview(body)).message.MessageID == 5  # type: ignore[attr-defined]


def test_decoded_peer_oddities_survive() -> None:
    comment = "x" * 70  # over LO's 64: built locally it would be refused
    body = (
        us(0x0100, 0x8030)
        + us(0x0120, 9)
        + us(0x0800, 0x0101)
        + us(0x0900, 0x0110)
        + element(0x0902, comment.encode() + b"\xff\x00")
    )
    message = decode_command(with_group_length(body)).message
    assert isinstance(message, CEchoRSP)
    assert message.ErrorComment == comment + "?"


# -- error statuses -----------------------------------------------------------------------


def decode_error(data: bytes) -> CommandDecodeError:
    with pytest.raises(CommandDecodeError) as info:
        decode_command(data)
    assert isinstance(info.value, DIMSEError)
    return info.value


@pytest.mark.parametrize(
    ("cls", "missing"),
    [
        (cls, name)
        for cls in ALL_CLASSES
        for name, _vr, mandatory in cls._field_specs
        if mandatory and name not in ("MessageID", "MessageIDBeingRespondedTo")
    ],
    ids=str,
)
def test_missing_mandatory_field_gives_0120_with_message_id(
    cls: type[DIMSEMessage], missing: str
) -> None:
    full = encode_command(example_message(cls), has_dataset=False)
    elem = ELEMENT_TAGS[missing][0]
    kept = b""
    pos = 12
    while pos < len(full):
        _g, e, length = struct.unpack_from("<HHI", full, pos)
        if e != elem:
            kept += full[pos : pos + 8 + length]
        pos += 8 + length
    error = decode_error(with_group_length(kept))
    assert error.status == 0x0120
    assert error.message_id == 7
    assert error.command_field == cls.command_field
    assert error.has_dataset is False
    assert missing in str(error)


def test_missing_message_id_cannot_be_answered() -> None:
    body = us(0x0100, 0x0130) + us(0x0800, 0x0001) + element(0x0003, b"1.2\x00")
    error = decode_error(with_group_length(body))
    assert error.status == 0x0120
    assert error.message_id is None
    assert error.command_field == 0x0130
    assert error.has_dataset is True


def test_empty_mandatory_value_counts_as_missing() -> None:
    body = element(0x0002, b"") + us(0x0100, 0x0030) + us(0x0110, 3) + us(0x0800, 0x0101)
    error = decode_error(with_group_length(body))
    assert (error.status, error.message_id) == (0x0120, 3)


@pytest.mark.parametrize("command_field", [0x0002, 0x0040, 0x8022, 0x1234, 0xFFFF])
def test_unknown_command_field_gives_0211(command_field: int) -> None:
    body = us(0x0100, command_field) + us(0x0110, 42) + us(0x0800, 0x0101)
    error = decode_error(with_group_length(body))
    assert error.status == 0x0211
    assert error.command_field == command_field
    if not command_field & 0x8000:
        assert error.message_id == 42


def test_missing_command_field_gives_0211() -> None:
    error = decode_error(with_group_length(us(0x0110, 42) + us(0x0800, 0x0101)))
    assert (error.status, error.message_id, error.command_field) == (0x0211, 42, None)


def test_response_error_reports_the_id_responded_to() -> None:
    body = us(0x0100, 0x8130) + us(0x0120, 77) + us(0x0800, 0x0101)  # no Status
    error = decode_error(with_group_length(body))
    assert (error.status, error.message_id, error.command_field) == (0x0120, 77, 0x8130)


@pytest.mark.parametrize(
    "bad",
    [
        element(0x0110, b"\x01\x00\x00\x00"),  # US with length 4
        element(0x0110, b"\x01"),  # US with length 1
    ],
)
def test_mistyped_known_element_gives_0212(bad: bytes) -> None:
    body = element(0x0002, b"1.2\x00") + us(0x0100, 0x0030) + bad + us(0x0800, 0x0101)
    assert decode_error(with_group_length(body)).status == 0x0212


def test_non_ascii_uid_and_bad_at_length_give_0212() -> None:
    body = element(0x0002, b"1.2\xe9\x00") + us(0x0100, 0x0030) + us(0x0110, 1)
    error = decode_error(with_group_length(body + us(0x0800, 0x0101)))
    assert (error.status, error.message_id) == (0x0212, 1)
    body = (
        us(0x0100, 0x0110) + us(0x0110, 2) + us(0x0800, 0x0101)
        + element(0x0003, b"1.2\x00") + element(0x1001, b"1.3\x00")
        + element(0x1005, b"\x10\x00\x10\x00\x20\x00")
    )  # fmt: skip
    assert decode_error(with_group_length(body)).status == 0x0212


def test_framing_garbage_gives_0110_with_what_was_read() -> None:
    body = us(0x0100, 0x0030) + us(0x0110, 4) + struct.pack("<HHI", 0, 0x0800, 1000)
    error = decode_error(with_group_length(body))
    assert (error.status, error.message_id, error.command_field) == (0x0110, 4, 0x0030)
    assert error.has_dataset is None
    error = decode_error(with_group_length(us(0x0100, 0x0030)) + b"\x00\x00\x10")
    assert error.status == 0x0110


def test_empty_command_set() -> None:
    error = decode_error(b"")
    assert (error.status, error.message_id, error.command_field) == (0x0211, None, None)


@settings(max_examples=examples(400), deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_dimse_errors(data: bytes) -> None:
    with contextlib.suppress(DIMSEError):
        decode_command(data)


@settings(max_examples=examples(300), deadline=None)
@given(message=all_messages, data=st.data())
def test_fuzz_mutated_valid_commands(message: DIMSEMessage, data: st.DataObject) -> None:
    encoded = bytearray(encode_command(message, has_dataset=False))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    with contextlib.suppress(DIMSEError):
        decode_command(bytes(encoded[:cut]))


# -- encoding rules and construction ------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [example_message(c) for c in (CEchoRQ, CEchoRSP, CCancelRQ, NGetRQ, NDeleteRQ, NDeleteRSP)],
    ids=lambda m: type(m).__name__,
)
def test_no_data_set_messages_refuse_has_dataset(message: DIMSEMessage) -> None:
    with pytest.raises(LocalProtocolError):
        encode_command(message, has_dataset=True)


def test_encode_rejects_non_messages() -> None:
    with pytest.raises(LocalProtocolError):
        encode_command(object(), has_dataset=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"MessageID": 0x10000},
        {"MessageID": -1},
        {"MessageID": True},
        {"MessageID": "1"},
        {"RequestedSOPClassUID": ""},
        {"RequestedSOPClassUID": "1.2\x00"},
        {"RequestedSOPClassUID": "1.2.é"},
        {"ActionTypeID": None},
    ],
    ids=str,
)
def test_construction_validates(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "MessageID": 1,
        "RequestedSOPClassUID": "1.2",
        "RequestedSOPInstanceUID": "1.3",
        "ActionTypeID": 1,
    }
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError)):
        NActionRQ(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ErrorComment": "x" * 65},
        {"ErrorComment": "a\\b"},
        {"ErrorComment": "tab\there"},
        {"OffendingElement": (0x1_0000_0000,)},
        {"OffendingElement": "0010"},
        {"ErrorID": 70000},
    ],
    ids=str,
)
def test_response_construction_validates(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NActionRSP(MessageIDBeingRespondedTo=1, Status=0, **kwargs)  # type: ignore[arg-type]


def test_messages_are_frozen_keyword_only_and_coerce_tag_lists() -> None:
    message = NGetRQ(
        MessageID=1,
        RequestedSOPClassUID="1.2",
        RequestedSOPInstanceUID="1.3",
        AttributeIdentifierList=[0x00100010],  # type: ignore[arg-type]
    )
    assert message.AttributeIdentifierList == (0x00100010,)
    with pytest.raises(AttributeError):
        message.MessageID = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        CEchoRQ(1, "1.2")  # type: ignore[call-arg]
    assert not hasattr(message, "__dict__")


def test_command_fields_and_request_flags() -> None:
    expected: dict[type[DIMSEMessage], int] = {
        CEchoRQ: 0x0030, CEchoRSP: 0x8030, CCancelRQ: 0x0FFF,
        CStoreRQ: 0x0001, CStoreRSP: 0x8001, CGetRQ: 0x0010, CGetRSP: 0x8010,
        CFindRQ: 0x0020, CFindRSP: 0x8020, CMoveRQ: 0x0021, CMoveRSP: 0x8021,
        NEventReportRQ: 0x0100, NEventReportRSP: 0x8100, NGetRQ: 0x0110, NGetRSP: 0x8110,
        NSetRQ: 0x0120, NSetRSP: 0x8120, NActionRQ: 0x0130, NActionRSP: 0x8130,
        NCreateRQ: 0x0140, NCreateRSP: 0x8140, NDeleteRQ: 0x0150, NDeleteRSP: 0x8150,
    }  # fmt: skip
    for cls, field in expected.items():
        assert cls.command_field == field
        assert cls.is_request is (field < 0x8000)
    assert set(MESSAGE_CLASSES.values()) == set(expected)


def test_requested_vs_affected_fields() -> None:
    requests: tuple[type[DIMSEMessage], ...] = (NGetRQ, NSetRQ, NActionRQ, NDeleteRQ)
    for cls in requests:
        names = {n for n, _v, _m in cls._field_specs}
        assert {"RequestedSOPClassUID", "RequestedSOPInstanceUID"} <= names
        assert not names & {"AffectedSOPClassUID", "AffectedSOPInstanceUID"}
    for cls in (NEventReportRQ, NCreateRQ, *[c for c in ALL_CLASSES if not c.is_request]):
        names = {n for n, _v, _m in cls._field_specs}
        assert not names & {"RequestedSOPClassUID", "RequestedSOPInstanceUID"}


# -- make_response --------------------------------------------------------------------------


def test_make_response_echoes_the_request() -> None:
    action = example_message(NActionRQ)
    assert isinstance(action, NActionRQ)
    rsp = make_response(action, 0x0123, ErrorComment="no such action")
    assert rsp == NActionRSP(
        MessageIDBeingRespondedTo=7,
        Status=0x0123,
        AffectedSOPClassUID=action.RequestedSOPClassUID,
        AffectedSOPInstanceUID=action.RequestedSOPInstanceUID,
        ActionTypeID=1,
        ErrorComment="no such action",
    )
    report = example_message(NEventReportRQ)
    assert isinstance(report, NEventReportRQ)
    report_rsp = make_response(report, 0)
    assert (report_rsp.EventTypeID, report_rsp.AffectedSOPInstanceUID) == (
        2,
        report.AffectedSOPInstanceUID,
    )
    echo_rsp = make_response(CEchoRQ(MessageID=9, AffectedSOPClassUID="1.2.840.10008.1.1"), 0)
    assert echo_rsp == CEchoRSP(
        MessageIDBeingRespondedTo=9, Status=0, AffectedSOPClassUID="1.2.840.10008.1.1"
    )
    create = NCreateRQ(MessageID=3, AffectedSOPClassUID="1.2")
    assert (
        make_response(create, 0, AffectedSOPInstanceUID="1.2.3").AffectedSOPInstanceUID == "1.2.3"
    )
    get_rsp = make_response(example_message(NGetRQ), 0x0107, AttributeIdentifierList=(0x00100010,))  # type: ignore[call-overload]
    assert isinstance(get_rsp, NGetRSP)
    assert get_rsp.AttributeIdentifierList == (0x00100010,)
    for cls, rsp_cls in ((NSetRQ, NSetRSP), (NDeleteRQ, NDeleteRSP)):
        rsp = make_response(example_message(cls), 0x0112)  # type: ignore[call-overload]
        assert type(rsp) is rsp_cls
        assert rsp.AffectedSOPInstanceUID == "1.2.840.10008.1.20.1.1"
    assert isinstance(make_response(create, 0), NCreateRSP)


def test_make_response_refusals() -> None:
    with pytest.raises(TypeError):
        make_response(CCancelRQ(MessageIDBeingRespondedTo=1), 0)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        make_response(example_message(NActionRQ), 0, AffectedSOPInstanceUID="1.2")  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        make_response(example_message(NActionRQ), 0, AttributeIdentifierList=(1,))  # type: ignore[call-overload]


def test_make_response_for_the_c_services() -> None:
    store = example_message(CStoreRQ)
    assert isinstance(store, CStoreRQ)
    rsp = make_response(store, 0xB000)
    assert (rsp.MessageIDBeingRespondedTo, rsp.Status, rsp.AffectedSOPClassUID,
            rsp.AffectedSOPInstanceUID) == (7, 0xB000, store.AffectedSOPClassUID,
                                            store.AffectedSOPInstanceUID)
    find = make_response(CFindRQ(MessageID=3, AffectedSOPClassUID="1.2", Priority=0), 0xFF00)
    assert (type(find), find.AffectedSOPClassUID, find.Status) == (CFindRSP, "1.2", 0xFF00)
    move = make_response(
        CMoveRQ(MessageID=4, AffectedSOPClassUID="1.2", MoveDestination="DEST", Priority=0),
        0xFF00, suboperations=(5, 2, 1, 0))
    assert type(move) is CMoveRSP
    assert (move.NumberOfRemainingSuboperations, move.NumberOfCompletedSuboperations,
            move.NumberOfFailedSuboperations, move.NumberOfWarningSuboperations) == (5, 2, 1, 0)
    get = make_response(CGetRQ(MessageID=5, AffectedSOPClassUID="1.2", Priority=0), 0x0000)
    assert type(get) is CGetRSP and get.NumberOfRemainingSuboperations is None
    with pytest.raises(TypeError):
        make_response(store, 0, suboperations=(0, 0, 0, 0))  # type: ignore[call-overload]


@pytest.mark.parametrize("title", ["", "   ", "A" * 17, "BACK\\SLASH", "TAB\tX", "ÄE"])
def test_ae_fields_are_checked_as_ae_titles(title: str) -> None:
    with pytest.raises(ValueError, match="AE title"):
        CMoveRQ(MessageID=1, AffectedSOPClassUID="1.2", MoveDestination=title, Priority=0)
