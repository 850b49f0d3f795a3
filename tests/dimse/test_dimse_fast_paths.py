"""The DIMSE hot paths agree with the reference code paths they shortcut."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from aiodimse.dimse import (
    CStoreRQ,
    DIMSEMessage,
    MessageAssembler,
    NActionRQ,
    NSetRQ,
    decode_command,
    encode_command,
    encode_message,
)
from aiodimse.dimse.assemble import ReceivedMessage
from aiodimse.dimse.commands import (
    CommandDecodeError,
    CommandDecoder,
    _decode_exact,
    _decode_fast,
    command_template,
    decode_command_raw,
)
from tests.dimse._helpers import all_messages, split_pdus
from tests.examples import examples


def _exact(data: bytes) -> tuple[DIMSEMessage, int] | CommandDecodeError:
    try:
        return _decode_exact(data)
    except CommandDecodeError as exc:
        return exc


@settings(max_examples=examples(300), deadline=None)
@given(message=all_messages, has_dataset=st.booleans(), data=st.data())
def test_fast_decoder_agrees_with_the_exact_one(
    message: DIMSEMessage, has_dataset: bool, data: st.DataObject
) -> None:
    has_dataset = has_dataset and message.dataset_allowed
    if type(message) in (NSetRQ, CStoreRQ):
        has_dataset = True  # refused without its data set (tests/dimse/test_dimse_instance_uids)
    command = bytearray(encode_command(message, has_dataset=has_dataset))
    for _ in range(data.draw(st.integers(0, 3))):
        index = data.draw(st.integers(0, len(command) - 1))
        command[index] ^= data.draw(st.integers(1, 255))
    raw = bytes(command)
    fast = _decode_fast(raw)
    exact = _exact(raw)
    if fast is not None:  # whatever it vouches for, it decodes exactly alike
        assert not isinstance(exact, CommandDecodeError)
        assert fast[:2] == exact
        assert type(fast[0]) is type(exact[0])
        id_name = "MessageID" if hasattr(fast[0], "MessageID") else "MessageIDBeingRespondedTo"
        assert int.from_bytes(raw[fast[2] : fast[2] + 2], "little") == getattr(fast[0], id_name)
    if raw == encode_command(message, has_dataset=has_dataset):
        # Unchanged: vouched for, unless it has an AT value (left to the exact path).
        has_at = any(vr == "AT" and getattr(message, name) is not None
                     for name, vr, _m in message._field_specs)  # fmt: skip
        assert (fast is None) is has_at
        assert not isinstance(exact, CommandDecodeError) and exact[0] == message


@settings(max_examples=examples(200), deadline=None)
@given(
    message=all_messages,
    size=st.integers(0, 300),
    max_pdu=st.sampled_from([0, 8, 64, 117, 118, 400]),
    pack=st.booleans(),
)
def test_small_message_path_matches_the_general_one(
    message: DIMSEMessage, size: int, max_pdu: int, pack: bool
) -> None:
    dataset = bytes(range(256)) * 2
    dataset = dataset[:size] if message.dataset_allowed else None
    command = encode_command(message, has_dataset=dataset is not None)
    via_bytes = encode_message(5, command, dataset, max_pdu, pack_command_with_dataset=pack)
    general = None if dataset is None else bytearray(dataset)  # bytearray: general path
    via_general = encode_message(5, command, general, max_pdu, pack_command_with_dataset=pack)
    if dataset is not None:
        assert via_bytes == via_general
    assembler = MessageAssembler()
    received = [
        assembler.feed_pdv(ctx, control, frag)
        for _length, pdvs in split_pdus(via_bytes)
        for ctx, control, frag in pdvs
    ]
    assert received[-1] is not None and received[-1].message == message
    assert (None if received[-1].dataset is None else bytes(received[-1].dataset)) == dataset


def test_decode_command_result_is_a_normal_decoded_command() -> None:
    message = NActionRQ(
        MessageID=9, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=1
    )
    decoded = decode_command(encode_command(message, has_dataset=True))
    assert decoded.message == message and decoded.has_dataset and decoded.data_set_type == 1
    assert repr(decoded).startswith("DecodedCommand(")


def test_ui_encoding_cache_is_keyed_by_value() -> None:
    # Two messages that differ only in a UID must not share its cached element.
    first = NActionRQ(
        MessageID=1, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=1
    )
    second = NActionRQ(
        MessageID=1,
        RequestedSOPClassUID="1.2.3",
        RequestedSOPInstanceUID="1.2.3.45",
        ActionTypeID=1,
    )
    for message in (first, second, first):
        assert decode_command(encode_command(message, has_dataset=False)).message == message


def _raw_or_error(data: bytes) -> tuple[DIMSEMessage, int] | tuple[str, int, int | None]:
    try:
        return decode_command_raw(data)
    except CommandDecodeError as exc:
        return (str(exc), exc.status, exc.message_id)


@settings(max_examples=examples(200), deadline=None)
@given(message=all_messages, data=st.data())
def test_shape_cache_gives_what_a_fresh_decode_gives(
    message: DIMSEMessage, data: st.DataObject
) -> None:
    # A stream of commands of one shape: new IDs, and now and then a changed byte.
    command = encode_command(message, has_dataset=False)
    decoder = CommandDecoder()
    for _ in range(6):
        mutated = bytearray(command)
        for _ in range(data.draw(st.integers(0, 2))):
            mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(mutated)
        expected = _raw_or_error(raw)
        try:
            got: object = decoder.decode(raw)
        except CommandDecodeError as exc:
            got = (str(exc), exc.status, exc.message_id)
        assert got == expected
        if not isinstance(got[0], str):
            assert type(got[0]) is type(expected[0])


def test_shape_cache_follows_the_message_id() -> None:
    decoder = CommandDecoder()
    for message_id in (1, 2, 0xFFFF, 2):
        message = NActionRQ(
            MessageID=message_id,
            RequestedSOPClassUID="1.2.840.10008.1.20.1",
            RequestedSOPInstanceUID="1.2.840.10008.1.20.1.1",
            ActionTypeID=1,
        )
        command = encode_command(message, has_dataset=True)
        assert decoder.decode(memoryview(command)) == (message, 1)


@settings(max_examples=examples(300), deadline=None)
@given(message=all_messages, has_dataset=st.booleans(), message_id=st.integers(0, 0xFFFF))
def test_command_template_gives_the_encoders_bytes(
    message: DIMSEMessage, has_dataset: bool, message_id: int
) -> None:
    """A template (requests but C-CANCEL) filled with any Message ID is encode_command's output."""
    has_dataset = has_dataset and message.dataset_allowed
    if "MessageID" not in {name for name, _vr, _m in message._field_specs}:
        with pytest.raises(ValueError, match="no MessageID"):
            command_template(message, has_dataset=has_dataset)
        return
    template = command_template(message, has_dataset=has_dataset)
    again = dataclasses.replace(message, MessageID=message_id)  # type: ignore[type-var]
    assert template.encode(message_id) == encode_command(again, has_dataset=has_dataset)


