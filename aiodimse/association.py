"""An association: the asyncio adapter above the DIMSE session (dimse/session.py).

The session keeps the DIMSE bookkeeping (reassembly, Message IDs, windows, release
deferral, the DIMSE deadlines); the association adds what needs an event loop.
Here: the upper layer's events (dispatched by type), the session's events (the
usual request handed to its handler inline: the server's hot path), its parts made
on first use, and their teardown at the end. Each other concern has a module of
its own: establishment.py (the A-ASSOCIATE exchange), lifecycle.py (release, abort,
the waits for the set-up and the end), answering.py (running a request's handler
and answering it), serving.py (suspended handlers, time limit, inflating,
refusals, built responses), outgoing.py (our requests' futures, the DIMSE timer),
aio/budget.py (read back pressure), aio/idle.py (wait_idle, the network timeout),
notifications.py, scu.py (the send_* calls). It reaches the upper layer only
through its protocol (aio/protocol.py), which owns the core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from pydicom.dataset import Dataset

from . import caches, establishment, evt
from .aio.budget import ReadBudget
from .aio.idle import IdleWatch
from .aio.protocol import DULProtocol, loop_clock
from .answering import Answering
from .association_log import (
    DEBUG,
    INFO,
    debug_cached,
    debug_on,
    enabled,
    log,
    log_ended,
    log_established,
    log_message,
)
from .datasets import DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, encode_dataset
from .dimse.assemble import ReceivedMessage
from .dimse.session import (
    BadRequest,
    DIMSESession,
    ResponseReceived,
    SessionEvent,
    UnknownResponse,
    flood_average,
)
from .errors import (
    AiodimseError,
    AssociationAbortedError,
    AssociationError,
    AssociationRejectedError,
    DIMSETimeoutError,
    LocalProtocolError,
)
from .establishment import Accepted, ServiceUser
from .handlers import Handlers
from .lifecycle import Lifecycle
from .notifications import hold_task, notify
from .outgoing import Command, OutgoingRequests, Stream
from .presentation import PresentationContext, SupportedContext
from .requests import RequestKind, kind_for_type
from .scu import ServiceCalls
from .scu_query import QueryCalls
from .serving import Serving
from .settings import AESettings
from .store_scp import store_sinks
from .store_scu import StoreCalls
from .ul.events import (
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    DataIndication,
    ULEvent,
)
from .wire.pdus import AAssociateAC, AAssociateRQ, Fragment

if TYPE_CHECKING:
    from .negotiation_cache import NegotiationCache
    from .observe import AssociationRecord

__all__ = [
    "Association",
    "ServerLink",
    "ServiceUser",
    "AssociationError",
    "AssociationRejectedError",
    "AssociationAbortedError",
    "DIMSETimeoutError",
]


class ServerLink(Protocol):
    """What an association and its acceptor ask of the server that accepted it."""

    handler_tasks: set[asyncio.Task[Any]]
    ae_title: str
    contexts: dict[str, SupportedContext]
    negotiations: NegotiationCache

    def admit(self, assoc: Association, calling_ae_title: str) -> bool: ...

    def rejected(self, assoc: Association) -> None: ...

    def register(self, assoc: Association) -> None: ...

    def watch_idle(self) -> None: ...

    def charge(self, assoc: Association, delta: int) -> bool: ...

    def below_low_water(self) -> bool: ...

    def reading_held(self, assoc: Association, held: bool) -> None: ...

    def association_ended(self, assoc: Association) -> None: ...


class Association(ServiceCalls, QueryCalls, StoreCalls, Answering, Lifecycle):
    """One association. Obtain it from ``AE.associate`` or in a server's handlers.

    The ``send_*`` methods (the services as SCU) come from ``ServiceCalls``; serving
    the peer's requests from ``Answering``; release, abort and the waits for the
    set-up and the end from ``Lifecycle``.
    """

    __slots__ = (  # (Lifecycle has its own; Answering's state is here)
        "__weakref__", "_bare_code", "_bare_kind", "_bare_result", "_budget", "_contexts",
        "_deflated", "_following", "_idle", "_idle_waiters", "_limits", "_outgoing", "_requests",
        "_serving", "_session", "_started", "accepted_contexts", "acceptor", "ae", "clock",
        "decide", "dimse_timeout", "draining", "handlers", "interpret_accept", "is_acceptor",
        "is_requestor", "loop", "observer", "proposal", "proto", "rejected_contexts", "requestor",
        "server",
    )

    def __init__(
        self,
        ae: AESettings,
        *,
        is_requestor: bool,
        handlers: Handlers,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` is ``loop_clock(loop)``, passed by a server (worked out once)."""
        Lifecycle.__init__(self)  # (not super(): a call less per association)
        self.ae = ae
        self.is_requestor = is_requestor
        self.is_acceptor = not is_requestor
        self.handlers = handlers
        self.loop = loop
        # loop.time, without a Python call where possible
        self.clock = clock if clock is not None else loop_clock(loop)
        self.proto: DULProtocol | None = None
        self.requestor = ServiceUser()
        self.acceptor = ServiceUser()
        self.accepted_contexts: list[PresentationContext] = []
        self.rejected_contexts: list[tuple[int, str, int]] = []
        self.dimse_timeout: float | None = ae.dimse_timeout
        self._contexts: dict[int, PresentationContext] = {}
        self._deflated: frozenset[int] = frozenset()  # IDs of Deflated Explicit VR LE contexts
        # The DIMSE session, made with the first message either way (many associations
        # carry none), with what serves its requests and the read budget charged with
        # what it holds; until then, what it will be made with: (peer max PDU, windows).
        self._session: DIMSESession | None = None
        self._serving: Serving | None = None
        self._budget: ReadBudget[Association] | None = None
        self._limits = (0, 1, 1)
        self._outgoing: OutgoingRequests | None = None  # our requests: made with the first
        self._following = False  # inside after_request (no recursion per queued request)
        self._requests = 0  # requests received, for the end-of-association INFO line
        self._bare_result: object = None  # the last handler result with a bare status
        self._bare_kind: RequestKind | None = None
        self._bare_code = 0
        self._started = 0.0  # clock time when established
        # wait_idle and the network timeout: a requestor's watch times it from now; an
        # acceptor's is made on first use (most never wait), counting from the last
        # bytes received (some have, once it is established: the sweep looks then).
        self._idle_waiters: list[asyncio.Future[None]] = []  # the watch's, for good
        self._idle = (IdleWatch(self, loop, self.clock, self._idle_waiters)
                      if is_requestor else None)
        self.proposal: AAssociateRQ | None = None  # requestor: what we proposed
        # Set by the server / requestor code that creates the association:
        self.decide: (
            Callable[[Association, AAssociateRQ], Coroutine[Any, Any, None] | None] | None
        ) = None
        self.interpret_accept: Callable[[Association, AAssociateAC], Accepted] | None = None
        self.server: ServerLink | None = None  # the Server that accepted this association
        self.draining = False  # set by a server shutting down
        self.observer: AssociationRecord | None = None  # set by an observed server

    def __repr__(self) -> str:
        side = "requestor" if self.is_requestor else "acceptor"
        return (
            f"<Association {side} {self.requestor.ae_title!r}->{self.acceptor.ae_title!r} "
            f"established={self.is_established}>"
        )

    # -- the protocol's callbacks (aio.protocol.ULUser) -----------------------------

    def connection_made(self, proto: DULProtocol) -> None:
        self.proto = proto
        host, port = proto.peername
        peer = self.acceptor if self.is_requestor else self.requestor
        peer.address, peer.port = host, port
        if self.server is not None:  # (it counts by the peer's address)
            self.server.register(self)
        if self.handlers.notifies:
            notify(self, evt.EVT_CONN_OPEN)

    def connection_lost(self, exc: Exception | None) -> None:
        if not (self.is_released or self.is_aborted or self.is_rejected):
            self._mark_aborted("connection lost", None, None)
        self._finish()
        if self.handlers.notifies:
            notify(self, evt.EVT_CONN_CLOSE)
        # The protocol is done; dropping it breaks the association <-> protocol cycle,
        # so that an ended association is freed by reference counting, not by the
        # garbage collector (whose full passes grow with the number of connections).
        self.proto = None

    def ul_events(self, events: Sequence[ULEvent]) -> None:
        """The upper layer's events, each to its function by type (``_ON_UL_EVENT``,
        at the end of the class)."""
        for ev in events:
            on_event = self._ON_UL_EVENT.get(type(ev))
            if on_event is not None:  # (CloseTransport: the protocol's)
                on_event(self, ev)

    def _on_data(self, ev: DataIndication) -> None:
        self.ul_fragments(ev.fragments, self.clock())

    # -- establishment --------------------------------------------------------------

    def begin_transfer(self, ac: AAssociateAC, contexts: list[PresentationContext],
                       peer_max: int, invoke_limit: int, perform_limit: int) -> None:
        """The A-ASSOCIATE-AC went out or came in (establishment.py): data transfer
        begins with these contexts and limits; the idle timer, logs, notifications."""
        self._settled = True
        if self._established is not None:  # someone waits (a requestor)
            self._settle(None)
        self.accepted_contexts = contexts
        self._contexts = {c.context_id: c for c in contexts}
        self._deflated = frozenset(c.context_id for c in contexts
                                   if c.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
        self._limits = (peer_max, invoke_limit, perform_limit)
        self.is_established = True
        self._start_idle_timer()
        self._started = self.clock()
        if debug_cached(INFO) is not False and enabled(INFO):  # (quiet: no call)
            log_established(self, ac)
        if self.handlers.notifies:
            notify(self, evt.EVT_ACCEPTED)
            notify(self, evt.EVT_ESTABLISHED)

    def open_session(self) -> DIMSESession:
        """The DIMSE session, made (with its serving and read budget) on first use."""
        session = self._session
        if session is not None:
            return session
        peer_max, invoke_limit, perform_limit = self._limits
        ae = self.ae
        self._session = session = DIMSESession(
            context_ids=self._contexts, peer_max_pdu=peer_max, max_invoked=invoke_limit,
            max_performed=perform_limit, max_command_length=ae.maximum_command_size,
            max_dataset_length=ae.maximum_dataset_size,
            min_fragment_average=flood_average(ae.maximum_pdu_size),
        )
        self._serving = Serving(session, self._contexts, ae, self.loop, self._idle_waiters)
        if getattr(ae, "store_to_file", False):  # C-STOREs streamed to files (store_scp.py)
            session.set_sink_factory(store_sinks(self))
        self._budget = ReadBudget(self, self.server, ae.maximum_association_buffered,
                                  self._hold_reading)
        return session

    # -- data transfer: incoming ----------------------------------------------------

    def ul_fragments(self, fragments: tuple[Fragment, ...], now: float) -> None:
        """The PDVs of P-DATA received (DT-2 / AR-6), in order: the session's events."""
        session = self._session
        if session is None:
            if not self.is_established:  # cannot happen after a correct state machine
                self.abort()
                return
            session = self.open_session()
        try:
            events = session.receive_fragments(fragments, now)
        except AiodimseError as exc:
            self._protocol_abort(exc)
            return
        if type(events) is ReceivedMessage:  # one request to run now (the usual chunk)
            # Answering._on_request's lines, inline: a call less per request on a
            # server's path
            self._requests += 1
            debug = debug_cached(DEBUG)
            if debug is None:
                debug = debug_on()
            if debug:
                log_message("received", events.context_id, events.message, events.dataset)
            kind = kind_for_type(type(events.message))
            if kind is None or self.draining:
                self._served().unserved(self, events, kind)
            else:
                self.serve(events, kind, debug)
            return
        budget = self._budget
        if budget is not None and session.held != budget.held:  # (inline: per chunk)
            budget.sync(session.held, session.queued)
        for ev in cast("list[SessionEvent]", events):
            if type(ev) is ReceivedMessage:
                self._on_request(ev, debug_on())
            else:
                self._on_session_event(ev)

    def _on_session_event(self, ev: SessionEvent) -> None:
        if type(ev) is ResponseReceived:
            if self._outgoing is not None:  # (the session knows ours only)
                self._outgoing.response(ev)
            if self._idle_waiters:
                self._watch().check_waiters()
        elif type(ev) is UnknownResponse:
            log.warning("response to unknown Message ID %s ignored", ev.message_id)
        elif type(ev) is BadRequest:
            self._served().bad_request(self, ev)
        else:  # ReleaseReady comes from follow_ups only
            raise AssertionError(f"unexpected session event {ev!r}")  # pragma: no cover

    # -- read back pressure (aio/budget.py) -------------------------------------------

    def _sync_held(self, session: DIMSESession) -> None:
        """Charge the budgets with what the session holds (queued requests, the partial
        message) since the last call."""
        budget = self._budget
        if budget is not None and session.held != budget.held:
            budget.sync(session.held, session.queued)

    def budget_check(self) -> None:
        """Restart reading if no budget holds it now (the server calls it as it drains)."""
        if self._budget is not None and self._session is not None:
            self._budget.check(self._session.queued)

    def _hold_reading(self, hold: bool) -> None:
        if self.proto is not None:
            self.proto.hold_reading(hold)

    # -- data transfer: outgoing (outgoing.py) ----------------------------------------

    def _request(
        self,
        context: PresentationContext,
        command: Command,
        dataset: Dataset | None,
        data: bytes | None = None,
        stream: Stream | None = None,
    ) -> Awaitable[ReceivedMessage]:
        """Send one request (OutgoingRequests.request); ``data``: ``dataset`` already
        encoded. ``command``: its command set for a Message ID; ``stream``: where its
        pending responses go."""
        if not self.is_established or self._finished:
            raise AssociationAbortedError("the association is not established")
        if dataset is not None:
            data = encode_dataset(dataset, context.transfer_syntax)
        outgoing = self._outgoing
        if outgoing is None:
            self._outgoing = outgoing = OutgoingRequests(self, self.loop, self.clock)
        return outgoing.request(context, command, data, stream)

    def send_pdus(self, pdus: bytes) -> None:
        """Send P-DATA PDUs through the protocol; raise if the association has ended."""
        proto = self.proto
        if proto is None or proto.closed:
            raise AssociationAbortedError("the association has ended")
        try:
            proto.send_pdata(pdus)
        except LocalProtocolError as exc:
            raise AssociationAbortedError(f"cannot send now: {exc}") from exc

    def _fail_outstanding(self) -> None:
        if self._outgoing is not None:
            self._outgoing.fail()
        if self._session is not None:
            self._session.end()

    def _finish(self) -> None:
        if self._budget is not None:  # queued requests and a partial message go with it
            self._budget.give_back()
        if self._idle is not None:
            self._idle.stop()
        if not self._settled:
            self._settle(self.end_error())
        self._fail_outstanding()
        if not self._finished:
            self._finished = True
            if self._ended is not None:
                self._ended.set_result(None)
            if self._started and debug_cached(INFO) is not False:  # (quiet: no call)
                why = "released" if self.is_released else str(self._end_reason or "aborted")
                log_ended(self, why, self.clock() - self._started, self._requests)
            if self.server is not None:
                self.server.association_ended(self)
        # The parts that hold the association let go of it (the idle watch in stop()):
        # with the protocol dropped in connection_lost, no reference cycle keeps an
        # ended association for the garbage collector.
        self._budget = None
        self._outgoing = None

    @property
    def in_flight(self) -> int:
        """Requests being handled or queued, plus our requests awaiting a response."""
        session = self._session
        if session is None:
            return 0
        return session.running + session.queued + session.outstanding

    # -- handlers -------------------------------------------------------------------

    def bind(self, event: evt.EventType, handler: Callable[..., Any],
             args: Sequence[Any] | None = None, *, abstract_syntax: str | None = None) -> None:
        """Bind a handler for this association only (the server's stay as they are).

        An overlay: it replaces a handler bound for the same key (docs/handlers.md).
        """
        self.handlers = self.handlers.merged(None)  # copy: the server's may be shared
        self.handlers.bind(event, handler, args, abstract_syntax=abstract_syntax,
                           replace=True)

    def unbind(self, event: evt.EventType, handler: Callable[..., Any], *,
               abstract_syntax: str | None = None) -> None:
        """Unbind a handler from this association only."""
        self.handlers = self.handlers.merged(None)
        self.handlers.unbind(event, handler, abstract_syntax=abstract_syntax)

    def caches_held(self) -> tuple[int, int, int]:
        """Entries its caches hold (the last bare status, the session's last shape and
        response), for the cache registry's probes."""
        session = self._session
        shape, response = session.caches_held() if session is not None else (0, 0)
        return int(self._bare_kind is not None), shape, response

    def get_handlers(self, event: evt.EventType) -> list[Callable[..., Any]]:
        """The handlers bound to ``event`` on this association."""
        return [b.func for b in self.handlers.get(event)]

    # -- idle (aio/idle.py) ------------------------------------------------------------

    async def wait_idle(self) -> None:
        """Wait until no request is in flight either way (or the association ended)."""
        if not self._finished:
            await self._watch().wait()

    def check_idle(self, now: float, timeout: float) -> bool:
        """Abort if nothing came in for ``timeout`` and nothing is in flight; True if
        so (the server's sweep asks every established association)."""
        return not self._finished and self._watch().check(now, timeout)

    def _watch(self) -> IdleWatch:
        """The idle watch, made on first use (asked for before the end only: made
        after it, it would hold the association in a cycle)."""
        watch = self._idle
        if watch is None:
            watch = self._idle = IdleWatch(self, self.loop, self.clock, self._idle_waiters,
                                           since=0.0)
        return watch

    def _start_idle_timer(self) -> None:
        """Network timeout: a server sweeps its associations; a requestor has a timer."""
        if self.server is not None:
            self.server.watch_idle()
        else:
            self._watch().start_timer(self.ae.network_timeout)

    # -- notifications and tasks (notifications.py) -----------------------------------

    def track(self, task: asyncio.Task[Any]) -> None:
        """Hold a handler's task until it ends, beyond the association's own life."""
        hold_task(task, self.server.handler_tasks if self.server is not None else None)

    # The upper layer's events, by type: what the association does with each.
    _ON_UL_EVENT: ClassVar[dict[type[ULEvent], Callable[[Association, Any], None]]] = {
        DataIndication: _on_data,
        AssociateIndication: establishment.on_associate_rq,
        AssociateAccepted: establishment.on_associate_ac,
        AssociateRejected: establishment.on_associate_rj,
        **Lifecycle.ENDING_EVENTS,
    }


# The association's own caches (docs/internals.md, "Caches"), for the registry's probes.
caches.register("association.bare_status", "association",
                lambda assoc: assoc.caches_held()[0])
caches.register("dimse.commands.last_shape", "association",
                lambda assoc: assoc.caches_held()[1])
caches.register("dimse.memo.last_response", "association",
                lambda assoc: assoc.caches_held()[2])
