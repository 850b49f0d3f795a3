"""States, events and actions of the PS3.8 upper-layer state machine (9.2, Tables 9-1 to 9-9).

``State`` and ``Event`` are ``IntEnum``s numbered as in the standard (``State.STA6 == 6``),
so that the transition lookup hashes plain ints. ``Action`` values are the standard's
names (``"AE-1"``). Each member has a ``description`` quoting the standard's meaning.
"""

from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["State", "Event", "Action"]


class State(IntEnum):
    """PS3.8 Table 9-1 (9.2.1): the 13 states of an association's upper layer."""

    STA1 = 1
    STA2 = 2
    STA3 = 3
    STA4 = 4
    STA5 = 5
    STA6 = 6
    STA7 = 7
    STA8 = 8
    STA9 = 9
    STA10 = 10
    STA11 = 11
    STA12 = 12
    STA13 = 13

    @property
    def description(self) -> str:
        """The standard's definition of this state."""
        return _STATE_DESCRIPTIONS[self]


class Event(IntEnum):
    """PS3.8 Table 9-10 rows (9.2.3): what can happen to an association."""

    EVT1 = 1
    EVT2 = 2
    EVT3 = 3
    EVT4 = 4
    EVT5 = 5
    EVT6 = 6
    EVT7 = 7
    EVT8 = 8
    EVT9 = 9
    EVT10 = 10
    EVT11 = 11
    EVT12 = 12
    EVT13 = 13
    EVT14 = 14
    EVT15 = 15
    EVT16 = 16
    EVT17 = 17
    EVT18 = 18
    EVT19 = 19

    @property
    def description(self) -> str:
        """The standard's definition of this event."""
        return _EVENT_DESCRIPTIONS[self]

    @property
    def is_local_primitive(self) -> bool:
        """True for requests from the local user (a missing cell is then a usage error)."""
        return self in _LOCAL_PRIMITIVES


class Action(Enum):
    """PS3.8 Tables 9-6 to 9-9: what the upper layer does on a transition."""

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"

    @property
    def description(self) -> str:
        """The standard's definition of this action, with its next state."""
        return _ACTION_DESCRIPTIONS[self]


# The members as module constants (``from .states import STA6``): on Python 3.11 a
# member read off its class goes through EnumType.__getattr__'s slow hook (~100 ns a
# read), a module global costs a tenth of that. The hot paths use these.
STA1 = State.STA1
STA2 = State.STA2
STA3 = State.STA3
STA4 = State.STA4
STA5 = State.STA5
STA6 = State.STA6
STA7 = State.STA7
STA8 = State.STA8
STA9 = State.STA9
STA10 = State.STA10
STA11 = State.STA11
STA12 = State.STA12
STA13 = State.STA13
EVT1 = Event.EVT1
EVT2 = Event.EVT2
EVT3 = Event.EVT3
EVT4 = Event.EVT4
EVT5 = Event.EVT5
EVT6 = Event.EVT6
EVT7 = Event.EVT7
EVT8 = Event.EVT8
EVT9 = Event.EVT9
EVT10 = Event.EVT10
EVT11 = Event.EVT11
EVT12 = Event.EVT12
EVT13 = Event.EVT13
EVT14 = Event.EVT14
EVT15 = Event.EVT15
EVT16 = Event.EVT16
EVT17 = Event.EVT17
EVT18 = Event.EVT18
EVT19 = Event.EVT19


_STATE_DESCRIPTIONS: dict[State, str] = {
    State.STA1: "Idle",
    State.STA2: "Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)",
    State.STA3: "Awaiting local A-ASSOCIATE response primitive (from local user)",
    State.STA4: "Awaiting transport connection opening to complete (from local transport service)",
    State.STA5: "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
    State.STA6: "Association established and ready for data transfer",
    State.STA7: "Awaiting A-RELEASE-RP PDU",
    State.STA8: "Awaiting local A-RELEASE response primitive (from local user)",
    State.STA9: "Release collision requestor side; awaiting A-RELEASE response (from local user)",
    State.STA10: "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
    State.STA11: "Release collision requestor side; awaiting A-RELEASE-RP PDU",
    State.STA12: "Release collision acceptor side; awaiting A-RELEASE response primitive "
    "(from local user)",
    State.STA13: "Awaiting Transport Connection Close Indication (Association no longer exists)",
}

