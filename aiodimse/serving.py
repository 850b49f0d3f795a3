"""Serving the peer's requests on one association, beyond the usual request.

The association runs a handler eagerly (aio/eager.py) and answers its result at
once, reusing an encoded response where the session can: that is the server's hot
path, in methods of the association itself (answering.py's ``Answering.serve`` /
``answer``, a few attribute loads fewer per request). Everything else is here: a
handler that suspended goes on in a tracked Task under the AE's handler time limit
(past it the peer gets 0x0110 and the handler is cancelled); deflated data sets are
inflated in steps first; requests that arrive while the server stops are refused,
malformed ones answered with their failure status; a response is built (or a bare
0x0110 if it cannot be) and sent through the session. Whatever goes wrong, the peer
gets an answer while the association lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from pydicom.dataset import Dataset

from .aio.eager import Suspended
from .association_log import debug_on, log, log_handler_failure, log_message
from .datasets import (
    DatasetDecodeError,
    refusal_status,
)
from .deflated import inflate_in_steps
from .dimse.assemble import ReceivedMessage, sink_of
from .errors import AiodimseError
from .handlers import HandlerExit
from .logs import peer_of
from .reply_reuse import encoded_reply
from .requests import RequestKind, build_response, failure_response, served_apart
from .serving_query import serve_query
from .status import RESOURCE_LIMITATION, UNRECOGNIZED_OPERATION

if TYPE_CHECKING:
    from .dimse.session import BadRequest, DIMSESession
    from .observe import AssociationRecord
    from .presentation import PresentationContext
    from .settings import AESettings

__all__ = ["GUARD_EXIT", "Served", "Serving", "guard_exit"]

# On 3.12+ a handler Task runs the handler coroutine directly, and a Task re-raises
# SystemExit/KeyboardInterrupt into the event loop (stopping it): wrap it there
# (``guard_exit``, by Answering.serve).
GUARD_EXIT = sys.version_info >= (3, 12)


class Served(Protocol):
    """What serving asks of the association whose requests it runs (its events' ``assoc``)."""

    observer: AssociationRecord | None
    draining: bool

    def serve(self, received: ReceivedMessage, kind: RequestKind, debug: bool) -> None: ...

    def answer(self, received: ReceivedMessage, kind: RequestKind, result: object,
               debug: bool) -> None: ...

    def track(self, task: asyncio.Task[Any]) -> None: ...

    def send_pdus(self, pdus: bytes) -> None: ...

    def after_request(self) -> None: ...

    def abort(self, *, source: int = 0, reason: int = 0) -> None: ...


async def guard_exit(coro: Coroutine[Any, Any, Any]) -> Any:
    """Await a handler's coroutine; SystemExit/KeyboardInterrupt become HandlerExit."""
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


class Serving:
    """The rest of serving one association's requests (module doc).

    Made with the association's DIMSE session, once its contexts are known. The
    association is passed to each call, not held: no reference cycle, so that an
    ended association is freed by reference counting (its tasks hold it meanwhile).
    """

    __slots__ = ("contexts", "idle_waiters", "loop", "session", "settings")

    def __init__(self, session: DIMSESession,
                 contexts: dict[int, PresentationContext], settings: AESettings,
                 loop: asyncio.AbstractEventLoop, idle_waiters: list[asyncio.Future[None]]
                 ) -> None:
        self.session = session
        self.contexts = contexts
        self.settings = settings
        self.loop = loop
        # aio/idle.py's wait_idle waiters (one list for good): an answer wakes them
        # through after_request
        self.idle_waiters = idle_waiters

    def suspended(self, assoc: Served, suspended: Suspended, received: ReceivedMessage,
                  kind: RequestKind, debug: bool) -> None:
        """A handler suspended in its first step: the rest in a tracked Task, answered
        when it ends or when the handler time limit runs out (0x0110)."""
        overdue = _Overdue(received, kind, debug)
        task = suspended.start(self._serve_rest(assoc, overdue, suspended.rest))
        assoc.track(task)
        limit = self.settings.handler_timeout
        if limit is not None and limit > 0:
            overdue.timer = self.loop.call_later(limit, self._on_overdue, assoc, task, overdue)

    async def _serve_rest(self, assoc: Served, overdue: _Overdue, rest: Awaitable[Any]
                          ) -> None:
        """The rest of a handler that suspended, then its answer (unless overdue)."""
        kind = overdue.kind
        try:
            try:
                result = await rest
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                if not overdue.answered:
                    log_handler_failure(kind.event.name, exc, assoc, ": answering 0x0110")
                result = kind.failure_result
        except BaseException:  # cancelled: no answer (given already if overdue)
            if not overdue.answered:
                overdue.answered = True
                overdue.cancel_timer()
                self.dropped(assoc, overdue.received)
            raise
        if overdue.answered:  # answered 0x0110 when its time ran out: result dropped
            log.debug("%s handler ended after its time limit: result dropped", kind.event.name)
            return
        overdue.answered = True
        overdue.cancel_timer()
        assoc.answer(overdue.received, kind, result, overdue.debug)

    def _on_overdue(self, assoc: Served, task: asyncio.Task[Any], overdue: _Overdue
                    ) -> None:
        """The handler time limit: answer 0x0110 now, then cancel the handler."""
        overdue.timer = None
        if overdue.answered:
            return
        overdue.answered = True
        log.warning("%s handler from %s still running after %ss: answering 0x0110 and "
                    "cancelling it", overdue.kind.event.name, peer_of(assoc),
                    self.settings.handler_timeout)
        assoc.answer(overdue.received, overdue.kind, overdue.kind.failure_result,
                    overdue.debug)
        task.cancel()

    def unserved(self, assoc: Served, received: ReceivedMessage, kind: RequestKind | None
                 ) -> None:
        """A request not for a handler: C-FIND/GET/MOVE and C-CANCEL (serving_query.py),
        one served apart (C-STORE, its kind's ``serve``), one no service serves (0x0211,
        Unrecognized operation), or the server is stopping (refused)."""
        if kind is None:
            if serve_query(self, assoc, received):
                return
            kind = served_apart(received.message)
            if kind is not None and kind.serve is not None and not assoc.draining:
                kind.serve(assoc, received, kind, debug_on())
                return
        if kind is None:
            log.warning("no service for %s from %s: answered 0x0211",
                        type(received.message).__name__, peer_of(assoc))
            self._refuse(assoc, received, UNRECOGNIZED_OPERATION)
        else:
            rq: Any = received.message
            # C-STORE/FIND/GET/MOVE: 0xA700 (Refused: out of resources); N-services and
            # C-ECHO: 0x0213.
            self._refuse(assoc, received,
                         0xA700 if rq.command_field < 0x0100 and rq.command_field != 0x0030
                         else RESOURCE_LIMITATION)

    def _refuse(self, assoc: Served, received: ReceivedMessage, status: int) -> None:
        """Answer a request with ``status`` without a handler (none is dropped
        silently: C-CANCEL has no response)."""
        rq: Any = received.message
        sink = sink_of(received)
        if sink is not None:  # a C-STORE streamed to a file: not kept
            sink.discard()
        rsp = failure_response(rq.command_field, rq.MessageID, status)
        if rsp is None:
            self.dropped(assoc, received)
            return
        if status != UNRECOGNIZED_OPERATION:
            log.info("refusing a request from %s with 0x%04X: the server is stopping",
                     peer_of(assoc), status)
        with contextlib.suppress(AiodimseError):
            assoc.send_pdus(self.session.respond(received, rsp, None))
            if assoc.observer is not None:
                assoc.observer.request_answered(rq.MessageID, rq.command_field,
                                                received.context_id, status)
        assoc.after_request()

    def bad_request(self, assoc: Served, ev: BadRequest) -> None:
        """A request whose command we refuse: answer with its failure status, or abort
        if it has none (undecodable)."""
        rsp = failure_response(ev.command_field, ev.message_id, ev.status)
        if rsp is None:
            log.warning("undecodable DIMSE message from %s: %s; aborting", peer_of(assoc),
                        ev.error)
            assoc.abort(source=2, reason=0)
            return
        log.warning("answering a malformed request from %s with 0x%04X: %s", peer_of(assoc),
                    ev.status, ev.error)
        assoc.send_pdus(self.session.encode(ev.context_id, rsp, None))
        if assoc.observer is not None:
            assoc.observer.request_answered(ev.message_id, ev.command_field, ev.context_id,
                                            ev.status)

    async def inflate_then_serve(self, assoc: Served, received: ReceivedMessage,
                                 kind: RequestKind, debug: bool) -> None:
        """Inflate the data set in steps (deflated.py), then serve as usual.

        Past a limit: 0x0213; a broken stream: 0x0110; neither reaches the handler.
        """
        settings = self.settings
        try:
            try:
                data = await inflate_in_steps(
                    received.dataset or b"", max_length=settings.maximum_dataset_size,
                    max_ratio=settings.maximum_inflate_ratio,
                )
            except DatasetDecodeError as exc:
                log.warning("%s refused: %s", kind.event.name, exc)
                status = Dataset()
                status.Status = refusal_status(exc)
                status.ErrorComment = str(exc)[:64]
                assoc.answer(received, kind, (status, None) if kind.with_dataset else status,
                            debug)
                return
        except BaseException:  # cancelled: no answer
            self.dropped(assoc, received)
            raise
        inflated = ReceivedMessage(received.context_id, received.message, data,
                                   received.error, received.shape)
        assoc.serve(inflated, kind, debug)

    def dropped(self, assoc: Served, received: ReceivedMessage) -> None:
        """A request ends without a response."""
        self.session.drop(received)
        assoc.after_request()

    def answer_built(self, assoc: Served, received: ReceivedMessage,  # noqa: PLR0917
                     kind: RequestKind,
                     result: object, code: int | None, debug: bool) -> None:
        """Build and send the response for a handler's result (not reused).

        A failure building it falls back to a bare 0x0110. ``code``: the result's
        bare status if it has one.
        """
        session = self.session
        answered = False
        try:
            context = self.contexts[received.context_id]
            # (status, Dataset): the command reused, the reply encoded (reply_reuse.py)
            reply = (encoded_reply(kind, result, context)
                     if code is None and received.shape is not None and not debug else None)
            if reply is not None:
                pdus = session.respond_reused_with(received, *reply)
                if pdus is None:
                    rsp, _ = _response(kind, received.message, (reply[0], None), context)
                    answered = True
                    pdus = session.respond(received, rsp, reply[1], reply[0])
                answered = True
                status = reply[0]
            else:
                rsp, data = _response(kind, received.message, result, context)
                answered = True
                pdus = session.respond(received, rsp, data, code)
                status = rsp.Status
                if debug:
                    log_message("sent", received.context_id, rsp, data)
            assoc.send_pdus(pdus)
            if assoc.observer is not None:
                rq: Any = received.message
                assoc.observer.request_answered(rq.MessageID, rq.command_field,
                                                received.context_id, status)
        except AiodimseError as exc:
            log.warning("could not answer a request: %s", exc)
        finally:
            if not answered:
                session.drop(received)
            if session.backlog or self.idle_waiters:
                assoc.after_request()


def _response(kind: RequestKind, rq: Any, result: object, context: PresentationContext
              ) -> tuple[Any, bytes | None]:
    """The response for a handler's result; a bare 0x0110 if it cannot be built."""
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
