"""Slots and time a hostile peer can hold on a server: raw-socket peers.

Silent and trickling connections, and many associations from one address or one
calling AE title, must not keep others out; refusals are A-ASSOCIATE-RJ
rejected-transient, service-provider (presentation), local-limit-exceeded (2, 3, 2).
"""

from __future__ import annotations

import asyncio

import pytest

from aiodimse import AE, AssociationRejectedError
from aiodimse import server as server_module
from aiodimse.wire import encode_pdu
from aiodimse.wire.codec import encode_single_pdv

from ..ul.helpers import make_rq
from ._helpers import bounded, make_scp_ae, make_scu_ae, serving

RQ = encode_pdu(make_rq())
LOCAL_LIMIT = (2, 3, 2)


async def _echo(scu: AE, port: int, *, bind: str | None = None) -> int:
    async with scu.associate(
        "127.0.0.1", port, bind_address=None if bind is None else (bind, 0)
    ) as assoc:
        return int((await bounded(assoc.send_c_echo())).Status)


async def _rejection(scu: AE, port: int, *, bind: str | None = None) -> tuple[int, int, int]:
    with pytest.raises(AssociationRejectedError) as info:
        await bounded(_echo(scu, port, bind=bind))
    err = info.value
    return err.result, err.source, err.reason


async def _silent(port: int, host: str = "127.0.0.1") -> tuple[asyncio.StreamReader,
                                                                 asyncio.StreamWriter]:
    return await bounded(asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0)))


async def _closed_by_server(reader: asyncio.StreamReader, guard: float = 10.0) -> bytes:
    """What the server sent before closing (a hang guard only, not a timing check).

    A test that trickles bytes may write one after the server closed: the server's
    host then answers with a reset, which the reader raises before the bytes it
    holds. Those bytes arrived before the reset, so they count.
    """
    got = bytearray()

    async def drain() -> None:
        while True:
            try:
                block = await reader.read(65536)
            except ConnectionResetError:
                got.extend(reader._buffer)  # type: ignore[attr-defined]
                return
            if not block:
                return
            got.extend(block)

    await bounded(drain(), guard)
    return bytes(got)


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> float:
    """A pending connection may be displaced after 0.2 s instead of 2 s."""
    monkeypatch.setattr(server_module, "PENDING_GRACE", 0.2, raising=False)
    return 0.2


async def test_silent_connections_do_not_take_association_slots(short_grace: float) -> None:
    scp = make_scp_ae()
    scp.maximum_associations = 2
    scp.maximum_pending_connections = 4
    async with serving(ae=scp) as server:
        silent = [await _silent(server.port) for _ in range(4)]
        await asyncio.sleep(short_grace + 0.1)
        silent += [await _silent(server.port) for _ in range(2)]
        try:
            # the two that waited longest were closed to make room
            for reader, _ in silent[:2]:
                assert await _closed_by_server(reader) == b""
            # none of the silent ones holds an association slot
            assert await bounded(_echo(make_scu_ae(), server.port)) == 0
            async with make_scu_ae().associate("127.0.0.1", server.port) as one, \
                    make_scu_ae().associate("127.0.0.1", server.port) as two:
                assert one.is_established and two.is_established
                # both slots are taken now: the limit itself still holds
                assert await _rejection(make_scu_ae(), server.port) == LOCAL_LIMIT
        finally:
            for _, writer in silent:
                writer.close()


async def test_pending_connections_per_address(short_grace: float) -> None:
    scp = make_scp_ae()
    scp.maximum_pending_per_address = 2
    async with serving(ae=scp) as server:
        old = [await _silent(server.port, "127.0.0.2") for _ in range(2)]
        await asyncio.sleep(short_grace + 0.1)
        # a burst of fresh ones displaces the old ones, and may reach twice the limit
        burst = [await _silent(server.port, "127.0.0.2") for _ in range(4)]
        extra = await _silent(server.port, "127.0.0.2")
        try:
            for reader, _ in old:
                assert await _closed_by_server(reader) == b""
            assert await _closed_by_server(extra[0]) == b""  # beyond twice the limit
            for reader, _ in burst:  # left to the set-up deadline and ARTIM (30 s)
                with pytest.raises(asyncio.TimeoutError):  # (3.10: not the builtin)
                    await asyncio.wait_for(reader.read(1), 0.3)
            # other addresses are not held back by it
            assert await bounded(_echo(make_scu_ae(), server.port)) == 0
        finally:
            for _, writer in (*old, *burst, extra):
                writer.close()


