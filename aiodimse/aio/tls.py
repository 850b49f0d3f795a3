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

__all__ = ["EARLY_LIMIT", "TLSAcceptor", "handshake_problem"]

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


class TLSAcceptor(asyncio.Protocol):
    """The protocol of a TLS listener's plain connection until its handshake is done.

    ``factory`` makes the DICOM protocol, which gets ``connection_made`` with the TLS
    transport; ``tasks`` holds the handshake task until it ends.
    """

    def __init__(self, factory: Callable[[], asyncio.Protocol], context: ssl.SSLContext,
                 timeout: float, tasks: set[asyncio.Task[Any]]) -> None:
        self._factory = factory
        self._context = context
        self._timeout = timeout
        self._tasks = tasks
        # What the TLS layer hands over between the end of the handshake and the
        # switch to the DICOM protocol (asyncio reads what is buffered at once):
        self._early: list[bytes] = []
        self._early_size = 0
        self._lost: tuple[Exception | None] | None = None
        self._plain: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        plain = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        plain.pause_reading()  # the ClientHello waits for start_tls, not for us
        self._plain = plain
        task = asyncio.get_running_loop().create_task(self._handshake(plain))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        try:
            tls = await loop.start_tls(transport, self, self._context, server_side=True,
                                       ssl_handshake_timeout=self._timeout)
        except asyncio.CancelledError:
            transport.abort()
            raise
        except (OSError, asyncio.TimeoutError, ConnectionError, RuntimeError) as exc:
            log.warning("TLS handshake from %s failed: %s", where, handshake_problem(exc))
            transport.abort()
            return
        if tls is None or self._lost is not None:  # the connection went away meanwhile
            return
        protocol = self._factory()
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        early, self._early = self._early, []
        if early:
            protocol.data_received(b"".join(early))

    def data_received(self, data: bytes) -> None:
        """Application data that came with the end of the handshake: kept for the
        DICOM protocol (bounded: it takes over within one loop iteration)."""
        self._early_size += len(data)
        if self._early_size > EARLY_LIMIT:
            log.warning("TLS client sent %d bytes before the association could start: "
                        "closing", self._early_size)
            self._early = []
            if self._plain is not None:
                self._plain.abort()
            return
        self._early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = (exc,)
        self._early = []
