"""Running the handler of each request the peer sends, and answering it.

A mixin of ``Association`` (as lifecycle.py's ``Lifecycle`` is): the server's hot
path. A request the DIMSE session reports is routed to its handler (by event, and
by abstract syntax where a handler is bound for one), whose first step runs at
once inside the protocol's callback (aio/eager.py); a handler that never suspends
(the usual one) is answered there, with no Task, no coroutine of ours and no loop
iteration, and its response reused by the session when the result is a bare
status. Methods of the association itself, not of an object it holds: a request
then pays no attribute load or call to reach them (rows 1a and 5a of
``benchmarks/icount.py`` have little room). Whatever is not the usual request
goes to serving.py's ``Serving``: a handler that suspended (its Task, the time
limit), deflated data sets, refusals, malformed requests, a response that must be
built. ``after_request`` follows every answer: queued requests, a deferred
release, ``wait_idle``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import caches
from .aio.eager import Suspended, run_eager
from .association_log import debug_on, log, log_handler_failure, log_message
from .datasets import Inflated, decode_dataset
from .dimse.assemble import ReceivedMessage
from .errors import AiodimseError, AssociationAbortedError
from .events import Event
from .handlers import call_handler
from .requests import bare_status, kind_for_type
from .serving import GUARD_EXIT, guard_exit

if TYPE_CHECKING:
    from .aio.idle import IdleWatch
    from .aio.protocol import DULProtocol
    from .dimse.session import DIMSESession
    from .handlers import Handlers
    from .observe import AssociationRecord
    from .presentation import PresentationContext
    from .requests import RequestKind
    from .serving import Serving

__all__ = ["Answering"]


class Answering:
    """Serving the peer's requests on one association: the usual one (module doc)."""

    if TYPE_CHECKING:  # provided by Association (and Lifecycle); the state it keeps
        # (the requests counted, the last bare status, inside after_request) is in the
        # association's slots: a second base with slots of its own would not fit
        # beside Lifecycle, and mypy would take an empty ``__slots__`` for these.
        is_established: bool
        draining: bool
        handlers: Handlers
        loop: asyncio.AbstractEventLoop
        observer: AssociationRecord | None
        _session: DIMSESession | None
        _serving: Serving | None
        _contexts: dict[int, PresentationContext]
        _deflated: frozenset[int]
        _idle_waiters: list[asyncio.Future[None]]
        _following: bool
        _requests: int
        _bare_result: object
        _bare_kind: RequestKind | None
        _bare_code: int

        @property
        def proto(self) -> DULProtocol | None: ...

        def track(self, task: asyncio.Task[Any]) -> None: ...

        def send_pdus(self, pdus: bytes) -> None: ...

        def abort(self, *, source: int = 0, reason: int = 0) -> None: ...

        def _respond_release(self) -> None: ...

        def _sync_held(self, session: DIMSESession) -> None: ...

        def _watch(self) -> IdleWatch: ...

    else:
        __slots__ = ()

    def _on_request(self, received: ReceivedMessage, debug: bool) -> None:
        """A request the session reports (inline in ``Association.ul_fragments``, for
        speed, when it is the only one of a chunk)."""
        self._requests += 1
        if debug:
            log_message("received", received.context_id, received.message, received.dataset)
        kind = kind_for_type(type(received.message))
        if kind is None or self.draining:
            self._served().unserved(self, received, kind)
        else:
            self.serve(received, kind, debug)

    def serve(self, received: ReceivedMessage, kind: RequestKind, debug: bool) -> None:
        """Run the handler for one request: its first step now, inside this callback.

        A handler that never suspends (the usual one) is answered at once, with no
        Task, no coroutine of ours and no loop iteration; one that suspends goes on
        in a Task that answers when it ends (serving.py). ``debug``: DEBUG logging
        is on.
        """
        if self.observer is not None:
            self.observer.request_started(received.message, received.context_id)
        if self._deflated and received.context_id in self._deflated and (
                received.dataset is not None and type(received.dataset) is not Inflated):
            self.track(self.loop.create_task(
                self._served().inflate_then_serve(self, received, kind, debug)))
            return
        context = self._contexts[received.context_id]
        handlers = self.handlers  # Handlers.lookup(), inlined when nothing routes by class
        handler = (handlers.lookup(kind.event, context.abstract_syntax) if handlers.by_syntax
                   else handlers.wide.get(kind.event))
        if handler is None:
            self.answer(received, kind, kind.default_result, debug)
            return
        event = Event.for_request(self, kind.event, context,
                                  received.message, received.dataset, decode_dataset)
        try:
            if handler.is_async:
                # (without arguments no unpacking call: the usual handler, per request)
                coro = (handler.func(event, *handler.args) if handler.args
                        else handler.func(event))
                if GUARD_EXIT:
                    coro = guard_exit(coro)
                result = run_eager(self.loop, coro)
            else:
                result = run_eager(self.loop, call_handler(handler, event))
        except asyncio.CancelledError:  # cancelled in its first step: no answer
            self._served().dropped(self, received)
            return
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the handler's own
            log_handler_failure(kind.event.name, exc, self, ": answering 0x0110")
            result = kind.failure_result
        except BaseException:
            self._served().dropped(self, received)
            raise
        if type(result) is Suspended:
            self._served().suspended(self, result, received, kind, debug)
            return
        self.answer(received, kind, result, debug)

    def answer(self, received: ReceivedMessage, kind: RequestKind, result: object,
               debug: bool) -> None:
        """Send the response for a handler's result: reused by the session where it
        can (here: the hot path), else built (serving.py).

        Under DEBUG logging every response is built (the log shows its message).
        """
        session: DIMSESession = self._session  # type: ignore[assignment]  # (made by now)
        if not (self.is_established or session.release_deferred):
            log.debug("association ended before the %s response", kind.event.name)
            self._served().dropped(self, received)
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
                        self.after_request()
                    return
        self._served().answer_built(self, received, kind, result, code, debug)

    def _served(self) -> Serving:
        """Serving, made with the session (so there is one while requests are)."""
        serving = self._serving
        assert serving is not None
        return serving

    def after_request(self) -> None:
        """A request was answered (here or in serving.py): start queued ones, answer a
        deferred release, wake ``wait_idle``. Not re-entered: one loop, not a frame
        per queued request."""
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
            self._sync_held(session)
        if self._idle_waiters:
            self._watch().check_waiters()