async def test_a_burst_of_real_requests_from_one_address_gets_in() -> None:
    scp = make_scp_ae()
    scp.maximum_pending_per_address = 4
    scp.maximum_pending_connections = 4
    async with serving(ae=scp) as server:
        statuses = await bounded(asyncio.gather(
            *(_echo(make_scu_ae(), server.port) for _ in range(8))))
        assert statuses == [0] * 8


async def test_associations_per_address() -> None:
    scp = make_scp_ae()
    scp.maximum_associations_per_address = 1
    async with serving(ae=scp) as server:
        scu = make_scu_ae()
        async with scu.associate("127.0.0.1", server.port, bind_address=("127.0.0.3", 0)) as a:
            assert a.is_established
            assert await _rejection(scu, server.port, bind="127.0.0.3") == LOCAL_LIMIT
            assert await bounded(_echo(scu, server.port, bind="127.0.0.4")) == 0
        await bounded(a.wait_closed())
        await bounded(_until(lambda: server.connection_count == 0))
        assert await bounded(_echo(scu, server.port, bind="127.0.0.3")) == 0  # freed


async def test_associations_per_calling_ae_title() -> None:
    scp = make_scp_ae()
    scp.maximum_associations_per_ae = 1
    async with serving(ae=scp) as server:
        modality = make_scu_ae("MODALITY")
        async with modality.associate("127.0.0.1", server.port) as first:
            assert first.is_established
            assert await _rejection(modality, server.port) == LOCAL_LIMIT
            assert await bounded(_echo(make_scu_ae("OTHER"), server.port)) == 0


async def test_setup_deadline_bounds_a_silent_connection_by_the_acse_timeout() -> None:
    scp = make_scp_ae()
    scp.acse_timeout = 0.4  # ARTIM stays at its 30 s
    async with serving(ae=scp) as server:
        reader, writer = await _silent(server.port)
        try:
            assert await _closed_by_server(reader) == b""  # within the guard, not 30 s
        finally:
            writer.close()


async def test_setup_deadline_bounds_a_trickled_associate_rq() -> None:
    scp = make_scp_ae()
    scp.acse_timeout = 0.5
    async with serving(ae=scp) as server:
        reader, writer = await _silent(server.port)
        sent = 0
        try:
            # one byte every 20 ms: the whole request would take several seconds
            while sent < len(RQ) - 1:
                writer.write(RQ[sent:sent + 1])
                sent += 1
                await asyncio.sleep(0.02)
                # closed: bytes, the end, or a reset (the server closed with our
                # trickled bytes unread, so its host answered with RST, not FIN)
                if reader._buffer or reader.at_eof() or reader.exception():  # type: ignore[attr-defined]
                    break
            assert await _closed_by_server(reader) == b""  # no A-ASSOCIATE-AC, closed
            assert sent < len(RQ) - 1
        finally:
            writer.close()


async def test_message_deadline_aborts_a_trickled_message() -> None:
    scp = make_scp_ae()
    scp.message_timeout = 0.5
    scp.network_timeout = 60.0  # bytes keep coming: the idle timeout never fires
    async with serving(ae=scp) as server:
        reader, writer = await _silent(server.port)
        try:
            writer.write(RQ)
            assert (await bounded(reader.readexactly(1))) == b"\x02"  # A-ASSOCIATE-AC
            header = await bounded(reader.readexactly(5))
            await bounded(reader.readexactly(int.from_bytes(header[1:], "big")))
            message = encode_single_pdv(1, 0x03, b"\x00" * 64)
            sent = 0
            while sent < len(message) - 1 and not reader._buffer:  # type: ignore[attr-defined]
                writer.write(message[sent:sent + 1])
                sent += 1
                await asyncio.sleep(0.02)
            rest = await _closed_by_server(reader)
            assert sent < len(message) - 1
            assert b"\x07\x00\x00\x00\x00\x04" in rest  # A-ABORT, then the close
        finally:
            writer.close()


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.01)


async def test_a_rejected_request_frees_its_slot_at_once() -> None:
    """A request rejected after it took a slot (here: its calling AE title) gives the
    slot back with the A-ASSOCIATE-RJ, not when the peer gets round to closing."""
    scp = make_scp_ae()
    scp.maximum_associations = 1
    scp.require_calling_aet = ["FRIEND"]
    scp.artim_timeout = 30.0  # the stranger could hold the connection this long
    async with serving(ae=scp) as server:
        reader, writer = await bounded(asyncio.open_connection("127.0.0.1", server.port))
        try:
            writer.write(RQ)  # calling AE title "REQUESTOR"
            head = await bounded(reader.readexactly(10))
            assert head[0] == 0x03  # A-ASSOCIATE-RJ; the connection is kept open
            assert await bounded(_echo(make_scu_ae("FRIEND"), server.port)) == 0
        finally:
            writer.close()
