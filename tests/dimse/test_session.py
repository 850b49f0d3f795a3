"""The sans-IO DIMSE session, two of them wired back to back (no sockets, no loop)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiodimse.dimse import (
    FLOOD_FREE_FRAGMENTS,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    DIMSEMessage,
    FragmentFloodError,
    MessageTooLargeError,
    NActionRQ,
    NActionRSP,
    ReceivedMessage,
    encode_command,
)
from aiodimse.dimse.session import (
    REQUEST_COST,
    BadRequest,
    DIMSESession,
    ReleaseReady,
    ResponseReceived,
    SessionEvent,
    TimedOut,
    UnknownResponse,
    WindowFull,
    flood_average,
)
from aiodimse.errors import RemoteProtocolError

from ._helpers import split_pdus

VERIFICATION = "1.2.840.10008.1.1"
COMMITMENT = "1.2.840.10008.1.20.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"

Fragments = list[tuple[int, int, bytes]]


class Command:
    """A request's command set for any Message ID (what ``send_request`` takes)."""

    def __init__(self, build: Callable[[int], DIMSEMessage]) -> None:
        self.build = build

    def encode(self, message_id: int, has_dataset: bool) -> bytes:
        return encode_command(self.build(message_id), has_dataset=has_dataset)


ECHO = Command(lambda i: CEchoRQ(MessageID=i, AffectedSOPClassUID=VERIFICATION))
ACTION = Command(lambda i: NActionRQ(MessageID=i, RequestedSOPClassUID=COMMITMENT,
                                     RequestedSOPInstanceUID=COMMITMENT_INSTANCE,
                                     ActionTypeID=1))
DATA = b"\x08\x00\x16\x00\x04\x00\x00\x001.2\x00"


def fragments(pdus: bytes) -> Fragments:
    """The PDVs of back-to-back P-DATA-TF PDUs, as the upper layer hands them over."""
    return [pdv for _length, pdvs in split_pdus(pdus) for pdv in pdvs]


def session(**kw: int) -> DIMSESession:
    return DIMSESession(context_ids=(1, 3), **kw)


def echo_response(received: ReceivedMessage, status: int = 0) -> CEchoRSP:
    rq = received.message
    assert isinstance(rq, CEchoRQ)
    return CEchoRSP(MessageIDBeingRespondedTo=rq.MessageID, Status=status,
                    AffectedSOPClassUID=VERIFICATION)


def events_of(result: ReceivedMessage | Sequence[SessionEvent]) -> list[SessionEvent]:
    """``receive_fragments``' answer as a list (the usual request comes as itself)."""
    return [result] if type(result) is ReceivedMessage else list(result)


def requests(result: ReceivedMessage | Sequence[SessionEvent]) -> list[ReceivedMessage]:
    events = events_of(result)
    assert all(type(e) is ReceivedMessage for e in events), events
    return events  # type: ignore[return-value]


def message_id(received: ReceivedMessage) -> int:
    return received.message.MessageID  # type: ignore[union-attr]


# -- the usual exchange -------------------------------------------------------------


def test_a_request_and_its_response_travel_between_two_sessions() -> None:
    scu, scp = session(), session()
    msg_id, pdus = scu.send_request(1, ACTION, DATA, 0.0, 30.0)
    assert msg_id == 1 and scu.outstanding == 1
    [received] = requests(scp.receive_fragments(fragments(pdus), 0.0))
    assert isinstance(received.message, NActionRQ) and received.dataset == DATA
    assert scp.running == 1
    rsp = NActionRSP(MessageIDBeingRespondedTo=1, Status=0, ActionTypeID=1)
    answer = scp.respond(received, rsp, None)
    assert scp.running == 0
    [event] = scu.receive_fragments(fragments(answer), 1.0)
    assert type(event) is ResponseReceived and event.message_id == 1 and event.final
    assert event.received.message == rsp
    assert scu.outstanding == 0 and scu.next_deadline() is None


def test_each_fragment_fed_alone_gives_the_same_message() -> None:
    scu, scp = session(peer_max_pdu=64), session()
    _id, pdus = scu.send_request(1, ACTION, DATA * 8, 0.0, None)
    pieces = fragments(pdus)
    assert len(pieces) >= 4  # the 64-byte Maximum Length splits command and data set
    events: list[SessionEvent] = []
    held = []
    for piece in pieces:
        events.extend(events_of(scp.receive_fragments([piece], 0.0)))
        held.append(scp.held)
    assert held[0] == held[2] == 58  # a part in progress is charged (a decoded command not)
    [received] = requests(events)
    assert received.dataset == DATA * 8 and scp.held == 0


