"""Hostile fragmentation: every kept fragment is charged its cost; floods are aborted.

A peer that splits a message into empty or tiny PDVs makes the reassembler keep one
Python object per fragment (~190 bytes) for a few bytes of wire. These tests feed
the assembler directly, as a peer would, and count what it keeps.
"""

from __future__ import annotations

import tracemalloc

import pytest

from aiodimse.dimse import (
    FRAGMENT_COST,
    FragmentFloodError,
    MessageAssembler,
    MessageTooLargeError,
    NActionRQ,
    encode_command,
)
from aiodimse.errors import RemoteProtocolError

from ._helpers import example_message

ACTION_CMD = encode_command(example_message(NActionRQ), has_dataset=True)
FLOOD = 200_000  # fragments a hostile peer sends (1.2 MB of wire as 6-byte PDVs)


def _flood(assembler: MessageAssembler, control: int, data: bytes) -> int:
    """Feed up to FLOOD copies of one fragment; return how many were taken before the abort."""
    for taken in range(FLOOD):
        try:
            assembler.feed_pdv(1, control, memoryview(data))
        except RemoteProtocolError as exc:
            assert (exc.abort_source, exc.abort_reason) == (2, 0)
            return taken
    pytest.fail(f"{FLOOD} fragments of {len(data)} bytes taken without an abort")


@pytest.mark.parametrize("data", [b"", b"\x00\x00", b"\x00" * 16])
def test_a_flood_of_tiny_data_fragments_is_aborted_early(data: bytes) -> None:
    assembler = MessageAssembler(min_fragment_average=128)
    assert assembler.feed_pdv(1, 0x03, ACTION_CMD) is None
    taken = _flood(assembler, 0x00, data)
    assert taken <= 2 * 1024
    assert not assembler.in_progress  # reset: what was kept is released


def test_a_flood_of_empty_command_fragments_is_aborted() -> None:
    taken = _flood(MessageAssembler(), 0x01, b"")
    assert taken <= 64 * 1024 // FRAGMENT_COST + 1


def test_each_kept_fragment_is_charged_against_the_data_set_cap() -> None:
    # 100 fragments of 10 bytes hold 1,000 bytes of data but ~20 kB of objects.
    assembler = MessageAssembler(max_dataset_length=10_000)
    assembler.feed_pdv(1, 0x03, ACTION_CMD)
    with pytest.raises(MessageTooLargeError):
        for _ in range(100):
            assembler.feed_pdv(1, 0x00, memoryview(b"x" * 10))


def test_the_memory_a_flood_holds_is_bounded_by_the_cap() -> None:
    # Without the flood rule, the charge alone bounds what is kept: the cap.
    cap = 1 << 20
    assembler = MessageAssembler(max_dataset_length=cap)
    assembler.feed_pdv(1, 0x03, ACTION_CMD)
    chunk = bytes(4096)  # the views keep this chunk alive, whatever their number
    tracemalloc.start()
    try:
        with pytest.raises(MessageTooLargeError):
            for _ in range(FLOOD):
                assembler.feed_pdv(1, 0x00, memoryview(chunk)[:0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * cap


def test_flood_error_is_a_message_too_large_error_with_reason_0() -> None:
    assembler = MessageAssembler(min_fragment_average=64)
    assembler.feed_pdv(1, 0x03, ACTION_CMD)
    with pytest.raises(FragmentFloodError) as info:
        for _ in range(FLOOD):
            assembler.feed_pdv(1, 0x00, b"")
    assert isinstance(info.value, MessageTooLargeError)
    assert (info.value.abort_source, info.value.abort_reason) == (2, 0)


@pytest.mark.parametrize("fragment", [128, 4096, 16376])
def test_a_real_peer_filling_its_pdus_is_never_a_flood(fragment: int) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    assembler = MessageAssembler(max_dataset_length=4 << 20, min_fragment_average=128)
    assembler.feed_pdv(1, 0x03, ACTION_CMD)
    view = memoryview(data)
    received = None
    for start in range(0, len(data), fragment):
        last = start + fragment >= len(data)
        received = assembler.feed_pdv(1, 0x02 if last else 0x00, view[start : start + fragment])
    assert received is not None and bytes(received.dataset or b"") == data


def test_a_data_set_at_the_cap_in_one_fragment_is_still_accepted() -> None:
    assembler = MessageAssembler(max_dataset_length=1000, min_fragment_average=128)
    assembler.feed_pdv(1, 0x03, ACTION_CMD)
    assert assembler.feed_pdv(1, 0x02, b"x" * 1000) is not None
