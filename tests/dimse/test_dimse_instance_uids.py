"""Requests whose SOP Instance UID is no UID, and N-SET without its data set (issue 18).

Both are refused by the command decoder, on every path (the lean pass, the reference
decoder, a per-association decoder and its shared shapes), with the status of PS3.7:
0x0117 invalid object instance; 0x0110 for N-SET-RQ with CommandDataSetType 0x0101.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.dimse import (
    CommandDecodeError,
    DIMSEMessage,
    NActionRQ,
    NActionRSP,
    NCreateRQ,
    NDeleteRQ,
    NEventReportRQ,
    NGetRQ,
    NSetRQ,
    decode_command,
    encode_command,
)
from aiodimse.dimse.commands import CommandDecoder, decode_command_raw, is_valid_uid
from tests.examples import examples

BAD_UIDS = [
    "1.2.abc",
    "../../x",
    "1.2.3." + "4" * 60,  # 66 characters
    "1.2.840.10008." + "1" * 54,  # 68, as a modality simulator sent
    "1" + ".2" * 5000,  # 10,001 characters
    "1.02.3",  # leading zero
    "1..2",
    ".1.2",
    "1.2.",
    "1.2 3",
]
GOOD_UIDS = ["0", "0.1", "1.2.840.10008.1.20.1.1", "1." + "2" * 62, "1.0.0.20"]


def requests(uid: str) -> list[DIMSEMessage]:
    return [
        NActionRQ(MessageID=5, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID=uid,
                  ActionTypeID=1),
        NCreateRQ(MessageID=5, AffectedSOPClassUID="1.2.3", AffectedSOPInstanceUID=uid),
        NSetRQ(MessageID=5, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID=uid),
        NGetRQ(MessageID=5, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID=uid),
        NDeleteRQ(MessageID=5, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID=uid),
        NEventReportRQ(MessageID=5, AffectedSOPClassUID="1.2.3", AffectedSOPInstanceUID=uid,
                       EventTypeID=1),
    ]


def decoders() -> list[object]:
    return [decode_command_raw, CommandDecoder().decode]


@pytest.mark.parametrize("uid", BAD_UIDS)
def test_a_request_with_an_invalid_instance_uid_is_refused_with_0117(uid: str) -> None:
    for message in requests(uid):
        data = encode_command(message, has_dataset=message.dataset_allowed)
        for decode in [decode_command, *decoders()]:
            with pytest.raises(CommandDecodeError) as caught:
                decode(data)  # type: ignore[operator]
            err = caught.value
            assert err.status == 0x0117
            assert err.message_id == 5 and err.command_field == message.command_field
            assert err.has_dataset is message.dataset_allowed  # the reassembler waits for it
            assert len(str(err)) < 200  # the peer's value is cut short in the text


@pytest.mark.parametrize("uid", GOOD_UIDS)
def test_valid_instance_uids_pass(uid: str) -> None:
    for message in requests(uid):
        data = encode_command(message, has_dataset=message.dataset_allowed)
        assert decode_command(data).message == message
        decoder = CommandDecoder()
        for _ in range(2):  # the second one through the remembered shape
            assert decoder.decode(data)[0] == message


def test_a_response_with_an_odd_uid_is_still_read() -> None:
    """Responses are not judged: an SCU reads what the SCP answered."""
    rsp = NActionRSP(MessageIDBeingRespondedTo=5, Status=0, AffectedSOPInstanceUID="1.02.x")
    assert decode_command(encode_command(rsp, has_dataset=False)).message == rsp


def test_n_create_without_an_instance_uid_is_accepted() -> None:
    message = NCreateRQ(MessageID=5, AffectedSOPClassUID="1.2.3")
    assert decode_command(encode_command(message, has_dataset=True)).message == message


def test_n_set_without_a_data_set_is_refused_with_0110() -> None:
    message = NSetRQ(MessageID=9, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID="1.2.4")
    data = encode_command(message, has_dataset=False)
    for decode in [decode_command, *decoders()]:
        with pytest.raises(CommandDecodeError) as caught:
            decode(data)  # type: ignore[operator]
        assert caught.value.status == 0x0110
        assert caught.value.has_dataset is False and caught.value.message_id == 9
    assert decode_command(encode_command(message, has_dataset=True)).has_dataset


def test_a_known_shape_never_lets_an_invalid_uid_through() -> None:
    """A bad UID of the same length as a learned good one differs in bytes: decoded anew."""
    good = requests("1.2.3.4")[0]
    bad = requests("1.2.3.x")[0]
    decoder = CommandDecoder()
    decoder.decode(encode_command(good, has_dataset=True))
    with pytest.raises(CommandDecodeError):
        CommandDecoder().decode(encode_command(bad, has_dataset=True))
    with pytest.raises(CommandDecodeError):
        decoder.decode(encode_command(bad, has_dataset=True))


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet="0123456789.", max_size=70) | st.text(max_size=10))
def test_is_valid_uid_is_the_grammar_of_ps3_5(value: str) -> None:
    parts = value.split(".")
    expected = (
        0 < len(value) <= 64
        and all(p.isascii() and p.isdigit() and (p == "0" or p[0] != "0") for p in parts)
    )
    assert is_valid_uid(value) is expected