def test_message_ids_count_up_and_wrap_after_65535_skipping_outstanding_ones() -> None:
    scu = session(max_invoked=0)
    first, _ = scu.send_request(1, ECHO, None, 0.0, None)  # stays outstanding
    assert first == 1
    for expected in range(2, 0x10000):
        msg_id, _ = scu.send_request(1, ECHO, None, 0.0, None)
        assert msg_id == expected
        scu.forget(msg_id)
    wrapped, _ = scu.send_request(1, ECHO, None, 0.0, None)
    assert wrapped == 2  # 1 is still awaiting its response


def test_a_request_that_cannot_be_encoded_takes_no_message_id() -> None:
    scu = session()

    def broken(_i: int) -> DIMSEMessage:
        raise ValueError("invalid field")

    with pytest.raises(ValueError, match="invalid field"):
        scu.send_request(1, Command(broken), None, 0.0, 30.0)
    assert scu.outstanding == 0
    assert scu.send_request(1, ECHO, None, 0.0, 30.0)[0] == 1


# -- windows --------------------------------------------------------------------------


def test_the_invoked_window_bounds_our_outstanding_requests() -> None:
    scu, scp = session(max_invoked=2), session(max_performed=0)
    sent = [scu.send_request(1, ECHO, None, 0.0, None) for _ in range(2)]
    assert not scu.can_invoke
    with pytest.raises(WindowFull):
        scu.send_request(1, ECHO, None, 0.0, None)
    received = requests(scp.receive_fragments(fragments(sent[0][1]), 0.0))[0]
    scu.receive_fragments(fragments(scp.respond(received, echo_response(received), None)), 0.0)
    assert scu.can_invoke
    assert scu.send_request(1, ECHO, None, 0.0, None)[0] == 3


def test_zero_means_an_unlimited_window() -> None:
    scu, scp = session(max_invoked=0), session(max_performed=0)
    pdus = b"".join(scu.send_request(1, ECHO, None, 0.0, None)[1] for _ in range(300))
    assert len(requests(scp.receive_fragments(fragments(pdus), 0.0))) == 300
    assert scp.running == 300 and scp.queued == 0


def test_requests_past_the_performed_window_wait_in_order_and_are_charged() -> None:
    scu, scp = session(max_invoked=0), session(max_performed=2)
    pdus = b"".join(scu.send_request(1, ACTION, DATA, 0.0, None)[1] for _ in range(5))
    started = requests(scp.receive_fragments(fragments(pdus), 0.0))
    assert [message_id(r) for r in started] == [1, 2]
    assert scp.queued == 3 and scp.backlog
    assert scp.held == 3 * (REQUEST_COST + len(DATA))
    assert scp.follow_ups() == []  # nothing answered yet: the window is full
    order = [message_id(r) for r in started]
    running = list(started)
    while running:
        done = running.pop(0)
        scp.drop(done) if message_id(done) % 2 else scp.respond(
            done, NActionRSP(MessageIDBeingRespondedTo=message_id(done), Status=0), None)
        more = requests(scp.follow_ups())
        running.extend(more)
        order.extend(message_id(r) for r in more)
        assert scp.running == len(running) <= 2
    assert order == [1, 2, 3, 4, 5]
    assert scp.queued == 0 and scp.held == 0 and not scp.backlog


def test_the_usual_chunk_takes_the_same_path_as_the_general_one() -> None:
    scu = session(max_invoked=0)
    one, two = (session(max_performed=1) for _ in range(2))
    pdus = [scu.send_request(1, ACTION, DATA, 0.0, None)[1] for _ in range(2)]
    # one message per call (the short path) or both in one call (the general one)
    short = [e for p in pdus for e in events_of(one.receive_fragments(fragments(p), 0.0))]
    general = events_of(two.receive_fragments(fragments(b"".join(pdus)), 0.0))
    assert [message_id(r) for r in requests(short)] == [1]
    assert [message_id(r) for r in requests(general)] == [1]
    assert one.queued == two.queued == 1 and one.held == two.held


