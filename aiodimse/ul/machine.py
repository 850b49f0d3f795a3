"""``UpperLayer``: the sans-IO PS3.8 upper-layer core of one association.

The adapter feeds it bytes, transport events and the current time, and calls the
local primitives; it returns ``ULEvent``s and queues bytes for ``data_to_send()``.
Every event goes through ``table.TRANSITIONS``; the actions are the pure functions of
``actions``, whose ``Effects`` are applied here. No I/O, no clock: ``now`` comes in,
``next_deadline()`` goes out.

Typical acceptor flow::

    ul = UpperLayer(requestor=False)
    ul.transport_indication(now)             # Sta2, ARTIM running
    events = ul.receive_data(data, now)      # [AssociateIndication(rq)] -> Sta3
    ul.accept(ac, now)                       # Sta6
    transport.write(ul.data_to_send())

Remote errors never raise: an invalid PDU becomes Evt19, the A-ABORT is queued and an
``Aborted(cause="protocol-error")`` returned. Local misuse raises ``LocalProtocolError``
and leaves the core unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiodimse.errors import LocalProtocolError, RemoteProtocolError
from aiodimse.wire.codec import encode_pdu
from aiodimse.wire.codes import AbortSource
from aiodimse.wire.pdus import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    Fragment,
    PDataTF,
)
from aiodimse.wire.reader import PDUReader

from .actions import ACTIONS, ActionFunction, Effects, Payload, TimerOp, own_timeout
from .config import ULConfig
from .events import CloseTransport, DataIndication, ULEvent
from .states import (
    EVT1,
    EVT2,
    EVT5,
    EVT7,
    EVT8,
    EVT9,
    EVT11,
    EVT14,
    EVT15,
    EVT17,
    EVT18,
    EVT19,
    STA1,
    STA2,
    STA4,
    Action,
    Event,
    State,
)
from .table import TRANSITIONS

__all__ = ["UpperLayer"]

_Cell = tuple[Action, ActionFunction]

# Per state, the row of cells keyed by event (IntEnum: hashing is int hashing), built
# once from the table so that a transition costs one dict lookup.
_ROWS: dict[State, dict[Event, _Cell]] = {state: {} for state in State}
for (_state, _event), _action in TRANSITIONS.items():
    _ROWS[_state][_event] = (_action, ACTIONS[_action])
del _state, _event, _action

# The ULConfig field of each timer's duration.
_TIMEOUT_OF = {
    TimerOp.START_ARTIM: "artim_timeout",
    TimerOp.START_ASSOCIATE: "associate_timeout",
    TimerOp.START_RELEASE: "release_timeout",
}

_PDU_EVENTS: dict[type, Event] = {
    AAssociateAC: Event.EVT3,
    AAssociateRJ: Event.EVT4,
    AAssociateRQ: Event.EVT6,
    PDataTF: Event.EVT10,
    AReleaseRQ: Event.EVT12,
    AReleaseRP: Event.EVT13,
    AAbort: Event.EVT16,
}

# Module constants (see states.py on reading enum members).
_CLOSE = CloseTransport()
_PDATA_INDICATIONS = (Action.DT_2, Action.AR_6)
# States whose P-DATA-TF cell (Evt10) only passes the data up, state unchanged.
_PDATA_STATES = frozenset(
    state for state, row in _ROWS.items() if row.get(Event.EVT10, (None,))[0] in _PDATA_INDICATIONS
)

# Our own limits (``_limit_at``) hold within one phase: association set-up (the
# acceptor's Sta2/Sta3), or data transfer (one message being received).
_SETUP_STATES = frozenset((State.STA2, State.STA3))

# Per state: its row, and whether it is in _PDATA_STATES (one lookup per transition).
_STATE_ROWS = {state: (row, state in _PDATA_STATES) for state, row in _ROWS.items()}
# Per state: its phase ("set-up", "transfer"), or a name of its own (a limit started
# in it never holds in another state).
_PHASE: dict[State, str] = {
    state: "set-up" if state in _SETUP_STATES else "transfer" if state in _PDATA_STATES
    else state.name
    for state in _ROWS
}

_new = object.__new__
_KEEP = TimerOp.KEEP
_STOP = TimerOp.STOP
_ARTIM = TimerOp.START_ARTIM


class UpperLayer:
    """The upper-layer state machine of one association, requestor or acceptor side."""

    __slots__ = (
        "_config",
        "_deadline",
        "_limit_at",
        "_out",
        "_pdata",
        "_reader",
        "_reader_failed",
        "_requestor",
        "_row",
        "_rq",
        "_state",
        "_timer",
        "_timer_at",
    )

    def __init__(self, *, requestor: bool, config: ULConfig | None = None) -> None:
        cfg = config if config is not None else ULConfig()
        self._config = cfg
        self._requestor = requestor
        self._state = STA1
        self._row = _ROWS[STA1]
        self._pdata = False  # the state is in _PDATA_STATES
        self._reader = PDUReader(
            max_associate_length=cfg.max_associate_length,
            max_pdata_length=cfg.max_pdata_cap,
        )
        self._reader_failed = False
        self._out: list[bytes] = []
        self._rq: AAssociateRQ | None = None
        self._deadline: float | None = None  # the earlier of the two below
        self._timer_at: float | None = None  # the table's timer (ARTIM, or our timeouts)
        self._timer = _KEEP  # which timer _timer_at belongs to
        self._limit_at: float | None = None  # set-up or message deadline (ULConfig)

    # -- inspection -------------------------------------------------------------
    @property
    def state(self) -> State:
        """The current PS3.8 state."""
        return self._state

    @property
    def is_requestor(self) -> bool:
        """True on the association-requestor side."""
        return self._requestor

    @property
    def config(self) -> ULConfig:
        """The settings this core was built with."""
        return self._config

    # -- requestor primitives -----------------------------------------------------
    def request_association(self, rq: AAssociateRQ, now: float) -> None:
        """Evt1 (AE-1): remember the request; the adapter then opens the connection."""
        self._require_role(requestor=True)
        self._fire(EVT1, rq, now, [])
        self._rq = rq
        self._reader.max_pdata_length = self._receive_limit(rq.user_information.maximum_length)

    def transport_connected(self, now: float) -> None:
        """Evt2 (AE-2): the connection is open; send the A-ASSOCIATE-RQ (Sta5)."""
        self._fire(EVT2, self._rq, now, [])

    # -- acceptor primitives ------------------------------------------------------
    def transport_indication(self, now: float) -> None:
        """Evt5 (AE-5): a peer connected; wait for its A-ASSOCIATE-RQ under ARTIM."""
        self._require_role(requestor=False)
        self._fire(EVT5, None, now, [])
        timeout = self._config.setup_timeout
        if timeout is not None:
            limit = self._limit_at = now + timeout
            timer = self._timer_at  # ARTIM, just started
            self._deadline = limit if timer is None or limit < timer else timer

    def accept(self, ac: AAssociateAC, now: float, *, encoded: bytes | None = None) -> None:
        """Evt7 (AE-7): send the A-ASSOCIATE-AC; the association is established.

        From now on the peer's P-DATA-TF PDUs are held to the Maximum Length in ``ac``.
        ``encoded``, when given, is ``ac``'s encoding (an acceptor's cache of answers
        it gives again and again) and is sent as it is.
        """
        self._fire(EVT7, ac if encoded is None else encoded, now, [])
        self._reader.max_pdata_length = self._receive_limit(ac.user_information.maximum_length)

    def reject(self, rj: AAssociateRJ, now: float) -> None:
        """Evt8 (AE-8): send the A-ASSOCIATE-RJ and wait (ARTIM) for the peer to close."""
        self._fire(EVT8, rj, now, [])

    # -- data transfer --------------------------------------------------------------
    def send_pdata(self, data: bytes) -> None:
        """Evt9: queue ready-encoded P-DATA-TF PDU(s) of one message (Sta6 DT-1, Sta8 AR-7).

        Both actions only send and keep the state, so the bytes are queued directly.
        """
        if EVT9 not in self._row:
            raise self._misuse(EVT9)
        self._out.append(data)

    # -- release and abort ----------------------------------------------------------
    def request_release(self, now: float) -> None:
        """Evt11 (AR-1): send A-RELEASE-RQ and wait (release timeout) for the answer."""
        self._fire(EVT11, None, now, [])

    def respond_release(self, now: float) -> None:
        """Evt14: answer the peer's release (AR-4 in Sta8/Sta12, AR-9 in Sta9)."""
        self._fire(EVT14, None, now, [])

    def abort(self, now: float, *, source: int = 0, reason: int = 0) -> list[ULEvent]:
        """Evt15: A-ABORT request (AA-1: send it and wait under ARTIM; AA-2 in Sta4).

        ``source`` is 0 (service user) or 2 (service provider); the reason is
        significant only for source 2. Returns ``[CloseTransport()]`` in Sta4 (the
        connection attempt is to be cancelled), else an empty list.
        """
        if EVT15 not in self._row:
            raise self._misuse(EVT15)
        if source not in (AbortSource.SERVICE_USER, AbortSource.SERVICE_PROVIDER):
            raise LocalProtocolError(f"A-ABORT source must be 0 or 2, not {source}")
        if not 0 <= reason <= 0xFF or (source == AbortSource.SERVICE_USER and reason):
            raise LocalProtocolError(f"invalid A-ABORT reason {reason} for source {source}")
        events: list[ULEvent] = []
        self._fire(EVT15, AAbort(source=source, reason=reason), now, events)
        return events

    # -- transport input --------------------------------------------------------------
    def receive_pdata(
        self, data: bytes | bytearray | memoryview, now: float | None = None
    ) -> tuple[Fragment, ...] | None:
        """``receive_data``'s usual chunk in the data transfer states, at less cost.

        In a state that indicates P-DATA (DT-2 / AR-6: state unchanged, no timer
        touched), a chunk that is exactly one message of one or two whole
        P-DATA-TF PDUs (``PDUReader.pdata_at_once``) gives its PDVs, what
        receive_data's one DataIndication would carry, without the event. None
        otherwise, with nothing consumed: pass the chunk to ``receive_data``.
        ``now`` (None only where no message deadline is configured) starts the
        message deadline when the chunk ends inside a message.
        """
        if not self._pdata or self._reader_failed:
            return None
        fragments = self._reader.pdata_at_once(data)
        # A message's last fragment ends it (the usual chunk): nothing to track.
        if fragments is not None and (
            self._limit_at is not None or not fragments[-1][1] & 2
        ) and now is not None:
            self._message_progress((fragments,), False, now)
        return fragments

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[ULEvent]:
        """Feed received bytes; return the events of every whole PDU in them.

        An invalid PDU (or an over-limit length) is Evt19: the A-ABORT is queued and the
        stream is dropped from then on. Data received after the core went idle (Sta1)
        is ignored.
        """
        state = self._state
        if state is STA1 or self._reader_failed:
            return []
        if state is STA4:
            raise LocalProtocolError("data received before transport_connected()")
        events: list[ULEvent] = []
        reader = self._reader
        indicated: list[tuple[Fragment, ...]] = []  # the PDVs given, for the deadline
        try:
            if self._pdata:
                # DT-2 / AR-6: P-DATA indications, state unchanged. The data path, kept
                # lean: the whole P-DATA-TF PDUs at the front in one indication, no
                # table walk, no __init__.
                pdvs, held = reader.feed_pdata(data)
                if pdvs:
                    indication = _new(DataIndication)
                    indication.fragments = pdvs
                    events.append(indication)
                    if not held:
                        if self._limit_at is not None or not pdvs[-1][1] & 2:
                            self._message_progress((pdvs,), False, now)
                        return events
                    indicated.append(pdvs)
                elif not held:
                    return events
            else:
                pdu = reader.whole_pdu(data)
                if pdu is not None:  # the usual A-ASSOCIATE-RQ (or -AC) chunk: all of it
                    self._received(pdu, now, events)
                    return events
                reader.feed(data)
            while (pdu := reader.next_pdu()) is not None:
                if self._pdata and type(pdu) is PDataTF:
                    # DT-2 / AR-6: P-DATA indication, state unchanged. The data path,
                    # kept lean: no table walk, the event built without __init__.
                    indication = _new(DataIndication)
                    indication.fragments = pdu.pdvs
                    events.append(indication)
                    indicated.append(pdu.pdvs)
                    continue
                self._received(pdu, now, events)
                if self._state is STA1:
                    break
            if self._pdata:  # partial PDUs (trickled bytes) are only seen here
                self._message_progress(indicated, reader.buffered > 0, now)
        except RemoteProtocolError as exc:
            self._reader_failed = True
            self._fire(EVT19, exc, now, events)
        return events

    def _message_progress(
        self, indicated: Sequence[tuple[Fragment, ...]], partial: bool, now: float
    ) -> None:
        """Follow the message being received (data transfer states): its deadline.

        ``indicated``: the PDVs just received (in groups); ``partial``: a partial PDU
        is held. A message is under way from its first byte until a PDV with the
        last-fragment bit; the deadline runs from the first time it was seen. A
        command's last fragment counts as an end: its data set is a second period.
        """
        if indicated and indicated[-1][-1][1] & 2:
            ended, under_way = True, partial
        elif indicated:
            under_way = True
            # a message ended inside these PDVs: the one under way began just now
            ended = self._limit_at is not None and any(
                pdv[1] & 2 for group in indicated for pdv in group
            )
        else:
            ended, under_way = False, partial
        if ended and self._limit_at is not None:
            self._limit_at = None
            self._recompute_deadline()
        if under_way and self._limit_at is None:
            timeout = self._config.message_timeout
            if timeout is not None:
                self._limit_at = now + timeout
                self._recompute_deadline()

    def _received(self, pdu: PDU, now: float, events: list[ULEvent]) -> None:
        """A received PDU's cell of the table (Evt3/4/6/10/12/13/16)."""
        event = _PDU_EVENTS[type(pdu)]
        self._apply(self._row[event][1](self._state, event, pdu, self._requestor), now, events)

    def connection_closed(self, now: float) -> list[ULEvent]:
        """Evt17: the transport connection closed (by the peer, or after we closed it)."""
        if self._state is STA1:
            return []
        events: list[ULEvent] = []
        self._fire(EVT17, None, now, events)
        return events

    # -- timers -----------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must next be called, or None when no timer runs."""
        return self._deadline

    def handle_timer(self, now: float) -> list[ULEvent]:
        """Fire the timer if its deadline has passed (Evt18 for ARTIM; else our timeouts).

        Our set-up and message deadlines (``ULConfig``) act as our timeouts do: A-ABORT
        (service provider) and close; in Sta2, before any request, as ARTIM does.
        """
        deadline = self._deadline
        if deadline is None or now < deadline:
            return []
        events: list[ULEvent] = []
        limit = self._limit_at
        if limit is not None and now >= limit:
            self._limit_at = None
            self._recompute_deadline()
            if self._state is STA2:
                self._fire(EVT18, None, now, events)
            else:
                self._apply(own_timeout(self._state), now, events)
        elif self._timer is _ARTIM:
            self._fire(EVT18, None, now, events)
        else:
            self._apply(own_timeout(self._state), now, events)
        return events

    # -- output -----------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the peer (b"" when nothing is queued)."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    # -- internals ----------------------------------------------------------------------
    def _misuse(self, event: Event) -> LocalProtocolError:
        return LocalProtocolError(
            f"{event.description} ({event.name}) is not allowed in {self._state.name} "
            f"({self._state.description})"
        )

    def _require_role(self, *, requestor: bool) -> None:
        if self._requestor is not requestor:
            side = "an association-acceptor" if requestor else "an association-requestor"
            raise LocalProtocolError(f"not allowed on {side}")

    def _receive_limit(self, advertised: int | None) -> int:
        """Our P-DATA-TF PDU-length limit: what we advertised, or our cap for 0/absent."""
        return advertised or self._config.max_pdata_cap

    def _fire(self, event: Event, payload: Payload, now: float, events: list[ULEvent]) -> None:
        """Run ``event``'s cell; LocalProtocolError, the core unchanged, if it has none."""
        cell = self._row.get(event)
        if cell is None:
            raise self._misuse(event)
        self._apply(cell[1](self._state, event, payload, self._requestor), now, events)

    def _apply(self, effects: Effects, now: float, events: list[ULEvent]) -> None:
        next_state, send, timer, close, indication = effects
        if send is not None:
            self._out.append(send if isinstance(send, bytes) else encode_pdu(send))
        if timer is not _KEEP:
            # the deadline: the earlier of the table's timer and our limit (inline)
            if timer is _STOP:
                self._timer_at = None
                self._timer = _KEEP
                self._deadline = self._limit_at
            else:
                at = self._timer_at = now + getattr(self._config, _TIMEOUT_OF[timer])
                self._timer = timer
                limit = self._limit_at
                self._deadline = at if limit is None or at < limit else limit
        if indication is not None:
            events.append(indication)
        if close:
            events.append(_CLOSE)
        if next_state is not self._state:
            # Every cell into Sta1 also stops the timer (tests/ul/test_transitions.py).
            # A set-up or message deadline holds within its phase only.
            if self._limit_at is not None and _PHASE[self._state] != _PHASE[next_state]:
                self._limit_at = None
                self._deadline = self._timer_at
            self._state = next_state
            self._row, self._pdata = _STATE_ROWS[next_state]

    def _recompute_deadline(self) -> None:
        timer, limit = self._timer_at, self._limit_at
        self._deadline = timer if limit is None or (timer is not None and timer < limit) else limit
