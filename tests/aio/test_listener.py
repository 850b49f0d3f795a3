"""The listening sockets and the direct accept path (aio/listener.py)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import uvloop

import aiodimse.aio.listener as listener_module
from aiodimse.aio.listener import (
    ACCEPTS_PER_WAKE,
    DirectListener,
    accepts_directly,
    open_sockets,
)

from ._helpers import bounded, make_scu_ae, serving


class Recorder(asyncio.Protocol):
    """Counts the connections made with it (one instance per connection)."""

    made: list[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)


class FlakySocket(socket.socket):
    """A listening socket whose next accept() calls raise the queued errors first."""

    errors: list[OSError]
    accepts: int

    def accept(self) -> tuple[socket.socket, Any]:
        self.accepts += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().accept()


@contextmanager
def flaky_listening_socket() -> Iterator[FlakySocket]:
    sock = FlakySocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.errors, sock.accepts = [], 0
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock
    finally:
        sock.close()


def recorder_factory() -> tuple[list[asyncio.BaseTransport], Any]:
    made: list[asyncio.BaseTransport] = []

    def factory() -> Recorder:
        protocol = Recorder()
        protocol.made = made
        return protocol

    return made, factory


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Poll ``condition()`` until true, for at most ``timeout`` seconds."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await bounded(poll(), timeout)


async def connect(port: int) -> asyncio.StreamWriter:
    _, writer = await bounded(asyncio.open_connection("127.0.0.1", port))
    return writer


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_asyncio_loops_accept_directly_and_uvloop_through_create_server(loop_kind: str) -> None:
    """Both paths serve associations; only asyncio's own loop takes the direct one."""
    async def check() -> tuple[bool, int]:
        async with (
            serving() as server,
            make_scu_ae().associate("127.0.0.1", server.port) as assoc,
        ):
            status = await bounded(assoc.send_c_echo())
            direct = all(isinstance(x, DirectListener) for x in server._listeners)
            return direct, status.Status

    factory = uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop
    loop = factory()  # not asyncio.Runner: Python 3.10 has none
    try:
        direct, status = loop.run_until_complete(check())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert status == 0
    assert direct is (loop_kind == "asyncio")


async def test_tls_is_never_accepted_directly() -> None:
    loop = asyncio.get_running_loop()
    assert accepts_directly(loop, None)
    assert not accepts_directly(loop, ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))


@asynccontextmanager
async def accept_failing_once(
    error: OSError,
) -> AsyncIterator[tuple[FlakySocket, DirectListener, list[asyncio.BaseTransport]]]:
    """A listener whose first accept() raises ``error``, with one client connecting."""
    made, factory = recorder_factory()
    with flaky_listening_socket() as sock:
        sock.errors.append(error)
        listener = DirectListener(asyncio.get_running_loop(), sock, factory)
        writer = await connect(sock.getsockname()[1])
        try:
            yield sock, listener, made
        finally:
            writer.close()
            listener.close()
            for transport in made:
                transport.close()


async def test_out_of_descriptors_pauses_accepting_then_resumes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """EMFILE: no spinning on the error; the queued connection is taken after the pause."""
    monkeypatch.setattr(listener_module, "ACCEPT_RETRY_DELAY", 0.2)
    async with accept_failing_once(OSError(errno.EMFILE, "Too many open files")) as (
        sock, listener, made
    ):
        await until(lambda: sock.accepts == 1)
        assert listener._retry is not None
        await asyncio.sleep(0.1)
        assert sock.accepts == 1 and not made  # paused: the connection waits
        await until(lambda: len(made) == 1)
        assert listener._retry is None
    assert "retrying in" in caplog.text and "Too many open files" in caplog.text


async def test_other_accept_errors_are_logged_and_the_next_connection_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    made, factory = recorder_factory()
    with flaky_listening_socket() as sock:
        # ECONNABORTED goes on to the next accept at once; EPERM ends this wake.
        sock.errors += [ConnectionAbortedError(errno.ECONNABORTED, "aborted"),
                        OSError(errno.EPERM, "Operation not permitted")]
        listener = DirectListener(loop, sock, factory)
        writers = [await connect(sock.getsockname()[1])]
        try:
            await until(lambda: sock.accepts >= 2)
            writers.append(await connect(sock.getsockname()[1]))
            await until(lambda: len(made) == 2)
            assert listener._retry is None
        finally:
            for writer in writers:
                writer.close()
            listener.close()
            for transport in made:
                transport.close()
    assert "Operation not permitted" in caplog.text
    assert "aborted" not in caplog.text