_EVENT_DESCRIPTIONS: dict[Event, str] = {
    Event.EVT1: "A-ASSOCIATE Request (local user)",
    Event.EVT2: "Transport Connect Confirmation (local transport service)",
    Event.EVT3: "A-ASSOCIATE-AC PDU (received on transport connection)",
    Event.EVT4: "A-ASSOCIATE-RJ PDU (received on transport connection)",
    Event.EVT5: "Transport Connection Indication (local transport service)",
    Event.EVT6: "A-ASSOCIATE-RQ PDU (received on transport connection)",
    Event.EVT7: "A-ASSOCIATE response primitive (accept)",
    Event.EVT8: "A-ASSOCIATE response primitive (reject)",
    Event.EVT9: "P-DATA request primitive",
    Event.EVT10: "P-DATA-TF PDU",
    Event.EVT11: "A-RELEASE Request primitive",
    Event.EVT12: "A-RELEASE-RQ PDU (received on open transport connection)",
    Event.EVT13: "A-RELEASE-RP PDU (received on transport connection)",
    Event.EVT14: "A-RELEASE Response primitive",
    Event.EVT15: "A-ABORT Request primitive",
    Event.EVT16: "A-ABORT PDU (received on open transport connection)",
    Event.EVT17: "Transport connection closed indication (local transport service)",
    Event.EVT18: "ARTIM timer expired (Association reject/release timer)",
    Event.EVT19: "Unrecognized or invalid PDU received",
}

_LOCAL_PRIMITIVES = frozenset(
    {
        Event.EVT1,
        Event.EVT2,
        Event.EVT5,
        Event.EVT7,
        Event.EVT8,
        Event.EVT9,
        Event.EVT11,
        Event.EVT14,
        Event.EVT15,
    }
)

_ACTION_DESCRIPTIONS: dict[Action, str] = {
    Action.AE_1: "Issue TRANSPORT CONNECT request primitive to local transport service. "
    "Next state is Sta4",
    Action.AE_2: "Send A-ASSOCIATE-RQ-PDU. Next state is Sta5",
    Action.AE_3: "Issue A-ASSOCIATE confirmation (accept) primitive. Next state is Sta6",
    Action.AE_4: "Issue A-ASSOCIATE confirmation (reject) primitive and close transport "
    "connection. Next state is Sta1",
    Action.AE_5: "Issue Transport connection response primitive; start ARTIM timer. "
    "Next state is Sta2",
    Action.AE_6: "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider: issue "
    "A-ASSOCIATE indication primitive, next state is Sta3; otherwise: issue A-ASSOCIATE-RJ-PDU "
    "and start ARTIM timer, next state is Sta13",
    Action.AE_7: "Send A-ASSOCIATE-AC PDU. Next state is Sta6",
    Action.AE_8: "Send A-ASSOCIATE-RJ PDU and start ARTIM timer. Next state is Sta13",
    Action.DT_1: "Send P-DATA-TF PDU. Next state is Sta6",
    Action.DT_2: "Send P-DATA indication primitive. Next state is Sta6",
    Action.AR_1: "Send A-RELEASE-RQ PDU. Next state is Sta7",
    Action.AR_2: "Issue A-RELEASE indication primitive. Next state is Sta8",
    Action.AR_3: "Issue A-RELEASE confirmation primitive, and close transport connection. "
    "Next state is Sta1",
    Action.AR_4: "Issue A-RELEASE-RP PDU and start ARTIM timer. Next state is Sta13",
    Action.AR_5: "Stop ARTIM timer. Next state is Sta1",
    Action.AR_6: "Issue P-DATA indication. Next state is Sta7",
    Action.AR_7: "Issue P-DATA-TF PDU. Next state is Sta8",
    Action.AR_8: "Issue A-RELEASE indication (release collision): if association-requestor, "
    "next state is Sta9; if not, next state is Sta10",
    Action.AR_9: "Send A-RELEASE-RP PDU. Next state is Sta11",
    Action.AR_10: "Issue A-RELEASE confirmation primitive. Next state is Sta12",
    Action.AA_1: "Send A-ABORT PDU (service-user source) and start (or restart if already "
    "started) ARTIM timer. Next state is Sta13",
    Action.AA_2: "Stop ARTIM timer if running. Close transport connection. Next state is Sta1",
    Action.AA_3: "If (service-user initiated abort): issue A-ABORT indication and close "
    "transport connection; otherwise (service-provider initiated abort): issue A-P-ABORT "
    "indication and close transport connection. Next state is Sta1",
    Action.AA_4: "Issue A-P-ABORT indication primitive. Next state is Sta1",
    Action.AA_5: "Stop ARTIM timer. Next state is Sta1",
    Action.AA_6: "Ignore PDU. Next state is Sta13",
    Action.AA_7: "Send A-ABORT PDU. Next state is Sta13",
    Action.AA_8: "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, "
    "and start ARTIM timer. Next state is Sta13",
}
