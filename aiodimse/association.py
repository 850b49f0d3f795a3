"""An association: the asyncio adapter above the DIMSE session (dimse/session.py).

The session keeps the DIMSE bookkeeping (reassembly, Message IDs, windows, release
deferral, the DIMSE deadlines); the association adds what needs an event loop:
the futures of our requests by Message ID, the handlers of the peer's requests
(run eagerly, aio/eager.py, else in tracked tasks under a time limit),
notifications, timers, read back pressure and logging. It reaches the upper
layer only through its protocol (aio/protocol.py), which owns the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydicom.dataset import Dataset

from . import caches, evt
from .aio.eager import Suspended, run_eager
from .aio.prompt import PromptFuture
from .aio.protocol import DULProtocol, loop_clock
from .association_log import (
    DEBUG,
    INFO,
    debug_cached,
    debug_on,
    enabled,
    log,
    log_established,
    log_handler_failure,
    log_lines,
    log_message,
)
from .datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    DatasetDecodeError,
    Inflated,
    decode_dataset,
    encode_dataset,
    refusal_status,
)
from .deflated import inflate_in_steps
from .describe import describe_associate_rq, describe_rejection
from .dimse.assemble import ReceivedMessage
from .dimse.session import (
    BadRequest,
    DIMSESession,
    RequestCommand,
    ResponseReceived,
    SessionEvent,
    UnknownResponse,
    WindowFull,
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
from .errors import describe_rejection as rejection_words
from .events import Event
from .handlers import HandlerExit, Handlers, call_handler
from .logs import peer_of
from .presentation import PresentationContext, SupportedContext
from .requests import (
    RequestKind,
    bare_status,
    build_response,
    failure_response,
    kind_for_type,
    status_dataset,
)
from .scu import ServiceCalls
from .settings import AESettings
from .status import RESOURCE_LIMITATION, is_performed
from .ul.events import (
    Aborted,
    AssociateAccepted,
    AssociateIndication,
    AssociateRejected,
    DataIndication,
    ReleaseConfirmation,
    ReleaseIndication,
    ULEvent,
)
from .ul.states import STA12
from .wire.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ, Fragment

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


@dataclass(slots=True)
class ServiceUser:
    """One end of an association, as pynetdicom's ``assoc.requestor``/``acceptor``."""

    ae_title: str = ""
    address: str = ""
    port: int = 0
    maximum_length: int = 0
    implementation_class_uid: str = ""
    implementation_version_name: str | None = None
    user_identity: Any = None


class ServerLink(Protocol):
    """What an association and its acceptor ask of the server that accepted it."""

    handler_tasks: set[asyncio.Task[Any]]
    ae_title: str
    contexts: dict[str, SupportedContext]
    negotiations: NegotiationCache

    def admit(self, assoc: Association, calling_ae_title: str) -> bool: ...

    def register(self, assoc: Association) -> None: ...

    def watch_idle(self) -> None: ...

    def charge(self, assoc: Association, delta: int) -> bool: ...

    def below_low_water(self) -> bool: ...

    def reading_held(self, assoc: Association, held: bool) -> None: ...

    def association_ended(self, assoc: Association) -> None: ...


_Accepted = tuple[list[PresentationContext], list[tuple[int, str, int]], int, int]
_Future = asyncio.Future[ReceivedMessage] | PromptFuture[ReceivedMessage]

# Handler tasks of associations that have no server (requestors), held until they end.
_HANDLER_TASKS: set[asyncio.Task[Any]] = set()

# On 3.12+ a handler Task runs the handler coroutine directly, and a Task re-raises
# SystemExit/KeyboardInterrupt into the event loop (stopping it): wrap it there.
_GUARD_EXIT = sys.version_info >= (3, 12)


