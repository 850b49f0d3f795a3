"""Timeouts, shutdown, release and abort, TLS and garbage from the network."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
import struct
from pathlib import Path
from typing import Any

import pytest

from aiodimse import (
    AssociationAbortedError,
    DIMSETimeoutError,
    Event,
    evt,
)

from ._helpers import (
    STGCMT,
    STGCMT_INSTANCE,
    bounded,
    make_scp_ae,
    make_scu_ae,
    serving,
    session,
)


async def _sleeping_action(event: Event) -> tuple[int, None]:
    await asyncio.sleep(float(event.action_information.get("PatientID", "0") or 0))
    return 0x0000, None


def _delay(seconds: float) -> Any:
    from ._helpers import ds_of

    return ds_of(PatientID=str(seconds))


async def test_dimse_timeout_raises_and_aborts() -> None:
    aborted = asyncio.Event()

    async def on_aborted(event: Event) -> None:
        aborted.set()

    handlers = [(evt.EVT_N_ACTION, _sleeping_action), (evt.EVT_ABORTED, on_aborted)]
    scu = make_scu_ae()
    scu.dimse_timeout = 0.3
    loop = asyncio.get_running_loop()
    async with serving(handlers) as server:
        assoc = await bounded(scu.associate("127.0.0.1", server.port))
        start = loop.time()
        with pytest.raises(DIMSETimeoutError):
            await bounded(assoc.send_n_action(_delay(2.0), 1, STGCMT, STGCMT_INSTANCE))
        assert 0.25 <= loop.time() - start < 1.5
        assert isinstance(DIMSETimeoutError("x"), TimeoutError)
        await bounded(assoc.wait_closed())
        assert assoc.is_aborted
        assert not assoc.is_established
        await bounded(aborted.wait())  # the SCP saw the A-ABORT
        with pytest.raises(AssociationAbortedError):
            await bounded(assoc.send_c_echo())


async def test_artim_closes_silent_connection() -> None:
    scp = make_scp_ae()
    scp.artim_timeout = 0.5
    loop = asyncio.get_running_loop()
    async with serving(ae=scp) as server:
        reader, writer = await bounded(asyncio.open_connection("127.0.0.1", server.port))
        try:
            start = loop.time()
            data = await bounded(reader.read(), 5.0)
            elapsed = loop.time() - start
        finally:
            writer.close()
        assert data == b""
        assert 0.4 <= elapsed < 3.0
        # and the server still serves
        async with make_scu_ae().associate("127.0.0.1", server.port) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0


async def test_artim_after_release_runs_from_the_release_not_the_connection() -> None:
    """Sta13's ARTIM starts at A-RELEASE-RP, though Sta2's (stopped) timer was due earlier.

    The adapter keeps one lazily re-armed timer: the one set for Sta2's ARTIM fires
    first, finds a later deadline and re-arms; the server must close only when the
    new ARTIM expires.
    """
    from aiodimse.wire import A_RELEASE_RQ_BYTES, encode_pdu

    from ..ul.helpers import make_rq

    scp = make_scp_ae()
    scp.artim_timeout = 0.6
    loop = asyncio.get_running_loop()
    async with serving(ae=scp) as server:
        reader, writer = await bounded(asyncio.open_connection("127.0.0.1", server.port))
        try:
            start = loop.time()
            await asyncio.sleep(0.1)
            writer.write(encode_pdu(make_rq()))
            assert (await bounded(reader.readexactly(1))) == b"\x02"  # A-ASSOCIATE-AC
            await asyncio.sleep(0.35)
            writer.write(A_RELEASE_RQ_BYTES)
            released = loop.time()
            rest = await bounded(reader.read(), 5.0)  # A-RELEASE-RP, then the close
            closed = loop.time()
        finally:
            writer.close()
        assert rest.endswith(b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00")
        assert released - start < 0.6  # the first ARTIM would have expired during Sta13
        assert 0.5 <= closed - released < 3.0


async def test_network_timeout_aborts_idle_association() -> None:
    scp = make_scp_ae()
    scp.network_timeout = 0.5
    loop = asyncio.get_running_loop()
    async with serving(ae=scp) as server:
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        # activity keeps it alive past the timeout
        for _ in range(4):
            await asyncio.sleep(0.2)
            assert (await bounded(assoc.send_c_echo())).Status == 0
        assert assoc.is_established
        start = loop.time()
        await bounded(assoc.wait_closed(), 5.0)
        assert assoc.is_aborted
        assert 0.3 <= loop.time() - start < 3.0


async def test_network_timeout_sweep_aborts_the_idle_and_spares_the_busy() -> None:
    """One sweep per server: it must judge each association by its own last data."""
    scp = make_scp_ae()
    scp.network_timeout = 0.4
    loop = asyncio.get_running_loop()
    async with serving(ae=scp) as server:
        scu = make_scu_ae()
        busy = await bounded(scu.associate("127.0.0.1", server.port))
        idle = await bounded(scu.associate("127.0.0.1", server.port))
        start = loop.time()
        while not idle.is_aborted and loop.time() - start < 3.0:
            assert (await bounded(busy.send_c_echo())).Status == 0
            await asyncio.sleep(0.05)
        await bounded(idle.wait_closed())
        assert idle.is_aborted
        assert 0.35 <= loop.time() - start < 1.5
        assert busy.is_established
        assert (await bounded(busy.send_c_echo())).Status == 0
        await bounded(busy.release())


async def test_network_timeout_does_not_abort_during_slow_handler() -> None:
    scp = make_scp_ae()
    scp.network_timeout = 0.3
    async with session([(evt.EVT_N_ACTION, _sleeping_action)], scp=scp) as assoc:
        status, _ = await bounded(assoc.send_n_action(_delay(0.8), 1, STGCMT, STGCMT_INSTANCE))
        assert status.Status == 0


async def test_graceful_shutdown_finishes_in_flight_then_aborts_the_rest() -> None:
    scp = make_scp_ae()
    server = await bounded(
        scp.start_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_N_ACTION, _sleeping_action)])
    )
    scu = make_scu_ae()
    port = server.port
    busy = await bounded(scu.associate("127.0.0.1", port))
    idle = await bounded(scu.associate("127.0.0.1", port))
    try:
        task = asyncio.ensure_future(
            busy.send_n_action(_delay(0.5), 1, STGCMT, STGCMT_INSTANCE)
        )
        await asyncio.sleep(0.1)  # the request is in flight
        await bounded(server.shutdown(grace=5.0))
        status, _ = await bounded(task)
        assert status.Status == 0x0000  # finished within the grace period
        await bounded(busy.wait_closed())
        await bounded(idle.wait_closed())
        assert busy.is_aborted
        assert idle.is_aborted
        assert not server.is_serving()
        with pytest.raises(OSError):
            await bounded(asyncio.open_connection("127.0.0.1", port))
    finally:
        busy.abort()
        idle.abort()


async def test_graceful_shutdown_aborts_requests_past_the_grace() -> None:
    scp = make_scp_ae()
    server = await bounded(
        scp.start_server(("127.0.0.1", 0), evt_handlers=[(evt.EVT_N_ACTION, _sleeping_action)])
    )
    assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
    loop = asyncio.get_running_loop()
    try:
        task = asyncio.ensure_future(
            assoc.send_n_action(_delay(3.0), 1, STGCMT, STGCMT_INSTANCE)
        )
        await asyncio.sleep(0.1)
        start = loop.time()
        await bounded(server.shutdown(grace=0.3))
        assert loop.time() - start < 2.0
        with pytest.raises(AssociationAbortedError):
            await bounded(task)
        assert assoc.is_aborted
    finally:
        assoc.abort()


async def test_release_waits_for_in_flight_requests() -> None:
    released = asyncio.Event()

    async def on_released(event: Event) -> None:
        released.set()

    handlers = [(evt.EVT_N_ACTION, _sleeping_action), (evt.EVT_RELEASED, on_released)]
    async with serving(handlers) as server:
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        task = asyncio.ensure_future(
            assoc.send_n_action(_delay(0.3), 1, STGCMT, STGCMT_INSTANCE)
        )
        await asyncio.sleep(0.05)
        await bounded(assoc.release())
        # the response came before the release was answered
        assert task.done()
        status, _ = task.result()
        assert status.Status == 0
        assert assoc.is_released
        assert not assoc.is_aborted
        await bounded(released.wait())


async def test_abort_from_scu_fails_outstanding_and_notifies_scp() -> None:
    aborted = asyncio.Event()

    async def on_aborted(event: Event) -> None:
        aborted.set()

    handlers = [(evt.EVT_N_ACTION, _sleeping_action), (evt.EVT_ABORTED, on_aborted)]
    async with serving(handlers) as server:
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        task = asyncio.ensure_future(
            assoc.send_n_action(_delay(2.0), 1, STGCMT, STGCMT_INSTANCE)
        )
        await asyncio.sleep(0.05)
        assoc.abort()
        with pytest.raises(AssociationAbortedError):
            await bounded(task)
        await bounded(assoc.wait_closed())
        assert assoc.is_aborted
        assert not assoc.is_established
        await bounded(aborted.wait())
        # the server serves the next one
        async with make_scu_ae().associate("127.0.0.1", server.port) as again:
            assert (await bounded(again.send_c_echo())).Status == 0


async def test_a_handler_suspended_when_its_association_aborts_runs_to_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not cancelled (it may be committing work); its answer is dropped, quietly."""
    gate = asyncio.Event()
    started = asyncio.Event()
    seen: list[Any] = []
    finished: list[bool] = []

    async def on_n_action(event: Event) -> tuple[int, None]:
        seen.append(event.assoc)
        started.set()
        await gate.wait()
        finished.append(event.assoc.is_established)
        return 0x0000, None

    async with serving([(evt.EVT_N_ACTION, on_n_action)]) as server:
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        request = asyncio.ensure_future(
            assoc.send_n_action(_delay(0), 1, STGCMT, STGCMT_INSTANCE)
        )
        await bounded(started.wait())
        assoc.abort()
        with pytest.raises(AssociationAbortedError):
            await bounded(request)
        await bounded(seen[0].wait_closed())  # the SCP side has ended too
        assert seen[0].is_aborted
        gate.set()
        for _ in range(200):
            if finished:
                break
            await asyncio.sleep(0.01)
        assert finished == [False]  # it ran on, and saw its association gone
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_async_with_aborts_on_exception() -> None:
    async with serving() as server:
        scu = make_scu_ae()
        holder: list[Any] = []
        with pytest.raises(RuntimeError, match="inside"):
            async with scu.associate("127.0.0.1", server.port) as assoc:
                holder.append(assoc)
                raise RuntimeError("inside")
        assert holder[0].is_aborted
        assert not holder[0].is_released