async def test_one_wake_accepts_a_bounded_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of connections cannot keep the loop in the accept callback."""
    loop = asyncio.get_running_loop()
    pairs: list[socket.socket] = []

    class Endless:
        """Always has another connection to accept."""

        def __init__(self, real: socket.socket) -> None:
            self.real = real

        def fileno(self) -> int:
            return self.real.fileno()

        def accept(self) -> tuple[socket.socket, tuple[str, int]]:
            a, b = socket.socketpair()
            pairs.extend((a, b))
            return a, ("127.0.0.1", len(pairs))

    made: list[Any] = []
    with socket.socket() as real:
        listener = DirectListener(loop, Endless(real), Recorder)  # type: ignore[arg-type]
        monkeypatch.setattr(listener, "_make", lambda conn, proto, extra: made.append(extra))
        try:
            listener._ready()
        finally:
            listener._sock = None  # the fake is not closed by close()
            loop.remove_reader(real.fileno())
            for sock in pairs:
                sock.close()
    assert len(made) == ACCEPTS_PER_WAKE
    assert made[0] == {"peername": ("127.0.0.1", 2)}


async def test_a_failing_protocol_factory_closes_that_connection_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    made, good = recorder_factory()
    calls = 0

    def factory() -> Recorder:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("factory broke")
        return good()  # type: ignore[no-any-return]

    with flaky_listening_socket() as sock:
        listener = DirectListener(loop, sock, factory)
        port = sock.getsockname()[1]
        reader, writer = await bounded(asyncio.open_connection("127.0.0.1", port))
        try:
            assert await bounded(reader.read()) == b""  # closed by the listener
            second = await connect(port)
            await until(lambda: len(made) == 1)
            second.close()
        finally:
            writer.close()
            listener.close()
            for transport in made:
                transport.close()
    assert "factory broke" in caplog.text


async def test_close_stops_accepting_and_cancels_a_pending_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(listener_module, "ACCEPT_RETRY_DELAY", 0.05)
    async with accept_failing_once(OSError(errno.ENFILE, "Too many open files in system")) as (
        sock, listener, made
    ):
        await until(lambda: listener._retry is not None)
        listener.close()
        assert sock.fileno() == -1
        await asyncio.sleep(0.15)  # past the retry: nothing re-registers
        listener.close()  # twice is harmless
        assert not made and sock.accepts == 1


async def test_open_sockets_listen_without_blocking_and_report_a_taken_port() -> None:
    loop = asyncio.get_running_loop()
    (sock,) = await open_sockets(loop, "127.0.0.1", 0, backlog=8)
    try:
        assert not sock.getblocking()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        port = sock.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on .*{port}"):
            await open_sockets(loop, "127.0.0.1", port, backlog=8)
    finally:
        sock.close()


async def test_reuse_port_lets_two_servers_share_a_port() -> None:
    loop = asyncio.get_running_loop()
    (first,) = await open_sockets(loop, "127.0.0.1", 0, backlog=8, reuse_port=True)
    try:
        port = first.getsockname()[1]
        (second,) = await open_sockets(loop, "127.0.0.1", port, backlog=8, reuse_port=True)
        second.close()
    finally:
        first.close()


async def test_a_family_the_host_cannot_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """As create_server does: "" on a host without IPv6 still listens on IPv4."""
    real = socket.socket

    class NoIPv6(real):
        def __init__(self, family: int = -1, *args: Any, **kwargs: Any) -> None:
            if family == socket.AF_INET6:
                raise OSError(errno.EAFNOSUPPORT, "Address family not supported")
            super().__init__(family, *args, **kwargs)

    monkeypatch.setattr(socket, "socket", NoIPv6)
    loop = asyncio.get_running_loop()
    sockets = await open_sockets(loop, "", 0, backlog=8)
    try:
        assert sockets and all(s.family == socket.AF_INET for s in sockets)
    finally:
        for sock in sockets:
            sock.close()
    with pytest.raises(OSError, match="no usable address"):
        await open_sockets(loop, "::1", 0, backlog=8)


async def test_reuse_port_where_the_platform_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    with pytest.raises(ValueError, match="reuse_port"):
        await open_sockets(asyncio.get_running_loop(), "127.0.0.1", 0, backlog=8,
                           reuse_port=True)


async def test_serve_forever_returns_on_close_and_closes_when_cancelled() -> None:
    async with serving() as server:
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        server.close()
        await bounded(forever)
        assert not server.is_serving()
        with pytest.raises(RuntimeError, match="not listening"):
            _ = server.port
    async with serving() as server:
        port = server.port
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0.01)
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(forever)
        assert not server.is_serving()
        with pytest.raises(OSError):
            await bounded(asyncio.open_connection("127.0.0.1", port))


async def test_log_of_a_closed_listener_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """A wake after close (the callback already queued) does nothing."""
    caplog.set_level(logging.DEBUG, "aiodimse.server")
    loop = asyncio.get_running_loop()
    made, factory = recorder_factory()
    with flaky_listening_socket() as sock:
        listener = DirectListener(loop, sock, factory)
        listener.close()
        listener._ready()
    assert not made and sock.accepts == 0 and not caplog.records