async def _guard_exit(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        raise HandlerExit(f"the handler raised {type(exc).__name__}{exc.args!r}") from exc


class _Overdue:
    """A suspended handler's request, its time-limit timer and whether it was answered."""

    __slots__ = ("answered", "debug", "kind", "received", "timer")

    def __init__(self, received: ReceivedMessage, kind: RequestKind, debug: bool) -> None:
        self.received, self.kind, self.debug = received, kind, debug
        self.answered = False
        self.timer: asyncio.TimerHandle | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Association(ServiceCalls):
    """One association. Obtain it from ``AE.associate`` or in a server's handlers.

    The ``send_*`` methods (the services as SCU) come from ``ServiceCalls``.
    """

    __slots__ = (
        "__weakref__",
        "_bare_code",
        "_bare_kind",
        "_bare_result",
        "_contexts",
        "_deflated",
        "_dimse_timer",
        "_end_reason",
        "_ended",
        "_established",
        "_following",
        "_futures",
        "_held",
        "_idle_timer",
        "_idle_waiters",
        "_invoke_waiters",
        "_last_activity",
        "_limits",
        "_read_held",
        "_requests",
        "_session",
        "_started",
        "accepted_contexts",
        "acceptor",
        "ae",
        "clock",
        "decide",
        "dimse_timeout",
        "draining",
        "handlers",
        "interpret_accept",
        "is_aborted",
        "is_acceptor",
        "is_established",
        "is_rejected",
        "is_released",
        "is_requestor",
        "loop",
        "observer",
        "proposal",
        "proto",
        "rejected_contexts",
        "requestor",
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
        self.is_established = False
        self.is_released = False
        self.is_aborted = False
        self.is_rejected = False
        self.dimse_timeout: float | None = ae.dimse_timeout
        self._contexts: dict[int, PresentationContext] = {}
        self._deflated: frozenset[int] = frozenset()  # IDs of Deflated Explicit VR LE contexts
        # The DIMSE session, made with the first message either way (many associations
        # carry none); until then, what it will be made with: (peer max PDU, windows).
        self._session: DIMSESession | None = None
        self._limits = (0, 1, 1)
        self._futures: dict[int, _Future] = {}  # our requests' responses, by Message ID
        self._dimse_timer: asyncio.TimerHandle | None = None
        self._invoke_waiters: deque[asyncio.Future[None]] | None = None  # made on first use
        self._following = False  # inside _after_request (no recursion per queued request)
        self._held = 0  # bytes of the session's held charged to the budgets
        self._read_held = False  # reading stopped by a budget
        self._requests = 0  # requests received, for the end-of-association INFO line
        self._started = 0.0  # clock time when established
        self._bare_result: object = None  # the last handler result with a bare status
        self._bare_kind: RequestKind | None = None
        self._bare_code = 0
        self._established: asyncio.Future[None] = loop.create_future()
        self._ended: asyncio.Future[None] = loop.create_future()
        self._end_reason: AssociationError | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._idle_timer: asyncio.TimerHandle | None = None
        self._last_activity = self.clock()
        self.proposal: AAssociateRQ | None = None  # requestor: what we proposed
        # Set by the server / requestor code that creates the association:
        self.decide: (
            Callable[[Association, AAssociateRQ], Coroutine[Any, Any, None] | None] | None
        ) = None
        self.interpret_accept: Callable[[Association, AAssociateAC], _Accepted] | None = None
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
        self._notify(evt.EVT_CONN_OPEN)

    def connection_lost(self, exc: Exception | None) -> None:
        if not (self.is_released or self.is_aborted or self.is_rejected):
            self._mark_aborted("connection lost", None, None)
        self._finish()
        self._notify(evt.EVT_CONN_CLOSE)
        # The protocol is done; dropping it breaks the association <-> protocol cycle,
        # so that an ended association is freed by reference counting, not by the
        # garbage collector (whose full passes grow with the number of connections).
        self.proto = None

    def ul_events(self, events: Sequence[ULEvent]) -> None:
        for ev in events:
            if type(ev) is DataIndication:
                self.ul_fragments(ev.fragments, self.clock())
            elif isinstance(ev, AssociateIndication):
                self._on_associate_rq(ev.pdu)
            elif isinstance(ev, AssociateAccepted):
                self._on_associate_ac(ev.pdu)
            elif isinstance(ev, AssociateRejected):
                self._on_associate_rj(ev.pdu)
            elif isinstance(ev, ReleaseIndication):
                self._on_release_rq(ev.collision)
            elif isinstance(ev, ReleaseConfirmation):
                self._on_release_rp()
            elif isinstance(ev, Aborted):
                self._mark_aborted(f"association aborted ({ev.cause})", ev.source, ev.reason)

    # -- establishment --------------------------------------------------------------

    def _on_associate_rq(self, rq: AAssociateRQ) -> None:
        """Acceptor: hand the request to the server's decision (``acceptor.decide``)."""
        self.requestor.ae_title = rq.calling_ae_title
        self.acceptor.ae_title = rq.called_ae_title
        ui = rq.user_information
        self.requestor.maximum_length = ui.maximum_length or 0
        self.requestor.implementation_class_uid = ui.implementation_class_uid
        self.requestor.implementation_version_name = ui.implementation_version_name
        self.requestor.user_identity = ui.user_identity_rq
        self.proposal = rq
        if enabled(INFO) and debug_on():  # (INFO first: one dict lookup when quiet)
            log_lines(f"received from {peer_of(self)}:", describe_associate_rq(rq))
        self._notify(evt.EVT_REQUESTED)
        if self.decide is None:  # not from a server: nobody can accept
            self.send_reject(AAssociateRJ(result=1, source=1, reason=1))
            return
        pending = self.decide(self, rq)  # None: answered already
        if pending is not None:
            self._track(self.loop.create_task(pending))

    def send_accept(self, ac: AAssociateAC, contexts: list[PresentationContext],
                    invoke_limit: int, perform_limit: int, encoded: bytes | None = None
                    ) -> None:
        """Acceptor: send the A-ASSOCIATE-AC (unless the request is gone) and start."""
        if self.proto is None or not self.proto.accept(ac, encoded):
            return
        ui = ac.user_information
        self.acceptor.maximum_length = ui.maximum_length or 0
        self.acceptor.implementation_class_uid = ui.implementation_class_uid
        self.acceptor.implementation_version_name = ui.implementation_version_name
        self._established.set_result(None)
        self._start(ac, contexts, self.requestor.maximum_length, invoke_limit, perform_limit)

    def send_reject(self, rj: AAssociateRJ) -> None:
        """Acceptor: send the A-ASSOCIATE-RJ (unless the request is gone)."""
        if self.proto is None or not self.proto.reject(rj):
            return
        self.is_rejected = True
        self._end_reason = AssociationRejectedError(rj.result, rj.source, rj.reason)
        if enabled(INFO):
            log.info("rejected %s: %s", self._who(),
                     rejection_words(rj.result, rj.source, rj.reason))
        self._notify(evt.EVT_REJECTED)

    def _on_associate_ac(self, ac: AAssociateAC) -> None:
        """Requestor: the peer accepted; work out the contexts and limits."""
        try:
            if self.interpret_accept is None:
                raise AssociationError("no request to compare the answer with")
            contexts, rejected, invoke_limit, perform_limit = self.interpret_accept(self, ac)
        except AiodimseError as exc:
            log.warning("unusable A-ASSOCIATE-AC: %s", exc)
            self.abort()
            return
        ui = ac.user_information
        self.acceptor.maximum_length = ui.maximum_length or 0
        self.acceptor.implementation_class_uid = ui.implementation_class_uid
        self.acceptor.implementation_version_name = ui.implementation_version_name
        self.acceptor.user_identity = ui.user_identity_ac
        self.rejected_contexts = rejected
        if not self._established.done():
            self._established.set_result(None)
        self._start(ac, contexts, self.acceptor.maximum_length, invoke_limit, perform_limit)

    def _start(self, ac: AAssociateAC, contexts: list[PresentationContext], peer_max: int,
               invoke_limit: int, perform_limit: int) -> None:
        """Data transfer begins: contexts, limits, the idle timer, logs, notifications."""
        self.accepted_contexts = contexts
        self._contexts = {c.context_id: c for c in contexts}
        self._deflated = frozenset(c.context_id for c in contexts
                                   if c.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
        self._limits = (peer_max, invoke_limit, perform_limit)
        self.is_established = True
        self._start_idle_timer()
        self._started = self.clock()
        if enabled(INFO):  # (the line's words are not made when it is off)
            log_established(self, self._who(), ac)
        self._notify(evt.EVT_ACCEPTED)
        self._notify(evt.EVT_ESTABLISHED)

    def _new_session(self) -> DIMSESession:
        peer_max, invoke_limit, perform_limit = self._limits
        ae = self.ae
        self._session = session = DIMSESession(
            context_ids=self._contexts, peer_max_pdu=peer_max, max_invoked=invoke_limit,
            max_performed=perform_limit, max_command_length=ae.maximum_command_size,
            max_dataset_length=ae.maximum_dataset_size,
            min_fragment_average=flood_average(ae.maximum_pdu_size),
        )
        return session

    def _on_associate_rj(self, rj: AAssociateRJ) -> None:
        if enabled(INFO):
            log.info("%s: %s", self._who(), describe_rejection(rj))
        self.is_rejected = True
        err = AssociationRejectedError(rj.result, rj.source, rj.reason)
        self._end_reason = err
        self._fail_established(err)
        self._notify(evt.EVT_REJECTED)

    def _who(self) -> str:
        """``association from CALLING@address to CALLED`` (or ``to`` as requestor)."""
        if self.is_acceptor:
            return (f"association from {peer_of(self)}:{self.requestor.port} "
                    f"to {self.acceptor.ae_title}")
        return f"association to {peer_of(self)}:{self.acceptor.port}"

    def _fail_established(self, err: BaseException) -> None:
        fut = self._established
        if not fut.done():
            fut.set_exception(err)
            if self.is_acceptor:  # nobody need await it here: no "never retrieved" log
                fut.exception()

    async def wait_established(self) -> None:
        """Requestor: wait for the peer's answer; raise if rejected or aborted."""
        await self._established

    # -- data transfer: incoming ----------------------------------------------------

    def ul_fragments(self, fragments: tuple[Fragment, ...], now: float) -> None:
        """The PDVs of P-DATA received (DT-2 / AR-6), in order: the session's events."""
        session = self._session
        if session is None:
            if not self.is_established:  # cannot happen after a correct state machine
                self.abort()
                return
            session = self._new_session()
        try:
            events = session.receive_fragments(fragments, now)
        except AiodimseError as exc:
            self._protocol_abort(exc)
            return
        if type(events) is ReceivedMessage:  # one request to run now (the usual chunk)
            # _on_request's lines, inline: a call less per request on a server's path
            self._requests += 1
            debug = debug_cached(DEBUG)
            if debug is None:
                debug = debug_on()
            if debug:
                log_message("received", events.context_id, events.message, events.dataset)
            kind = kind_for_type(type(events.message))
            if kind is None or self.draining:
                self._unserved(events, kind)
            else:
                self._serve(events, kind, debug)
            return
        if session.held != self._held:
            self._sync_held(session)
        for ev in cast("list[SessionEvent]", events):
            if type(ev) is ReceivedMessage:
                self._on_request(ev, debug_on())
            else:
                self._on_session_event(ev)

    def _on_request(self, received: ReceivedMessage, debug: bool) -> None:
        """A request the session reports (inline in ``ul_fragments``, for speed)."""
        self._requests += 1
        if debug:
            log_message("received", received.context_id, received.message, received.dataset)
        kind = kind_for_type(type(received.message))
        if kind is None or self.draining:
            self._unserved(received, kind)
        else:
            self._serve(received, kind, debug)

    def _unserved(self, received: ReceivedMessage, kind: RequestKind | None) -> None:
        """A request not for a handler: a C-service one (ignored), or the server is
        stopping (refused)."""
        if kind is None:
            log.warning("no service for %s from %s: ignored", type(received.message).__name__,
                        peer_of(self))
            self._dropped(received)
        else:
            self._refuse(received)

    def _on_session_event(self, ev: SessionEvent) -> None:
        if type(ev) is ResponseReceived:
            if debug_on():
                log_message("received", ev.received.context_id, ev.received.message,
                            ev.received.dataset)
            if not ev.final:
                return  # no request of ours has pending responses to report yet
            fut = self._futures.pop(ev.message_id, None)
            if fut is not None and not fut.done():
                fut.set_result(ev.received)
            if self._invoke_waiters:
                self._wake_invoker()
            if self._idle_waiters:
                self._check_idle()
        elif type(ev) is UnknownResponse:
            log.warning("response to unknown Message ID %s ignored", ev.message_id)
        elif type(ev) is BadRequest:
            self._on_bad_request(ev)
        else:  # ReleaseReady comes from follow_ups only
            raise AssertionError(f"unexpected session event {ev!r}")  # pragma: no cover

    def _on_bad_request(self, ev: BadRequest) -> None:
        """A request whose command we refuse: answer with its failure status, or abort."""
        rsp = failure_response(ev.command_field, ev.message_id, ev.status)
        if rsp is None or self._session is None:
            log.warning("undecodable DIMSE message from %s: %s; aborting", peer_of(self),
                        ev.error)
            self.abort(source=2, reason=0)
            return
        log.warning("answering a malformed request from %s with 0x%04X: %s", peer_of(self),
                    ev.status, ev.error)
        self._send_pdus(self._session.encode(ev.context_id, rsp, None))
        if self.observer is not None:
            self.observer.request_answered(ev.message_id, ev.command_field, ev.context_id,
                                           ev.status)

    def _serve(self, received: ReceivedMessage, kind: RequestKind, debug: bool) -> None:
        """Run the handler for one request: its first step now, inside this callback.

        A handler that never suspends (the usual one) is answered at once, with no
        Task, no coroutine of ours and no loop iteration; one that suspends goes on
        in a Task that answers when it ends. ``debug``: DEBUG logging is on.
        """
        if self.observer is not None:
            self.observer.request_started(received.message, received.context_id)
        if self._deflated and received.context_id in self._deflated and (
                received.dataset is not None and type(received.dataset) is not Inflated):
            self._track(self.loop.create_task(self._inflate_then_serve(received, kind, debug)))
            return
        context = self._contexts[received.context_id]
        handlers = self.handlers  # Handlers.lookup(), inlined when nothing routes by class
        handler = (handlers.lookup(kind.event, context.abstract_syntax) if handlers.by_syntax
                   else handlers.wide.get(kind.event))
        if handler is None:
            self._answer(received, kind, kind.default_result, debug)
            return
        event = Event.for_request(self, kind.event, context,
                                  received.message, received.dataset, decode_dataset)
        try:
            if handler.is_async:
                # (without arguments no unpacking call: the usual handler, per request)
                coro = (handler.func(event, *handler.args) if handler.args
                        else handler.func(event))
                if _GUARD_EXIT:
                    coro = _guard_exit(coro)
                result = run_eager(self.loop, coro)
            else:
                result = run_eager(self.loop, call_handler(handler, event))
        except asyncio.CancelledError:  # cancelled in its first step: no answer
            self._dropped(received)
            return
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the handler's own
            log_handler_failure(kind.event.name, exc, self, ": answering 0x0110")
            result = kind.failure_result
        except BaseException:
            self._dropped(received)
            raise
        if type(result) is Suspended:
            overdue = _Overdue(received, kind, debug)
            task = result.start(self._serve_rest(overdue, result.rest))
            self._track(task)
            limit = self.ae.handler_timeout
            if limit is not None and limit > 0:
                overdue.timer = self.loop.call_later(limit, self._on_overdue, task, overdue)
            return
        self._answer(received, kind, result, debug)

    async def _serve_rest(self, overdue: _Overdue, rest: Awaitable[Any]) -> None:
        """The rest of a handler that suspended, then its answer (unless overdue)."""
        kind = overdue.kind
        try:
            try:
                result = await rest
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                if not overdue.answered:
                    log_handler_failure(kind.event.name, exc, self, ": answering 0x0110")
                result = kind.failure_result
        except BaseException:  # cancelled: no answer (given already if overdue)
            if not overdue.answered:
                overdue.answered = True
                overdue.cancel_timer()
                self._dropped(overdue.received)
            raise
        if overdue.answered:  # answered 0x0110 when its time ran out: result dropped
            log.debug("%s handler ended after its time limit: result dropped", kind.event.name)
            return
        overdue.answered = True
        overdue.cancel_timer()
        self._answer(overdue.received, kind, result, overdue.debug)

    def _on_overdue(self, task: asyncio.Task[Any], overdue: _Overdue) -> None:
        """The handler time limit: answer 0x0110 now, then cancel the handler."""
        overdue.timer = None
        if overdue.answered:
            return
        overdue.answered = True
        log.warning("%s handler from %s still running after %ss: answering 0x0110 and "
                    "cancelling it", overdue.kind.event.name, peer_of(self),
                    self.ae.handler_timeout)
        self._answer(overdue.received, overdue.kind, overdue.kind.failure_result,
                     overdue.debug)
        task.cancel()

    def _refuse(self, received: ReceivedMessage) -> None:
        """A request that came after the server began to stop: refused, not handled."""
        rq: Any = received.message
        # C-STORE/FIND/GET/MOVE: 0xA700 (Refused: out of resources); N-services and C-ECHO:
        status = (0xA700 if rq.command_field < 0x0100 and rq.command_field != 0x0030
                  else RESOURCE_LIMITATION)
        rsp = failure_response(rq.command_field, rq.MessageID, status)
        if rsp is None or self._session is None:
            self._dropped(received)
            return
        log.info("refusing a request from %s with 0x%04X: the server is stopping",
                 peer_of(self), status)
        with contextlib.suppress(AiodimseError):
            self._send_pdus(self._session.respond(received, rsp, None))
            if self.observer is not None:
                self.observer.request_answered(rq.MessageID, rq.command_field,
                                               received.context_id, status)
        self._after_request()

    async def _inflate_then_serve(self, received: ReceivedMessage, kind: RequestKind,
                                  debug: bool) -> None:
        """Inflate the data set in steps (deflated.py), then serve as usual.

        Past a limit: 0x0213; a broken stream: 0x0110; neither reaches the handler.
        """
        ae = self.ae
        try:
            try:
                data = await inflate_in_steps(
                    received.dataset or b"", max_length=ae.maximum_dataset_size,
                    max_ratio=ae.maximum_inflate_ratio,
                )
            except DatasetDecodeError as exc:
                log.warning("%s refused: %s", kind.event.name, exc)
                status = Dataset()
                status.Status = refusal_status(exc)
                status.ErrorComment = str(exc)[:64]
                self._answer(received, kind, (status, None) if kind.with_dataset else status,
                             debug)
                return
        except BaseException:  # cancelled: no answer
            self._dropped(received)
            raise
        inflated = ReceivedMessage(received.context_id, received.message, data,
                                   received.error, received.shape)
        self._serve(inflated, kind, debug)

    def _dropped(self, received: ReceivedMessage) -> None:
        """A request ends without a response."""
        session = self._session
        if session is not None:
            session.drop(received)
        self._after_request()

    def _answer(self, received: ReceivedMessage, kind: RequestKind, result: object,
                debug: bool) -> None:
        """Send the response for a handler's result (on the long path or reused).

        Whatever goes wrong, the peer gets an answer while the association lives:
        a failure building the response falls back to a bare 0x0110. Under DEBUG
        logging every response is built (the log shows its message).
        """
        session: DIMSESession = self._session  # type: ignore[assignment]  # (made by now)
        if not (self.is_established or session.release_deferred):
            log.debug("association ended before the %s response", kind.event.name)
            self._dropped(received)
            return
        code = None
        if received.shape is not None:
            # Handlers return the same constant again and again: its status is
            # remembered by identity (only immutable results have one).
            if result is self._bare_result and kind is self._bare_kind:
                code = self._bare_code
            else:
                code = bare_status(kind, result)
                if code is not None and caches.enabled:
                    self._bare_result, self._bare_kind, self._bare_code = result, kind, code
            if code is not None and not debug:
                pdus = session.respond_reused(received, code)
                if pdus is not None:  # answered: sent through the protocol directly
                    proto = self.proto
                    try:
                        if proto is None:
                            raise AssociationAbortedError("the association has ended")
                        proto.send_pdata(pdus)
                    except AiodimseError as exc:
                        log.warning("could not answer a request: %s", exc)
                    if self.observer is not None:
                        rq: Any = received.message
                        self.observer.request_answered(rq.MessageID, rq.command_field,
                                                       received.context_id, code)
                    if session.backlog or self._idle_waiters:
                        self._after_request()
                    return
        answered = False
        try:
            rsp, data = self._response(kind, received.message, result,
                                       self._contexts[received.context_id])
            answered = True
            pdus = session.respond(received, rsp, data, code)
            if debug:
                log_message("sent", received.context_id, rsp, data)
            self._send_pdus(pdus)
            if self.observer is not None:
                answered_rq: Any = received.message
                self.observer.request_answered(answered_rq.MessageID, answered_rq.command_field,
                                               received.context_id, rsp.Status)
        except AiodimseError as exc:
            log.warning("could not answer a request: %s", exc)
        finally:
            if not answered:
                session.drop(received)
            if session.backlog or self._idle_waiters:
                self._after_request()

    @staticmethod
    def _response(kind: RequestKind, rq: Any, result: object, context: PresentationContext
                  ) -> tuple[Any, bytes | None]:
        try:
            return build_response(kind, rq, result, context)
        except Exception as exc:
            log.warning("could not build the %s response: answering 0x0110: %s",
                        kind.event.name, exc)
            if debug_on():
                log.debug("response traceback", exc_info=exc)
            fallback = failure_response(rq.command_field, rq.MessageID, 0x0110)
            if fallback is None:  # every request kind has a response type
                raise
            return fallback, None

    def _after_request(self) -> None:
        """A request was answered: start queued ones, answer a deferred release, wake
        ``wait_idle``. Not re-entered: one loop, not a frame per queued request."""
        session = self._session
        if session is not None and session.backlog and not self._following:
            self._following = True
            try:
                while events := session.follow_ups():
                    for ev in events:
                        if type(ev) is ReceivedMessage:
                            self._on_request(ev, debug_on())
                        else:  # ReleaseReady
                            self._respond_release()
            finally:
                self._following = False
            if session.held != self._held:
                self._sync_held(session)
        if self._idle_waiters:
            self._check_idle()

    # -- read back pressure ---------------------------------------------------------

    def _sync_held(self, session: DIMSESession) -> None:
        """Charge the budgets with what the session holds (queued requests, the partial
        message) since the last call."""
        held = session.held
        delta, self._held = held - self._held, held
        self._charge(delta)

    def _charge(self, delta: int) -> None:
        """Stop or restart reading on the budgets, ``delta`` more bytes being held.

        Reading stops past ``AE.maximum_association_buffered`` while requests are
        queued (they will drain), or when the server's sum passes
        ``AE.maximum_server_buffered``; it restarts once this association is at
        half its budget (or has nothing queued) and the server at half its own.
        """
        if self._ended.done():  # given back in _finish
            return
        server = self.server
        server_over = server is not None and server.charge(self, delta)
        limit = self.ae.maximum_association_buffered
        queued = self._session is not None and self._session.queued
        if not self._read_held:
            if server_over or (self._held > limit and queued):
                self._hold_reading(True)
        elif delta < 0 and (self._held <= limit >> 1 or not queued):
            self.budget_check()

    def budget_check(self) -> None:
        """Restart reading if no budget holds it now (the server calls it as it drains)."""
        if not self._read_held:
            return
        server = self.server
        if server is not None and not server.below_low_water():
            return
        queued = self._session is not None and self._session.queued
        if self._held <= self.ae.maximum_association_buffered >> 1 or not queued:
            self._hold_reading(False)

    def _hold_reading(self, hold: bool) -> None:
        self._read_held = hold
        if self.server is not None:
            self.server.reading_held(self, hold)
        if self.proto is not None:
            self.proto.hold_reading(hold)

    # -- data transfer: outgoing ----------------------------------------------------

    def _send_pdus(self, pdus: bytes) -> None:
        proto = self.proto
        if proto is None or proto.closed:
            raise AssociationAbortedError("the association has ended")
        try:
            proto.send_pdata(pdus)
        except LocalProtocolError as exc:
            raise AssociationAbortedError(f"cannot send now: {exc}") from exc

    def _wake_invoker(self) -> None:
        waiters = self._invoke_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _request(
        self,
        context: PresentationContext,
        command: Any,
        dataset: Dataset | None,
        data: bytes | None = None,
    ) -> Awaitable[ReceivedMessage]:
        """Send one request; return what to await for its response (DIMSE timeout).

        Mostly the response's future itself: a sequential caller's request then costs
        no coroutine of ours. Waiting for a free invocation slot, or for the transport
        to drain, goes through a coroutine. ``data``: ``dataset`` already encoded.
        ``command``: its command set for a Message ID (``RequestCommand``).
        """
        if not self.is_established or self._ended.done():
            raise AssociationAbortedError("the association is not established")
        if dataset is not None:
            data = encode_dataset(dataset, context.transfer_syntax)
        proto = self.proto
        if proto is None:  # (dropped when the connection closed)
            raise self._end_error()
        session = self._session
        if session is None:
            session = self._new_session()
        try:  # validates the command: raises before sending
            msg_id, pdus = session.send_request(context.context_id, command, data,
                                                proto.clock(), self.dimse_timeout)
        except WindowFull:
            return self._request_when_free(context, command, data)
        fut: _Future = proto.response_future()
        self._futures[msg_id] = fut
        try:
            if debug_on():
                log_message("sent", context.context_id, command.message(msg_id), data)
            self._send_pdus(pdus)
        except BaseException:
            self._futures.pop(msg_id, None)
            session.forget(msg_id)
            raise
        if self._dimse_timer is None and self.dimse_timeout is not None:
            self._arm_dimse_timer(session)
        if proto.write_paused:  # drain() only waits while paused
            return self._after_drain(proto, fut)
        return fut

    async def _request_when_free(
        self, context: PresentationContext, command: RequestCommand, data: bytes | None
    ) -> ReceivedMessage:
        """``_request`` once the peer's invocation window has room for one more."""
        session = self._session
        while session is not None and not session.can_invoke:
            waiter = self.loop.create_future()
            if self._invoke_waiters is None:
                self._invoke_waiters = deque()
            self._invoke_waiters.append(waiter)
            await waiter
            if self._ended.done():
                raise self._end_error()
        return await self._request(context, command, None, data)

    @staticmethod
    async def _after_drain(
        proto: DULProtocol, fut: Awaitable[ReceivedMessage]
    ) -> ReceivedMessage:
        await proto.drain()
        return await fut

    def _arm_dimse_timer(self, session: DIMSESession) -> None:
        """One timer per association on the session's next deadline (none per request)."""
        deadline = session.next_deadline()
        if deadline is not None:
            self._dimse_timer = self.loop.call_at(deadline, self._on_dimse_timer)

    def _on_dimse_timer(self) -> None:
        self._dimse_timer = None
        session = self._session
        if session is None or self._ended.done():
            return
        expired = session.handle_timer(self.clock())
        if not expired:
            self._arm_dimse_timer(session)  # the earliest was answered: the next one
            return
        for ev in expired:
            log.warning("no response to Message ID %d within %ss: aborting", ev.message_id,
                        self.dimse_timeout)
            fut = self._futures.pop(ev.message_id, None)
            if fut is not None and not fut.done():
                fut.set_exception(DIMSETimeoutError(
                    f"no response within the DIMSE timeout ({self.dimse_timeout}s)"
                ))
        self.abort()

    def _context_for(self, sop_class_uid: str, meta_uid: str | None, *, as_scp: bool = False
                     ) -> PresentationContext:
        wanted = meta_uid or sop_class_uid
        fallback = None
        for ctx in self.accepted_contexts:
            if ctx.abstract_syntax == wanted:
                if (ctx.as_scp if as_scp else ctx.as_scu):
                    return ctx
                fallback = fallback or ctx
        if fallback is not None:
            return fallback
        raise ValueError(f"no accepted presentation context for {wanted}")

    def _result(self, received: ReceivedMessage, *, reply: bool
                ) -> tuple[Dataset, Dataset | None]:
        msg: Any = received.message
        status = status_dataset(msg)
        if not reply or received.dataset is None:
            return status, None
        if not is_performed(int(msg.Status)):
            return status, None
        ctx = self._contexts[received.context_id]
        return status, decode_dataset(received.dataset, ctx.transfer_syntax,
                                      max_inflated_length=self.ae.maximum_dataset_size,
                                      max_inflate_ratio=self.ae.maximum_inflate_ratio)

    # -- release and abort ------------------------------------------------------------

    def _on_release_rq(self, collision: bool) -> None:
        if collision:
            if self.is_requestor:  # PS3.8 7.2.2: the requestor answers first
                self._respond_release()
            return  # the acceptor answers after the requestor's A-RELEASE-RP
        # answered once the running and queued requests are (session: ReleaseReady)
        if self._session is None or self._session.receive_release():
            self._respond_release()

    def _respond_release(self) -> None:
        if self.proto is not None and self.proto.respond_release():
            self._mark_released()

    def _on_release_rp(self) -> None:
        if self.proto is not None and self.proto.state is STA12:  # collision, acceptor
            self._respond_release()
        self._mark_released()

    def _mark_released(self) -> None:
        if not self.is_released:
            self.is_released = True
            self.is_established = False
            self._notify(evt.EVT_RELEASED)
            self._fail_outstanding()

    def _mark_aborted(self, why: str, source: int | None, reason: int | None) -> None:
        if self.is_aborted or self.is_released:
            return
        self.is_aborted = True
        was_established = self.is_established
        self.is_established = False
        err = AssociationAbortedError(why, source=source, reason=reason)
        if self._end_reason is None:
            self._end_reason = err
        self._fail_established(self._end_reason)
        self._fail_outstanding()
        if was_established or not self.is_rejected:
            self._notify(evt.EVT_ABORTED)

    def _protocol_abort(self, exc: AiodimseError) -> None:
        log.warning("protocol error from %s: %s", peer_of(self), exc)
        source = getattr(exc, "abort_source", 2)
        reason = getattr(exc, "abort_reason", 0)
        self.abort(source=source, reason=reason)

    def _end_error(self) -> AssociationError:
        """Why requests fail now; made on first use (a clean release usually needs none)."""
        if self._end_reason is None:
            why = "released" if self.is_released else "has ended"
            self._end_reason = AssociationAbortedError(f"the association {why}")
        return self._end_reason

    def _fail_outstanding(self) -> None:
        if self._futures:
            err = self._end_error()
            for fut in self._futures.values():
                if not fut.done():
                    fut.set_exception(err)
            self._futures.clear()
        if self._session is not None:
            self._session.end()
        if self._dimse_timer is not None:
            self._dimse_timer.cancel()
            self._dimse_timer = None
        waiters = self._invoke_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _finish(self) -> None:
        if self._held:  # given back: queued requests and a partial message go with it
            if self.server is not None:
                self.server.charge(self, -self._held)
                self.server.reading_held(self, False)
            self._held = 0
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._wake_idle_waiters()
        if not self._established.done():
            self._fail_established(self._end_error())
        self._fail_outstanding()
        if not self._ended.done():
            self._ended.set_result(None)
            if self._started and enabled(INFO):
                why = "released" if self.is_released else str(self._end_reason or "aborted")
                log.info("%s ended: %s after %.3f s, %d request(s) received", self._who(), why,
                         self.clock() - self._started, self._requests)
            if self.server is not None:
                self.server.association_ended(self)

    def _wake_idle_waiters(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def release(self) -> None:
        """Release the association and wait until it has ended (ACSE timeout bound)."""
        if self._ended.done():
            return
        if self.is_established and self.proto is not None:
            self.proto.request_release()
        await asyncio.shield(self._ended)

    def abort(self, *, source: int = 0, reason: int = 0) -> None:
        """Abort at once: send A-ABORT and close; outstanding requests fail."""
        if self.proto is not None:
            self.proto.abort(source=source, reason=reason)
        self._mark_aborted("association aborted (local)", source, reason)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._ended)

    @property
    def is_alive(self) -> bool:
        return not self._ended.done()

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

    # -- idle -------------------------------------------------------------------------

    def _check_idle(self) -> None:
        if self._idle_waiters and not self.in_flight:
            self._wake_idle_waiters()

    async def wait_idle(self) -> None:
        """Wait until no request is in flight either way (or the association ended)."""
        if not self.in_flight or self._ended.done():
            return
        waiter = self.loop.create_future()
        self._idle_waiters.append(waiter)
        await waiter

    def on_end(self, callback: Any) -> None:
        """Call ``callback(assoc)`` once the connection has closed."""
        self._ended.add_done_callback(lambda _f: callback(self))

    def _start_idle_timer(self) -> None:
        """Network timeout: a server sweeps its associations; a requestor has a timer."""
        if self.server is not None:
            self.server.watch_idle()
            return
        timeout = self.ae.network_timeout
        if timeout is not None and timeout > 0:
            self._idle_timer = self.loop.call_at(
                self._last_activity + timeout, self._on_idle_timer
            )

    def _on_idle_timer(self) -> None:
        self._idle_timer = None
        timeout = self.ae.network_timeout
        if timeout is None or timeout <= 0 or self._ended.done():
            return
        now = self.clock()
        if not self.check_idle(now, timeout):
            due = self._last_activity + timeout
            self._idle_timer = self.loop.call_at(max(due, now + timeout / 8), self._on_idle_timer)

    def check_idle(self, now: float, timeout: float) -> bool:
        """Abort if nothing came in for ``timeout`` and nothing is in flight; True if so.

        PS3.8 leaves the network timeout to us: an association whose peer went silent
        with no request of ours or theirs outstanding is given up.
        """
        proto = self.proto
        if proto is not None and proto.received_at > self._last_activity:
            self._last_activity = proto.received_at  # what came in since the last check
        if now - self._last_activity < timeout or self.in_flight or self._ended.done():
            return False
        log.info("no activity for %ss: aborting the association", timeout)
        self.abort(source=2, reason=0)
        return True

    # -- helpers ------------------------------------------------------------------------

    def _track(self, task: asyncio.Task[Any]) -> None:
        """Hold a handler's task until it ends, beyond the association's own life.

        The set belongs to the server (which cancels what is left when it stops), or
        to the module for a requestor's associations: a task must never be left to
        the garbage collector while it waits.
        """
        tasks = self.server.handler_tasks if self.server is not None else _HANDLER_TASKS
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _notify(self, event_type: evt.EventType, **extra: Any) -> None:
        if not self.handlers.notifies:
            return
        bound = self.handlers.get(event_type)
        if not bound:
            return
        event = Event(self, event_type, extra=extra)
        for b in bound:
            self._track(self.loop.create_task(self._run_notification(b, event)))

    @staticmethod
    async def _run_notification(bound: Any, event: Event) -> None:
        try:
            await call_handler(bound, event)
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            log_handler_failure(event.name, exc, event.assoc)


# The association's own caches (docs/internals.md, "Caches"), for the registry's probes.
caches.register("association.bare_status", "association",
                lambda assoc: assoc.caches_held()[0])
caches.register("dimse.commands.last_shape", "association",
                lambda assoc: assoc.caches_held()[1])
caches.register("dimse.memo.last_response", "association",
                lambda assoc: assoc.caches_held()[2])