# -- release deferral -------------------------------------------------------------------


def test_release_is_answered_at_once_when_nothing_runs() -> None:
    scp = session()
    assert scp.receive_release() and not scp.release_deferred


def test_release_waits_for_running_and_queued_requests() -> None:
    scu, scp = session(max_invoked=0), session(max_performed=1)
    pdus = b"".join(scu.send_request(1, ECHO, None, 0.0, None)[1] for _ in range(2))
    [first] = requests(scp.receive_fragments(fragments(pdus), 0.0))
    assert not scp.receive_release() and scp.release_deferred
    scp.respond(first, echo_response(first), None)
    [second] = requests(scp.follow_ups())  # the queued one first, no ReleaseReady yet
    assert scp.follow_ups() == []
    scp.respond(second, echo_response(second), None)
    assert scp.follow_ups() == [ReleaseReady()]
    assert not scp.release_deferred and not scp.backlog and scp.follow_ups() == []


# -- timeouts -----------------------------------------------------------------------------


def test_a_request_times_out_at_its_deadline_and_is_forgotten() -> None:
    scu, scp = session(max_invoked=0), session()
    scu.send_request(1, ECHO, None, 10.0, 5.0)
    _, late = scu.send_request(1, ECHO, None, 12.0, 5.0)
    assert scu.next_deadline() == 15.0
    assert scu.handle_timer(14.9) == []
    assert scu.handle_timer(15.0) == [TimedOut(message_id=1)]
    assert scu.next_deadline() == 17.0 and scu.outstanding == 1
    # its response, late, is a response to an unknown Message ID
    [received] = requests(scp.receive_fragments(fragments(late), 0.0))
    answer = scp.respond(received, echo_response(received), None)
    assert scu.handle_timer(20.0) == [TimedOut(message_id=2)]
    assert list(scu.receive_fragments(fragments(answer), 20.0)) == [
        UnknownResponse(message_id=2)]


def test_no_timeout_means_no_deadline() -> None:
    scu = session()
    scu.send_request(1, ECHO, None, 0.0, None)
    assert scu.next_deadline() is None and scu.handle_timer(1e9) == []


def test_a_pending_response_keeps_the_request_and_restarts_its_timeout() -> None:
    scu, scp = session(), session()
    _, pdus = scu.send_request(1, ACTION, None, 0.0, 5.0)
    [received] = requests(scp.receive_fragments(fragments(pdus), 0.0))
    pending = scp.encode(1, NActionRSP(MessageIDBeingRespondedTo=1, Status=0xFF00), None)
    [event] = scu.receive_fragments(fragments(pending), 4.0)
    assert type(event) is ResponseReceived and not event.final
    assert scu.outstanding == 1 and scu.next_deadline() == 9.0
    final = scp.respond(received, NActionRSP(MessageIDBeingRespondedTo=1, Status=0), None)
    [event] = scu.receive_fragments(fragments(final), 8.0)
    assert type(event) is ResponseReceived and event.final and scu.outstanding == 0


# -- what a peer may get wrong ------------------------------------------------------------


def test_a_response_to_an_id_never_sent_is_reported_and_ignored() -> None:
    scu, scp = session(), session()
    stray = scp.encode(1, CEchoRSP(MessageIDBeingRespondedTo=99, Status=0), None)
    assert list(scu.receive_fragments(fragments(stray), 0.0)) == [
        UnknownResponse(message_id=99)]
    assert scu.outstanding == 0 and scu.send_request(1, ECHO, None, 0.0, None)[0] == 1


def test_c_cancel_is_reported_at_once_past_the_performed_window() -> None:
    scp = session()  # performed window 1
    scu = session()
    _, find = scu.send_request(1, ECHO, None, 0.0, None)
    [_running] = scp.receive_fragments(fragments(find), 0.0)  # holds the window
    cancel = scp.encode(1, CCancelRQ(MessageIDBeingRespondedTo=1), None)
    [event] = scp.receive_fragments(fragments(cancel), 0.0)  # not queued behind it
    assert type(event) is ReceivedMessage and type(event.message) is CCancelRQ
    assert scp.running == 2 and scp.queued == 0
    scp.drop(event)  # it has no response: dropped once taken
    assert scp.running == 1


