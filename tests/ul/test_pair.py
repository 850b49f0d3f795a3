"""Two in-memory cores, requestor and acceptor, exchanging bytes."""

from __future__ import annotations

import pytest

from aiodimse.ul import (
    Aborted,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    CloseTransport,
    DataIndication,
    RejectCause,
    ReleaseConfirmation,
    ReleaseIndication,
    State,
    ULConfig,
    ULEvent,
    UpperLayer,
    reject_for,
)
from aiodimse.wire import A_RELEASE_RQ_BYTES
from aiodimse.wire.codec import decode_pdu, encode_single_pdv
from aiodimse.wire.pdus import AAbort, AAssociateRJ

from .helpers import (
    CONFIG,
    PDATA_BYTES,
    RQ_BYTES,
    Pair,
    drive_to,
    make_ac,
    make_rq,
    sent_pdus,
)

CLOSE = CloseTransport()


def test_associate_accept() -> None:
    pair = Pair()
    pair.connect()
    assert pair.requestor.state is State.STA5
    assert pair.requestor.next_deadline() == CONFIG.associate_timeout
    assert pair.acceptor.next_deadline() == CONFIG.artim_timeout
    (indication,) = pair.to_acceptor()
    assert isinstance(indication, AssociateIndication)
    assert indication.pdu == make_rq()
    assert pair.acceptor.next_deadline() is None  # AE-6 stops ARTIM
    pair.acceptor.accept(make_ac(), 0.0)
    (accepted,) = pair.to_requestor()
    assert accepted == AssociateAccepted(make_ac())
    assert pair.requestor.state is State.STA6
    assert pair.acceptor.state is State.STA6
    assert pair.requestor.next_deadline() is None


@pytest.mark.parametrize(
    ("cause", "transient"),
    [
        (RejectCause.CALLED_AE_TITLE_NOT_RECOGNIZED, False),
        (RejectCause.CALLING_AE_TITLE_NOT_RECOGNIZED, False),
        (RejectCause.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED, False),
        (RejectCause.NO_REASON_GIVEN, True),
        (RejectCause.TEMPORARY_CONGESTION, True),
        (RejectCause.LOCAL_LIMIT_EXCEEDED, True),
        (RejectCause.ACSE_NO_REASON_GIVEN, False),
    ],
)
def test_associate_reject(cause: RejectCause, transient: bool) -> None:
    pair = Pair()
    pair.connect()
    pair.to_acceptor()
    rj = reject_for(cause, transient=transient)
    pair.acceptor.reject(rj, 0.0)
    assert pair.acceptor.state is State.STA13
    assert pair.acceptor.next_deadline() == CONFIG.artim_timeout
    events = pair.to_requestor()
    assert events == [AssociateRejected(rj), CLOSE]
    assert (rj.result, rj.source, rj.reason) == (2 if transient else 1, *cause.value)
    assert pair.requestor.state is State.STA1
    # The requestor closes; the acceptor sees the close in Sta13 (AR-5).
    assert pair.acceptor.connection_closed(1.0) == []
    assert pair.acceptor.state is State.STA1
    assert pair.acceptor.next_deadline() is None


def test_provider_rejects_unsupported_protocol_version() -> None:
    pair = Pair()
    pair.connect(make_rq(protocol_version=0x0002))
    assert pair.to_acceptor() == []
    assert pair.acceptor.state is State.STA13
    assert pair.acceptor.next_deadline() == CONFIG.artim_timeout
    events = pair.to_requestor()
    assert events == [AssociateRejected(AAssociateRJ(result=1, source=2, reason=2)), CLOSE]


def test_pdata_both_ways() -> None:
    pair = Pair()
    pair.associate()
    for i in range(3):
        data = encode_single_pdv(1, 0x03, bytes([i]) * 4)
        pair.requestor.send_pdata(data)
        (ind,) = pair.to_acceptor()
        assert isinstance(ind, DataIndication)
        assert bytes(ind.pdu.pdvs[0].data) == bytes([i]) * 4
        pair.acceptor.send_pdata(data)
        (ind,) = pair.to_requestor()
        assert isinstance(ind, DataIndication)
    # Several PDUs of one message received at once arrive as one indication.
    pair.requestor.send_pdata(PDATA_BYTES + PDATA_BYTES)
    (ind,) = pair.to_acceptor()
    assert isinstance(ind, DataIndication)
    assert ind.pdvs == decode_pdu(PDATA_BYTES).pdvs * 2  # type: ignore[union-attr]


