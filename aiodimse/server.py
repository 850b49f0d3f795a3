"""A listening SCP: one protocol and association per accepted connection."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .acceptor import decide
from .aio.listener import DirectListener, accepts_directly, open_sockets
from .aio.protocol import DULProtocol, loop_clock, loop_traits
from .aio.sweep import DeadlineSweep
from .association import Association
from .evt import EventType
from .handlers import Handlers
from .presentation import SupportedContext
from .ul.config import ULConfig
from .ul.machine import UpperLayer

if TYPE_CHECKING:
    from .ae import AE

__all__ = ["Server"]

log = logging.getLogger("aiodimse.server")


class Server:
    """A running SCP. Use ``async with``, or ``close()`` then ``wait_closed()``.

    ``shutdown(grace)`` is the graceful stop: no new connections, in-flight requests
    may finish until ``grace`` seconds have passed, then what is left is aborted.
    """

    def __init__(
        self,
        ae: AE,
        *,
        handlers: Handlers,
        ae_title: str,
        contexts: dict[str, SupportedContext],
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.ae = ae
        self.handlers = handlers
        self.ae_title = ae_title
        self.contexts = contexts
        # acceptor._negotiate's cache, valid for the supported contexts in _negotiated_for.
        self._negotiations: dict[Any, Any] = {}
        self._negotiated_for: tuple[SupportedContext, ...] = ()
        # id(request) -> (request, window, negotiation): the cache above, by identity.
        self._by_request: dict[int, tuple[Any, Any, Any]] = {}
        self.ssl_context = ssl_context
        # The listening sockets, each served by a DirectListener or an asyncio Server.
        self._sockets: list[socket.socket] = []
        self._listeners: list[DirectListener | asyncio.base_events.Server] = []
        self._serving: asyncio.Future[None] | None = None  # serve_forever's
        self._associations: set[Association] = set()
        self.buffered = 0  # bytes the associations hold: queued requests, partial messages
        self._held: set[Association] = set()  # associations not read (a budget)
        self._sweep: asyncio.TimerHandle | None = None  # the network-timeout sweep
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._ul_config = config = ULConfig(
            artim_timeout=ae.artim_timeout,
            associate_timeout=ae.acse_timeout,
            release_timeout=ae.acse_timeout,
            max_pdata_cap=ae.max_pdata_cap,
        )
        # The connections' ARTIM and release timeouts, checked together: each acts
        # between 1 and 1.25 times its duration after it started.
        shortest = min(config.artim_timeout, config.associate_timeout, config.release_timeout)
        self._clock = loop_clock(self._loop)
        self._traits = loop_traits(self._loop)
        self._deadlines = DeadlineSweep(self._loop, shortest / 4, self._clock)

    async def listen(
        self, address: tuple[str, int], *, reuse_port: bool = False, backlog: int = 1024
    ) -> None:
        host, port = address
        loop = self._loop
        self._sockets = await open_sockets(loop, host, port, backlog=backlog,
                                           reuse_port=reuse_port)
        direct = accepts_directly(loop, self.ssl_context)
        try:
            for sock in self._sockets:
                if direct:
                    self._listeners.append(DirectListener(loop, sock, self._new_connection))
                else:
                    self._listeners.append(await loop.create_server(
                        self._new_connection, sock=sock, ssl=self.ssl_context, backlog=backlog
                    ))
        except BaseException:
            self.close()
            raise
        log.info("listening on %s:%d as %s", host, self.port, self.ae_title)

    def _new_connection(self) -> DULProtocol:
        ul = UpperLayer(requestor=False, config=self._ul_config)
        assoc = Association(
            self.ae, is_requestor=False, handlers=self.handlers, ul=ul, loop=self._loop,
            clock=self._clock,
        )
        assoc.server = self
        assoc.decide = decide
        return DULProtocol(ul, assoc, self._loop, self._deadlines, traits=self._traits,
                           clock=self._clock)

    def register(self, assoc: Association) -> None:
        """Count ``assoc`` (its connection is up: ``connection_made``).

        Not at accept time: with TLS the protocol is made before the handshake, and
        when that fails asyncio calls neither ``connection_made`` nor
        ``connection_lost``, so an entry made then would leak (blocking
        ``wait_closed`` and counting against ``maximum_associations`` for ever).
        """
        assoc.over_limit = len(self._associations) >= self.ae.maximum_associations
        self._associations.add(assoc)

    def watch_idle(self) -> None:
        """Make sure the network-timeout sweep runs (an association was established).

        One timer per server, not one per association: every ``network_timeout / 4``
        it aborts the associations idle for ``network_timeout`` (so the abort comes
        between 1 and 1.25 timeouts after the last data received).
        """
        timeout = self.ae.network_timeout
        if self._sweep is None and timeout is not None and timeout > 0:
            self._sweep = self._loop.call_later(timeout / 4, self._sweep_idle)

    def _sweep_idle(self) -> None:
        self._sweep = None
        timeout = self.ae.network_timeout
        if timeout is None or timeout <= 0:
            return
        now = self._loop.time()
        for assoc in list(self._associations):
            if assoc.is_established:
                assoc.check_idle(now, timeout)
        if self._associations:
            self._sweep = self._loop.call_later(timeout / 4, self._sweep_idle)

    def charge(self, assoc: Association, delta: int) -> bool:
        """Add ``delta`` to what the associations hold; True if past the server budget.

        As the sum falls to half the budget, the associations it stopped are asked to
        read again (each checks its own budget too).
        """
        self.buffered = total = self.buffered + delta
        limit = self.ae.maximum_server_buffered
        if delta < 0 and self._held and total <= limit >> 1:
            for held in list(self._held):
                if held is not assoc:
                    held.budget_check()
        return total > limit

    def below_low_water(self) -> bool:
        """The sum is at half the server budget or less (stopped associations may read)."""
        return self.buffered <= self.ae.maximum_server_buffered >> 1

    def reading_held(self, assoc: Association, held: bool) -> None:
        """Track which associations a budget stopped reading."""
        if held:
            self._held.add(assoc)
        else:
            self._held.discard(assoc)

    def association_ended(self, assoc: Association) -> None:
        """Called by an association of this server once its connection has closed."""
        self._associations.discard(assoc)

    def bind(self, event: EventType, handler: Callable[..., Any],
             args: Sequence[Any] | None = None) -> None:
        """Bind a handler for every association of this server, current and future."""
        self.handlers.bind(event, handler, args)

    def unbind(self, event: EventType, handler: Callable[..., Any]) -> None:
        """Unbind a handler from every association that shares the server's handlers."""
        self.handlers.unbind(event, handler)

    @property
    def port(self) -> int:
        if not self._sockets:
            raise RuntimeError("the server is not listening")
        return int(self._sockets[0].getsockname()[1])

    @property
    def active_associations(self) -> list[Association]:
        """Associations that are established now."""
        return [a for a in self._associations if a.is_established]

    @property
    def connection_count(self) -> int:
        return len(self._associations)

    def is_serving(self) -> bool:
        return bool(self._listeners)

    def close(self) -> None:
        """Stop accepting new connections; established associations go on."""
        self._closing = True
        listeners, self._listeners, self._sockets = self._listeners, [], []
        for listener in listeners:
            listener.close()  # closes its socket
        if self._serving is not None and not self._serving.done():
            self._serving.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until the listener and every association have ended."""
        self.close()
        while self._associations:
            await asyncio.gather(
                *(a.wait_closed() for a in list(self._associations)), return_exceptions=True
            )
        self._deadlines.close()

    async def serve_forever(self) -> None:
        """Wait until the server is closed; cancelling this closes it."""
        if not self._listeners:
            raise RuntimeError("the server is not listening")
        if self._serving is None or self._serving.done():
            self._serving = self._loop.create_future()
        try:
            await asyncio.shield(self._serving)
        except asyncio.CancelledError:
            self.close()
            raise

    async def shutdown(self, grace: float = 10.0) -> None:
        """Graceful stop: let in-flight requests finish within ``grace`` s, abort the rest."""
        self.close()
        deadline = self._loop.time() + grace
        for assoc in list(self._associations):
            assoc.draining = True
        while self._loop.time() < deadline and any(
            a.in_flight for a in self._associations
        ):
            waiters = [a.wait_idle() for a in self._associations if a.in_flight]
            remaining = deadline - self._loop.time()
            await asyncio.wait(
                [asyncio.ensure_future(w) for w in waiters], timeout=max(remaining, 0)
            )
        for assoc in list(self._associations):
            assoc.abort()
        await asyncio.wait_for(self.wait_closed(), timeout=max(self.ae.artim_timeout, 1.0))

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown(grace=5.0 if exc_type is None else 0.0)
