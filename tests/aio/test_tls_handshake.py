"""A failed TLS handshake is one WARNING line on the server, with the peer's address
and the reason; a handshake has a time limit; data sent right after the handshake is
not lost (the server does the handshake itself, aio/tls.py)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path

import pytest

from aiodimse import server as server_module
from aiodimse.aio.tls import EARLY_LIMIT, Handshakes, handshake_problem

from ._helpers import bounded, make_scp_ae, make_scu_ae, serving
from .test_robustness import _self_signed

SERVER_LOG = "aiodimse.server"


def _contexts(tmp_path: Path, *, require_client: bool = False
              ) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    if require_client:
        server_ctx.load_verify_locations(cert)
        server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    return server_ctx, client_ctx


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == SERVER_LOG and r.levelno == logging.WARNING]


async def _wait_for_warning(caplog: pytest.LogCaptureFixture, timeout: float = 5.0) -> str:
    for _ in range(int(timeout / 0.02)):
        found = _warnings(caplog)
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no TLS warning logged")


async def test_a_plain_client_on_the_tls_port_is_logged_with_its_address(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server_ctx, client_ctx = _contexts(tmp_path)
    async with serving(ssl_context=server_ctx) as server:
        plain = make_scu_ae()
        plain.acse_timeout = 2.0
        with pytest.raises(Exception):  # noqa: B017 - aborted or timed out
            await bounded(plain.associate("127.0.0.1", server.port))
        line = await _wait_for_warning(caplog)
        assert line.startswith("TLS handshake from 127.0.0.1:")
        assert "not TLS (a plain DICOM client on the TLS port?)" in line
        # the TLS clients are served as before, on the same server
        async with make_scu_ae().associate("127.0.0.1", server.port,
                                           ssl_context=client_ctx) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0


async def test_a_client_without_the_required_certificate_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server_ctx, client_ctx = _contexts(tmp_path, require_client=True)
    async with serving(ssl_context=server_ctx) as server:
        scu = make_scu_ae()
        scu.acse_timeout = 2.0
        with pytest.raises(Exception):  # noqa: B017 - the handshake or the read fails
            async with scu.associate("127.0.0.1", server.port, ssl_context=client_ctx) as a:
                await bounded(a.send_c_echo())
        line = await _wait_for_warning(caplog)
        assert line.startswith("TLS handshake from 127.0.0.1:")
        assert "certificate" in line.lower()


async def test_a_silent_connection_is_dropped_after_the_handshake_time_limit(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server_ctx, _ = _contexts(tmp_path)
    scp = make_scp_ae()
    scp.acse_timeout = 0.5
    async with serving(ae=scp, ssl_context=server_ctx) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            line = await _wait_for_warning(caplog)
            assert line.endswith("failed: no handshake within the time limit")
            sock.settimeout(5)
            assert sock.recv(100) == b""  # closed by the server


def test_handshake_problems_in_words() -> None:
    err = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    err.reason = "WRONG_VERSION_NUMBER"  # type: ignore[misc]
    assert "not TLS" in handshake_problem(err)
    assert handshake_problem(ConnectionResetError()) == (
        "the client closed the connection during the handshake")
    assert EARLY_LIMIT == 1 << 20


_RAW_FIRST = r'''
import asyncio, ssl, sys
from aiodimse import AE
from aiodimse.aio import tls
from aiodimse.cli.loop import run

cert, key, loop_name = sys.argv[1:4]
seen = []
handshake = tls.TLSAcceptor._handshake

async def late(self, transport):
    await asyncio.sleep(0.05)  # the ClientHello is read before start_tls takes over
    seen.append(sum(map(len, self._hello)))
    return await handshake(self, transport)

tls.TLSAcceptor._handshake = late
tls.TLSAcceptor._pause = lambda self: None  # reading goes on until the ClientHello comes

async def main():
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
    scp = AE("SCP")
    scp.add_supported_context("1.2.840.10008.1.1")
    server = await scp.start_server(("127.0.0.1", 0), ssl_context=server_ctx)
    ok = 0
    async with server:
        for _ in range(10):
            scu = AE("SCU")
            scu.add_requested_context("1.2.840.10008.1.1")
            scu.connection_timeout = scu.acse_timeout = 5
            async with scu.associate("127.0.0.1", server.port, ssl_context=client_ctx) as a:
                ok += (await a.send_c_echo()).Status == 0
    print(ok, min(seen))

run(main(), loop_name)
'''


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_client_hello_read_before_start_tls_is_handed_over(tmp_path: Path, loop: str) -> None:
    """uvloop reads after connection_made whatever the protocol does: what it reads
    before start_tls takes over must reach the TLS protocol, or the handshake hangs."""
    import subprocess
    import sys

    cert, key = _self_signed(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _RAW_FIRST, str(cert), str(key), loop],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    ok, least_early = map(int, proc.stdout.split())
    assert ok == 10
    assert least_early > 0  # every handshake went through the handed-over path


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


async def test_handshakes_in_progress_are_bounded_in_number(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections that never finish their handshake are bounded as pending places
    are: past ``maximum_pending_connections`` a newcomer displaces the oldest once it
    has waited the grace, well before the time limit; a real client gets through."""
    monkeypatch.setattr(server_module, "PENDING_GRACE", 0.05)
    server_ctx, client_ctx = _contexts(tmp_path)
    scp = make_scp_ae()
    scp.acse_timeout = 30.0
    scp.maximum_pending_connections = 3
    async with serving(ae=scp, ssl_context=server_ctx) as server:
        socks = []
        try:
            for _ in range(8):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                sock.setblocking(False)
                socks.append(sock)
                await asyncio.sleep(0.08)  # past the grace: each newcomer displaces
            for _ in range(100):
                if sum(map(_closed, socks[:5])) == 5:
                    break
                await asyncio.sleep(0.02)
            assert all(_closed(s) for s in socks[:5])  # the oldest five
            assert not any(_closed(s) for s in socks[5:])  # the newest three wait on
            async with make_scu_ae().associate("127.0.0.1", server.port,
                                               ssl_context=client_ctx) as assoc:
                assert (await bounded(assoc.send_c_echo())).Status == 0
        finally:
            for sock in socks:
                sock.close()


class _Acceptor:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_a_burst_of_handshakes_may_reach_twice_the_bound() -> None:
    """Fresh handshakes are not displaced (a burst of real clients); past twice the
    bound the newcomer is closed; per address the same."""
    shakes = Handshakes(2, None, grace=2.0)
    burst = [_Acceptor() for _ in range(5)]
    for a in burst:
        shakes.started(a, "10.0.0.1", 0.0)  # type: ignore[arg-type]
    assert [a.aborted for a in burst] == [False, False, False, False, True]
    late = _Acceptor()
    shakes.started(late, "10.0.0.2", 3.0)  # type: ignore[arg-type]
    assert burst[0].aborted and not late.aborted and len(shakes) == 4
    per = Handshakes(None, 1, grace=2.0)
    one, two, other = _Acceptor(), _Acceptor(), _Acceptor()
    per.started(one, "10.0.0.1", 0.0)  # type: ignore[arg-type]
    per.started(other, "10.0.0.2", 0.0)  # type: ignore[arg-type]
    per.started(two, "10.0.0.1", 2.5)  # type: ignore[arg-type]
    assert (one.aborted, two.aborted, other.aborted) == (True, False, False)
