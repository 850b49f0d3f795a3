"""TLS on the server side: accept plain TCP, then do the handshake with ``start_tls``.

``create_server(ssl=...)`` does the handshake out of sight: when it fails (a client
without a certificate, a plain DICOM client on the TLS port, a scanner), asyncio
closes the connection and tells neither the protocol nor the log. An integrator
then sees a modality that "cannot connect" and nothing on the server. Here the
handshake is ours to watch: a failure is one WARNING line with the peer's address
and the reason (folded when it repeats), and a handshake has a time limit.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, cast

from ..logs import get_logger

__all__ = ["EARLY_LIMIT", "Handshakes", "TLSAcceptor", "handshake_problem"]

log = get_logger("aiodimse.server")

EARLY_LIMIT = 1 << 20
"""Bytes a client may send between its handshake and the DICOM protocol taking over."""


def handshake_problem(exc: BaseException) -> str:
    """Why a server-side handshake failed, in words."""
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in ("HTTP_REQUEST", "WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL"):
            return f"{reason}: not TLS (a plain DICOM client on the TLS port?)"
        if reason in ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_REQUIRED"):
            return f"{reason}: the client sent no certificate, and one is required"
        return reason
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or (
            isinstance(exc, ConnectionAbortedError) and "longer than" in str(exc)):
        return "no handshake within the time limit"  # (asyncio's and uvloop's words)
    if isinstance(exc, ConnectionError):
        return "the client closed the connection during the handshake"
    return str(exc) or type(exc).__name__


def _feed(transport: asyncio.Transport, data: bytes) -> None:
    """Hand ``data`` to the transport's protocol (start_tls's TLS protocol), as a read
    would: a buffered protocol (Python 3.11+, uvloop) or a plain one (3.10)."""
    protocol: Any = transport.get_protocol()
    if transport.is_closing():
        return
    if hasattr(protocol, "get_buffer"):
        view = memoryview(data)
        while view:
            buf = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    else:
        protocol.data_received(data)


class Handshakes:
    """The connections whose handshake is in progress, bounded in number by the rule
    of connections awaiting their A-ASSOCIATE-RQ (server._Slots): ``most`` in all and
    ``per_address`` from one address (None: no bound). At a bound a newcomer displaces
    the oldest of that scope once it has been at it ``grace`` seconds (a real handshake
    takes milliseconds); a burst of fresh ones may reach twice the bound, beyond which
    the newcomer is closed."""

    def __init__(self, most: int | None, per_address: int | None, grace: float) -> None:
        self.most = most
        self.per_address = per_address
        self.grace = grace
        self._open: dict[TLSAcceptor, tuple[str, float]] = {}  # oldest first

    def __len__(self) -> int:
        return len(self._open)

    def started(self, acceptor: TLSAcceptor, address: str, now: float) -> None:
        self._open[acceptor] = (address, now)
        for cap, by_address in ((self.per_address, True), (self.most, False)):
            if cap is None:
                continue
            scope = [a for a, (where, _t) in self._open.items()
                     if not by_address or where == address]
            if len(scope) <= cap:
                continue
            oldest = scope[0]
            if oldest is not acceptor and now - self._open[oldest][1] >= self.grace:
                self._close(oldest, by_address)
            elif len(scope) > 2 * cap or cap < 1:
                self._close(acceptor, by_address)
                return

    def ended(self, acceptor: TLSAcceptor) -> None:
        self._open.pop(acceptor, None)

    def _close(self, acceptor: TLSAcceptor, by_address: bool) -> None:
        where, _since = self._open.pop(acceptor)
        log.debug("too many TLS handshakes in progress%s: closing one from %s",
                  " from one address" if by_address else "", where)
        acceptor.abort()


class TLSAcceptor(asyncio.Protocol):
    """The protocol of a TLS listener's plain connection until its handshake is done.

    ``factory`` makes the DICOM protocol, which gets ``connection_made`` with the TLS
    transport; ``tasks`` holds the handshake task until it ends; ``handshakes`` bounds
    how many are in progress.
    """

    def __init__(self, factory: Callable[[], asyncio.Protocol], context: ssl.SSLContext,
                 timeout: float, tasks: set[asyncio.Task[Any]], handshakes: Handshakes) -> None:
        self._factory = factory
        self._context = context
        self._timeout = timeout
        self._tasks = tasks
        self._handshakes = handshakes
        # What the TLS layer hands over between the end of the handshake and the
        # switch to the DICOM protocol (asyncio reads what is buffered at once):
        self._early: list[bytes] = []
        self._early_size = 0
        self._lost = False  # the plain connection closed before start_tls took it over
        self._plain: asyncio.Transport | None = None
        self._hello: list[bytes] = []  # raw bytes read before start_tls took over

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        plain = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        # The ClientHello must reach start_tls's protocol, which must not read before
        # its (scheduled) connection_made. Reading is paused once the transport has
        # started it: a pause here would be undone by uvloop, which starts reading
        # after connection_made, and by Python 3.10's asyncio, which adds its reader
        # then without looking at the pause (and would then take start_tls's own
        # pause for done). What is read before the pause is kept and handed over.
        self._plain = plain
        loop = asyncio.get_running_loop()
        loop.call_soon(self._pause)
        task = loop.create_task(self._handshake(plain))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._handshakes.ended(self))
        peer = plain.get_extra_info("peername")
        self._handshakes.started(self, peer[0] if isinstance(peer, tuple) else "?",
                                 loop.time())

    def abort(self) -> None:
        """Close the connection, handshake and all (``Handshakes`` found it too old)."""
        if self._plain is not None:
            self._plain.abort()

    async def _handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        if self._lost:
            return
        # start_tls sets up its protocol in its first step (no await before that); the
        # raw bytes read before then are fed to that protocol right after its own
        # scheduled connection_made and resume_reading, before any further read.
        starting = loop.create_task(loop.start_tls(
            transport, self, self._context, server_side=True,
            ssl_handshake_timeout=self._timeout))
        loop.call_soon(loop.call_soon, self._feed_hello, transport)
        try:
            tls = await starting
        except asyncio.CancelledError:
            transport.abort()
            raise
        except (OSError, asyncio.TimeoutError, ConnectionError, RuntimeError) as exc:
            log.warning("TLS handshake from %s failed: %s", where, handshake_problem(exc))
            transport.abort()
            return
        if tls is None or self._lost:  # the connection went away meanwhile
            return
        protocol = self._factory()
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        early, self._early = self._early, []
        if early:
            protocol.data_received(b"".join(early))

    def data_received(self, data: bytes) -> None:
        """Raw bytes read before start_tls took the transport over (uvloop reads
        after connection_made whatever we do): the start of the handshake, kept for
        start_tls's protocol. After the handshake: application data that came with
        its end, for the DICOM protocol. Bounded either way: each waits at most a
        loop iteration or two."""
        if self._plain is not None and self._plain.get_protocol() is self:
            self._plain.pause_reading()
            self._hello.append(data)
        else:
            self._early.append(data)
        self._early_size += len(data)
        if self._early_size > EARLY_LIMIT:
            log.warning("TLS client sent %d bytes before the association could start: "
                        "closing", self._early_size)
            self._early, self._hello = [], []
            if self._plain is not None:
                self._plain.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._early, self._hello = [], []

    def _pause(self) -> None:
        plain = self._plain
        if plain is not None and plain.get_protocol() is self and not plain.is_closing():
            plain.pause_reading()

    def _feed_hello(self, transport: asyncio.Transport) -> None:
        hello, self._hello = b"".join(self._hello), []
        if hello:
            _feed(transport, hello)
