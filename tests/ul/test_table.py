"""Table 9-10 as data: its shape, and a diff against pynetdicom's independent copy."""

from __future__ import annotations

from aiodimse.ul import TRANSITIONS, Action, Event, State
from aiodimse.ul.actions import ACTIONS

CONNECTED = set(State) - {State.STA1, State.STA4}
PDU_EVENTS = {
    Event.EVT3,
    Event.EVT4,
    Event.EVT6,
    Event.EVT10,
    Event.EVT12,
    Event.EVT13,
    Event.EVT16,
    Event.EVT19,
}


def test_cell_count_and_types() -> None:
    assert len(TRANSITIONS) == 123
    for (state, event), action in TRANSITIONS.items():
        assert isinstance(state, State)
        assert isinstance(event, Event)
        assert isinstance(action, Action)


def test_every_pdu_event_has_a_cell_in_every_connected_state() -> None:
    for state in CONNECTED:
        for event in PDU_EVENTS | {Event.EVT17}:
            assert (state, event) in TRANSITIONS, (state, event)


def test_no_pdu_cells_without_a_connection() -> None:
    for state in (State.STA1, State.STA4):
        for event in PDU_EVENTS:
            assert (state, event) not in TRANSITIONS


def test_artim_only_in_sta2_and_sta13() -> None:
    states = {s for (s, e) in TRANSITIONS if e is Event.EVT18}
    assert states == {State.STA2, State.STA13}


def test_every_action_is_used_and_implemented() -> None:
    assert set(TRANSITIONS.values()) == set(Action)
    assert set(ACTIONS) == set(Action)


def test_matches_pynetdicom_table() -> None:
    from pynetdicom import fsm
    theirs = dict(fsm.TRANSITION_TABLE)
    ours = {(f"Evt{e.value}", f"Sta{s.value}"): a.value for (s, e), a in TRANSITIONS.items()}
    assert ours == theirs


def test_descriptions() -> None:
    assert State.STA13.description.startswith("Awaiting Transport Connection Close")
    assert Event.EVT18.description.startswith("ARTIM timer expired")
    assert "Sta13" in Action.AA_8.description
    assert all(s.description for s in State)
    assert all(e.description for e in Event)
    assert all(a.description for a in Action)
    assert Event.EVT15.is_local_primitive
    assert not Event.EVT16.is_local_primitive


def test_actions_are_pure_and_the_data_path_matches_them() -> None:
    """DT-2/AR-6 run inline in receive_data; they must equal the action functions."""
    from aiodimse.ul import DataIndication
    from aiodimse.ul.actions import TimerOp
    from aiodimse.wire.codec import decode_pdu

    from .helpers import PDATA_BYTES, drive_to

    pdu = decode_pdu(PDATA_BYTES)
    for action, state in ((Action.DT_2, State.STA6), (Action.AR_6, State.STA7)):
        effects = ACTIONS[action](state, Event.EVT10, pdu, True)
        again = ACTIONS[action](state, Event.EVT10, pdu, True)
        assert effects == again
        assert effects.next_state is state
        assert effects.send is None
        assert effects.timer is TimerOp.KEEP
        assert not effects.close
        ul = drive_to(state, requestor=True)
        assert ul.receive_data(PDATA_BYTES, 1.0) == [effects.indication]
        assert effects.indication == DataIndication(pdu.pdvs)
        assert effects.indication.pdu == pdu
        assert ul.state is state


def test_effects_built_without_their_constructor_are_the_constructed_ones() -> None:
    """AE-6 and AE-7 build Effects by tuple.__new__: the fields must be in Effects' order."""
    from aiodimse.ul.actions import Effects, TimerOp
    from aiodimse.ul.events import AssociateIndication

    from .helpers import make_ac, make_rq

    rq, ac = make_rq(), make_ac()
    ae_6, ae_7 = ACTIONS[Action.AE_6], ACTIONS[Action.AE_7]
    made = ae_6(State.STA2, Event.EVT6, rq, False)
    assert made == Effects(State.STA3, timer=TimerOp.STOP, indication=AssociateIndication(rq))
    assert type(made) is Effects and made.indication == AssociateIndication(rq)
    made = ae_7(State.STA3, Event.EVT7, ac, False)
    assert made == Effects(State.STA6, send=ac)
    assert type(made) is Effects and made.timer is TimerOp.KEEP
