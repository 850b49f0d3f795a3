"""Fragmentation into P-DATA-TF PDUs and reassembly: budgets, round trips, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.dimse import (
    DEFAULT_UNLIMITED_PDU_LENGTH,
    CEchoRQ,
    MessageAssembler,
    MessageTooLargeError,
    NActionRQ,
    NGetRQ,
    NSetRQ,
    ReceivedMessage,
    encode_command,
    encode_message,
)
from aiodimse.errors import AiodimseError, LocalProtocolError, RemoteProtocolError
from tests.examples import examples

from ._helpers import all_messages, example_message, reassemble, split_pdus

ACTION = example_message(NActionRQ)
ACTION_CMD = encode_command(ACTION, has_dataset=True)
ECHO = CEchoRQ(MessageID=1, AffectedSOPClassUID="1.2.840.10008.1.1")
ECHO_CMD = encode_command(ECHO, has_dataset=False)
MIN_USEFUL = 8  # PDV header + a 2-byte fragment
SIZES = [0, 1, 2, 1023, 1024, 1025, 4089, 4090, 4091, 65535, 100_000]
MAX_PDUS = [0, MIN_USEFUL, MIN_USEFUL + 16, 25, 4096, 16384]


def payload(size: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(size))


def check_budget(stream: bytes, max_pdu: int, *, packed: bool = False) -> None:
    limit = max_pdu or DEFAULT_UNLIMITED_PDU_LENGTH
    pdus = split_pdus(stream)
    commands_done = False
    for length, pdvs in pdus:
        assert length <= limit
        assert len(pdvs) == 1 or (packed and len(pdvs) == 2)
        for index, (_ctx, control, fragment) in enumerate(pdvs):
            assert control in (0x00, 0x01, 0x02, 0x03)
            if control & 1:
                assert not commands_done
                commands_done = bool(control & 2)
                assert len(fragment) % 2 == 0
            elif not control & 2:
                assert len(fragment) % 2 == 0  # only the data set's last may be odd
            if len(pdvs) == 2:
                assert (index, control) in ((0, 0x03), (1, 0x00), (1, 0x02))


@pytest.mark.parametrize("max_pdu", MAX_PDUS)
@pytest.mark.parametrize("size", SIZES)
def test_round_trip_sizes_and_budgets(size: int, max_pdu: int) -> None:
    data = payload(size)
    for pack in (False, True):
        stream = encode_message(1, ACTION_CMD, data, max_pdu, pack_command_with_dataset=pack)
        check_budget(stream, max_pdu, packed=pack)
        (received,) = reassemble(stream, MessageAssembler(accepted_context_ids={1}))
        assert received == ReceivedMessage(
            context_id=1, message=ACTION, dataset=received.dataset, error=None, shape=received.shape
        )
        assert received.dataset is not None
        assert bytes(received.dataset) == data


def test_exact_boundary_fragments() -> None:
    max_pdu = 1006  # max fragment 1000
    stream = encode_message(1, ACTION_CMD, payload(3000), max_pdu)
    pdus = split_pdus(stream)
    data_lengths = [len(f) for _l, pdvs in pdus for _c, ctl, f in pdvs if not ctl & 1]
    assert data_lengths == [1000, 1000, 1000]
    assert [length for length, _ in pdus][-3:] == [max_pdu] * 3
    # An odd budget rounds the fragment down to even.
    stream = encode_message(1, ACTION_CMD, payload(3000), 1007)
    data_lengths = [len(f) for _l, pdvs in split_pdus(stream) for _c, ctl, f in pdvs if not ctl & 1]
    assert data_lengths == [1000, 1000, 1000]


def test_unlimited_uses_default_chunk() -> None:
    data = payload(DEFAULT_UNLIMITED_PDU_LENGTH * 2 + 10)
    stream = encode_message(1, ACTION_CMD, data, 0)
    pdus = split_pdus(stream)
    assert max(length for length, _ in pdus) == DEFAULT_UNLIMITED_PDU_LENGTH
    assert len(pdus) == 1 + 3


def test_command_only_and_packing() -> None:
    stream = encode_message(7, ECHO_CMD, None, 16384)
    assert split_pdus(stream) == [(len(ECHO_CMD) + 6, [(7, 0x03, ECHO_CMD)])]
    (received,) = reassemble(stream)
    assert received.message == ECHO and received.dataset is None
    packed = encode_message(1, ACTION_CMD, b"abcd", 16384, pack_command_with_dataset=True)
    assert [len(pdvs) for _l, pdvs in split_pdus(packed)] == [2]
    assert split_pdus(packed)[0][0] == len(ACTION_CMD) + 6 + 4 + 6
    # Packing fills the command's PDU, then continues with full PDUs.
    packed = encode_message(
        1, ACTION_CMD, payload(500), len(ACTION_CMD) + 6 + 6 + 100, pack_command_with_dataset=True
    )
    pdus = split_pdus(packed)
    assert [len(f) for _c, _t, f in pdus[0][1]] == [len(ACTION_CMD), 100]


def test_empty_data_set_is_one_empty_last_pdv() -> None:
    stream = encode_message(1, ACTION_CMD, b"", 4096)
    assert split_pdus(stream)[-1] == (2 + 4, [(1, 0x02, b"")])
    (received,) = reassemble(stream)
    assert received.dataset is not None and bytes(received.dataset) == b""


def test_accepts_memoryview_and_bytearray_data_sets() -> None:
    data = payload(5000)
    for variant in (bytearray(data), memoryview(data), memoryview(bytearray(data))[10:]):
        stream = encode_message(1, ACTION_CMD, variant, 1024)
        (received,) = reassemble(stream)
        assert received.dataset is not None and bytes(received.dataset) == bytes(variant)


@pytest.mark.parametrize("bad", [1, 7, -1])
def test_refuses_unusable_max_pdu(bad: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_message(1, ECHO_CMD, None, bad)


@pytest.mark.parametrize("context_id", [0, 256])
def test_refuses_bad_context_id(context_id: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_message(context_id, ECHO_CMD, None, 4096)


@settings(max_examples=examples(60), deadline=None)
@given(
    message=all_messages,
    size=st.integers(0, 5000),
    max_pdu=st.sampled_from([0, 8, 9, 24, 100, 1000, 16384]),
    pack=st.booleans(),
)
def test_hypothesis_message_round_trip(message, size, max_pdu, pack) -> None:  # type: ignore[no-untyped-def]
    data = payload(size) if message.dataset_allowed else None
    command = encode_command(message, has_dataset=data is not None)
    stream = encode_message(3, command, data, max_pdu, pack_command_with_dataset=pack)
    check_budget(stream, max_pdu, packed=pack)
    (received,) = reassemble(stream)
    assert received.message == message and received.error is None
    assert (None if received.dataset is None else bytes(received.dataset)) == data


def test_several_messages_in_a_row_and_reuse_of_a_buffer() -> None:
    assembler = MessageAssembler()
    stream = b"".join(
        encode_message(1, ACTION_CMD, payload(300 + i), 64) for i in range(3)
    ) + encode_message(3, ECHO_CMD, None, 64)
    scratch = bytearray(1000)
    results = []
    for _length, pdvs in split_pdus(stream):
        for context_id, control, fragment in pdvs:
            # The caller may reuse its buffer after each call.
            scratch[: len(fragment)] = fragment
            result = assembler.feed_pdv(context_id, control, memoryview(scratch)[: len(fragment)])
            scratch[:] = b"\xee" * len(scratch)
            if result:
                results.append(result)
    assert [r.context_id for r in results] == [1, 1, 1, 3]
    assert [bytes(r.dataset) if r.dataset is not None else None for r in results] == [
        payload(300),
        payload(301),
        payload(302),
        None,
    ]
    assert not assembler.in_progress


# -- errors reported after the whole message ------------------------------------------------


def test_undecodable_command_reported_after_its_data_set() -> None:
    bad = bytearray(ACTION_CMD)
    # Turn ActionTypeID (0000,1008) into an unknown element: a mandatory field missing.
    index = bytes(bad).index(b"\x00\x00\x08\x10")
    bad[index + 2 : index + 4] = b"\x09\x10"
    stream = encode_message(1, bytes(bad), payload(100), 64)
    assembler = MessageAssembler()
    results = reassemble(stream, assembler)
    assert len(results) == 1
    (received,) = results
    assert received.message is None
    assert received.error is not None
    assert (received.error.status, received.error.message_id) == (0x0120, 7)
    assert received.dataset is not None and bytes(received.dataset) == payload(100)


def test_garbled_command_without_data_set_type_completes_at_once() -> None:
    assembler = MessageAssembler()
    received = assembler.feed_pdv(1, 0x03, b"\x00\x00")
    assert received is not None and received.error is not None and received.message is None
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed_pdv(1, 0x02, b"\x00\x00")  # a data set nobody announced
    assert info.value.abort_reason == 2


# -- protocol errors ---------------------------------------------------------------------------


def expect_abort(
    assembler: MessageAssembler, pdvs: list[tuple[int, int, bytes]], reason: int
) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        for context_id, control, data in pdvs:
            assembler.feed_pdv(context_id, control, data)
    assert (info.value.abort_source, info.value.abort_reason) == (2, reason)
    assert not assembler.in_progress


def test_data_fragment_before_command() -> None:
    expect_abort(MessageAssembler(), [(1, 0x02, b"ab")], 2)
    expect_abort(MessageAssembler(), [(1, 0x01, ACTION_CMD[:10]), (1, 0x00, b"ab")], 2)


def test_command_fragment_after_last_command_fragment() -> None:
    expect_abort(MessageAssembler(), [(1, 0x03, ACTION_CMD), (1, 0x01, b"ab")], 2)


def test_data_fragment_when_no_data_set_announced() -> None:
    expect_abort(MessageAssembler(), [(1, 0x03, ECHO_CMD), (1, 0x02, b"ab")], 2)


def test_other_context_in_the_middle_of_a_message() -> None:
    expect_abort(MessageAssembler(), [(1, 0x01, ACTION_CMD[:10]), (3, 0x03, b"ab")], 2)
    expect_abort(MessageAssembler(), [(1, 0x03, ACTION_CMD), (3, 0x02, b"ab")], 2)


def test_unknown_context_id() -> None:
    expect_abort(MessageAssembler(accepted_context_ids=[1, 3]), [(5, 0x03, ECHO_CMD)], 6)


def test_odd_fragments_liberal_by_default_strict_on_request() -> None:
    stream = [(1, 0x03, ACTION_CMD), (1, 0x00, b"abc"), (1, 0x02, b"de")]
    assembler = MessageAssembler()
    results = [assembler.feed_pdv(*pdv) for pdv in stream]
    assert results[-1] is not None and bytes(results[-1].dataset or b"") == b"abcde"
    expect_abort(MessageAssembler(strict_even_fragments=True), stream, 6)


def test_caps_refuse_early() -> None:
    assembler = MessageAssembler(max_command_length=len(ACTION_CMD) - 1)
    with pytest.raises(MessageTooLargeError) as info:
        assembler.feed_pdv(1, 0x03, ACTION_CMD)
    assert (info.value.abort_source, info.value.limit) == (2, len(ACTION_CMD) - 1)
    assembler = MessageAssembler(max_dataset_length=1000)
    assembler.feed_pdv(1, 0x03, ACTION_CMD)
    assembler.feed_pdv(1, 0x00, b"x" * 600)
    with pytest.raises(MessageTooLargeError):
        assembler.feed_pdv(1, 0x00, b"x" * 402)
    # Exactly at the cap is fine.
    assembler = MessageAssembler(max_dataset_length=1000)
    assembler.feed_pdv(1, 0x03, ACTION_CMD)
    result = assembler.feed_pdv(1, 0x02, b"x" * 1000)
    assert result is not None


def test_reserved_control_bits_are_ignored() -> None:
    assembler = MessageAssembler()
    assert assembler.feed_pdv(1, 0xFC | 0x01, ACTION_CMD[:20]) is None
    assert assembler.feed_pdv(1, 0xF0 | 0x03, ACTION_CMD[20:]) is None
    result = assembler.feed_pdv(1, 0x80 | 0x02, b"ok")
    assert result is not None and result.message == ACTION


def test_get_and_set_interplay() -> None:
    get = example_message(NGetRQ)
    stream = encode_message(1, encode_command(get, has_dataset=False), None, 64)
    set_ = example_message(NSetRQ)
    stream += encode_message(1, encode_command(set_, has_dataset=True), b"\x00" * 8, 64)
    assert [r.message for r in reassemble(stream)] == [get, set_]


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 3, 5]), st.integers(0, 255), st.binary(max_size=40)),
        max_size=12,
    )
)
def test_fuzz_assembler_raises_only_library_errors(pdvs: list[tuple[int, int, bytes]]) -> None:
    assembler = MessageAssembler(max_command_length=200, max_dataset_length=100,
                                 accepted_context_ids=[1, 3])  # fmt: skip
    for context_id, control, data in pdvs:
        try:
            result = assembler.feed_pdv(context_id, control, data)
        except AiodimseError:
            continue
        if result is not None:
            assert (result.message is None) != (result.error is None)


@settings(max_examples=examples(100), deadline=None)
@given(message=all_messages, data=st.data())
def test_fuzz_mutated_streams(message, data) -> None:  # type: ignore[no-untyped-def]
    command = encode_command(message, has_dataset=message.dataset_allowed)
    dataset = b"\x00" * 10 if message.dataset_allowed else None
    stream = bytearray(encode_message(1, command, dataset, 32))
    pdvs = [pdv for _l, group in split_pdus(bytes(stream)) for pdv in group]
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(pdvs) - 1))
        ctx, control, fragment = pdvs[index]
        if fragment:
            mutated = bytearray(fragment)
            mutated[data.draw(st.integers(0, len(fragment) - 1))] ^= data.draw(st.integers(1, 255))
            fragment = bytes(mutated)
        pdvs[index] = (ctx, control, fragment)
    assembler = MessageAssembler()
    for pdv in pdvs:
        try:
            assembler.feed_pdv(*pdv)
        except AiodimseError:
            break