def _outcome(step: Callable[[], ReceivedMessage | None]) -> object:
    """A feed's result made comparable: the message's fields, or the error raised."""
    try:
        received = step()
    except Exception as exc:  # compared by type and text
        return ("raised", type(exc).__name__, str(exc))
    if received is None:
        return None
    dataset = received.dataset
    return (received.context_id, received.message, None if dataset is None else bytes(dataset),
            None if received.error is None else str(received.error), received.shape)


@settings(max_examples=examples(400), deadline=None)
@given(
    message=all_messages,
    has_dataset=st.sampled_from([True, True, True, False]),
    size=st.integers(0, 9),
    controls=st.tuples(st.sampled_from([3, 3, 0xFF, 1, 2]), st.sampled_from([2, 2, 0xFE, 0, 3])),
    contexts=st.sampled_from([(1, 1), (1, 1), (3, 3), (1, 3)]),
    accepted=st.sampled_from([None, None, (1,), (3,), (1, 3)]),
    strict=st.booleans(),
    limits=st.sampled_from([(1 << 16, 1 << 16), (1 << 16, 1 << 16), (8, 1 << 16), (200, 4)]),
    in_progress=st.sampled_from([False, False, False, True]),
    view=st.booleans(),
    flip=st.one_of(st.just(-1), st.integers(0, 40)),
)
def test_whole_message_is_two_feed_pdv_calls_or_nothing(
    *,
    message: DIMSEMessage, has_dataset: bool, size: int, controls: tuple[int, int],
    contexts: tuple[int, int], accepted: tuple[int, ...] | None, strict: bool,
    limits: tuple[int, int], in_progress: bool, view: bool, flip: int,
) -> None:
    has_dataset = has_dataset and message.dataset_allowed
    command = bytearray(encode_command(message, has_dataset=has_dataset))
    if 0 <= flip < len(command):
        command[flip] ^= 0x5A  # now and then a command set the decoders refuse
    data = bytes(range(size))
    chunk = bytes(command) + data
    wire = memoryview(chunk) if view else None
    fragments = (
        (contexts[0], controls[0], wire[: len(command)] if wire else bytes(command)),
        (contexts[1], controls[1], wire[len(command) :] if wire else data),
    )

    def assembler() -> MessageAssembler:
        made = MessageAssembler(max_command_length=limits[0], max_dataset_length=limits[1],
                                accepted_context_ids=accepted, strict_even_fragments=strict)
        if in_progress:  # a command fragment of an earlier message, not yet the last
            made.feed_pdv(accepted[0] if accepted else contexts[0], 0x01, b"\x00\x00")
        return made

    fast = assembler()
    taken = _outcome(lambda: fast.whole_message(fragments))
    event("taken" if taken is not None else "declined")
    slow = assembler()
    first = _outcome(lambda: slow.feed_pdv(*fragments[0]))
    second = _outcome(lambda: slow.feed_pdv(*fragments[1]))
    if taken is None:
        # Declined: nothing consumed, so the two feeds give what they give afresh.
        again = _outcome(lambda: fast.feed_pdv(*fragments[0]))
        assert [again, _outcome(lambda: fast.feed_pdv(*fragments[1]))] == [first, second]
    else:
        assert first is None and second == taken
        assert not fast.in_progress
        if view and taken[2]:  # the data set kept as the view it came as: no copy
            received = fast.whole_message(fragments)
            assert received is not None and isinstance(received.dataset, memoryview)


def test_whole_message_takes_the_usual_request() -> None:
    message = NActionRQ(
        MessageID=7, RequestedSOPClassUID="1.2.3", RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=1
    )
    command = encode_command(message, has_dataset=True)
    chunk = command + b"\x08\x00\x18\x00\x00\x00\x00\x00"
    view = memoryview(chunk)
    fragments = ((1, 3, view[: len(command)]), (1, 2, view[len(command) :]))
    received = MessageAssembler().whole_message(fragments)
    assert received is not None and received.message == message and received.context_id == 1
    assert isinstance(received.dataset, memoryview) and received.dataset.obj is chunk
