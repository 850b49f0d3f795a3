"""Our requests on one association: their futures by Message ID and the DIMSE timer.

The DIMSE session numbers the requests, keeps the outstanding table with its
deadlines and the peer's invocation window; this is the asyncio side of it: the
response's future per Message ID, a coroutine only when a request must wait for a
free invocation slot or for the transport to drain, and one timer per association
on the session's next deadline (none per request). Made with the first request:
most acceptors never send one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from .association_log import debug_on, log, log_message
from .dimse.session import WindowFull
from .errors import AssociationAbortedError, AssociationError, DIMSETimeoutError

if TYPE_CHECKING:
    from .aio.prompt import PromptFuture
    from .aio.protocol import DULProtocol
    from .dimse.assemble import ReceivedMessage
    from .dimse.session import DIMSESession, ResponseReceived
    from .presentation import PresentationContext

    _Future = asyncio.Future[ReceivedMessage] | PromptFuture[ReceivedMessage]

__all__ = ["Command", "OutgoingRequests", "Requesting", "Stream"]


class Command(Protocol):
    """A request's command set (scu.py): encoded once its Message ID is known (the
    session's ``RequestCommand``), and its message for DEBUG logs."""

    def encode(self, message_id: int, has_dataset: bool) -> bytes: ...

    def message(self, message_id: int) -> Any: ...


class Stream(Protocol):
    """A request whose pending responses are wanted as they come (scu_query.py)."""

    def started(self, message_id: int) -> None: ...

    def pending(self, received: ReceivedMessage) -> None: ...


class Requesting(Protocol):
    """What our requests ask of their association."""

    is_established: bool
    dimse_timeout: float | None

    @property
    def proto(self) -> DULProtocol | None: ...

    @property
    def is_alive(self) -> bool: ...

    def open_session(self) -> DIMSESession: ...

    def end_error(self) -> AssociationError: ...

    def send_pdus(self, pdus: bytes) -> None: ...

    def abort(self, *, source: int = 0, reason: int = 0) -> None: ...


class OutgoingRequests:
    """The futures of one association's requests, by Message ID (module doc)."""

    __slots__ = ("clock", "futures", "invoke_waiters", "loop", "owner", "streams", "timer")

    def __init__(self, owner: Requesting, loop: asyncio.AbstractEventLoop,
                 clock: Callable[[], float]) -> None:
        self.owner = owner
        self.loop = loop
        self.clock = clock
        self.futures: dict[int, _Future] = {}  # our requests' responses, by Message ID
        self.timer: asyncio.TimerHandle | None = None
        self.invoke_waiters: deque[asyncio.Future[None]] = deque()
        # requests whose pending responses are reported (C-FIND/GET/MOVE); a stream
        # removes itself once its final response came
        self.streams: dict[int, Stream] = {}

    def request(self, context: PresentationContext, command: Command,
                data: bytes | None, stream: Stream | None = None
                ) -> Awaitable[ReceivedMessage]:
        """Send one request; return what to await for its response (DIMSE timeout).

        Mostly the response's future itself: a sequential caller's request then costs
        no coroutine of ours. Waiting for a free invocation slot, or for the transport
        to drain, goes through a coroutine.
        """
        owner = self.owner
        if not owner.is_established or not owner.is_alive:
            raise AssociationAbortedError("the association is not established")
        proto = owner.proto
        if proto is None:  # (dropped when the connection closed)
            raise owner.end_error()
        session = owner.open_session()
        try:  # validates the command: raises before sending
            msg_id, pdus = session.send_request(context.context_id, command, data,
                                                proto.clock(), owner.dimse_timeout)
        except WindowFull:
            return self._request_when_free(session, context, command, data, stream)
        fut: _Future = proto.response_future()
        self.futures[msg_id] = fut
        if stream is not None:
            self.streams[msg_id] = stream
            stream.started(msg_id)
        try:
            if debug_on():
                log_message("sent", context.context_id, command.message(msg_id), data)
            owner.send_pdus(pdus)
        except BaseException:
            self.futures.pop(msg_id, None)
            self.streams.pop(msg_id, None)
            session.forget(msg_id)
            raise
        if self.timer is None and owner.dimse_timeout is not None:
            self._arm_timer(session)
        if proto.write_paused:  # drain() only waits while paused
            return _after_drain(proto, fut)
        return fut

    async def _request_when_free(self, session: DIMSESession, context: PresentationContext,
                                 command: Command, data: bytes | None,
                                 stream: Stream | None = None) -> ReceivedMessage:
        """``request`` once the peer's invocation window has room for one more."""
        owner = self.owner
        while not session.can_invoke:
            waiter = self.loop.create_future()
            self.invoke_waiters.append(waiter)
            await waiter
            if not owner.is_alive:
                raise owner.end_error()
        return await self.request(context, command, data, stream)

    def pending(self, ev: ResponseReceived) -> None:
        """A pending response to one of ours: to its stream, if it has one."""
        stream = self.streams.get(ev.message_id)
        if stream is not None:
            stream.pending(ev.received)

    def response(self, ev: ResponseReceived) -> None:
        """A response to one of ours: if final, its future, then a waiting request."""
        if debug_on():
            log_message("received", ev.received.context_id, ev.received.message,
                        ev.received.dataset)
        if not ev.final:  # to the stream of a C-FIND/GET/MOVE of ours (scu_query.py)
            self.pending(ev)
            return
        fut = self.futures.pop(ev.message_id, None)
        if fut is not None and not fut.done():
            fut.set_result(ev.received)
        waiters = self.invoke_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _arm_timer(self, session: DIMSESession) -> None:
        """One timer per association on the session's next deadline."""
        deadline = session.next_deadline()
        if deadline is not None:
            self.timer = self.loop.call_at(deadline, self._on_timer, session)

    def _on_timer(self, session: DIMSESession) -> None:
        self.timer = None
        owner = self.owner
        if not owner.is_alive:
            return
        expired = session.handle_timer(self.clock())
        if not expired:
            self._arm_timer(session)  # the earliest was answered: the next one
            return
        for ev in expired:
            log.warning("no response to Message ID %d within %ss: aborting", ev.message_id,
                        owner.dimse_timeout)
            fut = self.futures.pop(ev.message_id, None)
            if fut is not None and not fut.done():
                fut.set_exception(DIMSETimeoutError(
                    f"no response within the DIMSE timeout ({owner.dimse_timeout}s)"
                ))
        owner.abort()

    def fail(self) -> None:
        """The association ended: every future fails, waiting requests wake to fail."""
        if self.futures:
            err = self.owner.end_error()
            for fut in self.futures.values():
                if not fut.done():
                    fut.set_exception(err)
            self.futures.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiters = self.invoke_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


async def _after_drain(proto: DULProtocol, fut: Awaitable[ReceivedMessage]) -> ReceivedMessage:
    await proto.drain()
    return await fut
