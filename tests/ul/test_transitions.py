"""Every (state, event) pair of PS3.8 Table 9-10, fired at a core walked into that state.

The expected outcome of each action is restated here from Tables 9-6 to 9-9 (next
state, PDU sent, indications, timer) rather than taken from the implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from aiodimse.errors import LocalProtocolError
from aiodimse.ul import (
    TRANSITIONS,
    Aborted,
    Action,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    CloseTransport,
    DataIndication,
    Event,
    ReleaseConfirmation,
    ReleaseIndication,
    State,
    ULEvent,
    UpperLayer,
)
from aiodimse.wire.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
)

from .helpers import (
    ABORT_BYTES,
    AC_BYTES,
    ACCEPTOR_STATES,
    CONFIG,
    GARBAGE_BYTES,
    PDATA_BYTES,
    RELEASE_RP_BYTES,
    RELEASE_RQ_BYTES,
    REQUESTOR_STATES,
    RJ_BYTES,
    RQ_BYTES,
    drive_to,
    make_ac,
    make_rj,
    make_rq,
    sent_pdus,
    split_pdus,
)

NOW = 100.0
PDU_EVENTS = {
    Event.EVT3: AC_BYTES,
    Event.EVT4: RJ_BYTES,
    Event.EVT6: RQ_BYTES,
    Event.EVT10: PDATA_BYTES,
    Event.EVT12: RELEASE_RQ_BYTES,
    Event.EVT13: RELEASE_RP_BYTES,
    Event.EVT16: ABORT_BYTES,
    Event.EVT19: GARBAGE_BYTES,
}


def fire(ul: UpperLayer, event: Event, now: float) -> list[ULEvent]:
    """Cause ``event`` with the real primitive or real PDU bytes."""
    if event in PDU_EVENTS:
        return ul.receive_data(PDU_EVENTS[event], now)
    calls: dict[Event, Callable[[], object]] = {
        Event.EVT1: lambda: ul.request_association(make_rq(), now),
        Event.EVT2: lambda: ul.transport_connected(now),
        Event.EVT5: lambda: ul.transport_indication(now),
        Event.EVT7: lambda: ul.accept(make_ac(), now),
        Event.EVT8: lambda: ul.reject(make_rj(), now),
        Event.EVT9: lambda: ul.send_pdata(PDATA_BYTES),
        Event.EVT11: lambda: ul.request_release(now),
        Event.EVT14: lambda: ul.respond_release(now),
        Event.EVT15: lambda: ul.abort(now),
        Event.EVT17: lambda: ul.connection_closed(now),
        Event.EVT18: lambda: ul.handle_timer(now),
    }
    result = calls[event]()
    return result if isinstance(result, list) else []


@dataclass
class Expect:
    state: State
    sent: list[type] = field(default_factory=list)
    events: list[ULEvent | type] = field(default_factory=list)
    deadline: str = "keep"  # keep | none | artim | associate | release


def expected(action: Action, state: State, event: Event, requestor: bool) -> Expect:
    """Tables 9-6 to 9-9, plus which indications this library issues."""
    reason = 1 if event is Event.EVT19 else 2  # unrecognized PDU / unexpected PDU
    provider_error = Aborted(source=2, reason=reason, cause="protocol-error")
    table: dict[Action, Callable[[], Expect]] = {
        Action.AE_1: lambda: Expect(State.STA4),
        Action.AE_2: lambda: Expect(State.STA5, [AAssociateRQ], deadline="associate"),
        Action.AE_3: lambda: Expect(State.STA6, events=[AssociateAccepted], deadline="none"),
        Action.AE_4: lambda: Expect(
            State.STA1, events=[AssociateRejected, CloseTransport()], deadline="none"
        ),
        Action.AE_5: lambda: Expect(State.STA2, deadline="artim"),
        Action.AE_6: lambda: Expect(State.STA3, events=[AssociateIndication], deadline="none"),
        Action.AE_7: lambda: Expect(State.STA6, [AAssociateAC]),
        Action.AE_8: lambda: Expect(State.STA13, [AAssociateRJ], deadline="artim"),
        Action.DT_1: lambda: Expect(State.STA6, [bytes]),
        Action.DT_2: lambda: Expect(State.STA6, events=[DataIndication]),
        Action.AR_1: lambda: Expect(State.STA7, [AReleaseRQ], deadline="release"),
        Action.AR_2: lambda: Expect(State.STA8, events=[ReleaseIndication(collision=False)]),
        Action.AR_3: lambda: Expect(
            State.STA1, events=[ReleaseConfirmation(), CloseTransport()], deadline="none"
        ),
        Action.AR_4: lambda: Expect(State.STA13, [AReleaseRP], deadline="artim"),
        Action.AR_5: lambda: Expect(State.STA1, deadline="none"),
        Action.AR_6: lambda: Expect(State.STA7, events=[DataIndication]),
        Action.AR_7: lambda: Expect(State.STA8, [bytes]),
        Action.AR_8: lambda: Expect(
            State.STA9 if requestor else State.STA10,
            events=[ReleaseIndication(collision=True)],
        ),
        Action.AR_9: lambda: Expect(State.STA11, [AReleaseRP]),
        Action.AR_10: lambda: Expect(State.STA12, events=[ReleaseConfirmation()], deadline="none"),
        Action.AA_1: lambda: (
            Expect(State.STA13, [AAbort], deadline="artim")
            if event is Event.EVT15
            else Expect(State.STA13, [AAbort], [provider_error], deadline="artim")
        ),
        Action.AA_2: lambda: Expect(
            State.STA1,
            events=[
                *(
                    [Aborted(source=2, reason=1, cause="peer")]
                    if (state, event) == (State.STA2, Event.EVT16)
                    else []
                ),
                *(
                    [Aborted(source=2, reason=0, cause="timeout")]
                    if (state, event) == (State.STA2, Event.EVT18)
                    else []
                ),
                CloseTransport(),
            ],
            deadline="none",
        ),
        Action.AA_3: lambda: Expect(
            State.STA1,
            events=[Aborted(source=2, reason=1, cause="peer"), CloseTransport()],
            deadline="none",
        ),
        Action.AA_4: lambda: Expect(
            State.STA1,
            events=[Aborted(source=2, reason=0, cause="connection-lost")],
            deadline="none",
        ),
        Action.AA_5: lambda: Expect(State.STA1, deadline="none"),
        Action.AA_6: lambda: Expect(State.STA13),
        Action.AA_7: lambda: Expect(State.STA13, [AAbort]),
        Action.AA_8: lambda: Expect(State.STA13, [AAbort], [provider_error], deadline="artim"),
    }
    return table[action]()


CASES = [
    pytest.param(
        state, event, requestor, id=f"{state.name}-{event.name}-{'rq' if requestor else 'ac'}"
    )
    for state in State
    for event in Event
    for requestor in (True, False)
    if state in (REQUESTOR_STATES if requestor else ACCEPTOR_STATES)
]


def _matches(actual: ULEvent, want: ULEvent | type) -> bool:
    return isinstance(actual, want) if isinstance(want, type) else actual == want


@pytest.mark.parametrize(("state", "event", "requestor"), CASES)
def test_state_event_pair(state: State, event: Event, requestor: bool) -> None:
    ul = drive_to(state, requestor=requestor)
    before_deadline = ul.next_deadline()
    now = NOW
    if event is Event.EVT18:
        # The timer can only fire at its deadline; ARTIM runs in Sta2/Sta13 only.
        now = before_deadline if before_deadline is not None else NOW
    action = TRANSITIONS.get((state, event))
    role_mismatch = (event is Event.EVT1 and not requestor) or (event is Event.EVT5 and requestor)

    if action is None or role_mismatch:
        _check_no_cell(ul, state, event, now, before_deadline)
        return

    want = expected(action, state, event, requestor)
    events = fire(ul, event, now)
    assert ul.state is want.state
    sent = sent_pdus(ul) if event is not Event.EVT9 else [b"pdata"]
    assert [type(p) for p in sent] == want.sent
    assert len(events) == len(want.events), events
    assert all(_matches(a, w) for a, w in zip(events, want.events, strict=True)), events
    if AAbort in want.sent:
        abort = sent[0]
        assert isinstance(abort, AAbort)
        if event is Event.EVT15:
            assert (abort.source, abort.reason) == (0, 0)
        elif event is Event.EVT19:
            assert (abort.source, abort.reason) == (2, 1)  # unrecognized PDU
        else:
            assert (abort.source, abort.reason) == (2, 2)  # unexpected PDU
    deadlines = {
        "keep": before_deadline,
        "none": None,
        "artim": now + CONFIG.artim_timeout,
        "associate": now + CONFIG.associate_timeout,
        "release": now + CONFIG.release_timeout,
    }
    assert ul.next_deadline() == deadlines[want.deadline]


def _check_no_cell(
    ul: UpperLayer, state: State, event: Event, now: float, before_deadline: float | None
) -> None:
    if event.is_local_primitive:
        with pytest.raises(LocalProtocolError):
            fire(ul, event, now)
        assert ul.state is state
        assert ul.data_to_send() == b""
        assert ul.next_deadline() == before_deadline
    elif event in PDU_EVENTS:
        # No transport connection in Sta1/Sta4: stray data is ignored once idle, and is
        # a usage error before transport_connected().
        assert state in (State.STA1, State.STA4)
        if state is State.STA1:
            assert fire(ul, event, now) == []
        else:
            with pytest.raises(LocalProtocolError):
                fire(ul, event, now)
        assert ul.state is state
        assert ul.data_to_send() == b""
    elif event is Event.EVT17:
        assert state is State.STA1
        assert ul.connection_closed(now) == []
    else:
        _check_timer_without_artim(ul, state, before_deadline)


def _check_timer_without_artim(ul: UpperLayer, state: State, deadline: float | None) -> None:
    """Evt18 has no cell outside Sta2/Sta13: only our own timeouts may run there."""
    assert ul.handle_timer(1e9 if deadline is None else deadline - 0.001) == []
    assert ul.state is state
    if deadline is None:
        assert state not in (State.STA5, State.STA7, State.STA9, State.STA10, State.STA11)
        return
    assert state in (State.STA5, State.STA7, State.STA9, State.STA10, State.STA11)
    events = ul.handle_timer(deadline)
    assert events == [Aborted(source=2, reason=0, cause="timeout"), CloseTransport()]
    assert ul.state is State.STA1
    assert ul.next_deadline() is None
    (abort,) = sent_pdus(ul)
    assert abort == AAbort(source=2, reason=0)


def test_cases_cover_every_pair() -> None:
    covered = {(s, e) for s, e, _ in (c.values for c in CASES)}
    assert covered == {(s, e) for s in State for e in Event}


def test_only_artim_deadlines_in_sta2_and_sta13() -> None:
    for state in (State.STA2, State.STA13):
        ul = drive_to(state, requestor=state is State.STA13)
        assert ul.next_deadline() == CONFIG.artim_timeout


def test_sent_bytes_are_whole_pdus() -> None:
    ul = drive_to(State.STA6, requestor=True)
    ul.send_pdata(PDATA_BYTES)
    ul.send_pdata(PDATA_BYTES)
    ul.request_release(0.0)
    pdus = split_pdus(ul.data_to_send())
    assert pdus == [PDATA_BYTES, PDATA_BYTES, RELEASE_RQ_BYTES]
    assert ul.data_to_send() == b""
