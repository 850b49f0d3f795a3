"""ResponseMemo and CommandDecoder.shape: a reused response is the one the long path builds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.dimse import NActionRQ, NEventReportRQ, commands, encode_command
from aiodimse.dimse import memo as memo_module
from aiodimse.dimse.commands import CommandDecoder, decode_command_raw
from aiodimse.dimse.fragment import encode_message
from aiodimse.dimse.memo import ResponseMemo
from aiodimse.presentation import PresentationContext
from aiodimse.requests import bare_status, build_response, kind_of
from tests.examples import examples

uids = st.lists(st.integers(1, 10**12), min_size=1, max_size=5).map(
    lambda parts: "1.2." + ".".join(map(str, parts))
)
ANY_ACTION = NActionRQ(MessageID=1, RequestedSOPClassUID="1.2", RequestedSOPInstanceUID="1.2",
                       ActionTypeID=1)
CONTEXT = PresentationContext(context_id=3, abstract_syntax="1.2.840.10008.1.20.1",
                              transfer_syntax="1.2.840.10008.1.2")


def forget_shared() -> None:
    """Empty the tables that decoders and memos share (process-wide)."""
    commands._SHAPES.clear()
    memo_module._SHARED.clear()


@pytest.fixture(autouse=True)
def _fresh_tables() -> Iterator[None]:
    forget_shared()
    yield
    forget_shared()


def long_path(rq: NActionRQ | NEventReportRQ, result: object, max_pdu: int = 16384) -> bytes:
    kind = kind_of(rq)
    assert kind is not None
    rsp, data = build_response(kind, rq, result, CONTEXT)
    assert data is None
    return encode_message(CONTEXT.context_id, encode_command(rsp, has_dataset=False), None,
                          max_pdu)


def decoded(decoder: CommandDecoder, rq: NActionRQ | NEventReportRQ) -> NActionRQ:
    message, _ = decoder.decode(encode_command(rq, has_dataset=True))
    assert isinstance(message, NActionRQ | NEventReportRQ)
    return message  # type: ignore[return-value]


def test_decoder_shape_is_shared_by_commands_differing_in_their_id_only() -> None:
    decoder = CommandDecoder()
    first = NActionRQ(MessageID=1, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID="1.2.3.4",
                      ActionTypeID=1)
    decoded(decoder, first)
    shape = decoder.shape
    assert shape is not None
    decoded(decoder, NActionRQ(MessageID=2, RequestedSOPClassUID="1.2.3",
                               RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=1))
    assert decoder.shape is shape
    decoded(decoder, NActionRQ(MessageID=3, RequestedSOPClassUID="1.2.3",
                               RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=2))
    assert decoder.shape is not shape  # another Action Type ID: another shape


@settings(max_examples=examples(80), deadline=None)
@given(
    request=st.tuples(uids, uids, st.integers(0, 0xFFFF)),
    ids=st.lists(st.integers(1, 0xFFFF), min_size=3, max_size=6),
    status=st.sampled_from([0x0000, 0x0110, 0x0112, 0xB000, 0x0213, 0xC123]),
    max_pdu=st.sampled_from([0, 128, 16384]),
)
def test_reused_responses_equal_the_long_path(
    request: tuple[str, str, int], ids: list[int], status: int, max_pdu: int
) -> None:
    forget_shared()  # each example starts from nothing shared
    class_uid, instance_uid, action = request
    decoder = CommandDecoder()
    rsp_memo = ResponseMemo(max_pdu)
    kind = kind_of(ANY_ACTION)
    assert kind is not None
    result = (status, None)
    code = bare_status(kind, result)
    assert code == status
    reused = 0
    for message_id in ids:
        rq = decoded(decoder, NActionRQ(MessageID=message_id, RequestedSOPClassUID=class_uid,
                                        RequestedSOPInstanceUID=instance_uid,
                                        ActionTypeID=action))
        shape = decoder.shape
        assert shape is not None
        expected = long_path(rq, result, max_pdu)
        got = rsp_memo.lookup(shape, code, CONTEXT.context_id, rq.MessageID)
        if got is None:
            rsp_memo.offer(shape, code, CONTEXT.context_id, expected)
        else:
            reused += 1
            assert got == expected
    single_pdu = len(expected) == int.from_bytes(expected[2:6], "big") + 6
    # The first of a shape goes the long way; then every single-PDU one is reused.
    assert reused == (len(ids) - 1 if single_pdu else 0)


def test_memo_misses_on_another_status_context_or_shape() -> None:
    decoder = CommandDecoder()
    memo = ResponseMemo()
    rq1 = decoded(decoder, NEventReportRQ(MessageID=1, AffectedSOPClassUID="1.2.3",
                                          AffectedSOPInstanceUID="1.2.3.4", EventTypeID=1))
    shape = decoder.shape
    assert shape is not None
    pdus = long_path(rq1, (0, None))
    memo.offer(shape, 0, 3, pdus)
    assert memo.lookup(shape, 0, 3, 9) is not None
    assert memo.lookup(shape, 0x0110, 3, 9) is None
    assert memo.lookup(shape, 0, 5, 9) is None
    decoded(decoder, NEventReportRQ(MessageID=2, AffectedSOPClassUID="1.2.3",
                                    AffectedSOPInstanceUID="1.2.3.5", EventTypeID=1))
    assert decoder.shape is not shape
    assert memo.lookup(decoder.shape, 0, 3, 9) is None  # type: ignore[arg-type]


def test_a_fragmented_response_is_not_remembered() -> None:
    decoder = CommandDecoder()
    memo = ResponseMemo()
    rq = decoded(decoder, NActionRQ(MessageID=1, RequestedSOPClassUID="1.2.3",
                                    RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=1))
    shape = decoder.shape
    assert shape is not None
    pdus = long_path(rq, (0, None), max_pdu=32)  # the command set spans several PDUs
    memo.offer(shape, 0, 3, pdus)
    assert memo.lookup(shape, 0, 3, 2) is None


def test_bare_status_only_for_results_that_fix_the_response() -> None:
    action = kind_of(ANY_ACTION)
    assert action is not None
    assert bare_status(action, (0x0000, None)) == 0
    assert bare_status(action, (True, None)) is None
    assert bare_status(action, (0x10000, None)) is None
    assert bare_status(action, 0x0000) is None  # a bare status where a pair is due
    assert bare_status(action, (0x0000, object())) is None


def test_a_new_association_reuses_the_shapes_and_responses_of_others() -> None:
    """The first request on a second decoder and memo takes the short way, exactly."""
    rq = NActionRQ(MessageID=1, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID="1.2.3.4",
                   ActionTypeID=1)
    first_decoder, first_memo = CommandDecoder(), ResponseMemo(16384)
    decoded(first_decoder, rq)
    shape = first_decoder.shape
    assert shape is not None
    first_memo.offer(shape, 0, 3, long_path(rq, (0, None)))

    again = NActionRQ(MessageID=77, RequestedSOPClassUID="1.2.3",
                      RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=1)
    second_decoder = CommandDecoder()
    message = decoded(second_decoder, again)
    assert second_decoder.shape is shape  # known: not decoded again
    assert message == decode_command_raw(encode_command(again, has_dataset=True))[0]
    assert ResponseMemo(16384).lookup(shape, 0, 3, 77) == long_path(again, (0, None))
    # A peer with another Maximum Length, another status or context: not this response.
    assert ResponseMemo(64).lookup(shape, 0, 3, 77) is None
    assert ResponseMemo(16384).lookup(shape, 0x0110, 3, 77) is None
    assert ResponseMemo(16384).lookup(shape, 0, 5, 77) is None


def test_shared_tables_stay_bounded() -> None:
    for n in range(commands.SHAPE_LENGTHS * 2):
        decoder = CommandDecoder()
        # (the class UID varies: an instance UID of over 64 characters is refused)
        decoded(decoder, NActionRQ(MessageID=1, RequestedSOPClassUID="1.2." + "3" * (n + 1),
                                   RequestedSOPInstanceUID="1.2.3",
                                   ActionTypeID=1))
        shape = decoder.shape
        assert shape is not None
        ResponseMemo().offer(shape, 0, 1, long_path(decoder.shape, (0, None)))  # type: ignore[arg-type]
    assert len(commands._SHAPES) <= commands.SHAPE_LENGTHS
    assert all(len(v) <= commands.SHAPES_PER_LENGTH for v in commands._SHAPES.values())
    assert len(memo_module._SHARED) <= memo_module.SHARED_LIMIT


def test_long_command_sets_leave_no_shape_behind() -> None:
    """Shapes hold their command set's bytes: over SHAPE_MAX_BYTES none is kept (issue 18)."""
    commands._SHAPES.clear()
    filler = "1." + "2" * (commands.SHAPE_MAX_BYTES + 100)  # a SOP Class UID is not judged
    for n in range(20):
        decoder = CommandDecoder()
        rq = NActionRQ(MessageID=1, RequestedSOPClassUID=filler + str(n),
                       RequestedSOPInstanceUID="1.2.3", ActionTypeID=1)
        for _ in range(2):
            assert decoded(decoder, rq) == rq
            assert decoder.shape is None  # nothing for a ResponseMemo to key on either
    assert commands._SHAPES == {}