# -- TLS ----------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_both_sides(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))

    seen: list[Any] = []

    async def on_action(event: Event) -> tuple[int, Any]:
        seen.append(event.assoc.proto.transport.get_extra_info("ssl_object"))
        return 0x0000, event.action_information

    async with serving([(evt.EVT_N_ACTION, on_action)], ssl_context=server_ctx) as server:
        async with make_scu_ae().associate(
            "127.0.0.1", server.port, ssl_context=client_ctx
        ) as assoc:
            assert (await bounded(assoc.send_c_echo())).Status == 0
            from ._helpers import ds_of

            status, reply = await bounded(
                assoc.send_n_action(ds_of(PatientID="TLS"), 1, STGCMT, STGCMT_INSTANCE)
            )
            assert status.Status == 0
            assert reply is not None
            assert reply.PatientID == "TLS"
        async with make_scu_ae().associate(
            "127.0.0.1", server.port, ssl_context=client_ctx, server_hostname="localhost"
        ) as named:
            assert (await bounded(named.send_c_echo())).Status == 0
        assert seen and seen[0] is not None  # the SCP side really was TLS

        # a plain-TCP client cannot associate with the TLS server
        plain = make_scu_ae()
        plain.acse_timeout = 1.0
        with pytest.raises(Exception):  # noqa: B017 - aborted or timed out, either is fine
            await bounded(plain.associate("127.0.0.1", server.port), 5.0)
        # the failed handshake left nothing behind on the server
        for _ in range(50):
            if server.connection_count == 0:
                break
            await asyncio.sleep(0.02)
        assert server.connection_count == 0