@pytest.mark.parametrize("initiator", ["requestor", "acceptor"])
def test_release(initiator: str) -> None:
    pair = Pair()
    pair.associate()
    releaser, responder = (
        (pair.requestor, pair.acceptor)
        if initiator == "requestor"
        else (pair.acceptor, pair.requestor)
    )
    forward, backward = (
        (pair.to_acceptor, pair.to_requestor)
        if initiator == "requestor"
        else (pair.to_requestor, pair.to_acceptor)
    )
    releaser.request_release(0.0)
    assert releaser.state is State.STA7
    assert forward() == [ReleaseIndication(collision=False)]
    assert responder.state is State.STA8
    responder.respond_release(0.0)
    assert responder.state is State.STA13
    assert backward() == [ReleaseConfirmation(), CLOSE]
    assert releaser.state is State.STA1
    assert responder.connection_closed(0.5) == []
    assert responder.state is State.STA1


def test_release_collision_requestor_answers_first() -> None:
    pair = Pair()
    pair.associate()
    pair.requestor.request_release(0.0)
    pair.acceptor.request_release(0.0)
    assert pair.to_acceptor() == [ReleaseIndication(collision=True)]
    assert pair.to_requestor() == [ReleaseIndication(collision=True)]
    assert pair.requestor.state is State.STA9
    assert pair.acceptor.state is State.STA10
    # The acceptor may not answer yet (PS3.8 7.2.2): it waits for the requestor's RP.
    assert pair.acceptor.next_deadline() == CONFIG.release_timeout
    pair.requestor.respond_release(0.0)
    assert pair.requestor.state is State.STA11
    assert pair.to_acceptor() == [ReleaseConfirmation()]
    assert pair.acceptor.state is State.STA12
    pair.acceptor.respond_release(0.0)
    assert pair.acceptor.state is State.STA13
    assert pair.to_requestor() == [ReleaseConfirmation(), CLOSE]
    assert pair.requestor.state is State.STA1
    assert pair.acceptor.connection_closed(0.0) == []
    assert pair.acceptor.state is State.STA1


@pytest.mark.parametrize("releaser_is_requestor", [True, False])
def test_pdata_after_release_request(releaser_is_requestor: bool) -> None:
    """AR-7 on the responder, AR-6 on the releaser: responses may still flow."""
    pair = Pair()
    pair.associate()
    if releaser_is_requestor:
        releaser, responder = pair.requestor, pair.acceptor
        forward, backward = pair.to_acceptor, pair.to_requestor
    else:
        releaser, responder = pair.acceptor, pair.requestor
        forward, backward = pair.to_requestor, pair.to_acceptor
    releaser.request_release(0.0)
    forward()
    responder.send_pdata(PDATA_BYTES)
    responder.send_pdata(PDATA_BYTES)
    assert responder.state is State.STA8
    events = backward()
    assert [type(e) for e in events] == [DataIndication]
    assert len(events[0].pdvs) == 2  # type: ignore[union-attr]
    assert releaser.state is State.STA7
    responder.respond_release(0.0)
    assert backward() == [ReleaseConfirmation(), CLOSE]


def _pair_in(state: State, side: str) -> Pair:
    """A pair where ``side`` is in ``state`` and the other side is consistent with it."""
    pair = Pair()
    if state is State.STA4:
        pair.requestor.request_association(make_rq(), 0.0)
        return pair
    pair.connect()
    pair.to_acceptor()
    if state in (State.STA3, State.STA5):
        return pair  # requestor in Sta5, acceptor in Sta3
    pair.acceptor.accept(make_ac(), 0.0)
    pair.to_requestor()
    if state is State.STA6:
        return pair
    me = pair.requestor if side == "requestor" else pair.acceptor
    other = pair.acceptor if side == "requestor" else pair.requestor
    to_other = pair.to_acceptor if side == "requestor" else pair.to_requestor
    to_me = pair.to_requestor if side == "requestor" else pair.to_acceptor
    if state is State.STA7:
        me.request_release(0.0)
        to_other()
    elif state is State.STA8:
        other.request_release(0.0)
        to_me()
    else:  # collision states
        me.request_release(0.0)
        other.request_release(0.0)
        to_other()
        to_me()
        if state in (State.STA11, State.STA12):
            pair.requestor.respond_release(0.0)
            pair.to_acceptor()
    assert me.state is state
    return pair


ABORT_CASES = [
    (State.STA3, "acceptor"),
    (State.STA5, "requestor"),
    (State.STA6, "requestor"),
    (State.STA6, "acceptor"),
    (State.STA7, "requestor"),
    (State.STA7, "acceptor"),
    (State.STA8, "requestor"),
    (State.STA8, "acceptor"),
    (State.STA9, "requestor"),
    (State.STA10, "acceptor"),
    (State.STA11, "requestor"),
    (State.STA12, "acceptor"),
]