def test_a_request_with_an_invalid_instance_uid_is_a_bad_request_with_its_status() -> None:
    scu, scp = session(), session()
    bad = Command(lambda i: NActionRQ(MessageID=i, RequestedSOPClassUID=COMMITMENT,
                                      RequestedSOPInstanceUID="1.02", ActionTypeID=1))
    _, pdus = scu.send_request(3, bad, DATA, 0.0, None)
    [event] = scp.receive_fragments(fragments(pdus), 0.0)
    assert type(event) is BadRequest
    assert (event.context_id, event.message_id, event.command_field, event.status) == (
        3, 1, 0x0130, 0x0117)
    assert scp.running == 0  # not counted: answered at once, no handler


def test_an_undecodable_command_without_a_message_id_raises_the_abort() -> None:
    scp = session()
    garbage = (1, 0x03, b"\x00\x00\x00\x00\x04\x00\x00\x00\xff\xff\xff\xff")
    with pytest.raises(RemoteProtocolError) as caught:
        scp.receive_fragments([garbage], 0.0)
    assert (caught.value.abort_source, caught.value.abort_reason) == (2, 0)


def test_fragments_of_a_context_not_accepted_raise() -> None:
    scu, scp = session(), DIMSESession(context_ids=(3,))
    _, pdus = scu.send_request(1, ECHO, None, 0.0, None)
    with pytest.raises(RemoteProtocolError):
        scp.receive_fragments(fragments(pdus), 0.0)


def test_a_flood_of_tiny_fragments_is_refused() -> None:
    scp = DIMSESession(context_ids=(1,), min_fragment_average=flood_average(16384))
    command = fragments(session().send_request(1, ACTION, b"", 0.0, None)[1])[0]
    scp.receive_fragments([command], 0.0)
    with pytest.raises(FragmentFloodError):
        for _ in range(FLOOD_FREE_FRAGMENTS + 2):
            scp.receive_fragments([(1, 0x00, b"\x00\x00")] * 64, 0.0)


def test_a_data_set_past_its_cap_is_refused_before_it_is_kept() -> None:
    scp = DIMSESession(context_ids=(1,), max_dataset_length=1000)
    scu = session(peer_max_pdu=256)
    _, pdus = scu.send_request(1, ACTION, bytes(2000), 0.0, None)
    with pytest.raises(MessageTooLargeError):
        for piece in fragments(pdus):
            scp.receive_fragments([piece], 0.0)
            assert scp.held <= 1000


@given(st.lists(st.integers(1, 4), min_size=1, max_size=12), st.integers(0, 3))
def test_every_request_is_started_once_in_order(bursts: list[int], window: int) -> None:
    """However requests arrive and are answered, each starts once, in order, within
    the window, and a release asked for with the last burst waits for all of them."""
    scu, scp = session(max_invoked=0), session(max_performed=window)
    answered: list[int] = []
    running: list[ReceivedMessage] = []
    ready = 0
    for i, burst in enumerate(bursts):
        last = i == len(bursts) - 1
        pdus = b"".join(scu.send_request(1, ECHO, None, 0.0, None)[1] for _ in range(burst))
        running += requests(scp.receive_fragments(fragments(pdus), 0.0))
        if last:
            assert not scp.receive_release()  # something runs
        while running and (last or len(running) > 1):  # one left running between bursts
            done = running.pop(0)
            answered.append(message_id(done))
            scp.respond(done, echo_response(done), None)
            for event in scp.follow_ups():
                if type(event) is ReleaseReady:
                    ready += 1
                else:
                    running += requests([event])
            assert not window or scp.running <= window
    assert answered == list(range(1, sum(bursts) + 1))
    assert ready == 1
    assert scp.running == scp.queued == scp.held == 0


# -- response reuse ------------------------------------------------------------------------


def test_a_bare_status_response_is_reused_with_the_new_message_id() -> None:
    scu, scp = session(max_invoked=0), session(max_performed=0)
    pdus = b"".join(scu.send_request(1, ECHO, None, 0.0, None)[1] for _ in range(2))
    first, second = requests(scp.receive_fragments(fragments(pdus), 0.0))
    assert scp.respond_reused(first, 0) is None  # nothing remembered yet
    assert scp.running == 2
    long = scp.respond(first, echo_response(first), None, 0)
    reused = scp.respond_reused(second, 0)
    assert reused is not None and scp.running == 0
    assert reused == scp.encode(1, echo_response(second), None) != long
