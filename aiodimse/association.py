"""An established (or establishing) association: message dispatch both ways.

The association receives upper-layer events from the transport adapter, reassembles
DIMSE messages, runs handlers for incoming requests (up to the negotiated window)
and matches incoming responses to the futures of outgoing requests by Message ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pydicom.dataset import Dataset

from . import caches, evt
from .aio.eager import Suspended, run_eager
from .aio.prompt import PromptFuture
from .aio.protocol import DULProtocol, loop_clock
from .compat import level_cache_get
from .datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    DatasetDecodeError,
    Inflated,
    decode_dataset,
    encode_dataset,
    refusal_status,
)
from .deflated import inflate_in_steps
from .describe import (
    accepted_summary,
    describe_associate_ac,
    describe_associate_rq,
    describe_rejection,
)
from .dimse import (
    MessageAssembler,
    ReceivedMessage,
    encode_command,
    encode_message,
)
from .dimse.memo import ResponseMemo
from .errors import (
    AiodimseError,
    AssociationAbortedError,
    AssociationError,
    AssociationRejectedError,
    DIMSEError,
    DIMSETimeoutError,
    LocalProtocolError,
)
from .errors import describe_rejection as rejection_words
from .events import Event
from .handlers import HandlerExit, Handlers, call_handler
from .logs import get_logger, peer_of
from .presentation import PresentationContext
from .requests import (
    RequestKind,
    bare_status,
    build_response,
    failure_response,
    kind_for_type,
    kind_of,
    status_dataset,
)
from .scu import ServiceCalls
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
from .ul.machine import UpperLayer
from .ul.states import STA1, STA3, STA12, STA13
from .wire.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ, Fragment

if TYPE_CHECKING:
    from .ae import AE
    from .observe import AssociationRecord

__all__ = [
    "Association",
    "ServiceUser",
    "AssociationError",
    "AssociationRejectedError",
    "AssociationAbortedError",
    "DIMSETimeoutError",
]

log = get_logger("aiodimse.association")

_debug = functools.partial(log.isEnabledFor, logging.DEBUG)
# logging's per-level answer cache, read on the per-message paths: a dict lookup
# instead of a Python call (None until isEnabledFor has filled it; logging clears
# it whenever levels change, and log.debug checks again anyway).
_debug_cached = level_cache_get(log)
_DEBUG = logging.DEBUG
_INFO = logging.INFO


def _enabled(level: int) -> bool:
    """``log.isEnabledFor(level)``, from logging's per-level answers when it has one."""
    known = _debug_cached(level)
    return log.isEnabledFor(level) if known is None else bool(known)


def _log_message(direction: str, context_id: int, msg: Any, dataset: Any) -> None:
    """The DEBUG summary of one DIMSE message (nothing is formatted at INFO)."""
    ident = getattr(msg, "MessageID", None) or getattr(msg, "MessageIDBeingRespondedTo", "")
    status = getattr(msg, "Status", None)
    log.debug(
        "%s %s id=%s context=%d%s%s", direction, type(msg).__name__, ident, context_id,
        f" status=0x{status:04X}" if status is not None else "",
        f" dataset={len(dataset)} bytes" if dataset is not None else "",
    )