@pytest.mark.parametrize(("state", "side"), ABORT_CASES)
def test_abort_from_each_state(state: State, side: str) -> None:
    pair = _pair_in(state, side)
    me = pair.requestor if side == "requestor" else pair.acceptor
    to_other = pair.to_acceptor if side == "requestor" else pair.to_requestor
    other = pair.acceptor if side == "requestor" else pair.requestor
    assert me.abort(5.0) == []
    assert me.state is State.STA13
    assert me.next_deadline() == 5.0 + CONFIG.artim_timeout
    assert to_other() == [Aborted(source=0, reason=0, cause="peer"), CLOSE]
    assert other.state is State.STA1
    # The peer closes; the aborter's ARTIM is stopped (AR-5).
    assert me.connection_closed(6.0) == []
    assert me.state is State.STA1
    assert me.next_deadline() is None


def test_abort_while_connecting_closes() -> None:
    pair = _pair_in(State.STA4, "requestor")
    assert pair.requestor.abort(0.0) == [CLOSE]
    assert pair.requestor.state is State.STA1
    assert pair.requestor.data_to_send() == b""


def test_abort_with_provider_source_and_reason() -> None:
    pair = Pair()
    pair.associate()
    pair.requestor.abort(0.0, source=2, reason=6)
    assert pair.to_acceptor() == [Aborted(source=2, reason=6, cause="peer"), CLOSE]


def test_abort_wait_ends_with_artim() -> None:
    pair = Pair()
    pair.associate()
    pair.acceptor.abort(0.0)
    assert pair.acceptor.handle_timer(CONFIG.artim_timeout - 0.01) == []
    assert pair.acceptor.handle_timer(CONFIG.artim_timeout) == [CLOSE]
    assert pair.acceptor.state is State.STA1


def test_artim_when_peer_sends_nothing() -> None:
    acceptor = UpperLayer(requestor=False, config=CONFIG)
    acceptor.transport_indication(10.0)
    assert acceptor.next_deadline() == 10.0 + CONFIG.artim_timeout
    assert acceptor.handle_timer(39.9) == []
    assert acceptor.state is State.STA2
    assert acceptor.handle_timer(40.0) == [Aborted(source=2, reason=0, cause="timeout"), CLOSE]
    assert acceptor.state is State.STA1
    assert acceptor.data_to_send() == b""
    assert acceptor.connection_closed(40.1) == []


def test_associate_timeout() -> None:
    pair = Pair()
    pair.connect()
    pair.to_acceptor()  # the acceptor never answers
    deadline = pair.requestor.next_deadline()
    assert deadline == CONFIG.associate_timeout
    assert pair.requestor.handle_timer(deadline - 1) == []
    events = pair.requestor.handle_timer(deadline)
    assert events == [Aborted(source=2, reason=0, cause="timeout"), CLOSE]
    assert pair.requestor.state is State.STA1
    assert pair.to_acceptor() == [Aborted(source=2, reason=0, cause="peer"), CLOSE]


def test_release_timeout() -> None:
    pair = Pair()
    pair.associate()
    pair.requestor.request_release(3.0)
    pair.to_acceptor()  # the acceptor never answers
    assert pair.requestor.next_deadline() == 3.0 + CONFIG.release_timeout
    events = pair.requestor.handle_timer(3.0 + CONFIG.release_timeout)
    assert events == [Aborted(source=2, reason=0, cause="timeout"), CLOSE]
    assert sent_pdus(pair.requestor) == [AAbort(source=2, reason=0)]


def test_connection_lost() -> None:
    pair = Pair()
    pair.associate()
    assert pair.requestor.connection_closed(0.0) == [
        Aborted(source=2, reason=0, cause="connection-lost")
    ]
    assert pair.requestor.state is State.STA1
    assert pair.requestor.receive_data(PDATA_BYTES, 0.0) == []  # ignored once idle


def test_pdata_over_our_maximum_length_aborts() -> None:
    pair = Pair()
    pair.connect(make_rq(maximum_length=64))
    pair.to_acceptor()
    pair.acceptor.accept(make_ac(), 0.0)
    pair.to_requestor()
    pair.acceptor.send_pdata(encode_single_pdv(1, 0x02, b"\x00" * 58))  # PDU-length 64
    assert [type(e) for e in pair.to_requestor()] == [DataIndication]
    pair.acceptor.send_pdata(encode_single_pdv(1, 0x02, b"\x00" * 60))  # PDU-length 66
    events = pair.to_requestor()
    assert events == [Aborted(source=2, reason=6, cause="protocol-error")]
    assert pair.requestor.state is State.STA13
    assert pair.to_acceptor() == [Aborted(source=2, reason=6, cause="peer"), CLOSE]


