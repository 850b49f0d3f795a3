"""The actions of PS3.8 Tables 9-6 to 9-9 as pure functions returning ``Effects``.

An action never does I/O and never mutates anything: it looks at the current state, the
event, the event's payload and the association role, and says what should happen (PDU
to send, timer to start or stop, indication for the user, whether to close the
transport, next state). ``machine.UpperLayer`` applies the effects.

Payloads by event: Evt1/Evt6 ``AAssociateRQ``; Evt2 the ``AAssociateRQ`` to send; Evt3/
Evt7 ``AAssociateAC``; Evt4/Evt8 ``AAssociateRJ``; Evt9 ``bytes`` (encoded P-DATA-TF
PDUs); Evt10 ``PDataTF``; Evt12 ``AReleaseRQ``; Evt13 ``AReleaseRP``; Evt15 the
``AAbort`` the local user wants sent; Evt16 the received ``AAbort``; Evt19 the
``RemoteProtocolError``; otherwise None.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple, Union, cast

from aiodimse.errors import RemoteProtocolError
from aiodimse.wire.codec import A_RELEASE_RP_BYTES, A_RELEASE_RQ_BYTES
from aiodimse.wire.codes import (
    AbortReason,
    AbortSource,
    RejectReasonACSE,
    RejectResult,
    RejectSource,
)
from aiodimse.wire.pdus import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    PDataTF,
)

from .events import (
    Aborted,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    DataIndication,
    ReleaseConfirmation,
    ReleaseIndication,
    ULEvent,
)
from .states import (
    EVT15,
    EVT16,
    EVT18,
    STA1,
    STA2,
    STA3,
    STA4,
    STA5,
    STA6,
    STA7,
    STA8,
    STA9,
    STA10,
    STA11,
    STA12,
    STA13,
    Action,
    Event,
    State,
)

__all__ = [
    "TimerOp",
    "Effects",
    "Payload",
    "ActionFunction",
    "ACTIONS",
    "own_timeout",
]

Payload = Union[PDU, bytes, RemoteProtocolError, None]  # noqa: UP007 - runtime alias on 3.10


class TimerOp(IntEnum):
    """What to do with the core's single timer slot.

    Only one timer is ever needed at a time: ARTIM in Sta2/Sta13, our associate timeout
    in Sta5, our release timeout while waiting for A-RELEASE-RP.
    """

    KEEP = 0
    STOP = 1
    START_ARTIM = 2
    START_ASSOCIATE = 3
    START_RELEASE = 4


class Effects(NamedTuple):
    """The outcome of one action. A tuple: cheap to build on the data path."""

    next_state: State
    send: bytes | PDU | None = None
    timer: TimerOp = TimerOp.KEEP
    close: bool = False
    indication: ULEvent | None = None


ActionFunction = Callable[[State, Event, Payload, bool], Effects]

# Once per association, built without the Python-level __new__/__init__ that a
# NamedTuple and a frozen dataclass run (about 300 ns each): the fields in order.
_new_effects = tuple.__new__
_new = object.__new__
_set_indication_pdu = AssociateIndication.__dict__["pdu"].__set__

# TimerOp members as globals: see states.py on reading enum members.
_START_ARTIM = TimerOp.START_ARTIM
_START_ASSOCIATE = TimerOp.START_ASSOCIATE
_START_RELEASE = TimerOp.START_RELEASE
_TIMER_STOP = TimerOp.STOP
_KEEP = TimerOp.KEEP
_PROVIDER = int(AbortSource.SERVICE_PROVIDER)
_RELEASE_INDICATION = ReleaseIndication(collision=False)
_COLLISION_INDICATION = ReleaseIndication(collision=True)
_RELEASE_CONFIRMATION = ReleaseConfirmation()
_PROTOCOL_VERSION_REJECT = AAssociateRJ(
    result=RejectResult.PERMANENT,
    source=RejectSource.SERVICE_PROVIDER_ACSE,
    reason=RejectReasonACSE.PROTOCOL_VERSION_NOT_SUPPORTED,
)


def _error_abort(payload: Payload) -> AAbort:
    """The A-ABORT answering a bad PDU: the decoder's verdict, or "unexpected PDU"."""
    if isinstance(payload, RemoteProtocolError):
        return AAbort(source=payload.abort_source, reason=payload.abort_reason)
    return AAbort(source=_PROVIDER, reason=AbortReason.UNEXPECTED_PDU)


def _protocol_error(abort: AAbort) -> Aborted:
    return Aborted(source=abort.source, reason=abort.reason, cause="protocol-error")