def _flood_average(max_pdu: int) -> int:
    """The least average fragment size a peer filling its PDUs sends (else: a flood).

    128 bytes, or less when our Maximum Length lets a peer send no more.
    """
    return 128 if not max_pdu else max(1, min(128, (max_pdu - 6) // 2))


_REQUEST_COST = 1024
"""Bytes a queued request holds beyond its data set (its message and command objects)."""


def _queued_cost(received: ReceivedMessage) -> int:
    data = received.dataset
    return _REQUEST_COST if data is None else _REQUEST_COST + len(data)


def _log_handler_failure(what: str, exc: BaseException, assoc: object,
                         answer: str = "") -> None:
    """One line at WARNING (folded when it repeats), the traceback at DEBUG."""
    log.warning("%s handler raised %s for %s%s: %s", what, type(exc).__name__,
                peer_of(assoc), answer, exc)
    if _debug():
        log.debug("%s handler traceback", what, exc_info=exc)


def _log_lines(head: str, text: str) -> None:
    """A multi-line description at DEBUG, a record per line (the log filter escapes
    line breaks inside one record, so that no peer text can start a line)."""
    log.debug("%s", head)
    for line in text.splitlines():
        log.debug("  %s", line)


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


_Accepted = tuple[list[PresentationContext], list[tuple[int, str, int]], int, int]


class _Outstanding(NamedTuple):
    """A request awaiting its response (made by ``tuple.__new__``: one per request)."""

    future: asyncio.Future[ReceivedMessage] | PromptFuture[ReceivedMessage]
    deadline: float  # loop time by which the response is due; inf without a timeout
    context: PresentationContext


_new_outstanding = tuple.__new__


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
        "_assembler",
        "_bare_code",
        "_bare_kind",
        "_bare_result",
        "_contexts",
        "_deflated",
        "_dimse_timer",
        "_end_reason",
        "_ended",
        "_established",
        "_held",
        "_idle_timer",
        "_idle_waiters",
        "_invoke_limit",
        "_invoke_waiters",
        "_last_activity",
        "_next_id",
        "_outstanding",
        "_partial",
        "_peer_max_pdu",
        "_pending",
        "_perform_limit",
        "_read_held",
        "_release_pending",
        "_requests",
        "_rsp_memo",
        "_running",
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
        "ul",
    )

    def __init__(
        self,
        ae: AE,
        *,
        is_requestor: bool,
        handlers: Handlers,
        ul: UpperLayer,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` is ``loop_clock(loop)``, passed by a server (worked out once)."""
        self.ae = ae
        self.is_requestor = is_requestor
        self.is_acceptor = not is_requestor
        self.handlers = handlers
        self.ul = ul
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
        self._assembler: MessageAssembler | None = None
        self._peer_max_pdu = 0
        self._invoke_limit = 1
        self._perform_limit = 1
        self._next_id = 0
        self._outstanding: dict[int, _Outstanding] = {}
        self._dimse_timer: asyncio.TimerHandle | None = None
        # Created on first use: most associations never need them (memory per idle
        # association is a scalability target).
        self._invoke_waiters: deque[asyncio.Future[None]] | None = None
        self._pending: deque[ReceivedMessage] | None = None
        self._held = 0  # bytes of queued requests and a partial message (budgets)
        self._partial = 0  # the partial message's share of _held
        self._read_held = False  # reading stopped by a budget
        self._running = 0
        self._requests = 0  # requests received, for the end-of-association INFO line
        self._started = 0.0  # clock time when established
        self._release_pending = False
        self._rsp_memo: ResponseMemo | None = None  # the last response, for reuse
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
        self.server: Any = None  # the Server that accepted this association, if any
        self.draining = False  # set by a server shutting down
        self.observer: AssociationRecord | None = None  # set by an observed server

    def __repr__(self) -> str:
        side = "requestor" if self.is_requestor else "acceptor"
        return (
            f"<Association {side} {self.requestor.ae_title!r}->{self.acceptor.ae_title!r} "
            f"established={self.is_established}>"
        )

    # -- adapter callbacks (ULUser) -------------------------------------------------

    def connection_made(self, proto: DULProtocol) -> None:
        self.proto = proto
        host, port = proto.peername
        peer = self.acceptor if self.is_requestor else self.requestor
        peer.address, peer.port = host, port
        if self.server is not None:  # (it counts by the peer's address)
            self.server.register(self)
        if self.is_acceptor:
            self.ul.transport_indication(self.clock())
        else:
            self.ul.transport_connected(self.clock())
        proto.flush()
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
                self.ul_fragments(ev.fragments)
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
                self._on_aborted(ev)

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
        if _enabled(_INFO) and _debug():  # (INFO first: one dict lookup when quiet)
            _log_lines(f"received from {peer_of(self)}:", describe_associate_rq(rq))
        self._notify(evt.EVT_REQUESTED)
        if self.decide is None:  # not from a server: nobody can accept
            self._send_reject(AAssociateRJ(result=1, source=1, reason=1))
            return
        pending = self.decide(self, rq)  # None: answered already
        if pending is not None:
            self._track(self.loop.create_task(pending))

    def _send_accept(self, ac: AAssociateAC, contexts: list[PresentationContext],
                     invoke_limit: int, perform_limit: int, encoded: bytes | None = None
                     ) -> None:
        """Acceptor: send the A-ASSOCIATE-AC and start data transfer."""
        if self.proto is None or self.proto.closed or self.ul.state is not STA3:
            return
        self.acceptor.maximum_length = ac.user_information.maximum_length or 0
        self.acceptor.implementation_class_uid = ac.user_information.implementation_class_uid
        self.acceptor.implementation_version_name = (
            ac.user_information.implementation_version_name
        )
        self._set_contexts(contexts, peer_max=self.requestor.maximum_length)
        self._invoke_limit, self._perform_limit = invoke_limit, perform_limit
        self.ul.accept(ac, self.clock(), encoded=encoded)
        self.proto.flush()
        self.is_established = True
        self._established.set_result(None)
        self._start_idle_timer()
        self._log_established(ac)
        self._notify(evt.EVT_ACCEPTED)
        self._notify(evt.EVT_ESTABLISHED)

    def _send_reject(self, rj: AAssociateRJ) -> None:
        if self.proto is None or self.proto.closed or self.ul.state is not STA3:
            return
        self.ul.reject(rj, self.clock())
        self.proto.flush()
        self.is_rejected = True
        self._end_reason = AssociationRejectedError(rj.result, rj.source, rj.reason)
        if _enabled(_INFO):
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
        self._set_contexts(contexts, peer_max=self.acceptor.maximum_length)
        self._invoke_limit, self._perform_limit = invoke_limit, perform_limit
        self.is_established = True
        if not self._established.done():
            self._established.set_result(None)
        self._start_idle_timer()
        self._log_established(ac)
        self._notify(evt.EVT_ACCEPTED)
        self._notify(evt.EVT_ESTABLISHED)

    def _on_associate_rj(self, rj: AAssociateRJ) -> None:
        if _enabled(_INFO):
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

    def _log_established(self, ac: AAssociateAC) -> None:
        """INFO: who, the accepted and rejected contexts, the PDU sizes; DEBUG: the AC."""
        self._started = self.clock()
        if not _enabled(_INFO):  # (nor DEBUG, below it)
            return
        if _debug():
            _log_lines(f"{'sent to' if self.is_acceptor else 'received from'} {peer_of(self)}:",
                       describe_associate_ac(ac, self.proposal))
        accepted = accepted_summary(
            (c.abstract_syntax, c.transfer_syntax) for c in self.accepted_contexts)
        refused = sum(1 for pc in ac.presentation_contexts if pc.result != 0)
        log.info("%s accepted: %s%s; max PDU %d/%d", self._who(), accepted or "no contexts",
                 f"; {refused} context(s) refused" if refused else "",
                 self.requestor.maximum_length, self.acceptor.maximum_length)

    def _log_ended(self) -> None:
        """INFO, once an established association has ended: how, how long, how busy."""
        if not self._started or not _enabled(_INFO):
            return
        why = "released" if self.is_released else str(self._end_reason or "aborted")
        log.info("%s ended: %s after %.3f s, %d request(s) received", self._who(), why,
                 self.clock() - self._started, self._requests)

    def _set_contexts(self, contexts: list[PresentationContext], *, peer_max: int) -> None:
        self.accepted_contexts = contexts
        self._contexts = {c.context_id: c for c in contexts}
        self._deflated = frozenset(c.context_id for c in contexts
                                   if c.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
        self._peer_max_pdu = peer_max
        # the MessageAssembler is made with the first P-DATA (ul_fragments): many
        # associations carry none, or sit idle for long

    def _new_assembler(self) -> MessageAssembler:
        self._assembler = assembler = MessageAssembler(
            max_command_length=self.ae.maximum_command_size,
            max_dataset_length=self.ae.maximum_dataset_size,
            accepted_context_ids=frozenset(self._contexts),
            min_fragment_average=_flood_average(self.ae.maximum_pdu_size),
        )
        return assembler

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

    def ul_fragments(self, fragments: tuple[Fragment, ...]) -> None:
        """The PDVs of P-DATA received (DT-2 / AR-6), in order, for the DIMSE layer."""
        assembler = self._assembler
        if assembler is None:
            if not self.is_established:  # cannot happen after a correct state machine
                self.abort()
                return
            assembler = self._new_assembler()
        try:
            if len(fragments) == 2:
                received = assembler.whole_message(fragments)
                if received is not None:  # the usual request: command, then data set
                    self._on_message(received)
                    return
            feed = assembler.feed_pdv
            received = None
            for context_id, control, data in fragments:
                received = feed(context_id, control, data)
                if received is not None:
                    self._on_message(received)
            if received is None or self._partial:  # a message in progress, or was
                self._track_partial(assembler)
        except AiodimseError as exc:
            self._protocol_abort(exc)

    def _on_message(self, received: ReceivedMessage) -> None:
        if received.error is not None:
            self._on_bad_message(received, received.error)
            return
        msg = received.message
        debug = _debug_cached(_DEBUG)
        if debug is None:
            debug = _debug()
        if debug:
            _log_message("received", received.context_id, msg, received.dataset)
        kind = kind_for_type(type(msg))
        if kind is None:  # a response, or C-CANCEL
            rsp_id = getattr(msg, "MessageIDBeingRespondedTo", None)
            if rsp_id is None:
                return
            out = self._outstanding.pop(rsp_id, None)
            if out is None:
                if getattr(msg, "command_field", 0) != 0x0FFF:  # not C-CANCEL
                    log.warning("response to unknown Message ID %s ignored", rsp_id)
                return
            if not out.future.done():
                out.future.set_result(received)
            if self._invoke_waiters:
                self._wake_invoker()
            if self._idle_waiters:
                self._check_idle()
            return
        self._requests += 1
        if self.draining:
            self._refuse(received)
            return
        running = self._running
        if running and self._perform_limit and running >= self._perform_limit:
            if self._pending is None:
                self._pending = deque()
            self._pending.append(received)  # the peer overran the window: queue, stay liberal
            self._charge(_queued_cost(received))
            return
        self._running = running + 1
        self._serve(received, kind, debug)

    def _start_request(self, received: ReceivedMessage, kind: RequestKind) -> None:
        self._running += 1
        self._serve(received, kind, _debug())

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
            self._serve_deflated(received, kind, debug)
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
                coro = handler.func(event, *handler.args)
                if _GUARD_EXIT:
                    coro = _guard_exit(coro)
                result = run_eager(self.loop, coro)
            else:
                result = run_eager(self.loop, call_handler(handler, event))
        except asyncio.CancelledError:  # cancelled in its first step: no answer
            self._request_done()
            return
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the handler's own
            self._handler_failed(kind.event.name, exc)
            result = kind.failure_result
        except BaseException:
            self._request_done()
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
                    self._handler_failed(kind.event.name, exc)
                result = kind.failure_result
        except BaseException:  # cancelled: no answer (given already if overdue)
            if not overdue.answered:
                overdue.answered = True
                overdue.cancel_timer()
                self._request_done()
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

    def _handler_failed(self, what: str, exc: BaseException) -> None:
        _log_handler_failure(what, exc, self, ": answering 0x0110")

    def _refuse(self, received: ReceivedMessage) -> None:
        """A request that came after the server began to stop: refused, not handled."""
        rq: Any = received.message
        # C-STORE/FIND/GET/MOVE: 0xA700 (Refused: out of resources); N-services and C-ECHO:
        status = (0xA700 if rq.command_field < 0x0100 and rq.command_field != 0x0030
                  else RESOURCE_LIMITATION)
        rsp = failure_response(rq.command_field, rq.MessageID, status)
        context = self._contexts.get(received.context_id)
        if rsp is None or context is None:
            return
        log.info("refusing a request from %s with 0x%04X: the server is stopping",
                 peer_of(self), status)
        with contextlib.suppress(AiodimseError):
            self._send_message(context, rsp, None)
            if self.observer is not None:
                self.observer.request_answered(rq.MessageID, rq.command_field,
                                               received.context_id, status)

    def _serve_deflated(self, received: ReceivedMessage, kind: RequestKind, debug: bool) -> None:
        """Inflate the data set in steps (deflated.py) in a task, then serve as usual."""
        self._track(self.loop.create_task(self._inflate_then_serve(received, kind, debug)))

    async def _inflate_then_serve(self, received: ReceivedMessage, kind: RequestKind,
                                  debug: bool) -> None:
        """Past a limit: 0x0213; a broken stream: 0x0110; neither reaches the handler."""
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
            self._request_done()
            raise
        inflated = ReceivedMessage(received.context_id, received.message, data,
                                   received.error, received.shape)
        self._serve(inflated, kind, debug)

    def _request_done(self) -> None:
        self._running -= 1
        if self._pending or self._release_pending or self._idle_waiters:
            self._after_request()

    def _answer(self, received: ReceivedMessage, kind: RequestKind, result: object,
                debug: bool) -> None:
        """Send the response for a handler's result (on the long path or reused).

        Whatever goes wrong, the peer gets an answer while the association lives:
        a failure building the response falls back to a bare 0x0110. Under DEBUG
        logging every response is built (the log shows its message).
        """
        rq: Any = received.message
        try:
            if not (self.is_established or self._release_pending):
                log.debug("association ended before the %s response", kind.event.name)
                return
            shape = received.shape
            code = None
            if shape is not None:
                # Handlers return the same constant again and again: its status is
                # remembered by identity (only immutable results have one).
                if result is self._bare_result and kind is self._bare_kind:
                    code = self._bare_code
                else:
                    code = bare_status(kind, result)
                    if code is not None and caches.enabled:
                        self._bare_result, self._bare_kind, self._bare_code = result, kind, code
                if code is not None and not debug:
                    memo = self._rsp_memo
                    if memo is None:
                        memo = self._rsp_memo = ResponseMemo(self._peer_max_pdu)
                    pdus = memo.lookup(shape, code, received.context_id, rq.MessageID)
                    if pdus is not None:
                        self._send_pdus(pdus)
                        if self.observer is not None:
                            self.observer.request_answered(rq.MessageID, rq.command_field,
                                                           received.context_id, code)
                        return
            context = self._contexts[received.context_id]
            rsp, data = self._response(kind, rq, result, context)
            pdus = self._send_message(context, rsp, data)
            if self.observer is not None:
                self.observer.request_answered(rq.MessageID, rq.command_field,
                                               received.context_id, rsp.Status)
            if code is not None and shape is not None and data is None:
                memo = self._rsp_memo
                if memo is None:
                    memo = self._rsp_memo = ResponseMemo(self._peer_max_pdu)
                memo.offer(shape, code, received.context_id, pdus)
        except AiodimseError as exc:
            log.warning("could not answer a request: %s", exc)
        finally:
            self._running -= 1
            if self._pending or self._release_pending or self._idle_waiters:
                self._after_request()

    @staticmethod
    def _response(kind: RequestKind, rq: Any, result: object, context: PresentationContext
                  ) -> tuple[Any, bytes | None]:
        try:
            return build_response(kind, rq, result, context)
        except Exception as exc:
            log.warning("could not build the %s response: answering 0x0110: %s",
                        kind.event.name, exc)
            if _debug():
                log.debug("response traceback", exc_info=exc)
            fallback = failure_response(rq.command_field, rq.MessageID, 0x0110)
            if fallback is None:  # every request kind has a response type
                raise
            return fallback, None

    def _after_request(self) -> None:
        pending = self._pending
        while pending and (not self._perform_limit or self._running < self._perform_limit):
            received = pending.popleft()
            self._charge(-_queued_cost(received))
            kind = kind_of(received.message)
            if kind is not None:
                self._start_request(received, kind)
        if self._release_pending and not self._running and not self._pending:
            self._release_pending = False
            self._respond_release()
        self._check_idle()

    # -- read back pressure ---------------------------------------------------------

    def _track_partial(self, assembler: MessageAssembler) -> None:
        """Charge the message in progress (its bytes so far) to the budgets."""
        partial = assembler.buffered
        if partial != self._partial:
            delta = partial - self._partial
            self._partial = partial
            self._charge(delta)

    def _charge(self, delta: int) -> None:
        """Count ``delta`` more bytes held; stop or restart reading on the budgets.

        Reading stops past ``AE.maximum_association_buffered`` while requests are
        queued (they will drain), or when the server's sum passes
        ``AE.maximum_server_buffered``; it restarts once this association is at
        half its budget (or has nothing queued) and the server at half its own.
        """
        if self._ended.done():  # given back in _finish
            return
        self._held = held = self._held + delta
        server = self.server
        server_over = server is not None and server.charge(self, delta)
        limit = self.ae.maximum_association_buffered
        if not self._read_held:
            if server_over or (held > limit and self._pending):
                self._hold_reading(True)
        elif delta < 0 and (held <= limit >> 1 or not self._pending):
            self.budget_check()

    def budget_check(self) -> None:
        """Restart reading if no budget holds it now (the server calls it as it drains)."""
        if not self._read_held:
            return
        server = self.server
        if server is not None and not server.below_low_water():
            return
        if self._held <= self.ae.maximum_association_buffered >> 1 or not self._pending:
            self._hold_reading(False)

    def _hold_reading(self, hold: bool) -> None:
        self._read_held = hold
        if self.server is not None:
            self.server.reading_held(self, hold)
        if self.proto is not None:
            self.proto.hold_reading(hold)

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

    def _on_bad_message(self, received: ReceivedMessage, error: DIMSEError) -> None:
        """A request we cannot decode: answer with its failure status, or abort."""
        context = self._contexts.get(received.context_id)
        if error.message_id is None or error.command_field is None or context is None or (
            error.command_field & 0x8000
        ):
            log.warning("undecodable DIMSE message from %s: %s; aborting", peer_of(self), error)
            self.abort(source=2, reason=0)
            return
        rsp = failure_response(error.command_field, error.message_id, error.status)
        if rsp is None:
            self.abort(source=2, reason=0)
            return
        log.warning("answering a malformed request from %s with 0x%04X: %s", peer_of(self),
                    error.status, error)
        self._send_message(context, rsp, None)
        if self.observer is not None:
            self.observer.request_answered(error.message_id, error.command_field,
                                           received.context_id, error.status)

    # -- data transfer: outgoing ----------------------------------------------------

    def _send_message(self, context: PresentationContext, msg: Any,
                      dataset: bytes | memoryview | None) -> bytes:
        """Encode and send one message; return its P-DATA-TF bytes."""
        command = encode_command(msg, has_dataset=dataset is not None)
        pdus = encode_message(context.context_id, command, dataset, self._peer_max_pdu)
        if _debug():
            _log_message("sent", context.context_id, msg, dataset)
        self._send_pdus(pdus)
        return pdus

    def _send_pdus(self, pdus: bytes) -> None:
        proto = self.proto
        if proto is None or proto.closed:
            raise AssociationAbortedError("the association has ended")
        try:
            self.ul.send_pdata(pdus)
        except LocalProtocolError as exc:
            raise AssociationAbortedError(f"cannot send now: {exc}") from exc
        if not proto.receiving:  # else data_received writes it at its end
            proto.flush()

    def _allocate_id(self) -> int:
        """The next Message ID not awaiting a response (1-65535, wrapping)."""
        for _ in range(0x10000):
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self._outstanding:
                return self._next_id
        raise AssociationError("no free Message ID")  # pragma: no cover

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
        """
        if not self.is_established or self._ended.done():
            raise AssociationAbortedError("the association is not established")
        if dataset is not None:
            data = encode_dataset(dataset, context.transfer_syntax)
        if self._invoke_limit and len(self._outstanding) >= self._invoke_limit:
            return self._request_when_free(context, command, data)
        msg_id = self._next_id % 0xFFFF + 1
        if msg_id in self._outstanding:
            msg_id = self._allocate_id()
        self._next_id = msg_id
        cmd = command.encode(msg_id, data is not None)  # validates: raises before sending
        proto = self.proto
        if proto is None:  # (dropped when the connection closed)
            raise self._end_error()
        fut: asyncio.Future[ReceivedMessage] | PromptFuture[ReceivedMessage] = (
            proto.response_future()
        )
        deadline = math.inf
        if self.dimse_timeout is not None:
            deadline = proto.clock() + self.dimse_timeout
            if self._dimse_timer is None:
                self._dimse_timer = self.loop.call_at(deadline, self._on_dimse_timer)
        self._outstanding[msg_id] = _new_outstanding(_Outstanding, (fut, deadline, context))
        try:
            pdus = encode_message(context.context_id, cmd, data, self._peer_max_pdu)
            debug = _debug_cached(_DEBUG)
            if debug is None:
                debug = _debug()
            if debug:
                _log_message("sent", context.context_id, command.message(msg_id), data)
            self._send_pdus(pdus)
        except BaseException:
            self._outstanding.pop(msg_id, None)
            raise
        if proto._paused:  # drain() only waits while paused
            return self._after_drain(proto, fut)
        return fut

    async def _request_when_free(
        self, context: PresentationContext, command: Any, data: bytes | None
    ) -> ReceivedMessage:
        """``_request`` once the peer's invocation window has room for one more."""
        while self._invoke_limit and len(self._outstanding) >= self._invoke_limit:
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

    def _on_dimse_timer(self) -> None:
        """One timer per association, re-armed lazily (no timer handle per request)."""
        self._dimse_timer = None
        if not self._outstanding or self._ended.done():
            return
        now = self.clock()
        expired = [i for i, out in self._outstanding.items() if out.deadline <= now]
        if not expired:
            earliest = min(out.deadline for out in self._outstanding.values())
            if earliest != math.inf:
                self._dimse_timer = self.loop.call_at(earliest, self._on_dimse_timer)
            return
        for msg_id in expired:
            out = self._outstanding.pop(msg_id)
            log.warning("no response to Message ID %d within %ss: aborting", msg_id,
                        self.dimse_timeout)
            if not out.future.done():
                out.future.set_exception(DIMSETimeoutError(
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
        if self._running or self._pending:
            self._release_pending = True  # answer once in-flight requests are done
        else:
            self._respond_release()

    def _respond_release(self) -> None:
        if self.proto is None or self.proto.closed:
            return
        try:
            self.ul.respond_release(self.clock())
        except LocalProtocolError:
            return
        self.proto.flush()
        if self.ul.state in (STA13, STA1):
            self._mark_released()

    def _on_release_rp(self) -> None:
        if self.ul.state is STA12:  # release collision, acceptor side
            self._respond_release()
        self._mark_released()

    def _mark_released(self) -> None:
        if not self.is_released:
            self.is_released = True
            self.is_established = False
            self._notify(evt.EVT_RELEASED)
            self._fail_outstanding()

    def _on_aborted(self, ev: Aborted) -> None:
        self._mark_aborted(f"association aborted ({ev.cause})", ev.source, ev.reason)

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
        if self._outstanding:
            err = self._end_error()
            for out in self._outstanding.values():
                if not out.future.done():
                    out.future.set_exception(err)
            self._outstanding.clear()
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
            self._held = self._partial = 0
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._wake_idle_waiters()
        if not self._established.done():
            self._fail_established(self._end_error())
        self._fail_outstanding()
        if not self._ended.done():
            self._ended.set_result(None)
            self._log_ended()
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
        if self.is_established and self.proto is not None and not self.proto.closed:
            with contextlib.suppress(LocalProtocolError):  # already releasing
                self.ul.request_release(self.clock())
            self.proto.flush()
        await asyncio.shield(self._ended)

    def abort(self, *, source: int = 0, reason: int = 0) -> None:
        """Abort at once: send A-ABORT and close; outstanding requests fail."""
        if self.proto is None or self.proto.closed:
            self._mark_aborted("association aborted (local)", source, reason)
            return
        with contextlib.suppress(LocalProtocolError):  # already aborted or closing
            self.ul.abort(self.clock(), source=source, reason=reason)
        self._mark_aborted("association aborted (local)", source, reason)
        self.proto.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._ended)

    @property
    def is_alive(self) -> bool:
        return not self._ended.done()

    @property
    def in_flight(self) -> int:
        """Requests being handled or queued, plus our requests awaiting a response."""
        pending = len(self._pending) if self._pending else 0
        return self._running + pending + len(self._outstanding)

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

    def get_handlers(self, event: evt.EventType) -> list[Callable[..., Any]]:
        """The handlers bound to ``event`` on this association."""
        return [b.func for b in self.handlers.get(event)]

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
            _log_handler_failure(event.name, exc, event.assoc)


# The association's own caches (docs/internals.md, "Caches"), for the registry's probes.
caches.register("association.bare_status", "association",
                lambda assoc: int(assoc._bare_kind is not None))
caches.register("dimse.commands.last_shape", "association",
                lambda assoc: int(assoc._assembler is not None and assoc._assembler.shape_held()))
caches.register("dimse.memo.last_response", "association",
                lambda assoc: int(assoc._rsp_memo is not None and assoc._rsp_memo.holds()))
