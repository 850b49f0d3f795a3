"""Our own totals on time a peer can hold: association set-up, and one message.

PS3.8 leaves both to the implementation. A trickling peer sends a byte now and then:
no per-byte (idle) timeout ever fires, so these deadlines run from the start of the
set-up or of the message, whatever comes in between.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.ul import Aborted, CloseTransport, DataIndication, ULConfig, UpperLayer
from aiodimse.ul.states import State
from aiodimse.wire.codec import decode_pdu, encode_single_pdv
from aiodimse.wire.pdus import AAbort
from tests.examples import examples

from .helpers import RELEASE_RQ_BYTES, RQ_BYTES, drive_to, make_ac

TIMED = ULConfig(artim_timeout=30.0, associate_timeout=20.0, release_timeout=10.0,
                 setup_timeout=5.0, message_timeout=8.0)
TIMEOUT = [Aborted(source=2, reason=0, cause="timeout"), CloseTransport()]
COMMAND_PART = encode_single_pdv(1, 0x01, b"cmd!")  # a command fragment, not its last
COMMAND_END = encode_single_pdv(1, 0x03, b"end!")
DATA_END = encode_single_pdv(1, 0x02, b"data")


def _acceptor(now: float = 0.0) -> UpperLayer:
    ul = UpperLayer(requestor=False, config=TIMED)
    ul.transport_indication(now)
    return ul


def _abort_sent(ul: UpperLayer) -> bool:
    out = ul.data_to_send()
    return bool(out) and isinstance(decode_pdu(out), AAbort)


def test_setup_deadline_bounds_a_trickled_associate_rq() -> None:
    ul = _acceptor(10.0)
    assert ul.next_deadline() == 15.0  # the set-up deadline, before ARTIM's 40.0
    for i, byte in enumerate(RQ_BYTES[:-1]):  # a byte every 1/1000 s: never idle
        assert ul.receive_data(bytes([byte]), 10.0 + i / 1000) == []
    assert ul.next_deadline() == 15.0  # bytes do not push it back
    assert ul.handle_timer(14.99) == []
    assert ul.handle_timer(15.0) == TIMEOUT
    assert ul.state is State.STA1
    assert ul.data_to_send() == b""  # Sta2: no association to abort, just close


def test_setup_deadline_covers_the_decision_and_ends_with_the_answer() -> None:
    ul = _acceptor()
    assert ul.receive_data(RQ_BYTES, 1.0)  # Sta3: ARTIM stopped, set-up deadline kept
    assert ul.state is State.STA3
    assert ul.next_deadline() == 5.0
    assert ul.handle_timer(5.0) == TIMEOUT
    assert _abort_sent(ul)

    answered = _acceptor()
    answered.receive_data(RQ_BYTES, 1.0)
    answered.accept(make_ac(), 2.0)
    assert answered.next_deadline() is None  # established: no set-up deadline
    assert answered.handle_timer(100.0) == []
    assert answered.state is State.STA6


def test_without_the_settings_only_artim_runs() -> None:
    ul = UpperLayer(requestor=False, config=ULConfig(artim_timeout=30.0))
    ul.transport_indication(0.0)
    assert ul.next_deadline() == 30.0
    ul.receive_data(RQ_BYTES[:10], 1.0)
    assert ul.next_deadline() == 30.0
    with pytest.raises(ValueError):
        ULConfig(message_timeout=0.0)


def test_message_deadline_runs_from_the_first_byte_of_a_trickled_message() -> None:
    ul = drive_to(State.STA6, requestor=False, config=TIMED)
    assert ul.next_deadline() is None
    message = COMMAND_PART + COMMAND_END
    for i, byte in enumerate(message[:-1]):
        events = ul.receive_data(bytes([byte]), 100.0 + i * 0.05)
        assert all(isinstance(e, DataIndication) for e in events)
        assert ul.next_deadline() == 108.0  # from the first byte, not the last
    assert ul.handle_timer(107.9) == []
    assert ul.handle_timer(108.0) == TIMEOUT
    assert _abort_sent(ul)
    assert ul.state is State.STA1


def test_message_deadline_ends_with_the_last_fragment() -> None:
    ul = drive_to(State.STA6, requestor=False, config=TIMED)
    ul.receive_data(COMMAND_PART[:3], 1.0)
    assert ul.next_deadline() == 9.0
    ul.receive_data(COMMAND_PART[3:], 2.0)  # a whole PDV, not the last: still under way
    assert ul.next_deadline() == 9.0
    (ind,) = ul.receive_data(COMMAND_END, 3.0)
    assert isinstance(ind, DataIndication)
    assert ul.next_deadline() is None
    # a new message starts its own period, even in the chunk that ended the last one
    ul.receive_data(DATA_END + COMMAND_PART[:2], 50.0)
    assert ul.next_deadline() == 58.0


def test_message_deadline_on_the_fast_path() -> None:
    ul = drive_to(State.STA6, requestor=False, config=TIMED)
    assert ul.receive_pdata(COMMAND_PART, 1.0) is not None  # whole PDU, message open
    assert ul.next_deadline() == 9.0
    assert ul.receive_pdata(COMMAND_PART, 2.0) is not None
    assert ul.next_deadline() == 9.0
    assert ul.receive_pdata(COMMAND_END, 3.0) is not None
    assert ul.next_deadline() is None
    assert ul.receive_pdata(COMMAND_END + DATA_END, 4.0) is not None  # the usual message
    assert ul.next_deadline() is None


def test_message_deadline_survives_our_release_request_and_ends_with_the_phase() -> None:
    ul = drive_to(State.STA6, requestor=False, config=TIMED)
    ul.receive_data(COMMAND_PART, 1.0)
    ul.request_release(2.0)  # Sta7: the peer may still send P-DATA (AR-6)
    assert ul.state is State.STA7
    assert ul.next_deadline() == 9.0  # the message's, before the release timeout (12.0)
    ul.receive_data(RELEASE_RQ_BYTES, 3.0)  # collision: Sta10, no P-DATA any more
    assert ul.next_deadline() == 12.0  # the release timeout alone


_PIECES = [COMMAND_PART, COMMAND_END, DATA_END]


@settings(max_examples=examples(200), deadline=None)
@given(
    pieces=st.lists(st.sampled_from(range(3)), min_size=1, max_size=8),
    cuts=st.lists(st.integers(1, 40), max_size=12),
)
def test_deadline_is_set_exactly_while_a_message_is_under_way(
    pieces: list[int], cuts: list[int]
) -> None:
    """However the stream is cut, and by whichever path the adapter feeds it."""
    stream = b"".join(_PIECES[i] for i in pieces)
    ul = drive_to(State.STA6, requestor=False, config=TIMED)
    pos, now = 0, 0.0
    fed_at: list[float] = []  # per byte: when it was fed
    for cut in [*cuts, len(stream)]:
        chunk, pos = stream[pos:pos + cut], pos + cut
        if not chunk:
            break
        now += 1.0
        fed_at += [now] * len(chunk)
        # what the adapter does: the data path first, else the general one
        if ul.receive_pdata(chunk, now) is None:
            ul.receive_data(chunk, now)
        done = stream[:pos]
        # the message under way starts after the last PDU whose PDV is a last fragment
        boundary, start = 0, 0
        while boundary + 6 <= len(done):
            size = 6 + int.from_bytes(done[boundary + 2:boundary + 6], "big")
            if boundary + size > len(done):
                break
            boundary += size
            if done[boundary - size + 11] & 2:
                start = boundary
        if start == len(done):
            assert ul.next_deadline() is None
        else:
            assert ul.next_deadline() == fed_at[start] + 8.0
    assert ul.state is State.STA6