def ae_1(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Issue TRANSPORT CONNECT (the adapter opens the connection itself)."""
    return _AE_1


def ae_2(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send A-ASSOCIATE-RQ; start our associate timeout."""
    return Effects(STA5, send=cast(AAssociateRQ, payload), timer=_START_ASSOCIATE)


def ae_3(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """A-ASSOCIATE confirmation (accept)."""
    indication = AssociateAccepted(cast(AAssociateAC, payload))
    return Effects(STA6, timer=_TIMER_STOP, indication=indication)


def ae_4(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """A-ASSOCIATE confirmation (reject), close the transport."""
    indication = AssociateRejected(cast(AAssociateRJ, payload))
    return Effects(STA1, timer=_TIMER_STOP, close=True, indication=indication)


def ae_5(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Transport connection accepted: start ARTIM while waiting for the RQ."""
    return _AE_5


def ae_6(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Stop ARTIM; indicate the request, or reject it if the provider cannot serve it.

    The only provider-level check is the protocol version (PS3.8 9.3.2: bit 0 must be
    set); everything else (application context, AE titles, contexts) is the user's call.
    """
    rq: AAssociateRQ = payload  # type: ignore[assignment]  # (no cast call per association)
    if not rq.protocol_version & 1:
        return Effects(STA13, send=_PROTOCOL_VERSION_REJECT, timer=_START_ARTIM)
    indication = _new(AssociateIndication)
    _set_indication_pdu(indication, rq)
    return _new_effects(Effects, (STA3, None, _TIMER_STOP, False, indication))


def ae_7(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send A-ASSOCIATE-AC."""
    return _new_effects(Effects, (STA6, payload, _KEEP, False, None))  # the AC


def ae_8(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send A-ASSOCIATE-RJ and start ARTIM."""
    return Effects(STA13, send=cast(AAssociateRJ, payload), timer=_START_ARTIM)


def dt_1(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send P-DATA-TF."""
    return Effects(STA6, send=cast(bytes, payload))


def dt_2(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """P-DATA indication."""
    return Effects(STA6, indication=DataIndication(cast(PDataTF, payload).pdvs))


def ar_1(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send A-RELEASE-RQ; start our release timeout."""
    return _AR_1


def ar_2(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """A-RELEASE indication."""
    return _AR_2


def ar_3(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """A-RELEASE confirmation, close the transport."""
    return _AR_3


def ar_4(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send A-RELEASE-RP and start ARTIM."""
    return _AR_4


def ar_5(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """The peer closed after the association ended: stop ARTIM, idle."""
    return _STOP_IDLE


def ar_6(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """P-DATA indication while waiting for A-RELEASE-RP (responses may still come)."""
    return Effects(STA7, indication=DataIndication(cast(PDataTF, payload).pdvs))


def ar_7(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send P-DATA-TF after the peer asked to release."""
    return Effects(STA8, send=cast(bytes, payload))


def ar_8(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Release collision: indicate it; the release timeout keeps running."""
    return _AR_8_REQUESTOR if requestor else _AR_8_ACCEPTOR


def ar_9(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Collision, requestor side: send A-RELEASE-RP first."""
    return _AR_9


def ar_10(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Collision, acceptor side: the requestor's RP arrived; now we answer."""
    return _AR_10


def aa_1(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send A-ABORT and (re)start ARTIM.

    For the local A-ABORT request the payload is the A-ABORT to send and nothing is
    indicated. In Sta2 a PDU other than A-ASSOCIATE-RQ (or an invalid one) also lands
    here: we answer as service provider and indicate a protocol error.
    """
    if event is EVT15:
        return Effects(STA13, send=cast(AAbort, payload), timer=_START_ARTIM)
    abort = _error_abort(payload)
    return Effects(STA13, send=abort, timer=_START_ARTIM, indication=_protocol_error(abort))


def aa_2(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Stop ARTIM, close the transport.

    Before an A-ASSOCIATE-RQ (Sta2) a received A-ABORT or the ARTIM expiry is also
    reported as ``Aborted``; in Sta13 the user has already been told how things ended.
    """
    if state is STA2:
        if event is EVT16:
            received = cast(AAbort, payload)
            indication = Aborted(source=received.source, reason=received.reason, cause="peer")
            return Effects(STA1, timer=_TIMER_STOP, close=True, indication=indication)
        if event is EVT18:
            return _ARTIM_EXPIRED_IN_STA2
    return _CLOSE_IDLE


def aa_3(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """The peer aborted: A-ABORT (or A-P-ABORT) indication, close the transport."""
    received = cast(AAbort, payload)
    indication = Aborted(source=received.source, reason=received.reason, cause="peer")
    return Effects(STA1, timer=_TIMER_STOP, close=True, indication=indication)


def aa_4(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """The transport closed under us: A-P-ABORT indication."""
    return _AA_4


def aa_5(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """The transport closed before any request: stop ARTIM, idle."""
    return _STOP_IDLE


def aa_6(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Ignore the PDU (the association no longer exists)."""
    return _AA_6


def aa_7(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Send A-ABORT; ARTIM keeps running so that a chatty peer cannot hold us in Sta13."""
    return Effects(STA13, send=_error_abort(payload))


def aa_8(state: State, event: Event, payload: Payload, requestor: bool) -> Effects:
    """Protocol error: send A-ABORT (provider), A-P-ABORT indication, start ARTIM."""
    abort = _error_abort(payload)
    return Effects(STA13, send=abort, timer=_START_ARTIM, indication=_protocol_error(abort))


def own_timeout(state: State) -> Effects:
    """Our associate (Sta5) or release (Sta7, Sta9-Sta11) timeout: abort and close.

    Not in Table 9-10 (ARTIM does not cover these states). Like DCMTK we close at
    once, but first send an A-ABORT (service provider, reason not specified) so that
    the peer learns why.
    """
    return _OWN_TIMEOUT


_TIMEOUT_ABORT = AAbort(source=_PROVIDER, reason=AbortReason.NOT_SPECIFIED)
_AE_1 = Effects(STA4)
_AE_5 = Effects(STA2, timer=_START_ARTIM)
_AR_1 = Effects(STA7, send=A_RELEASE_RQ_BYTES, timer=_START_RELEASE)
_AR_2 = Effects(STA8, indication=_RELEASE_INDICATION)
_AR_3 = Effects(STA1, timer=_TIMER_STOP, close=True, indication=_RELEASE_CONFIRMATION)
_AR_4 = Effects(STA13, send=A_RELEASE_RP_BYTES, timer=_START_ARTIM)
_AR_8_REQUESTOR = Effects(STA9, indication=_COLLISION_INDICATION)
_AR_8_ACCEPTOR = Effects(STA10, indication=_COLLISION_INDICATION)
_AR_9 = Effects(STA11, send=A_RELEASE_RP_BYTES)
_AR_10 = Effects(STA12, timer=_TIMER_STOP, indication=_RELEASE_CONFIRMATION)
_AA_4 = Effects(
    STA1,
    timer=_TIMER_STOP,
    indication=Aborted(source=_PROVIDER, reason=0, cause="connection-lost"),
)
_AA_6 = Effects(STA13)
_STOP_IDLE = Effects(STA1, timer=_TIMER_STOP)
_CLOSE_IDLE = Effects(STA1, timer=_TIMER_STOP, close=True)
_ARTIM_EXPIRED_IN_STA2 = Effects(
    STA1,
    timer=_TIMER_STOP,
    close=True,
    indication=Aborted(source=_PROVIDER, reason=0, cause="timeout"),
)
_OWN_TIMEOUT = Effects(
    STA1,
    send=_TIMEOUT_ABORT,
    timer=_TIMER_STOP,
    close=True,
    indication=Aborted(source=_PROVIDER, reason=0, cause="timeout"),
)

ACTIONS: dict[Action, ActionFunction] = {
    Action.AE_1: ae_1,
    Action.AE_2: ae_2,
    Action.AE_3: ae_3,
    Action.AE_4: ae_4,
    Action.AE_5: ae_5,
    Action.AE_6: ae_6,
    Action.AE_7: ae_7,
    Action.AE_8: ae_8,
    Action.DT_1: dt_1,
    Action.DT_2: dt_2,
    Action.AR_1: ar_1,
    Action.AR_2: ar_2,
    Action.AR_3: ar_3,
    Action.AR_4: ar_4,
    Action.AR_5: ar_5,
    Action.AR_6: ar_6,
    Action.AR_7: ar_7,
    Action.AR_8: ar_8,
    Action.AR_9: ar_9,
    Action.AR_10: ar_10,
    Action.AA_1: aa_1,
    Action.AA_2: aa_2,
    Action.AA_3: aa_3,
    Action.AA_4: aa_4,
    Action.AA_5: aa_5,
    Action.AA_6: aa_6,
    Action.AA_7: aa_7,
    Action.AA_8: aa_8,
}