def test_unlimited_maximum_length_uses_our_cap() -> None:
    acceptor = UpperLayer(requestor=False, config=ULConfig(max_pdata_cap=100))
    acceptor.transport_indication(0.0)
    acceptor.receive_data(RQ_BYTES, 0.0)
    acceptor.accept(make_ac(maximum_length=0), 0.0)
    assert acceptor.receive_data(encode_single_pdv(1, 2, b"\x00" * 94), 0.0)  # length 100
    events = acceptor.receive_data(encode_single_pdv(1, 2, b"\x00" * 96), 0.0)
    assert events == [Aborted(source=2, reason=6, cause="protocol-error")]


def test_data_after_protocol_error_is_dropped() -> None:
    pair = Pair()
    pair.associate()
    events = pair.acceptor.receive_data(b"\x04\x00\x00\x00\x00\x02\xff\xff", 0.0)
    assert [type(e) for e in events] == [Aborted]
    assert pair.acceptor.state is State.STA13
    assert pair.acceptor.receive_data(PDATA_BYTES, 0.0) == []
    assert pair.acceptor.state is State.STA13


def test_pdus_after_close_in_same_read_are_ignored() -> None:
    pair = Pair()
    pair.associate()
    pair.acceptor.abort(0.0)
    data = pair.acceptor.data_to_send() + PDATA_BYTES
    assert pair.requestor.receive_data(data, 0.0) == [
        Aborted(source=0, reason=0, cause="peer"),
        CLOSE,
    ]


def test_local_misuse_raises_without_change() -> None:
    from aiodimse.errors import LocalProtocolError

    acceptor = UpperLayer(requestor=False)
    with pytest.raises(LocalProtocolError):
        acceptor.request_association(make_rq(), 0.0)
    requestor = UpperLayer(requestor=True)
    with pytest.raises(LocalProtocolError):
        requestor.transport_indication(0.0)
    with pytest.raises(LocalProtocolError):
        requestor.send_pdata(PDATA_BYTES)
    pair = Pair()
    pair.associate()
    with pytest.raises(LocalProtocolError):
        pair.requestor.abort(0.0, source=1)
    with pytest.raises(LocalProtocolError):
        pair.requestor.abort(0.0, source=0, reason=3)
    assert pair.requestor.state is State.STA6
    assert pair.requestor.data_to_send() == b""


def _associated() -> UpperLayer:
    pair = Pair()
    pair.associate()
    return pair.acceptor


def _seen(events: list[ULEvent]) -> list[object]:
    return [(type(e), getattr(e, "fragments", e)) for e in events]


COMMAND = encode_single_pdv(1, 0x03, b"cmd!")
DATA = encode_single_pdv(1, 0x02, b"data")


def test_receive_pdata_gives_receive_datas_indication() -> None:
    """The adapter's data path: what receive_data's one DataIndication carries."""
    for chunk in (COMMAND, COMMAND + DATA):
        fast, slow = _associated(), _associated()
        fragments = fast.receive_pdata(chunk)
        (ind,) = slow.receive_data(chunk, 0.0)
        assert isinstance(ind, DataIndication) and fragments == ind.fragments
        assert fast.state is State.STA6 and fast.data_to_send() == b""


def test_receive_pdata_takes_nothing_it_does_not_read() -> None:
    for chunk in (COMMAND * 3, COMMAND[:-1], A_RELEASE_RQ_BYTES, COMMAND + A_RELEASE_RQ_BYTES,
                  b"\x04\x00\x00\x00\x00\x02\xff\xff"):
        ul, reference = _associated(), _associated()
        assert ul.receive_pdata(chunk) is None
        assert _seen(ul.receive_data(chunk, 0.0)) == _seen(reference.receive_data(chunk, 0.0))
        assert ul.state is reference.state
        assert ul.data_to_send() == reference.data_to_send()


def test_receive_pdata_only_in_a_data_state() -> None:
    assert drive_to(State.STA2, requestor=False).receive_pdata(COMMAND) is None
    assert drive_to(State.STA13, requestor=False).receive_pdata(COMMAND) is None
    assert drive_to(State.STA7, requestor=False).receive_pdata(COMMAND) is not None  # AR-6
