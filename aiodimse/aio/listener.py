"""Listening sockets, and a direct accept path for asyncio's selector loops.

asyncio's ``create_server`` hands each accepted connection to a task that makes the
transport and waits on a future before ``connection_made`` runs: a Task, a Future
and five loop callbacks per connection, about a tenth of the CPU of a whole
associate/release cycle. On a selector loop without TLS, ``DirectListener`` accepts
and makes the same transport at once. uvloop (whose accept path is C), TLS and
other loops are served by ``create_server`` on the same sockets.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

from ..compat import socket_transport_maker
from ..logs import get_logger

__all__ = ["ACCEPTS_PER_WAKE", "ACCEPT_RETRY_DELAY", "DirectListener", "accepts_directly",
           "open_sockets"]

log = get_logger("aiodimse.server")

ACCEPTS_PER_WAKE = 128  # connections taken per readiness event, then others get a turn
ACCEPT_RETRY_DELAY = 1.0  # s without accepting after the process ran out of descriptors
# accept() errors that say the process or system is out of resources, not this peer.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

ProtocolFactory = Callable[[], asyncio.Protocol]


def accepts_directly(loop: asyncio.AbstractEventLoop, ssl_context: ssl.SSLContext | None) -> bool:
    """Whether ``DirectListener`` can serve on ``loop``: asyncio's selector loop, no TLS."""
    return ssl_context is None and socket_transport_maker(loop) is not None


async def open_sockets(
    loop: asyncio.AbstractEventLoop, host: str | None, port: int, *, backlog: int,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Bound, listening, non-blocking TCP sockets for every address of ``host``.

    As ``create_server`` binds them: "" or None is every interface, IPv6 sockets are
    IPv6 only, SO_REUSEADDR on POSIX.
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port is not supported on this platform")
    infos = await loop.getaddrinfo(
        host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE,
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError as exc:  # a family this host cannot use (IPv6 off, say)
                log.debug("no socket for %r: %s", address, exc)
                continue
            sockets.append(sock)
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {address!r}: {exc.strerror}") from None
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(f"no usable address to listen on for {host!r}")
    return sockets


class DirectListener:
    """Accepts on one listening socket; a transport and protocol per connection, at once."""

    __slots__ = ("_factory", "_fd", "_loop", "_make", "_retry", "_sock")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: ProtocolFactory
    ) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._factory = factory
        # Private to asyncio, and what its own accept task calls (accepts_directly).
        make = socket_transport_maker(loop)
        if make is None:
            raise TypeError(f"{type(loop).__name__} has no transport maker for a direct accept")
        self._make: Callable[..., Any] = make
        self._retry: asyncio.TimerHandle | None = None
        loop.add_reader(self._fd, self._ready)

    def _ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        make, factory = self._make, self._factory
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the peer gave up before we accepted
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    log.error("accept() on %s failed: %s", sock.getsockname(), exc)
                    return
                # Out of descriptors or memory: stop accepting for a while (what is
                # queued waits in the backlog) instead of spinning on the error.
                log.error("accept() on %s failed, retrying in %.0f s: %s",
                          sock.getsockname(), ACCEPT_RETRY_DELAY, exc)
                self._loop.remove_reader(self._fd)
                self._retry = self._loop.call_later(ACCEPT_RETRY_DELAY, self._resume)
                return
            try:
                conn.setblocking(False)
                make(conn, factory(), extra={"peername": address})
            except Exception:
                log.exception("could not serve the connection from %s", address)
                conn.close()

    def _resume(self) -> None:
        self._retry = None
        if self._sock is not None:
            self._loop.add_reader(self._fd, self._ready)

    def close(self) -> None:
        """Stop accepting and close the socket; accepted connections go on."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        else:
            self._loop.remove_reader(self._fd)
        sock.close()
