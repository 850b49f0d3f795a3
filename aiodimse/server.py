"""A listening SCP: one protocol and association per accepted connection."""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, cast

from .acceptor import decide
from .aio.counting import CountingProtocol, CountingUpperLayer
from .aio.listener import DirectListener, accepts_directly, open_sockets
from .aio.protocol import DULProtocol, loop_clock, loop_traits
from .aio.sweep import DeadlineSweep
from .aio.tls import Handshakes, TLSAcceptor
from .association import Association
from .evt import EventType
from .handlers import Handlers
from .logs import get_logger
from .negotiation_cache import NegotiationCache
from .observe import AssociationRecord, Observer
from .presentation import SupportedContext
from .settings import AESettings
from .ul.config import ULConfig
from .ul.machine import UpperLayer

__all__ = ["Server"]

log = get_logger("aiodimse.server")


class Server:
    """A running SCP. Use ``async with``, or ``close()`` then ``wait_closed()``.

    ``shutdown(grace)`` is the graceful stop: no new connections or requests,
    in-flight requests may finish until ``grace`` seconds have passed, then what is
    left is aborted (docs/handlers.md, "Stopping").
    """

    def __init__(
        self,
        ae: AESettings,
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
        # The negotiations given per proposal, and their answers (the acceptor's).
        self.negotiations = NegotiationCache()
        self.ssl_context = ssl_context
        # Told what happens (aiodimse.observe); None: connections are built unobserved
        self.observer: Observer | None = ae.observer
        # The listening sockets, each served by a DirectListener or an asyncio Server.
        self._sockets: list[socket.socket] = []
        self._listeners: list[DirectListener | asyncio.base_events.Server] = []
        self._serving: asyncio.Future[None] | None = None  # serve_forever's
        self._associations: set[Association] = set()
        # Every handler task of this server's associations, until it ends (also after
        # its association has): shutdown cancels what is left.
        self.handler_tasks: set[asyncio.Task[Any]] = set()
        self._slots = _Slots()  # the limits of maximum_associations and its kin
        self.buffered = 0  # bytes the associations hold: queued requests, partial messages
        self._held: set[Association] = set()  # associations not read (a budget)
        self._sweep: asyncio.TimerHandle | None = None  # the network-timeout sweep
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._ul_config = config = ULConfig(
            artim_timeout=ae.artim_timeout,
            associate_timeout=ae.acse_timeout,
            release_timeout=ae.acse_timeout,
            setup_timeout=ae.acse_timeout,  # connection to A-ASSOCIATE-AC/RJ, in all
            message_timeout=ae.message_timeout,
            max_pdata_cap=ae.max_pdata_cap,
        )
        # The connections' ARTIM, set-up, message and release timeouts, checked
        # together: each acts between 1 and 1.25 times its duration after it started.
        shortest = min(config.artim_timeout, config.associate_timeout, config.release_timeout,
                       *(t for t in (config.setup_timeout, config.message_timeout) if t))
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
        # TLS: accepted as plain TCP, then our own handshake (aio/tls.py), whose
        # failures are logged; create_server's would be silent
        factory: Callable[[], asyncio.Protocol] = self._new_connection
        if self.ssl_context is not None:
            most = self.ae.maximum_pending_connections
            handshakes = Handshakes(self.ae.maximum_associations if most is None else most,
                                    self.ae.maximum_pending_per_address, PENDING_GRACE)
            factory = functools.partial(TLSAcceptor, self._new_connection, self.ssl_context,
                                        self.ae.acse_timeout, self.handler_tasks, handshakes)
        direct = accepts_directly(loop, None)
        try:
            for sock in self._sockets:
                if direct:
                    self._listeners.append(DirectListener(loop, sock, factory))
                else:
                    self._listeners.append(await loop.create_server(
                        factory, sock=sock, backlog=backlog))
        except BaseException:
            self.close()
            raise
        log.info("listening on %s:%d as %s", host, self.port, self.ae_title)

    def _new_connection(self) -> DULProtocol:
        """An association's protocol; with an observer, one that counts its bytes into
        the association's record (aio/counting.py), so unobserved ones pay nothing."""
        observer = self.observer
        ul = (UpperLayer if observer is None else CountingUpperLayer)(
            requestor=False, config=self._ul_config)
        assoc = Association(
            self.ae, is_requestor=False, handlers=self.handlers, loop=self._loop,
            clock=self._clock,
        )
        assoc.server = self
        assoc.decide = decide
        if observer is None:
            return DULProtocol(ul, assoc, self._loop, self._deadlines, traits=self._traits,
                               clock=self._clock)
        record = AssociationRecord(observer, assoc, time.monotonic())
        assoc.observer = cast(CountingUpperLayer, ul).counts = record
        proto = CountingProtocol(ul, assoc, self._loop, self._deadlines, traits=self._traits,
                                 clock=self._clock)
        proto.counts = record
        return proto

    def register(self, assoc: Association) -> None:
        """Count ``assoc`` (its connection is up: ``connection_made``).

        Not at accept time: with TLS the protocol is made before the handshake, and
        when that fails asyncio calls neither ``connection_made`` nor
        ``connection_lost``, so an entry made then would leak (blocking
        ``wait_closed`` and counting against ``maximum_associations`` for ever).
        Until its A-ASSOCIATE-RQ it holds a pending place, not a slot (``admit``).
        """
        self._associations.add(assoc)
        address = assoc.requestor.address
        for gone in self._slots.connected(assoc, address, self.ae, self._clock()):
            if gone.proto is not None:
                log.debug("too many connections without an association%s: closing one from %s",
                         " from one address" if gone is assoc else "", address)
                gone.proto.close()
        if assoc.observer is not None:
            assoc.observer.opened()

    def admit(self, assoc: Association, calling_ae_title: str) -> bool:
        """Give ``assoc`` (its A-ASSOCIATE-RQ came) a slot; False: reject, over a limit."""
        return not self._closing and self._slots.admit(assoc, assoc.requestor.address,
                                                       calling_ae_title, self.ae)

    def rejected(self, assoc: Association) -> None:
        """``assoc``'s request was rejected: its slot is free now, though the peer may
        hold the connection until ARTIM closes it."""
        self._slots.ended(assoc)

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
        self._slots.ended(assoc)
        if assoc.observer is not None:
            assoc.observer.ended()

    def bind(self, event: EventType, handler: Callable[..., Any],
             args: Sequence[Any] | None = None, *, abstract_syntax: str | None = None) -> None:
        """Bind a handler for every association of this server, current and future.

        A different handler already bound for the same key raises
        ``HandlerConflictError`` (docs/handlers.md, "Binding").
        """
        self.handlers.bind(event, handler, args, abstract_syntax=abstract_syntax)

    def unbind(self, event: EventType, handler: Callable[..., Any], *,
               abstract_syntax: str | None = None) -> None:
        """Unbind a handler from every association that shares the server's handlers."""
        self.handlers.unbind(event, handler, abstract_syntax=abstract_syntax)

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

    def drain(self) -> None:
        """Begin the graceful stop now (from a signal handler, say): stop listening,
        and refuse every request that arrives from now on. ``shutdown`` does the rest."""
        self.close()
        for assoc in self._associations:
            assoc.draining = True

    async def shutdown(self, grace: float = 10.0) -> None:
        """Graceful stop, done within ``grace`` s plus at most about one second.

        No new connections; associations not yet accepted are rejected (transient,
        local limit); a request arriving from now on is refused (0x0213, or 0xA700
        for the C-services) without running a handler; requests in flight may finish
        until ``grace`` s have passed. Then every association is aborted and the
        handler tasks still running are cancelled (a plain handler's thread cannot
        be stopped: its result is dropped).
        """
        self.drain()
        loop = self._loop
        deadline = loop.time() + grace
        while loop.time() < deadline and any(a.in_flight for a in self._associations):
            waiters = [asyncio.ensure_future(a.wait_idle())
                       for a in self._associations if a.in_flight]
            await asyncio.wait(waiters, timeout=max(deadline - loop.time(), 0))
            for waiter in waiters:
                waiter.cancel()
        for assoc in list(self._associations):
            assoc.abort()
        tasks = [t for t in self.handler_tasks if not t.done()]
        for task in tasks:
            task.cancel()
        closing = [asyncio.ensure_future(self.wait_closed())]
        await asyncio.wait([*closing, *tasks], timeout=1.0)
        if not closing[0].done():
            closing[0].cancel()
            log.warning("%d connections did not close in time", len(self._associations))
            self._associations.clear()
            self._deadlines.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown(grace=5.0 if exc_type is None else 0.0)


PENDING_GRACE = 2.0
"""Seconds a connection may wait for its A-ASSOCIATE-RQ before a newcomer may displace it."""


class _Slots:
    """Who holds what: pending places (connected, no A-ASSOCIATE-RQ yet) and slots.

    Pending places are kept apart so that silent connections cannot starve
    associations. At a pending limit (overall, or per address) a newcomer displaces
    the connection of that scope that has waited longest, if it has waited
    ``PENDING_GRACE`` s (a real requestor sends its request at once); a burst of
    fresh connections may go up to twice the limit; beyond that the newcomer is
    closed. Slots are counted per peer address and per calling AE title. What a
    per-address or per-AE limit needs is kept only while that limit is set: one set
    on a running server counts the connections and associations made from then on.
    """

    __slots__ = ("address_of", "by_address", "by_ae", "held", "pending", "pending_by_address")

    def __init__(self) -> None:
        # pending connections -> when they connected, oldest first: all, and by address
        # (those made under a per-address pending limit)
        self.pending: dict[Association, float] = {}
        self.pending_by_address: dict[str, dict[Association, float]] = {}
        self.address_of: dict[Association, str] = {}
        # slots -> the address and calling AE counted for them (None: not counted)
        self.held: dict[Association, tuple[str | None, str | None]] = {}
        self.by_address: dict[str, int] = {}
        self.by_ae: dict[str, int] = {}

    def connected(self, assoc: Association, address: str, ae: AESettings, now: float
                  ) -> list[Association]:
        """Take a pending place for ``assoc``; the connections to close to keep the limits."""
        limit = ae.maximum_pending_connections
        if limit is None:
            limit = ae.maximum_associations
        per_address = ae.maximum_pending_per_address
        closing: list[Association] = []
        same = None
        full = len(self.pending) >= limit
        if per_address is not None:
            same = self.pending_by_address.get(address)
            full = full or (same is not None and len(same) >= per_address)
        if full:
            for scope, cap in ((same, per_address), (self.pending, limit)):  # rare
                if scope is None or cap is None or len(scope) < cap:
                    continue
                if cap < 1:
                    return [*closing, assoc]
                oldest = next(iter(scope))
                if now - scope[oldest] >= PENDING_GRACE:
                    self._unpend(oldest)
                    closing.append(oldest)
                elif len(scope) >= 2 * cap:
                    return [*closing, assoc]
            same = self.pending_by_address.get(address)  # emptied by a displacement?
        self.pending[assoc] = now
        if per_address is not None:
            self.address_of[assoc] = address
            if same is None:
                same = self.pending_by_address[address] = {}
            same[assoc] = now
        return closing

    def admit(self, assoc: Association, address: str, calling: str, ae: AESettings) -> bool:
        """Move ``assoc`` from its pending place to a slot, if the limits allow one."""
        if self.pending.pop(assoc, None) is not None and self.address_of:
            self._unpended(assoc)
        if len(self.held) >= ae.maximum_associations:
            return False
        per_address = ae.maximum_associations_per_address
        per_ae = ae.maximum_associations_per_ae
        if per_address is None and per_ae is None:
            self.held[assoc] = (None, None)
            return True
        by_address, by_ae = self.by_address, self.by_ae
        if (
            (per_address is not None and by_address.get(address, 0) >= per_address)
            or (per_ae is not None and by_ae.get(calling, 0) >= per_ae)
        ):
            return False
        counted = (address if per_address is not None else None,
                   calling if per_ae is not None else None)
        self.held[assoc] = counted
        if counted[0] is not None:
            by_address[address] = by_address.get(address, 0) + 1
        if counted[1] is not None:
            by_ae[calling] = by_ae.get(calling, 0) + 1
        return True

    def ended(self, assoc: Association) -> None:
        if self.pending.pop(assoc, None) is not None and self.address_of:
            self._unpended(assoc)
        held = self.held.pop(assoc, None)
        if held is not None:
            address, calling = held
            if address is not None:
                _uncount(self.by_address, address)
            if calling is not None:
                _uncount(self.by_ae, calling)

    def _unpend(self, assoc: Association) -> None:
        if self.pending.pop(assoc, None) is not None:
            self._unpended(assoc)

    def _unpended(self, assoc: Association) -> None:
        """Drop the rest of ``assoc``'s pending place (``pending`` no longer has it)."""
        address = self.address_of.pop(assoc, None)
        if address is None:  # made with no per-address pending limit
            return
        same = self.pending_by_address[address]
        del same[assoc]
        if not same:
            del self.pending_by_address[address]


def _uncount(counts: dict[str, int], key: str) -> None:
    """Take one from ``counts[key]``; a count of 0 is removed (peers come and go)."""
    value = counts[key] - 1
    if value:
        counts[key] = value
    else:
        del counts[key]