async def test_tls_untrusted_certificate_fails(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # system CAs only
    async with serving(ssl_context=server_ctx) as server:
        with pytest.raises(Exception) as info:
            await bounded(
                make_scu_ae().associate("127.0.0.1", server.port, ssl_context=client_ctx)
            )
        assert "certificate" in repr(info.value).lower() or isinstance(
            info.value.__cause__, ssl.SSLError
        )


# -- garbage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        pytest.param(b"\x99\x00" + struct.pack(">I", 4) + b"junk", 1, id="unknown-pdu-type"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, id="http"),
        pytest.param(b"\x01\x00" + struct.pack(">I", 10) + b"\xff" * 10, 6, id="bad-associate-rq"),
    ],
)
async def test_garbage_gets_abort_and_server_keeps_serving(garbage: bytes, reason: int) -> None:
    scp = make_scp_ae()
    scp.artim_timeout = 0.5
    loop = asyncio.get_running_loop()
    async with serving(ae=scp) as server:
        # an established association, to show it is not disturbed
        async with make_scu_ae().associate("127.0.0.1", server.port) as assoc:
            reader, writer = await bounded(asyncio.open_connection("127.0.0.1", server.port))
            try:
                writer.write(garbage)
                await bounded(writer.drain())
                # an A-ABORT PDU: type 0x07, length 4, source 2 (provider), the reason
                abort = await bounded(reader.readexactly(10))
                start = loop.time()
                rest = await bounded(reader.read(), 5.0)
            finally:
                writer.close()
            assert abort == b"\x07\x00" + struct.pack(">I", 4) + bytes([0, 0, 2, reason])
            # then the server closes the connection when ARTIM expires (Sta13)
            assert rest == b""
            assert loop.time() - start < 3.0
            assert (await bounded(assoc.send_c_echo())).Status == 0
        async with make_scu_ae().associate("127.0.0.1", server.port) as again:
            assert (await bounded(again.send_c_echo())).Status == 0


async def test_garbage_after_association_gets_abort() -> None:
    """Garbage on an established association: A-ABORT to the sender, server fine."""
    async with serving() as server:
        assoc = await bounded(make_scu_ae().associate("127.0.0.1", server.port))
        assert assoc.proto is not None and assoc.proto.transport is not None
        assoc.proto.transport.write(b"\x99\x00" + struct.pack(">I", 4) + b"junk")
        await bounded(assoc.wait_closed())
        assert assoc.is_aborted
        async with make_scu_ae().associate("127.0.0.1", server.port) as again:
            assert (await bounded(again.send_c_echo())).Status == 0
